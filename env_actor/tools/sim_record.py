"""Record scripted-expert demonstrations of the simulated task as rosbag2 episodes.

    env-actor-sim-record OUT_DIR [--episodes 100] [--seed 0] [--storage mcap]
        [--noise 0.08] [--world physics]

One bag per episode (`OUT_DIR/episode_0000`, ...) with the topics the node consumes
under config/sim.yaml: /joint_states (100 Hz), /sim/<camera>/image_raw/compressed (JPEG,
30 Hz) for head/left/right; at the 20 Hz control rate, the command the robot executed on
/forward_position_controller/commands and the expert's own action on /expert/action.
The world (`--world`: physics, the default, or kinematic; see `worlds.py`) is stepped on
a simulated clock, so recording is much faster than real time. Joint states carry
position, and on the physics world also velocity and effort, as a ros2_control
joint_state_broadcaster publishes them.

Noise injection (DART, Laskey et al. 2017): the executed arm command is the expert's
action plus an Ornstein-Uhlenbeck perturbation (correlation time 0.3 s) whose standard
deviation is drawn per episode from U(0, noise) rad, so the demonstrations visit the
off-course states a learned policy drifts into, labelled with the expert's correction
(/expert/action, computed from the perturbed state). It also makes the future of a chunk
genuinely uncertain given the present, which is what a flow policy models.
"""
import math
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from sensor_msgs.msg import CompressedImage, JointState
from std_msgs.msg import Float64MultiArray

from env_actor.tools.bag_io import BagWriter
from env_actor.tools.sim_world import JOINTS
from env_actor.tools.worlds import add_world_option, DEFAULT_WORLD, expert_for, make_world
from env_actor.tools.cli import exit_codes, tool_parser

ACTION_TOPIC = '/forward_position_controller/commands'
EXPERT_TOPIC = '/expert/action'
CAMERA_TOPIC = '/sim/{camera}/image_raw/compressed'
START_NS = 1_700_000_000_000_000_000


def record_episode(path: Path, seed: int, storage: str = 'mcap', control_rate: int = 20,
                   joint_rate: int = 100, camera_rate: int = 30,
                   duration: float = 8.0, noise: float = 0.08,
                   noise_time: float = 0.3, world_name: str = DEFAULT_WORLD) -> dict:
    """Run the expert for one episode and write it; returns the episode's outcome.

    Args:
        noise: upper bound of the per-episode perturbation std of the executed arm
            commands, in rad (0: the robot executes the expert's actions exactly).
        noise_time: correlation time of the perturbation, in seconds.
        world_name: which simulated world (`worlds.WORLDS`).

    Raises:
        ValueError: negative noise, non-positive noise_time or an unknown world.
    """
    if noise < 0 or noise_time <= 0:
        raise ValueError(f'noise must be >= 0 and noise_time > 0, got {noise}, {noise_time}')
    world = make_world(world_name, seed, duration)
    expert_action = expert_for(world_name)
    world.reset(seed)
    rng = np.random.default_rng([seed, 1])
    sigma = rng.uniform(0.0, noise)
    rho = math.exp(-1.0 / (control_rate * noise_time))
    arm = np.array([1.0, 1.0, 1.0, 0.0])
    perturbation = np.zeros(len(JOINTS))
    tick_ns = 10 ** 9 // control_rate
    joint_ns, camera_ns = 10 ** 9 // joint_rate, 10 ** 9 // camera_rate
    now_ns, next_joint, next_camera, next_tick = 0, 0, 0, 0
    with BagWriter(path, storage) as bag:
        while now_ns <= int(duration * 1e9) and not (world.success and
                                                   world.time > world.success_time + 0.5):
            stamp = START_NS + now_ns
            if now_ns >= next_joint:
                msg = joint_state(world)
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
                perturbation = rho * perturbation + sigma * math.sqrt(1 - rho ** 2) * (
                    arm * rng.standard_normal(len(JOINTS)))
                world.set_command(action + perturbation)
                bag.write(ACTION_TOPIC, 'std_msgs/msg/Float64MultiArray', stamp,
                          Float64MultiArray(data=world.command.tolist()))
                bag.write(EXPERT_TOPIC, 'std_msgs/msg/Float64MultiArray', stamp,
                          Float64MultiArray(data=action.tolist()))
                next_tick += tick_ns
            step = min(next_joint, next_camera, next_tick) - now_ns
            world.step(step * 1e-9)
            now_ns += step
    return {'seed': seed, 'success': world.success, 'success_time': world.success_time}


def joint_state(world) -> JointState:
    """The world's joints as a joint_state_broadcaster publishes them (no stamp)."""
    msg = JointState(name=list(JOINTS), position=world.q.tolist())
    if hasattr(world, 'velocity'):
        msg.velocity, msg.effort = world.velocity.tolist(), world.effort.tolist()
    return msg


@exit_codes
def main(args: Optional[Sequence[str]] = None) -> int:
    parser = tool_parser('Record expert demonstrations as rosbag2.')
    parser.add_argument('out', type=Path, help='output folder (one bag per episode)')
    parser.add_argument('--episodes', type=int, default=100, help='episodes to record')
    parser.add_argument('--seed', type=int, default=0, help='seed of the first episode')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap',
                        help='rosbag2 storage format')
    parser.add_argument('--noise', type=float, default=0.08,
                        help='max per-episode std of the arm command perturbation, rad')
    add_world_option(parser)
    opts = parser.parse_args(args)
    opts.out.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for i in range(opts.episodes):
        outcomes.append(record_episode(opts.out / f'episode_{i:04d}', opts.seed + i,
                                       opts.storage, noise=opts.noise,
                                       world_name=opts.world))
        if (i + 1) % 10 == 0 or i + 1 == opts.episodes:
            done = np.mean([o['success'] for o in outcomes])
            print(f'{i + 1}/{opts.episodes} episodes recorded (expert success so far '
                  f'{done:.0%})', flush=True)
    rate = np.mean([o['success'] for o in outcomes])
    print(f'recorded {opts.episodes} episodes to {opts.out}; expert success {rate:.0%}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
