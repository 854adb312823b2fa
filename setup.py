"""ament_python package for env_actor (colcon build on ROS 2, pip install here)."""
from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE_NAME = 'env_actor'


def tree_data_files(top: str) -> list[tuple[str, list[str]]]:
    """Install every file below `top` under share/env_actor/<top>, keeping folders."""
    entries: dict[str, list[str]] = {}
    for path in sorted(glob(os.path.join(top, '**', '*'), recursive=True)):
        if os.path.isfile(path) and '__pycache__' not in path:
            dest = os.path.join('share', PACKAGE_NAME, os.path.dirname(path))
            entries.setdefault(dest, []).append(path)
    return sorted(entries.items())


setup(
    name=PACKAGE_NAME,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    package_data={'env_actor': ['policy/policies/*/*.yaml',
                                'policy/policies/*/*.json',
                                'policy/policies/*/*.csv',
                                'policy/policies/*/components/*.yaml']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE_NAME]),
        ('share/' + PACKAGE_NAME, ['package.xml']),
        *tree_data_files('launch'),
        *tree_data_files('config'),
        *tree_data_files('policies'),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='env_actor maintainers',
    maintainer_email='env-actor@example.com',
    description='Learned action-chunking policies (Sequential / RTC) on ROS 2 robots',
    license='Apache-2.0',
    python_requires='>=3.10',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'env-actor-smoke = env_actor.tools.smoke:main',
            'env-actor-node = env_actor.ros.policy_node:main',
            'env-actor-launch = env_actor.tools.launch_node:main',
            'env-actor-sensors = env_actor.tools.sensor_publisher:main',
            'env-actor-replay = env_actor.tools.bag_player:main',
            'env-actor-eval = env_actor.tools.offline_eval:main',
            'env-actor-make-bag = env_actor.tools.synthetic_bag:main',
            'env-actor-sim = env_actor.tools.sim_robot_node:main',
            'env-actor-sim-record = env_actor.tools.sim_record:main',
            'env-actor-train = env_actor.tools.train:main',
            'env-actor-demo = env_actor.tools.demo:main',
            # the same, named as ROS packages name executables (`ros2 run env_actor ...`)
            'policy_node = env_actor.ros.policy_node:main',
            'launch_node = env_actor.tools.launch_node:main',
            'smoke = env_actor.tools.smoke:main',
            'sensor_publisher = env_actor.tools.sensor_publisher:main',
            'replay = env_actor.tools.bag_player:main',
            'offline_eval = env_actor.tools.offline_eval:main',
            'make_bag = env_actor.tools.synthetic_bag:main',
            'sim_robot = env_actor.tools.sim_robot_node:main',
            'sim_record = env_actor.tools.sim_record:main',
            'train = env_actor.tools.train:main',
            'demo = env_actor.tools.demo:main',
        ],
    },
)
