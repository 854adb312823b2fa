"""Record scripted-expert demonstrations of the simulated task as rosbag2 episodes.

    env-actor-sim-record OUT_DIR [--episodes 60] [--seed 0] [--storage mcap]

One bag per episode (`OUT_DIR/episode_0000`, ...) with the topics the node consumes
under config/sim.yaml: /joint_states (100 Hz), /sim/<camera>/image_raw/compressed (JPEG,
30 Hz) for head/left/right, and the expert's actions on
/forward_position_controller/commands at the 20 Hz control rate. The world is stepped on
a simulated clock, so recording is much faster than real time.
"""
import argparse
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from sensor_msgs.msg import CompressedImage, JointState
from std_msgs.msg import Float64MultiArray

from env_actor.tools.bag_io import BagWriter
from env_actor.tools.sim_world import expert_action, JOINTS, SimWorld

ACTION_TOPIC = '/forward_position_controller/commands'
CAMERA_TOPIC = '/sim/{camera}/image_raw/compressed'
START_NS = 1_700_000_000_000_000_000


def record_episode(path: Path, seed: int, storage: str = 'mcap', control_rate: int = 20,
                   joint_rate: int = 100, camera_rate: int = 30,
                   duration: float = 8.0) -> dict:
    """Run the expert for one episode and write it; returns the episode's outcome."""
    world = SimWorld(seed=seed, episode_duration=duration)
    world.reset(seed)
    tick_ns = 10 ** 9 // control_rate
    joint_ns, camera_ns = 10 ** 9 // joint_rate, 10 ** 9 // camera_rate
    now_ns, next_joint, next_camera, next_tick = 0, 0, 0, 0
    with BagWriter(path, storage) as bag:
        while now_ns <= int(duration * 1e9) and not (world.success and
                                                   world.time > world.success_time + 0.5):
            stamp = START_NS + now_ns
            if now_ns >= next_joint:
                msg = JointState(name=list(JOINTS), position=world.q.tolist())
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10 ** 9)
                bag.write('/joint_states', 'sensor_msgs/msg/JointState', stamp, msg)
                next_joint += joint_ns
            if now_ns >= next_camera:
                for camera in ('head', 'left', 'right'):
                    ok, jpeg = cv2.imencode('.jpg', world.render(camera)[..., ::-1],
                                            [cv2.IMWRITE_JPEG_QUALITY, 90])
                    msg = CompressedImage(format='jpeg', data=jpeg.tobytes())
                    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 10 ** 9)
                    bag.write(CAMERA_TOPIC.format(camera=camera),
                              'sensor_msgs/msg/CompressedImage', stamp, msg)
                next_camera += camera_ns
            if now_ns >= next_tick:
                action = expert_action(world)
                world.set_command(action)
                bag.write(ACTION_TOPIC, 'std_msgs/msg/Float64MultiArray', stamp,
                          Float64MultiArray(data=action.tolist()))
                next_tick += tick_ns
            step = min(next_joint, next_camera, next_tick) - now_ns
            world.step(step * 1e-9)
            now_ns += step
    return {'seed': seed, 'success': world.success, 'success_time': world.success_time}


def main(args: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description='Record expert demonstrations as rosbag2.')
    parser.add_argument('out', type=Path)
    parser.add_argument('--episodes', type=int, default=60)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    opts = parser.parse_args(args)
    opts.out.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for i in range(opts.episodes):
        outcomes.append(record_episode(opts.out / f'episode_{i:04d}', opts.seed + i,
                                       opts.storage))
    rate = np.mean([o['success'] for o in outcomes])
    print(f'recorded {opts.episodes} episodes to {opts.out}; expert success {rate:.0%}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
