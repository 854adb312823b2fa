"""Offline replay speed: a 60 s three-camera episode through env-actor-eval.

Writes a synthetic episode with the igris_b topics and joints (joint states 100 Hz, three
640x480 JPEG cameras 30 Hz), evaluates the flow_matching example policy on it (RTC,
s = 35, 20 Hz) and reports wall time and the real-time factor per storage format, for
frames decoded only when a policy input holds them (the default) and for every frame
decoded up front, interleaved and repeated (median and range); checks both give the same
actions. Prints a table and writes bench/results/replay.json.

Usage: python bench/replay.py [--duration 60]
"""
from pathlib import Path
import sys
import tempfile
import time

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from common import machine, parser as bench_parser, table, write_results  # noqa: E402

from env_actor.ros.params import config_from_params_file  # noqa: E402
from env_actor.tools.bag_io import absolute_topic  # noqa: E402
from env_actor.tools.offline_eval import evaluate  # noqa: E402
from env_actor.tools.synthetic_bag import ACTION_TOPIC, write_episode  # noqa: E402

PARAMS = ROOT / 'config' / 'igris_b.yaml'
FLOW = ROOT / 'env_actor' / 'policy' / 'policies' / 'flow_matching' / 'flow_matching.yaml'


def main(args=None) -> int:
    parser = bench_parser(__doc__.splitlines()[0], 'replay')
    parser.add_argument('--duration', type=float, default=60.0,
                        help='length of the synthetic episode that is replayed, s')
    parser.add_argument('--repeats', type=int, default=3,
                        help='evaluations of each decoding mode, interleaved')
    opts = parser.parse_args(args)
    cfg = config_from_params_file(PARAMS, {'policy_yaml': str(FLOW)})
    rows, results = [], {}
    for storage in ('mcap', 'sqlite3'):
        with tempfile.TemporaryDirectory() as tmp:
            bag = Path(tmp) / 'episode'
            start = time.perf_counter()
            write_episode(bag, cfg.state_joint_names, opts.duration, storage, (640, 480),
                          'compressed', absolute_topic(cfg.joint_states_topic),
                          {c.name: absolute_topic(c.topic) for c in cfg.cameras})
            write_s = time.perf_counter() - start
            size_mb = sum(f.stat().st_size for f in bag.iterdir()) / 1e6
            walls = {'lazy': [], 'eager': []}
            actions = {}
            for repeat in range(opts.repeats):
                for mode in ('lazy', 'eager'):
                    start = time.perf_counter()
                    result = evaluate(bag, FLOW, PARAMS, ACTION_TOPIC, delay_steps=3,
                                      out_dir=Path(tmp) / f'out_{mode}_{repeat}', plots=False,
                                      lazy_decode=mode == 'lazy')
                    walls[mode].append(time.perf_counter() - start)
                    actions.setdefault(mode, result.actions)
            same = bool(np.array_equal(actions['lazy'], actions['eager'], equal_nan=True))
        for mode in ('lazy', 'eager'):
            wall = float(np.median(walls[mode]))
            factor = opts.duration / wall
            results[f'{storage}/{mode}'] = {
                'episode_s': opts.duration, 'bag_mb': size_mb, 'write_s': write_s,
                'eval_wall_s': wall, 'eval_wall_s_all': walls[mode],
                'real_time_factor': factor, 'ticks': result.metrics['ticks'],
                'chunks': result.metrics['chunks'], 'same_actions_as_other_mode': same}
            rows.append([storage, mode, f'{size_mb:.0f}', result.metrics['ticks'],
                         result.metrics['chunks'], wall,
                         f'{min(walls[mode]):.2f}-{max(walls[mode]):.2f}', factor, same])
    print(f'offline evaluation of a {opts.duration:.0f} s episode (3 x 640x480 JPEG at 30 Hz, '
          f'joint states at 100 Hz), flow_matching at igris_b shapes, RTC s = 35')
    print(table(['storage', 'decode', 'bag MB', 'ticks', 'chunks', 'wall s (median)',
                 'range', 'x real time', 'same actions'], rows))
    path = write_results('replay', {'machine': machine(), 'results': results},
                         out=opts.out)
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
