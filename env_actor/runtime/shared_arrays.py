"""Large request arrays to the inference process through shared memory, not the pipe.

The parent copies every array of at least `MIN_SHARED_BYTES` (camera histories, long
proprio histories) into one shared-memory block and sends only a small layout
(name -> offset, shape, dtype) with the request; the child reads them from the same
block. Nothing of image size is pickled or written through the pipe on the control tick:
the cost there is one memcpy per array. The block grows (a new one) when a request does
not fit; the parent owns and unlinks it, the child only attaches.

Safe to reuse for the next request because the worker serves one request at a time: the
parent writes again only after the child has answered the previous one.
"""
from dataclasses import replace
from multiprocessing import shared_memory
from typing import Optional

import numpy as np

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
            layout: key -> (offset, shape, dtype string)).
        """
        large = {k: np.ascontiguousarray(v) for k, v in request.input_data.items()
                 if isinstance(v, np.ndarray) and v.nbytes >= self.min_bytes}
        if not large:
            return request, None, {}
        offsets, total = {}, 0
        for key, array in large.items():
            offsets[key] = total
            total += (array.nbytes + 63) // 64 * 64      # 64-byte aligned slots
        if self._block is None or self._block.size < total:
            self.close()
            self._block = shared_memory.SharedMemory(create=True, size=max(total, 1) * 2)
        layout = {}
        for key, array in large.items():
            start = offsets[key]
            target = np.ndarray(array.shape, array.dtype, self._block.buf, start)
            target[...] = array
            layout[key] = (start, array.shape, array.dtype.str)
        small = {k: v for k, v in request.input_data.items() if k not in large}
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
        self._block: Optional[shared_memory.SharedMemory] = None

    def unpack(self, request, name: Optional[str], layout: dict):
        """The request with its large arrays copied back out of shared memory."""
        if name is None:
            return request
        if self._block is None or self._block.name != name:
            self.close()
            # attaching registers the name with the resource tracker that a spawned child
            # shares with its parent, where the parent's registration already is: the
            # parent's unlink removes it (unregistering here would remove it twice)
            self._block = shared_memory.SharedMemory(name=name)
        data = dict(request.input_data)
        for key, (start, shape, dtype) in layout.items():
            data[key] = np.ndarray(tuple(shape), np.dtype(dtype), self._block.buf,
                                   start).copy()
        return replace(request, input_data=data)

    def close(self) -> None:
        if self._block is not None:
            self._block.close()
            self._block = None
