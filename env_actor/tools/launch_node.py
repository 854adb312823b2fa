"""Start the policy node as `ros2 launch env_actor policy.launch.py` would, without `launch`.

    env-actor-launch -P POLICY_YAML [--robot NAME | --params-file F] [--namespace NS]
                     [--node-name N] [--use-sim-time] [--no-autostart]
                     [--ros-args -p device:=cpu ...]

Same parameters in the same order as launch/policy.launch.py: the params file (the
installed `config/<robot>.yaml` of `--robot`, default igris_b, or `--params-file`) first,
then policy_yaml / use_sim_time / autostart, then anything after `--ros-args` (so
`-p name:=value` there overrides the file).
"""
import argparse
from pathlib import Path
from typing import Optional, Sequence

from env_actor.tools.cli import tool_parser


DEFAULT_ROBOT = 'igris_b'


def default_params_file() -> Path:
    """config/igris_b.yaml from the installed share folder, else from the source tree."""
    from env_actor.tools.robots import robot_params_file
    return robot_params_file(DEFAULT_ROBOT)


def ros_arguments(opts: argparse.Namespace) -> list[str]:
    """The `--ros-args ...` list equivalent to the launch file's node action."""
    args = ['--ros-args', '-r', f'__node:={opts.node_name}']
    if opts.namespace:
        args += ['-r', f'__ns:=/{opts.namespace.strip("/")}']
    args += ['--params-file', str(opts.params_file),
             '-p', f'policy_yaml:={opts.policy_yaml}',
             '-p', f'use_sim_time:={str(opts.use_sim_time).lower()}',
             '-p', f'autostart:={str(opts.autostart).lower()}']
    return args


def parse(args: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__.splitlines()[0])
    parser.add_argument('-P', '--policy-yaml', required=True, type=Path,
                        help='policy YAML (required)')
    where = parser.add_mutually_exclusive_group()
    where.add_argument('--robot', default=None,
                       help=f'robot name: its installed config/<robot>.yaml (default: '
                            f'{DEFAULT_ROBOT})')
    where.add_argument('--params-file', type=Path, default=None,
                       help='node parameters file instead of a robot name')
    parser.add_argument('--namespace', default='', help='node namespace (default: none)')
    parser.add_argument('--node-name', default='env_actor', help='node name')
    parser.add_argument('--use-sim-time', action='store_true',
                        help='use /clock as the node clock (for bag replay and simulation)')
    parser.add_argument('--no-autostart', dest='autostart', action='store_false',
                        help='stay unconfigured; drive the lifecycle transitions yourself')
    opts = parser.parse_args(args)
    if opts.params_file is None:
        from env_actor.tools.robots import robot_params_file
        try:
            opts.params_file = robot_params_file(opts.robot or DEFAULT_ROBOT)
        except ValueError as exc:
            parser.error(f'--robot: {exc}')
    for label, path in (('--policy-yaml', opts.policy_yaml),
                        ('--params-file', opts.params_file)):
        if not Path(path).is_file():
            parser.error(f'{label}: file not found: {path}')
    opts.policy_yaml = opts.policy_yaml.resolve()
    return opts


def split_ros_args(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the launcher's own options, the ROS arguments after `--ros-args`)."""
    args = list(args)
    if '--ros-args' not in args:
        return args, []
    index = args.index('--ros-args')
    return args[:index], args[index + 1:]


def main(args: Optional[Sequence[str]] = None) -> int:
    import sys
    from env_actor.ros.policy_node import main as node_main
    own, extra = split_ros_args(sys.argv[1:] if args is None else args)
    return node_main(['env-actor-node', *ros_arguments(parse(own)), *extra])


if __name__ == '__main__':
    raise SystemExit(main())
