"""The chunk executor: which action goes out on which control tick.

Algorithms (docs/runtime.md):
    sequential   infer, execute `sequential_actions` actions, infer again; while the next
                 chunk is computed the loop commands nothing (`blocked`).
    rtc          Real-Time Chunking: ticks never wait; inference starts once s actions of
                 the current chunk ran, with `prev_action` (the chunk from the snapshot
                 tick on, padded by repeating its last action) and `est_delay`; the new
                 chunk is spliced at the *actual* delay (index k2 - k1).
    naive_async  as rtc but `predict` without guidance (baseline).
    blend        as naive_async, overlapping actions averaged 0.3 old + 0.7 new
                 (LeRobot async `weighted_average`, baseline).
The first chunk of an episode is always a plain `predict` that the loop waits for; it is
a cold start, excluded from the delay window, and starts at the tick it lands.

Tick order, one call of `on_tick(now)`: worker fault check -> staleness check -> sample
history -> collect a finished inference (splice) -> maybe start one -> collect again
(zero-delay simulation) -> select this tick's action -> safety filter.

First actions: after `reset_episode`, a stale spell or a worker fault the next commanded
action is slew-limited against the *measured* joint positions of that tick (the proprio
entries `reference_index` names), never against an old command. A worker fault (dead or
hung inference, reported by a SupervisedWorker's `check()`) drops the plan like a stale
spell; the first chunk after it is a fresh cold start.
Threading: `on_tick`, `reset_episode` and the `observe_*` calls (through the cache, which
has its own lock) may come from different threads; on_tick and reset_episode hold
`_lock`. The worker runs the policy on its own snapshot of the observation.
"""
from collections import deque
from dataclasses import dataclass, field
import threading
from typing import Any, Optional

import numpy as np

from env_actor.runtime.delay import DelayEstimator
from env_actor.runtime.inference import InferenceRequest, InferenceResult
from env_actor.runtime.observation import ObservationCache, ObservationHistory, PROPRIO
from env_actor.runtime.safety import SafetyFilter
from env_actor.runtime.schedule import ActionSchedule
from env_actor.base.soft_mask import clamp_delay

ALGORITHMS = ('sequential', 'rtc', 'naive_async', 'blend')
UNSAFE_REASON = 'non-finite action and nothing to hold'


@dataclass
class ExecutorConfig:
    """Executor settings; `validate()` raises ValueError naming the parameter."""

    action_chunk_size: int
    action_dim: int
    min_num_actions_executed: int
    algorithm: str = 'rtc'
    control_period: float = 0.05
    delay_window: int = 5
    initial_delay_steps: int = 0
    sequential_actions: Optional[int] = None     # default: min_num_actions_executed
    blend_old_weight: float = 0.3

    def validate(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f'algorithm {self.algorithm!r} unknown; expected one of '
                             f'{ALGORITHMS}')
        if self.action_chunk_size < 1:
            raise ValueError(f'action_chunk_size must be >= 1, got {self.action_chunk_size}')
        if self.action_dim < 1:
            raise ValueError(f'action_dim must be >= 1, got {self.action_dim}')
        if not 1 <= self.min_num_actions_executed <= self.action_chunk_size:
            raise ValueError(f'min_num_actions_executed must be in [1, action_chunk_size='
                             f'{self.action_chunk_size}], got {self.min_num_actions_executed}')
        seq = self.sequential_actions
        if seq is not None and not 1 <= seq <= self.action_chunk_size:
            raise ValueError(f'sequential_actions must be in [1, {self.action_chunk_size}], '
                             f'got {seq}')
        if not self.control_period > 0:
            raise ValueError(f'control_period must be > 0 s, got {self.control_period}')
        if isinstance(self.delay_window, bool) or self.delay_window < 1:
            raise ValueError(f'delay_window must be >= 1, got {self.delay_window}')
        if not 0.0 <= self.blend_old_weight < 1.0:
            raise ValueError(f'blend_old_weight must be in [0, 1), got {self.blend_old_weight}')


@dataclass
class TickResult:
    """What to do on one control tick. `action` None means: command nothing.

    `restart` marks the first action after a (re)start (a new episode, a stale spell, an
    inference fault): it was slew-limited against the measured positions, so whatever
    was commanded before it must not be the start of a trajectory that leads to it.
    """

    tick: int
    action: Optional[np.ndarray]
    state: str    # commanding | waiting | blocked | starved | stale | unsafe | fault
    reason: str = ''
    new_chunk: bool = False
    restart: bool = False


