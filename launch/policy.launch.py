"""Launch the env_actor policy node.

    ros2 launch env_actor policy.launch.py policy_yaml:=/path/to/policy.yaml \
        [robot:=igris_b | params_file:=/path/to/params.yaml] [namespace:=robot] \
        [use_sim_time:=false] [autostart:=true]

`robot:=NAME` selects this package's config/NAME.yaml (default igris_b; an unknown name
fails with the list of available robots); `params_file` instead names any params file.
The launch arguments are passed after the file, so they win. Without a lifecycle
manager, keep autostart:=true; with one, set it false and let the manager
configure/activate.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.parameter_descriptions import ParameterValue

from env_actor.tools.robots import robot_params_file


def _node(context):
    params_file = LaunchConfiguration('params_file').perform(context)
    if not params_file:   # an unknown robot raises, listing the available ones
        params_file = str(robot_params_file(LaunchConfiguration('robot').perform(context)))
    return [LifecycleNode(
        package='env_actor',
        executable='policy_node',
        name=LaunchConfiguration('node_name'),
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        emulate_tty=True,
        parameters=[
            params_file,
            {'policy_yaml': LaunchConfiguration('policy_yaml'),
             'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'), value_type=bool),
             'autostart': ParameterValue(LaunchConfiguration('autostart'), value_type=bool)},
        ],
    )]


def generate_launch_description() -> LaunchDescription:
    args = [
        DeclareLaunchArgument('policy_yaml', description='path to the policy YAML'),
        DeclareLaunchArgument('robot', default_value='igris_b',
                              description="robot name: this package's config/<robot>.yaml"),
        DeclareLaunchArgument('params_file', default_value='',
                              description='ROS parameters file for the node (instead of '
                                          'robot)'),
        DeclareLaunchArgument('namespace', default_value=''),
        DeclareLaunchArgument('node_name', default_value='env_actor'),
        DeclareLaunchArgument('use_sim_time', default_value='false'),
        DeclareLaunchArgument('autostart', default_value='true'),
    ]
    return LaunchDescription([*args, OpaqueFunction(function=_node)])
