"""The data normalization interface policies receive as `data_normalization_interface`.

Stats file (JSON, no pickle), written by the training tool::

    {
      "format": "env_actor.normalization/v1",
      "proprio": {"mean": [...], "std": [...], "min": [...], "max": [...]},
      "action":  {"mean": [...], "std": [...], "min": [...], "max": [...]}
    }

Per-feature lists have one entry per dimension (state_dim for proprio, action_dim for
action). Modes, chosen in the policy YAML `normalization` section:
    zscore:   (x - mean) / max(std, eps)
    minmax:   2 (x - min) / max(max - min, eps) - 1   (maps [min, max] to [-1, 1])
    identity: x
Images: uint8 (..., 3, H, W) -> float32 in [0, 1]; ImageNet mean/std standardisation is
the image encoder's job (it lives inside the model).

Policy YAML section::

    normalization:
      stats_path: stats.json   # relative to the policy YAML
      proprio: zscore          # zscore | minmax | identity (default zscore)
      action: zscore
"""
import json
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

from env_actor.policy.utils.errors import PolicyFileNotFoundError, PolicyLoadError

STATS_FORMAT = 'env_actor.normalization/v1'
MODES = ('zscore', 'minmax', 'identity')
STAT_KEYS = ('mean', 'std', 'min', 'max')
EPS = 1e-6
Array = Union[np.ndarray, torch.Tensor]


class FeatureStats:
    """Per-dimension statistics of one feature (proprio or action)."""

    def __init__(self, mean, std, min, max) -> None:  # noqa: A002 (names of the file keys)
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.min = np.asarray(min, dtype=np.float32)
        self.max = np.asarray(max, dtype=np.float32)
        dims = {self.mean.shape, self.std.shape, self.min.shape, self.max.shape}
        if len(dims) != 1 or self.mean.ndim != 1:
            raise ValueError(f'mean/std/min/max must be 1-D of equal length, got shapes '
                             f'{[a.shape for a in (self.mean, self.std, self.min, self.max)]}')
        for key in STAT_KEYS:
            if not np.all(np.isfinite(getattr(self, key))):
                raise ValueError(f'`{key}` contains NaN or inf')

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def from_samples(cls, samples: np.ndarray) -> 'FeatureStats':
        """Compute stats over all leading axes of `samples` (..., dim)."""
        flat = np.asarray(samples, dtype=np.float64).reshape(-1, np.shape(samples)[-1])
        return cls(flat.mean(0), flat.std(0), flat.min(0), flat.max(0))

    def to_dict(self) -> dict:
        return {key: getattr(self, key).astype(float).tolist() for key in STAT_KEYS}


