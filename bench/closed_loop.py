"""Closed-loop benchmark on the simulated robot: Sequential vs naive async vs RTC.

For each algorithm and each injected extra inference delay (0, 100, 200, 300 ms), runs
the same seeded episodes with the shipped trained policy (policies/sim_flow) in the
simulated world on a simulated clock (deterministic: inference results are released
after ceil((measured latency + extra) / dt) control ticks). Reports success rate, mean
episode time, and chunk-seam smoothness: mean/max of the largest per-joint step
|a_t - a_{t-1}| at chunk switches vs inside chunks, and mean jerk, for the arm joints
(shoulder, elbow, wrist; the gripper's open/close steps are part of the task and hit its
slew limit either way) and, in the JSON, for all joints; and the switch jump: how far the
new chunk's action is from what the old chunk had planned for the switch tick.
An `rtc_prefix` row runs RTC with the training-time-RTC bundle (policies/sim_flow_prefix,
trained with `env-actor-train --rtc-prefix` from the same demonstrations, or
--prefix-policy) at the same delays. Prints a table and writes bench/results/closed_loop.json.

Usage: python bench/closed_loop.py [--episodes 40] [--rate 20] [--prefix-policy P]
"""
import math
from pathlib import Path
import sys

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from common import machine, parser as bench_parser, table, write_results  # noqa: E402

from env_actor.policy.utils.loader import build_ready_bundle  # noqa: E402
from env_actor.policy.utils.spec import PolicySpec  # noqa: E402
from env_actor.runtime.factory import measure_latency  # noqa: E402
from env_actor.tools.sim_eval import run_episode  # noqa: E402

POLICY = ROOT / 'policies' / 'sim_flow' / 'policy.yaml'
PREFIX_POLICY = ROOT / 'policies' / 'sim_flow_prefix' / 'policy.yaml'   # training-time RTC
ALGORITHMS = ('sequential', 'naive_async', 'rtc')
EXTRA_MS = (0, 100, 200, 300)


def main(args=None) -> int:
    parser = bench_parser(__doc__.splitlines()[0], 'closed_loop')
    parser.add_argument('--episodes', type=int, default=40,
                        help='episodes per algorithm and delay (same seeds for each)')
    parser.add_argument('--rate', type=float, default=20.0, help='control rate, Hz')
    parser.add_argument('--first-seed', type=int, default=20_000,
                        help='seed of the first episode; episode k uses first-seed + k')
    parser.add_argument('--prefix-policy', type=Path, default=PREFIX_POLICY,
                        help='a bundle trained with --rtc-prefix for the rtc_prefix row '
                             '(default: the shipped policies/sim_flow_prefix)')
    parser.add_argument('--no-prefix', action='store_true', help='no rtc_prefix row')
    parser.add_argument('--algorithms', nargs='+', default=list(ALGORITHMS),
                        choices=ALGORITHMS, help='algorithms to run with the shipped policy')
    opts = parser.parse_args(args)
    bundle = build_ready_bundle(POLICY)
    bundles = {a: (bundle, a) for a in opts.algorithms}
    if not opts.no_prefix:
        bundles['rtc_prefix'] = (build_ready_bundle(opts.prefix_policy), 'rtc')
    spec = PolicySpec.from_config(bundle.config['policy'], POLICY)
    latency = float(np.median([measure_latency(bundle, spec, True) for _ in range(10)]))
    dt = 1.0 / opts.rate
    rows, results = [], {}
    for extra in EXTRA_MS:
        delay = int(math.ceil((latency + extra / 1000.0) / dt))
        for algorithm, (policy, executed_as) in bundles.items():
            runs = [run_episode(policy, executed_as, delay, opts.first_seed + i,
                                control_rate=opts.rate) for i in range(opts.episodes)]

            def mean(key):
                values = np.array([r[key] for r in runs], dtype=float)
                return float(np.nanmean(values)) if np.isfinite(values).any() else float('nan')
            summary = {'delay_steps': delay, 'extra_ms': extra,
                       'success_rate': mean('success'), 'time_s': mean('time'),
                       'seam_step_mean': mean('arm_seam_step_mean'),
                       'seam_step_max': float(np.nanmax([r['arm_seam_step_max'] for r in runs])),
                       'inside_step_mean': mean('arm_inside_step_mean'),
                       'jerk_mean': mean('arm_jerk_mean'),
                       'all_joints_seam_step_mean': mean('seam_step_mean'),
                       'switch_jump_mean': mean('arm_switch_jump_mean'),
                       'switch_jump_max': float(np.nanmax([r['arm_switch_jump_max']
                                                           for r in runs])),
                       'blocked_ticks': mean('blocked_ticks'),
                       'starved_ticks': mean('starved_ticks'),
                       'success_se': float(np.sqrt(mean('success') * (1 - mean('success'))
                                                   / len(runs))),
                       'episodes': runs}
            results[f'{algorithm}@{extra}ms'] = summary
            rows.append([f'{extra}', delay, algorithm,
                         f"{summary['success_rate']:.2f} +- {summary['success_se']:.2f}",
                         summary['time_s'], summary['seam_step_mean'],
                         summary['seam_step_max'], summary['inside_step_mean'],
                         summary['switch_jump_mean'], summary['switch_jump_max'],
                         summary['jerk_mean']])
            print(f'{algorithm:12s} +{extra:3d} ms (d={delay}): success '
                  f'{summary["success_rate"]:.2f}, time {summary["time_s"]:.2f} s, seam mean '
                  f'{summary["seam_step_mean"]:.4f}', flush=True)
    print(f'\nclosed loop on the simulated robot at {opts.rate:g} Hz, {opts.episodes} seeded '
          f'episodes each, policy latency {latency * 1e3:.1f} ms (+ injected delay)')
    print('arm joints: step = max over shoulder/elbow/wrist of |a_t - a_(t-1)| [rad]')
    print('switch jump = max over arm joints of |new chunk action - old chunk plan| at the '
          'switch tick')
    print(table(['extra ms', 'd', 'algorithm', 'success', 'time s', 'seam step mean',
                 'seam step max', 'inside step mean', 'switch jump mean', 'switch jump max',
                 'jerk'], rows))
    path = write_results('closed_loop', {'machine': machine(), 'rate_hz': opts.rate,
                                         'policy_latency_ms': latency * 1e3,
                                         'episodes': opts.episodes, 'results': results},
                         out=opts.out)
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
