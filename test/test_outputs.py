"""Output groups (one per controller): parameter rules on a params file, and the node over
DDS feeding a joint_trajectory_controller model and a forward command controller with
their own joint subsets."""
import time

import numpy as np
import pytest
from rclpy.parameter import Parameter

from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from env_actor.ros.params import config_from_params_file
from env_actor.ros.policy_node import PolicyNode
from env_actor.tools.jtc_model import JointTrajectoryControllerModel
from ros_harness import Harness
from test_node_bad_inputs import Feeder, tiny_policy

BASE = """/**:
  ros__parameters:
    policy_yaml: p.yaml
    state_joint_names: [a1, a2, g, h]
    action_joint_names: [a1, a2, g, h]
"""


def params(tmp_path, text: str):
    path = tmp_path / 'params.yaml'
    path.write_text(BASE + text)
    return config_from_params_file(path)


def test_groups_select_their_joints_in_the_controllers_order(tmp_path):
    cfg = params(tmp_path, """    outputs: [arm, gripper]
    output.arm.type: joint_trajectory
    output.arm.joints: [a2, a1]
    output.gripper.type: forward_command
    output.gripper.topic: /gripper_controller/commands
    output.gripper.joints: [g]
""")
    arm, gripper = cfg.outputs
    assert (arm.name, arm.type, arm.topic, arm.joints) == (
        'arm', 'joint_trajectory', 'arm_controller/joint_trajectory', ('a2', 'a1'))
    assert gripper.topic == '/gripper_controller/commands'
    action = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(arm.select(action), [2.0, 1.0])
    np.testing.assert_array_equal(gripper.select(np.vstack([action, action + 10])),
                                  [[3.0], [13.0]])
    # 'h' is predicted but commanded by nobody: said once at configure
    assert any("in no output group" in w and "['h']" in w for w in cfg.warnings)


def test_the_single_output_form_is_one_group_per_topic_over_all_joints(tmp_path):
    cfg = params(tmp_path, '    publish_commands: false\n')
    assert [(g.type, g.joints) for g in cfg.outputs] == [
        ('joint_trajectory', ('a1', 'a2', 'g', 'h'))]
    cfg = params(tmp_path, '')
    assert [g.type for g in cfg.outputs] == ['joint_trajectory', 'forward_command']
    assert not cfg.warnings


@pytest.mark.parametrize('text, error', [
    ('    outputs: [arm]\n    output.arm.type: joint_trajectory\n'
     '    output.arm.joints: [a1, elbow, wrist]\n',
     r"output.arm.joints: \['elbow', 'wrist'\] are not in action_joint_names"),
    ('    outputs: [arm, hand]\n    output.arm.type: joint_trajectory\n'
     '    output.arm.joints: [a1, g]\n    output.hand.type: forward_command\n'
     '    output.hand.joints: [g]\n',
     r"joint 'g' is in output groups 'arm' and 'hand'"),
    ('    outputs: [arm]\n    output.arm.type: position\n    output.arm.joints: [a1]\n',
     r"output.arm.type 'position' unknown; expected one of \['forward_command', "
     r"'joint_trajectory'\]"),
    ('    outputs: [arm]\n    output.arm.joints: [a1]\n', r'output.arm.type is missing'),
    ('    outputs: [arm]\n    output.arm.type: joint_trajectory\n',
     r'output.arm.joints is empty'),
    ('    outputs: [arm]\n    output.arm.type: joint_trajectory\n'
     '    output.arm.joints: [a1]\n    trajectory_topic: /x\n',
     r"\['trajectory_topic'\] describe the single output .* output.<name>.type"),
])
def test_bad_groups_fail_naming_the_parameter(tmp_path, text, error):
    with pytest.raises(ValueError, match=error) as info:
        params(tmp_path, text)
    assert 'params.yaml' in str(info.value)


def test_the_documented_bringup_example_matches_its_controllers(tmp_path):
    """docs/node.md: the controller_manager file and the node's params file agree."""
    import re
    import yaml
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / 'docs' / 'node.md').read_text()
    blocks = re.findall(r'```yaml\n(# (\S+).*?)```', text, re.S)
    files = {name: yaml.safe_load(body) for body, name in blocks}
    controllers = files['robot_controllers.yaml']
    (tmp_path / 'policy_params.yaml').write_text(yaml.safe_dump(files['policy_params.yaml']))
    cfg = config_from_params_file(tmp_path / 'policy_params.yaml', {'policy_yaml': 'p.yaml'})
    assert not cfg.warnings          # every action joint has its controller
    for group in cfg.outputs:
        controller = group.topic.split('/')[1]
        kind = controllers['controller_manager']['ros__parameters'][controller]['type']
        assert kind.startswith({'joint_trajectory': 'joint_trajectory_controller/',
                                'forward_command': 'forward_command_controller/'}[group.type])
        assert list(group.joints) == controllers[controller]['ros__parameters']['joints']


def test_node_commands_each_controller_its_own_joints_over_dds(tmp_path):
    harness = Harness()
    Feeder(harness)
    arm = JointTrajectoryControllerModel(['j1'])
    arm_msgs, gripper_msgs = [], []
    harness.probe.create_subscription(
        JointTrajectory, '/arm_controller/joint_trajectory',
        lambda m: (arm_msgs.append(m), arm.receive(m, time.monotonic())), 50)
    harness.probe.create_subscription(Float64MultiArray, '/gripper_controller/commands',
                                      lambda m: gripper_msgs.append(list(m.data)), 50)
    node = PolicyNode(context=harness.context, parameter_overrides=[
        Parameter('policy_yaml', value=str(tiny_policy(tmp_path))),
        Parameter('state_joint_names', value=['j1', 'j2']),
        Parameter('action_joint_names', value=['j1', 'j2']),
        Parameter('cameras', value=['head']), Parameter('min_num_actions_executed', value=5),
        Parameter('safety.max_velocity', value=[4.0]),
        Parameter('outputs', value=['arm', 'gripper']),
        Parameter('output.arm.type', value='joint_trajectory'),
        Parameter('output.arm.topic', value='/arm_controller/joint_trajectory'),
        Parameter('output.arm.joints', value=['j1']),
        Parameter('output.gripper.type', value='forward_command'),
        Parameter('output.gripper.topic', value='/gripper_controller/commands'),
        Parameter('output.gripper.joints', value=['j2'])])
    harness.add_node(node)
    try:
        node.trigger_configure()
        node.trigger_activate()
        harness.wait_for(lambda: len(arm_msgs) >= 3 and len(gripper_msgs) >= 10, 20,
                         'trajectories and gripper commands')
        node.trigger_deactivate()
        time.sleep(0.3)
    finally:
        harness.close()
    # nothing went to the single-output topics
    assert not harness.snapshot('cmd') and not harness.snapshot('traj')
    assert arm.rejected == [] and arm.accepted == len(arm_msgs)
    for msg in arm_msgs:
        assert msg.joint_names == ['j1']
        assert all(len(p.positions) == 1 and len(p.velocities) == 1 for p in msg.points)
    assert all(len(c) == 1 for c in gripper_msgs)
