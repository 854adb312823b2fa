"""FrameRing: frames written once into shared memory, never overwritten while a cache, a
history or a pending request holds them, and read by the inference process by slot."""
import pickle
import time

import numpy as np
import pytest

from env_actor.runtime.frame_ring import FrameRing, FrameStack, ring_slots
from env_actor.runtime.history import ImageHistory
from env_actor.runtime.observation import ObservationCache, ObservationHistory
from env_actor.runtime.shared_arrays import SharedArrays, SharedArraysReader

SHAPE = (3, 4, 5)


def written(ring: FrameRing, value: int):
    return ring.write(lambda out: out.fill(value))


@pytest.fixture
def ring():
    frames = FrameRing(SHAPE, 3)
    yield frames
    frames.close()


def test_a_slot_is_free_again_only_when_its_last_handle_goes(ring):
    a, b, c = (written(ring, v) for v in (1, 2, 3))
    assert sorted(f.slot for f in (a, b, c)) == [0, 1, 2] and ring.free_slots == 0
    assert written(ring, 4) is None and ring.full == 1       # all pinned: refused
    assert int(a.array[0, 0, 0]) == 1 and not a.array.flags.writeable
    view = b.array[1:]                 # a view of the frame keeps its handle's array alive
    slot_b = b.slot
    del b
    assert ring.free_slots == 1        # the handle went; views do not pin the slot
    d = written(ring, 9)
    assert d.slot == slot_b and int(view[0, 0, 0]) == 9    # the slot was reused
    stack = FrameStack([a, c])
    del a, c
    assert ring.free_slots == 0        # the stack still pins both
    assert np.asarray(stack).shape == (2,) + SHAPE
    del stack
    assert ring.free_slots == 2


def test_a_failing_fill_frees_its_slot(ring):
    def bad(out):
        raise ValueError('camera head: not a jpeg')
    with pytest.raises(ValueError, match='not a jpeg'):
        ring.write(bad)
    assert ring.free_slots == 3


def test_bad_ring_sizes_are_refused():
    with pytest.raises(ValueError, match=r'\(3, H, W\)'):
        FrameRing((4, 4), 3)
    with pytest.raises(ValueError, match='at least 2 slots'):
        FrameRing(SHAPE, 1)


def test_history_of_ring_frames_snapshots_handles_oldest_first(ring):
    history = ImageHistory(num_img_obs=2, stride=1, shape=SHAPE)
    first, second = written(ring, 10), written(ring, 20)
    history.push(first)
    history.push(second)
    snap = history.snapshot()
    assert isinstance(snap, FrameStack) and snap.slots == (first.slot, second.slot)
    assert [int(f[0, 0, 0]) for f in np.asarray(snap)] == [10, 20]
    history.push(np.full(SHAPE, 30, np.uint8))    # a plain array (ring was full): a copy
    plain = history.snapshot()
    assert isinstance(plain, np.ndarray) and [int(f[0, 0, 0]) for f in plain] == [20, 30]


def test_ring_sized_for_the_history_never_runs_full_or_overwrites_a_pinned_frame():
    """A camera faster than the control loop, a strided history and requests that stay
    pending for several ticks: the writer always finds a slot, and every frame a
    request holds still has the value it had when the request was made."""
    num_img_obs, stride = 3, 2
    ring = FrameRing(SHAPE, ring_slots(num_img_obs, stride))
    cache = ObservationCache({'proprio': 1.0, 'head': 1.0})
    history = ObservationHistory(1, 1, ('head',), num_img_obs, stride, SHAPE)
    rng = np.random.default_rng(0)
    pending, value, checked = None, 0, 0
    try:
        for tick in range(400):
            for _ in range(int(rng.integers(0, 3))):     # 0-2 new frames per tick
                value = (value + 1) % 256
                cache.update('head', written(ring, value), tick)
            cache.update('proprio', np.zeros(1, np.float32), tick)
            if cache.get('head') is None:
                continue
            history.sample(cache)
            if pending is not None and tick >= pending[2]:           # the child reads now
                assert [int(f[0, 0, 0]) for f in np.asarray(pending[0])] == pending[1]
                pending, checked = None, checked + 1
            if pending is None:
                stack = history.input_data()['head']
                expected = [int(f[0, 0, 0]) for f in np.asarray(stack)]
                pending = (stack, expected, tick + int(rng.integers(1, 8)))
        assert ring.full == 0 and checked > 50
    finally:
        ring.close()


def test_requests_carry_slots_and_the_reader_gets_the_same_frames(ring):
    from env_actor.runtime.inference import InferenceRequest
    a, b = written(ring, 7), written(ring, 8)
    proprio = np.arange(4, dtype=np.float32).reshape(2, 2)
    request = InferenceRequest(3, {'head': FrameStack([a, b]), 'proprio': proprio})
    shared = SharedArrays()
    small, name, layout = shared.pack(request)
    assert name is None and layout['head'][:3] == ('frames', ring.name, (a.slot, b.slot))
    assert len(pickle.dumps(small)) < 2000           # no pixels in the pipe message
    reader = SharedArraysReader()
    try:
        data = reader.unpack(small, name, layout).input_data
        np.testing.assert_array_equal(data['head'], np.stack([a.array, b.array]))
        np.testing.assert_array_equal(data['proprio'], proprio)
    finally:
        reader.close()
        shared.close()


def test_process_worker_reads_ring_frames_like_arrays(tmp_path):
    """The inference process gets the same chunk from slot numbers as from the pixels."""
    from env_actor.runtime.inference import InferenceRequest
    from env_actor.runtime.inference_process import ProcessInferenceWorker
    from test_inference_process import tiny_act_and_expected
    path, data, expected = tiny_act_and_expected(tmp_path)
    ring = FrameRing(data['head'].shape[1:], 4)
    frames = [ring.write(lambda out, f=f: np.copyto(out, f)) for f in data['head']]
    worker = ProcessInferenceWorker(path, 'cpu', (6, 2), guided=False)
    try:
        worker.submit(InferenceRequest(0, dict(data, head=FrameStack(frames))), 0)
        del frames
        assert ring.free_slots == 4 - len(data['head'])    # pinned while pending
        deadline = time.monotonic() + 30
        while (result := worker.poll(0)) is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert result is not None and result.error is None
        np.testing.assert_allclose(result.chunk, expected, rtol=1e-5, atol=1e-6)
        del result
        assert ring.free_slots == 4                        # released with the request
    finally:
        worker.close()
        ring.close()
