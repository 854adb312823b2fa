"""History ring buffers: order, bootstrap, stride, reset, copies."""
import numpy as np
import pytest

from env_actor.runtime.history import ImageHistory, ProprioHistory
from env_actor.runtime.observation import ObservationCache, ObservationHistory


def frame(value: int, shape=(3, 2, 2)) -> np.ndarray:
    return np.full(shape, value, dtype=np.uint8)


def test_proprio_bootstraps_then_keeps_oldest_first():
    history = ProprioHistory(3, 2)
    history.push([1, 1])
    np.testing.assert_array_equal(history.view(), [[1, 1]] * 3)
    for value in (2, 3, 4, 5):
        history.push([value, -value])
    np.testing.assert_array_equal(history.view(), [[3, -3], [4, -4], [5, -5]])
    assert history.view().flags['C_CONTIGUOUS']
    np.testing.assert_array_equal(history.latest(), [5, -5])


def test_proprio_snapshot_is_private_and_reset_bootstraps_again():
    history = ProprioHistory(2, 1)
    history.push([1])
    snap = history.snapshot()
    history.push([2])
    np.testing.assert_array_equal(snap, [[1], [1]])
    history.reset()
    history.push([7])
    np.testing.assert_array_equal(history.view(), [[7], [7]])


def test_proprio_rejects_bad_samples():
    history = ProprioHistory(2, 3)
    with pytest.raises(ValueError, match=r'shape \(3,\)'):
        history.push([1, 2])
    with pytest.raises(ValueError, match='NaN'):
        history.push([1, np.nan, 2])
    with pytest.raises(ValueError, match='empty'):
        history.view()


def test_single_frame_snapshot_is_zero_copy():
    history = ImageHistory(1)
    f = frame(9)
    history.push(f)
    snap = history.snapshot()
    assert snap.shape == (1, 3, 2, 2) and np.shares_memory(snap, f)


def test_image_stride_picks_every_kth_tick_oldest_first():
    history = ImageHistory(3, stride=2)
    history.push(frame(0))
    assert [int(x[0, 0, 0]) for x in history.snapshot()] == [0, 0, 0]
    for tick in range(1, 9):
        history.push(frame(tick))
    assert [int(x[0, 0, 0]) for x in history.snapshot()] == [4, 6, 8]
    history.reset()
    history.push(frame(42))
    assert [int(x[0, 0, 0]) for x in history.snapshot()] == [42, 42, 42]


def test_image_rejects_wrong_frames():
    history = ImageHistory(2, shape=(3, 2, 2))
    with pytest.raises(ValueError, match=r'\(3, H, W\) uint8'):
        history.push(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match=r'must be \(3, 2, 2\)'):
        history.push(np.zeros((3, 4, 4), np.uint8))


@pytest.mark.parametrize('kwargs, name', [
    (dict(proprio_history_size=0), 'proprio_history_size'),
    (dict(state_dim=0), 'state_dim'),
    (dict(num_img_obs=0), 'num_img_obs'),
    (dict(image_stride=0), 'image_stride'),
])
def test_bad_sizes_name_the_parameter(kwargs, name):
    args = dict(proprio_history_size=2, state_dim=2, cameras=('head',), num_img_obs=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        ObservationHistory(**args)


def test_observation_history_assembles_input_data_from_cache():
    cache = ObservationCache({'proprio': 0.1, 'head': 0.2})
    history = ObservationHistory(2, 2, ('head',), 1, image_shape=(3, 2, 2))
    assert cache.stale_reason(0.0) == 'proprio missing; head missing'
    cache.update('proprio', np.array([1, 2], np.float32), 0.0)
    cache.update('head', frame(5), 0.0)
    cache.update('prompt', 'pick the cube', 0.0)
    assert cache.stale_reason(0.05) is None
    assert cache.stale_reason(0.15) == 'proprio stale (0.15 s > 0.10 s)'
    history.sample(cache)
    data = history.input_data()
    assert set(data) == {'proprio', 'head', 'prompt'}
    assert data['proprio'].shape == (2, 2) and data['head'].shape == (1, 3, 2, 2)
    assert data['prompt'] == 'pick the cube'


def test_lazy_frames_are_decoded_once_and_only_when_a_snapshot_holds_them():
    from env_actor.runtime.history import ImageHistory, LazyFrame
    calls = []

    def frame(value):
        return LazyFrame(lambda: calls.append(value) or np.full((3, 2, 2), value, np.uint8))

    history = ImageHistory(num_img_obs=2, stride=2, shape=(3, 2, 2))
    frames = [frame(v) for v in range(5)]
    for f in frames:
        history.push(f)
    assert calls == []                          # pushing decodes nothing
    snap = history.snapshot()                   # ticks 4 and 2 of 0..4
    assert [int(s[0, 0, 0]) for s in snap] == [2, 4] and sorted(calls) == [2, 4]
    history.snapshot()
    assert sorted(calls) == [2, 4]              # decoded once
    bad = ImageHistory(num_img_obs=1, shape=(3, 2, 2))
    bad.push(LazyFrame(lambda: np.zeros((3, 4, 4), np.uint8)))
    with pytest.raises(ValueError, match=r'image frame must be \(3, 2, 2\)'):
        bad.snapshot()
