"""Latency of predict and guided_inference for each policy at the igris_b shapes.

proprio 50x24, three 240x320 cameras, H = 50, action_dim 24, 10 flow steps; p50/p95 over
repeated calls after warm-up, on whatever device `--device` names (default cpu). The
methods of one policy are timed interleaved (call by call). flow_matching also gets a
`flow_matching (prefix)` row: guided_inference with training-time RTC (the example's
weights are not prefix-trained, which does not change the cost).
Prints a Markdown table and writes bench/results/inference[-<device>].json.

Usage: python bench/inference.py [--repeats 20] [--device cpu|cuda]
"""
from pathlib import Path
import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (machine, parser as bench_parser, percentiles_ms, table,  # noqa: E402
                    write_results)

from env_actor.policy.utils.loader import build_ready_bundle  # noqa: E402
from env_actor.tools.smoke import synthetic_input  # noqa: E402

POLICIES = Path(__file__).resolve().parent.parent / 'env_actor' / 'policy' / 'policies'
NAMES = ('flow_matching', 'act', 'mlp_chunk', 'replay')


def time_calls(fn, repeats: int, sync) -> list:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - start)
    return samples


def main(args=None) -> int:
    parser = bench_parser(__doc__.splitlines()[0], 'inference[-<device>]')
    parser.add_argument('--repeats', type=int, default=20,
                        help='timed calls of each method after warm-up')
    parser.add_argument('--device', default='cpu', help='torch device: cpu, cuda, cuda:N')
    opts = parser.parse_args(args)
    sync = (lambda: torch.cuda.synchronize()) if opts.device.startswith('cuda') else \
        (lambda: None)
    rows, results = [], {}
    for name in NAMES:
        torch.manual_seed(0)
        bundle = build_ready_bundle(POLICIES / name / f'{name}.yaml', map_location=opts.device)
        policy, norm = bundle.policy, bundle.normalizer
        spec = policy.spec
        data = synthetic_input(spec, np.random.default_rng(0))
        prev = policy.predict(data, norm)
        guided_data = dict(data, prev_action=prev, est_delay=3)
        s = 35
        methods = {'predict': lambda: policy.predict(data, norm),
                   'guided': lambda: policy.guided_inference(guided_data, norm, s,
                                                             spec.action_chunk_size)}
        if name == 'flow_matching':
            def prefix():
                policy.guided_method = 'prefix'
                try:
                    return policy.guided_inference(guided_data, norm, s,
                                                   spec.action_chunk_size)
                finally:
                    policy.guided_method = 'guidance'
            methods['prefix'] = prefix
        samples = {m: [] for m in methods}
        for _ in range(opts.repeats):        # interleaved: a noisy moment hits all methods
            for method, fn in methods.items():
                samples[method] += time_calls(fn, 1, sync)
        pred = percentiles_ms(samples['predict'])
        params = sum(p.numel() for c in bundle.components.values() for p in c.parameters())
        for label, method in ((name, 'guided'), (f'{name} (prefix)', 'prefix')):
            if method not in samples:
                continue
            guided = percentiles_ms(samples[method])
            ratio = guided['p50_ms'] / pred['p50_ms']
            results[label] = {'predict': pred, 'guided_inference': guided,
                              'guided_over_predict_p50': ratio, 'parameters': params}
            rows.append([label, params, pred['p50_ms'], pred['p95_ms'], guided['p50_ms'],
                         guided['p95_ms'], ratio])
    print(f'inference latency on {opts.device} ({machine()["torch_threads"]} torch threads), '
          f'igris_b shapes, {opts.repeats} calls each after warm-up')
    print(table(['policy', 'params', 'predict p50 ms', 'predict p95 ms', 'guided p50 ms',
                 'guided p95 ms', 'guided/predict'], rows))
    suffix = '' if opts.device == 'cpu' else f'-{opts.device.replace(":", "")}'
    path = write_results('inference', {'machine': machine(), 'device': opts.device,
                                       'shapes': {'proprio': [50, 24], 'cameras': 3,
                                                  'image': [240, 320], 'H': 50,
                                                  'action_dim': 24, 'flow_steps': 10},
                                       'results': results}, suffix, out=opts.out)
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
