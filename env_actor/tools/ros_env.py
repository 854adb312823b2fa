"""Keep DDS on loopback with a private domain for processes this project starts itself.

Tests, the demo and the benchmarks call `isolate_ros_env()` before rclpy starts. The
robot-facing console scripts do not: on a robot the deployment chooses the domain.
"""
import os
from typing import Optional


def isolate_ros_env(domain_id: Optional[int] = None) -> int:
    """Force loopback-only discovery and pick a ROS_DOMAIN_ID for this run.

    Args:
        domain_id: explicit domain; default keeps an inherited ROS_DOMAIN_ID or derives
            one in [10, 99] from the process id.
    Returns:
        The domain id in use (also exported to child processes through os.environ).
    """
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ.pop('ROS_STATIC_PEERS', None)
    if domain_id is None:
        inherited = os.environ.get('ROS_DOMAIN_ID', '')
        domain_id = int(inherited) if inherited.isdigit() else 10 + os.getpid() % 90
    os.environ['ROS_DOMAIN_ID'] = str(domain_id)
    return domain_id
