"""Chunk hand-off on a stock joint_trajectory_controller (JTC).

First the controller model itself, against values worked out by hand from the
controller's source (validate_trajectory_msg, update, Trajectory::sample). Then the
node's trajectories, produced by the real executor (RTC, simulated inference delay) and
the node's OutputPlanner, executed by the model at 100 Hz on a robot whose joints lag
their command: the largest per-cycle command step when a new chunk replaces the running
trajectory must stay within 1.5x the largest step inside a chunk. The trajectory format
of earlier versions (stamp 0, first point one tick out, positions only) is run through the
same loop to show that the model reproduces the jolt this guards against.
"""

import numpy as np
import pytest

from builtin_interfaces.msg import Duration, Time
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from env_actor.ros.command_publisher import OutputPlanner
from env_actor.ros.conversions import chunk_to_trajectory
from env_actor.ros.outputs import build_output_groups
from env_actor.runtime.executor import ChunkExecutor, ExecutorConfig
from env_actor.runtime.inference import SimulatedInferenceWorker
from env_actor.runtime.observation import ObservationCache, ObservationHistory
from env_actor.runtime.safety import SafetyFilter
from env_actor.tools.jtc_model import interpolate, JointTrajectoryControllerModel, Point

JOINTS = ['arm', 'gripper']


def trajectory(points, stamp=0.0, names=('a',), velocities=None):
    msg = JointTrajectory(joint_names=list(names))
    msg.header.stamp = Time(sec=int(stamp), nanosec=int(round((stamp % 1) * 1e9)))
    for i, (t, positions) in enumerate(points):
        msg.points.append(JointTrajectoryPoint(
            positions=list(positions),
            velocities=[] if velocities is None else list(velocities[i]),
            time_from_start=Duration(sec=int(t), nanosec=int(round((t % 1) * 1e9)))))
    return msg


def test_a_new_trajectory_starts_from_the_measured_state_by_default():
    jtc = JointTrajectoryControllerModel(['a'])
    assert jtc.receive(trajectory([(0.1, [1.0]), (0.2, [2.0])]), now=10.0)
    # arrives at 10.0: from the measured 0.2 at 10.0 to the first point 1.0 at 10.1
    np.testing.assert_allclose(jtc.update(10.0, np.array([0.2])), [0.2])
    np.testing.assert_allclose(jtc.update(10.05, np.array([0.3])), [0.6])
    np.testing.assert_allclose(jtc.update(10.15, np.array([0.9])), [1.5])
    np.testing.assert_allclose(jtc.update(11.0, np.array([2.0])), [2.0])   # holds the end
    # a replacement starts again from the measured state, not from the last command
    assert jtc.receive(trajectory([(0.1, [3.0])]), now=11.0)
    np.testing.assert_allclose(jtc.update(11.0, np.array([1.8])), [1.8])


def test_interpolate_from_desired_state_starts_from_the_last_command():
    jtc = JointTrajectoryControllerModel(['a'], interpolate_from_desired_state=True)
    jtc.receive(trajectory([(0.1, [1.0])]), now=0.0)
    jtc.update(0.0, np.array([0.0]))
    np.testing.assert_allclose(jtc.update(0.2, np.array([0.5])), [1.0])
    jtc.receive(trajectory([(0.1, [2.0])]), now=0.2)
    np.testing.assert_allclose(jtc.update(0.2, np.array([0.5])), [1.0])   # not 0.5
    np.testing.assert_allclose(jtc.update(0.25, np.array([0.5])), [1.5])


def test_points_at_time_zero_and_cubic_segments():
    jtc = JointTrajectoryControllerModel(['a'])
    jtc.receive(trajectory([(0.0, [1.0]), (1.0, [2.0])], velocities=[[0.0], [0.0]]), 0.0)
    # the first point is due at once: no segment from the measured state
    np.testing.assert_allclose(jtc.update(5.0, np.array([0.0])), [1.0])
    np.testing.assert_allclose(jtc.update(5.5, np.array([0.0])), [1.5])      # symmetric
    np.testing.assert_allclose(jtc.update(5.25, np.array([0.0])), [1.15625])  # 3s^2 - 2s^3
    # Hermite with end velocities: p(t) = t + t^2 - t^3 for p0=0, v0=1, p1=1, v1=0, T=1
    value = interpolate(0.0, Point(0, np.array([0.0]), np.array([1.0])), 1.0,
                        Point(1, np.array([1.0]), np.array([0.0])), 0.5)
    np.testing.assert_allclose(value, [0.5 + 0.25 - 0.125])


