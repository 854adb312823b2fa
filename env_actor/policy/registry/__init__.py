"""Global registries: POLICY_REGISTRY (Policy protocol) and COMPONENT_REGISTRY (nn.Module)."""
from env_actor.models.registry import COMPONENT_REGISTRY
from env_actor.policy.registry.core import Registry, UnknownRegistryKeyError
from env_actor.policy.templates.policy import Policy

POLICY_REGISTRY: Registry = Registry('policy', base=Policy)

__all__ = ['COMPONENT_REGISTRY', 'POLICY_REGISTRY', 'Registry', 'UnknownRegistryKeyError']
