"""Camera frames to (3, H, W) uint8 RGB at the policy's size, without ROS.

The decoders take any object with the fields of sensor_msgs/Image (`height`, `width`,
`encoding`, `step`, `data`, `is_bigendian`) or CompressedImage (`format`, `data`): the
node passes ROS messages, training and offline evaluation pass what they read from bags.

Colour conversion follows cv_bridge (`cv_bridge::toCvCopy(msg, "rgb8")`): the same
OpenCV conversion for every encoding it converts (table `RGB_CONVERSIONS`), 16-bit
images scaled by 255/65535 after the colour conversion, and a refusal for encodings that
carry no colour order (`8UC1`, `8UC3`, ...; cv_bridge: "is not a color format"). Depth
images (`16UC1` in mm and `32FC1` in m per REP 118, and compressedDepth) are converted
only for a camera declared as depth with a metric range: the range maps to 0..255,
invalid pixels (0, NaN) to 0, on all three channels.

Raw rgb8/bgr8 frames that already have the policy's size are views on the message
buffer (zero copy: the message is never reused); anything else is converted once
(cv2.cvtColor / cv2.resize with INTER_AREA). Errors are ValueError naming what is wrong.
"""
from typing import Optional, Sequence

import cv2
import numpy as np

# encoding -> (channels, bytes per channel, OpenCV code to RGB or None for rgb already)
RGB_CONVERSIONS = {
    'rgb8': (3, 1, None), 'bgr8': (3, 1, cv2.COLOR_BGR2RGB),
    'rgba8': (4, 1, cv2.COLOR_RGBA2RGB), 'bgra8': (4, 1, cv2.COLOR_BGRA2RGB),
    'mono8': (1, 1, cv2.COLOR_GRAY2RGB),
    'rgb16': (3, 2, None), 'bgr16': (3, 2, cv2.COLOR_BGR2RGB),
    'rgba16': (4, 2, cv2.COLOR_RGBA2RGB), 'bgra16': (4, 2, cv2.COLOR_BGRA2RGB),
    'mono16': (1, 2, cv2.COLOR_GRAY2RGB),
    'yuv422': (2, 1, cv2.COLOR_YUV2RGB_UYVY),            # UYVY
    'uyvy': (2, 1, cv2.COLOR_YUV2RGB_UYVY),
    'yuv422_yuy2': (2, 1, cv2.COLOR_YUV2RGB_YUY2),       # YUYV, usb_cam's default
    'yuyv': (2, 1, cv2.COLOR_YUV2RGB_YUY2),
    'nv21': (1, 1, cv2.COLOR_YUV2RGB_NV21),              # Y plane, then interleaved VU
    # cv_bridge names Bayer patterns by their first row; OpenCV by the second
    'bayer_rggb8': (1, 1, cv2.COLOR_BayerBG2RGB), 'bayer_bggr8': (1, 1, cv2.COLOR_BayerRG2RGB),
    'bayer_gbrg8': (1, 1, cv2.COLOR_BayerGR2RGB), 'bayer_grbg8': (1, 1, cv2.COLOR_BayerGB2RGB),
    'bayer_rggb16': (1, 2, cv2.COLOR_BayerBG2RGB),
    'bayer_bggr16': (1, 2, cv2.COLOR_BayerRG2RGB),
    'bayer_gbrg16': (1, 2, cv2.COLOR_BayerGR2RGB),
    'bayer_grbg16': (1, 2, cv2.COLOR_BayerGB2RGB),
}
DEPTH_ENCODINGS = {'16uc1': ('<u2', 1e-3), '32fc1': ('<f4', 1.0)}
SUPPORTED_ENCODINGS = tuple(sorted(RGB_CONVERSIONS))


