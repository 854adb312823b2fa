"""The simulated worlds by name: what the recorder, the evaluation, the ROS robot and the
benchmark step.

    physics     MuJoCo arm with servo drives, two moving targets (`physics_world`)
    kinematic   slew-limited position servos, one target that jumps once (`sim_world`)

Both have the same joints, joint limits and cameras, so `config/sim.yaml` serves both;
a policy is trained for one of them (`policies/sim_physics` for physics,
`policies/sim_flow` and `policies/sim_flow_prefix` for kinematic).
"""
from typing import Callable

import numpy as np

from env_actor.tools import physics_world, sim_world

WORLDS = ('physics', 'kinematic')
DEFAULT_WORLD = 'physics'


def make_world(name: str, seed: int = 0, episode_duration: float = 8.0):
    """A world of the named kind (call `reset(seed)` before stepping it).

    Args:
        name: one of WORLDS.
        seed: seed of its random generator.
        episode_duration: seconds before an unfinished episode is done.

    Returns:
        A PhysicsWorld or a SimWorld.

    Raises:
        ValueError: unknown name (the message lists WORLDS).
    """
    if name == 'physics':
        return physics_world.PhysicsWorld(seed=seed, episode_duration=episode_duration)
    if name == 'kinematic':
        return sim_world.SimWorld(seed=seed, episode_duration=episode_duration)
    raise ValueError(f'unknown simulated world {name!r}; available: {", ".join(WORLDS)}')


def expert_for(name: str) -> Callable[..., np.ndarray]:
    """The scripted expert of the named world: `expert(world) -> (4,) action`.

    Raises:
        ValueError: unknown name.
    """
    if name not in WORLDS:
        raise ValueError(f'unknown simulated world {name!r}; available: {", ".join(WORLDS)}')
    return physics_world.expert_action if name == 'physics' else sim_world.expert_action


def add_world_option(parser) -> None:
    """The `--world` option every simulated-robot tool takes (default DEFAULT_WORLD).

    Args:
        parser: an argparse.ArgumentParser.
    """
    parser.add_argument('--world', choices=WORLDS, default=DEFAULT_WORLD,
                        help='simulated world: physics (MuJoCo arm, two moving targets) or '
                             'kinematic (slew-limited arm, one target that jumps)')
