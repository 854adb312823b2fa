"""Control-loop timing of the policy node, interleaved with a bare rclpy timer.

Each run is its own process, one after the other on the same machine, while a sensor
publisher streams 3 cameras (640x480 JPEG, 30 Hz) and joint states (100 Hz):
  `bare`     a plain rclpy timer at the control rate, nothing else, its thread at the
             same scheduling as the node's control thread (--priority);
  `node`     the node commanding with RTC and the flow_matching policy at the igris_b
             shapes (inference in its own process; s = --s, igris_b's 35 by default);
  `pipeline` the node configured but inactive: the CPU of its observation pipeline;
  `plain`    what a typical node does instead: an rclpy subscriber that decodes every
             JPEG with cv2.imdecode and resizes it with cv2.resize (same sizes).
The pairs (bare, node) and (pipeline, plain) alternate --alternations times, so a noisy
moment hits one run, not a whole column: the node/bare p99 ratio is reported per pair
(median, min-max). Reports tick-interval deviation from the period (p50/p99/max, in ms
and as a fraction of the period), missed and starved ticks, the CPU of the node and of
its inference process, and a per-tick phase breakdown of the node's control tick
(sample the history, collect a chunk, submit an inference, select the action, publish).
--executor, --camera-executor, --priority and --gil-switch-ms take several values: every
combination is a variant, and the variants are interleaved inside each alternation.
Prints tables, writes bench/results/control_loop.json.

Usage: python bench/control_loop.py [--alternations 3] [--duration 30]
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
PHASES = ('sample', 'collect', 'submit', 'select', 'publish')


def rss_mb() -> float:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024.0
    return float('nan')


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc)."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


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


def timed(phases: dict, name: str, fn):
    """Wrap `fn` to add its wall time to phases[name][-1] (the current tick's slot)."""
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases[name][-1] += time.perf_counter() - start
    return wrapper


def run_role(role: str, duration: float, out: Path, s: int, extra: list = (),
             executor_kind: str = 'single', cameras: str = 'events',
             priority: int = 40) -> None:
    """Child process: run one role and write its measurements to `out`."""
    import rclpy
    from env_actor.ros.policy_node import make_ros_executor
    rclpy.init()
    ticks: list = []
    inferring: list = []     # per tick: an inference was running when it fired
    phases = {name: [] for name in PHASES + ('tick',)}
    executor = make_ros_executor(executor_kind)
    if role == 'bare':        # at the node's control_thread_priority, for a like comparison
        from env_actor.runtime.realtime import set_fifo_priority
        scheduling = set_fifo_priority(priority)
        node = rclpy.create_node('bare_timer')
        node.create_timer(1.0 / RATE, lambda: ticks.append(time.monotonic()))
    elif role == 'plain':
        node = plain_subscriber(rclpy)
    else:
        from env_actor.ros.policy_node import PolicyNode
        node = PolicyNode(cli_args=['--ros-args', '--params-file', str(PARAMS),
                                    '-p', f'policy_yaml:={FLOW}',
                                    '-p', f'min_num_actions_executed:={s}',
                                    '-p', f'torch_threads:={TORCH_THREADS}',
                                    *[a for p in extra for a in ('-p', p)],
                                    # the variant's settings last: the bare timer uses them too
                                    '-p', f'camera_executor:={cameras}',
                                    '-p', f'control_thread_priority:={priority}'])
        original = node._on_control_tick

        def timed_tick() -> None:
            ticks.append(time.monotonic())
            inferring.append(bool(node.executor_core.worker.busy))
            for name in phases:
                phases[name].append(0.0)
            timed(phases, 'tick', original)()
        node._on_control_tick = timed_tick
        node.trigger_configure()
        core = node.executor_core
        core.history.sample = timed(phases, 'sample', core.history.sample)
        core._collect = timed(phases, 'collect', core._collect)
        core._start_inference = timed(phases, 'submit', core._start_inference)
        core._select = timed(phases, 'select', core._select)
        node._outputs.send = timed(phases, 'publish', node._outputs.send)
        if role == 'node':
            node.trigger_activate()
    executor.add_node(node)
    child = getattr(getattr(node, 'executor_core', None), 'worker', None)
    child_pid = getattr(child, 'pid', None)
    child_cpu = cpu_seconds(child_pid) if child_pid else 0.0
    start = time.monotonic()
    cpu_start = time.process_time()
    while time.monotonic() - start < duration:
        executor.spin_once(timeout_sec=0.1)
    elapsed = time.monotonic() - start
    if role != 'bare':
        scheduling = getattr(node, '_scheduling', '') or 'SCHED_OTHER'
    result = {'executor': type(executor).__name__, 'scheduling': scheduling,
              'cpu_percent': 100.0 * (time.process_time() - cpu_start) / elapsed,
              'rss_end_mb': rss_mb(), 'duration_s': elapsed}
    if child_pid:
        result['inference_cpu_percent'] = 100.0 * (cpu_seconds(child_pid) - child_cpu) / elapsed
    if len(ticks) > 2:
        result.update(tick_stats(ticks, 1.0 / RATE))
    if role == 'node':
        core = node.executor_core
        deviation = np.abs(np.diff(ticks) - 1.0 / RATE) * 1e3
        busy = np.asarray(inferring[1:])
        result['dev_p99_ms_by_inference'] = {
            name: float(np.percentile(deviation[mask], 99)) if mask.any() else None
            for name, mask in (('running', busy), ('idle', ~busy))}
        result['ticks_inference_running'] = int(busy.sum())
        lat = np.asarray(core.stats.latencies_s)
        result.update({'inferences': core.stats.inferences,
                       'inference_p50_ms': float(np.percentile(lat, 50) * 1e3),
                       'est_delay': core.est_delay,
                       'starved_ticks': core.stats.starved_ticks,
                       'stale_ticks': core.stats.stale_ticks,
                       'commanded': core.stats.commanded,
                       'rates_hz': {k: v / elapsed for k, v in core.cache.counts().items()},
                       'phases_ms': {name: {
                           'p50': float(np.percentile(v, 50) * 1e3),
                           'p99': float(np.percentile(v, 99) * 1e3),
                           'max': float(np.max(v) * 1e3)}
                           for name, v in phases.items() if v}})
    if role in ('node', 'pipeline'):
        node._release()
    out.write_text(json.dumps(result))
    rclpy.try_shutdown()


def plain_subscriber(rclpy):
    """The usual way: decode and resize each JPEG in its subscription callback."""
    import cv2
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage, JointState
    node = rclpy.create_node('plain_subscriber')
    latest = {}

    def on_image(name):
        def callback(msg):
            bgr = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
            latest[name] = cv2.resize(bgr, (320, 240), interpolation=cv2.INTER_AREA)
        return callback
    for camera in ('head', 'left', 'right'):
        node.create_subscription(CompressedImage, f'{camera}/image_raw/compressed',
                                 on_image(camera), qos_profile_sensor_data)
    node.create_subscription(JointState, 'joint_states',
                             lambda m: latest.__setitem__('proprio', np.array(m.position)),
                             qos_profile_sensor_data)
    return node


def run_child(role: str, duration: float, s: int, extra: list = (),
              executor: str = 'single', cameras: str = 'events', priority: int = 40) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / 'result.json'
        print(f'running {role} ({executor} executor, cameras {cameras}, priority {priority}) '
              f'for {duration:.0f} s ...', flush=True)
        subprocess.run([sys.executable, __file__, '--role', role, '--duration', str(duration),
                        '--role-out', str(out), '--s', str(s), '--executor', executor,
                        '--camera-executor', cameras, '--priority', str(priority),
                        *[a for p in extra for a in ('--node-param', p)]], check=True,
                       env=dict(os.environ), stderr=subprocess.DEVNULL)
        return json.loads(out.read_text())


def spread(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {'median': float(np.median(values)), 'min': float(values.min()),
            'max': float(values.max())}


def orchestrate(opts: argparse.Namespace) -> int:
    from env_actor.tools.ros_env import isolate_ros_env
    isolate_ros_env()
    import yaml
    joints = yaml.safe_load(PARAMS.read_text())['/**']['ros__parameters']['state_joint_names']
    variants = [(e, c, p, g) for e in opts.executor for c in opts.camera_executor
                for p in opts.priority for g in opts.gil_switch_ms]
    total = (opts.alternations * len(variants)
             * (2 * opts.duration + 2 * opts.pipeline_duration + 40) + 60)
    sensors = subprocess.Popen(
        [sys.executable, '-m', 'env_actor.tools.sensor_publisher', '--transport', 'compressed',
         '--size', '640x480', '--duration', str(total), '--joints', *joints],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    labels = {v: f'executor {v[0]}, cameras {v[1]}, priority {v[2]}, GIL switch {v[3]:g} ms'
              for v in variants}
    runs = {labels[v]: {'bare': [], 'node': [], 'pipeline': [], 'plain': []}
            for v in variants}
    try:
        for _ in range(opts.alternations):
            for variant in variants:
                for role, duration in (('bare', opts.duration), ('node', opts.duration),
                                       ('pipeline', opts.pipeline_duration),
                                       ('plain', opts.pipeline_duration)):
                    executor, cameras, priority, gil = variant
                    extra = [*opts.node_param, f'gil_switch_interval_ms:={gil}']
                    runs[labels[variant]][role].append(
                        run_child(role, duration, opts.s, extra, executor, cameras,
                                  priority))
    finally:
        sensors.terminate()
        sensors.wait(timeout=10)
    results = {label: summarize(runs[label], opts, label) for label in runs}
    if len(variants) > 1:
        print('\nside by side (median over the interleaved runs):\n' + '\n'.join(
            f"{label}: node p99 "
            f"{np.median([r['dev_p99_ms'] for r in runs[label]['node']]):.2f} ms, p99 ratio "
            f"{results[label]['p99_ratio_node_over_bare']['median']:.2f}, node CPU "
            f"{np.median([r['cpu_percent'] for r in runs[label]['node']]):.1f} %, pipeline "
            f"{results[label]['pipeline_cpu_over_plain']['median']:.2f}x plain"
            for label in runs))
    data = {'machine': machine(), 'rate_hz': RATE, 's': opts.s, 'duration_s': opts.duration,
            'alternations': opts.alternations, 'executors': opts.executor,
            'camera_executors': opts.camera_executor, 'priorities': opts.priority,
            'gil_switch_ms': opts.gil_switch_ms}
    data.update(results[labels[variants[0]]])
    if len(variants) > 1:
        data['by_variant'] = results
    path = write_results('control_loop', data, out=opts.out)
    print(f'wrote {path}')
    return 0


def summarize(runs: dict, opts: argparse.Namespace, kind: str) -> dict:
    """Print the tables of one variant's runs; return their numbers for the JSON."""
    period_ms = 1e3 / RATE
    ratios = [n['dev_p99_ms'] / max(b['dev_p99_ms'], 1e-9)
              for b, n in zip(runs['bare'], runs['node'])]
    cpu_ratio = [p['cpu_percent'] / max(q['cpu_percent'], 1e-9)
                 for p, q in zip(runs['pipeline'], runs['plain'])]
    rows = []
    for role in ('bare', 'node'):
        for i, r in enumerate(runs[role]):
            rows.append([f'{role} #{i + 1}', r['ticks'], r['dev_p50_ms'], r['dev_p99_ms'],
                         f"{100 * r['dev_p99_ms'] / period_ms:.1f} %", r['dev_max_ms'],
                         r['missed_ticks'], r.get('starved_ticks', '-'), r['cpu_percent'],
                         r.get('inference_cpu_percent', '-')])
    print(f'\ncontrol loop at {RATE:g} Hz, RTC s = {opts.s}, {opts.alternations} x '
          f'{opts.duration:.0f} s per role, interleaved, {kind}; tick interval deviation')
    print(table(['run', 'ticks', 'dev p50 ms', 'dev p99 ms', 'p99 / period', 'dev max ms',
                 'missed', 'starved', 'CPU %', 'inference CPU %'], rows))
    print(f'node/bare p99 ratio per pair: {[round(r, 2) for r in ratios]} (median '
          f'{np.median(ratios):.2f}; target <= 1.5 and p99 <= 2 % of the period)')
    phase_rows = [[name] + [np.median([r['phases_ms'][name][k] for r in runs['node']])
                            for k in ('p50', 'p99', 'max')]
                  for name in PHASES + ('tick',)]
    print('\nnode control tick, per phase (ms, median over the node runs)')
    print(table(['phase', 'p50', 'p99', 'max'], phase_rows))
    pairs = [(round(p['cpu_percent']), round(q['cpu_percent']))
             for p, q in zip(runs['pipeline'], runs['plain'])]
    print(f'\nobservation pipeline (3 x 640x480 JPEG at 30 Hz + joint states at 100 Hz), '
          f'CPU % of one core per pair (node inactive, plain subscriber): {pairs}; '
          f'ratio median {np.median(cpu_ratio):.2f}')
    return {'runs': runs, 'p99_ratio_node_over_bare': spread(ratios),
            'node_p99_fraction_of_period': spread([n['dev_p99_ms'] / period_ms
                                                   for n in runs['node']]),
            'pipeline_cpu_over_plain': spread(cpu_ratio)}


def main(args=None) -> int:
    parser = bench_parser(__doc__.splitlines()[0], 'control_loop')
    parser.add_argument('--alternations', type=int, default=3,
                        help='how many times each pair of runs alternates')
    parser.add_argument('--duration', type=float, default=30.0,
                        help='seconds of each bare-timer and active-node run')
    parser.add_argument('--pipeline-duration', type=float, default=20.0,
                        help='seconds of each inactive-node and plain-subscriber run')
    parser.add_argument('--s', type=int, default=35,
                        help='RTC execution horizon s (igris_b: 35)')
    parser.add_argument('--role', choices=('bare', 'pipeline', 'node', 'plain'),
                        help='internal: run one role in this process and write its '
                             'measurements to --role-out')
    parser.add_argument('--role-out', type=Path, help='internal: see --role')
    parser.add_argument('--torch-threads', type=int, default=0,
                        help='torch threads of the node (0 = torch default)')
    parser.add_argument('--node-param', action='append', default=[],
                        help='NAME:=VALUE passed to the node (repeatable)')
    parser.add_argument('--executor', choices=('single', 'events'), nargs='+',
                        default=['single'],
                        help="rclpy executor(s) of every role (the node's `executor` "
                             'parameter): single = SingleThreadedExecutor, events = '
                             'EventsExecutor; several are interleaved in each alternation')
    parser.add_argument('--priority', type=int, nargs='+', default=[40],
                        help="the node's `control_thread_priority` (SCHED_FIFO, 0 = normal), "
                             'also given to the bare timer; several are interleaved')
    parser.add_argument('--gil-switch-ms', type=float, nargs='+', default=[0.5],
                        help="the node's `gil_switch_interval_ms` (Python's thread switch "
                             'interval); several are interleaved')
    parser.add_argument('--camera-executor', choices=('events', 'single', 'shared'),
                        nargs='+', default=['events'],
                        help="the node's `camera_executor` parameter(s), interleaved like "
                             '--executor')
    opts = parser.parse_args(args)
    os.environ['BENCH_TORCH_THREADS'] = str(opts.torch_threads)
    if opts.role:
        run_role(opts.role, opts.duration, opts.role_out, opts.s, opts.node_param,
                 opts.executor[0], opts.camera_executor[0], opts.priority[0])
        return 0
    return orchestrate(opts)


if __name__ == '__main__':
    raise SystemExit(main())
