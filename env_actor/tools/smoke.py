"""Build a policy from its YAML and print one action chunk for a synthetic observation.

Usage: env-actor-smoke [--policy-yaml PATH] [--seed N] [--guided]
"""
from pathlib import Path
import time
from typing import Optional, Sequence

import numpy as np
import torch

from env_actor.policy.utils.loader import build_ready_bundle
from env_actor.policy.utils.spec import PolicySpec
from env_actor.tools.cli import exit_codes, tool_parser

EXAMPLE_POLICY = (Path(__file__).resolve().parent.parent / 'policy' / 'policies' /
                  'mlp_chunk' / 'mlp_chunk.yaml')


def synthetic_input(spec: PolicySpec, rng: np.random.Generator) -> dict:
    """A random but valid `input_data` dict for `spec`."""
    data = {'proprio': rng.standard_normal((spec.proprio_history_size, spec.state_dim))
            .astype(np.float32)}
    for cam in spec.cameras:
        data[cam] = rng.integers(0, 256, spec.image_shape(), dtype=np.uint8)
    return data


@exit_codes
def main(args: Optional[Sequence[str]] = None) -> int:
    parser = tool_parser(__doc__.splitlines()[0])
    parser.add_argument('--policy-yaml', type=Path, default=EXAMPLE_POLICY,
                        help='policy YAML to build (default: the example mlp_chunk policy)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random observation')
    parser.add_argument('--guided', action='store_true',
                        help='also run guided_inference with the chunk as prev_action')
    opts = parser.parse_args(args)
    torch.manual_seed(opts.seed)
    bundle = build_ready_bundle(opts.policy_yaml)
    policy = bundle.policy
    spec = PolicySpec.from_config(bundle.config['policy'], opts.policy_yaml)
    input_data = synthetic_input(spec, np.random.default_rng(opts.seed))
    start = time.perf_counter()
    chunk = policy.predict(input_data, bundle.normalizer)
    elapsed_ms = (time.perf_counter() - start) * 1e3
    np.set_printoptions(precision=3, suppress=True, linewidth=120)
    print(f'policy {bundle.config["policy"]["type"]!r} from {bundle.path}')
    print(f'action chunk: shape {chunk.shape} dtype {chunk.dtype}, predict took '
          f'{elapsed_ms:.1f} ms')
    print('first 3 actions (first 8 joints):')
    print(chunk[:3, :8])
    if opts.guided:
        s = max(1, spec.action_chunk_size // 2)
        guided = policy.guided_inference(dict(input_data, prev_action=chunk, est_delay=3),
                                         bundle.normalizer, s, spec.action_chunk_size)
        print(f'guided_inference: shape {guided.shape}, max |guided - prev| over the '
              f'first 3 actions = {np.abs(guided[:3] - chunk[:3]).max():.2e}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