@pytest.mark.parametrize('msg, now, reason', [
    (trajectory([(0.1, [1.0, 2.0])], names=('a', 'b')), 0.0, "don't match the controller"),
    (trajectory([(0.1, [1.0]), (0.1, [2.0])]), 0.0, 'not strictly increasing'),
    (trajectory([(0.1, [1.0])], stamp=5.0), 6.0, 'ends on the past'),
    (trajectory([(0.1, [1.0])], names=('x',)), 0.0, "Incoming joint x doesn't match"),
    (trajectory([(0.1, [1.0])], velocities=[[0.0, 1.0]]), 0.0, 'velocities'),
])
def test_rejections_follow_validate_trajectory_msg(msg, now, reason):
    jtc = JointTrajectoryControllerModel(['a'])
    assert not jtc.receive(msg, now)
    assert reason in jtc.rejected[0]


def test_partial_goals_hold_the_missing_joints_when_allowed():
    jtc = JointTrajectoryControllerModel(['a', 'b'], allow_partial_joints_goal=True)
    jtc.receive(trajectory([(0.0, [1.0, 5.0])], names=('a', 'b')), 0.0)
    jtc.update(0.0, np.zeros(2))
    assert jtc.receive(trajectory([(0.0, [2.0])], names=('b',)), 0.1)
    np.testing.assert_allclose(jtc.update(0.1, np.zeros(2)), [1.0, 2.0])
    assert not JointTrajectoryControllerModel(['a', 'b']).receive(
        trajectory([(0.0, [2.0])], names=('b',)), 0.0)


# -- the node's chunks on the stock controller ------------------------------------------

DT, CYCLE, H, S, DELAY = 0.05, 0.01, 24, 12, 3
LATENCY = 0.002            # publish -> controller callback
TAU = np.array([0.08, 0.15])  # joint lag time constants: the gripper is the slower servo


def reference_path(t: float) -> np.ndarray:
    return np.array([0.6 * np.sin(2 * np.pi * 0.4 * t), 0.8 * np.sin(2 * np.pi * 0.7 * t)])


class PathPolicy:
    """Chunks that sample a smooth path from the observation's time on, each with a small
    offset of its own (two inferences of a real policy never agree exactly)."""

    def __init__(self) -> None:
        self.calls = 0

    def _chunk(self, input_data) -> np.ndarray:
        self.calls += 1
        t0 = float(input_data['proprio'][-1, 0]) * DT
        offset = 0.004 * np.sin(1.7 * self.calls)
        return np.stack([reference_path(t0 + i * DT) + offset for i in range(H)]).astype(
            np.float32)

    def predict(self, input_data, norm):
        return self._chunk(input_data)

    def guided_inference(self, input_data, norm, s, h):
        return self._chunk(input_data)


