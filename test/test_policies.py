"""flow_matching / act / replay policies: guidance, shapes, errors, autograd hygiene."""
from pathlib import Path

import numpy as np
import pytest
import torch

from env_actor.policy.templates.policy import Policy
from env_actor.policy.utils.errors import PolicyLoadError
from env_actor.policy.utils.loader import build_policy_bundle
from env_actor.policy.utils.normalization import DataNormalizationInterface, FeatureStats
from env_actor.tools.smoke import synthetic_input

POLICIES = Path(__file__).resolve().parent.parent / 'env_actor' / 'policy' / 'policies'
H, A, S_DIM, HIST = 8, 3, 2, 2


def tiny_bundle(tmp_path: Path, ptype: str = 'flow_matching', extra: str = '',
                num_steps: int = 10):
    """A tiny flow/act policy with non-trivial normalization stats."""
    comp = tmp_path / 'components'
    comp.mkdir(parents=True, exist_ok=True)
    (comp / 'img.yaml').write_text('type: resnet_encoder\n'
                                   'params: {out_dim: 16, widths: [8], stem_width: 8}\n')
    (comp / 'prop.yaml').write_text(f'type: mlp\nparams: {{in_dim: {HIST * S_DIM}, '
                                    'out_dim: 16, hidden_dims: [16]}\n')
    head_type, head_name = (('flow_transformer', 'velocity') if ptype == 'flow_matching'
                            else ('act_decoder', 'decoder'))
    (comp / 'head.yaml').write_text(
        f'type: {head_type}\nparams: {{action_dim: {A}, chunk_size: {H}, token_dim: 16, '
        'num_obs_tokens: 2, d_model: 32, depth: 1, heads: 2, ff_dim: 32}\n')
    rng = np.random.default_rng(1)
    DataNormalizationInterface(
        FeatureStats.from_samples(rng.normal(0.5, 2.0, (100, S_DIM))),
        FeatureStats.from_samples(rng.normal(-1.0, 3.0, (100, A)))).to_file(
        tmp_path / 'stats.json')
    policy_extra = f'  num_steps: {num_steps}\n  noise_seed: 3\n' \
        if ptype == 'flow_matching' else ''
    path = tmp_path / 'policy.yaml'
    path.write_text(
        'model:\n  component_config_paths:\n    image_encoder: components/img.yaml\n'
        f'    proprio_encoder: components/prop.yaml\n    {head_name}: components/head.yaml\n'
        f'policy:\n  type: {ptype}\n  action_chunk_size: {H}\n  action_dim: {A}\n'
        f'  state_dim: {S_DIM}\n  proprio_history_size: {HIST}\n  image_size: [16, 16]\n'
        f'  cameras: [head]\n{policy_extra}{extra}'
        'normalization:\n  stats_path: stats.json\n')
    torch.manual_seed(0)
    bundle = build_policy_bundle(path)
    return bundle, synthetic_input(bundle.policy.spec, np.random.default_rng(0))


def test_flow_guidance_pins_prefix_to_prev_action(tmp_path):
    bundle, data = tiny_bundle(tmp_path)
    policy, norm = bundle.policy, bundle.normalizer
    policy.freeze_all_model_params()
    prev = np.random.default_rng(5).normal(-1.0, 3.0, (H, A)).astype(np.float32)
    d, s = 3, 4
    predicted = policy.predict(data, norm)
    guided = policy.guided_inference(dict(data, prev_action=prev, est_delay=d), norm, s, H)
    std = norm.action.std
    guided_err = np.abs(guided[:d] - prev[:d]) / std
    predict_err = np.abs(predicted[:d] - prev[:d]) / std
    # within 0.1 std per joint (mean 0.03) where predict is off by more than 0.5 std
    assert guided_err.max() < 0.1 and guided_err.mean() < 0.03, guided_err
    assert predict_err.max() > 0.5
    # the un-guided tail (W = 0 for i >= H - s) is left to the model
    assert np.abs(guided[H - s:] - prev[H - s:]).max() > 0.1


def test_flow_zero_weights_equal_predict_from_same_seed(tmp_path):
    bundle, data = tiny_bundle(tmp_path, extra='  soft_mask_schedule: zeros\n')
    policy, norm = bundle.policy, bundle.normalizer
    prev = np.full((H, A), 7.0, np.float32)
    guided = policy.guided_inference(dict(data, prev_action=prev, est_delay=0), norm, 4, H)
    np.testing.assert_allclose(guided, policy.predict(data, norm), atol=1e-4)


