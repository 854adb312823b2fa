"""The robot side of the fault-injection suite: joint states, three raw cameras and a
position-servo "controller" over real DDS, with faults switched on and off by the test.

The robot follows every forward command it receives (a perfect position servo) unless
`follow` is off; `teleport()` moves it as an operator would by hand. It remembers what it
published, so a check can ask where the robot *was* when a command arrived.
"""
from collections import deque
import threading
import time
from typing import Optional

import numpy as np
from rclpy.qos import qos_profile_sensor_data

from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray

from ros_harness import Harness


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
