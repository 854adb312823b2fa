"""Inference delay estimate in control steps: max over the last W measured delays."""
from collections import deque
from typing import Optional


class DelayEstimator:
    """Windowed max of measured delays; cold-start samples are excluded.

    Args:
        window: W, how many recent measurements the max covers (default 5).
        initial_delay: estimate used before any measurement of this episode.
        skip_first: measurements ignored after every reset (cold start: the first
            inference of an episode pays allocator / cache warm-up).
    Raises:
        ValueError: window < 1 (`delay_window`), negative initial delay or skip count.
    """

    def __init__(self, window: int = 5, initial_delay: int = 0, skip_first: int = 1) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f'delay_window must be a positive integer, got {window!r}')
        if initial_delay < 0:
            raise ValueError(f'initial_delay_steps must be >= 0, got {initial_delay}')
        if skip_first < 0:
            raise ValueError(f'delay_skip_first must be >= 0, got {skip_first}')
        self.window = window
        self.initial_delay = int(initial_delay)
        self.skip_first = int(skip_first)
        self._samples: deque[int] = deque(maxlen=window)
        self._skipped = 0
        self.last: Optional[int] = None

    def reset(self) -> None:
        """Start a new episode: forget all measurements."""
        self._samples.clear()
        self._skipped = 0
        self.last = None

    def record(self, delay_steps: int, warmup: bool = False) -> bool:
        """Record one measured delay; returns False when it was excluded.

        Raises:
            ValueError: negative delay.
        """
        if delay_steps < 0:
            raise ValueError(f'measured delay must be >= 0 steps, got {delay_steps}')
        self.last = int(delay_steps)
        if warmup or self._skipped < self.skip_first:
            self._skipped += 0 if warmup else 1
            return False
        self._samples.append(int(delay_steps))
        return True

    @property
    def est_delay(self) -> int:
        return max(self._samples) if self._samples else self.initial_delay

    def samples(self) -> list[int]:
        return list(self._samples)