@dataclass
class ExecutorStats:
    """Counters for diagnostics."""

    ticks: int = 0
    commanded: int = 0
    waiting_ticks: int = 0
    blocked_ticks: int = 0
    starved_ticks: int = 0
    stale_ticks: int = 0
    fault_ticks: int = 0
    inferences: int = 0
    policy_errors: int = 0
    last_error: str = ''
    delays: deque = field(default_factory=lambda: deque(maxlen=500))
    latencies_s: deque = field(default_factory=lambda: deque(maxlen=500))

    def latency_percentiles(self) -> tuple[float, float]:
        if not self.latencies_s:
            return float('nan'), float('nan')
        values = np.asarray(self.latencies_s)
        return float(np.percentile(values, 50)), float(np.percentile(values, 95))


class ChunkExecutor:
    """Drives a policy through a worker and turns chunks into per-tick safe actions.

    Args:
        config: ExecutorConfig.
        worker: a Threaded/SimulatedInferenceWorker for the policy.
        cache: the observation cache the ROS layer (or a replay) fills.
        history: the observation history sized for the policy.
        safety: safety filter with action_dim entries.
        reference_index: for each action dimension, the index of its measured position in
            the proprio vector; the first action after every (re)start is limited against
            those values. None: no measurement (offline tools); the first action then has
            no reference.
    Raises:
        ValueError: invalid config, safety limits whose size differs from action_dim, or a
            reference_index of the wrong length.
    """

    def __init__(self, config: ExecutorConfig, worker: Any, cache: ObservationCache,
                 history: ObservationHistory, safety: SafetyFilter,
                 reference_index: Optional[Any] = None) -> None:
        config.validate()
        if safety.dim != config.action_dim:
            raise ValueError(f'safety limits have {safety.dim} entries but the policy '
                             f'action_dim is {config.action_dim}')
        if reference_index is not None:
            reference_index = np.asarray(reference_index, dtype=np.int64)
            if reference_index.shape != (config.action_dim,):
                raise ValueError(f'reference_index needs {config.action_dim} entries, got '
                                 f'{reference_index.shape}')
        self.reference_index = reference_index
        self.config = config
        self.worker = worker
        self.cache = cache
        self.history = history
        self.safety = safety
        self.schedule = ActionSchedule(config.action_chunk_size, config.action_dim)
        self.delay = DelayEstimator(config.delay_window, config.initial_delay_steps)
        self.stats = ExecutorStats()
        self._lock = threading.Lock()
        self._tick = 0
        self._episode = 0
        self._stale = False
        self._fault = False
        self._fresh_start = True      # the next action is limited against the measurement
        self._sequential_actions = (config.sequential_actions
                                    or config.min_num_actions_executed)
        self.state = 'waiting'
        self.reason = 'no chunk yet'

    @property
    def tick(self) -> int:
        return self._tick

    @property
    def est_delay(self) -> int:
        return self.delay.est_delay

    def reset_episode(self, reference: Optional[np.ndarray] = None) -> None:
        """New episode: drop the chunk, in-flight result, history and delay window.

        Args:
            reference: measured positions in action order, the slew-limit reference for
                the first action when `reference_index` is None (offline tools); with a
                reference_index the measurement of the first commanded tick is used.
        """
        with self._lock:
            self._episode += 1
            self.schedule.clear()
            self.delay.reset()
            self.history.reset()
            self.safety.reset(reference)
            self._stale = False
            self._fresh_start = True
            self.worker.reset_policy()   # the policy's optional reset(), e.g. replay rewinds

    def on_tick(self, now: float) -> TickResult:
        """Advance one control tick at time `now` (seconds) and return what to command."""
        with self._lock:
            tick = self._tick
            self._tick += 1
            self.stats.ticks += 1
            result = self._step(tick, now)
            self.state, self.reason = result.state, result.reason
            if result.action is not None:
                self.stats.commanded += 1
            return result

    def measured_reference(self) -> Optional[np.ndarray]:
        """The latest measured positions in action order (None: none, or no index)."""
        if self.reference_index is None:
            return None
        proprio = self.cache.get(PROPRIO)
        if proprio is None:
            return None
        return np.asarray(proprio, dtype=np.float64)[self.reference_index]

    def _drop_plan(self) -> None:
        """Forget the chunk, any in-flight result and the history; the next action is a
        first action again."""
        self._episode += 1
        self.schedule.clear()
        self.history.reset()
        self._fresh_start = True

    def _step(self, tick: int, now: float) -> TickResult:
        check = getattr(self.worker, 'check', None)
        fault = check() if callable(check) else None
        if fault is not None:
            self.stats.fault_ticks += 1
            if not self._fault:
                self._fault = True
                self._drop_plan()
            return TickResult(tick, None, 'fault', fault)
        self._fault = False
        stale = self.cache.stale_reason(now)
        if stale is None:
            try:
                self.history.sample(self.cache)
            except ValueError as exc:    # a bad sample slipped past the converters
                stale = f'invalid input: {exc}'
        if stale is not None:
            self.stats.stale_ticks += 1
            if not self._stale:      # drop what was planned from the old observations
                self._stale = True
                self._drop_plan()
            return TickResult(tick, None, 'stale', stale)
        self._stale = False
        new_chunk = self._collect(tick)
        if self._start_inference(tick):
            new_chunk = self._collect(tick) or new_chunk
        result = self._select(tick)
        result.new_chunk = new_chunk
        return result

    def _start_inference(self, tick: int) -> bool:
        if self.worker.busy:
            return False
        first = not self.schedule.has_chunk
        executed = self.schedule.executed(tick)
        if not first:
            horizon = (self._sequential_actions if self.config.algorithm == 'sequential'
                       else self.config.min_num_actions_executed)
            if executed < horizon:
                return False
        request = InferenceRequest(tick, self.history.input_data(), episode=self._episode,
                                   warmup=first,
                                   execution_horizon=self.config.min_num_actions_executed,
                                   chunk_size=self.config.action_chunk_size)
        if not first and self.config.algorithm == 'rtc':
            request.guided = True
            request.input_data['prev_action'] = self.schedule.prev_action(tick)
            request.input_data['est_delay'] = clamp_delay(
                self.delay.est_delay, self.config.action_chunk_size,
                self.config.min_num_actions_executed)
        self.worker.submit(request, tick)
        self.stats.inferences += 1
        return True

    def _collect(self, tick: int) -> bool:
        result: Optional[InferenceResult] = self.worker.poll(tick)
        if result is None or result.request.episode != self._episode:
            return False
        self.stats.latencies_s.append(result.latency_s)
        if result.error is not None:
            self.stats.policy_errors += 1
            self.stats.last_error = result.error
            return False
        request = result.request
        delay = tick - request.tick
        self.delay.record(delay, warmup=request.warmup)
        self.stats.delays.append(delay)
        restart = request.warmup or self.config.algorithm == 'sequential'
        blend = self.config.blend_old_weight if self.config.algorithm == 'blend' else 0.0
        self.schedule.replace(result.chunk, tick if restart else request.tick,
                              blend_old_weight=0.0 if restart else blend, now_tick=tick)
        return True

    def _select(self, tick: int) -> TickResult:
        if not self.schedule.has_chunk:
            self.stats.waiting_ticks += 1
            reason = ('policy error: ' + self.stats.last_error if self.stats.last_error
                      else 'waiting for the first chunk')
            return TickResult(tick, None, 'waiting', reason)
        if (self.config.algorithm == 'sequential'
                and self.schedule.executed(tick) >= self._sequential_actions):
            self.stats.blocked_ticks += 1
            return TickResult(tick, None, 'blocked', 'sequential: waiting for inference')
        planned = self.schedule.action_at(tick)
        if planned is None:
            self.stats.starved_ticks += 1
            held = self.safety.last
            return TickResult(tick, held, 'starved', 'chunk ran out: holding last action')
        restart = self._fresh_start
        if restart:
            # with a reference_index the measurement exists here: proprio is a required,
            # validated source, and this tick passed the staleness check
            reference = self.measured_reference()
            if reference is not None:
                self.safety.reset(reference)
            self._fresh_start = False
        action = self.safety.apply(planned)
        if action is None:   # defensive: the schedule only holds finite chunks
            return TickResult(tick, None, 'unsafe', UNSAFE_REASON)  # pragma: no mutate
        return TickResult(tick, action, 'commanding', restart=restart)

    def planned_actions(self) -> np.ndarray:
        """The safe actions for the coming ticks (this tick's already sent one excluded),
        as the controller should follow them: for a JointTrajectory."""
        with self._lock:
            return self.safety.preview(self.schedule.remaining(self._tick))
