"""Fault injection, the way a user runs the node: `env-actor-launch` with a params file in
its own process, and this process as the robot (joint states at 100 Hz, three raw cameras,
a position servo following the forward commands; test/fault_robot.py), over real DDS.

One node process per test goes through a sequence of faults; each fault is switched on,
checked (ERROR on /diagnostics with the right message, nothing commanded while it lasts),
switched off, and recovery is checked (commanding again, OK diagnostics). At the end every
command and trajectory the robot received is checked (`check_commands`): finite, inside
the position limits, no step above the velocity limit from the previous command or, for a
first command, from where the robot was. Timing is never asserted tighter than what a
busy 2-core machine gives.
"""
import os
import signal
import time

import numpy as np
import pytest

from lifecycle_msgs.msg import Transition
from std_srvs.srv import Trigger

from fault_robot import ERROR, OK, POSE, Session, STEP

def test_faults_inputs_lifecycle_resets_inference_and_sigterm(tmp_path):
    s = Session(tmp_path)
    robot = s.robot
    try:
        # start: the first command is limited against where the robot is
        first = s.first_command_after(0.0)
        assert np.all(np.abs(first - POSE) <= STEP + 1e-6), first
        s.wait_diag(0.0, OK, 'commanding')

        s.fault(lambda: robot.camera_mode.update(left='drop'),
                lambda: robot.camera_mode.update(left='good'), 2.0, 'left stale')
        s.fault(lambda: setattr(robot, 'joint_mode', 'drop'),
                lambda: setattr(robot, 'joint_mode', 'good'), 1.5, 'proprio stale')
        s.fault(lambda: setattr(robot, 'joint_mode', 'nan'),
                lambda: setattr(robot, 'joint_mode', 'good'), 1.5, 'NaN')
        s.fault(lambda: setattr(robot, 'joint_mode', 'missing'),
                lambda: setattr(robot, 'joint_mode', 'good'), 1.5,
                "joint_states lacks joints ['shoulder']")
        s.fault(lambda: robot.camera_mode.update(head='bad_encoding'),
                lambda: robot.camera_mode.update(head='good'), 1.5, "'32FC1' is a depth image")

        # lifecycle cycling: the operator moves the robot while the node is inactive
        for pose in ([0.9, 0.4, -0.6, 0.1], [-1.0, 1.2, 0.3, 1.8], POSE):
            s.wait_commands(time.monotonic(), count=3)
            before = time.monotonic()
            assert s.lifecycle(Transition.TRANSITION_DEACTIVATE)
            stopped = time.monotonic()
            assert s.holds(before) or s.harness.wait_for(lambda: s.holds(before), 2, 'hold')
            robot.teleport(pose)
            time.sleep(0.3)
            assert not s.commands(stopped + 0.2)
            assert s.lifecycle(Transition.TRANSITION_ACTIVATE)
            first = s.first_command_after(stopped + 0.2)
            assert np.all(np.abs(first - pose) <= STEP + 1e-6), (pose, first)

        # ~/reset while commanding, with the robot somewhere else
        s.wait_commands(time.monotonic(), count=3)
        robot.follow = False
        robot.teleport([-0.5, 0.5, -0.5, 0.5])
        time.sleep(0.1)
        reset_at = time.monotonic()
        response = s.harness.call(s.harness.reset, Trigger.Request())
        assert response.success, response.message
        after = [c for t, _, c in s.wait_commands(reset_at, count=10)]
        near = [np.all(np.abs(c - [-0.5, 0.5, -0.5, 0.5]) <= STEP + 1e-6) for c in after]
        assert any(near), 'no first command from the measured pose after ~/reset'
        robot.follow = True

        # the inference process is killed: ERROR with the exit code, hold, restart, resume
        pid = int(s.latest_values()['inference_pid'])
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        error = s.wait_diag(killed, ERROR, 'inference process died (exit code -9)')[0]
        s.wait_commands(error, count=5, timeout=90)
        restarted = s.wait_diag(error, OK, 'commanding', timeout=60)
        assert int(restarted[3]['inference_pid']) != pid
        assert restarted[3]['inference_restarts'] == '1'
        assert int(restarted[3]['fault_ticks']) > 0       # ticks held while it restarted

        # the inference process hangs (SIGSTOP for 3 s): ERROR 'hung', restart, no old result
        pid = int(s.latest_values()['inference_pid'])
        stopped = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        error = s.wait_diag(stopped, ERROR, 'inference hung')[0]
        time.sleep(max(0.0, stopped + 3.0 - time.monotonic()))
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass                          # already killed by the supervisor
        s.wait_commands(max(error, stopped + 3.0), count=5, timeout=90)
        values = s.wait_diag(max(error, stopped + 3.0), OK, 'commanding', timeout=60)[3]
        assert int(values['inference_pid']) != pid
        assert int(values['est_delay_steps']) <= 5, values['est_delay_steps']

        s.signal_and_check_exit(signal.SIGTERM)
        counts = s.check_all_commands()
        assert counts['cmd'] > 100 and counts['first_from_measurement'] >= 5, counts
    finally:
        s.close()


