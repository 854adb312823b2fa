"""The MuJoCo simulated robot: servo drives with inertia and limits, encoders, the moving
two-target task, its expert, rendering, and a trajectory executed by the model of the
stock joint_trajectory_controller. Plain unittest-style tests, no ROS graph."""
import math

import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from env_actor.tools.jtc_model import JointTrajectoryControllerModel
from env_actor.tools.physics_world import (ENCODER_COUNTS, expert_action, HOME,
                                           PhysicsWorld, servo_torque, SIDE_ANGLES,
                                           SUCCESS_HOLD, TORQUE_LIMIT, VELOCITY_LIMIT)
from env_actor.tools.sim_world import CAMERAS, JOINTS
from env_actor.tools.worlds import expert_for, make_world


def _step_response(world: PhysicsWorld, joint: int, amplitude: float, seconds: float = 0.6):
    """Command a step on one joint; returns the joint's positions relative to the start,
    its velocities and the drive torques, at every physics step."""
    start = world.data.qpos.copy()
    command = start.copy()
    command[joint] += amplitude
    world.set_command(command)
    positions, velocities, torques = [], [], []
    for _ in range(int(round(seconds / 0.002))):
        world.step(0.002)
        positions.append(world.data.qpos[joint] - start[joint])
        velocities.append(world.data.qvel[joint])
        torques.append(world.data.ctrl.copy())
    return np.array(positions), np.array(velocities), np.array(torques)


def test_a_small_step_overshoots_and_settles_like_a_position_servo():
    world = make_world('physics', seed=0)
    world.reset(0)
    positions, _, _ = _step_response(world, 0, 0.1)
    assert positions.max() > 0.1 * 1.1                  # inertia: more than 10 % overshoot
    assert abs(positions[-1] - 0.1) < 2e-3              # and it settles on the set-point
    assert np.argmax(positions >= 0.09) * 0.002 > 0.03  # not instantaneous


def test_a_large_step_saturates_torque_and_speed():
    world = make_world('physics', seed=0)
    world.reset(0)
    positions, velocities, torques = _step_response(world, 1, 1.5, seconds=1.0)
    assert np.all(np.abs(torques) <= TORQUE_LIMIT + 1e-9)
    assert np.abs(torques[:, 1]).max() == pytest.approx(TORQUE_LIMIT[1])   # saturated
    peak = np.abs(velocities).max()
    assert 0.8 * VELOCITY_LIMIT[1] < peak <= VELOCITY_LIMIT[1] * 1.02
    # speed-limited: the 1.5 rad take at least 1.5 / v_max seconds
    assert np.argmax(positions >= 1.45) * 0.002 >= 1.45 / VELOCITY_LIMIT[1]


def test_inertia_depends_on_the_pose():
    """The shoulder moves the whole arm: stretched out it has more inertia, so the same
    step takes longer than with the arm folded."""
    times = []
    for elbow in (0.0, 2.4):
        world = make_world('physics', seed=0)
        world.reset(0)
        world.data.qpos[:] = [1.0, elbow, 0.0, 0.0]
        world.data.qvel[:] = 0.0
        world.set_command(world.data.qpos.copy())
        positions, _, _ = _step_response(world, 0, 0.1)
        times.append(np.argmax(positions >= 0.09))
    assert times[0] > times[1] * 1.2, times


def test_servo_torque_follows_the_torque_speed_line():
    zero = np.zeros(4)
    far = np.full(4, 10.0)
    np.testing.assert_allclose(servo_torque(far, zero, zero), TORQUE_LIMIT)
    at_half = servo_torque(far, zero, VELOCITY_LIMIT / 2)
    np.testing.assert_allclose(at_half, TORQUE_LIMIT / 2)
    np.testing.assert_allclose(servo_torque(far, zero, VELOCITY_LIMIT * 1.1), 0.0)
    np.testing.assert_allclose(servo_torque(-far, zero, VELOCITY_LIMIT), -TORQUE_LIMIT)


def test_joint_states_are_encoder_readings():
    world = make_world('physics', seed=2)
    world.reset(2)
    world.set_command(HOME + 0.3)
    world.step(0.37)
    count = 2 * math.pi / ENCODER_COUNTS
    np.testing.assert_allclose(world.q / count, np.round(world.q / count), atol=1e-6)
    assert np.all(np.abs(world.q - world.data.qpos) <= count / 2 + 1e-12)
    assert np.any(world.q != world.data.qpos)
    assert world.velocity.shape == world.effort.shape == (4,)
    assert np.any(np.abs(world.velocity) > 0.01)


