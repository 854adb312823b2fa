"""`mlp_chunk`: the smallest real policy, for bring-up and examples.

Features: the normalised proprio history (flattened) and the mean RGB of each camera's
newest frame; an `mlp` component maps them to a whole normalised action chunk.
`guided_inference` blends with the soft mask: W * prev_action + (1 - W) * prediction.
"""
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from env_actor.policy.registry import POLICY_REGISTRY
from env_actor.policy.utils.spec import PolicySpec, validate_input_data
from env_actor.base.soft_mask import soft_mask_weights


@POLICY_REGISTRY.register('mlp_chunk')
class MlpChunkPolicy:
    """MLP from (proprio history, per-camera mean colour) to an action chunk."""

    def __init__(self, components: dict[str, nn.Module], soft_mask_schedule: str = 'exp',
                 **kwargs: Any) -> None:
        if 'main' not in components:
            raise ValueError(f'mlp_chunk needs a component named `main`, got '
                             f'{sorted(components)}')
        self.spec = PolicySpec.from_config(kwargs, 'mlp_chunk policy')
        self.model = components['main']
        self.soft_mask_schedule = soft_mask_schedule
        spec = self.spec
        in_dim = spec.proprio_history_size * spec.state_dim + 3 * len(spec.cameras)
        out_dim = spec.action_chunk_size * spec.action_dim
        if getattr(self.model, 'in_dim', in_dim) != in_dim or \
                getattr(self.model, 'out_dim', out_dim) != out_dim:
            raise ValueError(f'mlp_chunk: component `main` must map {in_dim} -> {out_dim} '
                             f'features for these shapes, got {self.model.in_dim} -> '
                             f'{self.model.out_dim}')
        self.device = next(self.model.parameters()).device
        self.model.eval()

    def _features(self, input_data: dict, norm) -> torch.Tensor:
        proprio = torch.from_numpy(input_data['proprio']).to(self.device)
        proprio = norm.normalize_proprio(proprio).reshape(-1)
        colours = [norm.image_to_float(torch.from_numpy(np.ascontiguousarray(
                       input_data[cam][-1])).to(self.device))
                   .mean(dim=(1, 2)) for cam in self.spec.cameras]
        return torch.cat([proprio, *colours]).unsqueeze(0)

    def predict(self, input_data: dict, data_normalization_interface) -> np.ndarray:
        validate_input_data(input_data, self.spec)
        with torch.no_grad():
            out = self.model(self._features(input_data, data_normalization_interface))
            chunk = out.reshape(self.spec.action_chunk_size, self.spec.action_dim)
            chunk = data_normalization_interface.denormalize_action(chunk)
        return chunk.float().cpu().numpy()

    def guided_inference(self, input_data: dict, data_normalization_interface,
                         min_num_actions_executed, action_chunk_size) -> np.ndarray:
        validate_input_data(input_data, self.spec, guided=True)
        prediction = self.predict(input_data, data_normalization_interface)
        weights = soft_mask_weights(action_chunk_size, min_num_actions_executed,
                                    input_data['est_delay'], self.soft_mask_schedule)[:, None]
        blended = weights * input_data['prev_action'] + (1.0 - weights) * prediction
        return blended.astype(np.float32)

    def warmup(self) -> None:
        from env_actor.policy.utils.normalization import DataNormalizationInterface
        self.predict(self.spec.zeros_input(), DataNormalizationInterface.identity())

    def freeze_all_model_params(self) -> None:
        for p in self.model.parameters():
            p.requires_grad = False
