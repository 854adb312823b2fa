"""Test-wide setup: loopback-only DDS with a per-run ROS_DOMAIN_ID, before any rclpy import."""
import os
import sys

from env_actor.tools.ros_env import isolate_ros_env

# A per-run domain: an inherited one from `make test`, else derived from this pid.
isolate_ros_env()
os.environ.setdefault('PYTHONUNBUFFERED', '1')
assert 'rclpy' not in sys.modules or os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
