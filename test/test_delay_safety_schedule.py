"""Delay estimator, safety filter and action schedule units."""
import numpy as np
import pytest

from env_actor.runtime.delay import DelayEstimator
from env_actor.runtime.safety import SafetyFilter
from env_actor.runtime.schedule import ActionSchedule


def test_delay_is_windowed_max_without_cold_start():
    est = DelayEstimator(window=3, initial_delay=2)
    assert est.est_delay == 2
    assert est.record(40, warmup=True) is False      # cold start excluded
    assert est.est_delay == 2
    for d, expected in [(3, 3), (5, 5), (1, 5), (1, 5), (1, 1)]:
        est.record(d)
        assert est.est_delay == expected
    assert est.record(9, warmup=True) is False and est.est_delay == 1
    est.reset()
    assert est.est_delay == 2 and est.record(1, warmup=True) is False


def test_single_slow_inference_leaves_after_w_samples():
    est = DelayEstimator(window=5)
    assert est.record(3, warmup=True) is False   # cold start
    delays = [3, 3, 30, 3, 3, 3, 3, 3, 3]
    seen = []
    for d in delays:
        est.record(d)
        seen.append(est.est_delay)
    assert seen == [3, 3, 30, 30, 30, 30, 30, 3, 3]


def test_delay_bad_config():
    with pytest.raises(ValueError, match='delay_window'):
        DelayEstimator(window=-1)
    with pytest.raises(ValueError, match='delay_window'):
        DelayEstimator(window=0)
    with pytest.raises(ValueError, match='measured delay'):
        DelayEstimator().record(-1)


def test_safety_slew_then_limits_and_counts():
    safety = SafetyFilter(2, lower=[-1, -1], upper=[1, 1], max_velocity=2.0,
                          control_period=0.05)          # 0.1 per tick
    safety.reset(np.array([0.0, 0.95]))
    out = safety.apply(np.array([0.5, 0.98]))
    np.testing.assert_allclose(out, [0.1, 0.98])
    out = safety.apply(np.array([0.15, 1.5]))
    np.testing.assert_allclose(out, [0.15, 1.0])
    assert safety.counts.as_dict() == {'rejected_nonfinite': 0, 'slew_limited': 2,
                                       'position_clamped': 1, 'passed': 0}


def test_safety_nan_holds_last_or_refuses():
    safety = SafetyFilter(2)
    assert safety.apply(np.array([np.nan, 0.0])) is None
    np.testing.assert_array_equal(safety.apply(np.array([0.3, 0.4])), [0.3, 0.4])
    np.testing.assert_array_equal(safety.apply(np.array([np.inf, 0.0])), [0.3, 0.4])
    assert safety.counts.rejected_nonfinite == 2


def test_safety_preview_does_not_change_state():
    safety = SafetyFilter(1, max_velocity=5.0, control_period=0.1)
    safety.apply(np.array([0.0]))
    preview = safety.preview(np.array([[2.0], [2.0], [2.0], [2.0]]))
    np.testing.assert_allclose(preview[:, 0], [0.5, 1.0, 1.5, 2.0])
    np.testing.assert_array_equal(safety.last, [0.0])
    assert safety.counts.slew_limited == 0


def test_safety_limit_sizes_are_named():
    with pytest.raises(ValueError, match='safety.position_upper has 3 entries but '
                                         'action_dim is 2'):
        SafetyFilter(2, upper=[1, 1, 1])
    with pytest.raises(ValueError, match='safety.max_velocity has 1 entries'):
        SafetyFilter(2, max_velocity=[0.1])
    with pytest.raises(ValueError, match='safety.max_velocity must be > 0'):
        SafetyFilter(2, max_velocity=[0.1, 0.0])
    with pytest.raises(ValueError, match='control_period'):
        SafetyFilter(2, max_velocity=1.0, control_period=0.0)


def test_safety_slew_limits_both_directions_per_joint_from_the_reference():
    safety = SafetyFilter(3, max_velocity=[1.0, 2.0, 4.0], control_period=0.1)
    safety.reset(np.array([1.0, 1.0, 1.0]))
    # far below the reference: every joint moves down by exactly its own step
    np.testing.assert_allclose(safety.apply(np.array([-5.0, -5.0, -5.0])), [0.9, 0.8, 0.6])
    # far above: back up by the same steps
    np.testing.assert_allclose(safety.apply(np.array([5.0, 5.0, 5.0])), [1.0, 1.0, 1.0])
    # inside the limit in both directions: passed unchanged
    np.testing.assert_allclose(safety.apply(np.array([0.95, 1.15, 0.65])), [0.95, 1.15, 0.65])
    assert safety.counts.slew_limited == 2 and safety.counts.passed == 1


def test_safety_step_is_a_velocity_times_the_period():
    for period in (0.05, 0.02, 0.01):
        safety = SafetyFilter(1, max_velocity=2.0, control_period=period)
        safety.reset(np.array([0.0]))
        out = [safety.apply(np.array([10.0]))[0] for _ in range(5)]
        np.testing.assert_allclose(np.diff([0.0] + out), 2.0 * period)


def test_schedule_alignment_prev_action_padding_and_blend():
    schedule = ActionSchedule(4, 1)
    chunk = np.arange(1, 5, dtype=np.float32)[:, None]       # ticks 10..13 -> 1..4
    schedule.replace(chunk, 10)
    assert schedule.action_at(12)[0] == 3 and schedule.action_at(14) is None
    assert schedule.executed(12) == 2
    np.testing.assert_array_equal(schedule.prev_action(12)[:, 0], [3, 4, 4, 4])
    np.testing.assert_array_equal(schedule.prev_action(20)[:, 0], [4, 4, 4, 4])
    np.testing.assert_array_equal(schedule.remaining(11)[:, 0], [2, 3, 4])
    new = np.full((4, 1), 10.0, np.float32)                  # observed at 12, lands at 13
    schedule.replace(new, 12, blend_old_weight=0.3, now_tick=13)
    # tick 13: old index 3 (=4) and new index 1 overlap -> 0.3*4 + 0.7*10
    np.testing.assert_allclose(schedule.remaining(13)[:, 0], [8.2, 10, 10], rtol=1e-6)
    with pytest.raises(ValueError, match='after landing tick'):
        schedule.replace(new, 15, now_tick=14)
    with pytest.raises(ValueError, match='NaN'):
        schedule.replace(np.full((4, 1), np.nan), 15)
