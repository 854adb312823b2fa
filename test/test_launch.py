"""The launch file and its stand-in console script pass the same parameters."""
import ast
import importlib.util
from pathlib import Path

import pytest

from env_actor.tools.launch_node import parse, ros_arguments

ROOT = Path(__file__).resolve().parent.parent
LAUNCH = ROOT / 'launch' / 'policy.launch.py'
POLICY = ROOT / 'env_actor' / 'policy' / 'policies' / 'mlp_chunk' / 'mlp_chunk.yaml'


def launch_arguments() -> list:
    tree = ast.parse(LAUNCH.read_text())
    return [node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, 'id', '') ==
            'DeclareLaunchArgument']


def test_launch_file_declares_the_documented_arguments():
    assert launch_arguments() == ['policy_yaml', 'robot', 'params_file', 'namespace',
                                  'node_name', 'use_sim_time', 'autostart']
    # the node it starts is the snake_case executable that setup.py installs
    assert "executable='policy_node'" in LAUNCH.read_text()
    setup = (ROOT / 'setup.py').read_text()
    for name in ('policy_node', 'launch_node', 'replay', 'offline_eval', 'sim_robot', 'demo'):
        assert f"'{name} = env_actor." in setup


def test_console_launcher_builds_the_same_parameters():
    opts = parse(['--policy-yaml', str(POLICY), '--namespace', 'robot', '--use-sim-time'])
    args = ros_arguments(opts)
    assert args[:5] == ['--ros-args', '-r', '__node:=env_actor', '-r', '__ns:=/robot']
    # params file first, then the launch arguments, so they win (as in the launch file)
    assert args[5:7] == ['--params-file', str(ROOT / 'config' / 'igris_b.yaml')]
    assert args[7:] == ['-p', f'policy_yaml:={POLICY.resolve()}', '-p', 'use_sim_time:=true',
                        '-p', 'autostart:=true']


def test_robots_by_name_like_the_seeds_run_inference(capsys):
    from env_actor.tools.robots import available_robots, robot_params_file
    assert {'igris_b', 'sim'} <= set(available_robots())
    opts = parse(['-P', str(POLICY), '--robot', 'sim'])
    assert opts.params_file == ROOT / 'config' / 'sim.yaml' == robot_params_file('sim')
    with pytest.raises(SystemExit):
        parse(['-P', str(POLICY), '--robot', 'igris_c'])
    assert "--robot: unknown robot 'igris_c'; available: ['igris_b', 'sim'" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):            # one or the other
        parse(['-P', str(POLICY), '--robot', 'sim', '--params-file', 'x.yaml'])


def test_console_launcher_rejects_missing_files(capsys):
    with pytest.raises(SystemExit):
        parse(['--policy-yaml', '/nonexistent.yaml'])
    assert '--policy-yaml: file not found: /nonexistent.yaml' in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec('launch_ros') is None,
                    reason='launch_ros is not installable here (no ROS install)')
def test_launch_description_builds():
    spec = importlib.util.spec_from_file_location('policy_launch', LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = [a.name for a in description.entities if hasattr(a, 'name')]
    assert 'policy_yaml' in names


def test_console_launcher_passes_ros_args_through_after_its_own():
    from env_actor.tools.launch_node import split_ros_args
    own, extra = split_ros_args(['--policy-yaml', 'p.yaml', '--ros-args', '-p',
                                 'device:=cpu', '--log-level', 'warn'])
    assert own == ['--policy-yaml', 'p.yaml']
    assert extra == ['-p', 'device:=cpu', '--log-level', 'warn']
    assert split_ros_args(['--policy-yaml', 'p.yaml']) == (['--policy-yaml', 'p.yaml'], [])


def test_device_rule():
    import torch
    from env_actor.policy.utils.device import resolve_device
    assert resolve_device('auto') == ('cuda' if torch.cuda.is_available() else 'cpu')
    assert resolve_device('CPU') == 'cpu'
    with pytest.raises(ValueError, match="parameter device 'tpu' unknown"):
        resolve_device('tpu')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="parameter device is 'cuda' but this torch "
                                             "has no usable CUDA .*use 'auto' or 'cpu'"):
            resolve_device('cuda')
