"""Control-loop timing of the policy node under load, next to a bare rclpy timer.

In one run (each role in its own process, one after the other, same machine):
  1. `bare`:     a plain rclpy timer at the control rate, nothing else;
  2. `pipeline`: the node configured but inactive while 3 cameras (640x480 JPEG, 30 Hz)
                 and joint states (100 Hz) stream in: CPU cost of the observation pipeline;
  3. `node`:     the node commanding with RTC and the flow_matching policy at the igris_b
                 shapes, inference re-starting every s = 4 ticks (busy most of the time).
Reports tick-interval deviation from the period (p50/p99/max), missed ticks, CPU, and
resident memory at 30 s and at the end. Prints a table, writes
bench/results/control_loop.json.

Usage: python bench/control_loop.py [--duration 120] [--pipeline-duration 20]
"""
import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from common import machine, parser as bench_parser, table, write_results  # noqa: E402

PARAMS = ROOT / 'test' / 'fixtures' / 'node_params.yaml'
FLOW = ROOT / 'env_actor' / 'policy' / 'policies' / 'flow_matching' / 'flow_matching.yaml'
RATE = 20.0
TORCH_THREADS = int(os.environ.get('BENCH_TORCH_THREADS', '0'))


def rss_mb() -> float:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024.0
    return float('nan')


def tick_stats(ticks: list, period: float) -> dict:
    """Deviation of tick intervals from the period; missed = ticks that never fired
    (expected from the span minus fired); late = intervals off by more than half a period."""
    times = np.asarray(ticks)
    intervals = np.diff(times)
    deviation = np.abs(intervals - period) * 1e3
    expected = int(round((times[-1] - times[0]) / period)) + 1
    return {'ticks': len(ticks), 'dev_p50_ms': float(np.percentile(deviation, 50)),
            'dev_p99_ms': float(np.percentile(deviation, 99)),
            'dev_max_ms': float(deviation.max()), 'missed_ticks': max(expected - len(ticks), 0),
            'late_ticks': int(np.sum(deviation > period * 500.0))}


