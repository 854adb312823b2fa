"""Supervision of the inference process: a death or a hang is a fault, restarts are bounded.

`SupervisedWorker` has the worker interface the executor uses (`busy`, `submit`, `poll`,
`reset_policy`, `close`) plus `check()`, which the executor calls first on every control
tick. `check()` returns None while the worker is healthy, else the fault text:

    * the child process exited (SIGKILL, OOM, a crash): 'inference process died (exit
      code -9)'; seen on the first tick after the death, i.e. within one control period;
    * a request pending for longer than `timeout_s` (a hung or stopped child, a stuck
      GPU): 'inference hung: no result after 1.2 s'; the child is SIGKILLed, so whatever
      it would have returned is never used.

Either way a replacement is started on a background thread (the control tick never waits
for it) and `check()` keeps returning the fault until the replacement is ready; the
executor holds meanwhile and starts over with a fresh cold-start chunk. At most
`max_restarts` restarts happen within `restart_window_s`; one more fault makes the
supervisor `failed` for good (`check()` says so), and the node then leaves the active
state. Threading: every method is called from the control thread except the restart
thread's hand-over, which happens under `_lock`.
"""
from collections import deque
import threading
import time
from typing import Any, Callable, Optional

from env_actor.runtime.inference import InferenceRequest, InferenceResult


def auto_timeout(startup_latency_s: float, floor_s: float = 1.0) -> float:
    """The default inference timeout: 5x the measured warm-up latency, at least `floor_s`.

    Args:
        startup_latency_s: one inference after warm-up, in seconds.
        floor_s: lower bound, so a fast policy on a busy machine is not declared hung.
    Returns:
        Seconds.
    Raises:
        ValueError: a negative latency.
    """
    if startup_latency_s < 0:
        raise ValueError(f'startup latency must be >= 0 s, got {startup_latency_s}')
    return max(floor_s, 5.0 * startup_latency_s)


class SupervisedWorker:
    """Wraps a ProcessInferenceWorker-like object (`alive`, `exitcode`, `pending_age`,
    `result_ready`, `kill`) and restarts it through `factory` when it dies or hangs.

    Args:
        worker: the running worker.
        factory: builds a new worker (blocking until it is ready); runs on a thread.
        timeout_s: a pending request older than this is a hang (> 0).
        max_restarts: restarts allowed within `restart_window_s` (>= 0).
        restart_window_s: the window of the restart bound, seconds (> 0).
        clock: monotonic seconds (tests may pass their own).
    Raises:
        ValueError: a non-positive timeout or window, a negative max_restarts.
    """

    def __init__(self, worker: Any, factory: Callable[[], Any], timeout_s: float,
                 max_restarts: int = 3, restart_window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not timeout_s > 0:
            raise ValueError(f'inference_timeout must be > 0 s, got {timeout_s}')
        if max_restarts < 0:
            raise ValueError(f'inference_max_restarts must be >= 0, got {max_restarts}')
        if not restart_window_s > 0:
            raise ValueError(f'inference_restart_window must be > 0 s, got '
                             f'{restart_window_s}')
        self._worker: Optional[Any] = worker
        self._factory = factory
        self.timeout_s = float(timeout_s)
        self.max_restarts = int(max_restarts)
        self.restart_window_s = float(restart_window_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._restarts: deque = deque()
        self._thread: Optional[threading.Thread] = None
        self._closed = False
        self.fault: Optional[str] = None        # the current fault text
        self.failed = False                     # past the restart bound: no more restarts
        self.faults = 0                         # faults seen since construction
        self.restarts = 0                       # successful restarts

    @property
    def worker(self) -> Optional[Any]:
        with self._lock:
            return self._worker

    @property
    def startup_latency_s(self) -> float:
        worker = self.worker
        return 0.0 if worker is None else worker.startup_latency_s

    @property
    def pid(self) -> Optional[int]:
        """The running child's process id (None while restarting or failed)."""
        worker = self.worker
        return None if worker is None else worker.pid

    @property
    def busy(self) -> bool:
        worker = self.worker
        return worker is None or worker.busy

    def check(self) -> Optional[str]:
        """None while healthy; else the fault text (the executor must hold)."""
        with self._lock:
            worker = self._worker
            if worker is None:
                return self.fault
            if not worker.alive:
                reason = f'inference process died (exit code {worker.exitcode})'
            elif worker.pending_age > self.timeout_s and not worker.result_ready:
                reason = f'inference hung: no result after {worker.pending_age:.1f} s'
            else:
                return None
            self._worker = None
            self.faults += 1
        self._replace(worker, reason)
        return self.fault

    def _take_restart(self) -> bool:
        """Count one restart if the bound allows it (caller holds `_lock`)."""
        now = self._clock()
        while self._restarts and now - self._restarts[0] > self.restart_window_s:
            self._restarts.popleft()
        if len(self._restarts) >= self.max_restarts:
            return False
        self._restarts.append(now)
        return True

    def _replace(self, dead: Any, reason: str) -> None:
        with self._lock:
            allowed = self._take_restart()
            if not allowed:
                self.failed = True
                self.fault = (f'{reason}; {self.max_restarts} restarts within '
                              f'{self.restart_window_s:g} s already: giving up')
            else:
                self.fault = f'{reason}; restarting the inference process'
        target = self._restart if allowed else dead.kill
        args = (dead, reason) if allowed else ()
        self._thread = threading.Thread(target=target, args=args,
                                        name='env_actor_inference_restart', daemon=True)
        self._thread.start()

    def _restart(self, dead: Any, reason: str) -> None:
        """Restart thread: reap the old child, build new ones until one starts or the
        bound is reached."""
        dead.kill()
        while True:
            try:
                worker = self._factory()
            except Exception as exc:   # a failed restart counts against the bound
                with self._lock:
                    if self._closed:
                        return
                    if self._take_restart():
                        self.fault = (f'{reason}; restart failed ({type(exc).__name__}: '
                                      f'{exc}), trying again')
                        continue
                    self.failed = True
                    self.fault = (f'{reason}; restart failed ({type(exc).__name__}: '
                                  f'{exc}): giving up')
                    return
            with self._lock:
                if not self._closed:
                    self._worker, self.fault = worker, None
                    self.restarts += 1
                    return
            worker.close()
            return

    def submit(self, request: InferenceRequest, now_tick: int) -> None:
        worker = self.worker
        if worker is None:
            raise RuntimeError('inference worker is not running')
        worker.submit(request, now_tick)

    def poll(self, now_tick: int) -> Optional[InferenceResult]:
        worker = self.worker
        return None if worker is None else worker.poll(now_tick)

    def reset_policy(self) -> None:
        worker = self.worker
        if worker is not None:
            worker.reset_policy()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
