"""Message conversions and the conversion thread, with real ROS message objects and no
ROS graph."""
import threading

import cv2
import numpy as np
import pytest

from sensor_msgs.msg import CompressedImage, Image, JointState

from env_actor.ros.conversion_worker import ConversionWorker
from env_actor.ros.conversions import compressed_to_chw, image_to_chw, JointStateConverter
from env_actor.tools.bag_io import BagError, message_class


def test_proprio_is_each_field_for_all_joints_in_parameter_order():
    conv = JointStateConverter(['b', 'a'], ['position', 'velocity', 'effort'])
    msg = JointState(name=['a', 'x', 'b'], position=[1.0, 9.0, 2.0],
                     velocity=[10.0, 9.0, 20.0], effort=[100.0, 9.0, 200.0])
    np.testing.assert_array_equal(conv.to_vector(msg), [2, 1, 20, 10, 200, 100])
    np.testing.assert_array_equal(conv.position_indices(['a', 'b']), [1, 0])
    with pytest.raises(ValueError, match=r"action joints \['c'\] are not in "
                                         r'state_joint_names'):
        conv.position_indices(['a', 'c'])
    with pytest.raises(ValueError, match="has no 'position'"):
        JointStateConverter(['a'], ['velocity']).position_indices(['a'])


def test_short_field_and_nan_are_rejected_with_the_field_named():
    conv = JointStateConverter(['a', 'b'], ['position', 'velocity'])
    with pytest.raises(ValueError, match='joint_states.velocity has 1 values for 2 names'):
        conv.to_vector(JointState(name=['a', 'b'], position=[1.0, 2.0], velocity=[0.0]))
    with pytest.raises(ValueError, match=r"NaN/inf in \['velocity:b'\]"):
        conv.to_vector(JointState(name=['a', 'b'], position=[1.0, 2.0],
                                  velocity=[0.0, float('inf')]))


def raw(encoding: str, pixels: np.ndarray) -> Image:
    h, w = pixels.shape[:2]
    return Image(height=h, width=w, encoding=encoding, step=pixels.nbytes // h,
                 data=pixels.tobytes())


@pytest.mark.parametrize('encoding,pixel', [
    ('rgb8', [10, 20, 30]), ('bgr8', [30, 20, 10]), ('rgba8', [10, 20, 30, 255]),
    ('bgra8', [30, 20, 10, 255])])
def test_colour_encodings_become_rgb(encoding, pixel):
    pixels = np.tile(np.array(pixel, np.uint8), (4, 6, 1))
    out = image_to_chw(raw(encoding, pixels), 4, 6)
    assert out.shape == (3, 4, 6) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, 0, 0], [10, 20, 30])


def test_mono_encodings_become_grey_rgb():
    out = image_to_chw(raw('mono8', np.full((4, 6), 77, np.uint8)), 2, 3)
    assert out.shape == (3, 2, 3) and np.all(out == 77)
    out = image_to_chw(raw('mono16', np.full((4, 6), 0x4D00, '<u2')), 4, 6)
    assert np.all(out == 0x4D)


def test_undecodable_jpeg_and_good_jpeg():
    ok, jpeg = cv2.imencode('.jpg', np.full((8, 8, 3), (30, 20, 10), np.uint8))
    out = compressed_to_chw(CompressedImage(format='jpeg', data=jpeg.tobytes()), 8, 8)
    assert abs(int(out[0, 4, 4]) - 10) <= 3 and abs(int(out[2, 4, 4]) - 30) <= 3
    with pytest.raises(ValueError):
        compressed_to_chw(CompressedImage(format='jpeg', data=b'\xff\xd8 not a jpeg'), 8, 8)


def test_conversion_worker_keeps_only_the_newest_frame_per_camera():
    started, release, done = threading.Event(), threading.Event(), threading.Semaphore(0)
    converted = []

    def on_value(source, value, stamp):
        converted.append((source, value))
        done.release()

    def on_error(source, message):
        converted.append((source, 'error: ' + message))
        done.release()

    def first():
        started.set()
        release.wait(10)
        return 'first'
    worker = ConversionWorker(on_value, on_error)
    try:
        worker.submit('head', first, 0.0)
        assert started.wait(10)                      # the worker is busy with it now
        for i in range(5):
            worker.submit('left', lambda i=i: f'left {i}', float(i))
        worker.submit('head', lambda: 'head newest', 9.0)
        release.set()
        for _ in range(3):
            assert done.acquire(timeout=10)
        assert sorted(converted) == [('head', 'first'), ('head', 'head newest'),
                                     ('left', 'left 4')]
        assert worker.dropped == 4

        def bad():
            raise ValueError('bad frame')
        worker.submit('right', bad, 0.0)
        assert done.acquire(timeout=10)
        assert converted[-1] == ('right', 'error: bad frame')
    finally:
        release.set()
        worker.close()


def test_bag_message_types_resolve_only_within_the_allowed_packages():
    assert message_class('sensor_msgs/msg/JointState') is JointState
    for bad in ('os/msg/System', 'subprocess/msg/Popen', 'sensor_msgs/JointState',
                '../x/msg/Y'):
        with pytest.raises(BagError, match='is not supported'):
            message_class(bad)
