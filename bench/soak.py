"""Soak: N minutes of normal operation with the simulated robot; memory, safety, ticks.

    python bench/soak.py [--minutes 10] [--sample 10]

Starts the policy node (config/sim.yaml, the shipped sim_flow bundle, RTC, inference in
its own process) and the simulated robot (episodes back to back, a ~/reset at each start)
as separate processes on loopback DDS with a private domain. Every --sample seconds the
resident memory (VmRSS) of the node and of each of its child processes is read from /proc;
the growth is the slope of a least-squares line over the samples after the first minute
(warm-up), in MB per 10 minutes. Every command the robot receives is checked: finite,
inside the position limits of config/sim.yaml, and no step above the velocity limit from
the previous command or from a position the robot measured in the 0.5 s before. Missed
ticks = control periods elapsed between the first and last diagnostics minus the ticks the
node counted (+-1 from diagnostics arrival jitter). Prints a table and writes
bench/results/soak.json. Target: growth < 1 MB / 10 min, 0 unsafe commands, 0 missed.
"""
from collections import deque
from pathlib import Path
import subprocess
import sys
import time

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, parser as bench_parser, table, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PARAMS = ROOT / 'config' / 'sim.yaml'
POLICY = ROOT / 'policies' / 'sim_flow' / 'policy.yaml'


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float('nan')


def label(pid: int) -> str:
    """'inference <pid>' for the policy process, 'resource tracker <pid>' for
    multiprocessing's helper, else 'child <pid>'."""
    try:
        cmdline = Path(f'/proc/{pid}/cmdline').read_bytes().replace(b'\0', b' ')
    except OSError:
        return f'child {pid}'
    if b'resource_tracker' in cmdline:
        return f'resource tracker {pid}'
    if b'multiprocessing.spawn' in cmdline:
        return f'inference {pid}'
    return f'child {pid}'


def children(pid: int) -> list:
    try:
        text = Path(f'/proc/{pid}/task/{pid}/children').read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def slope_mb_per_10min(samples: list) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per 600 s."""
    if len(samples) < 3:
        return float('nan')
    t, mb = np.asarray(samples, dtype=np.float64).T
    return float(np.polyfit(t, mb, 1)[0] * 600.0)


class CommandChecker:
    """Online version of the fault suite's command check (see module docstring)."""

    def __init__(self, lower, upper, step) -> None:
        self.lower, self.upper, self.step = (np.asarray(v, np.float64)
                                             for v in (lower, upper, step))
        self.prev = None
        self.measured: deque = deque(maxlen=200)
        self.commands = self.unsafe = 0
        self.first_from_measurement = 0
        self.examples: list = []

    def on_joint_state(self, t: float, position) -> None:
        self.measured.append((t, np.asarray(position, np.float64)))

    def on_command(self, t: float, command) -> None:
        c = np.asarray(command, np.float64)
        self.commands += 1
        tol = 1e-6

        def near(ref):
            return ref is not None and np.all(np.abs(c - ref) <= self.step + tol)
        problem = None
        if not np.all(np.isfinite(c)):
            problem = 'non-finite'
        elif np.any(c < self.lower - tol) or np.any(c > self.upper + tol):
            problem = 'outside the position limits'
        elif not near(self.prev):
            if any(near(m) for tm, m in self.measured if t - 0.5 <= tm <= t):
                self.first_from_measurement += 1
            else:
                problem = 'step above the velocity limit'
        if problem:
            self.unsafe += 1
            if len(self.examples) < 5:
                self.examples.append(f'{problem}: {c.tolist()} after {self.prev}')
        self.prev = c


