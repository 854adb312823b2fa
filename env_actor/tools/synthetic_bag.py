"""Write a synthetic episode as rosbag2: joint states, three cameras and actions.

    env-actor-make-bag OUT [--duration 10] [--storage mcap|sqlite3] [--size 320x240]
        [--transport compressed|raw] [--joints a b c ...] [--params-file F]

Joint positions are slow sinusoids (position_j(t) = 0.3 sin(0.5 t + j)); the recorded
action at time t is the position 0.05 s ahead (what an expert commanding the next
set-point would send), on /forward_position_controller/commands at 20 Hz. Cameras show a
moving bar. With --params-file, joint names and topics are taken from the node
parameters so the bag matches the node's configuration.
"""
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from env_actor.tools.bag_io import absolute_topic, BagWriter
from env_actor.tools.sensor_publisher import camera_message, make_frames
from env_actor.tools.cli import exit_codes, tool_parser

ACTION_TOPIC = '/forward_position_controller/commands'


def joint_positions(t: float, count: int) -> np.ndarray:
    return 0.3 * np.sin(0.5 * t + np.arange(count))


def write_episode(out: Path, joints: Sequence[str], duration: float = 10.0,
                  storage: str = 'mcap', size: tuple[int, int] = (320, 240),
                  transport: str = 'compressed', joint_topic: str = '/joint_states',
                  camera_topics: Optional[dict] = None, joint_rate: float = 100.0,
                  camera_rate: float = 30.0, action_rate: float = 20.0,
                  start_ns: int = 1_700_000_000_000_000_000) -> dict:
    """Write the episode; returns message counts per topic."""
    cameras = camera_topics or {c: f'/{c}/image_raw' + ('/compressed' if transport ==
                                                         'compressed' else '')
                                for c in ('head', 'left', 'right')}
    width, height = size
    compressed = transport == 'compressed'
    frames = make_frames(width, height, compressed)
    image_type = ('sensor_msgs/msg/CompressedImage' if compressed
                  else 'sensor_msgs/msg/Image')
    events = []
    for i in range(int(duration * joint_rate)):
        events.append((i / joint_rate, 'joint'))
    for i in range(int(duration * camera_rate)):
        events.append((i / camera_rate, 'camera'))
    for i in range(int(duration * action_rate)):
        events.append((i / action_rate, 'action'))
    events.sort(key=lambda e: (e[0], e[1]))
    counts: dict[str, int] = {}
    frame_index = 0
    with BagWriter(out, storage) as bag:
        for t, kind in events:
            stamp = start_ns + int(round(t * 1e9))
            if kind == 'joint':
                position = joint_positions(t, len(joints))
                msg = JointState(name=list(joints), position=position.tolist(),
                                 velocity=[0.0] * len(joints), effort=[0.0] * len(joints))
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10 ** 9)
                bag.write(joint_topic, 'sensor_msgs/msg/JointState', stamp, msg)
                counts[joint_topic] = counts.get(joint_topic, 0) + 1
            elif kind == 'camera':
                for name, topic in cameras.items():
                    msg = camera_message(frames[frame_index % len(frames)], width, height,
                                         compressed)
                    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10 ** 9)
                    msg.header.frame_id = name
                    bag.write(topic, image_type, stamp, msg)
                    counts[topic] = counts.get(topic, 0) + 1
                frame_index += 1
            else:
                action = joint_positions(t + 1.0 / action_rate, len(joints))
                bag.write(ACTION_TOPIC, 'std_msgs/msg/Float64MultiArray', stamp,
                          Float64MultiArray(data=action.tolist()))
                counts[ACTION_TOPIC] = counts.get(ACTION_TOPIC, 0) + 1
    return counts


@exit_codes
def main(args: Optional[Sequence[str]] = None) -> int:
    parser = tool_parser('Write a synthetic rosbag2 episode.')
    parser.add_argument('out', type=Path, help='output bag folder (must not exist)')
    parser.add_argument('--duration', type=float, default=10.0, help='episode length, s')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap',
                        help='rosbag2 storage format')
    parser.add_argument('--size', default='320x240', help='image size WIDTHxHEIGHT')
    parser.add_argument('--transport', choices=('raw', 'compressed'), default='compressed',
                        help='raw rgb8 Image or JPEG CompressedImage')
    parser.add_argument('--joints', nargs='*', default=None,
                        help='joint names (default: from --params-file, else 24 '
                             'igris_b-style names)')
    parser.add_argument('--params-file', type=Path, default=None,
                        help='take joint names and topics from node parameters')
    opts = parser.parse_args(args)
    joints = opts.joints or [f'joint_{i}' for i in range(6)]
    joint_topic, cameras = '/joint_states', None
    if opts.params_file:
        from env_actor.ros.params import config_from_params_file
        cfg = config_from_params_file(opts.params_file, {'policy_yaml': '-'})
        joints, joint_topic = cfg.state_joint_names, absolute_topic(cfg.joint_states_topic)
        cameras = {c.name: absolute_topic(c.topic) for c in cfg.cameras}
        opts.transport = cfg.cameras[0].transport if cfg.cameras else opts.transport
    width, height = (int(v) for v in opts.size.split('x'))
    counts = write_episode(opts.out, joints, opts.duration, opts.storage, (width, height),
                           opts.transport, joint_topic, cameras)
    for topic, count in sorted(counts.items()):
        print(f'{topic}: {count}')
    print(f'wrote {opts.out} ({opts.storage})')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
