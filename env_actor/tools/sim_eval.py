"""Closed-loop evaluation in the simulated world, without DDS, on a simulated clock.

The world, the cameras (30 Hz, converted like the node does), the executor (any
algorithm) and the policy run in one process; inference results are released after a
fixed number of control ticks (the policy's latency plus any injected extra delay), so
runs are deterministic for a seed. Used by training (success rate of a new bundle) and
bench/closed_loop.py.
"""
from dataclasses import dataclass, replace
import math
from typing import Optional

import numpy as np
import torch

from env_actor.policy.utils.loader import PolicyBundle
from env_actor.policy.utils.spec import PolicySpec
from env_actor.runtime.images import image_to_chw
from env_actor.ros.params import config_from_params_file
from env_actor.runtime.factory import build_executor, RuntimeSettings
from env_actor.runtime.observation import PROPRIO
from env_actor.tools.metrics import seam_metrics
from env_actor.tools.share import share_path
from env_actor.tools.worlds import DEFAULT_WORLD, make_world

SIM_PARAMS = share_path('config', 'sim.yaml')


@dataclass
class RawImage:
    """The fields of sensor_msgs/Image that the converter reads."""

    data: bytes
    height: int
    width: int
    encoding: str = 'rgb8'
    is_bigendian: int = 0

    @property
    def step(self) -> int:
        return 3 * self.width


def sim_settings(algorithm: str, delay_steps: int, control_rate: float = 20.0,
                 execution_horizon: Optional[int] = None) -> RuntimeSettings:
    """The node's settings for the simulated robot (config/sim.yaml: limits, max ages,
    the execution horizon s unless `execution_horizon` is given), with the algorithm,
    delay and rate of this evaluation."""
    overrides = {'policy_yaml': '-', 'control_frequency': float(control_rate),
                 'initial_delay_steps': int(delay_steps)}
    if execution_horizon is not None:
        overrides['min_num_actions_executed'] = int(execution_horizon)
    cfg = config_from_params_file(SIM_PARAMS, overrides)
    return cfg.runtime_settings(algorithm)


def with_policy_settings(bundle: PolicyBundle, **settings) -> PolicyBundle:
    """The same built policy and weights with some attributes set otherwise, e.g.
    `schedule='zeros'` (hard mask), `beta=100.0`, `noise_seed=0`; `bundle` is unchanged.

    Raises:
        AttributeError: a setting the policy does not have.
    """
    policy = bundle.policy.__class__.__new__(bundle.policy.__class__)
    policy.__dict__.update(bundle.policy.__dict__)
    for name, value in settings.items():
        if not hasattr(policy, name):
            raise AttributeError(f'{type(policy).__name__} has no setting {name!r}')
        setattr(policy, name, value)
    return replace(bundle, policy=policy)


def run_episode(bundle: PolicyBundle, algorithm: str, delay_steps: int, seed: int,
                duration: float = 8.0, control_rate: float = 20.0,
                execution_horizon: Optional[int] = None, frames: Optional[list] = None,
                world_name: str = DEFAULT_WORLD, switches: Optional[list] = None) -> dict:
    """One seeded episode; returns success, time to success, and smoothness metrics.

    The executor's action of each tick goes to the world as a forward command controller
    passes it on: the set-point of the joints' position servos until the next tick.

    Args:
        frames: if a list is given, the head camera image of every tick is appended.
        switches: if a list is given, every chunk switch appends (arm switch jump, arm servo
            lag): the new action minus the old chunk's plan for that tick, and the servos'
            set-point minus position when the tick began, both (3,) rad.
        world_name: the simulated world (`worlds.WORLDS`) the policy was trained for.
        execution_horizon: s; None: config/sim.yaml's, as the demo's policy node runs.

    Returns:
        success, time (to success, else the duration), ticks, inference counts, the seam
        metrics of `metrics.seam_metrics` (all joints, and `arm_*` for the arm joints),
        the arm's switch jumps and, on the physics world, `arm_tracking_error_max`: the
        largest |set-point - position| of an arm joint's servo over the episode.
    """
    torch.manual_seed(seed)
    spec = PolicySpec.from_config(bundle.config['policy'], bundle.path)
    executor = build_executor(bundle, sim_settings(algorithm, delay_steps, control_rate,
                                                   execution_horizon), delay_steps)
    world = make_world(world_name, seed, duration)
    world.reset(seed)
    executor.reset_episode(reference=world.q.copy())
    dt = 1.0 / control_rate
    camera_period = 1.0 / 30.0
    next_camera = 0.0
    actions, new_chunk, jumps = [], [], []
    planned = np.zeros((0, 4))
    while not world.done:
        now = world.time
        executor.cache.update(PROPRIO, world.q.astype(np.float32), now)
        if now + 1e-9 >= next_camera:
            for camera in spec.cameras:
                image = world.render(camera)
                msg = RawImage(image.tobytes(), image.shape[0], image.shape[1])
                executor.cache.update(camera, image_to_chw(msg, spec.image_height,
                                                           spec.image_width), now)
                if frames is not None and camera == 'head':
                    frames.append(image)
            next_camera += camera_period * math.ceil((now + 1e-9 - next_camera) /
                                                     camera_period + 1e-9)
        lag = None if switches is None else world.command[:3] - world.q[:3]
        result = executor.on_tick(now)
        if result.action is not None:
            world.set_command(result.action)
            if result.new_chunk and len(planned):
                # switch jump: new action vs what the old chunk planned for this tick
                jump = result.action[:3] - planned[0, :3]
                jumps.append(float(np.max(np.abs(jump))))
                if switches is not None:
                    switches.append((jump, lag))
        planned = executor.planned_actions()
        actions.append(result.action if result.action is not None else np.full(4, np.nan))
        new_chunk.append(bool(result.new_chunk and result.action is not None))
        world.step(dt)
    executor.worker.close()
    actions, new_chunk = np.asarray(actions), np.asarray(new_chunk)
    smooth = seam_metrics(actions, new_chunk)
    arm = {f'arm_{k}': v for k, v in seam_metrics(actions[:, :3], new_chunk).items()}
    jump_stats = {'arm_switch_jump_mean': float(np.mean(jumps)) if jumps else float('nan'),
                  'arm_switch_jump_max': float(np.max(jumps)) if jumps else float('nan')}
    tracking = getattr(world, 'tracking_error_max', None)
    jump_stats['arm_tracking_error_max'] = (float(np.max(tracking[:3])) if tracking is not None
                                            else float('nan'))
    return {'seed': seed, 'success': bool(world.success),
            'time': world.success_time if world.success else duration,
            'ticks': len(actions), 'inferences': executor.stats.inferences,
            'blocked_ticks': executor.stats.blocked_ticks,
            'starved_ticks': executor.stats.starved_ticks, **smooth, **arm, **jump_stats}


def success_rate(bundle: PolicyBundle, episodes: int = 20, algorithm: str = 'rtc',
                 delay_steps: int = 1, first_seed: int = 10_000,
                 world_name: str = DEFAULT_WORLD) -> dict:
    """Success over seeded episodes (seeds disjoint from the default training seeds)."""
    results = [run_episode(bundle, algorithm, delay_steps, first_seed + i,
                           world_name=world_name) for i in range(episodes)]
    return {'episodes': episodes, 'algorithm': algorithm, 'delay_steps': delay_steps,
            'success_rate': float(np.mean([r['success'] for r in results])),
            'mean_time_s': float(np.mean([r['time'] for r in results]))}
