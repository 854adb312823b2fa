"""The simulated robot on ROS 2 (`env-actor-sim`): what a ros2_control bringup would be.

    env-actor-sim [--episodes 5] [--seed 0] [--episode-duration 8] [--reset-service S]
                  [--interpolate-from-desired-state] [--world physics|kinematic]

The world (`--world`, see `worlds.py`): `physics` (default) is the MuJoCo arm whose servo
drives follow the set-points the controllers below produce, with two moving targets;
`kinematic` is the slew-limited arm with one target that jumps.

Publishes /joint_states (100 Hz; position, and on the physics world velocity and
effort), /sim/<camera>/image_raw/compressed (JPEG, 30 Hz) for
head/left/right and /sim/status (std_msgs/String, JSON: episode, seed, time, success,
done); executes /forward_position_controller/commands (Float64MultiArray, a set-point per
tick) and /joint_trajectory_controller/joint_trajectory (JointTrajectory, executed at 100 Hz
by a model of ros2_control's joint_trajectory_controller, `env_actor.tools.jtc_model`: a
replacement starts from the measured state unless --interpolate-from-desired-state; linear
or cubic segments; rejections logged). Episodes run back to back
with seeds seed, seed+1, ...; at each start the arm goes home, a new target appears and the
policy node's ~/reset service (default /env_actor/reset) is called so it starts fresh.
Exits after --episodes episodes.
"""
import json
import signal
import threading
from typing import Optional, Sequence

import cv2
import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.signals import SignalHandlerOptions
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data

from sensor_msgs.msg import CompressedImage, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from env_actor.tools.cli import tool_parser
from env_actor.tools.jtc_model import JointTrajectoryControllerModel
from env_actor.tools.sim_record import joint_state
from env_actor.tools.sim_world import JOINTS
from env_actor.tools.worlds import add_world_option, DEFAULT_WORLD, make_world

CAMERAS = ('head', 'left', 'right')


