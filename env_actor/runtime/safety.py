"""Safety filter applied to every action before it leaves the runtime.

Order of checks for one action a (given the last sent action a_prev):
    1. NaN/inf anywhere -> reject: hold a_prev (or refuse if there is none).
    2. slew limit: a = a_prev + clip(a - a_prev, -max_step, max_step), where
       max_step = max_velocity * control_period (a velocity, so the allowed joint speed does
       not change with the control frequency).
    3. position limits: a = clip(a, lower, upper).
Every intervention is counted (`counts`) for diagnostics.

The reference a_prev of the first action after `reset(reference)` is `reference`: the
executor passes the *measured* joint positions there on every start, activation, reset,
fault recovery and recovery from stale inputs, so no first command jumps from where the
robot is.
"""
from dataclasses import dataclass
import math
from typing import Optional, Sequence, Union

import numpy as np

Bound = Union[float, Sequence[float], None]


@dataclass
class SafetyCounts:
    """How often the filter changed or refused an action."""

    rejected_nonfinite: int = 0
    slew_limited: int = 0
    position_clamped: int = 0
    passed: int = 0

    def as_dict(self) -> dict:
        return {'rejected_nonfinite': self.rejected_nonfinite,
                'slew_limited': self.slew_limited,
                'position_clamped': self.position_clamped, 'passed': self.passed}


def _vector(name: str, value: Bound, dim: int, fill: float) -> np.ndarray:
    if value is None:
        return np.full(dim, fill, dtype=np.float64)
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(dim, float(arr), dtype=np.float64)
    if arr.shape != (dim,):
        raise ValueError(f'{name} has {arr.size} entries but action_dim is {dim}')
    return arr.copy()


class SafetyFilter:
    """Joint limits, slew limit and NaN/inf rejection for `dim`-d actions.

    Args:
        dim: action_dim.
        lower / upper: position limits (scalar or per-joint; None = unbounded).
        max_velocity: largest speed in action units per second (scalar or per-joint;
            None = none). igris_b uses 1.745 rad/s (5 degrees per tick at 20 Hz).
        control_period: seconds between two actions; max_step = max_velocity * period.
    Raises:
        ValueError: a limit vector whose length is not `dim` (names the parameter),
            lower > upper, a non-positive max_velocity or control_period.
    """

    def __init__(self, dim: int, lower: Bound = None, upper: Bound = None,
                 max_velocity: Bound = None, control_period: float = 1.0) -> None:
        if dim < 1:
            raise ValueError(f'action_dim must be >= 1, got {dim}')
        if not control_period > 0:
            raise ValueError(f'control_period must be > 0 s, got {control_period}')
        self.dim = dim
        self.lower = _vector('safety.position_lower', lower, dim, -math.inf)
        self.upper = _vector('safety.position_upper', upper, dim, math.inf)
        self.max_velocity = _vector('safety.max_velocity', max_velocity, dim, math.inf)
        if np.any(self.lower > self.upper):
            raise ValueError('safety.position_lower exceeds safety.position_upper at joints '
                             f'{np.flatnonzero(self.lower > self.upper).tolist()}')
        if np.any(self.max_velocity <= 0):
            raise ValueError('safety.max_velocity must be > 0')
        self.max_step = self.max_velocity * control_period
        self.counts = SafetyCounts()
        self._last: Optional[np.ndarray] = None

    def set_limits(self, other: 'SafetyFilter') -> None:
        """Take `other`'s limits (same dim; built and validated by the caller) from the
        next action on; the reference and the counts stay.

        Raises:
            ValueError: a different action dimension.
        """
        if other.dim != self.dim:
            raise ValueError(f'limits for {other.dim} joints, the filter has {self.dim}')
        self.lower, self.upper, self.max_step = other.lower, other.upper, other.max_step
        self.max_velocity = other.max_velocity

    @property
    def last(self) -> Optional[np.ndarray]:
        """The last action let through (the slew-limit reference)."""
        return None if self._last is None else self._last.copy()

    def reset(self, reference: Optional[np.ndarray] = None) -> None:
        """Forget the last action; `reference` (e.g. the measured joint positions) becomes
        the slew-limit reference for the next action."""
        if reference is not None:
            reference = np.asarray(reference, dtype=np.float64)
            if reference.shape != (self.dim,) or not np.all(np.isfinite(reference)):
                raise ValueError(f'safety reference must be a finite ({self.dim},) vector')
            reference = np.clip(reference, self.lower, self.upper)
        self._last = reference

    def _filter(self, action: np.ndarray, last: Optional[np.ndarray],
                counts: Optional[SafetyCounts]) -> Optional[np.ndarray]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.dim,):
            raise ValueError(f'action must have shape ({self.dim},), got {action.shape}')
        if not np.all(np.isfinite(action)):
            if counts is not None:
                counts.rejected_nonfinite += 1
            return None if last is None else last
        changed = False
        if last is not None:
            step = np.clip(action - last, -self.max_step, self.max_step)
            limited = last + step
            if np.any(limited != action):
                changed = True
                if counts is not None:
                    counts.slew_limited += 1
            action = limited
        clamped = np.clip(action, self.lower, self.upper)
        if np.any(clamped != action):
            changed = True
            if counts is not None:
                counts.position_clamped += 1
        if counts is not None and not changed:
            counts.passed += 1
        return clamped

    def apply(self, action: np.ndarray) -> Optional[np.ndarray]:
        """Filter one action and make it the new reference.

        Returns:
            The safe action (float64), or None when the action is non-finite and there is
            no previous action to hold (the caller must not command anything).
        """
        out = self._filter(action, self._last, self.counts)
        if out is not None:
            self._last = out
        return None if out is None else out.copy()

    def preview(self, actions: np.ndarray) -> np.ndarray:
        """Filter a sequence as if sent tick by tick, without changing state or counts.

        Used to publish a trajectory of planned actions that the controller will follow.
        Rows that cannot be made safe (non-finite with no reference) are dropped.
        """
        last = self._last
        out = []
        for action in np.asarray(actions):
            filtered = self._filter(action, last, None)
            if filtered is None:
                continue
            out.append(filtered)
            last = filtered
        return np.asarray(out, dtype=np.float64).reshape(-1, self.dim)
