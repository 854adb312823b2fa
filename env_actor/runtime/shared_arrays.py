"""Large request arrays to the inference process through shared memory, not the pipe.

The parent copies every array of at least `MIN_SHARED_BYTES` (camera histories, long
proprio histories) into one shared-memory block and sends only a small layout
(name -> offset, shape, dtype) with the request; the child reads them from the same
block. Nothing of image size is pickled or written through the pipe on the control tick:
the cost there is one memcpy per array. The block grows (a new one) when a request does
not fit; the parent owns and unlinks it, the child only attaches.

Camera frames that already live in a shared-memory `FrameRing` (a `FrameStack` in the
request) are not copied at all: the layout names the ring's block and the slots, and the
child reads the frames from there.

Safe to reuse for the next request because the worker serves one request at a time: the
parent writes again only after the child has answered the previous one.
"""
from dataclasses import replace
from multiprocessing import shared_memory
from typing import Optional

import numpy as np

from env_actor.runtime.frame_ring import FrameStack, read_frames

MIN_SHARED_BYTES = 16384


class SharedArrays:
    """The parent side: owns the block, packs requests into it.

    Args:
        min_bytes: arrays at least this large go through shared memory.
    """

    def __init__(self, min_bytes: int = MIN_SHARED_BYTES) -> None:
        self.min_bytes = min_bytes
        self._block: Optional[shared_memory.SharedMemory] = None

    @property
    def name(self) -> Optional[str]:
        return None if self._block is None else self._block.name

    def pack(self, request):
        """Move the request's large arrays into shared memory.

        Args:
            request: an InferenceRequest.

        Returns:
            (the request with only small values left in input_data, block name or None,
            layout: key -> ('array', offset, shape, dtype string) for arrays in the block,
            ('frames', ring block name, slots, frame shape) for a FrameStack).
        """
        layout = {k: ('frames', v.ring_name, v.slots, v.frame_shape)
                  for k, v in request.input_data.items() if isinstance(v, FrameStack)}
        large = {k: np.ascontiguousarray(v) for k, v in request.input_data.items()
                 if isinstance(v, np.ndarray) and v.nbytes >= self.min_bytes}
        small = {k: v for k, v in request.input_data.items()
                 if k not in large and k not in layout}
        if not large:
            return replace(request, input_data=small), None, layout
        offsets, total = {}, 0
        for key, array in large.items():
            offsets[key] = total
            total += (array.nbytes + 63) // 64 * 64      # 64-byte aligned slots
        if self._block is None or self._block.size < total:
            self.close()
            self._block = shared_memory.SharedMemory(create=True, size=max(total, 1) * 2)
        for key, array in large.items():
            start = offsets[key]
            target = np.ndarray(array.shape, array.dtype, self._block.buf, start)
            target[...] = array
            layout[key] = ('array', start, array.shape, array.dtype.str)
        return replace(request, input_data=small), self._block.name, layout

    def close(self) -> None:
        """Release and unlink the block (the child's attachment closes on its side)."""
        if self._block is not None:
            self._block.close()
            try:
                self._block.unlink()
            except FileNotFoundError:
                pass
            self._block = None


class SharedArraysReader:
    """The child side: attaches to the parent's blocks by name and rebuilds requests."""

    def __init__(self) -> None:
        self._blocks: dict[str, shared_memory.SharedMemory] = {}

    def _attach(self, name: str) -> shared_memory.SharedMemory:
        block = self._blocks.get(name)
        if block is None:
            # attaching registers the name with the resource tracker that a spawned child
            # shares with its parent, where the parent's registration already is: the
            # parent's unlink removes it (unregistering here would remove it twice)
            block = self._blocks[name] = shared_memory.SharedMemory(name=name)
        return block

    def unpack(self, request, name: Optional[str], layout: dict):
        """The request with its large arrays and frames copied out of shared memory.

        Blocks no longer named (the parent grew its request block) are closed here.
        """
        used = {name} | {entry[1] for entry in layout.values() if entry[0] == 'frames'}
        for old in [n for n in self._blocks if n not in used]:
            self._blocks.pop(old).close()
        data = dict(request.input_data)
        for key, entry in layout.items():
            if entry[0] == 'frames':
                _, ring, slots, shape = entry
                data[key] = read_frames(self._attach(ring), slots, shape)
            else:
                _, start, shape, dtype = entry
                data[key] = np.ndarray(tuple(shape), np.dtype(dtype), self._attach(name).buf,
                                       start).copy()
        return replace(request, input_data=data)

    def close(self) -> None:
        for block in self._blocks.values():
            block.close()
        self._blocks = {}
