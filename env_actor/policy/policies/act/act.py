"""`act`: ACT-style deterministic chunk prediction.

`predict` decodes a whole chunk with learned action queries; `guided_inference` blends it
with the previous chunk through the RTC soft mask (docs/runtime.md):
    W * prev_action + (1 - W) * prediction
YAML keys: soft_mask_schedule (exp).
"""
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from env_actor.policy.registry import POLICY_REGISTRY
from env_actor.policy.utils.torch_policy import TorchChunkPolicy
from env_actor.base.soft_mask import SCHEDULES, soft_mask_weights


@POLICY_REGISTRY.register('act')
class ACTPolicy(TorchChunkPolicy):
    """Components: image_encoder (or image_encoder_<cam>), proprio_encoder, decoder."""

    head_name = 'decoder'

    def __init__(self, components: dict[str, nn.Module], soft_mask_schedule: str = 'exp',
                 **kwargs: Any) -> None:
        super().__init__(components, **kwargs)
        if soft_mask_schedule not in SCHEDULES:
            raise ValueError(f'act: soft_mask_schedule must be one of {SCHEDULES}, got '
                             f'{soft_mask_schedule!r}')
        self.schedule = soft_mask_schedule

    def predict(self, input_data: dict, data_normalization_interface) -> np.ndarray:
        self.validate(input_data)
        tokens = self.encode(input_data, data_normalization_interface)
        with torch.no_grad(), self.autocast():
            chunk = self.head(tokens).float()
        return self.to_actions(chunk, data_normalization_interface)

    def guided_inference(self, input_data: dict, data_normalization_interface,
                         min_num_actions_executed, action_chunk_size) -> np.ndarray:
        self.validate(input_data, guided=True)
        prediction = self.predict(input_data, data_normalization_interface)
        weights = soft_mask_weights(action_chunk_size, int(min_num_actions_executed),
                                    int(input_data['est_delay']), self.schedule)[:, None]
        blended = weights * input_data['prev_action'] + (1.0 - weights) * prediction
        return blended.astype(np.float32)
