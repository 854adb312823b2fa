"""Output groups: which controller receives which action joints, in its own order.

A robot's joints are usually split over several ros2_control controllers (arms, hands,
head, ...). Each output group is one controller:

    outputs: [arms, hands]
    output.arms.type: joint_trajectory          # trajectory_msgs/JointTrajectory per chunk
    output.arms.topic: /arm_controller/joint_trajectory
    output.arms.joints: [left_arm_joint_1, ...] # the controller's `joints`, its order
    output.hands.type: forward_command          # std_msgs/Float64MultiArray per tick
    output.hands.topic: /hand_controller/commands
    output.hands.joints: [left_hand_joint_1, ...]

Without `outputs`, the single-output parameters of earlier versions (publish_trajectory,
trajectory_topic, publish_commands, commands_topic) describe one trajectory group and
one command group over all action joints.
"""
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

OUTPUT_TYPES = {'joint_trajectory': 'trajectory_msgs/msg/JointTrajectory',
                'forward_command': 'std_msgs/msg/Float64MultiArray'}
OUTPUT_KEYS = {'type': 'joint_trajectory (JointTrajectory per chunk) or forward_command '
                       '(Float64MultiArray per tick).',
               'topic': "The controller's command topic.",
               'joints': "The controller's joints, in its order (a subset of "
                         'action_joint_names).'}
LEGACY_KEYS = ('publish_trajectory', 'trajectory_topic', 'publish_commands',
               'commands_topic')


@dataclass(frozen=True)
class OutputGroup:
    """One controller's share of the action vector."""

    name: str
    type: str                 # a key of OUTPUT_TYPES
    topic: str
    joints: tuple
    indices: tuple            # position of each joint in the action vector

    def select(self, actions: np.ndarray) -> np.ndarray:
        """This group's columns of an action (A,) or plan (N, A), in its joint order."""
        return np.asarray(actions)[..., list(self.indices)]


def legacy_groups(values: dict) -> list:
    """(name, type, topic, joints) of the single-output parameters, all action joints."""
    joints = list(values['action_joint_names'])
    groups = []
    if values['publish_trajectory']:
        groups.append(('trajectory', 'joint_trajectory', values['trajectory_topic'], joints))
    if values['publish_commands']:
        groups.append(('commands', 'forward_command', values['commands_topic'], joints))
    return groups


def build_output_groups(specs: Sequence[tuple], action_joints: Sequence[str],
                        unique_joints: bool = True) -> tuple[list, list]:
    """Validate group specs against the action joints.

    Args:
        specs: (name, type, topic, joints) per group.
        action_joints: action_joint_names, policy order.
        unique_joints: a joint may be in one group only (the single-output form sends
            every joint to both its trajectory and its command topic).

    Returns:
        (groups, warnings): the OutputGroups, and log lines (action joints no group
        commands).

    Raises:
        ValueError: an unknown type, an empty topic or joint list, joints that are not
            action joints (all named), or a joint in two groups.
    """
    position = {name: i for i, name in enumerate(action_joints)}
    owner: dict[str, str] = {}
    groups = []
    for name, kind, topic, joints in specs:
        prefix = f'output.{name}.'
        if kind not in OUTPUT_TYPES:
            raise ValueError(f'parameter {prefix}type {kind!r} unknown; expected one of '
                             f'{sorted(OUTPUT_TYPES)}')
        if not topic:
            raise ValueError(f'parameter {prefix}topic is empty')
        if not joints:
            raise ValueError(f"parameter {prefix}joints is empty: list the controller's "
                             'joints in its order')
        unknown = [j for j in joints if j not in position]
        if unknown:
            raise ValueError(f'parameter {prefix}joints: {unknown} are not in '
                             f'action_joint_names {list(action_joints)}')
        for joint in joints:
            if joint in owner and unique_joints:
                raise ValueError(f'joint {joint!r} is in output groups {owner[joint]!r} and '
                                 f'{name!r}; a joint may be commanded by one group only')
            owner[joint] = name
        groups.append(OutputGroup(name, kind, topic, tuple(joints),
                                  tuple(position[j] for j in joints)))
    warnings = []
    idle = [j for j in action_joints if j not in owner]
    if idle and unique_joints:
        warnings.append(f'action joints in no output group (the policy predicts them, '
                        f'nothing commands them): {idle}')
    return groups, warnings


def read_output_specs(node: Any, values: dict, defaults: dict) -> list:
    """(name, type, topic, joints) of every group from `outputs` and output.<name>.*, or
    from the single-output parameters when `outputs` is empty.

    Args:
        node: an rclpy node or any object with the has/declare/get_parameter methods.
        values: the node's other parameter values (for the single-output form).
        defaults: their defaults (to tell whether the single-output form was used).

    Raises:
        ValueError: `outputs` together with changed single-output parameters, or a
            group without a type.
    """
    names = list(values.get('outputs') or [])
    if not names:
        return legacy_groups(values)
    changed = [k for k in LEGACY_KEYS if values[k] != defaults[k]]
    if changed:
        raise ValueError(f'parameters {changed} describe the single output of earlier '
                         'versions and cannot be combined with `outputs`: describe each '
                         'controller as output.<name>.type / .topic / .joints')
    from rclpy.parameter import Parameter
    from rcl_interfaces.msg import ParameterDescriptor
    specs = []
    for name in names:
        prefix = f'output.{name}.'
        spec = {}
        for key, default in (('type', ''), ('topic', ''), ('joints', Parameter.Type.STRING_ARRAY)):
            if not node.has_parameter(prefix + key):
                node.declare_parameter(prefix + key, default, ParameterDescriptor(
                    name=prefix + key, description=OUTPUT_KEYS[key]))
            try:
                spec[key] = node.get_parameter(prefix + key).value
            except Exception:       # an empty string list is uninitialized in rclpy
                spec[key] = None
        if not spec['type']:
            raise ValueError(f'parameter {prefix}type is missing; expected one of '
                             f'{sorted(OUTPUT_TYPES)}')
        topic = spec['topic'] or (f'{name}_controller/joint_trajectory'
                                  if spec['type'] == 'joint_trajectory'
                                  else f'{name}_controller/commands')
        specs.append((name, spec['type'], topic, list(spec['joints'] or [])))
    return specs