class SimRobotNode(Node):
    """Steps a simulated world on the node clock and exchanges ROS messages with it."""

    def __init__(self, episodes: int, seed: int, episode_duration: float,
                 reset_service: str, interpolate_from_desired_state: bool = False,
                 world: str = DEFAULT_WORLD, **kwargs) -> None:
        super().__init__('env_actor_sim', **kwargs)
        self.episodes, self.first_seed = episodes, seed
        self.world = make_world(world, seed, episode_duration)
        self.episode = -1
        self.results: list = []
        self.finished = threading.Event()
        self._lock = threading.Lock()
        # the trajectory topic is served the way ros2_control's joint_trajectory_controller
        # serves it (a new trajectory starts from the measured state by default)
        self._from_desired = interpolate_from_desired_state
        self.jtc: Optional[JointTrajectoryControllerModel] = None
        self._last_time: Optional[float] = None
        self._next_camera = 0.0
        self._next_status = 0.0
        self._joint_pub = self.create_publisher(JointState, '/joint_states',
                                                qos_profile_sensor_data)
        self._camera_pubs = {c: self.create_publisher(CompressedImage,
                                                      f'/sim/{c}/image_raw/compressed',
                                                      qos_profile_sensor_data)
                             for c in CAMERAS}
        self._status_pub = self.create_publisher(String, '/sim/status', QoSProfile(depth=20))
        self.create_subscription(Float64MultiArray, '/forward_position_controller/commands',
                                 self._on_command, 10)
        self.create_subscription(JointTrajectory,
                                 '/joint_trajectory_controller/joint_trajectory',
                                 self._on_trajectory, 10)
        self._reset_client = self.create_client(Trigger, reset_service)
        self._new_episode()
        self.create_timer(0.01, self._on_step)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _new_episode(self) -> None:
        self.episode += 1
        with self._lock:
            self.world.reset(self.first_seed + self.episode)
            self.jtc = None
        if self._reset_client.service_is_ready():
            self._reset_client.call_async(Trigger.Request())
        self._publish_status(done=False)

    def _on_command(self, msg: Float64MultiArray) -> None:
        try:
            with self._lock:
                self.world.set_command(np.asarray(msg.data))
                self.jtc = None
        except ValueError as exc:
            self.get_logger().warn(f'ignored command: {exc}')

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        with self._lock:
            if self.jtc is None:
                self.jtc = JointTrajectoryControllerModel(JOINTS, self._from_desired)
                self.jtc.last_command = self.world.command.copy()
            if not self.jtc.receive(msg, self._now()):
                self.get_logger().warn(f'rejected trajectory: {self.jtc.rejected[-1]}')

    def _on_step(self) -> None:
        now = self._now()
        if self._last_time is None:
            self._last_time = now
            return
        dt = min(now - self._last_time, 0.1)
        self._last_time = now
        with self._lock:
            if self.jtc is not None:
                command = self.jtc.update(now, self.world.q)
                if command is not None:
                    self.world.set_command(command)
            self.world.step(dt)
            state = joint_state(self.world)
            done = self.world.done
        state.header.stamp = self.get_clock().now().to_msg()
        self._joint_pub.publish(state)
        if now >= self._next_camera:
            self._next_camera = max(self._next_camera + 1 / 30, now)
            stamp = state.header.stamp
            for camera, pub in self._camera_pubs.items():
                with self._lock:
                    image = self.world.render(camera)
                ok, jpeg = cv2.imencode('.jpg', image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
                msg = CompressedImage(format='jpeg', data=jpeg.tobytes())
                msg.header.stamp, msg.header.frame_id = stamp, camera
                pub.publish(msg)
        if now >= self._next_status and not done:
            self._next_status = now + 0.5
            self._publish_status(done=False)
        if done:
            self.results.append({'episode': self.episode,
                                 'seed': self.first_seed + self.episode,
                                 'success': bool(self.world.success),
                                 'time': self.world.success_time or self.world.time})
            self._publish_status(done=True)
            result = self.results[-1]
            self.get_logger().info(
                f"episode {self.episode + 1}/{self.episodes} (seed {result['seed']}): "
                f"{'success' if result['success'] else 'failure'} after "
                f"{result['time']:.1f} s")
            if self.episode + 1 >= self.episodes:
                self.finished.set()
            else:
                self._new_episode()

    def flush_status(self, timeout_s: float = 2.0) -> bool:
        """Wait until subscribers acknowledged every status (the last episode's `done` would
        otherwise be lost when the process exits right after publishing it)."""
        return self._status_pub.wait_for_all_acked(Duration(seconds=timeout_s))

    def _publish_status(self, done: bool) -> None:
        status = {'episode': self.episode, 'seed': self.first_seed + self.episode,
                  'time': round(self.world.time, 3), 'success': bool(self.world.success),
                  'done': done}
        self._status_pub.publish(String(data=json.dumps(status)))


def main(args: Optional[Sequence[str]] = None) -> int:
    parser = tool_parser('The simulated robot (planar arm + gripper, three cameras) on '
                         'ROS 2.')
    parser.add_argument('--episodes', type=int, default=5, help='episodes to run, then exit')
    parser.add_argument('--seed', type=int, default=0, help='seed of the first episode')
    parser.add_argument('--episode-duration', type=float, default=8.0,
                        help='seconds before an unfinished episode counts as a failure')
    parser.add_argument('--reset-service', default='/env_actor/reset',
                        help="the policy node's reset service, called between episodes")
    parser.add_argument('--interpolate-from-desired-state', action='store_true',
                        help='start a new trajectory from the last command, like the '
                             "controller parameter of that name (default: from the "
                             'measured state, the controller default)')
    add_world_option(parser)
    opts, ros_args = parser.parse_known_args(args)
    # SIGINT/SIGTERM stop the loop here instead of shutting the context down under a
    # running timer callback (which would end in "publisher's context is invalid")
    rclpy.init(args=ros_args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    node = SimRobotNode(opts.episodes, opts.seed, opts.episode_duration, opts.reset_service,
                        opts.interpolate_from_desired_state, opts.world)
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok() and not node.finished.is_set() and not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
    except rclpy.executors.ExternalShutdownException:
        pass
    finally:
        successes = sum(r['success'] for r in node.results)
        print(f'sim: {successes}/{len(node.results)} episodes succeeded')
        if rclpy.ok() and not stop.is_set():
            node.flush_status()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
