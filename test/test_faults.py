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
from pathlib import Path
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from lifecycle_msgs.msg import Transition
from std_srvs.srv import Trigger

from fault_robot import check_commands, FaultRobot
from ros_harness import Harness

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
        return [e for e in self.harness.snapshot('traj', since) if len(e[2].points) == 1]

    # -- faults -------------------------------------------------------------------------
    def fault(self, switch_on, switch_off, duration: float, text: str) -> tuple:
        """Inject a fault for `duration` s; check ERROR + silence, then recovery.

        Returns:
            (start, end) monotonic times of the fault.
        """
        self.wait_commands(time.monotonic(), count=3)
        start = time.monotonic()
        switch_on()
        self.wait_diag(start, ERROR, text)
        time.sleep(max(0.0, start + duration - time.monotonic()))
        end = time.monotonic()
        # allow 1 s for the node to notice (max ages 0.1 / 0.5 s, a loaded machine)
        assert not self.commands(start + 1.0, end), f'commanded during fault {text!r}'
        assert self.holds(start), f'no hold trajectory after fault {text!r}'
        switch_off()
        self.wait_commands(end, count=5)
        self.wait_diag(end, OK, 'commanding')
        return start, end

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
                lambda: robot.camera_mode.update(head='good'), 1.5, "'32FC1' unsupported")

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
        s.wait_diag(killed, ERROR, 'inference process died (exit code -9)')
        s.wait_commands(killed + 0.5, count=5, timeout=90)
        restarted = s.wait_diag(killed, OK, 'commanding')
        assert int(restarted[3]['inference_pid']) != pid
        assert restarted[3]['inference_restarts'] == '1'
        assert int(restarted[3]['fault_ticks']) > 0       # ticks held while it restarted

        # the inference process hangs (SIGSTOP for 3 s): ERROR 'hung', restart, no old result
        pid = int(s.latest_values()['inference_pid'])
        stopped = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        s.wait_diag(stopped, ERROR, 'inference hung')
        time.sleep(max(0.0, stopped + 3.0 - time.monotonic()))
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass                          # already killed by the supervisor
        s.wait_commands(stopped + 3.0, count=5, timeout=90)
        values = s.wait_diag(stopped + 3.0, OK, 'commanding')[3]
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
        os.kill(pid, signal.SIGKILL)
        s.wait_commands(time.monotonic() + 0.5, count=5, timeout=90)   # restart 1 of 1
        s.wait_diag(time.monotonic(), OK, 'commanding')
        killed = time.monotonic()
        os.kill(int(s.latest_values()['inference_pid']), signal.SIGKILL)
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
