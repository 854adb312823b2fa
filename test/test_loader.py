"""build_policy: the seed example, the shipped example, checkpoints and every bad input."""
import importlib
from pathlib import Path
import shutil
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import env_actor.policy.policies as policies_pkg
from env_actor.policy.registry import POLICY_REGISTRY
from env_actor.policy.templates.policy import Policy
from env_actor.policy.utils.errors import PolicyFileNotFoundError, PolicyLoadError
from env_actor.policy.utils.loader import build_component, build_policy, build_policy_bundle
from env_actor.tools.smoke import EXAMPLE_POLICY, synthetic_input

FIXTURES = Path(__file__).parent / 'fixtures'
SEED_MODULE = 'env_actor.policy.policies.your_policy'


@pytest.fixture
def seed_policy_dir(tmp_path, monkeypatch):
    """The seed example dropped into a policies/ folder the auto-import searches."""
    policies_root = tmp_path / 'policies'
    shutil.copytree(FIXTURES / 'your_policy', policies_root / 'your_policy')
    monkeypatch.setattr(policies_pkg, '__path__', [*policies_pkg.__path__,
                                                   str(policies_root)])
    yield policies_root / 'your_policy'
    POLICY_REGISTRY.unregister('your_policy')
    for name in [m for m in sys.modules if m.startswith(SEED_MODULE)]:
        del sys.modules[name]


def test_seed_example_via_auto_import(seed_policy_dir):
    assert 'your_policy' not in POLICY_REGISTRY
    policy = build_policy(seed_policy_dir / 'your_policy.yaml')
    assert type(policy).__name__ == 'YourPolicy'
    assert type(policy).__module__ == f'{SEED_MODULE}.your_policy'
    assert isinstance(policy, Policy)
    assert isinstance(policy.model, torch.nn.Module)
    assert policy.model.in_dim == 6 and policy.model.out_dim == 4
    policy.freeze_all_model_params()
    assert not any(p.requires_grad for p in policy.model.parameters())


def test_seed_example_pre_imported(seed_policy_dir):
    module = importlib.import_module(f'{SEED_MODULE}.your_policy')
    assert POLICY_REGISTRY.get('your_policy') is module.YourPolicy
    policy = build_policy(str(seed_policy_dir / 'your_policy.yaml'))
    assert type(policy) is module.YourPolicy


def test_example_policy_predicts_a_chunk():
    bundle = build_policy_bundle(EXAMPLE_POLICY)
    spec = bundle.policy.spec
    data = synthetic_input(spec, np.random.default_rng(0))
    chunk = bundle.policy.predict(data, bundle.normalizer)
    assert chunk.shape == (50, 24) and chunk.dtype == np.float32
    assert np.all(np.isfinite(chunk))
    guided = bundle.policy.guided_inference(dict(data, prev_action=chunk + 1.0, est_delay=4),
                                            bundle.normalizer, 25, 50)
    np.testing.assert_allclose(guided[:4], chunk[:4] + 1.0, rtol=1e-6)
    np.testing.assert_allclose(guided[25:], chunk[25:], rtol=1e-6)


def write_bundle(root: Path, policy_extra: str = '', checkpoint: str = '') -> Path:
    """A minimal mlp_chunk bundle with tiny shapes; returns the policy YAML path."""
    (root / 'components').mkdir(parents=True, exist_ok=True)
    (root / 'components' / 'mlp.yaml').write_text(
        'type: mlp\nparams: {in_dim: 7, out_dim: 6, hidden_dims: [5]}\n')
    yaml_path = root / 'policy.yaml'
    yaml_path.write_text(
        'model:\n  component_config_paths:\n    main: components/mlp.yaml\n'
        f'{checkpoint}'
        'policy:\n  type: mlp_chunk\n  action_chunk_size: 3\n  action_dim: 2\n'
        '  state_dim: 2\n  proprio_history_size: 2\n  image_size: [4, 4]\n'
        f'  cameras: [head]\n{policy_extra}')
    return yaml_path


