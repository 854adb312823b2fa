"""Node parameters read with the node's own rules, from the shipped params files and dicts
(no ROS graph needed)."""
from pathlib import Path

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
