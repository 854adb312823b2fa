"""A small ResNet-style image encoder in plain torch (`type: resnet_encoder`).

Input: (B, 3, H, W) uint8 or float in [0, 1]; ImageNet mean/std standardisation happens
inside, so callers pass raw camera pixels. Output: (B, out_dim) features.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn

from env_actor.models.registry import COMPONENT_REGISTRY

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (ResNet v1 basic block, GroupNorm)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(min(8, out_ch), out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(min(8, out_ch), out_ch)
        self.skip = (nn.Identity() if stride == 1 and in_ch == out_ch else
                     nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False),
                                   nn.GroupNorm(min(8, out_ch), out_ch)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(y)) + self.skip(x))


class SpatialSoftmax(nn.Module):
    """Per channel, the softmax-weighted mean image coordinate: (B, C, H, W) -> (B, 2C).

    Keeps *where* features are (what a reaching policy needs), unlike average pooling.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        weights = torch.softmax(x.reshape(b, c, h * w), dim=-1)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
        ex = (weights * grid_x.reshape(1, 1, -1)).sum(-1)
        ey = (weights * grid_y.reshape(1, 1, -1)).sum(-1)
        return torch.cat([ex, ey], dim=1)


@COMPONENT_REGISTRY.register('resnet_encoder')
class ResNetEncoder(nn.Module):
    """Stem conv (stride 2) + one BasicBlock per width + pooling + linear.

    Args:
        out_dim: feature size.
        widths: channels of the stages.
        stem_width: channels of the stem.
        pool: `avg` (global average) or `spatial_softmax` (expected x, y per channel).
        strides: stride of each stage, 1 or 2 (default: 2 each, halving the resolution);
            a finer last feature map lets spatial-softmax keypoints be more precise.
    Raises:
        ValueError: empty widths, non-positive sizes, strides not matching widths or not
            1/2, or an unknown pool.
    """

    def __init__(self, out_dim: int = 128, widths: Sequence[int] = (32, 64, 128),
                 stem_width: int = 32, pool: str = 'avg',
                 strides: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        if not widths or min(widths) < 1 or out_dim < 1 or stem_width < 1:
            raise ValueError(f'resnet_encoder: sizes must be positive, got out_dim={out_dim}, '
                             f'widths={list(widths)}, stem_width={stem_width}')
        strides = [2] * len(widths) if strides is None else list(strides)
        if len(strides) != len(widths) or any(s not in (1, 2) for s in strides):
            raise ValueError(f'resnet_encoder: strides must be 1 or 2, one per width '
                             f'({len(widths)}), got {strides}')
        if pool not in ('avg', 'spatial_softmax'):
            raise ValueError(f"resnet_encoder: pool must be 'avg' or 'spatial_softmax', got "
                             f'{pool!r}')
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)
        self.stem = nn.Sequential(nn.Conv2d(3, stem_width, 5, 2, 2, bias=False),
                                  nn.GroupNorm(min(8, stem_width), stem_width), nn.ReLU())
        blocks, channels = [], stem_width
        for width, stride in zip(widths, strides):
            blocks.append(BasicBlock(channels, width, stride))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = SpatialSoftmax() if pool == 'spatial_softmax' else None
        self.proj = nn.Linear(2 * channels if self.pool is not None else channels, out_dim)
        self.out_dim = out_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images
        x = (x - self.mean) / self.std
        x = self.blocks(self.stem(x))
        pooled = self.pool(x) if self.pool is not None else x.mean(dim=(2, 3))
        return self.proj(pooled)
