"""The simulated robot: kinematics, task rules, rendering, expert, recorder and training,
and the README demo end to end over DDS with the shipped policy."""
import json
import math
from pathlib import Path
import re
import subprocess
import sys

import numpy as np
import pytest

from env_actor.policy.utils.loader import build_policy_bundle
from env_actor.tools.bag_io import deserialize, open_bag, read_messages, topic_types
from env_actor.tools.sim_eval import run_episode
from env_actor.tools.sim_record import record_episode
from env_actor.tools.sim_world import (CAMERAS, expert_action, forward_kinematics,
                                       SimWorld, UPPER)
from env_actor.tools.train import train
from ros_harness import next_domain

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / 'policies' / 'sim_flow' / 'policy.yaml'              # kinematic world
SHIPPED_PHYSICS = ROOT / 'policies' / 'sim_physics' / 'policy.yaml'    # physics world
PHYSICS_SEEDS = (301, 302, 303)      # held-out seeds sim_physics solves at d = 2, 3 and 4


def test_forward_kinematics():
    points = forward_kinematics(np.zeros(4))
    np.testing.assert_allclose(points[-1], [0.8, 0.0], atol=1e-12)
    points = forward_kinematics(np.array([math.pi / 2, 0, 0, 0]))
    np.testing.assert_allclose(points[-1], [0.0, 0.8], atol=1e-12)


def test_servo_speed_and_limits():
    world = SimWorld(seed=0)
    world.reset(0)
    start = world.q.copy()
    world.set_command(UPPER + 5.0)
    np.testing.assert_array_equal(world.command, UPPER)
    world.step(0.1)
    assert np.all(world.q - start <= np.array([2.0, 2.0, 2.5, 4.0]) * 0.1 + 1e-9)
    world.step(10.0)
    np.testing.assert_allclose(world.q, UPPER)
    with pytest.raises(ValueError, match='4 finite values'):
        world.set_command(np.array([0.0, np.nan, 0.0, 0.0]))


def test_target_jumps_and_success_needs_closed_gripper_near_it():
    world = SimWorld(seed=3)
    world.reset(3)
    first = world.target.copy()
    world.step(world.jump_time + 0.01)
    assert world.jumped and np.linalg.norm(world.target - first) >= 0.25
    while not world.done:                          # an open gripper never succeeds
        action = expert_action(world)
        action[3] = 0.0
        world.set_command(action)
        world.step(0.05)
    assert not world.success
    world.reset(3)
    while not world.done:
        world.set_command(expert_action(world))
        world.step(0.05)
    assert world.success and world.jump_time < world.success_time < 8.0


def test_expert_succeeds_on_many_seeds():
    outcomes = []
    for seed in range(10):
        world = SimWorld(seed=seed)
        world.reset(seed)
        while not world.done:
            world.set_command(expert_action(world))
            world.step(0.05)
        outcomes.append(world.success)
    assert all(outcomes)


def test_rendering_shows_the_target_where_it_is():
    world = SimWorld(seed=1)
    world.reset(1)
    for camera, affine in CAMERAS.items():
        image = world.render(camera)
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        x, y = affine[:, :2] @ world.target + affine[:, 2]
        r, g, b = image[int(round(y)), int(round(x))]
        assert r > 200 and g < 80 and b < 80, camera          # red target
        np.testing.assert_array_equal(image, world.render(camera))


def _recorded_actions(bag: Path) -> dict:
    reader = open_bag(bag)
    try:
        actions = {'/forward_position_controller/commands': [], '/expert/action': []}
        for topic, _, raw in read_messages(reader, list(actions)):
            actions[topic].append(deserialize(raw, 'std_msgs/msg/Float64MultiArray').data)
    finally:
        reader.close()
    return {topic: np.asarray(rows) for topic, rows in actions.items()}


def test_recorder_perturbs_executed_commands_and_labels_the_expert_correction(tmp_path):
    assert record_episode(tmp_path / 'clean', seed=4, noise=0.0)['success']
    clean = _recorded_actions(tmp_path / 'clean')
    np.testing.assert_array_equal(clean['/forward_position_controller/commands'],
                                  clean['/expert/action'])
    record_episode(tmp_path / 'noisy', seed=4, noise=0.2, duration=2.0)
    noisy = _recorded_actions(tmp_path / 'noisy')
    executed, expert = noisy['/forward_position_controller/commands'], noisy['/expert/action']
    assert executed.shape == expert.shape == (41, 4)
    gap = np.abs(executed - expert)
    assert gap[:, :3].max() > 0.01                     # the arm is perturbed ...
    np.testing.assert_array_equal(gap[:, 3], 0.0)      # ... the gripper is not
    n = min(len(expert), len(clean['/expert/action']))      # a clean episode may end first
    assert not np.allclose(expert[:n], clean['/expert/action'][:n])   # labels react to it
    with pytest.raises(ValueError, match='noise must be >= 0'):
        record_episode(tmp_path / 'bad', seed=0, noise=-0.1)


