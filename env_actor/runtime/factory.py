"""Assemble a ChunkExecutor for a built policy bundle (used by the node, replay, benches)."""
from dataclasses import dataclass, field
import math
import time
from typing import Any, Callable, Optional, Sequence, Union

from env_actor.policy.utils.loader import PolicyBundle
from env_actor.policy.utils.spec import PolicySpec
from env_actor.runtime.executor import ChunkExecutor, ExecutorConfig
from env_actor.runtime.inference import SimulatedInferenceWorker, ThreadedInferenceWorker
from env_actor.runtime.observation import PROPRIO, ObservationCache, ObservationHistory
from env_actor.runtime.safety import SafetyFilter

Limit = Union[None, float, Sequence[float]]


@dataclass
class RuntimeSettings:
    """Executor, history, staleness and safety settings (node parameters or CLI flags)."""

    algorithm: str = 'rtc'
    control_period: float = 0.05
    min_num_actions_executed: int = 25
    sequential_actions: Optional[int] = None
    delay_window: int = 5
    initial_delay_steps: int = -1            # -1: from a measured inference after warm-up
    image_stride: int = 1
    proprio_max_age: float = 0.1
    camera_max_age: dict = field(default_factory=dict)   # camera -> s (default 0.5)
    position_lower: Limit = None
    position_upper: Limit = None
    max_velocity: Limit = None              # action units per second
    inference_timeout: float = 0.0           # s; 0 = auto (see supervisor)


def measure_latency(bundle: PolicyBundle, spec: PolicySpec, guided: bool) -> float:
    """Seconds of one inference on a zero observation (after warm-up)."""
    data = spec.zeros_input(guided)
    start = time.perf_counter()
    if guided:
        bundle.policy.guided_inference(data, bundle.normalizer,
                                       max(1, spec.action_chunk_size // 2),
                                       spec.action_chunk_size)
    else:
        bundle.policy.predict(data, bundle.normalizer)
    return time.perf_counter() - start


def make_executor(spec: PolicySpec, settings: RuntimeSettings, worker: Any,
                  measured_latency_s: float = 0.0,
                  reference_index: Optional[Sequence[int]] = None) -> ChunkExecutor:
    """Wire cache, history and safety filter around an inference worker.

    Args:
        spec: the policy's shapes.
        settings: RuntimeSettings.
        worker: Threaded/Simulated/ProcessInferenceWorker running the policy.
        measured_latency_s: one inference after warm-up; sets the initial delay estimate
            when settings.initial_delay_steps < 0.
        reference_index: proprio indices of the action joints' measured positions (see
            ChunkExecutor); None for tools without measurements.
    Raises:
        ValueError: inconsistent settings (names the parameter).
    """
    initial = settings.initial_delay_steps
    if initial < 0:
        initial = int(math.ceil(measured_latency_s / settings.control_period))
    config = ExecutorConfig(
        action_chunk_size=spec.action_chunk_size, action_dim=spec.action_dim,
        min_num_actions_executed=settings.min_num_actions_executed,
        algorithm=settings.algorithm, control_period=settings.control_period,
        delay_window=settings.delay_window, initial_delay_steps=initial,
        sequential_actions=settings.sequential_actions or None)
    config.validate()
    max_age = {PROPRIO: settings.proprio_max_age}
    for cam in spec.cameras:
        max_age[cam] = settings.camera_max_age.get(cam, 0.5)
    cache = ObservationCache(max_age)
    history = ObservationHistory(spec.proprio_history_size, spec.state_dim, spec.cameras,
                                 spec.num_img_obs, settings.image_stride,
                                 (3, spec.image_height, spec.image_width))
    safety = SafetyFilter(spec.action_dim, settings.position_lower, settings.position_upper,
                          settings.max_velocity, settings.control_period)
    return ChunkExecutor(config, worker, cache, history, safety, reference_index)


def build_executor(bundle: PolicyBundle, settings: RuntimeSettings,
                   simulated_delay: Union[None, int, Callable[[int], int]] = None,
                   reference_index: Optional[Sequence[int]] = None) -> ChunkExecutor:
    """An executor running `bundle.policy` in this process (warmed up by the caller).

    Args:
        bundle: a built policy bundle.
        settings: RuntimeSettings.
        simulated_delay: None for a real inference thread; an int or function of the call
            index for a SimulatedInferenceWorker (deterministic, simulated clock).
    """
    spec = PolicySpec.from_config(bundle.config['policy'], bundle.path)
    latency = 0.0
    if settings.initial_delay_steps < 0:
        latency = measure_latency(bundle, spec, settings.algorithm == 'rtc')
    shape = (spec.action_chunk_size, spec.action_dim)
    if simulated_delay is None:
        worker = ThreadedInferenceWorker(bundle.policy, bundle.normalizer, shape)
    else:
        worker = SimulatedInferenceWorker(bundle.policy, bundle.normalizer, shape,
                                          simulated_delay, settings.control_period)
    return make_executor(spec, settings, worker, latency, reference_index)
