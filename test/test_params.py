"""Node parameters read with the node's own rules, from the shipped params files and dicts
(no ROS graph needed)."""
from pathlib import Path

import numpy as np
import pytest

from env_actor.ros.params import config_from_params_file, DictParameters, read_node_config

ROOT = Path(__file__).resolve().parent.parent
BASE = {'policy_yaml': '/tmp/p.yaml', 'state_joint_names': ['a', 'b'],
        'action_joint_names': ['a', 'b']}


def test_max_velocity_is_per_second_and_the_step_follows_the_period():
    for frequency in (20.0, 50.0):
        config = read_node_config(DictParameters(dict(
            BASE, control_frequency=frequency, **{'safety.max_velocity': [1.5, 3.0]})))
        settings = config.runtime_settings()
        assert settings.max_velocity == [1.5, 3.0] and not config.warnings
        assert settings.control_period == pytest.approx(1.0 / frequency)


def test_deprecated_max_step_is_converted_with_a_warning_naming_the_new_parameter():
    config = read_node_config(DictParameters(dict(
        BASE, control_frequency=50.0, **{'safety.max_step': [0.02, 0.1]})))
    assert config.runtime_settings().max_velocity == pytest.approx([1.0, 5.0])
    assert len(config.warnings) == 1 and 'set safety.max_velocity' in config.warnings[0]
    with pytest.raises(ValueError, match='safety.max_step and safety.max_velocity are both'):
        read_node_config(DictParameters(dict(BASE, **{'safety.max_step': [0.1],
                                                      'safety.max_velocity': [2.0]})))


@pytest.mark.parametrize('key,value,message', [
    ('inference_timeout', -1.0, 'inference_timeout must be >= 0'),
    ('inference_max_restarts', -1, 'inference_max_restarts must be >= 0'),
    ('inference_restart_window', 0.0, 'inference_restart_window must be > 0'),
])
def test_supervision_parameters_are_validated(key, value, message):
    with pytest.raises(ValueError, match=message):
        read_node_config(DictParameters(dict(BASE, **{key: value})))


@pytest.mark.parametrize('name', ['igris_b.yaml', 'sim.yaml'])
def test_shipped_params_files_use_a_velocity_limit(name):
    config = config_from_params_file(ROOT / 'config' / name, {'policy_yaml': '/tmp/p.yaml'})
    assert config.runtime_settings().max_velocity and not config.warnings


