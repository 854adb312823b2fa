"""Executors on a simulated clock, checked index for index against the RTC
rules of docs/runtime.md.

The fake policy encodes (call j, chunk index i) as the value 1 + 1000 j + i, and reads
the tick of its observation from proprio (the test feeds proprio = tick), so every
executed action tells which chunk and index it came from.
"""
from typing import Optional

import numpy as np
import pytest

from env_actor.runtime.executor import ChunkExecutor, ExecutorConfig
from env_actor.runtime.inference import SimulatedInferenceWorker, ThreadedInferenceWorker
from env_actor.runtime.observation import ObservationCache, ObservationHistory
from env_actor.runtime.safety import SafetyFilter

A = 2
DT = 0.05


class EncodingPolicy:
    def __init__(self, chunk_size: int, fail_calls=(), nan_calls=()) -> None:
        self.chunk_size = chunk_size
        self.calls: list[dict] = []
        self.fail_calls, self.nan_calls = set(fail_calls), set(nan_calls)

    def _chunk(self, input_data, guided, extra) -> np.ndarray:
        j = len(self.calls)
        self.calls.append(dict(obs_tick=int(input_data['proprio'][-1, 0]), guided=guided,
                               **extra))
        if j in self.fail_calls:
            raise RuntimeError('model exploded')
        values = 1.0 + 1000.0 * j + np.arange(self.chunk_size, dtype=np.float32)
        chunk = np.repeat(values[:, None], A, axis=1)
        if j in self.nan_calls:
            chunk[3] = np.nan
        return chunk

    def predict(self, input_data, norm):
        return self._chunk(input_data, False, {})

    def guided_inference(self, input_data, norm, s, h):
        assert (s, h) == (self.s, self.chunk_size)
        return self._chunk(input_data, True, dict(prev=input_data['prev_action'].copy(),
                                                  est_delay=input_data['est_delay']))

    def warmup(self):
        pass

    def freeze_all_model_params(self):
        pass


def make_executor(algorithm, h, s, delay, policy=None, worker=None, **cfg):
    policy = policy or EncodingPolicy(h)
    policy.s = s
    config = ExecutorConfig(action_chunk_size=h, action_dim=A, min_num_actions_executed=s,
                            algorithm=algorithm, control_period=DT, **cfg)
    worker = worker or SimulatedInferenceWorker(policy, None, (h, A), delay, DT)
    cache = ObservationCache({'proprio': 0.2})
    history = ObservationHistory(3, A, (), 1)
    return ChunkExecutor(config, worker, cache, history, SafetyFilter(A)), policy


def drive(executor, ticks: int, start: int = 0, feed=lambda k: True):
    results = []
    for k in range(start, start + ticks):
        if feed(k):
            executor.cache.update('proprio', np.full(A, k, np.float32), k * DT)
        results.append(executor.on_tick(k * DT))
    return results


def value(r) -> Optional[float]:
    return None if r.action is None else float(r.action[0])


def expected_async(h, s, d, ticks):
    """The RTC rules in closed form: call 0 observes tick 0 and starts at its landing tick d;
    call j >= 1 observes tick d + j s, lands d ticks later and starts at its observation
    tick; each tick executes the newest landed chunk at index tick - start."""
    starts, lands = [d], [d]
    while starts[-1] + s < ticks:
        obs = starts[-1] + s
        starts.append(obs)
        lands.append(obs + d)
    out = []
    for t in range(ticks):
        j = max((i for i, land in enumerate(lands) if land <= t), default=None)
        out.append(None if j is None else 1 + 1000 * j + (t - starts[j]))
    return out, starts