def test_targets_move_on_their_side_and_turn_back():
    world = make_world('physics', seed=5)
    world.reset(5)
    start = [t.position.copy() for t in world.targets]
    expected = [t.ahead(0.5) for t in world.targets]
    angles = [[], []]
    for _ in range(400):
        world.step(0.05)
        for i, target in enumerate(world.targets):
            angles[i].append(target.angle)
        if len(angles[0]) == 10:
            for target, where in zip(world.targets, expected):
                np.testing.assert_allclose(target.position, where, atol=1e-6)
    for i, (low, high) in enumerate(SIDE_ANGLES):
        assert low <= min(angles[i]) and max(angles[i]) <= high
        assert np.any(np.diff(angles[i]) > 0) and np.any(np.diff(angles[i]) < 0)   # turns
    assert all(np.linalg.norm(t.position - s) > 0 for t, s in zip(world.targets, start))


def test_success_needs_a_closed_gripper_held_on_a_target():
    world = make_world('physics', seed=3, episode_duration=6.0)
    world.reset(3)
    while not world.done:                              # an open gripper never succeeds
        action = expert_action(world)
        action[3] = 0.0
        world.set_command(action)
        world.step(0.05)
    assert not world.success
    world.reset(3)
    while not world.done:
        world.set_command(expert_action(world))
        world.step(0.05)
    assert world.success and world.success_time >= SUCCESS_HOLD
    assert np.linalg.norm(world.tip - world.target) <= 0.05
    with pytest.raises(ValueError, match='4 finite values'):
        world.set_command(np.array([0.0, np.nan, 0.0, 0.0]))


def test_expert_is_bimodal_and_succeeds_on_either_target():
    goals, outcomes = [], []
    for seed in range(12):
        world = make_world('physics', seed=seed)
        world.reset(seed)
        goals.append(world.expert_goal)
        while not world.done:
            world.set_command(expert_for('physics')(world))
            world.step(0.05)
        outcomes.append(world.success)
        near = [np.linalg.norm(world.tip - t.position) for t in world.targets]
        assert int(np.argmin(near)) == world.expert_goal
    assert all(outcomes)
    assert set(goals) == {0, 1}


def test_rendering_shows_both_moving_targets():
    world = make_world('physics', seed=1)
    world.reset(1)
    world.step(1.0)
    for camera, affine in CAMERAS.items():
        image = world.render(camera)
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        for target in world.targets:
            x, y = affine[:, :2] @ target.position + affine[:, 2]
            r, g, b = image[int(round(y)), int(round(x))]
            assert r > 200 and g < 80 and b < 80, camera


def test_trajectory_from_the_jtc_model_is_tracked_within_the_drive_limits():
    """A JointTrajectory executed as the stock controller does (sampled at 100 Hz into
    set-points) brings the physical arm to the goal without exceeding the speed limit."""
    world = make_world('physics', seed=0)
    world.reset(0)
    jtc = JointTrajectoryControllerModel(JOINTS)
    goal = world.q + np.array([0.6, -0.5, 0.4, 0.8])
    msg = JointTrajectory(joint_names=list(JOINTS))
    for k in range(1, 11):
        point = JointTrajectoryPoint(positions=(world.q + (goal - world.q) * k / 10).tolist())
        point.time_from_start = Duration(sec=0, nanosec=int(k * 0.1 * 1e9))
        msg.points.append(point)
    assert jtc.receive(msg, 0.0)
    now, peak = 0.0, 0.0
    while now < 2.0:
        command = jtc.update(now, world.q)
        if command is not None:
            world.set_command(command)
        world.step(0.01)
        now += 0.01
        peak = max(peak, float(np.max(np.abs(world.velocity) / VELOCITY_LIMIT)))
    np.testing.assert_allclose(world.q, goal, atol=5e-3)
    assert world.tracking_error_max[:3].max() < 0.1
    assert peak <= 1.02


def test_unknown_world_lists_the_available_ones():
    with pytest.raises(ValueError, match='physics, kinematic'):
        make_world('gazebo')
    with pytest.raises(ValueError, match='unknown simulated world'):
        expert_for('gazebo')