class DataNormalizationInterface:
    """Normalises proprio/actions for the model and de-normalises model outputs.

    Args:
        proprio: stats for the proprio vector, or None (identity).
        action: stats for actions, or None (identity).
        proprio_mode / action_mode: one of MODES.
    Raises:
        ValueError: unknown mode, or a non-identity mode without stats.
    """

    def __init__(self, proprio: Optional[FeatureStats] = None,
                 action: Optional[FeatureStats] = None,
                 proprio_mode: str = 'zscore', action_mode: str = 'zscore') -> None:
        for field, mode, stats in (('proprio', proprio_mode, proprio),
                                   ('action', action_mode, action)):
            if mode not in MODES:
                raise ValueError(f'normalization.{field}: unknown mode {mode!r}; '
                                 f'expected one of {MODES}')
            if mode != 'identity' and stats is None:
                raise ValueError(f'normalization.{field}: mode {mode!r} needs stats')
        self.proprio = proprio if proprio_mode != 'identity' else None
        self.action = action if action_mode != 'identity' else None
        self.proprio_mode = proprio_mode if proprio is not None else 'identity'
        self.action_mode = action_mode if action is not None else 'identity'

    # -- construction -------------------------------------------------------------------
    @classmethod
    def identity(cls) -> 'DataNormalizationInterface':
        return cls(None, None, 'identity', 'identity')

    @classmethod
    def from_file(cls, path: Union[str, Path], proprio_mode: str = 'zscore',
                  action_mode: str = 'zscore') -> 'DataNormalizationInterface':
        """Read a stats JSON file (see module docstring)."""
        path = Path(path)
        if not path.is_file():
            raise PolicyFileNotFoundError(f'normalization stats file not found: {path}')
        try:
            data = json.loads(path.read_text(encoding='utf-8'))
        except json.JSONDecodeError as exc:
            raise PolicyLoadError(f'malformed normalization stats {path}: {exc}') from exc
        if not isinstance(data, dict) or data.get('format') != STATS_FORMAT:
            raise PolicyLoadError(f'{path}: `format` must be {STATS_FORMAT!r}')
        stats: dict[str, Optional[FeatureStats]] = {}
        for field in ('proprio', 'action'):
            entry = data.get(field)
            if entry is None:
                stats[field] = None
                continue
            missing = [k for k in STAT_KEYS if k not in entry]
            if missing:
                raise PolicyLoadError(f'{path}: `{field}` lacks keys {missing}')
            try:
                stats[field] = FeatureStats(**{k: entry[k] for k in STAT_KEYS})
            except ValueError as exc:
                raise PolicyLoadError(f'{path}: `{field}`: {exc}') from exc
        try:
            return cls(stats['proprio'], stats['action'], proprio_mode, action_mode)
        except ValueError as exc:
            raise PolicyLoadError(f'{path}: {exc}') from exc

    @classmethod
    def from_config(cls, section: Optional[dict], base_dir: Path,
                    source: Any = '<policy YAML>') -> 'DataNormalizationInterface':
        """Build from a policy YAML's `normalization` section (None -> identity)."""
        if section is None:
            return cls.identity()
        if not isinstance(section, dict) or 'stats_path' not in section:
            raise PolicyLoadError(f'{source}: `normalization` must be a mapping with '
                                  f'`stats_path`, got {section!r}')
        stats_path = Path(str(section['stats_path'])).expanduser()
        if not stats_path.is_absolute():
            stats_path = base_dir / stats_path
        return cls.from_file(stats_path, section.get('proprio', 'zscore'),
                             section.get('action', 'zscore'))

    def to_file(self, path: Union[str, Path]) -> None:
        """Write the stats JSON (identity fields are omitted)."""
        data: dict[str, Any] = {'format': STATS_FORMAT}
        if self.proprio is not None:
            data['proprio'] = self.proprio.to_dict()
        if self.action is not None:
            data['action'] = self.action.to_dict()
        Path(path).write_text(json.dumps(data, indent=1), encoding='utf-8')

    # -- transforms -----------------------------------------------------------------------
    def normalize_proprio(self, x: Array) -> Array:
        return _forward(x, self.proprio, self.proprio_mode, 'proprio')

    def denormalize_proprio(self, x: Array) -> Array:
        return _inverse(x, self.proprio, self.proprio_mode, 'proprio')

    def normalize_action(self, x: Array) -> Array:
        return _forward(x, self.action, self.action_mode, 'action')

    def denormalize_action(self, x: Array) -> Array:
        return _inverse(x, self.action, self.action_mode, 'action')

    @staticmethod
    def image_to_float(images: Array) -> Array:
        """uint8 images -> float32 in [0, 1] (NumPy or torch, same type back)."""
        if isinstance(images, torch.Tensor):
            return images.to(torch.float32) / 255.0
        return np.asarray(images, dtype=np.float32) / np.float32(255.0)


def _scale_offset(stats: FeatureStats, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (scale, offset) with normalized = (x - offset) / scale."""
    if mode == 'zscore':
        return np.maximum(stats.std, EPS), stats.mean
    half_range = np.maximum(stats.max - stats.min, EPS) / 2.0
    return half_range, stats.min + half_range


def _like(values: np.ndarray, x: Array) -> Array:
    if isinstance(x, torch.Tensor):
        return torch.as_tensor(values, dtype=x.dtype, device=x.device)
    return values.astype(np.float32)


def _checked(x: Array, stats: FeatureStats, field: str) -> None:
    if x.shape[-1] != stats.dim:
        raise ValueError(f'{field}: last dimension {x.shape[-1]} does not match the '
                         f'normalization stats dimension {stats.dim}')


def _forward(x: Array, stats: Optional[FeatureStats], mode: str, field: str) -> Array:
    if stats is None:
        return x
    _checked(x, stats, field)
    scale, offset = _scale_offset(stats, mode)
    return (x - _like(offset, x)) / _like(scale, x)


def _inverse(x: Array, stats: Optional[FeatureStats], mode: str, field: str) -> Array:
    if stats is None:
        return x
    _checked(x, stats, field)
    scale, offset = _scale_offset(stats, mode)
    return x * _like(scale, x) + _like(offset, x)


__all__ = ['DataNormalizationInterface', 'FeatureStats', 'MODES', 'STATS_FORMAT']
