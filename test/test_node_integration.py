"""The policy node over real DDS (loopback): a separate process publishes joint states at
100 Hz and three 640x480 cameras at 30 Hz; the node (example policy, RTC) must publish
correct JointTrajectory chunks and per-tick commands, follow lifecycle transitions and
~/reset, stop when a camera stops and resume when it returns."""
from pathlib import Path
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from rclpy.qos import qos_profile_sensor_data

from lifecycle_msgs.msg import Transition
from sensor_msgs.msg import CompressedImage
from std_srvs.srv import Trigger

from env_actor.ros.policy_node import PolicyNode
from env_actor.runtime.frame_ring import RingFrame
from ros_harness import Harness, is_hold

ROOT = Path(__file__).resolve().parent.parent
PARAMS = ROOT / 'test' / 'fixtures' / 'node_params.yaml'
POLICY = ROOT / 'env_actor' / 'policy' / 'policies' / 'mlp_chunk' / 'mlp_chunk.yaml'
NODE_PARAMS = yaml.safe_load(PARAMS.read_text())['/**']['ros__parameters']
JOINTS = NODE_PARAMS['action_joint_names']
DT, H = 0.05, 50
PAUSE_AT, PAUSE_FOR = 13.0, 2.5


def start_sensors(harness: Harness) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, '-m', 'env_actor.tools.sensor_publisher', '--transport', 'compressed',
         '--size', '640x480', '--rate', '100', '--camera-rate', '30', '--duration', '30',
         '--pause-camera', 'left', '--pause-at', str(PAUSE_AT), '--pause-for', str(PAUSE_FOR),
         '--joints', *NODE_PARAMS['state_joint_names']], env=harness.env)


def commands_between(events, start, end):
    return [e for e in events if e[1] == 'cmd' and start <= e[0] < end]


def check_chunks_follow_commands(events):
    """Each trajectory starts at time 0 from the command before its tick (what the
    controller was following), then holds the command of its tick (the one equal to its
    second point, nearest in time: the two topics are not ordered with respect to each
    other) dt later; the commands after it follow its points until the next trajectory's
    tick; velocities are finite differences, zero at the last point."""
    commands = [(t, c) for t, kind, c in events if kind == 'cmd']
    starts, from_previous = [], 0
    for t, kind, traj in events:
        if kind != 'traj' or len(traj.points) < 5:
            continue
        assert traj.joint_names == JOINTS
        assert H - 15 <= len(traj.points) - 1 <= H      # H - d with d <= H - s, + start
        times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in traj.points]
        np.testing.assert_allclose(times, DT * np.arange(len(times)), atol=1e-9)
        points = np.array([p.positions for p in traj.points])
        velocities = np.array([p.velocities for p in traj.points])
        assert np.all(np.isfinite(points)) and np.all(np.abs(points) <= 3.1 + 1e-9)
        np.testing.assert_allclose(velocities[-1], 0.0)
        np.testing.assert_allclose(velocities[1:-1], (points[2:] - points[:-2]) / (2 * DT),
                                   atol=1e-9)
        matches = [j for j, (tc, c) in enumerate(commands)
                   if abs(tc - t) < 0.5 and np.allclose(c, points[1], atol=1e-12)]
        assert matches, 'no command equals the first planned trajectory point'
        j = min(matches, key=lambda j: abs(commands[j][0] - t))
        from_previous += j > 0 and np.allclose(commands[j - 1][1], points[0], atol=1e-12)
        starts.append((j, points[1:]))
    # each later command is the next point; or the same one again: a hold (an input went
    # stale for a moment: the node holds its last command and restarts from a new chunk);
    # the command topic keeps only the newest message, so a busy probe may miss one or two
    for (j, points), (j_next, _) in zip(starts, starts[1:] + [(len(commands), None)]):
        k = 0
        for _, command in commands[j + 1:j_next]:
            if k + 1 >= len(points):
                break
            following = [i for i in range(k, min(k + 4, len(points)))
                         if np.allclose(command, points[i], atol=1e-12)]
            assert following, f'command {command} is none of the next 3 planned points'
            k = following[0]
    # all but the first after a (re)start begin at the previous command
    assert from_previous >= len(starts) - 3, (from_previous, len(starts))
    return len(starts)


