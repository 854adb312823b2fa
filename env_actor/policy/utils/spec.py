"""PolicySpec: the shapes a policy consumes and produces, and input validation.

Read from the `policy:` section of a policy YAML::

    action_chunk_size: 50          # H
    action_dim: 24
    state_dim: 24
    proprio_history_size: 50
    num_img_obs: 1                 # frames per camera in input_data
    image_size: [240, 320]         # H x W the cameras are resized to
    cameras: [head, left, right]
"""
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

DEFAULT_CAMERAS = ('head', 'left', 'right')


@dataclass(frozen=True)
class PolicySpec:
    """Shapes of one policy's inputs and outputs."""

    action_chunk_size: int
    action_dim: int
    state_dim: int
    proprio_history_size: int = 1
    num_img_obs: int = 1
    image_height: int = 240
    image_width: int = 320
    cameras: tuple[str, ...] = field(default=DEFAULT_CAMERAS)

    def __post_init__(self) -> None:
        for name in ('action_chunk_size', 'action_dim', 'state_dim', 'proprio_history_size',
                     'num_img_obs', 'image_height', 'image_width'):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f'policy.{name} must be a positive integer, got {value!r}')
        if len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f'policy.cameras has duplicates: {list(self.cameras)}')

    @classmethod
    def from_config(cls, section: Mapping[str, Any], source: Any = 'policy') -> 'PolicySpec':
        """Build from a policy YAML `policy:` section (extra keys are ignored).

        Raises:
            ValueError: a required key is missing or a value is invalid (names the key).
        """
        missing = [k for k in ('action_chunk_size', 'action_dim', 'state_dim')
                   if k not in section]
        if missing:
            raise ValueError(f'{source}: `policy` section lacks {missing}')
        image_size = section.get('image_size', (240, 320))
        if not (isinstance(image_size, Sequence) and len(image_size) == 2):
            raise ValueError(f'{source}: policy.image_size must be [height, width], '
                             f'got {image_size!r}')
        try:
            return cls(
                action_chunk_size=section['action_chunk_size'],
                action_dim=section['action_dim'],
                state_dim=section['state_dim'],
                proprio_history_size=section.get('proprio_history_size', 1),
                num_img_obs=section.get('num_img_obs', 1),
                image_height=image_size[0],
                image_width=image_size[1],
                cameras=tuple(section.get('cameras', DEFAULT_CAMERAS)),
            )
        except ValueError as exc:
            raise ValueError(f'{source}: {exc}') from None

    def image_shape(self) -> tuple[int, int, int, int]:
        return (self.num_img_obs, 3, self.image_height, self.image_width)

    def zeros_input(self, guided: bool = False) -> dict:
        """A valid all-zero `input_data` (warm-up, latency measurement)."""
        data: dict = {'proprio': np.zeros((self.proprio_history_size, self.state_dim),
                                          np.float32)}
        for cam in self.cameras:
            data[cam] = np.zeros(self.image_shape(), np.uint8)
        if guided:
            data['prev_action'] = np.zeros((self.action_chunk_size, self.action_dim),
                                           np.float32)
            data['est_delay'] = 0
        return data


def validate_input_data(input_data: Mapping[str, Any], spec: PolicySpec,
                        guided: bool = False) -> None:
    """Check keys, shapes and dtypes of `input_data` against `spec`.

    Raises:
        ValueError: names the key, the expected and the actual shape/dtype.
    """
    if not isinstance(input_data, Mapping):
        raise ValueError(f'input_data must be a dict, got {type(input_data).__name__}')
    expected = {'proprio': ((spec.proprio_history_size, spec.state_dim), np.float32)}
    for cam in spec.cameras:
        expected[cam] = (spec.image_shape(), np.uint8)
    if guided:
        expected['prev_action'] = ((spec.action_chunk_size, spec.action_dim), np.float32)
    for key, (shape, dtype) in expected.items():
        if key not in input_data:
            raise ValueError(f'input_data lacks {key!r} (expected {shape} {dtype.__name__}); '
                             f'got keys {sorted(input_data)}')
        value = input_data[key]
        if not isinstance(value, np.ndarray):
            raise ValueError(f'input_data[{key!r}] must be a np.ndarray, got '
                             f'{type(value).__name__}')
        if value.shape != shape or value.dtype != dtype:
            raise ValueError(f'input_data[{key!r}] must be {shape} {dtype.__name__}, got '
                             f'{value.shape} {value.dtype}')
    if not np.all(np.isfinite(input_data['proprio'])):
        raise ValueError("input_data['proprio'] contains NaN or inf")
    if guided:
        delay = input_data.get('est_delay')
        if not isinstance(delay, (int, np.integer)) or isinstance(delay, bool) or delay < 0:
            raise ValueError(f"input_data['est_delay'] must be a non-negative int, "
                             f'got {delay!r}')
        if not np.all(np.isfinite(input_data['prev_action'])):
            raise ValueError("input_data['prev_action'] contains NaN or inf")
    prompt = input_data.get('prompt')
    if prompt is not None and not isinstance(prompt, str):
        raise ValueError(f"input_data['prompt'] must be a str, got {type(prompt).__name__}")
