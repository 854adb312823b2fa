"""Soft-mask weights against hand-computed values of the paper's formula."""
import logging
import math

import numpy as np
import pytest

from env_actor.base.soft_mask import clamp_delay, soft_mask_weights

# W_i = c (e^c - 1)/(e - 1), c = (H - s - i)/(H - s - d + 1), computed by hand:
# H=10, s=4, d=2: c = 4/5, 3/5, 2/5, 1/5 for i = 2..5.
EXP_10_4_2 = [1.0, 1.0, 0.570589, 0.287072, 0.114492, 0.025770, 0, 0, 0, 0]
# d = 0: c = 6/7 .. 1/7 for i = 0..5.
EXP_10_4_0 = [0.676632, 0.433459, 0.256334, 0.133455, 0.054991, 0.012767, 0, 0, 0, 0]
# d = s = 4: c = 2/3, 1/3 for i = 4, 5.
EXP_10_4_4 = [1, 1, 1, 1, 0.367706, 0.076746, 0, 0, 0, 0]


@pytest.mark.parametrize('h, s, d, expected', [
    (10, 4, 2, EXP_10_4_2), (10, 4, 0, EXP_10_4_0), (10, 4, 4, EXP_10_4_4),
    (10, 6, 4, [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]),          # s = H - d: no middle region
])
def test_exp_schedule_matches_hand_values(h, s, d, expected):
    weights = soft_mask_weights(h, s, d, 'exp')
    assert weights.dtype == np.float32 and weights.shape == (h,)
    np.testing.assert_allclose(weights, expected, atol=2e-6)


def test_igris_b_setting_regions():
    weights = soft_mask_weights(50, 35, 3, 'exp')
    assert np.all(weights[:3] == 1.0) and np.all(weights[15:] == 0.0)
    middle = weights[3:15]
    assert np.all(np.diff(middle) < 0) and 0 < middle[-1] < middle[0] < 1
    c = 12 / 13  # i = 3: c = (15 - 3) / (15 - 3 + 1)
    assert weights[3] == pytest.approx(c * np.expm1(c) / (np.e - 1), rel=1e-6)


def test_other_schedules():
    np.testing.assert_allclose(soft_mask_weights(10, 4, 2, 'linear'),
                               [1, 1, 0.8, 0.6, 0.4, 0.2, 0, 0, 0, 0], atol=1e-6)
    np.testing.assert_array_equal(soft_mask_weights(10, 4, 2, 'ones'), [1] * 6 + [0] * 4)
    np.testing.assert_array_equal(soft_mask_weights(10, 4, 2, 'zeros'), [1, 1] + [0] * 8)


def test_invalid_delay_is_clamped_with_warning(caplog, monkeypatch):
    import env_actor.base.soft_mask as soft_mask
    monkeypatch.setattr(soft_mask, '_last_warning', [-float('inf')])
    with caplog.at_level(logging.WARNING):
        assert clamp_delay(9, 10, 4) == 4           # d <= s
        assert clamp_delay(5, 10, 7) == 3           # d <= H - s
        assert clamp_delay(-2, 10, 4) == 0
    assert caplog.text.count('violates d <= s <= H - d') == 1      # rate-limited
    np.testing.assert_array_equal(soft_mask_weights(10, 4, 9), soft_mask_weights(10, 4, 4))


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match='min_num_actions_executed'):
        soft_mask_weights(10, 11, 0)
    with pytest.raises(ValueError, match='action_chunk_size'):
        soft_mask_weights(0, 1, 0)
    with pytest.raises(ValueError, match="schedule 'cosine'"):
        soft_mask_weights(10, 4, 2, 'cosine')


def test_clamp_delay_bounds_and_rate_limited_warning(caplog, monkeypatch):
    from env_actor.base import soft_mask
    assert clamp_delay(0, 1, 1) == 0                    # H = s = 1 is valid
    assert clamp_delay(3, 10, 10) == 0                  # s = H: no room for a delay
    for h, s, message in ((0, 1, 'action_chunk_size must be >= 1, got 0'),
                          (10, 0, r'min_num_actions_executed must be in \[1, '
                                  r'action_chunk_size=10\], got 0'),
                          (10, 11, 'got 11')):
        with pytest.raises(ValueError, match=message):
            clamp_delay(1, h, s)
    monkeypatch.setattr(soft_mask, '_last_warning', [-math.inf])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger='env_actor.base.soft_mask'):
        assert clamp_delay(9, 10, 5) == 5
        assert clamp_delay(-2, 10, 5) == 0              # within 10 s: not repeated
    assert [r.getMessage() for r in caplog.records] == [
        'RTC delay d=9 violates d <= s <= H - d (H=10, s=5); using d=5 (further warnings '
        'within 10 s suppressed)']
