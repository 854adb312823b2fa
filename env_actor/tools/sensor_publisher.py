"""Publish synthetic joint states and camera images (for tests and bring-up checks).

    env-actor-sensors --joints a b c [--rate 100] [--camera-rate 30] [--size 640x480]
        [--transport raw|compressed] [--duration 20]
        [--pause-camera left --pause-at 5 --pause-for 2]

Joint positions are slow sinusoids; images are rgb8 frames with a moving bar, so the
policy sees changing inputs. Bounded: it stops after --duration seconds.
"""
import time
from typing import Optional, Sequence

import cv2
import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data

from sensor_msgs.msg import CompressedImage, Image, JointState
from env_actor.tools.cli import exit_codes, tool_parser



def make_frames(width: int, height: int, compressed: bool, count: int = 8) -> list[bytes]:
    """Frames with a moving bar: raw rgb8 bytes, or JPEG bytes when `compressed`."""
    frames = []
    for i in range(count):
        img = np.zeros((height, width, 3), np.uint8)
        img[:, :, 2] = 60
        x = int((i + 0.5) * width / count)
        img[:, max(0, x - 20):x + 20] = (220, 180, 40)
        if compressed:
            ok, jpeg = cv2.imencode('.jpg', img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
            frames.append(jpeg.tobytes())
        else:
            frames.append(img.tobytes())
    return frames


def camera_message(frame: bytes, width: int, height: int, compressed: bool):
    if compressed:
        return CompressedImage(format='jpeg', data=frame)
    return Image(height=height, width=width, encoding='rgb8', step=3 * width, data=frame)


@exit_codes
def main(args: Optional[Sequence[str]] = None) -> int:
    parser = tool_parser(__doc__.splitlines()[0])
    parser.add_argument('--joints', nargs='+', required=True,
                        help='joint names published on /joint_states (required)')
    parser.add_argument('--rate', type=float, default=100.0, help='joint state rate, Hz')
    parser.add_argument('--camera-rate', type=float, default=30.0, help='image rate, Hz')
    parser.add_argument('--cameras', nargs='*', default=['head', 'left', 'right'],
                        help='camera names')
    parser.add_argument('--topic-format', default='{camera}/image_raw',
                        help='image topic per camera; with --transport compressed, '
                             '"/compressed" is appended (as image_transport names it)')
    parser.add_argument('--size', default='640x480', help='image size WIDTHxHEIGHT')
    parser.add_argument('--transport', choices=('raw', 'compressed'), default='raw',
                        help='raw rgb8 Image or JPEG CompressedImage')
    parser.add_argument('--duration', type=float, default=20.0,
                        help='stop after this many seconds')
    parser.add_argument('--pause-camera', default='',
                        help='camera that stops publishing for a while (default: none)')
    parser.add_argument('--pause-at', type=float, default=0.0,
                        help='seconds after start when --pause-camera stops')
    parser.add_argument('--pause-for', type=float, default=0.0,
                        help='seconds --pause-camera stays silent')
    opts, ros_args = parser.parse_known_args(args)
    width, height = (int(v) for v in opts.size.split('x'))
    rclpy.init(args=ros_args)
    node = rclpy.create_node('env_actor_sensor_publisher')
    joint_pub = node.create_publisher(JointState, 'joint_states', qos_profile_sensor_data)
    compressed = opts.transport == 'compressed'
    topic_format = opts.topic_format + ('/compressed' if compressed else '')
    cam_pubs = {c: node.create_publisher(CompressedImage if compressed else Image,
                                         topic_format.format(camera=c),
                                         qos_profile_sensor_data) for c in opts.cameras}
    frames = make_frames(width, height, compressed)
    start = time.monotonic()
    next_joint, next_cam, frame_index = start, start, 0
    joints = np.arange(len(opts.joints))
    try:
        while rclpy.ok() and time.monotonic() - start < opts.duration:
            now = time.monotonic()
            if now >= next_joint:
                t = now - start
                msg = JointState(name=list(opts.joints),
                                 position=(0.3 * np.sin(0.5 * t + joints)).tolist(),
                                 velocity=(0.15 * np.cos(0.5 * t + joints)).tolist(),
                                 effort=[0.0] * len(opts.joints))
                msg.header.stamp = node.get_clock().now().to_msg()
                joint_pub.publish(msg)
                next_joint += 1.0 / opts.rate
            if now >= next_cam:
                t = now - start
                paused = opts.pause_at <= t < opts.pause_at + opts.pause_for
                stamp = node.get_clock().now().to_msg()
                for cam, pub in cam_pubs.items():
                    if paused and cam == opts.pause_camera:
                        continue
                    msg = camera_message(frames[frame_index % len(frames)], width, height,
                                         compressed)
                    msg.header.stamp = stamp
                    msg.header.frame_id = cam
                    pub.publish(msg)
                frame_index += 1
                next_cam += 1.0 / opts.camera_rate
            time.sleep(max(0.0, min(next_joint, next_cam) - time.monotonic()))
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
