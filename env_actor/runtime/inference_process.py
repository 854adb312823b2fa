"""Inference in a separate process, so the control thread never shares the GIL with it.

The child process builds the policy from its YAML, freezes and warms it up, measures one
inference, and then serves requests one at a time over a multiprocessing pipe (both ends
are this module; nothing from outside is unpickled). Image-sized arrays travel through a
shared-memory block (`shared_arrays`), so the pipe carries only small messages. The
parent side has the same interface as ThreadedInferenceWorker: `submit`, `poll`, `busy`,
`reset_policy`, `close`.
"""
import multiprocessing
import os
import signal
import time
from typing import Optional

import numpy as np

from env_actor.runtime.inference import (InferenceRequest, InferenceResult,
                                         reset_policy_state, run_inference)
from env_actor.runtime.shared_arrays import (MIN_SHARED_BYTES, SharedArrays,
                                             SharedArraysReader)


def _serve(conn, policy_yaml: str, device: str, torch_threads: int, guided: bool,
           nice: int) -> None:
    """Child process main loop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle
    try:
        if nice > 0:       # yield the CPU to the control loop when both want it
            os.nice(nice)
        import torch
        if torch_threads > 0:
            torch.set_num_threads(torch_threads)
        from env_actor.policy.utils.loader import build_ready_bundle
        from env_actor.policy.utils.spec import PolicySpec
        from env_actor.runtime.factory import measure_latency
        bundle = build_ready_bundle(policy_yaml, map_location=device)
        spec = PolicySpec.from_config(bundle.config['policy'], policy_yaml)
        latency = measure_latency(bundle, spec, guided)
    except Exception as exc:  # reported to the parent, which raises it at construction
        conn.send(('error', f'{type(exc).__name__}: {exc}'))
        return
    conn.send(('ready', {'latency_s': latency}))
    shape = (spec.action_chunk_size, spec.action_dim)
    shared = SharedArraysReader()
    while True:
        try:
            message = conn.recv()
        except (EOFError, ConnectionResetError):    # the node is gone: nothing to serve
            return
        if message is None:
            return
        if message == 'reset':
            reset_policy_state(bundle.policy)
            continue
        _, request, name, layout = message
        request = shared.unpack(request, name, layout)
        result = run_inference(bundle.policy, bundle.normalizer, request, shape)
        conn.send((result.chunk, result.latency_s, result.error))


class ProcessInferenceWorker:
    """Runs the policy in a child process (spawned, so it is safe with threads and CUDA).

    Args:
        policy_yaml: the policy YAML the child builds.
        device: map_location for the child.
        action_shape: (H, action_dim), for validation of results.
        guided: measure a guided call at start-up (RTC) rather than predict.
        torch_threads: torch threads in the child (0 = default).
        nice: niceness added to the child (lower CPU priority than the control loop).
        start_timeout: seconds to wait for build + warm-up.
        shared_min_bytes: request arrays at least this large go through shared memory.
    Raises:
        RuntimeError: the child failed to build or warm up the policy (its error text).
    """

    def __init__(self, policy_yaml: str, device: str, action_shape: tuple[int, int],
                 guided: bool = True, torch_threads: int = 0, nice: int = 0,
                 start_timeout: float = 600.0,
                 shared_min_bytes: int = MIN_SHARED_BYTES) -> None:
        ctx = multiprocessing.get_context('spawn')
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, name='env_actor_inference',
                                    args=(child, str(policy_yaml), device, torch_threads,
                                          guided, nice), daemon=True)
        self._process.start()
        child.close()
        self._shape = action_shape
        self._shared = SharedArrays(shared_min_bytes)
        self._pending: Optional[InferenceRequest] = None
        self._send_error: Optional[str] = None
        self._sent_at = 0.0
        if not self._conn.poll(start_timeout):
            self.close()
            raise RuntimeError(f'inference process did not start within {start_timeout} s')
        try:
            status, info = self._conn.recv()
        except (EOFError, OSError):           # it died before saying why
            self._process.join(timeout=5.0)
            code = self._process.exitcode
            self.close()
            raise RuntimeError(f'inference process exited during start-up (exit code '
                               f'{code})') from None
        if status != 'ready':
            self.close()
            raise RuntimeError(f'inference process failed: {info}')
        self.startup_latency_s: float = info['latency_s']

    @property
    def busy(self) -> bool:
        return self._pending is not None

    @property
    def alive(self) -> bool:
        """Whether the child process runs (a waitpid without blocking)."""
        return self._process.is_alive()

    @property
    def exitcode(self) -> Optional[int]:
        """The child's exit code (negative: killed by that signal), None while it runs."""
        return self._process.exitcode

    @property
    def pid(self) -> Optional[int]:
        return self._process.pid

    @property
    def result_ready(self) -> bool:
        """Whether the pending request's answer is waiting in the pipe (not yet polled)."""
        if self._pending is None or self._send_error is not None:
            return False
        try:
            return self._conn.poll()
        except (EOFError, OSError):
            return False

    @property
    def pending_age(self) -> float:
        """Seconds since the pending request was sent (0 when none is pending)."""
        return 0.0 if self._pending is None else time.perf_counter() - self._sent_at

    def kill(self) -> None:
        """SIGKILL the child (works on a stopped or hung process) and reap it."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join(timeout=5.0)
        self._conn.close()
        self._shared.close()

    def submit(self, request: InferenceRequest, now_tick: int) -> None:
        if self._pending is not None:
            raise RuntimeError('inference worker is busy')
        self._pending = request
        self._sent_at = time.perf_counter()
        try:
            self._conn.send(('request', *self._shared.pack(request)))
        except (BrokenPipeError, OSError) as exc:   # the child is gone: report on poll
            self._send_error = f'{type(exc).__name__}: {exc}'

    def poll(self, now_tick: int) -> Optional[InferenceResult]:
        if self._pending is None:
            return None
        request = self._pending
        if self._send_error is None and self._conn.poll():
            try:
                chunk, latency, error = self._conn.recv()
            except (EOFError, OSError) as exc:        # the child died mid-request
                self._send_error = f'{type(exc).__name__}: {exc}'
            else:
                self._pending = None
                if chunk is not None:
                    chunk = np.asarray(chunk, dtype=np.float32)
                return InferenceResult(request, chunk, latency, error)
        if self._process.is_alive() and self._send_error is None:
            return None
        self._pending, reason, self._send_error = None, self._send_error, None
        return InferenceResult(request, None, time.perf_counter() - self._sent_at,
                               f'inference process exited (code {self._process.exitcode})'
                               + (f': {reason}' if reason else ''))

    def reset_policy(self) -> None:
        """Call the policy's optional reset() in the child (after the pending result)."""
        if self._process.is_alive():
            try:
                self._conn.send('reset')
            except (BrokenPipeError, OSError):
                pass

    def close(self) -> None:
        try:
            if self._process.is_alive():
                self._conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self._process.join(timeout=5.0)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5.0)
        self._conn.close()
        self._shared.close()
