"""The node's outputs over real DDS: stamps, the output switches, shutdown, the shipped
robot params file."""
import os
from pathlib import Path
import re
import time

import numpy as np
from rclpy.parameter import Parameter

from std_srvs.srv import Trigger

from env_actor.ros.policy_node import PolicyNode
from env_actor.runtime.inference import SimulatedInferenceWorker
from env_actor.runtime.realtime import scheduling_policy
from ros_harness import Harness, is_hold
from test_node_bad_inputs import Feeder, make_node, tiny_policy

ROOT = Path(__file__).resolve().parent.parent


def run_until_commands(harness, node, kind='cmd', count=10, since=0.0):
    node.trigger_configure()
    node.trigger_activate()
    assert node.lifecycle_state == 'active'
    harness.wait_for(lambda: len(harness.snapshot(kind, since)) >= count, 20,
                     f'{count} {kind}')


def test_trajectory_stamp_zero_and_now(tmp_path):
    harness = Harness()
    Feeder(harness)
    zero = make_node(harness, tiny_policy(tmp_path))
    try:
        run_until_commands(harness, zero, 'traj', 2)
        stamp = harness.snapshot('traj')[0][2].header.stamp
        assert (stamp.sec, stamp.nanosec) == (0, 0)          # start on arrival
        harness.run(zero.trigger_deactivate)
        harness.run(zero.trigger_cleanup)
        harness.remove_node(zero)
        now = make_node(harness, tiny_policy(tmp_path),
                        Parameter('trajectory_stamp', value='now'))
        since = time.monotonic()
        run_until_commands(harness, now, 'traj', 2, since)
        stamp = harness.snapshot('traj', since)[0][2].header.stamp
        assert abs(stamp.sec + stamp.nanosec * 1e-9 - time.time()) < 5.0
    finally:
        harness.close()


def test_output_switches(tmp_path):
    harness = Harness()
    Feeder(harness)
    node = make_node(harness, tiny_policy(tmp_path), Parameter('publish_commands', value=False))
    try:
        run_until_commands(harness, node, 'traj', 3)
        time.sleep(0.3)
        assert not harness.snapshot('cmd'), 'publish_commands: false still published'
        harness.run(node.trigger_deactivate)
        harness.run(node.trigger_cleanup)
        node.set_parameters([Parameter('publish_commands', value=True),
                             Parameter('publish_trajectory', value=False)])
        since = time.monotonic()
        run_until_commands(harness, node, 'cmd', 10, since)
        assert not harness.snapshot('traj', since + 0.5), 'publish_trajectory: false'
    finally:
        harness.close()


def test_shutdown_holds_and_releases(tmp_path):
    harness = Harness()
    Feeder(harness)
    node = make_node(harness, tiny_policy(tmp_path))
    try:
        run_until_commands(harness, node)
        before = time.monotonic()
        harness.run(node.trigger_shutdown)
        assert node.executor_core is None
        harness.wait_for(lambda: [e for e in harness.snapshot('traj', before)
                                  if is_hold(e[2])], 5, 'hold trajectory')
        last = harness.snapshot('cmd')[-1][2]
        hold = [e for e in harness.snapshot('traj', before) if is_hold(e[2])][0][2]
        np.testing.assert_allclose(hold.points[0].positions, last)
        time.sleep(0.3)
        assert not harness.snapshot('cmd', time.monotonic() - 0.2)
    finally:
        harness.close()


