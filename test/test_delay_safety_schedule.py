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


def test_delay_estimator_records_last_and_samples_and_accepts_window_one():
    est = DelayEstimator(window=1)
    assert (est.window, est.last, est.est_delay, est.samples()) == (1, None, 0, [])
    assert est.record(3) is True and (est.last, est.est_delay, est.samples()) == (3, 3, [3])
    assert est.record(9, warmup=True) is False
    assert (est.last, est.est_delay, est.samples()) == (9, 3, [3])   # last = also cold starts
    assert est.record(2) is True and est.samples() == [2] and est.est_delay == 2
    est.reset()
    assert (est.last, est.est_delay, est.samples()) == (None, 0, [])
    with pytest.raises(ValueError, match='initial_delay_steps must be >= 0, got -1'):
        DelayEstimator(initial_delay=-1)
    for bad in (True, 2.0, 0):
        with pytest.raises(ValueError, match=f'delay_window must be a positive integer, '
                                             f'got {bad!r}'):
            DelayEstimator(window=bad)
    with pytest.raises(ValueError, match='measured delay must be >= 0 steps, got -2'):
        DelayEstimator().record(-2)


def test_schedule_edges_and_messages():
    with pytest.raises(ValueError, match='action_chunk_size and action_dim must be >= 1, '
                                         'got 0, 2'):
        ActionSchedule(0, 2)
    with pytest.raises(ValueError, match='got 3, 0'):
        ActionSchedule(3, 0)
    schedule = ActionSchedule(3, 2)
    assert not schedule.has_chunk and schedule.executed(7) == 0
    assert schedule.action_at(7) is None and schedule.prev_action(7) is None
    empty = schedule.remaining(7)
    assert empty.shape == (0, 2) and empty.dtype == np.float32
    chunk = np.arange(6, dtype=np.float64).reshape(3, 2)        # rows [0 1] [2 3] [4 5]
    schedule.replace(chunk, 10, now_tick=12)
    assert schedule.has_chunk and schedule.start_tick == 10 and schedule.executed(12) == 2
    np.testing.assert_array_equal(schedule.action_at(10), [0, 1])
    np.testing.assert_array_equal(schedule.action_at(12), [4, 5])
    assert schedule.action_at(13) is None
    with pytest.raises(ValueError, match='tick 9 precedes the chunk start 10'):
        schedule.action_at(9)
    np.testing.assert_array_equal(schedule.remaining(8), chunk)   # before start: all
    out = schedule.remaining(11)
    out[:] = -1                                                  # a copy
    np.testing.assert_array_equal(schedule.remaining(11), chunk[1:])
    np.testing.assert_array_equal(schedule.prev_action(10), chunk)
    np.testing.assert_array_equal(schedule.prev_action(11), chunk[[1, 2, 2]])
    np.testing.assert_array_equal(schedule.prev_action(30), chunk[[2, 2, 2]])
    with pytest.raises(ValueError, match=r'chunk must be \(3, 2\), got \(2, 2\)'):
        schedule.replace(chunk[:2], 12)
    with pytest.raises(ValueError, match='chunk start tick 13 is after landing tick 12'):
        schedule.replace(chunk, 13, now_tick=12)
    schedule.clear()
    assert not schedule.has_chunk and schedule.start_tick == 0


def test_schedule_blend_touches_only_ticks_both_chunks_cover():
    schedule = ActionSchedule(4, 1)
    new = np.full((4, 1), 10.0)
    schedule.replace(new, 0, blend_old_weight=0.5, now_tick=0)    # nothing to blend with
    np.testing.assert_array_equal(schedule.remaining(0)[:, 0], [10, 10, 10, 10])
    schedule.replace(np.arange(4.0)[:, None], 0)                   # old: ticks 0..3 = 0..3
    schedule.replace(new, 2, blend_old_weight=0.25, now_tick=3)    # new: ticks 2..5
    # tick 3: old index 3 (= 3) -> 0.25 * 3 + 0.75 * 10; ticks 4, 5: the old one ran out
    np.testing.assert_allclose(schedule.remaining(3)[:, 0], [8.25, 10, 10])
    np.testing.assert_array_equal(schedule.action_at(2), [10.0])   # before landing: new
    schedule.replace(np.zeros((4, 1)), 3, blend_old_weight=0.0, now_tick=3)
    np.testing.assert_array_equal(schedule.remaining(3)[:, 0], [0, 0, 0, 0])


def test_safety_counts_every_intervention_and_clamps_both_limits():
    safety = SafetyFilter(2, lower=[-1.0, 0.0], upper=[1.0, 2.0])
    np.testing.assert_array_equal(safety.apply([-3.0, 1.0]), [-1.0, 1.0])   # lower clamp
    np.testing.assert_array_equal(safety.apply([0.5, 5.0]), [0.5, 2.0])     # upper clamp
    np.testing.assert_array_equal(safety.apply([0.5, 1.0]), [0.5, 1.0])
    np.testing.assert_array_equal(safety.apply([0.2, 1.5]), [0.2, 1.5])
    assert safety.apply([np.nan, 1.0]) is not None
    assert safety.apply([np.inf, 1.0]) is not None
    assert safety.counts.as_dict() == {'rejected_nonfinite': 2, 'slew_limited': 0,
                                       'position_clamped': 2, 'passed': 2}
    out = safety.apply(np.array([0.1, 1.0], np.float32))
    assert out.dtype == np.float64 and safety.last.dtype == np.float64
    out[:] = 99                                   # the caller's copy, not the reference
    np.testing.assert_array_equal(safety.last, np.array([0.1, 1.0], np.float32))
    with pytest.raises(ValueError, match=r'action must have shape \(2,\), got \(3,\)'):
        safety.apply([0.0, 0.0, 0.0])


