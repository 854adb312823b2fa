"""Inference requests and the workers that run them.

A worker runs one request at a time. `ThreadedInferenceWorker` runs it on its own thread so
the control loop never waits; `SimulatedInferenceWorker` runs it at once but releases the
result only `delay_steps` control ticks later, for deterministic tests, replay and
benchmarks on a simulated clock.
"""
from dataclasses import dataclass, field
import threading
import time
from typing import Any, Callable, Optional, Protocol, runtime_checkable, Union

import numpy as np


@dataclass
class InferenceRequest:
    """One call of `predict` (guided=False) or `guided_inference` (guided=True)."""

    tick: int                       # control tick of the observation snapshot (k1)
    input_data: dict
    guided: bool = False
    execution_horizon: int = 0      # s, passed as min_num_actions_executed
    chunk_size: int = 0             # H
    warmup: bool = False            # excluded from the delay window
    episode: int = 0


@dataclass
class InferenceResult:
    """A finished request: `chunk` or `error` is set."""

    request: InferenceRequest
    chunk: Optional[np.ndarray]
    latency_s: float
    error: Optional[str] = None
    extra: dict = field(default_factory=dict)


@runtime_checkable
class InferenceWorker(Protocol):
    """What the executor needs of a worker: one request at a time, never blocking.

    Implemented by ThreadedInferenceWorker, SimulatedInferenceWorker,
    ProcessInferenceWorker and SupervisedWorker (a test checks all four). A worker may
    also have `check() -> Optional[str]` (a fault text); the executor asks it first.
    """

    @property
    def busy(self) -> bool: ...

    def submit(self, request: InferenceRequest, now_tick: int) -> None: ...

    def poll(self, now_tick: int) -> Optional[InferenceResult]: ...

    def reset_policy(self) -> None: ...

    def close(self) -> None: ...


def reset_policy_state(policy: Any) -> None:
    """Call the policy's optional `reset()` hook (e.g. replay rewinds); the one place
    that looks it up."""
    reset = getattr(policy, 'reset', None)
    if callable(reset):
        reset()


def run_inference(policy: Any, normalizer: Any, request: InferenceRequest,
                  action_shape: tuple[int, int]) -> InferenceResult:
    """Call the policy and validate its output; exceptions become `error`."""
    start = time.perf_counter()
    try:
        if request.guided:
            out = policy.guided_inference(request.input_data, normalizer,
                                          request.execution_horizon, request.chunk_size)
        else:
            out = policy.predict(request.input_data, normalizer)
        chunk = np.asarray(out)
        if chunk.shape != action_shape:
            raise ValueError(f'policy returned shape {chunk.shape}, expected {action_shape}')
        if not np.all(np.isfinite(chunk)):
            raise ValueError('policy returned NaN or inf')
        chunk = chunk.astype(np.float32, copy=False)
        error = None
    except Exception as exc:  # a policy bug must never take the control loop down
        chunk, error = None, f'{type(exc).__name__}: {exc}'
    return InferenceResult(request, chunk, time.perf_counter() - start, error)


class ThreadedInferenceWorker:
    """Runs requests on one background thread.

    Threading contract: `submit`, `poll`, `busy` and `close` are called from the control
    thread only; the worker thread touches the request and its result, handed over under
    `_lock`.
    """

    def __init__(self, policy: Any, normalizer: Any, action_shape: tuple[int, int],
                 name: str = 'env_actor_inference') -> None:
        self._policy = policy
        self._normalizer = normalizer
        self._shape = action_shape
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: Optional[InferenceRequest] = None
        self._running = False
        self._result: Optional[InferenceResult] = None
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._pending is not None or self._running or self._result is not None

    def submit(self, request: InferenceRequest, now_tick: int) -> None:
        del now_tick
        with self._lock:
            if self._pending is not None or self._running or self._result is not None:
                raise RuntimeError('inference worker is busy')
            self._pending = request
            self._wake.notify()

    def poll(self, now_tick: int) -> Optional[InferenceResult]:
        del now_tick
        with self._lock:
            result, self._result = self._result, None
            return result

    def reset_policy(self) -> None:
        """Call the policy's optional reset() hook (new episode)."""
        with self._lock:
            reset_policy_state(self._policy)

    def wait(self, timeout: float) -> bool:
        """Block until a result is ready (tests and offline tools only)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._result is None and time.monotonic() < deadline:
                self._wake.wait(timeout=max(0.0, deadline - time.monotonic()))
            return self._result is not None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        self._thread.join(timeout=5.0)

    def _loop(self) -> None:
        while True:
            with self._lock:
                while self._pending is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                request, self._pending, self._running = self._pending, None, True
            result = run_inference(self._policy, self._normalizer, request, self._shape)
            with self._lock:
                self._running = False
                self._result = result
                self._wake.notify_all()


class SimulatedInferenceWorker:
    """Runs each request immediately, releasing the result `delay_steps` ticks later.

    Args:
        delay_steps: an int, or a function of the call index (0, 1, ...) returning one.
        dt: control period, used to report a simulated latency of delay * dt seconds.
    """

    def __init__(self, policy: Any, normalizer: Any, action_shape: tuple[int, int],
                 delay_steps: Union[int, Callable[[int], int]] = 0, dt: float = 0.05) -> None:
        self._policy = policy
        self._normalizer = normalizer
        self._shape = action_shape
        self._delay = delay_steps if callable(delay_steps) else (lambda _i: delay_steps)
        self.dt = dt
        self.calls = 0
        self._result: Optional[InferenceResult] = None
        self._ready_tick = 0

    @property
    def busy(self) -> bool:
        return self._result is not None

    def submit(self, request: InferenceRequest, now_tick: int) -> None:
        if self._result is not None:
            raise RuntimeError('inference worker is busy')
        delay = int(self._delay(self.calls))
        if delay < 0:
            raise ValueError(f'simulated delay must be >= 0, got {delay}')
        self.calls += 1
        result = run_inference(self._policy, self._normalizer, request, self._shape)
        result.latency_s = delay * self.dt
        self._result, self._ready_tick = result, now_tick + delay

    def reset_policy(self) -> None:
        reset_policy_state(self._policy)

    def poll(self, now_tick: int) -> Optional[InferenceResult]:
        if self._result is None or now_tick < self._ready_tick:
            return None
        result, self._result = self._result, None
        return result

    def close(self) -> None:
        self._result = None