def test_record_train_and_evaluate_a_bundle(tmp_path):
    for i, seed in enumerate((1, 2)):          # the physics world, seeds the expert solves
        outcome = record_episode(tmp_path / 'demos' / f'episode_{i}', seed=seed)
        assert outcome['success']
    reader = open_bag(tmp_path / 'demos' / 'episode_0')
    try:
        types = topic_types(reader)
        _, _, raw = next(read_messages(reader, ['/joint_states']))
    finally:
        reader.close()
    state = deserialize(raw, 'sensor_msgs/msg/JointState')      # as a joint_state_broadcaster
    assert len(state.position) == len(state.velocity) == len(state.effort) == 4
    assert types['/joint_states'] == 'sensor_msgs/msg/JointState'
    assert types['/sim/head/image_raw/compressed'] == 'sensor_msgs/msg/CompressedImage'
    assert types['/forward_position_controller/commands'] == 'std_msgs/msg/Float64MultiArray'
    assert types['/expert/action'] == 'std_msgs/msg/Float64MultiArray'
    summary = train(tmp_path / 'demos', tmp_path / 'bundle', epochs=1, log=lambda *_: None)
    assert summary['episodes'] == 2 and summary['samples'] > 150
    assert np.isfinite(summary['final_loss'])
    assert json.loads((tmp_path / 'bundle' / 'training.json').read_text())['epochs'] == 1
    bundle = build_policy_bundle(tmp_path / 'bundle' / 'policy.yaml')
    assert bundle.config['policy']['action_chunk_size'] == 24
    # training moved every component's parameters away from their initialisation (the
    # same seed and build order as `train` rebuilds the initial weights exactly)
    import torch
    from env_actor.policy.utils.loader import build_component
    torch.manual_seed(0)
    initial = {n: build_component(tmp_path / 'bundle' / 'components' / f'{n}.yaml', n)
               for n in bundle.components}
    for name, trained in bundle.components.items():
        before = dict(initial[name].named_parameters())
        moved = [k for k, v in trained.named_parameters()
                 if not torch.equal(v.detach().cpu(), before[k].detach())]
        assert len(moved) == len(before), f'{name}: parameters not trained: ' \
            f'{sorted(set(before) - set(moved))[:5]}'
    result = run_episode(bundle, 'rtc', 1, seed=5, duration=1.0)
    assert result['ticks'] == 20 and result['inferences'] >= 2
    assert set(result) >= {'success', 'seam_step_mean', 'inside_step_mean', 'jerk_mean'}
    assert 0.0 < result['arm_tracking_error_max'] < 1.0         # the servos' lag, measured
    # training-time RTC from the same demonstrations: a bundle that uses the prefix method
    summary = train(tmp_path / 'demos', tmp_path / 'prefix', epochs=1, rtc_prefix=True,
                    max_delay=4, prefix_noise=0.3, log=lambda *_: None)
    assert summary['rtc_prefix'] and summary['prefix_noise'] == 0.3
    assert np.isfinite(summary['final_loss'])
    prefix = build_policy_bundle(tmp_path / 'prefix' / 'policy.yaml')
    assert prefix.config['policy']['guided_method'] == 'prefix'
    assert prefix.policy.guided_method == 'prefix'
    result = run_episode(prefix, 'rtc', 1, seed=5, duration=1.0)
    assert result['ticks'] == 20 and result['inferences'] >= 2
    with pytest.raises(ValueError, match='--rtc-prefix needs --policy flow_matching'):
        train(tmp_path / 'demos', tmp_path / 'x', policy='act', rtc_prefix=True)


def test_shipped_policies_succeed_in_simulation_without_dds():
    bundle = build_policy_bundle(SHIPPED)
    results = [run_episode(bundle, 'rtc', 1, seed, world_name='kinematic')
               for seed in (30_000, 30_001, 30_002)]
    assert sum(r['success'] for r in results) >= 2, results
    bundle = build_policy_bundle(SHIPPED_PHYSICS)
    results = [run_episode(bundle, 'rtc', 2, seed, world_name='physics')
               for seed in PHYSICS_SEEDS]
    assert sum(r['success'] for r in results) >= 2, results


def test_demo_over_dds_reaches_the_target_in_most_episodes(tmp_path):
    """The README demo end to end: the physics sim robot + policy node over loopback DDS,
    JointTrajectory chunks executed like the stock joint_trajectory_controller.

    With config/sim.yaml's s = 6, the shipped policy on the simulated clock solves seeds
    301-307 but for 306 at d = 1 and 2 (but for 303 and 306 at d = 3, 303 at d = 4); over
    DDS the timing and the sampling noise are live, so an episode can still be lost: 26
    of 28 episodes in 4 runs of this test's command on an idle machine (docs/sim.md). At
    about 0.9 per episode, 7 episodes with 4 needed fail by chance in about 0.3 % of runs.
    """
    import os
    env = dict(os.environ, ROS_DOMAIN_ID=str(next_domain()))
    result = subprocess.run([sys.executable, '-m', 'env_actor.tools.demo', '--episodes', '7',
                             '--seed', '301', '--out', str(tmp_path), '--timeout', '170'],
                            capture_output=True, text=True, timeout=220, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '(rtc, trajectory)' in result.stdout and 'physics world' in result.stdout
    # the robot's trajectory controller (the JTC model) accepted every chunk; its log
    # reaches this stderr (the sim's episode lines are there)
    assert '[env_actor_sim]: episode 1/7' in result.stderr, result.stderr[-2000:]
    assert 'rejected trajectory' not in result.stderr, result.stderr[-2000:]
    match = re.search(r'summary: (\d+)/(\d+) episodes succeeded', result.stdout)
    assert match and int(match.group(2)) == 7, result.stdout
    assert int(match.group(1)) >= 4, result.stdout
    assert 'inference p50' in result.stdout
    assert (tmp_path / 'demo_strip.png').stat().st_size > 1000
