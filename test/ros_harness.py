"""Test harness: a private rclpy context, a probe node recording outputs, an executor thread.

Everything goes over real DDS (loopback only, see conftest.py); nothing is mocked. Each
harness gets its own ROS domain (`env` carries it to subprocesses): with LOCALHOST
discovery rmw_fastrtps discovers at most 32 participants per host and domain, and every
test's context is a new participant.
"""
import itertools
import os
import queue
import threading
import time
from typing import Any, Callable, Optional

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor

from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.srv import ChangeState, GetState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory


_DOMAINS = itertools.count()


def next_domain() -> int:
    """A fresh domain in [10, 99], offset from this run's ROS_DOMAIN_ID."""
    base = int(os.environ.get('ROS_DOMAIN_ID', '10'))
    return 10 + (base - 10 + 1 + next(_DOMAINS)) % 90


def is_hold(trajectory) -> bool:
    """A hold: every point at the same position (the last command), at rest."""
    points = [tuple(p.positions) for p in trajectory.points]
    return len(points) <= 2 and len(set(points)) == 1 and not any(
        v for p in trajectory.points for v in p.velocities)


class Harness:
    """Spins the nodes it is given plus a probe node on one background executor."""

    def __init__(self, node_name: str = 'env_actor') -> None:
        self.domain_id = next_domain()
        self.env = dict(os.environ, ROS_DOMAIN_ID=str(self.domain_id))
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=self.domain_id)
        self.probe = rclpy.create_node('test_probe', context=self.context)
        self.events: list = []            # (monotonic time, kind, payload) in arrival order
        self.diagnostics: list = []
        self._lock = threading.Lock()
        p = self.probe
        p.create_subscription(JointTrajectory, 'joint_trajectory_controller/joint_trajectory',
                              lambda m: self._event('traj', m), 50)
        p.create_subscription(Float64MultiArray, 'forward_position_controller/commands',
                              lambda m: self._event('cmd', np.array(m.data)), 50)
        p.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.change_state = p.create_client(ChangeState, f'/{node_name}/change_state')
        self.get_state = p.create_client(GetState, f'/{node_name}/get_state')
        self.reset = p.create_client(Trigger, f'/{node_name}/reset')
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.probe)
        self._stop = threading.Event()
        self._retired: list = []          # nodes taken off the executor, destroyed at close
        self._calls: queue.Queue = queue.Queue()     # run on the spin thread (see `run`)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)
            while not self._calls.empty():
                call, done, box = self._calls.get()
                try:
                    box['result'] = call()
                except BaseException as exc:     # handed to the caller
                    box['error'] = exc
                done.set()

    def _event(self, kind: str, payload) -> None:
        with self._lock:
            self.events.append((time.monotonic(), kind, payload))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == 'env_actor: policy':
                values = {kv.key: kv.value for kv in status.values}
                with self._lock:
                    self.diagnostics.append((time.monotonic(), status.level[0], status.message,
                                             values))

    def add_node(self, node) -> None:
        self.executor.add_node(node)

    def run(self, call: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Call `call()` on the spin thread between two callbacks and return its result, as
        a lifecycle service callback would run a transition. A transition that destroys
        entities (cleanup, shutdown) must not run on another thread while the executor
        waits on them: rclpy then raises InvalidHandle and the spin thread ends."""
        done, box = threading.Event(), {}
        self._calls.put((call, done, box))
        assert done.wait(timeout), f'{call} did not run on the spin thread in {timeout} s'
        if 'error' in box:
            raise box['error']
        return box.get('result')

    def remove_node(self, node) -> None:
        """Take a node off the executor; it is destroyed in `close`, after the spin thread
        stopped: rclpy may still run a callback of it that was ready in the last wait, and
        on a destroyed node that raises InvalidHandle and ends the spin thread."""
        self.executor.remove_node(node)
        self._retired.append(node)

    def snapshot(self, kind: Optional[str] = None, since: float = 0.0) -> list:
        with self._lock:
            return [e for e in self.events if e[0] >= since and (kind is None or e[1] == kind)]

    def call(self, client, request, timeout: float = 30.0):
        assert client.wait_for_service(timeout_sec=10.0), client.srv_name
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert future.done(), f'{client.srv_name} timed out'
        return future.result()

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition_id
        return self.call(self.change_state, request).success

    def state(self) -> str:
        return self.call(self.get_state, GetState.Request()).current_state.label

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return time.monotonic()
            time.sleep(0.02)
        raise AssertionError(f'timed out after {timeout} s waiting for {what}')

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.executor.shutdown()
        for node in list(self.executor.get_nodes()) + self._retired:
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)
