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


class CommandPublisher:
    """Publishes actions to every output group of the node.

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
        self._dt = control_period
        self._stamp_now = stamp_now
        self._velocities = velocities
        self.groups = list(groups)
        self.publishers = [node.create_lifecycle_publisher(
            JointTrajectory if g.type == 'joint_trajectory' else Float64MultiArray,
            g.topic, qos) for g in self.groups]
        self._sent: list = []          # the last two actions sent on consecutive ticks

    def describe(self) -> str:
        """One line naming each group's topic, message and joint count."""
        return '; '.join(f'{g.name} -> {p.topic_name} ({g.type}, {len(g.joints)} joints)'
                         for g, p in zip(self.groups, self.publishers)) or 'none'

    def forget(self) -> None:
        """Nothing was commanded on this tick: the next trajectory starts afresh."""
        self._sent = []

    def send(self, action: np.ndarray, planned: Optional[np.ndarray],
             reference: Optional[np.ndarray]) -> None:
        """Publish this tick's action; with `planned` (a new chunk) also the trajectories.

        Args:
            action: (A,) the action of this tick.
            planned: (N, A) the actions of the coming ticks, or None (no new chunk).
            reference: (A,) measured positions, the trajectory start when nothing was sent
                on the previous tick (None: start from `action`).
        """
        start = self._sent[-1] if self._sent else (reference if reference is not None
                                                   else action)
        before = self._sent[-2] if len(self._sent) > 1 else None
        stamp = self._stamp()
        for group, pub in zip(self.groups, self.publishers):
            if group.type == 'forward_command':
                pub.publish(action_to_command(group.select(action)))
            elif planned is not None:
                chunk = np.vstack([action[None], planned])
                pub.publish(chunk_to_trajectory(
                    group.select(chunk), group.joints, self._dt, stamp, group.select(start),
                    None if before is None else group.select(before), self._velocities))
        self._sent = (self._sent + [np.asarray(action, dtype=np.float64).copy()])[-2:]

    def hold(self, last: np.ndarray) -> None:
        """Stop where the last command was: each controller holds `last`, at rest."""
        for group, pub in zip(self.groups, self.publishers):
            if group.type == 'forward_command':
                pub.publish(action_to_command(group.select(last)))
            else:
                position = group.select(last)
                pub.publish(chunk_to_trajectory(position[None], group.joints, self._dt,
                                                 self._stamp(), position, position,
                                                 self._velocities))
        self._sent = []

    def wait_for_delivery(self, timeout_s: float = 1.0) -> None:
        """Give RELIABLE command messages (a hold) time to reach their subscribers."""
        for pub in self.publishers:
            try:
                pub.wait_for_all_acked(Duration(seconds=timeout_s))
            except Exception:     # best effort on the way out
                pass

    def destroy(self) -> None:
        for pub in self.publishers:
            self._node.destroy_lifecycle_publisher(pub)
        self.publishers = []

    def _stamp(self):
        return self._node.get_clock().now().to_msg() if self._stamp_now else None
