"""Training-time RTC (`guided_method: prefix`): the executed prefix is held exactly, the
postfix is the model's own sample, a bundle not trained for it refuses it at build time,
and per-token flow times generalise the scalar one."""
import numpy as np
import pytest
import torch

from env_actor.models.chunk_heads import FlowVelocityTransformer
from env_actor.policy.utils.errors import PolicyLoadError
from test_policies import A, H, tiny_bundle


def test_per_token_times_with_equal_rows_equal_the_scalar_time():
    torch.manual_seed(0)
    head = FlowVelocityTransformer(A, H, token_dim=16, num_obs_tokens=2, d_model=32,
                                   depth=1, heads=2, ff_dim=32)
    actions, tokens = torch.randn(2, H, A), torch.randn(2, 2, 16)
    tau = torch.tensor([0.3, 0.7])
    np.testing.assert_allclose(head(actions, tokens, tau).detach(),
                               head(actions, tokens, tau[:, None].expand(2, H)).detach(),
                               atol=1e-6)
    mixed = tau[:, None].expand(2, H).clone()
    mixed[:, :3] = 1.0          # a clean prefix changes the velocity of the postfix too
    assert not torch.allclose(head(actions, tokens, mixed), head(actions, tokens, tau))


def test_prefix_holds_the_executed_actions_and_samples_the_rest(tmp_path):
    bundle, data = tiny_bundle(tmp_path, extra='  guided_method: prefix\n'
                                              '  prefix_trained: true\n')
    policy, norm = bundle.policy, bundle.normalizer
    prev = np.random.default_rng(5).normal(-1.0, 3.0, (H, A)).astype(np.float32)
    for d in (0, 2, 5):
        out = policy.guided_inference(dict(data, prev_action=prev, est_delay=d), norm, 3, H)
        assert out.shape == (H, A) and out.dtype == np.float32
        np.testing.assert_array_equal(out[:d], prev[:d])        # exactly
        assert np.abs(out[d:] - prev[d:]).min() > 1e-4          # not copied
    # the postfix is a sample: other noise, another postfix; same noise, the same one
    policy.noise_seed = 4
    other = policy.guided_inference(dict(data, prev_action=prev, est_delay=2), norm, 3, H)
    policy.noise_seed = 3
    again = policy.guided_inference(dict(data, prev_action=prev, est_delay=2), norm, 3, H)
    first = policy.guided_inference(dict(data, prev_action=prev, est_delay=2), norm, 3, H)
    np.testing.assert_array_equal(again, first)
    assert np.abs(other[2:] - first[2:]).max() > 1e-3


def test_prefix_needs_a_bundle_trained_for_it(tmp_path):
    with pytest.raises((PolicyLoadError, ValueError),
                       match="guided_method 'prefix' needs a bundle trained with prefix "
                             'conditioning'):
        tiny_bundle(tmp_path, extra='  guided_method: prefix\n')
    with pytest.raises((PolicyLoadError, ValueError), match='guided_method must be one of'):
        tiny_bundle(tmp_path, extra='  guided_method: inpaint\n')


def test_the_shipped_prefix_bundle_holds_the_prefix():
    from pathlib import Path
    from env_actor.policy.utils.loader import build_policy_bundle
    from env_actor.tools.smoke import synthetic_input
    path = Path(__file__).resolve().parents[1] / 'policies' / 'sim_flow_prefix' / 'policy.yaml'
    bundle = build_policy_bundle(path)
    policy, spec = bundle.policy, bundle.policy.spec
    assert policy.guided_method == 'prefix'
    data = synthetic_input(spec, np.random.default_rng(0))
    prev = policy.predict(data, bundle.normalizer)
    out = policy.guided_inference(dict(data, prev_action=prev, est_delay=4), bundle.normalizer,
                                  12, spec.action_chunk_size)
    np.testing.assert_array_equal(out[:4], prev[:4])