def test_safety_limits_scalar_or_per_joint_and_named_errors():
    safety = SafetyFilter(3, lower=-0.5, upper=[1.0, 2.0, 3.0], max_velocity=2.0,
                          control_period=0.5)
    np.testing.assert_array_equal(safety.lower, [-0.5] * 3)
    np.testing.assert_array_equal(safety.upper, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(safety.max_step, [1.0] * 3)
    unbounded = SafetyFilter(2)
    assert np.all(np.isinf(unbounded.max_step)) and np.all(unbounded.lower == -np.inf)
    assert np.all(unbounded.upper == np.inf)
    with pytest.raises(ValueError, match=r'safety.position_lower exceeds '
                                         r'safety.position_upper at joints \[1\]'):
        SafetyFilter(2, lower=[0.0, 3.0], upper=[1.0, 2.0])
    with pytest.raises(ValueError, match='safety.position_lower has 3 entries but '
                                         'action_dim is 2'):
        SafetyFilter(2, lower=[0, 0, 0])
    with pytest.raises(ValueError, match='action_dim must be >= 1, got 0'):
        SafetyFilter(0)
    with pytest.raises(ValueError, match=r'control_period must be > 0 s, got -1'):
        SafetyFilter(1, control_period=-1)
    limits = [0.0, 1.0]
    filtered = SafetyFilter(2, lower=limits)
    limits[0] = 5.0                                   # the filter keeps its own copy
    assert filtered.lower[0] == 0.0


def test_safety_reset_reference_is_clipped_and_validated():
    safety = SafetyFilter(2, lower=-1.0, upper=1.0, max_velocity=1.0, control_period=0.1)
    safety.reset([3.0, -0.5])                          # outside the limits: clipped
    np.testing.assert_array_equal(safety.last, [1.0, -0.5])
    np.testing.assert_allclose(safety.apply([0.0, 0.0]), [0.9, -0.4])
    for bad in ([0.0], [np.nan, 0.0]):
        with pytest.raises(ValueError, match=r'safety reference must be a finite \(2,\) '
                                             r'vector'):
            safety.reset(bad)
    safety.reset(None)
    assert safety.last is None
    np.testing.assert_array_equal(safety.apply([0.7, 0.7]), [0.7, 0.7])  # no reference


def test_safety_preview_skips_nonfinite_rows_and_keeps_going():
    safety = SafetyFilter(1, max_velocity=1.0, control_period=1.0)
    rows = np.array([[np.nan], [0.5], [np.inf], [3.0]])
    # no reference yet: the NaN row is dropped, the rest is limited from 0.5 on
    np.testing.assert_array_equal(safety.preview(rows)[:, 0], [0.5, 0.5, 1.5])
    safety.reset([0.0])
    np.testing.assert_array_equal(safety.preview(rows)[:, 0], [0.0, 0.5, 0.5, 1.5])
    assert safety.preview(np.zeros((0, 1))).shape == (0, 1)


def test_schedule_minimal_sizes_dtype_and_blend_at_the_old_start():
    tiny = ActionSchedule(1, 1)
    assert tiny.start_tick == 0 and not tiny.has_chunk
    tiny.replace(np.array([[2.0]]), 0)
    assert tiny.action_at(0).dtype == np.float32
    with pytest.raises(ValueError, match='^chunk contains NaN or inf$'):
        tiny.replace(np.array([[np.inf]]), 1)
    schedule = ActionSchedule(3, 1)
    schedule.replace(np.array([[1.0], [2.0], [3.0]]), 5)
    # a new chunk observed at 5 that lands at 5 overlaps the old one from its index 0
    schedule.replace(np.full((3, 1), 9.0), 5, blend_old_weight=0.5, now_tick=5)
    np.testing.assert_allclose(schedule.remaining(5)[:, 0], [5.0, 5.5, 6.0])


def test_safety_defaults_locked_joint_and_lower_clip_of_the_reference():
    assert SafetyFilter(1, max_velocity=0.5).max_step[0] == 0.5        # period default 1 s
    locked = SafetyFilter(2, lower=[0.5, -1.0], upper=[0.5, 1.0])       # lower == upper
    np.testing.assert_array_equal(locked.apply([3.0, 0.0]), [0.5, 0.0])
    locked.reset([-4.0, -4.0])
    np.testing.assert_array_equal(locked.last, [0.5, -1.0])
    with pytest.raises(ValueError, match='^safety.max_velocity must be > 0$'):
        SafetyFilter(1, max_velocity=-1.0)
    with pytest.raises(ValueError, match=r'at joints \[1\]$'):       # equal is allowed
        SafetyFilter(2, lower=[0.5, 3.0], upper=[0.5, 2.0])
    assert DelayEstimator().window == 5


def test_safety_set_limits_keeps_the_reference_and_counts():
    safety = SafetyFilter(2, max_velocity=1.0, control_period=0.1)
    safety.reset([0.0, 0.0])
    safety.apply([1.0, 0.0])                                  # slew-limited: 0.1
    safety.set_limits(SafetyFilter(2, lower=-0.5, upper=0.5, max_velocity=2.0,
                                   control_period=0.1))
    np.testing.assert_allclose(safety.last, [0.1, 0.0])
    np.testing.assert_allclose(safety.apply([1.0, -1.0]), [0.3, -0.2])
    assert safety.counts.slew_limited == 2
    np.testing.assert_allclose(safety.max_velocity, [2.0, 2.0])
    np.testing.assert_allclose(safety.apply([1.0, -1.0]), [0.5, -0.4])   # upper clamp
    with pytest.raises(ValueError, match='limits for 3 joints, the filter has 2'):
        safety.set_limits(SafetyFilter(3))
