"""Latest-value observation caches with ages, and the per-tick observation history.

The ROS layer converts messages and calls `ObservationCache.update` (any thread); the
control tick asks `stale_reason(now)` and then `ObservationHistory.sample(cache)` pushes
the latest values into the history ring buffers, once per tick.
"""
from dataclasses import dataclass
import threading
from typing import Any, Mapping, Optional, Sequence


from env_actor.runtime.history import ImageHistory, ProprioHistory

PROPRIO = 'proprio'


@dataclass
class CachedValue:
    """One source's newest value, with the time it was received (seconds)."""

    value: Any
    stamp: float
    count: int


class ObservationCache:
    """Newest value per source; sources in `max_age` are required and must be fresh.

    Args:
        max_age: source name -> largest allowed age in seconds (required sources).
    Raises:
        ValueError: a non-positive max age (names the source).
    """

    def __init__(self, max_age: Mapping[str, float]) -> None:
        for source, age in max_age.items():
            if not age > 0:
                raise ValueError(f'max_age.{source} must be > 0 seconds, got {age!r}')
        self.max_age = dict(max_age)
        self._lock = threading.Lock()
        self._values: dict[str, CachedValue] = {}

    def update(self, source: str, value: Any, stamp: float) -> None:
        with self._lock:
            previous = self._values.get(source)
            self._values[source] = CachedValue(value, stamp, 1 + (previous.count
                                                                  if previous else 0))

    def get(self, source: str) -> Optional[Any]:
        with self._lock:
            entry = self._values.get(source)
            return None if entry is None else entry.value

    def ages(self, now: float) -> dict[str, Optional[float]]:
        """Seconds since each required source last arrived (None = never)."""
        with self._lock:
            return {s: (now - self._values[s].stamp) if s in self._values else None
                    for s in self.max_age}

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {s: v.count for s, v in self._values.items()}

    def stale_reason(self, now: float) -> Optional[str]:
        """None when every required source is fresh, else why not (all offenders)."""
        problems = []
        for source, age in self.ages(now).items():
            if age is None:
                problems.append(f'{source} missing')
            elif age > self.max_age[source]:
                problems.append(f'{source} stale ({age:.2f} s > {self.max_age[source]:.2f} s)')
        return '; '.join(problems) or None


class ObservationHistory:
    """Proprio and per-camera histories, sampled from the cache once per control tick.

    Args:
        proprio_history_size / state_dim: proprio ring buffer shape.
        cameras: camera names; num_img_obs frames each, `image_stride` ticks apart.
        image_shape: (3, H, W) every frame must have.
    """

    def __init__(self, proprio_history_size: int, state_dim: int, cameras: Sequence[str],
                 num_img_obs: int, image_stride: int = 1,
                 image_shape: Optional[tuple[int, int, int]] = None) -> None:
        self.proprio = ProprioHistory(proprio_history_size, state_dim)
        self.cameras = tuple(cameras)
        self.images = {cam: ImageHistory(num_img_obs, image_stride, image_shape)
                       for cam in self.cameras}
        self.prompt: Optional[str] = None

    def reset(self) -> None:
        self.proprio.reset()
        for history in self.images.values():
            history.reset()

    def sample(self, cache: ObservationCache) -> None:
        """Push the cache's newest proprio and frames (call once per tick, when fresh)."""
        proprio = cache.get(PROPRIO)
        if proprio is None:
            raise ValueError('no proprio sample in the cache')
        self.proprio.push(proprio)
        for cam, history in self.images.items():
            frame = cache.get(cam)
            if frame is None:
                raise ValueError(f'no frame from camera {cam!r} in the cache')
            history.push(frame)
        prompt = cache.get('prompt')
        self.prompt = prompt if isinstance(prompt, str) else None

    def input_data(self) -> dict:
        """A fresh `input_data` dict (the policy's own copies, safe across threads)."""
        data: dict[str, Any] = {PROPRIO: self.proprio.snapshot()}
        for cam, history in self.images.items():
            data[cam] = history.snapshot()
        if self.prompt is not None:
            data['prompt'] = self.prompt
        return data

