"""How far RTC's inference-time guidance can steer a shipped flow policy, and what the
chunk seams are made of.

For each shipped simulated-robot bundle (physics: policies/sim_physics, kinematic:
policies/sim_flow) on one observation of its world (seed 20003, 1 s in):
  * sample spread: standard deviation of `predict` over --samples draws, arm joints,
    first 6 actions (how different two independent chunks are);
  * guidance pull: `guided_inference` (d = 3, s = 12) given a `prev_action` equal to the
    mean chunk plus an offset (0.1 and 0.3 rad on every joint); how far the frozen
    actions (indices 0-2) moved towards it, for each beta in --betas.
And in closed loop on the physics world (--episodes episodes from seed 20000, d = 3, naive
async and RTC): at every chunk switch, the switch jump (new action - old chunk's plan)
against the servo lag at that tick (set-point - position): their correlation tells
whether seams come from the robot; and the same episodes with one fixed starting noise
for every inference (`noise_seed: 0`, the chunk a deterministic function of the
observation): whether they come from the sampling.
Prints tables and writes bench/results/rtc_guidance.json.

Usage: python bench/rtc_guidance.py [--samples 8] [--episodes 12]
"""
from pathlib import Path
import sys

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from common import machine, parser as bench_parser, table, write_results  # noqa: E402

from env_actor.policy.utils.loader import build_ready_bundle  # noqa: E402
from env_actor.policy.utils.spec import PolicySpec  # noqa: E402
from env_actor.runtime.images import image_to_chw  # noqa: E402
from env_actor.tools.sim_eval import RawImage, run_episode, with_policy_settings  # noqa: E402
from env_actor.tools.worlds import make_world  # noqa: E402

BUNDLES = {'physics': ROOT / 'policies' / 'sim_physics' / 'policy.yaml',
           'kinematic': ROOT / 'policies' / 'sim_flow' / 'policy.yaml'}
OFFSETS = (0.1, 0.3)
DELAY, HORIZON = 3, 12


def observe(world, spec: PolicySpec) -> dict:
    """The policy input of the world's current state (both proprio steps equal)."""
    data = spec.zeros_input(True)
    for camera in spec.cameras:
        image = world.render(camera)
        data[camera] = image_to_chw(RawImage(image.tobytes(), image.shape[0], image.shape[1]),
                                    spec.image_height, spec.image_width)[None]
    data['proprio'] = np.stack([world.q, world.q]).astype(np.float32)
    return data


def guidance_pull(bundle, world_name: str, samples: int, betas: list) -> dict:
    spec = PolicySpec.from_config(bundle.config['policy'], bundle.path)
    world = make_world(world_name, 20003)
    world.reset(20003)
    world.step(1.0)
    data = observe(world, spec)
    torch.manual_seed(0)
    draws = np.stack([bundle.policy.predict(data, bundle.normalizer) for _ in range(samples)])
    mean = draws.mean(axis=0)
    result = {'sample_std_rad': float(draws.std(axis=0)[:6, :3].mean()), 'pull': {}}
    for beta in betas:
        policy = with_policy_settings(bundle, beta=float(beta)).policy
        for offset in OFFSETS:
            data['prev_action'] = (mean + offset).astype(np.float32)
            data['est_delay'] = DELAY
            torch.manual_seed(1)
            guided = policy.guided_inference(data, bundle.normalizer, HORIZON,
                                             spec.action_chunk_size)
            moved = float((guided - mean)[:DELAY, :3].mean())
            result['pull'][f'beta={beta:g},offset={offset:g}'] = moved
    return result


def seams_vs_lag(bundle, algorithm: str, episodes: int, fixed_noise: bool = False) -> dict:
    """Switch jumps and servo lag at every chunk switch of closed-loop physics episodes."""
    if fixed_noise:
        bundle = with_policy_settings(bundle, noise_seed=0)
    switches: list = []
    for seed in range(20000, 20000 + episodes):
        run_episode(bundle, algorithm, DELAY, seed, execution_horizon=HORIZON,
                    world_name='physics', switches=switches)
    jumps = np.asarray([jump for jump, _ in switches])
    lags = np.asarray([lag for _, lag in switches])
    return {'switches': int(len(jumps)),
            'switch_jump_mean_rad': float(np.abs(jumps).max(axis=1).mean()),
            'servo_lag_mean_rad': float(np.abs(lags).max(axis=1).mean()),
            'correlation_jump_lag': float(np.corrcoef(jumps.ravel(), lags.ravel())[0, 1])}


def main(args=None) -> int:
    parser = bench_parser(__doc__.splitlines()[0], 'rtc_guidance')
    parser.add_argument('--samples', type=int, default=8,
                        help='predict draws for the sample spread')
    parser.add_argument('--betas', type=float, nargs='+', default=[5.0, 100.0],
                        help='guidance weight clips (beta) to try')
    parser.add_argument('--episodes', type=int, default=12,
                        help='closed-loop physics episodes for the seam/lag correlation')
    opts = parser.parse_args(args)
    bundles = {name: build_ready_bundle(path) for name, path in BUNDLES.items()}
    pulls = {name: guidance_pull(b, name, opts.samples, opts.betas)
             for name, b in bundles.items()}
    rows = [[name, f"{r['sample_std_rad']:.3f}"] + [f"{r['pull'][k]:.3f}"
                                                     for k in sorted(r['pull'])]
            for name, r in pulls.items()]
    print(f'guidance pull on the frozen actions (d = {DELAY}), rad towards prev_action')
    print(table(['world', 'sample std'] + sorted(next(iter(pulls.values()))['pull']), rows))
    seams = {f'{a}{suffix}': seams_vs_lag(bundles['physics'], a, opts.episodes, fixed)
             for fixed, suffix in ((False, ''), (True, ', fixed noise'))
             for a in ('naive_async', 'rtc')}
    print(f'\nphysics world, d = {DELAY}, {opts.episodes} episodes: chunk switches')
    print(table(['algorithm', 'switches', 'switch jump mean', 'servo lag mean',
                 'corr(jump, lag)'],
                [[a, r['switches'], f"{r['switch_jump_mean_rad']:.3f}",
                  f"{r['servo_lag_mean_rad']:.3f}", f"{r['correlation_jump_lag']:.2f}"]
                 for a, r in seams.items()]))
    path = write_results('rtc_guidance', {'machine': machine(), 'delay': DELAY,
                                          'horizon': HORIZON, 'guidance': pulls,
                                          'seams': seams}, out=opts.out)
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
