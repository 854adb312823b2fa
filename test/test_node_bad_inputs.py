"""Bad input at run time is survived, reported in diagnostics and never commanded."""
import time

import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data

from sensor_msgs.msg import Image, JointState

from env_actor.policy.registry import POLICY_REGISTRY
from env_actor.ros.policy_node import PolicyNode
from ros_harness import Harness, is_hold

JOINTS = ['j1', 'j2']


def tiny_policy(tmp_path, ptype='mlp_chunk'):
    (tmp_path / 'mlp.yaml').write_text('type: mlp\nparams: {in_dim: 7, out_dim: 20}\n')
    path = tmp_path / 'policy.yaml'
    path.write_text('model: {component_config_paths: {main: mlp.yaml}}\n'
                    f'policy: {{type: {ptype}, action_chunk_size: 10, action_dim: 2, '
                    'state_dim: 2, proprio_history_size: 2, image_size: [8, 8], '
                    'cameras: [head]}\n')
    return path


class Feeder:
    """Publishes joint states at 100 Hz and a raw head camera at 30 Hz from the probe."""

    def __init__(self, harness: Harness) -> None:
        self.mode = 'good'
        self.position = [0.1, -0.2]            # where the robot is (the test may move it)
        probe = harness.probe
        self.js = probe.create_publisher(JointState, 'joint_states', qos_profile_sensor_data)
        self.cam = probe.create_publisher(Image, 'head/image_raw', qos_profile_sensor_data)
        probe.create_timer(0.01, self.joint_state)
        probe.create_timer(1 / 30, self.image)

    def joint_state(self) -> None:
        names, position = list(JOINTS), list(self.position)
        if self.mode == 'nan_state':
            position = [0.1, float('nan')]
        if self.mode == 'missing_joint':
            names, position = ['j1'], [0.1]
        self.js.publish(JointState(name=names, position=position))

    def image(self) -> None:
        msg = Image(height=16, width=16, encoding='rgb8', step=48)
        msg.data = np.full(16 * 48, 90, np.uint8).tobytes()
        if self.mode == 'bad_encoding':
            msg.encoding = '8UC3'
        if self.mode == 'bad_size':
            msg.data = bytes(100)
        self.cam.publish(msg)


def make_node(harness, policy_yaml, override=None):
    parameters = [
        Parameter('policy_yaml', value=str(policy_yaml)),
        Parameter('state_joint_names', value=JOINTS),
        Parameter('action_joint_names', value=JOINTS),
        Parameter('cameras', value=['head']),
        Parameter('min_num_actions_executed', value=5),
        Parameter('joint_states_max_age', value=0.1),
        Parameter('camera_max_age', value=0.3),
        Parameter('safety.max_velocity', value=[4.0]),
    ]
    if override is not None:
        parameters = [p for p in parameters if p.name != override.name] + [override]
    node = PolicyNode(context=harness.context, parameter_overrides=parameters)
    harness.add_node(node)
    return node


def latest_diag(harness):
    return harness.diagnostics[-1] if harness.diagnostics else (0, 0, '', {})


@pytest.mark.parametrize('mode, key, text', [
    ('bad_encoding', 'input_error_head',
     "camera 'head': image encoding '8UC3' carries no colour order"),
    ('bad_size', 'input_error_head', 'image data has 100 bytes'),
    ('nan_state', 'input_error_proprio', "NaN/inf in ['position:j2']"),
    ('missing_joint', 'input_error_proprio', "lacks joints ['j2']"),
])
def test_bad_input_stops_commanding_and_is_reported(tmp_path, mode, key, text):
    harness = Harness()
    feeder = Feeder(harness)
    node = make_node(harness, tiny_policy(tmp_path))
    try:
        node.trigger_configure()
        assert node.lifecycle_state == 'inactive'
        node.trigger_activate()
        assert node.lifecycle_state == 'active'
        harness.wait_for(lambda: len(harness.snapshot('cmd')) > 10, 10, 'commands')
        feeder.mode = mode
        bad = time.monotonic()
        harness.wait_for(lambda: text in latest_diag(harness)[3].get(key, ''), 5,
                         f'diagnostic {key}')
        assert latest_diag(harness)[1] == 2                        # ERROR
        assert text in latest_diag(harness)[2]
        time.sleep(0.6)
        assert not harness.snapshot('cmd', bad + 0.3 + 0.15), 'commanded on bad input'
        feeder.mode = 'good'
        good = time.monotonic()
        harness.wait_for(lambda: harness.snapshot('cmd', good), 5, 'recovery')
        commands = np.array([e[2] for e in harness.snapshot('cmd')])
        assert np.all(np.isfinite(commands))
    finally:
        harness.close()


