"""A recorder for the two-host test, run inside one network namespace.

    python test/host_probe.py OUT.jsonl --duration 60

Writes one JSON line per message it receives (flushed at once, so the test can follow
it live): receive time on CLOCK_MONOTONIC (shared by all namespaces of the machine, so
two probes' times compare), the kind and a short payload; joint states and trajectories
also carry their age (receive time minus header.stamp, on the system clock). Topics:
/joint_states, /joint_trajectory_controller/joint_trajectory, /diagnostics (the policy's
status), /sim/status and the head camera. Exits after --duration seconds or on SIGINT/SIGTERM.
"""
import argparse
import json
import signal
import threading
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions

from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CompressedImage, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out', help='JSON lines file to write')
    parser.add_argument('--duration', type=float, default=60.0, help='seconds to record')
    opts = parser.parse_args()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('host_probe')
    out = open(opts.out, 'w', encoding='utf-8', buffering=1)

    def record(kind: str, payload) -> None:
        out.write(json.dumps([time.monotonic(), kind, payload]) + '\n')

    def age(header) -> float:
        """Seconds since header.stamp (system clock, shared by the namespaces), or -1."""
        stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
        return time.time() - stamp if stamp else -1.0

    node.create_subscription(JointState, '/joint_states',
                             lambda m: record('js', list(m.position) + [age(m.header)]),
                             qos_profile_sensor_data)
    node.create_subscription(
        JointTrajectory, '/joint_trajectory_controller/joint_trajectory',
        lambda m: record('traj', [[age(m.header)] + list(p.positions) for p in m.points]),
        10)
    node.create_subscription(
        DiagnosticArray, '/diagnostics',
        lambda m: [record('diag', [s.level[0], s.message]) for s in m.status
                   if s.name.endswith(': policy')], 10)
    node.create_subscription(String, '/sim/status', lambda m: record('status', m.data), 20)
    node.create_subscription(CompressedImage, '/sim/head/image_raw/compressed',
                             lambda m: record('cam', None), qos_profile_sensor_data)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    end = time.monotonic() + opts.duration
    while not stop.is_set() and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    out.close()
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
