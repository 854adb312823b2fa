"""Global registries: POLICY_REGISTRY (Policy protocol) and COMPONENT_REGISTRY (nn.Module)."""
import torch.nn as nn

from env_actor.policy.registry.core import Registry, UnknownRegistryKeyError
from env_actor.policy.templates.policy import Policy

POLICY_REGISTRY: Registry = Registry('policy', base=Policy)
COMPONENT_REGISTRY: Registry = Registry('component', base=nn.Module)

__all__ = ['COMPONENT_REGISTRY', 'POLICY_REGISTRY', 'Registry', 'UnknownRegistryKeyError']