def reference_weights():
    torch.manual_seed(123)
    return build_component(FIXTURES / 'your_policy' / 'components' / 'your_model.yaml')


@pytest.mark.parametrize('fmt', ['pt', 'safetensors'])
def test_checkpoint_loads_exact_weights(tmp_path, fmt):
    yaml_path = write_bundle(tmp_path, checkpoint='  checkpoint_path: weights\n')
    torch.manual_seed(7)
    source = build_policy(write_bundle(tmp_path / 'src')).model
    (tmp_path / 'weights').mkdir()
    if fmt == 'pt':
        torch.save(source.state_dict(), tmp_path / 'weights' / 'main.pt')
    else:
        save_file(source.state_dict(), str(tmp_path / 'weights' / 'main.safetensors'))
    loaded = build_policy(yaml_path).model
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_checkpoint_with_pickled_object_is_refused(tmp_path):
    yaml_path = write_bundle(tmp_path, checkpoint='  checkpoint_path: weights\n')
    (tmp_path / 'weights').mkdir()
    torch.save({'net.0.weight': Path('/etc/passwd')}, tmp_path / 'weights' / 'main.pt')
    with pytest.raises(PolicyLoadError, match=r'main\.pt \(weights_only=True\)'):
        build_policy(yaml_path)


def checkpoint_bundle(tmp_path, state):
    yaml_path = write_bundle(tmp_path, checkpoint='  checkpoint_path: weights\n')
    (tmp_path / 'weights').mkdir()
    torch.save(state, tmp_path / 'weights' / 'main.pt')
    return yaml_path


def good_state(tmp_path):
    return build_policy(write_bundle(tmp_path / 'src')).model.state_dict()


def test_checkpoint_wrong_keys(tmp_path):
    state = good_state(tmp_path)
    state['net.9.weight'] = state.pop('net.0.weight')
    with pytest.raises(PolicyLoadError, match=r"component 'main': missing keys "
                                              r"\['net.0.weight'\], unexpected keys "
                                              r"\['net.9.weight'\]"):
        build_policy(checkpoint_bundle(tmp_path, state))


def test_checkpoint_wrong_shape(tmp_path):
    state = good_state(tmp_path)
    state['net.0.weight'] = torch.zeros(5, 8)
    with pytest.raises(PolicyLoadError, match=r"component 'main': key 'net.0.weight' has "
                                              r"shape \(5, 8\), model expects \(5, 7\)"):
        build_policy(checkpoint_bundle(tmp_path, state))


def test_missing_checkpoint(tmp_path):
    yaml_path = write_bundle(tmp_path, checkpoint='  checkpoint_path: weights\n')
    with pytest.raises(PolicyFileNotFoundError, match='checkpoint_path` folder not found'):
        build_policy(yaml_path)
    (tmp_path / 'weights').mkdir()
    with pytest.raises(PolicyFileNotFoundError,
                       match=r"checkpoint for component 'main' not found: expected .*"
                             r"main\.safetensors or .*main\.pt"):
        build_policy(yaml_path)


def yaml_file(tmp_path, text):
    path = tmp_path / 'policy.yaml'
    path.write_text(text)
    return path


@pytest.mark.parametrize('text, message', [
    ('model: [unclosed', 'malformed policy YAML'),
    ('- a\n- b\n', 'top level must be a mapping'),
    ('policy: {type: mlp_chunk}\n', 'missing mapping `model`'),
    ('model: {component_config_paths: {}}\npolicy: {type: mlp_chunk}\n',
     '`model.component_config_paths` must be a non-empty mapping'),
    ('model: {component_config_paths: {main: c.yaml}}\npolicy: {name: x}\n',
     'missing `policy.type`'),
    ('model: {component_config_paths: {main: c.yaml}}\npolicy: {type: 3}\n',
     '`policy.type` must be a string'),
])
def test_malformed_policy_yaml(tmp_path, text, message):
    path = yaml_file(tmp_path, text)
    with pytest.raises(PolicyLoadError, match=message) as info:
        build_policy(path)
    assert str(path) in str(info.value)