def test_flow_seed_makes_predict_reproducible_and_unseeded_varies(tmp_path):
    bundle, data = tiny_bundle(tmp_path)
    first = bundle.policy.predict(data, bundle.normalizer)
    np.testing.assert_array_equal(first, bundle.policy.predict(data, bundle.normalizer))
    bundle.policy.noise_seed = None
    assert not np.allclose(first, bundle.policy.predict(data, bundle.normalizer))


@pytest.mark.parametrize('frozen', [True, False])
def test_guided_inference_leaves_no_grads(tmp_path, frozen):
    bundle, data = tiny_bundle(tmp_path)
    policy = bundle.policy
    if frozen:
        policy.freeze_all_model_params()
    before = {n: p.requires_grad for c in bundle.components.values()
              for n, p in c.named_parameters()}
    inputs = dict(data, prev_action=np.zeros((H, A), np.float32), est_delay=2)
    for _ in range(3):
        policy.guided_inference(inputs, bundle.normalizer, 4, H)
    for component in bundle.components.values():
        for name, p in component.named_parameters():
            assert p.grad is None, name
            assert p.requires_grad == before[name]
    assert torch.is_grad_enabled()                                  # global mode untouched
    with torch.inference_mode():    # a caller's inference_mode must not break guidance
        inside = policy.guided_inference(inputs, bundle.normalizer, 4, H)
    np.testing.assert_allclose(inside, policy.guided_inference(inputs, bundle.normalizer,
                                                               4, H), atol=1e-5)


def test_act_guided_is_soft_mask_blend(tmp_path):
    bundle, data = tiny_bundle(tmp_path, 'act')
    policy, norm = bundle.policy, bundle.normalizer
    prediction = policy.predict(data, norm)
    np.testing.assert_array_equal(prediction, policy.predict(data, norm))   # deterministic
    prev = np.full((H, A), 4.0, np.float32)
    guided = policy.guided_inference(dict(data, prev_action=prev, est_delay=2), norm, 4, H)
    from env_actor.base.soft_mask import soft_mask_weights
    w = soft_mask_weights(H, 4, 2)[:, None]
    np.testing.assert_allclose(guided, w * prev + (1 - w) * prediction, rtol=1e-6)


@pytest.mark.parametrize('name', ['flow_matching', 'act', 'replay', 'mlp_chunk'])
def test_shipped_examples_return_valid_chunks_and_reject_bad_inputs(name):
    bundle = build_policy_bundle(POLICIES / name / f'{name}.yaml')
    policy, norm = bundle.policy, bundle.normalizer
    assert isinstance(policy, Policy)
    spec = policy.spec
    data = synthetic_input(spec, np.random.default_rng(0))
    for inputs in (data, dict(data, prompt='pick up the cup')):
        chunk = policy.predict(inputs, norm)
        assert chunk.shape == (spec.action_chunk_size, spec.action_dim)
        assert chunk.dtype == np.float32 and np.all(np.isfinite(chunk))
    guided = policy.guided_inference(dict(data, prev_action=chunk, est_delay=2), norm,
                                     35, spec.action_chunk_size)
    assert guided.shape == chunk.shape and guided.dtype == np.float32
    missing = {k: v for k, v in data.items() if k != 'left'}
    with pytest.raises(ValueError, match="input_data lacks 'left'"):
        policy.predict(missing, norm)
    with pytest.raises(ValueError, match=r"input_data\['head'\] must be \(1, 3, 240, 320\) "
                                         r'uint8, got \(1, 3, 240, 320\) float32'):
        policy.predict(dict(data, head=data['head'].astype(np.float32)), norm)
    with pytest.raises(ValueError, match=r"input_data\['proprio'\] must be \(50, 24\)"):
        policy.predict(dict(data, proprio=data['proprio'][:10]), norm)
    with pytest.raises(ValueError, match="input_data lacks 'prev_action'"):
        policy.guided_inference(data, norm, 35, spec.action_chunk_size)


def test_warmup_runs_real_forward_passes(tmp_path):
    bundle, _ = tiny_bundle(tmp_path, extra='  warmup_iters: 2\n', num_steps=3)
    calls = []
    bundle.policy.head.register_forward_hook(lambda *args: calls.append(1))
    bundle.policy.warmup()
    assert len(calls) == 2 * (3 + 3)         # 2 x (predict + guided), 3 ODE steps each


def test_component_size_mismatch_is_reported(tmp_path):
    with pytest.raises(PolicyLoadError, match=r"component sizes do not match .*"
                                              r"'chunk_size': \(8, 9\)"):
        tiny_bundle(tmp_path, extra='  action_chunk_size: 9\n')