def test_every_parameter_is_described_over_dds_and_sets_follow_the_lifecycle(tmp_path):
    """What `ros2 param describe` / `ros2 param set` see, through the node's services."""
    from rcl_interfaces.msg import ParameterType
    from rcl_interfaces.srv import DescribeParameters, SetParameters
    from rclpy.parameter import Parameter
    from env_actor.ros.params import PARAMETERS
    from env_actor.ros.policy_node import PolicyNode
    from ros_harness import Harness
    from test_node_bad_inputs import tiny_policy
    params = tmp_path / 'params.yaml'
    params.write_text('/**:\n  ros__parameters:\n    control_frequency: 20\n'     # an int
                      '    state_joint_names: [j1, j2]\n    action_joint_names: [j1, j2]\n'
                      '    cameras: [head]\n    min_num_actions_executed: 5\n'
                      '    safety.position_lower: [-3]\n    inference_mode: thread\n')
    harness = Harness()
    node = PolicyNode(context=harness.context, cli_args=[
        '--ros-args', '--params-file', str(params), '-p', f'policy_yaml:={tiny_policy(tmp_path)}'])
    harness.add_node(node)
    describe = harness.probe.create_client(DescribeParameters, '/env_actor/describe_parameters')
    set_params = harness.probe.create_client(SetParameters, '/env_actor/set_parameters')

    def set_(name, value):
        request = SetParameters.Request()
        request.parameters = [Parameter(name, value=value).to_parameter_msg()]
        return harness.call(set_params, request).results[0]
    try:
        request = DescribeParameters.Request()
        request.names = [p.name for p in PARAMETERS]
        descriptors = harness.call(describe, request).descriptors
        assert [d.name for d in descriptors] == [p.name for p in PARAMETERS]
        for p, d in zip(PARAMETERS, descriptors):
            assert d.type != ParameterType.PARAMETER_NOT_SET and d.description, p.name
            assert d.type == p.descriptor().type
            assert bool(d.floating_point_range or d.integer_range) == (p.low is not None)
        frequency = [d for d in descriptors if d.name == 'control_frequency'][0]
        assert frequency.floating_point_range[0].to_value == 1000.0
        assert node.get_parameter('control_frequency').value == 20.0
        assert set_('algorithm', 'sequential').successful          # unconfigured: any
        assert set_('algorithm', 'rtc').successful
        node.trigger_configure()
        assert node.lifecycle_state == 'inactive', node.last_error
        refused = set_('control_frequency', 50.0)
        assert not refused.successful and 'need a reconfigure' in refused.reason
        assert node.get_parameter('control_frequency').value == 20.0
        assert set_('safety.max_velocity', [0.5, 1.0]).successful  # live
        np.testing.assert_allclose(node.executor_core.safety.max_step, [0.025, 0.05])
        bad = set_('safety.max_velocity', [0.5, 1.0, 2.0])
        assert not bad.successful and 'safety.max_velocity has 3 entries' in bad.reason
        np.testing.assert_allclose(node.executor_core.safety.max_step, [0.025, 0.05])
        harness.run(node.trigger_cleanup)
        assert set_('control_frequency', 50.0).successful
    finally:
        harness.close()


def test_docs_parameter_table_is_the_declaration():
    from env_actor.ros.params import parameter_table
    text = (ROOT / 'docs' / 'node.md').read_text()
    assert parameter_table() in text, 'docs/node.md: run `python -m env_actor.ros.params`'


BRINGUP = """/**:
  ros__parameters:
    use_sim_time: false
controller_manager:
  ros__parameters:
    update_rate: 500
/robot/env_actor:
  ros__parameters:
    policy_yaml: p.yaml
    state_joint_names: [a, b]
    action_joint_names: [a, b]
    control_frequency: 30.0
/**/env_actor:
  ros__parameters:
    control_frequency: 25.0
other_policy:
  ros__parameters:
    state_joint_names: [x]
"""


def test_params_file_sections_are_chosen_by_node_name_like_rcl(tmp_path):
    from env_actor.ros.params import _node_pattern_matches
    path = tmp_path / 'bringup.yaml'
    path.write_text(BRINGUP)
    cfg = config_from_params_file(path, node_name='env_actor', namespace='/robot')
    # later matching sections win, in file order; other nodes' sections are ignored
    assert cfg.state_joint_names == ['a', 'b'] and cfg.control_frequency == 25.0
    assert cfg.sources == [f'{path} [/**]', f'{path} [/robot/env_actor]',
                           f'{path} [/**/env_actor]']
    with pytest.raises(ValueError, match='state_joint_names is empty'):
        config_from_params_file(path, {'policy_yaml': 'p'}, node_name='env_actor')
    path.write_text('controller_manager:\n  ros__parameters: {update_rate: 500}\n')
    with pytest.raises(ValueError, match=r"no `ros__parameters` section applies to node "
                                         r"/env_actor \(sections: \['controller_manager'\]\)"):
        config_from_params_file(path)
    for pattern, fqn, expected in [('/**', '/a/b/c', True), ('env_actor', '/env_actor', True),
                                   ('env_actor', '/robot/env_actor', False),
                                   ('/robot/*', '/robot/env_actor', True),
                                   ('/*/env_actor', '/env_actor', False),
                                   ('/**/env_actor', '/env_actor', True),
                                   ('/**/env_*', '/a/b/env_actor', True)]:
        assert _node_pattern_matches(pattern, fqn) == expected, (pattern, fqn)
