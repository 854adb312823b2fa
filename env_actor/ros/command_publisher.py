"""The node's command outputs: one lifecycle publisher per output group, and how a chunk
becomes what each controller receives.

Threading: used from the node's executor thread only (control tick and lifecycle
transitions); it holds no lock.

Trajectories hand over without a jump on a stock joint_trajectory_controller: each one
starts with the position commanded until now (the last action sent; the measured
position when nothing was sent since the last start) at time_from_start 0, followed by
the chunk's actions one control period apart, with finite-difference velocities. The
controller, replacing its running trajectory, then continues from the command it was
following rather than from the measured state (its default), so a lagging joint does
not step back by its tracking error.
"""
from typing import Optional, Sequence

import numpy as np
from rclpy.duration import Duration

from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from env_actor.ros.conversions import action_to_command, chunk_to_trajectory
from env_actor.ros.outputs import OutputGroup


class OutputPlanner:
    """What each output group receives on a tick (no ROS graph: messages only).

    Args:
        groups: the output groups (one per controller).
        control_period: seconds between ticks (the trajectory point spacing).
        velocities: trajectory points carry velocities.
    """

    def __init__(self, groups: Sequence[OutputGroup], control_period: float,
                 velocities: bool = True) -> None:
        self.groups = list(groups)
        self._dt = control_period
        self._velocities = velocities
        self._sent: list = []          # the last two actions sent on consecutive ticks

    def forget(self) -> None:
        """The next trajectory starts afresh, at the measured reference: nothing was
        commanded on this tick, or this tick's action is the first after a (re)start
        (limited against the measurement; a command sent on the tick before, e.g. before a
        ~/reset, must not be where its trajectory starts)."""
        self._sent = []

    def messages(self, action: np.ndarray, planned: Optional[np.ndarray],
                 reference: Optional[np.ndarray], stamp=None) -> list:
        """One message (or None) per group for this tick's action.

        Args:
            action: (A,) the action of this tick.
            planned: (N, A) the actions of the coming ticks, or None (no new chunk: the
                trajectory groups get nothing).
            reference: (A,) measured positions: where a trajectory starts when nothing
                was sent on the previous tick or since `forget` (None: from `action`).
            stamp: header.stamp of trajectories (None: 0, start on arrival).

        Returns:
            Float64MultiArray for forward_command groups, JointTrajectory (or None) for
            joint_trajectory groups, in group order.
        """
        start = self._sent[-1] if self._sent else (reference if reference is not None
                                                   else action)
        before = self._sent[-2] if len(self._sent) > 1 else None
        chunk = None if planned is None else np.vstack([action[None], planned])
        out = []
        for group in self.groups:
            if group.type == 'forward_command':
                out.append(action_to_command(group.select(action)))
            elif chunk is None:
                out.append(None)
            else:
                out.append(chunk_to_trajectory(
                    group.select(chunk), group.joints, self._dt, stamp, group.select(start),
                    None if before is None else group.select(before), self._velocities))
        self._sent = (self._sent + [np.asarray(action, dtype=np.float64).copy()])[-2:]
        return out

    def hold_messages(self, last: np.ndarray, stamp=None) -> list:
        """One message per group that stops where the last command was, at rest."""
        out = []
        for group in self.groups:
            position = group.select(last)
            out.append(action_to_command(position) if group.type == 'forward_command' else
                       chunk_to_trajectory(position[None], group.joints, self._dt, stamp,
                                           position, position, self._velocities))
        self._sent = []
        return out


class CommandPublisher:
    """Publishes the OutputPlanner's messages, one lifecycle publisher per group.

    Args:
        node: the lifecycle node that owns the publishers.
        groups: the output groups (one per controller).
        control_period: seconds between ticks (the trajectory point spacing).
        qos: QoS of the command topics.
        stamp_now: stamp trajectories with the node clock instead of 0.
        velocities: trajectory points carry velocities.
    """

    def __init__(self, node, groups: Sequence[OutputGroup], control_period: float, qos,
                 stamp_now: bool = False, velocities: bool = True) -> None:
        self._node = node
        self._stamp_now = stamp_now
        self.planner = OutputPlanner(groups, control_period, velocities)
        self.publishers = [node.create_lifecycle_publisher(
            JointTrajectory if g.type == 'joint_trajectory' else Float64MultiArray,
            g.topic, qos) for g in self.planner.groups]

    def describe(self) -> str:
        """One line naming each group's topic, message and joint count."""
        return '; '.join(f'{g.name} -> {p.topic_name} ({g.type}, {len(g.joints)} joints)'
                         for g, p in zip(self.planner.groups, self.publishers)) or 'none'

    def forget(self) -> None:
        self.planner.forget()

    def send(self, action: np.ndarray, planned: Optional[np.ndarray],
             reference: Optional[np.ndarray]) -> None:
        """Publish this tick's action; with `planned` (a new chunk) also the trajectories."""
        self._publish(self.planner.messages(action, planned, reference, self._stamp()))

    def hold(self, last: np.ndarray) -> None:
        """Stop where the last command was: each controller holds `last`, at rest."""
        self._publish(self.planner.hold_messages(last, self._stamp()))

    def wait_for_delivery(self, timeout_s: float = 1.0) -> None:
        """Give RELIABLE command messages (a hold) time to reach their subscribers."""
        for pub in self.publishers:
            try:
                pub.wait_for_all_acked(Duration(seconds=timeout_s))
            except Exception:     # best effort on the way out
                pass

    def _publish(self, messages: list) -> None:
        for pub, msg in zip(self.publishers, messages):
            if msg is not None:
                pub.publish(msg)

    def _stamp(self):
        return self._node.get_clock().now().to_msg() if self._stamp_now else None
