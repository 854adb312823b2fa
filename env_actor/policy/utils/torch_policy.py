"""Shared machinery of the torch chunk policies (`flow_matching`, `act`).

Observation tokens: each camera frame goes through `image_encoder_<camera>` if the policy
YAML defines one, else through the shared `image_encoder`; the flattened, normalised
proprio history goes through `proprio_encoder`. Token order: cameras in `policy.cameras`
order (frames oldest-first within a camera), then proprio. All tokens have `token_dim`
features, so T = len(cameras) * num_img_obs + 1.

Policy YAML keys read here (besides the PolicySpec shapes):
    warmup_iters: 2          # forward passes in warmup()
    compile: false           # torch.compile the chunk head (CUDA only)
    autocast: null           # 'bf16' or 'fp16': autocast on CUDA
    cudnn_benchmark: true    # on CUDA
`prompt` is accepted and ignored (these models have no language input).
"""
import contextlib
from typing import Any, Optional

import numpy as np
import torch
import torch.nn as nn

from env_actor.policy.utils.normalization import DataNormalizationInterface
from env_actor.policy.utils.spec import PolicySpec, validate_input_data

_AUTOCAST = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def encode_observations(image_encoders: list, proprio_encoder: nn.Module,
                        images: list, proprio_normalized: torch.Tensor) -> torch.Tensor:
    """Batched observation tokens, shared by inference and training.

    Args:
        image_encoders: one encoder per camera (the same module when shared).
        proprio_encoder: maps (B, P * S) to (B, D).
        images: per camera, (B, num_img_obs, 3, H, W) uint8 (or float in [0, 1]).
        proprio_normalized: (B, P * S) normalised, flattened proprio history.
    Returns:
        (B, len(cameras) * num_img_obs + 1, D): camera frames (oldest-first per camera,
        cameras in order), then proprio.
    """
    tokens = []
    for encoder, frames in zip(image_encoders, images):
        batch, count = frames.shape[:2]
        features = encoder(frames.reshape(batch * count, *frames.shape[2:]))
        tokens.append(features.reshape(batch, count, -1))
    tokens.append(proprio_encoder(proprio_normalized)[:, None])
    return torch.cat(tokens, dim=1)


class TorchChunkPolicy:
    """Base for policies made of image/proprio encoders and a chunk head component."""

    head_name = 'head'

    def __init__(self, components: dict[str, nn.Module], warmup_iters: int = 2,
                 compile: bool = False, autocast: Optional[str] = None,  # noqa: A002
                 cudnn_benchmark: bool = True, **kwargs: Any) -> None:
        name = type(self).__name__
        self.spec = PolicySpec.from_config(kwargs, name)
        required = {self.head_name, 'proprio_encoder'}
        if 'image_encoder' not in components:
            required |= {f'image_encoder_{cam}' for cam in self.spec.cameras}
        missing = sorted(required - set(components))
        if missing:
            raise ValueError(f'{name}: missing components {missing} (have '
                             f'{sorted(components)})')
        if autocast is not None and autocast not in _AUTOCAST:
            raise ValueError(f'{name}: autocast must be one of {sorted(_AUTOCAST)} or null, '
                             f'got {autocast!r}')
        self.components = components
        self.image_encoders = {cam: components.get(f'image_encoder_{cam}',
                                                   components.get('image_encoder'))
                               for cam in self.spec.cameras}
        self.proprio_encoder = components['proprio_encoder']
        self.head = components[self.head_name]
        self.device = next(self.head.parameters()).device
        self.warmup_iters = int(warmup_iters)
        self.autocast_dtype = _AUTOCAST.get(autocast) if autocast else None
        self._check_sizes()
        for module in components.values():
            module.eval()
        if self.device.type == 'cuda':
            torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
            if compile:
                self.head = torch.compile(self.head)

    def _check_sizes(self) -> None:
        spec, head = self.spec, self.head
        tokens = len(spec.cameras) * spec.num_img_obs + 1
        expected = {'action_dim': spec.action_dim, 'chunk_size': spec.action_chunk_size,
                    'num_obs_tokens': tokens}
        wrong = {k: (getattr(head, k), v) for k, v in expected.items()
                 if getattr(head, k, v) != v}
        proprio_in = getattr(self.proprio_encoder, 'in_dim', None)
        if proprio_in not in (None, spec.proprio_history_size * spec.state_dim):
            wrong['proprio_encoder.in_dim'] = (proprio_in,
                                              spec.proprio_history_size * spec.state_dim)
        if wrong:
            raise ValueError(f'{type(self).__name__}: component sizes do not match the policy '
                             f'shapes (component value, expected): {wrong}')

    def autocast(self):
        if self.autocast_dtype is None or self.device.type != 'cuda':
            return contextlib.nullcontext()
        return torch.autocast('cuda', dtype=self.autocast_dtype)

    def encode(self, input_data: dict, norm: DataNormalizationInterface) -> torch.Tensor:
        """Observation tokens (1, T, token_dim) (no grad)."""
        # one copy per inference: frames may be strided views on messages
        images = [torch.from_numpy(np.ascontiguousarray(input_data[cam]))[None]
                  .to(self.device) for cam in self.spec.cameras]
        proprio = torch.from_numpy(input_data['proprio']).to(self.device)
        proprio = norm.normalize_proprio(proprio).reshape(1, -1)
        with torch.no_grad(), self.autocast():
            return encode_observations([self.image_encoders[c] for c in self.spec.cameras],
                                       self.proprio_encoder, images, proprio).float()

    def to_actions(self, normalized: torch.Tensor,
                   norm: DataNormalizationInterface) -> np.ndarray:
        """(1, H, A) model-space chunk -> de-normalised (H, A) float32 array."""
        chunk = norm.denormalize_action(normalized[0].detach().float())
        return chunk.cpu().numpy().astype(np.float32, copy=False)

    def validate(self, input_data: dict, guided: bool = False) -> None:
        validate_input_data(input_data, self.spec, guided)

    def warmup(self) -> None:
        """Real forward passes (predict and guided) at the configured shapes."""
        norm = DataNormalizationInterface.identity()
        data = self.spec.zeros_input(guided=True)
        horizon = max(1, self.spec.action_chunk_size // 2)
        for _ in range(self.warmup_iters):
            self.predict(data, norm)
            self.guided_inference(data, norm, horizon, self.spec.action_chunk_size)
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def freeze_all_model_params(self) -> None:
        for module in self.components.values():
            module.eval()
            for p in module.parameters():
                p.requires_grad = False
