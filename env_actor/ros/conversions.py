"""Message <-> NumPy conversions. No decisions: errors are raised as ValueError with the
field at fault, and the node reports them.

Image decoding lives in the ROS-free `env_actor.runtime.images` (training and offline
evaluation use it without ROS message packages); it is re-exported here.
"""
from typing import Optional, Sequence

import numpy as np

from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from env_actor.runtime.images import (  # noqa: F401 (re-exported)
    compressed_to_chw, image_to_chw, SUPPORTED_ENCODINGS)

JOINT_FIELDS = ('position', 'velocity', 'effort')


class JointStateConverter:
    """Builds the proprio vector from parameter-listed joint names and fields.

    Args:
        names: joints in proprio order.
        fields: subset of position / velocity / effort; the vector is all joints' first
            field, then all joints' second field, ...
    Raises:
        ValueError: empty or duplicate names, unknown fields.
    """

    def __init__(self, names: Sequence[str], fields: Sequence[str] = ('position',)) -> None:
        if not names:
            raise ValueError('state_joint_names is empty')
        if len(set(names)) != len(names):
            raise ValueError(f'state_joint_names has duplicates: {list(names)}')
        unknown = [f for f in fields if f not in JOINT_FIELDS]
        if not fields or unknown:
            raise ValueError(f'state_fields must be a non-empty subset of {JOINT_FIELDS}, '
                             f'got {list(fields)}')
        self.names = list(names)
        self.fields = list(fields)
        self._index_cache: dict[tuple, np.ndarray] = {}

    @property
    def dim(self) -> int:
        return len(self.names) * len(self.fields)

    def position_indices(self, joints: Sequence[str]) -> np.ndarray:
        """Where each of `joints` has its measured position in the proprio vector.

        Raises:
            ValueError: 'position' is not a state field, or joints not in the state list
                (named).
        """
        if 'position' not in self.fields:
            raise ValueError(f"state_fields {self.fields} has no 'position': the action "
                             'joints have no measured position')
        missing = [n for n in joints if n not in self.names]
        if missing:
            raise ValueError(f'action joints {missing} are not in state_joint_names: they '
                             'have no measured position')
        offset = self.fields.index('position') * len(self.names)
        return np.array([offset + self.names.index(n) for n in joints], dtype=np.int64)

    def _indices(self, msg_names: Sequence[str]) -> np.ndarray:
        key = tuple(msg_names)
        cached = self._index_cache.get(key)
        if cached is None:
            lookup = {name: i for i, name in enumerate(msg_names)}
            missing = [n for n in self.names if n not in lookup]
            if missing:
                raise ValueError(f'joint_states lacks joints {missing} (message has '
                                 f'{list(msg_names)})')
            cached = np.array([lookup[n] for n in self.names])
            if len(self._index_cache) > 8:
                self._index_cache.clear()
            self._index_cache[key] = cached
        return cached

    def to_vector(self, msg) -> np.ndarray:
        """sensor_msgs/JointState -> (dim,) float32.

        Raises:
            ValueError: missing joints, a field shorter than `name`, NaN/inf values.
        """
        idx = self._indices(msg.name)
        parts = []
        for field in self.fields:
            values = np.asarray(getattr(msg, field), dtype=np.float64)
            if values.shape[0] != len(msg.name):
                raise ValueError(f'joint_states.{field} has {values.shape[0]} values for '
                                 f'{len(msg.name)} names')
            parts.append(values[idx])
        vector = np.concatenate(parts).astype(np.float32)
        if not np.all(np.isfinite(vector)):
            bad = [f'{self.fields[i // len(self.names)]}:{self.names[i % len(self.names)]}'
                   for i in np.flatnonzero(~np.isfinite(vector))]
            raise ValueError(f'joint_states has NaN/inf in {bad}')
        return vector


def seconds_to_duration(seconds: float) -> Duration:
    nanos = int(round(seconds * 1e9))
    return Duration(sec=nanos // 1_000_000_000, nanosec=nanos % 1_000_000_000)


def plan_velocities(points: np.ndarray, dt: float,
                    before: Optional[np.ndarray] = None) -> np.ndarray:
    """Velocities of positions sampled every `dt`: central differences inside, the first
    point from `before` (the position one `dt` earlier) when known and a forward
    difference otherwise, zero at the last point (the plan ends there; Jazzy's JTC rejects
    a non-zero final velocity by default).

    Args:
        points: (N, J) positions.
        dt: seconds between points.
        before: (J,) position one `dt` before the first point, or None.

    Returns:
        (N, J) velocities.
    """
    points = np.asarray(points, dtype=np.float64)
    velocities = np.zeros_like(points)
    if len(points) < 2:
        return velocities
    velocities[1:-1] = (points[2:] - points[:-2]) / (2.0 * dt)
    velocities[0] = ((points[1] - before) / (2.0 * dt) if before is not None
                     else (points[1] - points[0]) / dt)
    return velocities


def chunk_to_trajectory(actions: np.ndarray, joint_names: Sequence[str], dt: float,
                        stamp: Optional[Time] = None, start: Optional[np.ndarray] = None,
                        before: Optional[np.ndarray] = None,
                        velocities: bool = False) -> JointTrajectory:
    """Actions for ticks k, k+1, ... -> JointTrajectory with points at dt, 2 dt, ...

    With `start` (the position commanded until now: the last action sent, or the measured
    position when nothing was sent yet) the trajectory begins with `start` at time 0, so a
    joint_trajectory_controller that replaces its running trajectory continues from the
    command it was following instead of from the measured state.

    Args:
        actions: (N, J) actions for the coming ticks.
        joint_names: J names, the order of the columns.
        dt: control period, s.
        stamp: header.stamp; None is time 0 (the controller starts on arrival).
        start: (J,) first point at time 0, or None.
        before: (J,) the command one tick before `start` (for its velocity), or None.
        velocities: add finite-difference velocities (`plan_velocities`).

    Raises:
        ValueError: actions do not match the joint names.
    """
    actions = np.asarray(actions, dtype=np.float64)
    if actions.ndim != 2 or actions.shape[1] != len(joint_names):
        raise ValueError(f'actions {actions.shape} do not match {len(joint_names)} joint names')
    points = actions if start is None else np.vstack([np.asarray(start, np.float64)[None],
                                                      actions])
    first_time = 0.0 if start is not None else dt
    rates = plan_velocities(points, dt, before if start is not None else None) \
        if velocities else None
    msg = JointTrajectory()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.joint_names = list(joint_names)
    msg.points = [JointTrajectoryPoint(
        positions=row.tolist(),
        velocities=[] if rates is None else rates[i].tolist(),
        time_from_start=seconds_to_duration(first_time + i * dt))
        for i, row in enumerate(points)]
    return msg


def action_to_command(action: np.ndarray) -> Float64MultiArray:
    return Float64MultiArray(data=np.asarray(action, dtype=np.float64).tolist())


def diagnostic_status(name: str, level: int, message: str, values: dict,
                      hardware_id: str = '') -> DiagnosticStatus:
    return DiagnosticStatus(level=bytes([level]) if isinstance(level, int) else level,
                            name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=str(k), value=str(v))
                                    for k, v in values.items()])
