"""COMPONENT_REGISTRY: nn.Module building blocks by name (also exported by
env_actor.policy.registry)."""
import torch.nn as nn

from env_actor.base.registry import Registry

COMPONENT_REGISTRY: Registry = Registry('component', base=nn.Module)
