"""Launch the env_actor policy node.

    ros2 launch env_actor policy.launch.py policy_yaml:=/path/to/policy.yaml \
        [params_file:=/path/to/params.yaml] [namespace:=robot] [use_sim_time:=false] \
        [autostart:=true]

The parameters file (default: config/igris_b.yaml of this package) is keyed `/**`, and
the launch arguments are passed after it, so they win. Without a lifecycle manager, keep
autostart:=true; with one, set it false and let the manager configure/activate.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory('env_actor')
    default_params = os.path.join(share, 'config', 'igris_b.yaml')
    args = [
        DeclareLaunchArgument('policy_yaml', description='path to the policy YAML'),
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='ROS parameters file for the node'),
        DeclareLaunchArgument('namespace', default_value=''),
        DeclareLaunchArgument('node_name', default_value='env_actor'),
        DeclareLaunchArgument('use_sim_time', default_value='false'),
        DeclareLaunchArgument('autostart', default_value='true'),
    ]
    node = LifecycleNode(
        package='env_actor',
        executable='env-actor-node',
        name=LaunchConfiguration('node_name'),
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        emulate_tty=True,
        parameters=[
            LaunchConfiguration('params_file'),
            {'policy_yaml': LaunchConfiguration('policy_yaml'),
             'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'), value_type=bool),
             'autostart': ParameterValue(LaunchConfiguration('autostart'), value_type=bool)},
        ],
    )
    return LaunchDescription([*args, node])