@pytest.mark.parametrize('h, s', [(50, 25), (50, 35)])
@pytest.mark.parametrize('d', range(7))
def test_rtc_matches_design_index_for_index(h, s, d):
    ticks = 240
    executor, policy = make_executor('rtc', h, s, d)
    results = drive(executor, ticks)
    expected, starts = expected_async(h, s, d, ticks)
    assert [value(r) for r in results] == expected
    # never misses a tick once the first chunk landed, never a padded or zero action
    assert all(r.state == 'commanding' for r in results[d:])
    assert all(r.action is None for r in results[:d])
    indices = [(v - 1) % 1000 for v in expected if v is not None]
    assert max(indices) < h and min(v for v in expected if v is not None) >= 1
    assert executor.stats.starved_ticks == 0
    # each guided call saw the observation of its start tick, prev_action aligned to it
    # (previous chunk from index s on, padded by holding its last action) and est_delay
    assert policy.calls[0]['guided'] is False and policy.calls[0]['obs_tick'] == 0
    for j, call in enumerate(policy.calls[1:], start=1):
        assert call['guided'] and call['obs_tick'] == starts[j]
        prev_index = np.minimum(np.arange(s, s + h), h - 1)
        np.testing.assert_array_equal(call['prev'][:, 0], 1 + 1000 * (j - 1) + prev_index)
        assert call['est_delay'] == (0 if j == 1 else d)
    assert list(executor.stats.delays) == [d] * len(executor.stats.delays)


@pytest.mark.parametrize('d', [0, 3, 6])
def test_naive_async_same_timing_without_guidance(d):
    executor, policy = make_executor('naive_async', 50, 25, d)
    results = drive(executor, 150)
    assert [value(r) for r in results] == expected_async(50, 25, d, 150)[0]
    assert not any(call['guided'] for call in policy.calls)


def test_blend_averages_overlap_old_03_new_07():
    h, s, d = 10, 4, 2
    executor, _ = make_executor('blend', h, s, d)
    results = drive(executor, 12)
    # call 0 starts at tick 2; call 1 observes tick 6, lands tick 8, starts at tick 6.
    # Ticks 8..11 are in both chunks: old index t - 2, new index t - 6.
    for t in range(8, 12):
        old, new = 1 + (t - 2), 1001 + (t - 6)
        assert value(results[t]) == pytest.approx(0.3 * old + 0.7 * new, rel=1e-6)
    assert value(results[7]) == 1 + 5