def main(args=None) -> int:
    parser = bench_parser(__doc__.splitlines()[0], 'soak')
    parser.add_argument('--minutes', type=float, default=10.0, help='length of the soak run')
    parser.add_argument('--sample', type=float, default=10.0,
                        help='seconds between memory and counter samples')
    opts = parser.parse_args(args)
    from env_actor.tools.ros_env import isolate_ros_env
    domain = isolate_ros_env()
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    params = yaml.safe_load(PARAMS.read_text())['/**']['ros__parameters']
    period = 1.0 / float(params['control_frequency'])
    checker = CommandChecker(params['safety.position_lower'],
                             params['safety.position_upper'],
                             np.asarray(params['safety.max_velocity']) * period)
    node_proc = subprocess.Popen(
        [sys.executable, '-m', 'env_actor.ros.policy_node', '--ros-args', '--params-file',
         str(PARAMS), '-p', f'policy_yaml:={POLICY}', '-p', 'autostart:=true',
         '--log-level', 'warn'])
    sim = None
    rclpy.init()
    node = rclpy.create_node('env_actor_soak_monitor')
    diags: list = []
    node.create_subscription(
        Float64MultiArray, '/forward_position_controller/commands',
        lambda m: checker.on_command(time.monotonic(), m.data), 50)
    node.create_subscription(
        JointState, '/joint_states',
        lambda m: checker.on_joint_state(time.monotonic(), m.position), qos_profile_sensor_data)

    def on_diag(msg) -> None:
        for status in msg.status:
            if status.name == 'env_actor: policy':
                values = {kv.key: kv.value for kv in status.values}
                diags.append((time.monotonic(), status.level[0], status.message, values))
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10)
    samples: dict = {}
    levels = {0: 0, 1: 0, 2: 0}
    try:
        while not (diags and diags[-1][3].get('lifecycle_state') == 'active'):
            rclpy.spin_once(node, timeout_sec=0.1)
            if node_proc.poll() is not None:
                raise SystemExit('policy node exited before becoming active')
        sim = subprocess.Popen([sys.executable, '-m', 'env_actor.tools.sim_robot_node',
                                '--episodes', '100000', '--world', 'kinematic'],
                               stdout=subprocess.DEVNULL)
        start = time.monotonic()
        next_sample = start
        first_diag = len(diags)
        print(f'soak: {opts.minutes:g} min, ROS_DOMAIN_ID={domain}, sampling every '
              f'{opts.sample:g} s', flush=True)
        while time.monotonic() - start < opts.minutes * 60.0:
            rclpy.spin_once(node, timeout_sec=0.05)
            now = time.monotonic()
            if now >= next_sample:
                next_sample += opts.sample
                pids = {'node': node_proc.pid}
                pids.update({label(c): c for c in children(node_proc.pid)})
                for name, pid in pids.items():
                    samples.setdefault(name, []).append((now - start, rss_mb(pid)))
                total = sum(s[-1][1] for s in samples.values() if s[-1][0] == now - start)
                print(f'  t={now - start:5.0f} s  rss total {total:7.1f} MB  commands '
                      f'{checker.commands}  unsafe {checker.unsafe}', flush=True)
    finally:
        for proc in (sim, node_proc):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        node.destroy_node()
        rclpy.try_shutdown()
    window = [d for d in diags[first_diag:] if 'ticks' in d[3]]
    for d in window:
        levels[d[1]] = levels.get(d[1], 0) + 1
    missed = None
    if len(window) >= 2:
        elapsed = window[-1][0] - window[0][0]
        counted = int(window[-1][3]['ticks']) - int(window[0][3]['ticks'])
        missed = max(0, int(round(elapsed / period)) - counted)
    rows, growth = [], {}
    for name, series in samples.items():
        steady = [s for s in series if s[0] >= 60.0]
        growth[name] = slope_mb_per_10min(steady)
        rows.append([name, series[0][1], series[-1][1], growth[name], len(series)])
    last = window[-1][3] if window else {}
    result = {
        'minutes': opts.minutes, 'sample_s': opts.sample, 'rss_mb': samples,
        'growth_mb_per_10min': growth,
        'growth_total_mb_per_10min': float(sum(v for v in growth.values()
                                               if np.isfinite(v))),
        'commands': checker.commands, 'unsafe_commands': checker.unsafe,
        'unsafe_examples': checker.examples,
        'first_commands_from_measurement': checker.first_from_measurement,
        'missed_ticks': missed, 'ticks': int(last.get('ticks', 0)),
        'starved_ticks': int(last.get('starved_ticks', 0)),
        'stale_ticks': int(last.get('stale_ticks', 0)),
        'fault_ticks': int(last.get('fault_ticks', 0)),
        'inference_latency_p95_ms': last.get('inference_latency_p95_ms'),
        'diagnostics_levels': {'ok': levels.get(0, 0), 'warn': levels.get(1, 0),
                               'error': levels.get(2, 0)},
        'machine': machine()}
    print()
    print(table(['process', 'rss start MB', 'rss end MB', 'growth MB/10 min', 'samples'],
                rows))
    print(f"\ncommands {checker.commands}, unsafe {checker.unsafe}, first commands from "
          f"the measurement {checker.first_from_measurement}, ticks {result['ticks']}, "
          f"missed {missed}, starved {result['starved_ticks']}, stale "
          f"{result['stale_ticks']}, fault {result['fault_ticks']}; total growth "
          f"{result['growth_total_mb_per_10min']:.2f} MB / 10 min")
    path = write_results('soak', result, out=opts.out)
    print(f'wrote {path}')
    return 0 if checker.unsafe == 0 else 1


if __name__ == '__main__':
    raise SystemExit(main())
