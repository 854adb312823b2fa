"""Camera frames to (3, H, W) uint8 RGB at the policy's size, without ROS.

The decoders take any object with the fields of sensor_msgs/Image (`height`, `width`,
`encoding`, `step`, `data`, `is_bigendian`) or CompressedImage (`format`, `data`): the
node passes ROS messages, training and offline evaluation pass what they read from bags.
Raw rgb8/bgr8 frames that already have that size are views on the message buffer (zero
copy: the message is never reused); anything else is converted once (cv2.cvtColor /
cv2.resize with INTER_AREA). Errors are ValueError naming the field at fault.
"""
import cv2
import numpy as np

_CHANNELS = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, '8uc1': 1,
             '8uc3': 3, 'mono16': 1, '16uc1': 1}
SUPPORTED_ENCODINGS = tuple(sorted(_CHANNELS))


def _resize_hwc(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def image_to_chw(msg, height: int, width: int) -> np.ndarray:
    """sensor_msgs/Image -> (3, height, width) uint8 RGB.

    Raises:
        ValueError: unsupported encoding (lists the supported ones), zero size, or a data
            buffer whose length does not match height * step.
    """
    encoding = msg.encoding.lower()
    if encoding not in _CHANNELS:
        raise ValueError(f'image encoding {msg.encoding!r} unsupported; expected one of '
                         f'{SUPPORTED_ENCODINGS}')
    channels = _CHANNELS[encoding]
    depth = 2 if encoding in ('mono16', '16uc1') else 1
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h == 0 or w == 0 or step < w * channels * depth:
        raise ValueError(f'image size {w}x{h} with step {step} is invalid for {encoding}')
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if data.size != h * step:
        raise ValueError(f'image data has {data.size} bytes, expected height*step = '
                         f'{h * step} ({w}x{h} {encoding})')
    rows = data.reshape(h, step)[:, :w * channels * depth]
    if depth == 2:
        dtype = '>u2' if msg.is_bigendian else '<u2'
        mono = (rows.copy().view(dtype).reshape(h, w) >> 8).astype(np.uint8)
        return np.repeat(_resize_hwc(mono, height, width)[None], 3, axis=0)
    hwc = rows.reshape(h, w, channels)
    if encoding in ('rgb8', '8uc3'):
        rgb = _resize_hwc(hwc, height, width)
    elif encoding == 'bgr8':
        rgb = _resize_hwc(hwc, height, width)[..., ::-1]
    elif encoding == 'rgba8':
        rgb = _resize_hwc(hwc[..., :3], height, width)
    elif encoding == 'bgra8':
        rgb = _resize_hwc(hwc[..., :3], height, width)[..., ::-1]
    else:  # mono8 / 8uc1
        return np.repeat(_resize_hwc(hwc[..., 0], height, width)[None], 3, axis=0)
    return rgb.transpose(2, 0, 1)


def compressed_to_chw(msg, height: int, width: int) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png) -> (3, height, width) uint8 RGB.

    Raises:
        ValueError: the data cannot be decoded.
    """
    buffer = np.frombuffer(msg.data, dtype=np.uint8)
    bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    if bgr is None:
        raise ValueError(f'compressed image ({msg.format!r}, {buffer.size} bytes) could not '
                         f'be decoded')
    return np.ascontiguousarray(_resize_hwc(bgr, height, width)[..., ::-1].transpose(2, 0, 1))
