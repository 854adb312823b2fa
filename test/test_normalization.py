"""Normalization interface: modes, round trips, file format, errors."""
import json

import numpy as np
import pytest
import torch

from env_actor.policy.utils.errors import PolicyFileNotFoundError, PolicyLoadError
from env_actor.policy.utils.normalization import (DataNormalizationInterface, FeatureStats,
                                                  STATS_FORMAT)


def make_stats():
    rng = np.random.default_rng(0)
    proprio = rng.normal(2.0, 3.0, size=(500, 4))
    action = rng.uniform(-1.0, 5.0, size=(500, 3))
    return FeatureStats.from_samples(proprio), FeatureStats.from_samples(action), proprio


def test_zscore_matches_formula_and_round_trips():
    p, a, samples = make_stats()
    norm = DataNormalizationInterface(p, a, 'zscore', 'zscore')
    x = samples[:10].astype(np.float32)
    z = norm.normalize_proprio(x)
    np.testing.assert_allclose(z, (x - p.mean) / p.std, rtol=1e-5)
    np.testing.assert_allclose(norm.denormalize_proprio(z), x, atol=1e-5)


def test_minmax_maps_range_to_minus_one_one():
    p, a, _ = make_stats()
    norm = DataNormalizationInterface(p, a, 'minmax', 'minmax')
    lo_hi = np.stack([a.min, a.max]).astype(np.float32)
    np.testing.assert_allclose(norm.normalize_action(lo_hi), [[-1] * 3, [1] * 3], atol=1e-6)
    y = np.array([[0.1, -0.5, 0.9]], np.float32)
    np.testing.assert_allclose(norm.normalize_action(norm.denormalize_action(y)), y, atol=1e-6)


def test_torch_tensors_keep_type_and_device():
    p, a, samples = make_stats()
    norm = DataNormalizationInterface(p, a)
    x = torch.tensor(samples[:5], dtype=torch.float64)
    z = norm.normalize_proprio(x)
    assert isinstance(z, torch.Tensor) and z.dtype == torch.float64
    np.testing.assert_allclose(z.numpy(), norm.normalize_proprio(samples[:5].astype(
        np.float32)), rtol=1e-5)


def test_constant_feature_does_not_divide_by_zero():
    stats = FeatureStats.from_samples(np.ones((10, 2)))
    norm = DataNormalizationInterface(stats, None, 'zscore', 'identity')
    assert np.all(np.isfinite(norm.normalize_proprio(np.ones((1, 2), np.float32))))


def test_images_to_float():
    img = np.array([[0, 255, 51]], dtype=np.uint8)
    out = DataNormalizationInterface.image_to_float(img)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 1.0, 0.2]], atol=1e-7)
    assert DataNormalizationInterface.image_to_float(torch.from_numpy(img)).dtype == \
        torch.float32


def test_file_round_trip(tmp_path):
    p, a, samples = make_stats()
    norm = DataNormalizationInterface(p, a)
    path = tmp_path / 'stats.json'
    norm.to_file(path)
    assert json.loads(path.read_text())['format'] == STATS_FORMAT
    again = DataNormalizationInterface.from_file(path)
    x = samples[:3].astype(np.float32)
    np.testing.assert_allclose(again.normalize_proprio(x), norm.normalize_proprio(x))


def test_dimension_mismatch_is_named():
    p, a, _ = make_stats()
    norm = DataNormalizationInterface(p, a)
    with pytest.raises(ValueError, match='action: last dimension 5 does not match .* 3'):
        norm.normalize_action(np.zeros((2, 5), np.float32))


@pytest.mark.parametrize('content, message', [
    ('{not json', 'malformed normalization stats'),
    ('{"format": "other"}', '`format` must be'),
    (json.dumps({'format': STATS_FORMAT, 'action': {'mean': [0.0]}}), r"`action` lacks keys"),
    (json.dumps({'format': STATS_FORMAT, 'action': {'mean': [0.0], 'std': [1.0, 2.0],
                                                    'min': [0.0], 'max': [1.0]}}),
     'equal length'),
    (json.dumps({'format': STATS_FORMAT}), "proprio: mode 'zscore' needs stats"),
])
def test_bad_stats_files(tmp_path, content, message):
    path = tmp_path / 'stats.json'
    path.write_text(content)
    with pytest.raises(PolicyLoadError, match=message) as info:
        DataNormalizationInterface.from_file(path)
    assert str(path) in str(info.value)


def test_missing_stats_file_and_unknown_mode(tmp_path):
    with pytest.raises(PolicyFileNotFoundError, match='stats file not found'):
        DataNormalizationInterface.from_file(tmp_path / 'nope.json')
    with pytest.raises(ValueError, match="unknown mode 'log'"):
        DataNormalizationInterface(None, None, 'log', 'identity')
