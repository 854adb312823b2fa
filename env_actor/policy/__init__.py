"""Policy loading, registration and protocol (see README 'Adding a policy').

`build_policy` and `build_policy_bundle` are importable from here (loaded on first use, so
`import env_actor.policy.registry` stays light).
"""
__all__ = ['build_policy', 'build_policy_bundle']


def __getattr__(name: str):
    if name in __all__:
        from env_actor.policy.utils import loader
        return getattr(loader, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
