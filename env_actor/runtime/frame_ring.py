"""Camera frames in shared memory, written once, handed to the inference process by slot.

The camera (conversion) thread writes each converted frame straight into a free slot of its
camera's `FrameRing` (one shared-memory block of `slots` frames) and gets a `RingFrame`
handle back; the observation cache and the history hold handles, and an inference request
carries a `FrameStack` (the handles of the frames it uses). The process worker sends only
the block name and the slot numbers; the inference process reads the frames from the same
block. Nothing of image size is copied or serialised on the control tick.

Slot lifetime: a slot is free again when no handle to it is left (CPython frees the
handle as soon as the cache, the history and any pending request drop it), so a frame
is never overwritten while anything may still read it. The writer only takes free slots;
when none is free (a ring sized too small) `write` returns None and the caller keeps a
plain array instead, which works the old way (copied at submit).
Threading: one lock guards the free list; `write` runs on the camera thread, handles
are dropped on any thread.
"""
from multiprocessing import shared_memory
import threading
from typing import Callable, Optional, Sequence

import numpy as np


def ring_slots(num_img_obs: int, image_stride: int) -> int:
    """Slots one camera needs so a writer always finds a free one.

    Args:
        num_img_obs / image_stride: the policy's image history.

    Returns:
        The history's distinct frames + the frames of one pending request + the cache's
        newest + the one being written + 2 spare.
    """
    return (num_img_obs - 1) * image_stride + 1 + num_img_obs + 4


class RingFrame:
    """A handle to one written slot; its `array` is a read-only (3, H, W) uint8 view."""

    # the view is dropped before the ring, so the ring's block never outlives a mapping
    # it exported without being able to close
    __slots__ = ('array', 'slot', 'ring')

    def __init__(self, ring: 'FrameRing', slot: int, array: np.ndarray) -> None:
        self.ring = ring
        self.slot = slot
        self.array = array

    def __del__(self) -> None:
        self.ring.release(self.slot)


class FrameStack:
    """The frames of one camera that an inference request uses, oldest first.

    Holding it keeps the slots from being overwritten; `np.asarray(stack)` copies the
    frames into one (n, 3, H, W) array (for in-process use).
    """

    __slots__ = ('frames',)

    def __init__(self, frames: Sequence[RingFrame]) -> None:
        self.frames = tuple(frames)

    @property
    def ring_name(self) -> str:
        return self.frames[0].ring.name

    @property
    def slots(self) -> tuple[int, ...]:
        return tuple(frame.slot for frame in self.frames)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return self.frames[0].array.shape

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        stacked = np.stack([frame.array for frame in self.frames])
        return stacked if dtype is None else stacked.astype(dtype)


class FrameRing:
    """`slots` frames of `shape` uint8 in one shared-memory block.

    Args:
        shape: (3, H, W) of every frame.
        slots: how many frames the block holds (see `ring_slots`).
    Raises:
        ValueError: a shape that is not (3, H, W) or fewer than 2 slots.
    """

    def __init__(self, shape: Sequence[int], slots: int) -> None:
        shape = tuple(int(n) for n in shape)
        if len(shape) != 3 or shape[0] != 3 or min(shape) < 1:
            raise ValueError(f'frame shape must be (3, H, W), got {shape}')
        if slots < 2:
            raise ValueError(f'a frame ring needs at least 2 slots, got {slots}')
        self.shape = shape
        self.slots = int(slots)
        self.frame_bytes = int(np.prod(shape))
        self._block = shared_memory.SharedMemory(create=True,
                                                 size=self.frame_bytes * self.slots)
        self._views = [np.ndarray(shape, np.uint8, self._block.buf, i * self.frame_bytes)
                       for i in range(self.slots)]
        self._lock = threading.Lock()
        self._free = list(range(self.slots))
        self._closed = False
        self.full = 0          # writes refused because every slot was in use

    @property
    def name(self) -> str:
        return self._block.name

    @property
    def free_slots(self) -> int:
        with self._lock:
            return len(self._free)

    def write(self, fill: Callable[[np.ndarray], None]) -> Optional[RingFrame]:
        """Let `fill` write a frame into a free slot; return its handle.

        Args:
            fill: called with the slot's writable (3, H, W) uint8 view; may raise (the
                slot is then free again).

        Returns:
            The handle, or None when no slot is free or the ring is closed.
        """
        with self._lock:
            if self._closed or not self._free:
                self.full += 1
                return None
            slot = self._free.pop()
        view = self._views[slot]
        try:
            fill(view)
        except BaseException:
            self.release(slot)
            raise
        frame = view.view()
        frame.flags.writeable = False
        return RingFrame(self, slot, frame)

    def release(self, slot: int) -> None:
        """Mark a slot free (called when its last handle goes)."""
        with self._lock:
            if not self._closed:
                self._free.append(slot)

    def close(self) -> None:
        """Unlink the block; the memory goes when the last view of it does."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._views = []
        try:
            self._block.unlink()
        except FileNotFoundError:
            pass
        try:
            self._block.close()
        except BufferError:      # handles still alive: their views keep the mapping
            pass


def read_frames(block: shared_memory.SharedMemory, slots: Sequence[int],
                shape: Sequence[int]) -> np.ndarray:
    """The inference process's side: copy the frames at `slots` into (n, 3, H, W).

    Args:
        block: the ring's block, attached by name.
        slots: slot numbers, oldest frame first.
        shape: (3, H, W) of one frame.
    """
    shape = tuple(shape)
    nbytes = int(np.prod(shape))
    out = np.empty((len(slots),) + shape, np.uint8)
    for i, slot in enumerate(slots):
        out[i] = np.ndarray(shape, np.uint8, block.buf, slot * nbytes)
    return out