def test_replay_cursor_loop_and_reset(tmp_path):
    actions = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.savez(tmp_path / 'traj.npz', actions=actions)
    (tmp_path / 'none.yaml').write_text('type: identity\n')
    path = tmp_path / 'replay.yaml'
    path.write_text('model: {component_config_paths: {none: none.yaml}}\n'
                    'policy: {type: replay, actions_path: traj.npz, steps_per_call: 2, '
                    'action_chunk_size: 4, action_dim: 2, state_dim: 1, image_size: [2, 2], '
                    'cameras: []}\n')
    bundle = build_policy_bundle(path)
    policy, data = bundle.policy, {'proprio': np.zeros((1, 1), np.float32)}
    np.testing.assert_array_equal(policy.predict(data, None)[:, 0], [0, 2, 4, 6])
    np.testing.assert_array_equal(policy.predict(data, None)[:, 0], [4, 6, 8, 10])
    guided_in = dict(data, prev_action=np.zeros((4, 2), np.float32), est_delay=0)
    np.testing.assert_array_equal(policy.guided_inference(guided_in, None, 3, 4)[:, 0],
                                  [8, 10, 10, 10])              # held past the end
    policy.reset()
    np.testing.assert_array_equal(policy.predict(data, None)[:, 0], [0, 2, 4, 6])


def test_replay_file_errors(tmp_path):
    (tmp_path / 'none.yaml').write_text('type: identity\n')
    path = tmp_path / 'replay.yaml'
    path.write_text('model: {component_config_paths: {none: none.yaml}}\n'
                    'policy: {type: replay, actions_path: traj.csv, action_chunk_size: 4, '
                    'action_dim: 2, state_dim: 1}\n')
    with pytest.raises(PolicyLoadError, match='actions_path not found'):
        build_policy_bundle(path)
    (tmp_path / 'traj.csv').write_text('a,b,c\n1,2,3\n')
    with pytest.raises(PolicyLoadError, match=r'holds shape \(1, 3\), expected \(T, 2\)'):
        build_policy_bundle(path)


def paper_soft_mask(h: int, s: int, d: int) -> np.ndarray:
    """RTC soft mask ("exp"), written out from the paper, independent of runtime/."""
    w = np.zeros(h)
    for i in range(h):
        if i < d:
            w[i] = 1.0
        elif i < h - s:
            c = (h - s - i) / (h - s - d + 1)
            w[i] = c * (np.exp(c) - 1) / (np.e - 1)
    return w


def paper_guidance_weight(tau: float, beta: float) -> float:
    if tau == 0.0:
        return beta
    r2 = (1 - tau) ** 2 / (tau ** 2 + (1 - tau) ** 2)
    return min(beta, (1 - tau) / (tau * r2))


def test_guidance_weight_at_several_tau():
    from env_actor.policy.policies.flow_matching.flow_matching import guidance_weight
    # (1 - tau) / (tau r2) at tau = 0.2 / 0.4 / 0.6 / 0.8 is 4.25 / 2.1667 / 2.1667 / 4.25
    for tau, expected in ((0.0, 5.0), (0.2, 4.25), (0.4, 13 / 6), (0.6, 13 / 6),
                          (0.8, 4.25), (0.1, 5.0), (0.9, 5.0)):
        assert guidance_weight(tau, 5.0) == pytest.approx(expected)
        assert guidance_weight(tau, 5.0) == pytest.approx(paper_guidance_weight(tau, 5.0))
    assert guidance_weight(0.4, 1.0) == 1.0          # capped by beta


def test_flow_guided_inference_equals_the_paper_update_step_by_step(tmp_path):
    """An independent oracle: the full Jacobian (not a vjp), the weight and the soft mask
    written out, Euler steps of 1/n from the same seeded noise."""
    n, d, s = 5, 2, 3
    bundle, data = tiny_bundle(tmp_path, num_steps=n)
    policy, norm = bundle.policy, bundle.normalizer
    policy.freeze_all_model_params()
    prev = np.random.default_rng(5).normal(-1.0, 3.0, (H, A)).astype(np.float32)
    guided = policy.guided_inference(dict(data, prev_action=prev, est_delay=d), norm, s, H)

    with torch.no_grad():
        tokens = policy.encode(data, norm)
        target = norm.normalize_action(torch.from_numpy(prev))[None]
    weights = torch.from_numpy(paper_soft_mask(H, s, d)).float()[None, :, None]
    actions = policy.initial_noise()
    for step in range(n):
        tau = step / n

        def velocity(a):
            return policy.head(a, tokens, torch.full((1,), tau))

        def a1_hat(a):
            return a + (1 - tau) * velocity(a)
        jac = torch.autograd.functional.jacobian(a1_hat, actions).reshape(H * A, H * A)
        with torch.no_grad():
            error = ((target - a1_hat(actions)) * weights).reshape(H * A)
            g = (error @ jac).reshape(1, H, A)
            actions = actions + (velocity(actions) + paper_guidance_weight(tau, 5.0) * g) / n
    expected = policy.to_actions(actions, norm)
    np.testing.assert_allclose(guided, expected, atol=2e-4 * float(norm.action.std.max()))


