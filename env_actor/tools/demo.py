"""The README demo: the simulated robot driven by the shipped policy over DDS.

    env-actor-demo [--episodes 5] [--seed 100] [--algorithm rtc] [--out out]
        [--world physics|kinematic] [--policy-yaml P] [--output trajectory|commands]

Starts the policy node (config/sim.yaml, RTC, the shipped trained bundle of the world:
policies/sim_physics on the MuJoCo arm by default, policies/sim_flow on the kinematic
one) and the simulated robot as separate processes on loopback DDS with a private domain.
As a real bringup would, the node sends a JointTrajectory per chunk, executed the way the
stock joint_trajectory_controller executes it (`--output commands`: a Float64MultiArray
set-point per tick, as to a forward command controller). Prints live
progress (episode, success, inference latency, est_delay) and a summary, and writes a
strip of head-camera frames of the first episode to OUT/demo_strip.png. Bounded: it stops
after --episodes episodes or --timeout seconds.
"""
import json
from pathlib import Path
import subprocess
import sys
import time
from typing import Optional, Sequence

import cv2
import numpy as np

from env_actor.runtime.executor import ALGORITHMS
from env_actor.tools.share import share_path
from env_actor.tools.cli import exit_codes, tool_parser
from env_actor.tools.worlds import add_world_option

SIM_PARAMS = share_path('config', 'sim.yaml')
SHIPPED = {'physics': share_path('policies', 'sim_physics', 'policy.yaml'),
           'kinematic': share_path('policies', 'sim_flow', 'policy.yaml')}