@POLICY_REGISTRY.register('faulty_test_policy')
class FaultyPolicy:
    """Every third call raises, every third returns NaN, the rest a valid chunk."""

    def __init__(self, components, **kwargs):
        self.calls = 0

    def predict(self, input_data, norm):
        self.calls += 1
        if self.calls % 3 == 2:
            raise RuntimeError('boom')
        value = np.nan if self.calls % 3 == 0 else 0.01 * self.calls
        return np.full((10, 2), value, np.float32)

    def guided_inference(self, input_data, norm, s, h):
        return self.predict(input_data, norm)

    def warmup(self):
        pass

    def freeze_all_model_params(self):
        pass


def test_policy_that_raises_or_returns_nan_is_never_commanded(tmp_path):
    harness = Harness()
    Feeder(harness)
    # the class is registered in this process only: run it on the inference thread
    node = make_node(harness, tiny_policy(tmp_path, 'faulty_test_policy'),
                     Parameter('inference_mode', value='thread'))
    try:
        node.trigger_configure()
        node.trigger_activate()
        harness.wait_for(lambda: int(latest_diag(harness)[3].get('policy_errors', 0)) >= 4,
                         10, 'policy errors in diagnostics')
        values = latest_diag(harness)[3]
        assert 'boom' in values['last_policy_error'] or 'NaN' in values['last_policy_error']
        commands = np.array([e[2] for e in harness.snapshot('cmd')])
        assert len(commands) > 5 and np.all(np.isfinite(commands))
    finally:
        harness.close()


@pytest.mark.parametrize('override, text', [
    (Parameter('action_joint_names', value=['j1', 'j2', 'j3']),
     'action_joint_names has 3 joints but the policy action_dim is 2'),
    (Parameter('state_fields', value=['position', 'velocity']),
     'state_joint_names x state_fields gives 4 values but the policy state_dim is 2'),
    (Parameter('cameras', value=['head', 'wrist']), 'does not match the policy cameras'),
    (Parameter('algorithm', value='fastest'), "algorithm 'fastest' unknown"),
    (Parameter('policy_yaml', value='/nonexistent/policy.yaml'),
     'policy YAML file not found: /nonexistent/policy.yaml'),
])
def test_configure_errors_fail_the_transition_and_are_reported(tmp_path, override, text):
    harness = Harness()
    node = make_node(harness, tiny_policy(tmp_path), override)
    try:
        node.trigger_configure()
        assert node.lifecycle_state == 'unconfigured'
        assert text in node.last_error
        status = node.diagnostics()
        assert status.level[0] == 2 and text in status.message
    finally:
        harness.close()


def test_failed_configure_is_reported_on_diagnostics_over_dds(tmp_path):
    """Published from construction on: a supervisor sees why the node is not running."""
    harness = Harness()
    node = make_node(harness, tmp_path / 'missing.yaml')
    try:
        node.trigger_configure()
        assert node.lifecycle_state == 'unconfigured'
        harness.wait_for(lambda: any(d[1] == 2 and 'configure failed' in d[2]
                                     and 'missing.yaml' in d[2] for d in harness.diagnostics),
                         10, 'ERROR diagnostics naming the missing policy YAML')
    finally:
        harness.close()


class ExplodingNode(PolicyNode):
    """A node whose prompt callback has a bug (raises)."""

    def _on_prompt(self, msg) -> None:
        raise RuntimeError('bug in a callback')


def test_exception_in_a_callback_holds_then_exits_non_zero(tmp_path):
    import threading
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String
    from env_actor.ros.policy_node import spin_until_stopped
    harness = Harness()
    Feeder(harness)
    prompt = harness.probe.create_publisher(String, 'prompt', 10)
    node = ExplodingNode(context=harness.context, parameter_overrides=[
        Parameter('policy_yaml', value=str(tiny_policy(tmp_path))),
        Parameter('state_joint_names', value=JOINTS),
        Parameter('action_joint_names', value=JOINTS), Parameter('cameras', value=['head']),
        Parameter('min_num_actions_executed', value=5),
        Parameter('prompt_topic', value='prompt'),
        Parameter('inference_mode', value='thread'), Parameter('autostart', value=True)])
    executor = SingleThreadedExecutor(context=harness.context)
    executor.add_node(node)
    codes = []
    thread = threading.Thread(
        target=lambda: codes.append(spin_until_stopped(node, executor, threading.Event())))
    thread.start()
    try:
        harness.wait_for(lambda: len(harness.snapshot('cmd')) > 10, 30, 'commands')
        sent = time.monotonic()
        prompt.publish(String(data='pick up the cube'))
        thread.join(timeout=10)
        assert codes == [1]
        harness.wait_for(lambda: [e for e in harness.snapshot('traj', sent)
                                  if is_hold(e[2])], 5, 'a hold trajectory')
        last = harness.snapshot('cmd')[-1][2]
        hold = [e for e in harness.snapshot('traj', sent) if is_hold(e[2])][0][2]
        np.testing.assert_allclose(hold.points[0].positions, last)
        assert node.executor_core is None            # released: no inference left behind
    finally:
        thread.join(timeout=10)
        executor.shutdown()
        node.destroy_node()
        harness.close()
