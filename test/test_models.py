"""Model building blocks (no ROS): the ResNet encoder's stages and spatial softmax."""
import pytest
import torch

from env_actor.models.vision import ResNetEncoder, SpatialSoftmax


def _feature_map(encoder: ResNetEncoder, size: int) -> torch.Tensor:
    """The last stage's output in a real forward pass (captured by a hook)."""
    captured = []
    hook = encoder.blocks.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with torch.no_grad():
            encoder(torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8))
    finally:
        hook.remove()
    return captured[0]


def test_strides_set_the_feature_map_resolution():
    coarse = ResNetEncoder(32, [8, 16, 32], 8, 'spatial_softmax')
    fine = ResNetEncoder(32, [8, 16, 32], 8, 'spatial_softmax', strides=[2, 2, 1])
    assert _feature_map(coarse, 96).shape == (2, 32, 6, 6)
    assert _feature_map(fine, 96).shape == (2, 32, 12, 12)
    images = torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8)
    assert fine(images).shape == coarse(images).shape == (2, 32)
    # same parameter shapes: only the stride differs, so weights transfer between them
    assert {k: v.shape for k, v in coarse.state_dict().items()} == \
        {k: v.shape for k, v in fine.state_dict().items()}


@pytest.mark.parametrize('strides', [[2, 2], [2, 3, 1], [0, 2, 2]])
def test_bad_strides_are_rejected(strides):
    with pytest.raises(ValueError, match='strides must be 1 or 2, one per width'):
        ResNetEncoder(32, [8, 16, 32], 8, 'spatial_softmax', strides=strides)


def test_spatial_softmax_finds_a_peak():
    features = torch.full((1, 1, 12, 12), -50.0)
    features[0, 0, 3, 9] = 50.0                      # row 3, column 9
    keypoint = SpatialSoftmax()(features)[0]
    columns = torch.linspace(-1, 1, 12)
    torch.testing.assert_close(keypoint, torch.stack([columns[9], columns[3]]),
                               atol=1e-4, rtol=0)
