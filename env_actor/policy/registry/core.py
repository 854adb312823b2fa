"""The generic `Registry` (defined in env_actor.base.registry, the bottom layer, so that
models and policies both use it without an import cycle)."""
from env_actor.base.registry import Registry, UnknownRegistryKeyError

__all__ = ['Registry', 'UnknownRegistryKeyError']
