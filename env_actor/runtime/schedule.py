"""The action schedule: which chunk is current and which action belongs to which tick.

One lock guards the state; the control thread reads actions, the inference result is
spliced in by the same thread (the executor polls the worker), but the schedule stays safe
if a worker thread reads `prev_action` concurrently.

Invariants (checked):
    * the current chunk is (H, action_dim) float32 and finite;
    * chunk index i belongs to control tick `start_tick + i`;
    * a spliced chunk's start tick is the tick of the observation it was computed from,
      never later than the tick it lands at.
"""
import threading
from typing import Optional

import numpy as np


class ActionSchedule:
    """Holds the current action chunk aligned to control ticks.

    Args:
        chunk_size: H.
        action_dim: length of one action.
    """

    def __init__(self, chunk_size: int, action_dim: int) -> None:
        if chunk_size < 1 or action_dim < 1:
            raise ValueError(f'action_chunk_size and action_dim must be >= 1, got '
                             f'{chunk_size}, {action_dim}')
        self.chunk_size = chunk_size
        self.action_dim = action_dim
        self._lock = threading.Lock()
        self._chunk: Optional[np.ndarray] = None
        self._start_tick = 0

    def clear(self) -> None:
        with self._lock:
            self._chunk = None
            self._start_tick = 0

    @property
    def has_chunk(self) -> bool:
        with self._lock:
            return self._chunk is not None

    @property
    def start_tick(self) -> int:
        with self._lock:
            return self._start_tick

    def executed(self, tick: int) -> int:
        """How many of the current chunk's actions belong to ticks before `tick`."""
        with self._lock:
            return 0 if self._chunk is None else tick - self._start_tick

    def action_at(self, tick: int) -> Optional[np.ndarray]:
        """The action for `tick`, or None when there is no chunk or it ran out."""
        with self._lock:
            if self._chunk is None:
                return None
            index = tick - self._start_tick
            if index < 0:
                raise ValueError(f'tick {tick} precedes the chunk start {self._start_tick}')
            return self._chunk[index] if index < self.chunk_size else None

    def remaining(self, tick: int) -> np.ndarray:
        """The actions for ticks tick, tick+1, ... up to the end of the chunk (a copy)."""
        with self._lock:
            if self._chunk is None:
                return np.zeros((0, self.action_dim), np.float32)
            return self._chunk[max(tick - self._start_tick, 0):].copy()

    def prev_action(self, tick: int) -> Optional[np.ndarray]:
        """`prev_action` for an observation at `tick`: the chunk's actions for ticks
        tick.., padded to H rows by repeating the last action (never zeros)."""
        with self._lock:
            if self._chunk is None:
                return None
            index = min(tick - self._start_tick, self.chunk_size - 1)
            rows = np.arange(index, index + self.chunk_size).clip(max=self.chunk_size - 1)
            return self._chunk[rows]

    def replace(self, chunk: np.ndarray, start_tick: int,
                blend_old_weight: float = 0.0, now_tick: Optional[int] = None) -> None:
        """Make `chunk` current with index 0 at `start_tick`.

        Args:
            chunk: (H, action_dim) finite actions.
            start_tick: tick of the observation the chunk was computed from.
            blend_old_weight: w in [0, 1); where the old chunk still has actions for a
                tick >= now_tick, use w * old + (1 - w) * new (LeRobot weighted_average).
            now_tick: the tick the chunk lands at (defaults to start_tick).
        Raises:
            ValueError: wrong shape, non-finite values, or start_tick after now_tick.
        """
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.shape != (self.chunk_size, self.action_dim):
            raise ValueError(f'chunk must be ({self.chunk_size}, {self.action_dim}), got '
                             f'{chunk.shape}')
        if not np.all(np.isfinite(chunk)):
            raise ValueError('chunk contains NaN or inf')
        now_tick = start_tick if now_tick is None else now_tick
        if start_tick > now_tick:
            raise ValueError(f'chunk start tick {start_tick} is after landing tick {now_tick}')
        with self._lock:
            if blend_old_weight > 0.0 and self._chunk is not None:
                chunk = chunk.copy()
                ticks = np.arange(now_tick, start_tick + self.chunk_size)
                old_index = ticks - self._start_tick
                keep = (old_index >= 0) & (old_index < self.chunk_size)
                new_index = ticks[keep] - start_tick
                chunk[new_index] = (blend_old_weight * self._chunk[old_index[keep]] +
                                    (1.0 - blend_old_weight) * chunk[new_index])
            self._chunk = chunk
            self._start_tick = start_tick
