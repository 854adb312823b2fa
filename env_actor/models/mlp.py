"""A plain multi-layer perceptron component (`type: mlp`)."""
from typing import Sequence

import torch
import torch.nn as nn

from env_actor.models.registry import COMPONENT_REGISTRY

_ACTIVATIONS = {'relu': nn.ReLU, 'gelu': nn.GELU, 'silu': nn.SiLU, 'tanh': nn.Tanh}


@COMPONENT_REGISTRY.register('mlp')
class MLP(nn.Module):
    """Linear layers with an activation between them.

    Args:
        in_dim: input features.
        out_dim: output features.
        hidden_dims: widths of the hidden layers.
        activation: one of relu, gelu, silu, tanh.
        layer_norm: LayerNorm after each hidden linear layer.
    Raises:
        ValueError: non-positive sizes or an unknown activation.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dims: Sequence[int] = (256,),
                 activation: str = 'gelu', layer_norm: bool = False) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f'mlp.activation {activation!r} unknown; expected one of '
                             f'{sorted(_ACTIVATIONS)}')
        dims = [int(in_dim), *[int(h) for h in hidden_dims], int(out_dim)]
        if min(dims) < 1:
            raise ValueError(f'mlp sizes must be positive, got {dims}')
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                if layer_norm:
                    layers.append(nn.LayerNorm(b))
                layers.append(_ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers)
        self.in_dim, self.out_dim = dims[0], dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