def test_per_camera_image_encoders_see_their_own_camera(tmp_path):
    comp = tmp_path / 'components'
    comp.mkdir()
    for cam, stem in (('head', 8), ('left', 4)):
        (comp / f'{cam}.yaml').write_text(
            f'type: resnet_encoder\nparams: {{out_dim: 16, widths: [8], stem_width: {stem}}}\n')
    (comp / 'prop.yaml').write_text(f'type: mlp\nparams: {{in_dim: {HIST * S_DIM}, '
                                    'out_dim: 16, hidden_dims: [16]}\n')
    (comp / 'head_net.yaml').write_text(
        f'type: flow_transformer\nparams: {{action_dim: {A}, chunk_size: {H}, token_dim: 16, '
        'num_obs_tokens: 3, d_model: 32, depth: 1, heads: 2, ff_dim: 32}\n')
    yaml_text = (
        'model:\n  component_config_paths:\n    image_encoder_head: components/head.yaml\n'
        '    image_encoder_left: components/left.yaml\n'
        '    proprio_encoder: components/prop.yaml\n    velocity: components/head_net.yaml\n'
        f'policy:\n  type: flow_matching\n  action_chunk_size: {H}\n  action_dim: {A}\n'
        f'  state_dim: {S_DIM}\n  proprio_history_size: {HIST}\n  image_size: [16, 16]\n'
        '  cameras: [head, left]\n  num_steps: 2\n')
    path = tmp_path / 'policy.yaml'
    path.write_text(yaml_text)
    bundle = build_policy_bundle(path)
    seen = {}
    def hook(cam):
        def record(module, args, out):
            seen.setdefault(cam, float(args[0].float().mean()))
        return record
    for cam in ('head', 'left'):
        bundle.components[f'image_encoder_{cam}'].register_forward_hook(hook(cam))
    data = synthetic_input(bundle.policy.spec, np.random.default_rng(0))
    data['head'][:] = 0
    data['left'][:] = 255
    bundle.policy.predict(data, bundle.normalizer)
    assert set(seen) == {'head', 'left'} and seen['head'] < seen['left']
    path.write_text(yaml_text.replace('    image_encoder_left: components/left.yaml\n', ''))
    with pytest.raises(PolicyLoadError, match="missing components \\['image_encoder_left'\\]"):
        build_policy_bundle(path)


def test_flow_matching_arguments_defaults_and_messages(tmp_path):
    from env_actor.policy.policies.flow_matching.flow_matching import FlowMatchingPolicy
    bundle, data = tiny_bundle(tmp_path)
    shape = dict(action_chunk_size=H, action_dim=A, state_dim=S_DIM,
                 proprio_history_size=HIST, image_size=[16, 16], cameras=['head'])
    policy = FlowMatchingPolicy(bundle.components, **shape)
    assert (policy.num_steps, policy.beta, policy.schedule, policy.noise_seed) == \
        (10, 5.0, 'exp', None)
    one_step = FlowMatchingPolicy(bundle.components, num_steps=1, max_guidance_weight=0.0,
                                  **shape)
    assert one_step.num_steps == 1 and one_step.beta == 0.0
    for kwargs, message in (
            (dict(num_steps=0), 'flow_matching: num_steps must be >= 1, got 0'),
            (dict(max_guidance_weight=-0.5),
             'flow_matching: max_guidance_weight must be >= 0, got -0.5'),
            (dict(soft_mask_schedule='cubic'),
             r"flow_matching: soft_mask_schedule must be one of \('exp', 'linear', 'ones', "
             r"'zeros'\), got 'cubic'")):
        with pytest.raises(ValueError, match=message):
            FlowMatchingPolicy(bundle.components, **kwargs, **shape)
    prev = np.zeros((H, A), np.float32)
    with pytest.raises(ValueError, match=f'flow_matching: action_chunk_size {H + 1} differs '
                                         f'from the policy chunk size {H}'):
        bundle.policy.guided_inference(dict(data, prev_action=prev, est_delay=1),
                                       bundle.normalizer, 3, H + 1)
