"""`replay`: plays recorded actions through the policy interface (bring-up without a model).

The trajectory file is `.npz` (array `actions`, read with allow_pickle=False) or `.csv`
(one action per row; a header row is skipped), shape (T, action_dim). Each call returns
the H actions from a cursor (held at the last action past the end, or wrapped with
`loop: true`) and then advances the cursor: by `min_num_actions_executed` for
`guided_inference`, by `steps_per_call` (default H) for `predict`, which matches what the
executors run between two observations. `reset()` (called at each episode start) rewinds.
"""
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch.nn as nn

from env_actor.policy.registry import POLICY_REGISTRY
from env_actor.policy.utils.spec import PolicySpec, validate_input_data


def load_trajectory(path: Path, action_dim: int) -> np.ndarray:
    """Read a (T, action_dim) float32 trajectory from .npz or .csv.

    Raises:
        FileNotFoundError / ValueError: missing file, unknown suffix, wrong shape, NaN.
    """
    if not path.is_file():
        raise FileNotFoundError(f'replay: actions_path not found: {path}')
    if path.suffix == '.npz':
        with np.load(path, allow_pickle=False) as data:
            if 'actions' not in data:
                raise ValueError(f'replay: {path} has no array `actions` (has '
                                 f'{sorted(data.files)})')
            actions = np.asarray(data['actions'], dtype=np.float32)
    elif path.suffix == '.csv':
        text = path.read_text(encoding='utf-8').splitlines()
        skip = 1 if text and any(c.isalpha() for c in text[0]) else 0
        actions = np.loadtxt(path, delimiter=',', skiprows=skip, dtype=np.float32, ndmin=2)
    else:
        raise ValueError(f'replay: {path} must be .npz or .csv')
    if actions.ndim != 2 or actions.shape[1] != action_dim or len(actions) == 0:
        raise ValueError(f'replay: {path} holds shape {actions.shape}, expected '
                         f'(T, {action_dim})')
    if not np.all(np.isfinite(actions)):
        raise ValueError(f'replay: {path} contains NaN or inf')
    return actions


@POLICY_REGISTRY.register('replay')
class ReplayPolicy:
    """Components: any (e.g. `type: identity`); they are not used."""

    def __init__(self, components: dict[str, nn.Module], actions_path: str,
                 steps_per_call: Optional[int] = None, loop: bool = False,
                 **kwargs: Any) -> None:
        self.components = components
        self.spec = PolicySpec.from_config(kwargs, 'replay policy')
        self.actions = load_trajectory(Path(actions_path), self.spec.action_dim)
        self.steps_per_call = int(steps_per_call or self.spec.action_chunk_size)
        self.loop = bool(loop)
        self.cursor = 0

    def reset(self) -> None:
        self.cursor = 0

    def _next_chunk(self, advance: int) -> np.ndarray:
        rows = np.arange(self.cursor, self.cursor + self.spec.action_chunk_size)
        rows = rows % len(self.actions) if self.loop else rows.clip(max=len(self.actions) - 1)
        self.cursor += advance
        return self.actions[rows].copy()

    def predict(self, input_data: dict, data_normalization_interface) -> np.ndarray:
        validate_input_data(input_data, self.spec)
        return self._next_chunk(self.steps_per_call)

    def guided_inference(self, input_data: dict, data_normalization_interface,
                         min_num_actions_executed, action_chunk_size) -> np.ndarray:
        validate_input_data(input_data, self.spec, guided=True)
        return self._next_chunk(int(min_num_actions_executed))

    def warmup(self) -> None:
        pass

    def freeze_all_model_params(self) -> None:
        for module in self.components.values():
            for p in module.parameters():
                p.requires_grad = False