@pytest.mark.parametrize('d', [0, 2, 5])
def test_sequential_blocks_while_inferring(d):
    h, s, ticks = 50, 25, 200
    executor, policy = make_executor('sequential', h, s, d)
    results = drive(executor, ticks)
    period = s + d
    for t, r in enumerate(results):
        j, index = divmod(t, period)
        index -= d
        if index < 0:
            assert r.action is None and r.state == ('waiting' if j == 0 else 'blocked')
        else:
            assert value(r) == 1 + 1000 * j + index
    assert executor.stats.blocked_ticks == d * (ticks // period - 1) + min(ticks % period, d)
    assert [c['obs_tick'] for c in policy.calls] == [j * period for j in range(len(
        policy.calls))]


def test_same_fake_policy_drives_every_algorithm():
    for algorithm in ('sequential', 'rtc', 'naive_async', 'blend'):
        executor, policy = make_executor(algorithm, 20, 8, 2)
        results = drive(executor, 60)
        assert executor.stats.commanded > 30 and len(policy.calls) >= 4, algorithm
        assert all(np.isfinite(r.action).all() for r in results if r.action is not None)


def test_rtc_starvation_holds_last_action_and_counts():
    h, s, d = 10, 6, 7            # delay longer than the H - s actions left
    executor, _ = make_executor('rtc', h, s, d)
    results = drive(executor, 40)
    starved = [r for r in results if r.state == 'starved']
    assert starved and executor.stats.starved_ticks == len(starved)
    for i, r in enumerate(results):
        if r.state == 'starved':
            previous = results[i - 1]
            np.testing.assert_array_equal(r.action, previous.action)
    assert all(value(r) is not None for r in results[d:])


def test_single_slow_inference_does_not_inflate_est_delay_beyond_w():
    delays = [3, 3, 3, 30] + [3] * 40        # call 3 is 10x slow
    executor, policy = make_executor('rtc', 100, 40, lambda i: delays[i], delay_window=5)
    est_after_landing = []
    for k in range(900):
        executor.cache.update('proprio', np.full(A, k, np.float32), k * DT)
        result = executor.on_tick(k * DT)
        if result.new_chunk:
            est_after_landing.append(executor.est_delay)
    # landings: call 0 (cold, excluded), 1, 2, 3 (slow), then 4..: window max falls back
    # to 3 once 5 normal delays followed the slow one
    assert est_after_landing[:10] == [0, 3, 3, 30, 30, 30, 30, 30, 3, 3]


def test_policy_errors_and_nan_are_never_commanded():
    executor, policy = make_executor('rtc', 10, 5, 1,
                                     policy=EncodingPolicy(10, fail_calls={1},
                                                           nan_calls={2}))
    results = drive(executor, 40)
    assert executor.stats.policy_errors == 2
    assert 'model exploded' in executor.stats.last_error or 'NaN' in executor.stats.last_error
    assert all(np.isfinite(r.action).all() for r in results if r.action is not None)
    assert all(value(r) is not None for r in results[1:])    # kept executing / holding


def test_stale_input_stops_commanding_then_resumes_fresh():
    executor, policy = make_executor('rtc', 20, 8, 2)
    gap = range(30, 40)
    results = drive(executor, 70, feed=lambda k: k not in gap)
    # last sample at tick 29, max age 0.2 s: stale from tick 34 (age 0.25 s) to 39
    stale = [i for i, r in enumerate(results) if r.state == 'stale']
    assert stale == list(range(34, 40))
    assert "proprio stale (0.25 s > 0.20 s)" in results[34].reason
    # resumes with a cold-start predict on fresh observations, waiting d ticks for it
    assert [r.state for r in results[40:42]] == ['waiting', 'waiting']
    assert results[42].state == 'commanding'
    # the first action of the run and the first after the spell are restarts, no other
    assert [i for i, r in enumerate(results) if r.restart] == [2, 42]
    resumed = [c for c in policy.calls if c['obs_tick'] == 40]
    assert len(resumed) == 1 and resumed[0]['guided'] is False


def test_reset_episode_clears_chunk_and_delay_window():
    executor, policy = make_executor('rtc', 20, 8, 2)
    drive(executor, 40)
    assert executor.est_delay == 2
    executor.reset_episode(reference=np.zeros(A))
    assert executor.est_delay == 0 and not executor.schedule.has_chunk
    results = drive(executor, 5, start=40)
    assert [r.state for r in results] == ['waiting', 'waiting', 'commanding',
                                          'commanding', 'commanding']


def test_threaded_worker_delivers_the_same_chunks():
    policy = EncodingPolicy(10)
    worker = ThreadedInferenceWorker(policy, None, (10, A))
    executor, _ = make_executor('rtc', 10, 5, 0, policy=policy, worker=worker)
    try:
        for k in range(30):
            executor.cache.update('proprio', np.full(A, k, np.float32), k * DT)
            if worker.busy:
                assert worker.wait(5.0)
            executor.on_tick(k * DT)
    finally:
        worker.close()
    assert len(policy.calls) >= 5 and executor.stats.commanded >= 25


@pytest.mark.parametrize('cfg, name', [
    (dict(min_num_actions_executed=11), 'min_num_actions_executed'),
    (dict(delay_window=-1), 'delay_window'),
    (dict(algorithm='magic'), "algorithm 'magic'"),
    (dict(control_period=0.0), 'control_period'),
])
def test_bad_config_names_the_parameter(cfg, name):
    base = dict(action_chunk_size=10, action_dim=A, min_num_actions_executed=5)
    base.update(cfg)
    with pytest.raises(ValueError, match=name):
        ExecutorConfig(**base).validate()


def test_mismatched_action_dim_between_policy_and_limits():
    config = ExecutorConfig(action_chunk_size=10, action_dim=3, min_num_actions_executed=5)
    with pytest.raises(ValueError, match='safety limits have 2 entries but the policy '
                                         'action_dim is 3'):
        ChunkExecutor(config, None, ObservationCache({}), ObservationHistory(1, 1, (), 1),
                      SafetyFilter(2))


def limited_executor(h=10, s=5, delay=1):
    """An executor whose first actions must be limited (0.1 per tick) against proprio."""
    policy = EncodingPolicy(h)
    policy.s = s
    config = ExecutorConfig(action_chunk_size=h, action_dim=A, min_num_actions_executed=s,
                            algorithm='rtc', control_period=DT)
    worker = SimulatedInferenceWorker(policy, None, (h, A), delay, DT)
    safety = SafetyFilter(A, max_velocity=2.0, control_period=DT)
    executor = ChunkExecutor(config, worker, ObservationCache({'proprio': 0.2}),
                             ObservationHistory(3, A, (), 1), safety, reference_index=[1, 0])
    return executor


def test_first_action_is_limited_against_the_measured_positions_both_ways():
    executor = limited_executor()
    # the robot is at [5, -5] (proprio order is reversed w.r.t. the actions) and the policy
    # asks for ~1: the first commanded actions walk from the measurement by 0.1 per tick,
    # down on one joint and up on the other
    measured = np.array([-5.0, 5.0], np.float32)
    actions = []
    for k in range(5):                        # the second chunk (values ~1000) lands later
        executor.cache.update('proprio', measured, k * DT)
        result = executor.on_tick(k * DT)
        if result.action is not None:
            actions.append(result.action)
    np.testing.assert_allclose(actions[0], [4.9, -4.9])
    np.testing.assert_allclose(np.diff(np.array(actions), axis=0), [[-0.1, 0.1]] * 3,
                               atol=1e-9)


def test_reset_and_stale_recovery_take_the_new_measurement_as_reference():
    executor = limited_executor()
    k = 0

    def run(ticks, proprio, feed=True):
        nonlocal k
        out = []
        for _ in range(ticks):
            if feed:
                executor.cache.update('proprio', np.asarray(proprio, np.float32), k * DT)
            out.append(executor.on_tick(k * DT))
            k += 1
        return [r.action for r in out if r.action is not None]

    run(30, [1.0, 1.0])                       # converged near the policy's actions
    executor.reset_episode()
    first = run(5, [3.0, -2.0])[0]            # robot was moved while the episode restarted
    np.testing.assert_allclose(first, [-1.9, 3.1])     # the policy now asks for ~1000+
    run(8, None, feed=False)                  # joint states stop: stale, nothing commanded
    first = run(5, [-2.5, 0.5])[0]            # they come back from somewhere else
    np.testing.assert_allclose(first, [0.6, -2.4])


class BlockingPolicy(EncodingPolicy):
    """Every call after the first blocks until `release` is set."""

    def __init__(self, chunk_size: int) -> None:
        super().__init__(chunk_size)
        import threading
        self.release = threading.Event()
        self.blocked = threading.Event()

    def _chunk(self, input_data, guided, extra):
        if self.calls:
            self.blocked.set()
            assert self.release.wait(30)
        return super()._chunk(input_data, guided, extra)


def test_the_control_tick_never_waits_for_inference():
    import threading
    policy = BlockingPolicy(10)
    worker = ThreadedInferenceWorker(policy, None, (10, A))
    executor, _ = make_executor('rtc', 10, 5, 0, policy=policy, worker=worker)
    states = []

    def ticks(start, count):
        for k in range(start, start + count):
            executor.cache.update('proprio', np.full(A, k, np.float32), k * DT)
            states.append(executor.on_tick(k * DT).state)
    try:
        executor.cache.update('proprio', np.zeros(A, np.float32), 0.0)
        executor.on_tick(0.0)                          # submits the cold start
        assert worker.wait(5.0)
        ticks(1, 6)                                    # s = 5 executed: inference starts
        assert policy.blocked.wait(5)
        # 14 more ticks while that inference is blocked: none may wait for it
        runner = threading.Thread(target=ticks, args=(7, 14))
        runner.start()
        runner.join(timeout=10)
        assert not runner.is_alive() and not policy.release.is_set()
        # the first chunk landed at tick 1 and covers ticks 1..10; then the last action
        # is held (starved) on every tick while the next inference is still blocked
        assert states[:10] == ['commanding'] * 10
        assert set(states[10:]) == {'starved'} and len(states) == 20
        assert executor.stats.starved_ticks == 10
    finally:
        policy.release.set()
        worker.close()


class FaultyWorker(SimulatedInferenceWorker):
    """A simulated worker with the supervisor's `check()` (fault text or None)."""

    fault = None

    def check(self):
        return self.fault


class ResettablePolicy(EncodingPolicy):
    resets = 0

    def reset(self):
        self.resets += 1


def test_tick_results_and_counters_through_every_state():
    """Every TickResult field and every counter, tick by tick, through waiting,
    commanding, fault, stale, invalid input and a policy error."""
    policy = ResettablePolicy(6, fail_calls={4})
    policy.s = 3
    worker = FaultyWorker(policy, None, (6, A), 1, DT)
    config = ExecutorConfig(action_chunk_size=6, action_dim=A, min_num_actions_executed=3,
                            algorithm='rtc', control_period=DT, initial_delay_steps=1)
    executor = ChunkExecutor(config, worker, ObservationCache({'proprio': 0.2}),
                             ObservationHistory(3, A, (), 1), SafetyFilter(A))
    assert (executor.state, executor.reason, executor.tick) == ('waiting', 'no chunk yet', 0)
    trace = []

    def tick(k, feed=True, proprio=None):
        if feed:
            value = np.full(A, k, np.float32) if proprio is None else proprio
            executor.cache.update('proprio', value, k * DT)
        r = executor.on_tick(k * DT)
        assert r.tick == k and executor.tick == k + 1
        assert (executor.state, executor.reason) == (r.state, r.reason)
        trace.append((r.state, r.reason, r.new_chunk, None if r.action is None
                      else float(r.action[0])))
        return r

    tick(0)
    tick(1)
    assert trace == [('waiting', 'waiting for the first chunk', False, None),
                     ('commanding', '', True, 1.0)]
    for k in range(2, 6):
        tick(k)
    # the guided call (j=1) observed tick 4 (s = 3 executed), landed at tick 5 at index 1
    assert trace[2:] == [('commanding', '', False, 2.0), ('commanding', '', False, 3.0),
                         ('commanding', '', False, 4.0), ('commanding', '', True, 1002.0)]
    s = executor.stats
    assert (s.ticks, s.commanded, s.waiting_ticks, s.inferences) == (6, 5, 1, 2)
    assert list(s.delays) == [1, 1] and executor.delay.samples() == [1]
    assert len(s.latencies_s) == 2 and s.latencies_s[0] == pytest.approx(DT)

    worker.fault = 'inference process died (exit code -9)'
    assert tick(6).state == 'fault' and tick(7).reason == worker.fault
    assert trace[-1] == ('fault', worker.fault, False, None)
    assert s.fault_ticks == 2 and not executor.schedule.has_chunk
    worker.fault = None
    r = tick(8)                                     # a fresh cold start, not the old plan
    assert (r.state, r.reason) == ('waiting', 'waiting for the first chunk')
    assert policy.calls[-1]['guided'] is False and policy.calls[-1]['obs_tick'] == 8
    assert tick(9).state == 'commanding' and trace[-1][3] == 2001.0

    for k in range(10, 14):                         # joint states stop after tick 9
        tick(k, feed=False)
    # the chunk goes on; the guided call j=3 observed tick 12 and landed at 13
    assert [t[3] for t in trace[-4:]] == [2002.0, 2003.0, 2004.0, 3002.0]
    r = tick(14, feed=False)                        # 0.25 s without proprio: stale
    assert r.state == 'stale' and r.reason == 'proprio stale (0.25 s > 0.20 s)'
    assert tick(15, feed=False).state == 'stale'
    assert s.stale_ticks == 2 and not executor.schedule.has_chunk
    r = tick(16, proprio=np.zeros(A + 1, np.float32))
    assert r.state == 'stale' and r.reason.startswith('invalid input: ') and s.stale_ticks == 3
    r = tick(17)                                    # policy call j=4 raises
    assert (r.state, r.reason) == ('waiting', 'waiting for the first chunk')
    r = tick(18)
    assert (r.state, r.reason) == ('waiting', 'policy error: RuntimeError: model exploded')
    assert not r.new_chunk                          # an error is not a chunk
    assert s.policy_errors == 1 and s.waiting_ticks == 4
    assert (s.ticks, s.commanded, s.inferences) == (19, 10, 6)
    executor.reset_episode()
    assert policy.resets == 1


def test_sequential_runs_its_own_horizon_not_s():
    executor, policy = make_executor('sequential', 10, 6, 1, sequential_actions=2)
    results = drive(executor, 12)
    states = [r.state for r in results]
    # cold start lands at 1; 2 actions, then it infers (obs tick 3) and blocks one tick
    assert states[:5] == ['waiting', 'commanding', 'commanding', 'blocked', 'commanding']
    assert results[3].reason == 'sequential: waiting for inference' and results[3].tick == 3
    assert executor.stats.blocked_ticks == states.count('blocked')
    assert [c['obs_tick'] for c in policy.calls][:3] == [0, 3, 6]


def test_reference_index_must_match_the_action_dim():
    config = ExecutorConfig(action_chunk_size=4, action_dim=A, min_num_actions_executed=2)
    with pytest.raises(ValueError, match=r'reference_index needs 2 entries, got \(3,\)'):
        ChunkExecutor(config, SimulatedInferenceWorker(EncodingPolicy(4), None, (4, A)),
                      ObservationCache({'proprio': 0.2}), ObservationHistory(3, A, (), 1),
                      SafetyFilter(A), reference_index=[0, 1, 2])


def test_results_of_an_older_episode_are_dropped_after_every_reset():
    """A request in flight across a reset is never spliced, for the first reset and for
    every later one (the episode counter must change each time)."""
    executor, policy = make_executor('rtc', 6, 3, 3)
    results = drive(executor, 1)                    # j0 (episode 0) submitted, lands at 3
    executor.reset_episode()
    results += drive(executor, 3, start=1)          # j0 dropped at 3; j1 submitted at 3
    executor.reset_episode()
    results += drive(executor, 6, start=4)          # j1 dropped at 6; j2 submitted at 6
    assert [c['obs_tick'] for c in policy.calls] == [0, 3, 6]
    assert not any(r.new_chunk for r in results[:9])
    assert all(r.action is None for r in results[:9])
    assert results[9].new_chunk and value(results[9]) == 2001.0
    assert all(r.tick == k for k, r in enumerate(results))


def test_stale_spells_drop_in_flight_results_each_time():
    executor, policy = make_executor('rtc', 6, 3, 4)
    feed = {0, 1, 2, 3, 4, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22}
    results = drive(executor, 23, feed=lambda k: k in feed)
    used = {int(r.action[0]) // 1000 for r in results if r.action is not None}
    # j0 (tick 0) lands at 4; guided j1, submitted at tick 7, is in flight when the stale
    # spell starts (tick 9); after it a fresh cold start j2 (tick 12, lands 16) is used
    assert [r.state for r in results[9:12]] == ['stale'] * 3
    assert used == {0, 2} and results[12].state == 'waiting'
    assert policy.calls[2]['guided'] is False and policy.calls[2]['obs_tick'] == 12
    assert results[16].new_chunk and value(results[16]) == 2001.0
    # joint states stop again after tick 22: j3 (from tick 19) lands at 23 and is used,
    # j4 (submitted at 23) is in flight when the second spell starts (27): dropped too
    results += drive(executor, 14, start=23, feed=lambda k: k >= 30)
    used = [int(r.action[0]) // 1000 for r in results[23:] if r.action is not None]
    assert results[27].state == 'stale' and policy.calls[4]['obs_tick'] == 22
    assert 4 not in used and set(used) == {3, 5}
    assert [r.state for r in results[30:34]] == ['waiting'] * 4   # a cold start, no hold
    assert policy.calls[5]['guided'] is False and policy.calls[5]['obs_tick'] == 30


def test_zero_delay_result_is_a_new_chunk_on_the_same_tick():
    executor, _ = make_executor('rtc', 6, 3, 0)
    first = drive(executor, 1)[0]
    assert first.state == 'commanding' and first.new_chunk and value(first) == 1.0


def test_starved_ticks_hold_the_last_action_and_say_so():
    executor, _ = make_executor('rtc', 4, 2, 5)     # chunk of 4, inference takes 5 ticks
    results = drive(executor, 12)
    starved = [(k, r) for k, r in enumerate(results) if r.state == 'starved']
    assert starved
    for k, r in starved:
        assert r.tick == k and r.reason == 'chunk ran out: holding last action'
        np.testing.assert_array_equal(r.action, executor.safety.last)


def test_initial_delay_is_the_first_guided_estimate_and_rtc_ignores_sequential_actions():
    executor, policy = make_executor('rtc', 10, 4, 1, initial_delay_steps=3,
                                     sequential_actions=2)
    assert executor.est_delay == 3
    drive(executor, 8)
    guided = [c for c in policy.calls if c['guided']]
    assert guided[0]['est_delay'] == 3              # before any measured delay
    assert guided[0]['obs_tick'] == 5               # s = 4 actions from tick 1, not 2


def test_reset_reference_without_a_measurement_index():
    policy = EncodingPolicy(6)
    policy.s = 3
    config = ExecutorConfig(action_chunk_size=6, action_dim=A, min_num_actions_executed=3,
                            control_period=DT)
    executor = ChunkExecutor(config, SimulatedInferenceWorker(policy, None, (6, A), 0, DT),
                             ObservationCache({'proprio': 0.2}),
                             ObservationHistory(3, A, (), 1),
                             SafetyFilter(A, max_velocity=2.0, control_period=DT))
    executor.reset_episode(reference=np.array([5.0, -5.0]))
    np.testing.assert_allclose(drive(executor, 1)[0].action, [4.9, -4.9])


@pytest.mark.parametrize('cfg', [dict(min_num_actions_executed=1),
                                 dict(min_num_actions_executed=10),
                                 dict(sequential_actions=1), dict(sequential_actions=10),
                                 dict(delay_window=1), dict(blend_old_weight=0.0),
                                 dict(action_chunk_size=1, min_num_actions_executed=1),
                                 dict(action_dim=1)])
def test_config_boundaries_that_are_valid(cfg):
    base = dict(action_chunk_size=10, action_dim=2, min_num_actions_executed=5)
    ExecutorConfig(**dict(base, **cfg)).validate()


@pytest.mark.parametrize('cfg, message', [
    (dict(action_chunk_size=0, min_num_actions_executed=0),
     'action_chunk_size must be >= 1, got 0'),
    (dict(action_dim=0), 'action_dim must be >= 1, got 0'),
    (dict(min_num_actions_executed=0),
     r'min_num_actions_executed must be in \[1, action_chunk_size=10\], got 0'),
    (dict(sequential_actions=0), r'sequential_actions must be in \[1, 10\], got 0'),
    (dict(sequential_actions=11), r'sequential_actions must be in \[1, 10\], got 11'),
    (dict(delay_window=True), 'delay_window must be >= 1, got True'),
    (dict(delay_window=0), 'delay_window must be >= 1, got 0'),
    (dict(blend_old_weight=1.0), r'blend_old_weight must be in \[0, 1\), got 1.0'),
    (dict(blend_old_weight=-0.1), r'blend_old_weight must be in \[0, 1\), got -0.1'),
])
def test_config_errors_name_the_parameter_and_value(cfg, message):
    base = dict(action_chunk_size=10, action_dim=2, min_num_actions_executed=5)
    with pytest.raises(ValueError, match=message):
        ExecutorConfig(**dict(base, **cfg)).validate()


def test_latency_percentiles_and_planned_actions():
    from env_actor.runtime.executor import ExecutorStats
    stats = ExecutorStats()
    assert all(np.isnan(v) for v in stats.latency_percentiles())
    stats.latencies_s.extend([0.4, 0.1, 0.3, 0.2])
    p50, p95 = stats.latency_percentiles()
    assert p50 == pytest.approx(0.25) and p95 == pytest.approx(0.385)
    executor, _ = make_executor('rtc', 6, 3, 0)
    executor.safety.max_step = np.full(A, 0.5)
    first = drive(executor, 1)[0]                   # chunk 1..6 lands at 0: 1 is sent
    planned = executor.planned_actions()            # ticks 1..5, limited from the 1 sent
    np.testing.assert_allclose(planned[:, 0], [1.5, 2.0, 2.5, 3.0, 3.5])
    assert value(first) == 1.0 and planned.shape == (5, A)
