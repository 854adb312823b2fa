"""Observation history ring buffers, sampled once per control tick.

Order is oldest-first everywhere: row -1 is the newest sample. A fresh (or reset) buffer
is bootstrapped by repeating its first sample, so a policy always sees a full history.

Proprio lives in a double-length buffer (each sample written twice) so the ordered history
is one contiguous slice; `snapshot()` copies it once for the inference thread.
Image frames are kept by reference (a converted frame is never mutated), so a snapshot
stacks only the frames the policy gets: with `num_img_obs == 1` it is a zero-copy view.
With `stride = k` the policy gets frames from ticks t, t-k, ..., t-(n-1)k.
A `LazyFrame` may be pushed instead of an array (offline evaluation): it is decoded, once,
only when a snapshot contains it. A `RingFrame` (a frame in shared memory, for an
inference process) may be pushed too: a snapshot of ring frames is a `FrameStack` of
handles, not a copy.
"""
from typing import Callable, Optional, Union

import numpy as np

from env_actor.runtime.frame_ring import FrameStack, RingFrame


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f'{name} must be a positive integer, got {value!r}')
    return int(value)


class ProprioHistory:
    """The last `size` proprio vectors of length `dim`.

    Raises:
        ValueError: size/dim < 1 (named `proprio_history_size` / `state_dim`), or a pushed
            sample of the wrong shape or with NaN/inf.
    """

    def __init__(self, size: int, dim: int) -> None:
        self.size = _positive('proprio_history_size', size)
        self.dim = _positive('state_dim', dim)
        self._buffer = np.zeros((2 * self.size, self.dim), dtype=np.float32)
        self._head = 0          # index of the oldest sample in the ordered window
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def reset(self) -> None:
        self._head = 0
        self._count = 0

    def push(self, sample: np.ndarray) -> None:
        sample = np.asarray(sample, dtype=np.float32)
        if sample.shape != (self.dim,):
            raise ValueError(f'proprio sample must have shape ({self.dim},), got '
                             f'{sample.shape}')
        if not np.all(np.isfinite(sample)):
            raise ValueError('proprio sample contains NaN or inf')
        if self._count == 0:
            self._buffer[:] = sample           # bootstrap: repeat the first sample
            self._head = 0
        else:
            self._buffer[self._head] = sample
            self._buffer[self._head + self.size] = sample
            self._head = (self._head + 1) % self.size
        self._count += 1

    def view(self) -> np.ndarray:
        """The ordered (size, dim) history as a view (changes on the next push)."""
        if self._count == 0:
            raise ValueError('proprio history is empty')
        return self._buffer[self._head:self._head + self.size]

    def snapshot(self) -> np.ndarray:
        """A private copy of the ordered history, safe to hand to another thread."""
        return self.view().copy()

    def latest(self) -> np.ndarray:
        return self.view()[-1]


class LazyFrame:
    """A camera frame decoded on first use, then kept.

    Args:
        decode: returns the (3, H, W) uint8 frame; may raise ValueError.
    """

    __slots__ = ('_decode', '_frame')

    def __init__(self, decode: Callable[[], np.ndarray]) -> None:
        self._decode: Optional[Callable[[], np.ndarray]] = decode
        self._frame: Optional[np.ndarray] = None

    def resolve(self) -> np.ndarray:
        """The decoded frame (decoding it now on the first call)."""
        if self._frame is None:
            self._frame = self._decode()
            self._decode = None
        return self._frame


Frame = Union[np.ndarray, LazyFrame, RingFrame]


class ImageHistory:
    """The frames a policy needs for one camera: `num_img_obs` frames `stride` ticks apart."""

    def __init__(self, num_img_obs: int, stride: int = 1,
                 shape: Optional[tuple[int, int, int]] = None) -> None:
        self.num_img_obs = _positive('num_img_obs', num_img_obs)
        self.stride = _positive('image_stride', stride)
        self.shape = shape
        self._capacity = (self.num_img_obs - 1) * self.stride + 1
        self._frames: list[Optional[np.ndarray]] = [None] * self._capacity
        self._newest = -1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def reset(self) -> None:
        self._frames = [None] * self._capacity
        self._newest = -1
        self._count = 0

    def _checked(self, frame: np.ndarray) -> np.ndarray:
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[0] != 3:
            raise ValueError(f'image frame must be (3, H, W) uint8, got {frame.shape} '
                             f'{frame.dtype}')
        if self.shape is not None and frame.shape != self.shape:
            raise ValueError(f'image frame must be {self.shape}, got {frame.shape}')
        return frame

    def _array(self, frame: Frame) -> np.ndarray:
        if isinstance(frame, LazyFrame):
            return self._checked(frame.resolve())
        return frame.array if isinstance(frame, RingFrame) else frame

    def push(self, frame: Frame) -> None:
        """Add the frame of this tick (3, H, W) uint8, kept by reference (a LazyFrame is
        checked when a snapshot decodes it)."""
        if not isinstance(frame, LazyFrame):
            self._checked(frame.array if isinstance(frame, RingFrame) else frame)
        if self._count == 0:
            self._frames = [frame] * self._capacity
            self._newest = self._capacity - 1
        else:
            self._newest = (self._newest + 1) % self._capacity
            self._frames[self._newest] = frame
        self._count += 1

    def snapshot(self) -> Union[np.ndarray, FrameStack]:
        """(num_img_obs, 3, H, W) uint8, oldest-first, safe to hand to another thread: a
        FrameStack when every frame is in one shared-memory ring."""
        if self._count == 0:
            raise ValueError('image history is empty')
        picks = [self._frames[(self._newest - (self.num_img_obs - 1 - j) * self.stride)
                              % self._capacity] for j in range(self.num_img_obs)]
        if all(isinstance(f, RingFrame) and f.ring is picks[0].ring for f in picks):
            return FrameStack(picks)
        if self.num_img_obs == 1:
            return self._array(picks[0])[np.newaxis]
        return np.stack([self._array(frame) for frame in picks])
