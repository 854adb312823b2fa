"""Robots by name: `--robot igris_b` / `robot:=igris_b` selects the installed
`config/igris_b.yaml`, as the seed's `run_inference.py --robot igris_b -P policy.yaml` did.
"""
from pathlib import Path

from env_actor.tools.share import share_path


def available_robots() -> list[str]:
    """The robot names: the params files in the installed (or source) config folder."""
    return sorted(p.stem for p in share_path('config').glob('*.yaml'))


def robot_params_file(name: str) -> Path:
    """The params file of robot `name`.

    Raises:
        ValueError: no such robot (lists the available ones).
    """
    robots = available_robots()
    if name not in robots:
        raise ValueError(f'unknown robot {name!r}; available: {robots} (the params files '
                         f'in {share_path("config")})')
    return share_path('config', f'{name}.yaml')