def _resize_hwc(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _rows(msg, bytes_per_row: int, rows: int) -> np.ndarray:
    """The message data as (rows, bytes_per_row) uint8, checking step and size."""
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h == 0 or w == 0 or step < bytes_per_row:
        raise ValueError(f'image size {w}x{h} with step {step} is invalid for '
                         f'{msg.encoding} (needs step >= {bytes_per_row})')
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size != rows * step:
        raise ValueError(f'image data has {data.size} bytes, expected {rows} rows x step '
                         f'{step} = {rows * step} ({w}x{h} {msg.encoding})')
    return data.reshape(rows, step)[:, :bytes_per_row]


def _sixteen_bit(rows: np.ndarray, msg, shape: tuple) -> np.ndarray:
    dtype = '>u2' if msg.is_bigendian else '<u2'
    return np.ascontiguousarray(rows).view(dtype).astype(np.uint16).reshape(shape)


def depth_to_uint8(depth_m: np.ndarray, depth_range: Sequence[float]) -> np.ndarray:
    """Metric depth (m) -> uint8: `depth_range` [near, far] maps to 0..255 (clipped);
    invalid depth (0, negative, NaN, inf) is 0."""
    near, far = float(depth_range[0]), float(depth_range[1])
    valid = np.isfinite(depth_m) & (depth_m > 0)
    scaled = np.clip((np.where(valid, depth_m, near) - near) / (far - near), 0.0, 1.0)
    return np.where(valid, np.rint(scaled * 255.0), 0).astype(np.uint8)


def _depth_required(encoding: str) -> ValueError:
    return ValueError(f'encoding {encoding!r} is a depth image: declare the camera as depth '
                      f'with camera.<name>.depth_range: [near_m, far_m] (mapped to 0-255)')


def image_to_chw(msg, height: int, width: int,
                 depth_range: Optional[Sequence[float]] = None) -> np.ndarray:
    """sensor_msgs/Image -> (3, height, width) uint8 RGB, converted as cv_bridge does.

    Args:
        msg: the image.
        height, width: the policy's image size.
        depth_range: [near, far] in metres for a depth camera (16UC1 / 32FC1), else None.

    Raises:
        ValueError: an encoding cv_bridge does not convert to RGB (names it and the
            supported ones), a depth image without `depth_range`, a colour image on a
            depth camera, zero size, or a data buffer that does not match height * step.
    """
    encoding = msg.encoding.lower()
    h, w = int(msg.height), int(msg.width)
    if depth_range is not None:
        if encoding not in DEPTH_ENCODINGS:
            raise ValueError(f'encoding {msg.encoding!r} on a depth camera (depth_range '
                             f'set); expected 16UC1 (mm) or 32FC1 (m)')
        dtype, to_metres = DEPTH_ENCODINGS[encoding]
        rows = _rows(msg, w * 4 if dtype == '<f4' else w * 2, h)
        if msg.is_bigendian:
            dtype = '>' + dtype[1:]
        depth = np.ascontiguousarray(rows).view(dtype).reshape(h, w).astype(np.float64)
        mono = depth_to_uint8(depth * to_metres, depth_range)
        return np.repeat(_resize_hwc(mono, height, width)[None], 3, axis=0)
    if encoding in DEPTH_ENCODINGS:
        raise _depth_required(msg.encoding)
    if encoding not in RGB_CONVERSIONS:
        hint = (' carries no colour order (cv_bridge refuses it too): publish rgb8, bgr8 '
                'or mono8' if encoding[:1].isdigit() else ' unsupported')
        raise ValueError(f'image encoding {msg.encoding!r}{hint}; expected one of '
                         f'{SUPPORTED_ENCODINGS}')
    channels, depth_bytes, code = RGB_CONVERSIONS[encoding]
    if encoding == 'nv21':
        if h % 2 or w % 2:
            raise ValueError(f'nv21 image size {w}x{h} must be even')
        packed = _rows(msg, w, h * 3 // 2)
        return _resize_hwc(cv2.cvtColor(packed, code), height, width).transpose(2, 0, 1)
    rows = _rows(msg, w * channels * depth_bytes, h)
    shape = (h, w, channels) if channels > 1 else (h, w)
    if depth_bytes == 2:
        image = _sixteen_bit(rows, msg, shape)
    else:
        image = rows.reshape(shape)
    rgb = image if code is None else cv2.cvtColor(np.ascontiguousarray(image), code)
    if depth_bytes == 2:    # cv_bridge: colour conversion, then 16 -> 8 bit x 255/65535
        rgb = cv2.convertScaleAbs(rgb, alpha=255.0 / 65535.0)
    return _resize_hwc(rgb, height, width).transpose(2, 0, 1)


def _compressed_depth(msg, depth_range: Sequence[float]) -> np.ndarray:
    """compressedDepth (image_transport plugin): a 12-byte header, then a PNG of 16UC1
    (mm) or of quantized inverse depth for 32FC1 (m = a / (v - b))."""
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size <= 12:
        raise ValueError(f'compressedDepth image of {data.size} bytes has no PNG payload')
    header = data[:12].tobytes()
    quant_a, quant_b = np.frombuffer(header[4:12], '<f4')
    png = cv2.imdecode(data[12:], cv2.IMREAD_UNCHANGED)
    if png is None or png.dtype != np.uint16:
        raise ValueError('compressedDepth payload is not a 16-bit PNG')
    if '32fc1' in msg.format.lower():
        raw = png.astype(np.float64)
        with np.errstate(divide='ignore'):
            metres = np.where(raw > 0, quant_a / (raw - quant_b), np.nan)
    else:
        metres = png.astype(np.float64) * 1e-3
    return depth_to_uint8(metres, depth_range)


def compressed_to_chw(msg, height: int, width: int,
                      depth_range: Optional[Sequence[float]] = None) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png, or compressedDepth for a depth camera) ->
    (3, height, width) uint8 RGB.

    Raises:
        ValueError: the data cannot be decoded, or compressedDepth without `depth_range`.
    """
    if 'compresseddepth' in msg.format.lower():
        if depth_range is None:
            raise _depth_required(msg.format)
        mono = _compressed_depth(msg, depth_range)
        return np.repeat(_resize_hwc(mono, height, width)[None], 3, axis=0)
    buffer = np.frombuffer(msg.data, dtype=np.uint8)
    bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    if bgr is None:
        raise ValueError(f'compressed image ({msg.format!r}, {buffer.size} bytes) could not '
                         f'be decoded')
    # a (3, H, W) view of the RGB image, like image_to_chw: whoever stores it copies once
    return cv2.cvtColor(_resize_hwc(bgr, height, width), cv2.COLOR_BGR2RGB).transpose(2, 0, 1)
