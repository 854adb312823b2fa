"""Camera encodings converted to RGB the way cv_bridge converts them.

A known colour pattern (eight flat bars) is written in every encoding, decoded by the
node's converter, and compared with (1) OpenCV's conversion of the same bytes with the
code cv_bridge picks for that encoding (`getConversionCodes` in cv_bridge.cpp; spelled
out here, independently of the module's table), exactly, and (2) the original colours,
per bar (so a swapped Bayer pattern or byte order cannot pass by matching a wrong
reference). Depth images only on a camera declared as depth.
"""
import struct

import cv2
import numpy as np
import pytest

from sensor_msgs.msg import CompressedImage, Image

from env_actor.ros.params import CameraConfig
from env_actor.runtime.images import image_to_chw

W, H = 64, 16
COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255],
                    [255, 0, 255], [40, 80, 160], [200, 200, 200]], np.uint8)
PATTERN = np.repeat(COLOURS[None], H, axis=0).repeat(W // 8, axis=1)    # (H, W, 3) RGB
GRAY = cv2.cvtColor(PATTERN, cv2.COLOR_RGB2GRAY)

# cv_bridge's conversion to rgb8 for each encoding (cv_bridge.cpp getConversionCodes)
CV_BRIDGE_CODE = {
    'bgr8': cv2.COLOR_BGR2RGB, 'rgba8': cv2.COLOR_RGBA2RGB, 'bgra8': cv2.COLOR_BGRA2RGB,
    'mono8': cv2.COLOR_GRAY2RGB, 'bgr16': cv2.COLOR_BGR2RGB, 'rgba16': cv2.COLOR_RGBA2RGB,
    'bgra16': cv2.COLOR_BGRA2RGB, 'mono16': cv2.COLOR_GRAY2RGB,
    'yuv422': cv2.COLOR_YUV2RGB_UYVY, 'yuv422_yuy2': cv2.COLOR_YUV2RGB_YUY2,
    'nv21': cv2.COLOR_YUV2RGB_NV21,
    'bayer_rggb8': cv2.COLOR_BayerBG2RGB, 'bayer_bggr8': cv2.COLOR_BayerRG2RGB,
    'bayer_gbrg8': cv2.COLOR_BayerGR2RGB, 'bayer_grbg8': cv2.COLOR_BayerGB2RGB,
    'bayer_rggb16': cv2.COLOR_BayerBG2RGB,
}


def bayer(pattern: np.ndarray, order: str) -> np.ndarray:
    """Mosaic an RGB image: `order` is the 2x2 cell read row by row, e.g. 'rggb'."""
    index = {'r': 0, 'g': 1, 'b': 2}
    mosaic = np.empty(pattern.shape[:2], pattern.dtype)
    for k, colour in enumerate(order):
        dy, dx = divmod(k, 2)
        mosaic[dy::2, dx::2] = pattern[dy::2, dx::2, index[colour]]
    return mosaic


def nv21(pattern: np.ndarray) -> np.ndarray:
    i420 = cv2.cvtColor(pattern, cv2.COLOR_RGB2YUV_I420)         # Y, U, V planes
    y, u, v = i420[:H], i420[H:H + H // 4].reshape(-1), i420[H + H // 4:].reshape(-1)
    vu = np.empty(u.size * 2, np.uint8)
    vu[0::2], vu[1::2] = v, u
    return np.vstack([y, vu.reshape(H // 2, W)])


def encode(encoding: str):
    """(array in the encoding's memory layout, rows) for the pattern."""
    wide = PATTERN.astype(np.uint16) * 257
    alpha8, alpha16 = np.full((H, W, 1), 255, np.uint8), np.full((H, W, 1), 65535, np.uint16)
    arrays = {
        'rgb8': PATTERN, 'bgr8': PATTERN[..., ::-1],
        'rgba8': np.concatenate([PATTERN, alpha8], 2),
        'bgra8': np.concatenate([PATTERN[..., ::-1], alpha8], 2), 'mono8': GRAY,
        'rgb16': wide, 'bgr16': wide[..., ::-1], 'rgba16': np.concatenate([wide, alpha16], 2),
        'bgra16': np.concatenate([wide[..., ::-1], alpha16], 2),
        'mono16': GRAY.astype(np.uint16) * 257,
        'yuv422': cv2.cvtColor(PATTERN, cv2.COLOR_RGB2YUV_UYVY),
        'yuv422_yuy2': cv2.cvtColor(PATTERN, cv2.COLOR_RGB2YUV_YUY2),
        'nv21': nv21(PATTERN),
        'bayer_rggb16': bayer(wide, 'rggb'),
    }
    for order in ('rggb', 'bggr', 'gbrg', 'grbg'):
        arrays[f'bayer_{order}8'] = bayer(PATTERN, order)
    return np.ascontiguousarray(arrays[encoding])


def message(encoding: str, array: np.ndarray, bigendian: bool = False) -> Image:
    data = array.byteswap() if bigendian else array
    rows = array.shape[0]
    return Image(height=H, width=W, encoding=encoding, is_bigendian=int(bigendian),
                 step=data.nbytes // rows, data=data.tobytes())


def reference(encoding: str, array: np.ndarray) -> np.ndarray:
    if encoding == 'rgb8':
        return array
    if encoding == 'rgb16':
        return cv2.convertScaleAbs(array, alpha=255.0 / 65535.0)
    rgb = cv2.cvtColor(array, CV_BRIDGE_CODE[encoding])
    if array.dtype == np.uint16:              # cv_bridge: then 16 -> 8 bit, x 255/65535
        rgb = cv2.convertScaleAbs(rgb, alpha=255.0 / 65535.0)
    return rgb


def bar_means(rgb: np.ndarray) -> np.ndarray:
    """Mean colour of each bar's interior (2 px from its edges, rows 2..H-2)."""
    return np.array([rgb[2:-2, 8 * k + 2:8 * k + 6].reshape(-1, 3).mean(0) for k in range(8)])


@pytest.mark.parametrize('encoding', ['rgb8', *CV_BRIDGE_CODE, 'rgb16'])
def test_every_encoding_matches_cv_bridge_and_the_original_colours(encoding):
    array = encode(encoding)
    out = image_to_chw(message(encoding, array), H, W).transpose(1, 2, 0)
    np.testing.assert_array_equal(out, reference(encoding, array))
    if encoding.startswith('mono'):
        expected = np.repeat(GRAY[..., None], 3, axis=2)
        np.testing.assert_allclose(bar_means(out), bar_means(expected), atol=1)
    else:
        # chroma subsampling and demosaicing blur edges; the interiors keep their colour
        tolerance = 12 if encoding.startswith(('yuv', 'nv', 'bayer')) else 1
        np.testing.assert_allclose(bar_means(out), COLOURS, atol=tolerance)


def test_big_endian_16_bit_and_resizing():
    array = encode('bgr16')
    out = image_to_chw(message('bgr16', array, bigendian=True), H, W).transpose(1, 2, 0)
    np.testing.assert_array_equal(out, reference('bgr16', array))
    small = image_to_chw(message('yuv422_yuy2', encode('yuv422_yuy2')), 8, 32)
    assert small.shape == (3, 8, 32)


@pytest.mark.parametrize('encoding', ['8UC3', '8UC1', '16SC1'])
def test_encodings_without_a_colour_order_are_refused_like_cv_bridge(encoding):
    camera = CameraConfig('wrist', 'w', 'raw', 0.5)
    msg = Image(height=2, width=2, encoding=encoding, step=6, data=bytes(12))
    with pytest.raises(ValueError, match=rf"camera 'wrist': image encoding '{encoding}'"):
        camera.convert(msg, 2, 2)


def depth_message(encoding: str, values: np.ndarray) -> Image:
    return Image(height=values.shape[0], width=values.shape[1], encoding=encoding,
                 step=values.itemsize * values.shape[1], data=values.tobytes())


def test_depth_needs_a_declared_range_and_maps_it_to_0_255():
    mm = np.array([[0, 500, 1500, 2500, 4000, 1000]], np.uint16)       # 16UC1: millimetres
    colour = CameraConfig('depth', 'd', 'raw', 0.5)
    with pytest.raises(ValueError, match=r"camera 'depth': encoding '16UC1' is a depth image: "
                                         r'declare .* camera.depth.depth_range'):
        colour.convert(depth_message('16UC1', mm), 1, 6)
    depth = CameraConfig('depth', 'd', 'raw', 0.5, [0.5, 2.5])
    out = depth.convert(depth_message('16UC1', mm), 1, 6)
    # 0 is invalid -> 0; 0.5 m -> 0; 1.5 m -> 127.5 -> 128; 2.5 m and beyond -> 255
    np.testing.assert_array_equal(out[0, 0], [0, 0, 128, 255, 255, 64])
    assert (out == out[0]).all()
    metres = np.array([[np.nan, 0.5, 1.5, np.inf, -1.0, 2.5]], np.float32)   # 32FC1
    out = depth.convert(depth_message('32FC1', metres), 1, 6)
    np.testing.assert_array_equal(out[0, 0], [0, 0, 128, 0, 0, 255])
    with pytest.raises(ValueError, match="encoding 'rgb8' on a depth camera"):
        depth.convert(message('rgb8', PATTERN), H, W)


def test_compressed_depth_16_bit_png():
    mm = np.array([[0, 500, 1500, 2500]], np.uint16)
    ok, png = cv2.imencode('.png', mm)
    header = struct.pack('<iff', 0, 0.0, 0.0)          # image_transport's ConfigHeader
    msg = CompressedImage(format='16UC1; compressedDepth png', data=header + png.tobytes())
    depth = CameraConfig('depth', 'd', 'compressed', 0.5, [0.5, 2.5])
    np.testing.assert_array_equal(depth.convert(msg, 1, 4)[0, 0], [0, 0, 128, 255])
    with pytest.raises(ValueError, match='depth_range'):
        CameraConfig('depth', 'd', 'compressed', 0.5).convert(msg, 1, 4)
