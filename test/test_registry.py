"""Registry: registration, lookup errors, base-class and Protocol enforcement."""
import pytest
import torch.nn as nn

from env_actor.policy.registry import COMPONENT_REGISTRY, POLICY_REGISTRY, Registry
from env_actor.policy.registry.core import UnknownRegistryKeyError
from env_actor.policy.templates.policy import Policy


class GoodPolicy:
    def __init__(self, components, **kwargs):
        self.components = components

    def predict(self, input_data, data_normalization_interface):
        return None

    def guided_inference(self, input_data, data_normalization_interface,
                         min_num_actions_executed, action_chunk_size):
        return None

    def warmup(self):
        pass

    def freeze_all_model_params(self):
        pass


class NoWarmup:
    def predict(self, input_data, data_normalization_interface):
        return None

    def guided_inference(self, *args):
        return None

    def freeze_all_model_params(self):
        pass


def test_decorator_and_direct_registration():
    reg = Registry('thing')

    @reg.register('a')
    class A:
        pass

    reg.register('b', int)
    assert reg.get('a') is A and reg.get('b') is int
    assert reg.names() == ['a', 'b'] and 'a' in reg and len(reg) == 2


def test_duplicate_name_is_rejected_but_same_object_is_idempotent():
    reg = Registry('thing')
    reg.register('a', int)
    reg.register('a', int)
    with pytest.raises(ValueError, match=r"'a' is already registered to builtins.int"):
        reg.register('a', float)
    reg.register('a', float, override=True)
    assert reg.get('a') is float


def test_missing_key_lists_registered_names():
    reg = Registry('policy')
    reg.register('alpha', int)
    reg.register('beta', int)
    with pytest.raises(UnknownRegistryKeyError) as info:
        reg.get('gamma')
    assert str(info.value) == "unknown policy 'gamma'; registered: ['alpha', 'beta']"
    assert isinstance(info.value, KeyError)


def test_empty_name_rejected():
    with pytest.raises(ValueError, match='non-empty string'):
        Registry('x').register('', int)


def test_protocol_enforcement_names_missing_methods():
    reg = Registry('policy', base=Policy)
    reg.register('good', GoodPolicy)
    with pytest.raises(ValueError, match=r'does not satisfy Policy: missing method\(s\) '
                                         r'warmup'):
        reg.register('bad', NoWarmup)
    assert 'bad' not in reg


def test_base_class_enforcement():
    reg = Registry('component', base=nn.Module)
    reg.register('linear', nn.Linear)
    with pytest.raises(ValueError, match='is not a subclass of torch.nn.modules.module.Module'):
        reg.register('int', int)


def test_global_registries_enforce_their_bases():
    assert POLICY_REGISTRY.base is Policy
    assert COMPONENT_REGISTRY.base is nn.Module
    with pytest.raises(ValueError):
        POLICY_REGISTRY.register('no_warmup_policy', NoWarmup)
    assert isinstance(GoodPolicy({}), Policy)
    assert not isinstance(NoWarmup(), Policy)
