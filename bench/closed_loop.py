"""Closed-loop benchmark on the simulated robot: Sequential, naive async, blend, RTC.

For each algorithm and each injected extra inference delay (0, 100, 200, 300 ms), runs
the same seeded episodes with the world's shipped policy in the simulated world on a
simulated clock (deterministic: inference results are released after
ceil((measured latency + extra) / dt) control ticks). The world (`--world`): `physics`
(default; MuJoCo arm with servo drives, two moving targets, policies/sim_physics) or
`kinematic` (slew-limited arm, one jumping target, policies/sim_flow).

Algorithms: sequential, naive_async, blend (overlap averaged 0.3 old / 0.7 new), rtc
(guided inference, the policy's exp soft mask), rtc_hard (guided inference with a hard
mask: the soft-mask schedule `zeros`), and rtc_prefix when --prefix-policy names a bundle
trained with `env-actor-train --rtc-prefix` (default on the kinematic world:
policies/sim_flow_prefix). Reports success with its standard error, mean episode time,
chunk-seam smoothness for the arm joints (mean/max of the largest per-joint step
|a_t - a_{t-1}| at chunk switches and inside chunks, mean jerk), the switch jump (how far
the new chunk's action is from what the old chunk had planned for that tick) and, on the
physics world, the largest tracking error of an arm servo |set-point - position|.
Prints a table and writes bench/results/closed_loop_physics.json (physics) or
bench/results/closed_loop.json (kinematic).

Usage: python bench/closed_loop.py [--episodes 40] [--world physics] [--algorithms ...]
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
from env_actor.tools.sim_eval import run_episode, with_policy_settings  # noqa: E402
from env_actor.tools.worlds import DEFAULT_WORLD, WORLDS  # noqa: E402

POLICIES = {'physics': ROOT / 'policies' / 'sim_physics' / 'policy.yaml',
            'kinematic': ROOT / 'policies' / 'sim_flow' / 'policy.yaml'}
PREFIX_POLICIES = {'kinematic': ROOT / 'policies' / 'sim_flow_prefix' / 'policy.yaml'}
RESULT_NAMES = {'physics': 'closed_loop_physics', 'kinematic': 'closed_loop'}
ALGORITHMS = ('sequential', 'naive_async', 'blend', 'rtc', 'rtc_hard')
EXTRA_MS = (0, 100, 200, 300)


def summarize(runs: list, delay: int, extra: int) -> dict:
    """Means over episodes (NaN-aware) of the per-episode metrics of `run_episode`."""
    def mean(key):
        values = np.array([r[key] for r in runs], dtype=float)
        return float(np.nanmean(values)) if np.isfinite(values).any() else float('nan')

    def largest(key):
        values = np.array([r[key] for r in runs], dtype=float)
        return float(np.nanmax(values)) if np.isfinite(values).any() else float('nan')
    success = mean('success')
    times = np.array([r['time'] for r in runs if r['success']], dtype=float)
    return {'delay_steps': delay, 'extra_ms': extra,
            'success_rate': success,
            'success_se': float(np.sqrt(success * (1 - success) / len(runs))),
            'time_s': mean('time'),
            'time_to_success_s': float(times.mean()) if times.size else float('nan'),
            'time_to_success_se': (float(times.std(ddof=1) / math.sqrt(times.size))
                                   if times.size > 1 else float('nan')),
            'seam_step_mean': mean('arm_seam_step_mean'),
            'seam_step_max': largest('arm_seam_step_max'),
            'inside_step_mean': mean('arm_inside_step_mean'),
            'jerk_mean': mean('arm_jerk_mean'),
            'all_joints_seam_step_mean': mean('seam_step_mean'),
            'switch_jump_mean': mean('arm_switch_jump_mean'),
            'switch_jump_max': largest('arm_switch_jump_max'),
            'tracking_error_max': largest('arm_tracking_error_max'),
            'tracking_error_mean_of_max': mean('arm_tracking_error_max'),
            'blocked_ticks': mean('blocked_ticks'),
            'starved_ticks': mean('starved_ticks'),
            'episodes': runs}


def main(args=None) -> int:
    parser = bench_parser(__doc__.splitlines()[0], 'closed_loop_physics')
    parser.add_argument('--episodes', type=int, default=40,
                        help='episodes per algorithm and delay (same seeds for each)')
    parser.add_argument('--rate', type=float, default=20.0, help='control rate, Hz')
    parser.add_argument('--execution-horizon', type=int, default=12,
                        help='s (min_num_actions_executed) of every row; the tables in '
                             'docs/sim.md use 12')
    parser.add_argument('--first-seed', type=int, default=20_000,
                        help='seed of the first episode; episode k uses first-seed + k')
    parser.add_argument('--world', choices=WORLDS, default=DEFAULT_WORLD,
                        help='simulated world and its shipped policy')
    parser.add_argument('--policy', type=Path, default=None,
                        help="policy YAML (default: the world's shipped bundle)")
    parser.add_argument('--prefix-policy', type=Path, default=None,
                        help='a bundle trained with --rtc-prefix for an rtc_prefix row '
                             '(default: policies/sim_flow_prefix on the kinematic world, '
                             'none on the physics world)')
    parser.add_argument('--no-prefix', action='store_true', help='no rtc_prefix row')
    parser.add_argument('--algorithms', nargs='+', default=list(ALGORITHMS),
                        choices=ALGORITHMS, help='algorithms to run with the policy')
    parser.add_argument('--extra-ms', type=int, nargs='+', default=list(EXTRA_MS),
                        help='injected extra inference delays, ms')
    opts = parser.parse_args(args)
    policy_path = opts.policy or POLICIES[opts.world]
    bundle = build_ready_bundle(policy_path)
    # the hard mask: the same weights, guided with the soft-mask schedule `zeros`
    variants = {'rtc_hard': (with_policy_settings(bundle, schedule='zeros'), 'rtc')}
    bundles = {a: variants.get(a, (bundle, a)) for a in opts.algorithms}
    prefix_path = opts.prefix_policy or PREFIX_POLICIES.get(opts.world)
    if prefix_path is not None and not opts.no_prefix:
        bundles['rtc_prefix'] = (build_ready_bundle(prefix_path), 'rtc')
    spec = PolicySpec.from_config(bundle.config['policy'], policy_path)
    latency = float(np.median([measure_latency(bundle, spec, True) for _ in range(10)]))
    dt = 1.0 / opts.rate
    rows, results = [], {}
    for extra in opts.extra_ms:
        delay = int(math.ceil((latency + extra / 1000.0) / dt))
        for algorithm, (policy, executed_as) in bundles.items():
            runs = [run_episode(policy, executed_as, delay, opts.first_seed + i,
                                control_rate=opts.rate, world_name=opts.world,
                                execution_horizon=opts.execution_horizon)
                    for i in range(opts.episodes)]
            summary = summarize(runs, delay, extra)
            results[f'{algorithm}@{extra}ms'] = summary
            rows.append([f'{extra}', delay, algorithm,
                         f"{summary['success_rate']:.2f} +- {summary['success_se']:.2f}",
                         f"{summary['time_to_success_s']:.2f} +- "
                         f"{summary['time_to_success_se']:.2f}",
                         f"{summary['seam_step_mean']:.3f}", f"{summary['seam_step_max']:.2f}",
                         f"{summary['inside_step_mean']:.3f}",
                         f"{summary['switch_jump_mean']:.3f}", f"{summary['jerk_mean']:.3f}",
                         f"{summary['tracking_error_max']:.3f}"])
            print(f'{algorithm:12s} +{extra:3d} ms (d={delay}): success '
                  f'{summary["success_rate"]:.2f}, time {summary["time_s"]:.2f} s, seam mean '
                  f'{summary["seam_step_mean"]:.4f}', flush=True)
    print(f'\nclosed loop on the {opts.world} simulated robot at {opts.rate:g} Hz, '
          f's = {opts.execution_horizon}, '
          f'{opts.episodes} seeded episodes each, policy latency {latency * 1e3:.1f} ms '
          '(+ injected delay)')
    print('arm joints: step = max over shoulder/elbow/wrist of |a_t - a_(t-1)| [rad]; '
          'time = mean time of the successful episodes; tracking = largest '
          '|set-point - position| of an arm servo')
    print(table(['extra ms', 'd', 'algorithm', 'success', 'time to success s',
                 'seam step mean', 'seam step max', 'inside step mean', 'switch jump mean',
                 'jerk', 'tracking max'], rows))
    path = write_results(RESULT_NAMES[opts.world],
                         {'machine': machine(), 'world': opts.world, 'rate_hz': opts.rate,
                          'execution_horizon': opts.execution_horizon,
                          'policy': str(policy_path), 'policy_latency_ms': latency * 1e3,
                          'episodes': opts.episodes, 'results': results}, out=opts.out)
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