def run_on_jtc(trajectory_format: str, from_desired: bool = False, seconds: float = 6.0):
    """Per-cycle command steps at replacement cycles and at the others."""
    config = ExecutorConfig(action_chunk_size=H, action_dim=2, min_num_actions_executed=S,
                            algorithm='rtc', control_period=DT)
    worker = SimulatedInferenceWorker(PathPolicy(), None, (H, 2), DELAY, DT)
    executor = ChunkExecutor(config, worker, ObservationCache({'proprio': 1.0}),
                             ObservationHistory(3, 2, (), 1), SafetyFilter(2))
    groups, _ = build_output_groups([('arm', 'joint_trajectory', 't', JOINTS)], JOINTS)
    planner = OutputPlanner(groups, DT, velocities=True)
    jtc = JointTrajectoryControllerModel(JOINTS, interpolate_from_desired_state=from_desired)
    measured = reference_path(0.0)
    pending, previous, steps, replaced, arrivals = [], None, [], [], 0
    cycles_per_tick = int(round(DT / CYCLE))
    for cycle in range(int(seconds / CYCLE)):
        now = cycle * CYCLE
        if cycle % cycles_per_tick == 0:
            tick = cycle // cycles_per_tick
            executor.cache.update('proprio', np.full(2, tick, np.float32), now)
            result = executor.on_tick(now)
            if result.restart:                  # as the node does
                planner.forget()
            if result.action is not None and result.new_chunk:
                planned = executor.planned_actions()
                if trajectory_format == 'node':
                    msg = planner.messages(result.action, planned, measured)[0]
                else:     # earlier versions: stamp 0, points from one tick out
                    msg = chunk_to_trajectory(np.vstack([result.action[None], planned]),
                                              JOINTS, DT)
                pending.append((now + LATENCY, msg))
            elif result.action is not None:
                planner.messages(result.action, None, measured)
        arrived = False
        while pending and pending[0][0] <= now:
            assert jtc.receive(pending.pop(0)[1], now), jtc.rejected
            arrived, arrivals = True, arrivals + 1
        command = jtc.update(now, measured)
        if command is None:
            continue
        # from the third chunk on: the first starts from rest, and it was computed on an
        # observation `DELAY` ticks old, so the second one corrects a lag of its own
        if previous is not None and arrivals >= 3:
            (replaced if arrived else steps).append(np.abs(command - previous))
        previous = command
        measured = measured + (command - measured) * (1 - np.exp(-CYCLE / TAU))
    assert jtc.rejected == [] and len(replaced) >= 8
    return np.max(replaced, axis=0), np.max(steps, axis=0)


def test_node_trajectories_hand_over_without_a_jolt_on_the_stock_controller():
    at_replacement, inside = run_on_jtc('node')
    assert np.all(at_replacement <= 1.5 * inside), (at_replacement, inside)


def test_the_earlier_format_jolts_there_so_the_check_can_fail():
    at_replacement, inside = run_on_jtc('earlier')
    assert np.any(at_replacement > 1.5 * inside), (at_replacement, inside)
    # with interpolate_from_desired_state the controller itself hides it
    at_replacement, inside = run_on_jtc('earlier', from_desired=True)
    assert np.all(at_replacement <= 1.5 * inside), (at_replacement, inside)


def test_a_restart_trajectory_starts_at_the_measurement_not_at_the_old_command():
    """A ~/reset between two ticks whose first chunk lands at once (a fast policy, here no
    delay): the previous tick sent an old-episode command, the new first action is limited
    against the measurement, and the trajectory must lead there from the measurement."""
    step = 0.1                                           # max_velocity 2 rad/s x 0.05 s
    config = ExecutorConfig(action_chunk_size=H, action_dim=2, min_num_actions_executed=S,
                            algorithm='rtc', control_period=DT)
    worker = SimulatedInferenceWorker(PathPolicy(), None, (H, 2), 0, DT)
    executor = ChunkExecutor(config, worker, ObservationCache({'proprio': 1.0}),
                             ObservationHistory(3, 2, (), 1),
                             SafetyFilter(2, max_velocity=2.0, control_period=DT),
                             reference_index=[0, 1])
    groups, _ = build_output_groups([('arm', 'joint_trajectory', 't', JOINTS)], JOINTS)
    planner = OutputPlanner(groups, DT, velocities=True)
    measured = reference_path(0.0)
    restarts, trajectories = [], []
    for tick in range(40):
        if tick == 20:                                   # the robot is moved, then reset
            measured = moved = measured + np.array([1.5, -1.5])
            executor.reset_episode()
        executor.cache.update('proprio', measured.astype(np.float32), tick * DT)
        result = executor.on_tick(tick * DT)
        assert result.action is not None, result         # no tick without a command
        restarts.append(result.restart)
        planned = executor.planned_actions() if result.new_chunk else None
        if result.restart:                               # as the node does
            planner.forget()
        msg = planner.messages(result.action, planned, measured)[0]
        if msg is not None:
            trajectories.append((tick, np.array([p.positions for p in msg.points])))
        measured = result.action.copy()                  # a perfect position servo
    assert [t for t, r in enumerate(restarts) if r] == [0, 20]
    first_after_reset = dict(trajectories)[20]
    np.testing.assert_allclose(first_after_reset[0], moved, atol=1e-6)
    for tick, points in trajectories:
        assert np.all(np.abs(np.diff(points, axis=0)) <= step + 1e-9), (tick, points[:2])
