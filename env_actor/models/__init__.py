"""nn.Module building blocks, registered in COMPONENT_REGISTRY by name.

Importing this package registers every built-in component:
`mlp`, `resnet_encoder`, `flow_transformer`, `act_decoder`, `identity`.
"""
from env_actor.models import chunk_heads, mlp, vision  # noqa: F401

__all__ = ['chunk_heads', 'mlp', 'vision']
