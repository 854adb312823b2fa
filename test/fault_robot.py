"""The robot side of the fault-injection suite: joint states, three raw cameras and a
position-servo "controller" over real DDS, with faults switched on and off by the test.

`Session` starts the node under test the way a user does (`env-actor-launch` with a params
file, its own process) next to a FaultRobot; the fault suite (test_faults.py) and the
fault benchmark (bench/faults.py) share it.

The robot follows every forward command it receives (a perfect position servo) unless
`follow` is off; `teleport()` moves it as an operator would by hand. It remembers what it
published, so a check can ask where the robot *was* when a command arrived.
"""
from collections import deque
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time
from typing import Optional

import numpy as np
from rclpy.qos import qos_profile_sensor_data
import yaml

from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray

from ros_harness import Harness, is_hold


class FaultRobot:
    """Publishes from the harness's probe node; `joint_mode` / `camera_mode` inject faults.

    joint_mode: good | drop | nan | missing.  camera_mode[cam]: good | drop | bad_encoding.
    """

    def __init__(self, harness: Harness, joints: list, pose, cameras=('head', 'left', 'right'),
                 size=(64, 48), camera_rate: float = 15.0) -> None:
        self.harness = harness
        self.joints = list(joints)
        self.position = np.asarray(pose, dtype=np.float64)
        self.follow = True
        self.joint_mode = 'good'
        self.camera_mode = {cam: 'good' for cam in cameras}
        self.size = size
        self._lock = threading.Lock()
        self.published: deque = deque(maxlen=20000)   # (monotonic, position)
        probe = harness.probe
        self._js = probe.create_publisher(JointState, 'joint_states', qos_profile_sensor_data)
        self._cams = {c: probe.create_publisher(Image, f'{c}/image_raw',
                                                qos_profile_sensor_data) for c in cameras}
        self.last_frame = {c: 0.0 for c in cameras}
        width, height = size
        bar = np.zeros((height, width, 3), np.uint8)
        bar[:, width // 3: width // 2] = (200, 150, 40)
        self._frame = bar.tobytes()
        probe.create_timer(0.01, self._publish_joints)
        probe.create_timer(1.0 / camera_rate, self._publish_cameras)
        probe.create_subscription(Float64MultiArray, 'forward_position_controller/commands',
                                  self._on_command, 50)

    def _on_command(self, msg: Float64MultiArray) -> None:
        """The servo: the robot goes where it is commanded (unless `follow` is off)."""
        command = np.asarray(msg.data)
        with self._lock:
            if self.follow and command.shape == self.position.shape:
                self.position = command.copy()

    def teleport(self, pose) -> None:
        with self._lock:
            self.position = np.asarray(pose, dtype=np.float64)

    def _publish_joints(self) -> None:
        if self.joint_mode == 'drop':
            return
        with self._lock:
            position = self.position.copy()
        names = list(self.joints)
        values = position.tolist()
        if self.joint_mode == 'nan':
            values[1] = float('nan')
        elif self.joint_mode == 'missing':
            names, values = names[1:], values[1:]
        else:
            self.published.append((time.monotonic(), position))
        msg = JointState(name=names, position=values)
        msg.header.stamp = self.harness.probe.get_clock().now().to_msg()
        self._js.publish(msg)

    def _publish_cameras(self) -> None:
        width, height = self.size
        stamp = self.harness.probe.get_clock().now().to_msg()
        for cam, pub in self._cams.items():
            mode = self.camera_mode[cam]
            if mode == 'drop':
                continue
            msg = Image(height=height, width=width, encoding='rgb8', step=3 * width,
                        data=self._frame)
            if mode == 'bad_encoding':
                msg.encoding = '32FC1'
            msg.header.stamp = stamp
            pub.publish(msg)
            if mode == 'good':
                self.last_frame[cam] = time.monotonic()

    def measured_before(self, t: float, window: float = 0.5) -> list:
        """Positions the robot published in the `window` seconds before time `t`."""
        return [p for tp, p in list(self.published) if t - window <= tp <= t]


def check_commands(events: list, robot: FaultRobot, step: np.ndarray, lower: float,
                   upper: float) -> dict:
    """Every command and trajectory point: finite, inside the limits, and no step above
    the velocity limit from the previous command or, for a first command, from a position
    the robot measured shortly before it arrived. Returns counts for the caller's checks.

    Raises:
        AssertionError naming the message at fault.
    """
    tol = 1e-6
    prev: Optional[np.ndarray] = None
    counts = {'cmd': 0, 'traj': 0, 'first_from_measurement': 0}

    def near(a, b):
        return b is not None and np.all(np.abs(a - b) <= step + tol)

    for t, kind, payload in events:
        if kind == 'cmd':
            rows = [np.asarray(payload)]
        elif kind == 'traj':
            rows = [np.asarray(p.positions) for p in payload.points]
        else:
            continue
        counts[kind] += 1
        for i, row in enumerate(rows):
            assert np.all(np.isfinite(row)), f'{kind} at {t:.3f}: non-finite {row}'
            assert np.all((row >= lower - tol) & (row <= upper + tol)), \
                f'{kind} at {t:.3f}: outside [{lower}, {upper}]: {row}'
            if i > 0:
                assert near(row, rows[i - 1]), \
                    f'trajectory at {t:.3f}: point {i} steps {np.abs(row - rows[i - 1])}'
        first = rows[0]
        if near(first, prev):
            pass
        else:
            measured = robot.measured_before(t)
            assert any(near(first, m) for m in measured), (
                f'{kind} at {t:.3f} jumps: {first} is more than {step} from the previous '
                f'command {prev} and from every measured position of the last 0.5 s')
            counts['first_from_measurement'] += 1
        if kind == 'cmd':
            prev = rows[0]
    return counts


JOINTS = ['shoulder', 'elbow', 'wrist', 'gripper']
POSE = [0.2, -1.5, 1.5, 1.0]                 # the robot's own pose, far from the policy's
MAX_VELOCITY = [1.0, 1.0, 1.0, 2.0]          # rad/s
DT = 0.05
STEP = np.asarray(MAX_VELOCITY) * DT
LOWER, UPPER = -2.0, 2.0
OK, ERROR = 0, 2
LAUNCH = Path(sys.executable).parent / 'env-actor-launch'


def write_bundle(tmp_path: Path) -> Path:
    """An untrained mlp_chunk for 4 joints and three cameras (its actions are ~0)."""
    (tmp_path / 'mlp.yaml').write_text('type: mlp\nparams: {in_dim: 17, out_dim: 40}\n')
    path = tmp_path / 'policy.yaml'
    path.write_text('model: {component_config_paths: {main: mlp.yaml}}\n'
                    'policy: {type: mlp_chunk, action_chunk_size: 10, action_dim: 4, '
                    'state_dim: 4, proprio_history_size: 2, image_size: [24, 32], '
                    'cameras: [head, left, right]}\n')
    return path


def write_params(tmp_path: Path, **overrides) -> Path:
    params = {
        'device': 'cpu', 'algorithm': 'rtc', 'control_frequency': 1.0 / DT,
        'min_num_actions_executed': 5, 'joint_states_topic': 'joint_states',
        'state_joint_names': JOINTS, 'action_joint_names': JOINTS,
        'cameras': ['head', 'left', 'right'],
        'joint_states_max_age': 0.1, 'camera_max_age': 0.5,
        'publish_trajectory': True, 'publish_commands': True,
        'safety.max_velocity': MAX_VELOCITY,
        'safety.position_lower': [LOWER], 'safety.position_upper': [UPPER],
        'diagnostics_period': 0.2, 'torch_threads': 1, 'inference_timeout': 1.0,
        'autostart': True}
    for cam in ('head', 'left', 'right'):
        params[f'camera.{cam}.topic'] = f'{cam}/image_raw'
        params[f'camera.{cam}.transport'] = 'raw'
    params.update(overrides)
    path = tmp_path / 'params.yaml'
    # rcl's parser refuses YAML aliases: write repeated lists out in full
    dumper = type('NoAliases', (yaml.SafeDumper,), {'ignore_aliases': lambda *_: True})
    path.write_text(yaml.dump({'/**': {'ros__parameters': params}}, Dumper=dumper))
    return path


class Session:
    """The robot (harness + FaultRobot) and the node process under test."""

    def __init__(self, tmp_path: Path, policy=None, **overrides) -> None:
        self.harness = Harness()
        self.robot = FaultRobot(self.harness, JOINTS, POSE)
        self.stderr_path = tmp_path / 'node.stderr'
        self.proc = subprocess.Popen(
            [str(LAUNCH), '--policy-yaml', str(policy or write_bundle(tmp_path)),
             '--params-file', str(write_params(tmp_path, **overrides))],
            env=self.harness.env, stdout=subprocess.DEVNULL,
            stderr=open(self.stderr_path, 'w'))

    # -- observations -------------------------------------------------------------------
    def commands(self, since: float, until: float = 1e18) -> list:
        return [e for e in self.harness.snapshot('cmd', since) if e[0] < until]

    def wait_commands(self, since: float, count: int = 5, timeout: float = 60.0) -> list:
        self.harness.wait_for(lambda: len(self.commands(since)) >= count, timeout,
                              f'{count} commands after {since:.1f}')
        return self.commands(since)

    def diags(self, since: float) -> list:
        with self.harness._lock:
            return [d for d in self.harness.diagnostics if d[0] >= since]

    def wait_diag(self, since: float, level: int, text: str, timeout: float = 30.0) -> tuple:
        found = []

        def seen() -> bool:
            found[:] = [d for d in self.diags(since) if d[1] == level and text in d[2]]
            return bool(found)
        self.harness.wait_for(seen, timeout, f'diagnostics level {level} with {text!r}')
        return found[0]

    def latest_values(self) -> dict:
        return self.harness.diagnostics[-1][3]

    def holds(self, since: float) -> list:
        return [e for e in self.harness.snapshot('traj', since) if is_hold(e[2])]

    # -- faults -------------------------------------------------------------------------
    def fault(self, switch_on, switch_off, duration: float, text: str) -> dict:
        """Inject a fault for `duration` s; check ERROR + silence, then recovery.

        Returns:
            monotonic times: start / end of the fault, error (first ERROR diagnostics with
            `text`), last_command (before the fault took effect), resumed (first command
            after it ended).
        """
        self.wait_commands(time.monotonic(), count=3)
        start = time.monotonic()
        switch_on()
        error = self.wait_diag(start, ERROR, text)[0]
        time.sleep(max(0.0, start + duration - time.monotonic()))
        end = time.monotonic()
        # allow 1 s for the node to notice (max ages 0.1 / 0.5 s, a loaded machine)
        assert not self.commands(start + 1.0, end), f'commanded during fault {text!r}'
        assert self.holds(start), f'no hold trajectory after fault {text!r}'
        last_command = max(e[0] for e in self.commands(0.0, end))
        switch_off()
        resumed = self.wait_commands(end, count=5)[0][0]
        self.wait_diag(end, OK, 'commanding')
        return {'start': start, 'end': end, 'error': error, 'last_command': last_command,
                'resumed': resumed}

    def log_time(self, text: str, after_wall: float) -> Optional[float]:
        """Wall time of the node's first log line containing `text` after `after_wall`
        (rcutils format: `[LEVEL] [seconds.nanoseconds] [node]: message`)."""
        for line in self.stderr_path.read_text().splitlines():
            parts = line.split('] [', 2)
            if len(parts) < 3 or text not in line:
                continue
            try:
                stamp = float(parts[1])
            except ValueError:
                continue
            if stamp >= after_wall:
                return stamp
        return None

    def first_command_after(self, t: float) -> np.ndarray:
        return self.wait_commands(t, count=1)[0][2]

    def lifecycle(self, transition: int) -> bool:
        return self.harness.transition(transition)

    def signal_and_check_exit(self, signum: int) -> None:
        """Send `signum` while commanding: a hold goes out first, exit code 0, no traceback."""
        last_before = self.wait_commands(time.monotonic(), count=3)[-1][2]
        sent = time.monotonic()
        self.proc.send_signal(signum)
        assert self.proc.wait(timeout=30) == 0
        time.sleep(0.3)
        holds = self.holds(sent)
        assert holds, f'no hold trajectory after {signal.Signals(signum).name}'
        hold = np.asarray(holds[0][2].points[0].positions)
        last = self.commands(0.0)[-1][2]
        np.testing.assert_allclose(hold, last)            # the last safe action
        assert np.all(np.abs(hold - last_before) <= STEP * 3 + 1e-6)
        stderr = self.stderr_path.read_text()
        assert 'Traceback' not in stderr, stderr[-2000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.harness.close()

    def check_all_commands(self) -> dict:
        return check_commands(self.harness.snapshot(), self.robot, STEP, LOWER, UPPER)