def test_missing_policy_yaml(tmp_path):
    with pytest.raises(PolicyFileNotFoundError, match='policy YAML file not found'):
        build_policy(tmp_path / 'absent.yaml')


@pytest.mark.parametrize('ptype', ['no_such_policy', '../x', 'os.path', 'os', 'class'])
def test_unknown_or_unsafe_type_lists_registered(tmp_path, ptype):
    (tmp_path / 'c.yaml').write_text('type: mlp\nparams: {in_dim: 1, out_dim: 1}\n')
    path = yaml_file(tmp_path, 'model: {component_config_paths: {main: c.yaml}}\n'
                               f'policy: {{type: "{ptype}"}}\n')
    modules_before = set(sys.modules)
    with pytest.raises(PolicyLoadError) as info:
        build_policy(path)
    # every policy on disk, imported or not (they are imported lazily)
    available = str(info.value).split('available: ')[1]
    for name in ('act', 'flow_matching', 'mlp_chunk', 'replay'):
        assert repr(name) in available
    assert repr(ptype) in str(info.value)
    assert not {m for m in set(sys.modules) - modules_before if not m.startswith('env_actor')}


def test_missing_component_file_and_unknown_component(tmp_path):
    path = yaml_file(tmp_path, 'model: {component_config_paths: {main: nope.yaml}}\n'
                               'policy: {type: mlp_chunk}\n')
    with pytest.raises(PolicyFileNotFoundError,
                       match=r"component YAML for 'main' file not found: .*nope\.yaml"):
        build_policy(path)
    (tmp_path / 'nope.yaml').write_text('type: resnet9000\n')
    with pytest.raises(PolicyLoadError, match=r"unknown component type 'resnet9000'; "
                                              r"registered: \[.*'mlp'.*\]"):
        build_policy(path)
    (tmp_path / 'nope.yaml').write_text('type: mlp\nparams: {in_dim: 2}\n')
    with pytest.raises(PolicyLoadError, match=r"cannot build component 'mlp'"):
        build_policy(path)


def test_class_not_satisfying_protocol_is_rejected(tmp_path, monkeypatch):
    root = tmp_path / 'policies' / 'half_policy'
    root.mkdir(parents=True)
    (root / 'half_policy.py').write_text(
        'from env_actor.policy.registry import POLICY_REGISTRY\n\n'
        '@POLICY_REGISTRY.register("half_policy")\n'
        'class HalfPolicy:\n'
        '    def __init__(self, components, **kwargs):\n        pass\n'
        '    def predict(self, input_data, norm):\n        return None\n')
    monkeypatch.setattr(policies_pkg, '__path__', [*policies_pkg.__path__,
                                                   str(tmp_path / 'policies')])
    (tmp_path / 'c.yaml').write_text('type: mlp\nparams: {in_dim: 1, out_dim: 1}\n')
    path = yaml_file(tmp_path, 'model: {component_config_paths: {main: c.yaml}}\n'
                               'policy: {type: half_policy}\n')
    with pytest.raises(ValueError, match=r'HalfPolicy .* does not satisfy Policy: missing '
                                         r'method\(s\) freeze_all_model_params, '
                                         r'guided_inference, warmup'):
        build_policy(path)
    assert 'half_policy' not in POLICY_REGISTRY


def test_policy_kwargs_errors_name_the_file(tmp_path):
    path = write_bundle(tmp_path, policy_extra='  image_size: [4]\n')
    path.write_text(path.read_text().replace('  image_size: [4, 4]\n', ''))
    with pytest.raises(PolicyLoadError, match=r'policy.image_size must be \[height, width\]') \
            as info:
        build_policy(path)
    assert str(path) in str(info.value)