def test_shipped_robot_params_file_configures_a_node():
    """config/igris_b.yaml exactly as shipped (its robot's joints, compressed cameras,
    `device: auto`) with the example policy of its shapes, also on a machine without GPU."""
    harness = Harness()
    policy = ROOT / 'env_actor' / 'policy' / 'policies' / 'mlp_chunk' / 'mlp_chunk.yaml'
    node = PolicyNode(context=harness.context, cli_args=[
        '--ros-args', '--params-file', str(ROOT / 'config' / 'igris_b.yaml'),
        '-p', f'policy_yaml:={policy}'])
    harness.add_node(node)
    try:
        node.trigger_configure()
        assert node.lifecycle_state == 'inactive', node.last_error
        assert [c.transport for c in node.config.cameras] == ['compressed'] * 3
        assert node.config.runtime_settings().max_velocity == 1.745329
        # every action joint goes to exactly one of its three controllers
        groups = {g.name: (g.type, g.topic, len(g.joints)) for g in node.config.outputs}
        assert groups == {
            'arms': ('joint_trajectory', '/arm_controller/joint_trajectory', 14),
            'hands': ('forward_command', '/hand_controller/commands', 6),
            'waist_head': ('joint_trajectory', '/waist_head_controller/joint_trajectory', 4)}
        assert sorted(j for g in node.config.outputs for j in g.joints) == \
            sorted(node.config.action_joint_names)
        # igris_b asks for SCHED_FIFO 40 on the thread that configured (here: this one)
        scheduling = {kv.key: kv.value for kv in node.diagnostics().values}[
            'control_thread_scheduling']
        assert scheduling == 'SCHED_FIFO 40' or 'SCHED_FIFO 40 refused' in scheduling
        fifo = scheduling_policy() == os.SCHED_FIFO
        assert fifo == (scheduling == 'SCHED_FIFO 40')
    finally:
        node.trigger_cleanup()                  # on the thread it configured on: normal
        harness.close()
    assert scheduling_policy() == os.SCHED_OTHER


class BrokenActivate(PolicyNode):
    """A node whose activation hits a bug (raises)."""

    def _not_ready(self) -> str:
        raise RuntimeError('bug during activation')


def test_inactive_node_cannot_command_and_a_raising_transition_releases_everything(tmp_path):
    harness = Harness()
    Feeder(harness)
    node = make_node(harness, tiny_policy(tmp_path))
    try:
        run_until_commands(harness, node)
        node.trigger_deactivate()
        time.sleep(0.2)
        since = time.monotonic()
        node._outputs.send(np.zeros(2), np.zeros((3, 2)), None)  # lifecycle publishers
        time.sleep(0.5)
        assert not harness.snapshot('cmd', since), 'an inactive node published a command'
        assert not harness.snapshot('traj', since), 'an inactive node sent a trajectory'
    finally:
        harness.close()
    harness = Harness()
    broken = BrokenActivate(context=harness.context, parameter_overrides=[
        Parameter('policy_yaml', value=str(tiny_policy(tmp_path))),
        Parameter('state_joint_names', value=['j1', 'j2']),
        Parameter('action_joint_names', value=['j1', 'j2']), Parameter('cameras', value=['head']),
        Parameter('min_num_actions_executed', value=5)])
    harness.add_node(broken)
    try:
        broken.trigger_configure()
        assert broken.executor_core is not None
        broken.trigger_activate()
        assert broken.executor_core is None                     # on_error released it
        assert broken.lifecycle_state == 'unconfigured'
        harness.wait_for(lambda: any(d[1] == 2 and 'failed' in d[2]
                                     for d in harness.diagnostics), 10, 'ERROR diagnostics')
    finally:
        harness.close()