def frame_strip(frames: list, count: int = 8) -> np.ndarray:
    """Side by side, `count` evenly spaced frames, each labelled with its time.

    Args:
        frames: (episode time in s, HxWx3 uint8 image) pairs, oldest first.
        count: how many frames the strip shows.

    Returns:
        An H x (count*W) x 3 uint8 image; a dark band at the bottom of each frame holds
        `t=<time> s`.

    Raises:
        ValueError: no frames.
    """
    if not frames:
        raise ValueError('no frames for the strip')
    picks = np.linspace(0, len(frames) - 1, count).astype(int)
    labelled = []
    for i in picks:
        stamp, image = frames[i]
        image = np.ascontiguousarray(image).copy()
        band = max(10, image.shape[0] // 8)
        image[-band:] = image[-band:] // 4
        cv2.putText(image, f't={stamp:.1f} s', (2, image.shape[0] - band // 4),
                    cv2.FONT_HERSHEY_PLAIN, band / 14.0, (255, 255, 255), 1, cv2.LINE_AA)
        labelled.append(image)
    return np.hstack(labelled)


@exit_codes
def main(args: Optional[Sequence[str]] = None) -> int:
    parser = tool_parser(__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=5, help='episodes to run')
    parser.add_argument('--seed', type=int, default=100,
                        help='seed of the first episode (target and start pose)')
    parser.add_argument('--algorithm', default='rtc', choices=ALGORITHMS,
                        help='control algorithm of the policy node')
    add_world_option(parser)
    parser.add_argument('--policy-yaml', type=Path, default=None,
                        help="policy YAML the node runs (default: the world's shipped "
                             'bundle, policies/sim_physics or policies/sim_flow)')
    parser.add_argument('--out', type=Path, default=Path('out'),
                        help='folder for the summary, logs and the camera strip')
    parser.add_argument('--output', choices=('trajectory', 'commands'), default='trajectory',
                        help='what the node sends the robot: a JointTrajectory per chunk '
                             '(executed like the stock joint_trajectory_controller) or a '
                             'Float64MultiArray set-point per tick')
    parser.add_argument('--timeout', type=float, default=300.0,
                        help='give up after this many seconds')
    opts = parser.parse_args(args)
    opts.policy_yaml = opts.policy_yaml or SHIPPED[opts.world]
    from env_actor.tools.ros_env import isolate_ros_env
    domain = isolate_ros_env()
    import rclpy
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CompressedImage
    from std_msgs.msg import String

    print(f'env_actor demo: policy {opts.policy_yaml} ({opts.algorithm}, {opts.output}) on '
          f'the simulated robot ({opts.world} world), {opts.episodes} episodes, '
          f'ROS_DOMAIN_ID={domain} on loopback', flush=True)
    policy = subprocess.Popen(
        [sys.executable, '-m', 'env_actor.ros.policy_node', '--ros-args', '--params-file',
         str(SIM_PARAMS), '-p', f'policy_yaml:={opts.policy_yaml.resolve()}',
         '-p', f'algorithm:={opts.algorithm}', '-p', 'autostart:=true',
         '-p', f"publish_trajectory:={str(opts.output == 'trajectory').lower()}",
         '-p', f"publish_commands:={str(opts.output == 'commands').lower()}",
         '--log-level', 'warn'])
    sim = None
    rclpy.init()
    node = rclpy.create_node('env_actor_demo_monitor')
    state = {'diag': {}, 'status': None, 'results': [], 'frames': []}
    node.create_subscription(String, '/sim/status',
                             lambda m: state.__setitem__('status', json.loads(m.data)),
                             QoSProfile(depth=20))

    def on_diag(msg):
        for status in msg.status:
            if status.name == 'env_actor: policy':
                state['diag'] = {kv.key: kv.value for kv in status.values}
                state['diag']['message'] = status.message
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10)

    def on_frame(msg):
        status = state['status']
        if status and status['episode'] == 0 and not status['done'] and \
                len(state['frames']) < 400:
            image = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
            state['frames'].append((status['time'], image))
    node.create_subscription(CompressedImage, '/sim/head/image_raw/compressed', on_frame,
                             qos_profile_sensor_data)
    deadline = time.monotonic() + opts.timeout
    last_print, seen_done = 0.0, set()
    try:
        while state['diag'].get('lifecycle_state') != 'active':
            rclpy.spin_once(node, timeout_sec=0.1)
            message = state['diag'].get('message', '')
            if 'configure failed' in message or 'activate refused' in message:
                print(f'env-actor-demo: error: the policy node cannot start: {message}',
                      file=sys.stderr)
                return 2
            if policy.poll() is not None or time.monotonic() > deadline:
                print('policy node did not become active:', message)
                return 1
        print(f'policy node active ({state["diag"].get("message")}); starting the robot',
              flush=True)
        sim = subprocess.Popen([sys.executable, '-m', 'env_actor.tools.sim_robot_node',
                                '--episodes', str(opts.episodes), '--seed', str(opts.seed),
                                '--world', opts.world],
                               stdout=subprocess.DEVNULL)
        drain_until = None          # after the sim exits, still take its last statuses
        while len(state['results']) < opts.episodes and time.monotonic() < deadline:
            if sim.poll() is not None:
                drain_until = drain_until or time.monotonic() + 2.0
                if time.monotonic() > drain_until:
                    break
            rclpy.spin_once(node, timeout_sec=0.05)
            status, diag = state['status'], state['diag']
            if status is None:
                continue
            key = status['episode']
            if status['done'] and key not in seen_done:
                seen_done.add(key)
                state['results'].append(status)
                outcome = (f'SUCCESS in {status["time"]:.1f} s' if status['success']
                           else 'no success')
                print(f'episode {key + 1}/{opts.episodes} (seed {status["seed"]}): {outcome} | '
                      f'inference p50 {diag.get("inference_latency_p50_ms", "?")} ms, '
                      f'est_delay {diag.get("est_delay_steps", "?")} steps, starved ticks '
                      f'{diag.get("starved_ticks", "?")}', flush=True)
            elif not status['done'] and time.monotonic() - last_print > 2.0:
                last_print = time.monotonic()
                print(f'  episode {key + 1}: t={status["time"]:.1f} s, policy '
                      f'{diag.get("state", "?")}, inference p50 '
                      f'{diag.get("inference_latency_p50_ms", "?")} ms, est_delay '
                      f'{diag.get("est_delay_steps", "?")}', flush=True)
    finally:
        for proc in (policy, sim):     # the policy first: it holds, then the robot stops
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        node.destroy_node()
        rclpy.try_shutdown()
    results = state['results']
    successes = sum(r['success'] for r in results)
    times = [r['time'] for r in results if r['success']]
    print(f'\nsummary: {successes}/{len(results)} episodes succeeded'
          + (f', mean time to success {np.mean(times):.1f} s' if times else ''))
    if state['frames']:
        opts.out.mkdir(parents=True, exist_ok=True)
        path = opts.out / 'demo_strip.png'
        cv2.imwrite(str(path), frame_strip(state['frames']))
        print(f'wrote {path} (head camera, episode 1, 8 frames, episode time on each)')
    if 2 * successes < len(results) or not results:
        print(f'FAILED: {successes} of {len(results)} episodes succeeded (need at least half)')
        return 1
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