def test_restart_bound_deactivates_then_reconfigure_recovers_and_sigint_holds(tmp_path):
    s = Session(tmp_path, inference_max_restarts=1)
    try:
        s.wait_commands(0.0, count=5)
        pid = int(s.latest_values()['inference_pid'])
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        error = s.wait_diag(killed, ERROR, 'restarting the inference process')[0]
        restarted = s.wait_diag(error, OK, 'commanding', timeout=60)    # restart 1 of 1
        assert int(restarted[3]['inference_pid']) != pid
        killed = time.monotonic()
        os.kill(int(restarted[3]['inference_pid']), signal.SIGKILL)
        s.wait_diag(killed, ERROR, 'giving up')
        s.wait_diag(killed, ERROR, 'inactive: not commanding')
        assert s.harness.state() == 'inactive'
        time.sleep(0.5)
        assert not s.commands(killed + 1.0)
        assert s.holds(killed)
        response = s.harness.call(s.harness.reset, Trigger.Request())
        assert not response.success and 'no policy' in response.message
        assert not s.lifecycle(Transition.TRANSITION_ACTIVATE)
        assert s.harness.state() == 'inactive'
        # an operator rebuilds the policy: cleanup + configure + activate
        assert s.lifecycle(Transition.TRANSITION_CLEANUP)
        assert s.lifecycle(Transition.TRANSITION_CONFIGURE)
        assert s.lifecycle(Transition.TRANSITION_ACTIVATE)
        s.wait_commands(time.monotonic(), count=5)
        s.signal_and_check_exit(signal.SIGINT)
        s.check_all_commands()
    finally:
        s.close()


@pytest.mark.parametrize('state_joints', [['shoulder', 'elbow', 'wrist']])
def test_action_joint_without_measurement_refuses_to_activate(tmp_path, state_joints):
    """The gripper has no measured position: configure says so, activate is refused, and
    /diagnostics reports ERROR with the reason; nothing is commanded."""
    (tmp_path / 'mlp.yaml').write_text('type: mlp\nparams: {in_dim: 15, out_dim: 40}\n')
    policy = tmp_path / 'policy.yaml'
    policy.write_text('model: {component_config_paths: {main: mlp.yaml}}\n'
                      'policy: {type: mlp_chunk, action_chunk_size: 10, action_dim: 4, '
                      'state_dim: 3, proprio_history_size: 2, image_size: [24, 32], '
                      'cameras: [head, left, right]}\n')
    s = Session(tmp_path, policy=policy, state_joint_names=state_joints)
    try:
        s.wait_diag(0.0, ERROR, "action joints ['gripper'] are not in state_joint_names")
        assert s.harness.state() == 'inactive'
        assert not s.lifecycle(Transition.TRANSITION_ACTIVATE)
        time.sleep(0.5)
        assert not s.harness.snapshot('cmd')
    finally:
        s.close()


def test_events_executor_runs_the_node_and_sigint_holds(tmp_path):
    """`executor: events` (rclpy's EventsExecutor): the same node starts from the measured
    pose, survives a deactivate/activate with the robot moved, answers ~/reset, and a
    SIGINT still holds and exits 0."""
    s = Session(tmp_path, executor='events')
    try:
        first = s.first_command_after(0.0)
        assert np.all(np.abs(first - POSE) <= STEP + 1e-6), first
        s.wait_diag(0.0, OK, 'commanding')
        before = time.monotonic()
        assert s.lifecycle(Transition.TRANSITION_DEACTIVATE)
        stopped = time.monotonic()
        assert s.holds(before) or s.harness.wait_for(lambda: s.holds(before), 2, 'hold')
        pose = [0.9, 0.4, -0.6, 0.1]
        s.robot.teleport(pose)
        time.sleep(0.3)
        assert s.lifecycle(Transition.TRANSITION_ACTIVATE)
        first = s.first_command_after(stopped + 0.2)
        assert np.all(np.abs(first - pose) <= STEP + 1e-6), (pose, first)
        response = s.harness.call(s.harness.reset, Trigger.Request())
        assert response.success, response.message
        s.wait_commands(time.monotonic(), count=5)
        s.signal_and_check_exit(signal.SIGINT)
        s.check_all_commands()
    finally:
        s.close()
    assert 'callbacks run on EventsExecutor' in s.stderr_path.read_text()
