"""Offline-evaluation metrics against values computed by hand."""
import numpy as np
import pytest

from env_actor.tools.metrics import error_metrics, seam_metrics


def test_error_metrics_by_hand():
    predicted = np.array([[1.0, 0.0], [2.0, 1.0], [np.nan, 5.0], [4.0, -1.0]])
    recorded = np.array([[0.0, 0.0], [2.0, 3.0], [3.0, 5.0], [1.0, -1.0]])
    m = error_metrics(predicted, recorded, ['a', 'b'])
    # row 2 has a NaN: compared rows 0, 1, 3; errors a: 1, 0, 3; b: 0, -2, 0
    assert m['ticks_compared'] == 3
    assert m['per_joint']['a']['mae'] == pytest.approx(4 / 3)
    assert m['per_joint']['a']['rmse'] == pytest.approx(np.sqrt(10 / 3))
    assert m['per_joint']['b']['mae'] == pytest.approx(2 / 3)
    assert m['per_joint']['b']['rmse'] == pytest.approx(np.sqrt(4 / 3))
    assert m['mae_mean'] == pytest.approx(1.0)
    assert m['rmse_mean'] == pytest.approx((np.sqrt(10 / 3) + np.sqrt(4 / 3)) / 2)
    assert error_metrics(predicted[2:3], recorded[2:3], ['a', 'b']) == {'ticks_compared': 0}


def test_seam_metrics_by_hand_skipping_uncommanded_ticks():
    actions = np.array([[0.0, 0.0], [0.1, 0.0], [np.nan, np.nan], [0.5, -0.2],
                        [0.6, -0.2], [0.6, 0.4], [0.7, 0.4]])
    new_chunk = np.array([True, False, False, True, False, True, False])
    m = seam_metrics(actions, new_chunk)
    # commanded rows 0, 1, 3, 4, 5, 6; steps (max |diff| over joints): 0.1, 0.4, 0.1, 0.6,
    # 0.1; seams are the steps onto rows 3 and 5: 0.4 and 0.6
    assert m['seams'] == 2
    assert m['seam_step_mean'] == pytest.approx(0.5)
    assert m['seam_step_max'] == pytest.approx(0.6)
    assert m['inside_step_mean'] == pytest.approx(0.1)
    assert m['inside_step_max'] == pytest.approx(0.1)
    valid = actions[[0, 1, 3, 4, 5, 6]]
    third = valid[3:] - 3 * valid[2:-1] + 3 * valid[1:-2] - valid[:-3]
    assert m['jerk_mean'] == pytest.approx(np.mean(np.hypot(third[:, 0], third[:, 1])))
    assert np.isnan(seam_metrics(actions[:1], new_chunk[:1])['seam_step_mean'])


def test_demo_frame_strip_labels_each_frame_with_its_time():
    from env_actor.tools.demo import frame_strip
    frames = [(0.1 * i, np.full((64, 48, 3), 200, np.uint8)) for i in range(20)]
    strip = frame_strip(frames, count=4)
    assert strip.shape == (64, 4 * 48, 3)
    for k in range(4):
        frame = strip[:, 48 * k:48 * (k + 1)]
        assert (frame[:40] == 200).all()                 # the picture is untouched
        band = frame[-10:]
        assert band.max() == 255 and (band == 50).any()  # white text on a dark band
    # the labels differ: first frame t=0.0 s, last t=1.9 s
    assert not np.array_equal(strip[-10:, :48], strip[-10:, -48:])
    with pytest.raises(ValueError, match='no frames'):
        frame_strip([])
