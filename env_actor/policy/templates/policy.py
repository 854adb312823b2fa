"""The `Policy` protocol: the interface every inference policy satisfies.

Structural subtyping: a policy class needs no base class, only these methods.

Shapes (history axis is always oldest-first: index -1 is the newest sample):
    input_data['proprio']: (proprio_history_size, state_dim) float32
    input_data['head' | 'left' | 'right']: (num_img_obs, 3, H, W) uint8
    input_data['prompt']: optional str
    guided_inference only:
        input_data['est_delay']: int, estimated inference delay in control steps
        input_data['prev_action']: (action_chunk_size, action_dim) float32, the previous
            chunk's not-yet-executed actions; index 0 is the control step of the new
            observation, padded past its end by repeating its last action.
    return: (action_chunk_size, action_dim) float32 np.ndarray
"""
from typing import Protocol, runtime_checkable

import numpy as np
import torch.nn as nn


@runtime_checkable
class Policy(Protocol):
    """What the executors call; see the module docstring for shapes."""

    def __init__(self, components: dict[str, nn.Module], **kwargs) -> None: ...

    def predict(self, input_data: dict, data_normalization_interface) -> np.ndarray: ...

    def guided_inference(self, input_data: dict, data_normalization_interface,
                         min_num_actions_executed, action_chunk_size) -> np.ndarray: ...

    def warmup(self) -> None: ...

    def freeze_all_model_params(self) -> None: ...