def test_operators_see_state_changes_runtime_warnings_and_a_unique_status_name(tmp_path):
    import logging
    from rcl_interfaces.msg import Log
    harness = Harness()
    feeder = Feeder(harness)
    lines = []
    harness.probe.create_subscription(Log, '/rosout', lambda m: lines.append(m), 100)
    # a name of its own: rcl routes a logger name to the /rosout publisher of the first
    # node of that name in the process, and earlier tests made many `env_actor` nodes
    node = PolicyNode('env_actor_logs', context=harness.context, parameter_overrides=[
        Parameter('policy_yaml', value=str(tiny_policy(tmp_path))),
        Parameter('state_joint_names', value=['j1', 'j2']),
        Parameter('action_joint_names', value=['j1', 'j2']), Parameter('cameras', value=['head']),
        Parameter('min_num_actions_executed', value=5)])
    harness.add_node(node)
    try:
        assert node.status_name == 'env_actor_logs: policy'
        run_until_commands(harness, node)
        feeder.mode = 'nan_state'
        harness.wait_for(lambda: any('commanding -> stale: proprio stale' in m.msg
                                     for m in lines), 10, 'a stale log line on /rosout')
        feeder.mode = 'good'
        harness.wait_for(lambda: any(m.msg.startswith('stale -> ') for m in lines), 10,
                         'a recovery log line')
        # the start may pass through `stale` (inputs not there yet) or land its first chunk
        # on the tick it was requested, so the line into commanding has several sources
        assert any(re.fullmatch(r'(start|waiting|stale) -> commanding', m.msg) for m in lines)
        logging.getLogger('env_actor.runtime.test').warning('runtime says %d', 42)
        harness.wait_for(lambda: any(m.msg == 'env_actor.runtime.test: runtime says 42'
                                     and m.level == Log.WARN for m in lines), 10,
                         'a Python warning of the runtime on /rosout')
    finally:
        harness.close()
    harness = Harness()
    namespaced = PolicyNode(context=harness.context, namespace='robot')
    try:
        assert namespaced.status_name == 'robot/env_actor: policy'
        assert namespaced.diagnostics().name == 'robot/env_actor: policy'
    finally:
        namespaced.destroy_node()
        harness.close()


class ConstantPolicy:
    """Always plans the same far-away target (the policy contract: predict / guided)."""

    def __init__(self, target) -> None:
        self.chunk = np.tile(np.asarray(target, np.float32), (10, 1))

    def predict(self, input_data, norm):
        return self.chunk

    def guided_inference(self, input_data, norm, s, h):
        return self.chunk


def test_reset_whose_first_chunk_lands_at_once_starts_the_trajectory_at_the_robot(tmp_path):
    """A ~/reset between two commanding ticks, the robot moved meanwhile, and the new
    episode's first chunk ready on the very next tick: that tick's trajectory must lead
    from the measured position, not from the command sent just before the reset.

    A fast policy makes this timing common; to make it certain, inference runs on the
    runtime's SimulatedInferenceWorker with no delay (the answer lands on the tick of the
    request), swapped in after configure.
    """
    harness = Harness()
    feeder = Feeder(harness)
    node = make_node(harness, tiny_policy(tmp_path), Parameter('inference_mode', value='thread'))
    try:
        node.trigger_configure()
        step = 4.0 * node.config.control_period             # safety.max_velocity 4 rad/s
        core = node.executor_core
        core.worker.close()
        core.worker = SimulatedInferenceWorker(ConstantPolicy([1.0, 1.0]), None, (10, 2), 0,
                                               node.config.control_period)
        node.trigger_activate()
        harness.wait_for(lambda: any(np.allclose(c, [1.0, 1.0])
                                     for _, _, c in harness.snapshot('cmd')), 20,
                         'commands at the policy target')
        feeder.position = [-1.0, -1.0]                      # an operator moves the robot
        harness.wait_for(lambda: np.allclose(core.measured_reference(), [-1.0, -1.0]), 5,
                         'the moved robot measured')
        reset_at = time.monotonic()
        assert harness.call(harness.reset, Trigger.Request()).success
        harness.wait_for(lambda: len(harness.snapshot('traj', reset_at)) >= 2, 10,
                         'trajectories after the reset')
        trajectories = [np.array([p.positions for p in msg.points])
                        for _, _, msg in harness.snapshot('traj', reset_at)]
        for points in trajectories:
            assert np.all(np.abs(np.diff(points, axis=0)) <= step + 1e-6), points[:3]
        # (a tick of the old episode may still go out between reset_at and the service)
        first = [p for p in trajectories if not np.allclose(p, 1.0)][0]
        np.testing.assert_allclose(first[0], [-1.0, -1.0], atol=1e-6)
        np.testing.assert_allclose(first[1], [-1.0 + step, -1.0 + step], atol=1e-6)
    finally:
        harness.close()
