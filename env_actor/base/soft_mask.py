"""Real-Time Chunking soft-mask weights over chunk indices (Black, Galliker and Levine
2025, "Real-Time Execution of Action Chunking Flow Policies"; docs/runtime.md).

For chunk length H, execution horizon s and delay d (all in control steps):
    W_i = 1                                     for i < d
    W_i = c_i (e^{c_i} - 1) / (e - 1)           for d <= i < H - s   ("exp")
          with c_i = (H - s - i) / (H - s - d + 1)
    W_i = 0                                     for i >= H - s
"linear" uses W_i = c_i in the middle region, "ones" uses 1 there (hard prefix up to
H - s), "zeros" uses 0 there (only the frozen first d actions are guided).
"""
import logging
import math
import time

import numpy as np

SCHEDULES = ('exp', 'linear', 'ones', 'zeros')
_LOG = logging.getLogger(__name__)
WARN_PERIOD_S = 10.0
_last_warning = [-math.inf]


def clamp_delay(delay: int, chunk_size: int, execution_horizon: int) -> int:
    """Clamp `delay` into [0, min(s, H - s)] so that d <= s <= H - d holds, warning if moved.

    Raises:
        ValueError: chunk_size < 1 or execution_horizon outside [1, chunk_size].
    """
    if chunk_size < 1:
        raise ValueError(f'action_chunk_size must be >= 1, got {chunk_size}')
    if not 1 <= execution_horizon <= chunk_size:
        raise ValueError(f'min_num_actions_executed must be in [1, action_chunk_size='
                         f'{chunk_size}], got {execution_horizon}')
    upper = min(execution_horizon, chunk_size - execution_horizon)
    clamped = min(max(int(delay), 0), upper)
    if clamped != delay and time.monotonic() - _last_warning[0] >= WARN_PERIOD_S:
        _last_warning[0] = time.monotonic()    # at most one warning per WARN_PERIOD_S
        _LOG.warning('RTC delay d=%s violates d <= s <= H - d (H=%d, s=%d); using d=%d '
                     '(further warnings within %g s suppressed)', delay, chunk_size,
                     execution_horizon, clamped, WARN_PERIOD_S)
    return clamped


def soft_mask_weights(chunk_size: int, execution_horizon: int, delay: int,
                      schedule: str = 'exp') -> np.ndarray:
    """Return the (H,) float32 guidance weights W.

    Args:
        chunk_size: H.
        execution_horizon: s (min_num_actions_executed).
        delay: d, clamped into the valid range with a warning.
        schedule: one of SCHEDULES.
    Raises:
        ValueError: unknown schedule or invalid H / s.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f'soft-mask schedule {schedule!r} unknown; expected one of '
                         f'{SCHEDULES}')
    d = clamp_delay(delay, chunk_size, execution_horizon)
    end = chunk_size - execution_horizon
    weights = np.zeros(chunk_size, dtype=np.float64)
    weights[:d] = 1.0
    idx = np.arange(d, end)
    if idx.size:
        c = (end - idx) / (end - d + 1)
        if schedule == 'exp':
            weights[d:end] = c * np.expm1(c) / (math.e - 1.0)
        elif schedule == 'linear':
            weights[d:end] = c
        elif schedule == 'ones':
            weights[d:end] = 1.0
    return weights.astype(np.float32)
