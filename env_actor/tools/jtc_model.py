"""A model of ros2_control's joint_trajectory_controller (JTC): how it accepts a
JointTrajectory, replaces the running one, and samples the command every control cycle.

It follows the controller's source (`validate_trajectory_msg`, `update` and
`Trajectory::sample` / `interpolate_between_points` in ros2_controllers, Humble to Jazzy)
for position-commanded joints with the default spline interpolation:

* A trajectory with `header.stamp` 0 starts when the controller first samples it; a
  non-zero stamp is an absolute start time, and one whose last point is in the past is
  rejected.
* On the first sample after a replacement the controller records a state "before the
  trajectory": the *measured* state (default), or the last command when
  `interpolate_from_desired_state` (`open_loop_control` before Jazzy) is set. Until the
  first point's time it interpolates from that state to the first point.
* Between points: linear when a point lacks velocities, cubic Hermite when both have
  them (the measured state has velocities only with a velocity state interface).
* After the last point it holds the last point.

Used by the simulated robot and by the tests that check the node's chunks against the
stock controller's rules. Accelerations, effort, tolerances and the action interface are
not modelled.
"""
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np


@dataclass
class Point:
    """One trajectory point in the controller's joint order."""

    time_from_start: float
    positions: np.ndarray
    velocities: Optional[np.ndarray] = None


@dataclass
class Trajectory:
    """An accepted trajectory: absolute start (0 = on first sample) and its points."""

    start: float
    points: list


def duration_seconds(duration) -> float:
    """builtin_interfaces Duration or Time -> seconds."""
    return duration.sec + duration.nanosec * 1e-9


def interpolate(t0: float, a: Point, t1: float, b: Point, t: float) -> np.ndarray:
    """Positions at `t` between state `a` at `t0` and `b` at `t1`, as the controller's
    `interpolate_between_points` computes them (linear, or cubic with velocities)."""
    span = t1 - t0
    so_far = t - t0
    cubic = a.velocities is not None and b.velocities is not None
    if so_far < 0.0:
        so_far, cubic = 0.0, False
    if so_far > span:
        so_far, cubic = span, False
    if not cubic:
        slope = (b.positions - a.positions) / span if span != 0.0 else 0.0 * a.positions
        return a.positions + slope * so_far
    if span == 0.0:
        return a.positions + a.velocities * so_far
    c2 = (-3.0 * a.positions + 3.0 * b.positions - 2.0 * a.velocities * span
          - b.velocities * span) / span ** 2
    c3 = (2.0 * a.positions - 2.0 * b.positions + a.velocities * span
          + b.velocities * span) / span ** 3
    return a.positions + a.velocities * so_far + c2 * so_far ** 2 + c3 * so_far ** 3


class JointTrajectoryControllerModel:
    """One JTC instance for a group of position-commanded joints.

    Args:
        joints: the controller's `joints` parameter, in its order.
        interpolate_from_desired_state: start a new trajectory from the last command
            instead of the measured state (JTC parameter of the same name).
        allow_partial_joints_goal: accept trajectories for a subset of the joints; the
            others hold their last command (JTC parameter of the same name).
    """

    def __init__(self, joints: Sequence[str], interpolate_from_desired_state: bool = False,
                 allow_partial_joints_goal: bool = False) -> None:
        self.joints = list(joints)
        self.interpolate_from_desired_state = interpolate_from_desired_state
        self.allow_partial_joints_goal = allow_partial_joints_goal
        self.rejected: list[str] = []          # why each rejected message was refused
        self.accepted = 0
        self._pending: Optional[Trajectory] = None
        self._active: Optional[Trajectory] = None
        self._sampled = False
        self._before: Optional[Point] = None
        self._before_time = 0.0
        self.last_command: Optional[np.ndarray] = None

    def receive(self, msg, now: float) -> bool:
        """Take a trajectory_msgs/JointTrajectory as the controller's subscriber would.

        Args:
            msg: the message.
            now: the controller's clock, seconds (for the 'ends in the past' check).

        Returns:
            True when accepted (it replaces the running trajectory on the next update);
            False when rejected, with the reason appended to `rejected`.
        """
        reason = self._validate(msg, now)
        if reason:
            self.rejected.append(reason)
            return False
        index = {name: i for i, name in enumerate(msg.joint_names)}
        hold = self.last_command
        points = []
        for p in msg.points:
            positions = np.empty(len(self.joints))
            velocities = None if not len(p.velocities) else np.zeros(len(self.joints))
            for j, name in enumerate(self.joints):
                if name in index:
                    positions[j] = p.positions[index[name]]
                    if velocities is not None:
                        velocities[j] = p.velocities[index[name]]
                else:       # a partial goal: the joint holds its last command
                    positions[j] = hold[j] if hold is not None else np.nan
            points.append(Point(duration_seconds(p.time_from_start), positions, velocities))
        self._pending = Trajectory(duration_seconds(msg.header.stamp), points)
        self.accepted += 1
        return True

    def _validate(self, msg, now: float) -> str:
        names = list(msg.joint_names)
        if not self.allow_partial_joints_goal and len(names) != len(self.joints):
            return "Joints on incoming trajectory don't match the controller joints."
        if not names:
            return 'Empty joint names on incoming trajectory.'
        start = duration_seconds(msg.header.stamp)
        if start != 0.0 and msg.points:
            # the end is the last point's time (Humble's controller summed every point's
            # time_from_start here, which accepts far more late trajectories)
            end = start + duration_seconds(msg.points[-1].time_from_start)
            if end < now:
                return 'Received trajectory with non zero time start time that ends on the past'
        for name in names:
            if name not in self.joints:
                return f"Incoming joint {name} doesn't match the controller's joints."
        previous = 0.0
        for i, p in enumerate(msg.points):
            t = duration_seconds(p.time_from_start)
            if i > 0 and t <= previous:
                return f'Time between points {i - 1} and {i} is not strictly increasing'
            previous = t
            if len(p.positions) != len(names):
                return f'Mismatch between joint_names and positions at point #{i}.'
            if len(p.velocities) not in (0, len(names)):
                return f'Mismatch between joint_names and velocities at point #{i}.'
        return ''

    def update(self, now: float, measured: np.ndarray,
               measured_velocities: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        """One control cycle: the commanded positions, or None with no trajectory yet.

        Args:
            now: the controller's clock, seconds.
            measured: the joints' measured positions, controller order.
            measured_velocities: measured velocities when the hardware has a velocity
                state interface (then a new trajectory may start with a cubic segment).
        """
        if self._pending is not None:
            self._active, self._pending, self._sampled = self._pending, None, False
        if self._active is None or not self._active.points:
            return self.last_command
        if not self._sampled:
            self._sampled = True
            if self._active.start == 0.0:
                self._active.start = now
            if self.interpolate_from_desired_state and self.last_command is not None:
                self._before = Point(0.0, self.last_command.copy())
            else:
                self._before = Point(0.0, np.asarray(measured, dtype=np.float64).copy(),
                                     None if measured_velocities is None
                                     else np.asarray(measured_velocities, np.float64))
            self._before_time = now
        self.last_command = self._sample(now)
        return self.last_command

    def _sample(self, now: float) -> np.ndarray:
        traj = self._active
        first = traj.points[0]
        first_time = traj.start + first.time_from_start
        if now < first_time:
            return interpolate(self._before_time, self._before, first_time, first, now)
        for a, b in zip(traj.points, traj.points[1:]):
            t0, t1 = traj.start + a.time_from_start, traj.start + b.time_from_start
            if t0 <= now < t1:
                return interpolate(t0, a, t1, b, now)
        return traj.points[-1].positions.copy()