def run_role(role: str, duration: float, out: Path) -> None:
    """Child process: run one role and write its measurements to `out`."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    rclpy.init()
    ticks: list = []
    rss_early = None
    early_s = min(30.0, duration / 4)  # memory growth is measured from here to the end
    executor = SingleThreadedExecutor()
    node = None
    if role == 'bare':
        node = rclpy.create_node('bare_timer')
        node.create_timer(1.0 / RATE, lambda: ticks.append(time.monotonic()))
    else:
        from env_actor.ros.policy_node import PolicyNode
        node = PolicyNode(cli_args=['--ros-args', '--params-file', str(PARAMS),
                                    '-p', f'policy_yaml:={FLOW}',
                                    '-p', 'min_num_actions_executed:=4',
                                    '-p', f'torch_threads:={TORCH_THREADS}'])
        original = node._on_control_tick

        def timed_tick() -> None:
            ticks.append(time.monotonic())
            original()
        node._on_control_tick = timed_tick
        node.trigger_configure()
        if role == 'node':
            node.trigger_activate()
    executor.add_node(node)
    start = time.monotonic()
    cpu_start = time.process_time()
    while time.monotonic() - start < duration:
        executor.spin_once(timeout_sec=0.1)
        if rss_early is None and time.monotonic() - start >= early_s:
            rss_early = rss_mb()
    elapsed = time.monotonic() - start
    result = {'cpu_percent': 100.0 * (time.process_time() - cpu_start) / elapsed,
              'rss_early_mb': rss_early, 'rss_early_s': early_s, 'rss_end_mb': rss_mb(),
              'duration_s': elapsed}
    if len(ticks) > 2:
        result.update(tick_stats(ticks, 1.0 / RATE))
    if role != 'bare':
        core = node.executor_core
        result['rates_hz'] = {k: v / elapsed for k, v in core.cache.counts().items()}
        if role == 'node':
            lat = np.asarray(core.stats.latencies_s)
            result.update({'inferences': core.stats.inferences,
                           'inference_p50_ms': float(np.percentile(lat, 50) * 1e3),
                           'inference_busy_fraction': float(lat.sum() / elapsed),
                           'est_delay': core.est_delay,
                           'starved_ticks': core.stats.starved_ticks,
                           'stale_ticks': core.stats.stale_ticks,
                           'commanded': core.stats.commanded})
        node._release()
    out.write_text(json.dumps(result))
    rclpy.try_shutdown()


def orchestrate(opts: argparse.Namespace) -> int:
    from env_actor.tools.ros_env import isolate_ros_env
    isolate_ros_env()
    import yaml
    joints = yaml.safe_load(PARAMS.read_text())['/**']['ros__parameters']['state_joint_names']
    total = opts.duration * 2 + opts.pipeline_duration + 60
    sensors = subprocess.Popen(
        [sys.executable, '-m', 'env_actor.tools.sensor_publisher', '--transport', 'compressed',
         '--size', '640x480', '--duration', str(total), '--joints', *joints],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {}
    try:
        for role, duration in (('bare', opts.duration), ('pipeline', opts.pipeline_duration),
                               ('node', opts.duration)):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / 'result.json'
                print(f'running {role} for {duration:.0f} s ...', flush=True)
                subprocess.run([sys.executable, __file__, '--role', role, '--duration',
                                str(duration), '--role-out', str(out)], check=True,
                               env=dict(os.environ), stderr=subprocess.DEVNULL)
                results[role] = json.loads(out.read_text())
    finally:
        sensors.terminate()
        sensors.wait(timeout=10)
    bare, node, pipe = results['bare'], results['node'], results['pipeline']
    ratio = node['dev_p99_ms'] / max(bare['dev_p99_ms'], 1e-9)
    rss_growth = (node['rss_end_mb'] - node['rss_early_mb']) / node['rss_early_mb'] * 100.0
    rows = [[name, r.get('ticks', '-'), r.get('dev_p50_ms', float('nan')),
             r.get('dev_p99_ms', float('nan')), r.get('dev_max_ms', float('nan')),
             r.get('missed_ticks', '-'), r.get('late_ticks', '-'), r['cpu_percent'],
             r['rss_end_mb']]
            for name, r in (('bare rclpy timer', bare), ('node, RTC flow_matching', node),
                            ('node inactive: obs pipeline', pipe))]
    print(f'\ncontrol loop at {RATE:g} Hz, {opts.duration:.0f} s each; tick interval '
          f'deviation from the period')
    print(table(['run', 'ticks', 'dev p50 ms', 'dev p99 ms', 'dev max ms', 'missed',
                 'late > T/2', 'CPU %', 'RSS MB'], rows))
    print(f'node/bare p99 ratio: {ratio:.2f} (target <= 1.5); node RSS '
          f'{node["rss_early_s"]:.0f} s -> end: {node["rss_early_mb"]:.1f} -> '
          f'{node["rss_end_mb"]:.1f} MB ({rss_growth:+.1f} %, '
          f'target within 5 %)')
    print(f'inference: {node["inferences"]} calls, p50 {node["inference_p50_ms"]:.0f} ms, '
          f'busy {100 * node["inference_busy_fraction"]:.0f} % of the time, est_delay '
          f'{node["est_delay"]}, starved ticks {node["starved_ticks"]}; input rates '
          f'{ {k: round(v, 1) for k, v in node["rates_hz"].items()} }')
    print(f'observation pipeline (3 x 640x480 JPEG at 30 Hz + joint states at 100 Hz): '
          f'{pipe["cpu_percent"]:.0f} % of one core')
    path = write_results('control_loop', {'machine': machine(), 'rate_hz': RATE,
                                          'duration_s': opts.duration, 'results': results,
                                          'p99_ratio_node_over_bare': ratio,
                                          'rss_growth_percent': rss_growth}, out=opts.out)
    print(f'wrote {path}')
    return 0


def main(args=None) -> int:
    parser = bench_parser(__doc__.splitlines()[0], 'control_loop')
    parser.add_argument('--duration', type=float, default=120.0,
                        help='seconds of the bare-timer run and of the active-node run')
    parser.add_argument('--pipeline-duration', type=float, default=20.0,
                        help='seconds of the inactive-node (observation pipeline) run')
    parser.add_argument('--role', choices=('bare', 'pipeline', 'node'),
                        help='internal: run one role in this process and write its '
                             'measurements to --role-out')
    parser.add_argument('--role-out', type=Path, help='internal: see --role')
    parser.add_argument('--torch-threads', type=int, default=0,
                        help='torch threads of the node (0 = torch default)')
    opts = parser.parse_args(args)
    os.environ['BENCH_TORCH_THREADS'] = str(opts.torch_threads)
    if opts.role:
        run_role(opts.role, opts.duration, opts.role_out)
        return 0
    return orchestrate(opts)


if __name__ == '__main__':
    raise SystemExit(main())
