"""Inference delay estimate in control steps: max over the last W measured delays."""
from collections import deque
from typing import Optional


class DelayEstimator:
    """Windowed max of measured delays; cold-start samples (`warmup=True`: the first
    inference of an episode pays allocator / cache warm-up) are excluded.

    Args:
        window: W, how many recent measurements the max covers (default 5).
        initial_delay: estimate used before any measurement of this episode.
    Raises:
        ValueError: window < 1 (`delay_window`) or a negative initial delay.
    """

    def __init__(self, window: int = 5, initial_delay: int = 0) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f'delay_window must be a positive integer, got {window!r}')
        if initial_delay < 0:
            raise ValueError(f'initial_delay_steps must be >= 0, got {initial_delay}')
        self.window = window
        self.initial_delay = int(initial_delay)
        self._samples: deque[int] = deque(maxlen=window)
        self.last: Optional[int] = None

    def reset(self) -> None:
        """Start a new episode: forget all measurements."""
        self._samples.clear()
        self.last = None

    def record(self, delay_steps: int, warmup: bool = False) -> bool:
        """Record one measured delay; returns False when it was excluded.

        Raises:
            ValueError: negative delay.
        """
        if delay_steps < 0:
            raise ValueError(f'measured delay must be >= 0 steps, got {delay_steps}')
        self.last = int(delay_steps)
        if warmup:
            return False
        self._samples.append(int(delay_steps))
        return True

    @property
    def est_delay(self) -> int:
        return max(self._samples) if self._samples else self.initial_delay

    def samples(self) -> list[int]:
        return list(self._samples)