def test_node_over_dds_lifecycle_chunks_reset_and_stale_camera():
    harness = Harness()
    left_frames = []
    harness.probe.create_subscription(CompressedImage, 'left/image_raw/compressed',
                                      lambda m: left_frames.append(time.monotonic()),
                                      qos_profile_sensor_data)
    node = PolicyNode(context=harness.context, cli_args=[
        '--ros-args', '--params-file', str(PARAMS), '-p', f'policy_yaml:={POLICY}',
        '-p', 'autostart:=false'])
    harness.add_node(node)
    sensors = start_sensors(harness)
    sensor_start = time.monotonic()
    try:
        assert harness.state() == 'unconfigured'
        assert harness.transition(Transition.TRANSITION_CONFIGURE)
        assert harness.state() == 'inactive'
        harness.wait_for(lambda: len(left_frames) > 10, 15, 'camera frames')
        time.sleep(1.0)
        assert not harness.snapshot('cmd'), 'commanded while inactive'
        assert harness.transition(Transition.TRANSITION_ACTIVATE)
        assert harness.state() == 'active'
        activated = time.monotonic()
        harness.wait_for(lambda: len(harness.snapshot('cmd')) > 20, 10, 'commands')
        time.sleep(4.0)
        window = commands_between(harness.snapshot(), activated + 2.0, activated + 5.0)
        rate = (len(window) - 1) / (window[-1][0] - window[0][0])
        assert 14.0 <= rate <= 26.0, rate        # 20 Hz; loose: the machine may be busy
        assert check_chunks_follow_commands(harness.snapshot()) >= 3
        # inference runs in a process: frames live in shared memory, written once
        cache = node.executor_core.cache
        assert all(isinstance(cache.get(cam), RingFrame) for cam in ('head', 'left', 'right'))
        rings = [cache.get(cam).ring.name for cam in ('head', 'left', 'right')]

        response = harness.call(harness.reset, Trigger.Request())
        assert response.success
        after_reset = time.monotonic()
        harness.wait_for(lambda: len(commands_between(harness.snapshot(), after_reset,
                                                      1e18)) > 10, 5, 'commands after reset')

        # camera `left` stops for PAUSE_FOR s: commanding must stop within its max age
        pause = sensor_start + PAUSE_AT
        harness.wait_for(lambda: time.monotonic() > pause + PAUSE_FOR + 2.0, 30, 'pause end')
        gap_start = max(t for t in left_frames if t < pause + PAUSE_FOR)
        last_cmd = max(e[0] for e in harness.snapshot('cmd') if e[0] < gap_start + 2.0)
        assert last_cmd <= gap_start + 0.5 + 1.0, (last_cmd - gap_start)   # max age + slack
        holds = [e for e in harness.snapshot('traj', gap_start) if is_hold(e[2])]
        assert holds, 'no hold trajectory when the camera went stale'
        stale_diags = [d for d in harness.diagnostics if 'left stale' in d[2]]
        assert stale_diags and stale_diags[0][1] == 2          # ERROR
        resumed = [t for t in left_frames if t > gap_start + 1.0][0]
        first_cmd_after = min(e[0] for e in harness.snapshot('cmd', gap_start + 0.7))
        assert resumed <= first_cmd_after <= resumed + 1.0

        values = harness.diagnostics[-1][3]
        for key in ('inference_latency_p50_ms', 'inference_latency_p95_ms', 'est_delay_steps',
                    'starved_ticks', 'safety_slew_limited', 'age_head_s', 'rate_proprio_hz'):
            assert key in values, key
        assert values['frame_ring_full'] == '0'     # every frame found a free slot
        assert values['control_thread_scheduling'] == 'SCHED_OTHER'     # the default
        # rates of best-effort topics are reported, not promised
        assert float(values['rate_proprio_hz']) > 0.0 and float(values['rate_head_hz']) > 0.0

        assert harness.transition(Transition.TRANSITION_DEACTIVATE)
        stopped = time.monotonic()
        time.sleep(0.5)
        assert not commands_between(harness.snapshot(), stopped + 0.1, 1e18)
        assert harness.transition(Transition.TRANSITION_CLEANUP)
        assert harness.state() == 'unconfigured'
        from multiprocessing import shared_memory
        for name in rings:                       # cleanup unlinked the frame rings
            with pytest.raises(FileNotFoundError):
                shared_memory.SharedMemory(name=name)
    finally:
        sensors.terminate()
        sensors.wait(timeout=10)
        harness.close()
