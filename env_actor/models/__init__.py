"""nn.Module building blocks, registered in COMPONENT_REGISTRY by name.

Importing this package registers every built-in component.
"""
from env_actor.models import mlp  # noqa: F401

__all__ = ['mlp']
