"""The policy node's ROS parameters: one declaration (`PARAMETERS`), validation, config.

Everything the node needs is a parameter (topics, QoS-relevant choices, shapes it checks
against the policy). Each `Param` says name, type, default, description, range or
choices, and whether it may change while configured; the node declares them with
ParameterDescriptors, and `read_node_config(node)` reads them into a NodeConfig, raising
ValueError naming the parameter at fault. Adding a parameter is one `Param` entry (and the
code that uses it). `python -m env_actor.ros.params` prints the reference table.
"""
from dataclasses import dataclass, field
from typing import Any, Optional

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType)

from env_actor.runtime.executor import ALGORITHMS

_TYPES = {'bool': ParameterType.PARAMETER_BOOL, 'int': ParameterType.PARAMETER_INTEGER,
          'double': ParameterType.PARAMETER_DOUBLE, 'string': ParameterType.PARAMETER_STRING,
          'double[]': ParameterType.PARAMETER_DOUBLE_ARRAY,
          'string[]': ParameterType.PARAMETER_STRING_ARRAY}


@dataclass(frozen=True)
class Param:
    """One node parameter: the single place its name, type, default and rules live.

    `live` parameters may be set while the node is configured (validated, applied at
    once); every other one needs cleanup -> set -> configure, and a `set` while configured
    is refused with that reason.
    """

    name: str
    kind: str                   # a key of _TYPES
    default: Any
    description: str
    choices: tuple = ()
    low: Optional[float] = None
    high: Optional[float] = None
    live: bool = False

    def descriptor(self) -> ParameterDescriptor:
        """The ParameterDescriptor `ros2 param describe` shows."""
        text = self.description
        if self.choices:
            text += f" One of: {', '.join(self.choices)}."
        text += ' Live: may be set while configured.' if self.live else \
            ' Needs a reconfigure (cleanup, set, configure).'
        descriptor = ParameterDescriptor(name=self.name, type=_TYPES[self.kind],
                                         description=text)
        if self.choices:
            descriptor.additional_constraints = 'one of: ' + ', '.join(self.choices)
        if self.low is not None:
            if self.kind == 'int':
                descriptor.integer_range = [IntegerRange(from_value=int(self.low),
                                                         to_value=int(self.high), step=1)]
            else:
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(self.low), to_value=float(self.high), step=0.0)]
        return descriptor



PARAMETERS: tuple = (
    Param('policy_yaml', 'string', '', 'Policy YAML (the bundle to build).'),
    Param('device', 'string', 'auto', 'Torch device: auto = cuda when torch sees a GPU, '
          'else cpu; or cpu, cuda, cuda:N.'),
    Param('algorithm', 'string', 'rtc', 'Chunk execution algorithm.', choices=ALGORITHMS),
    Param('control_frequency', 'double', 20.0, 'Control loop rate, Hz.', low=0.1,
          high=1000.0),
    Param('min_num_actions_executed', 'int', 25, 'RTC execution horizon s: actions of a '
          'chunk executed before the next inference starts.', low=1, high=100000),
    Param('sequential_actions', 'int', 0, 'Sequential: actions per chunk (0 = s).', low=0,
          high=100000),
    Param('delay_window', 'int', 5, 'Delay estimate = max of the last W measured delays.',
          low=1, high=1000),
    Param('initial_delay_steps', 'int', -1, 'Delay estimate before any measurement '
          '(-1 = from the measured warm-up latency).', low=-1, high=100000),
    Param('image_stride', 'int', 1, 'Ticks between two frames of the image history.',
          low=1, high=1000),
    Param('joint_states_topic', 'string', 'joint_states', 'sensor_msgs/JointState input.'),
    Param('state_joint_names', 'string[]', [], 'Joints of the proprio vector, policy order.'),
    Param('state_fields', 'string[]', ['position'], 'JointState fields in the proprio '
          'vector, in order (position, velocity, effort).'),
    Param('action_joint_names', 'string[]', [], 'Commanded joints, policy action order.'),
    Param('cameras', 'string[]', ['head', 'left', 'right'], 'Camera names (must match the '
          "policy's); each has camera.<name>.topic / .transport / .max_age."),
    Param('prompt_topic', 'string', '', 'std_msgs/String prompt input (empty = none).'),
    Param('joint_states_max_age', 'double', 0.1, 'Joint states older than this (s) stop '
          'commanding.', low=0.001, high=3600.0),
    Param('camera_max_age', 'double', 0.5, 'Default camera.<name>.max_age (s).', low=0.001,
          high=3600.0),
    Param('outputs', 'string[]', [], 'Output groups, one per controller; each has '
          'output.<name>.type (joint_trajectory | forward_command) / .topic / .joints '
          "(the controller's joints, its order). [] = the single-output parameters below."),
    Param('publish_trajectory', 'bool', True, 'Publish JointTrajectory chunks.'),
    Param('trajectory_topic', 'string', 'joint_trajectory_controller/joint_trajectory',
          'JointTrajectory output.'),
    Param('trajectory_stamp', 'string', 'zero', 'header.stamp of trajectories: zero = '
          'start on arrival, now = the control tick on the node clock (needs the '
          "controller's clock within a tick of the node's).", choices=('zero', 'now')),
    Param('trajectory_velocities', 'bool', True, 'Trajectory points carry velocities '
          '(finite differences of the plan; zero at the last point) so the controller '
          'interpolates cubic, not linear.'),
    Param('publish_commands', 'bool', True, 'Publish a Float64MultiArray per tick.'),
    Param('commands_topic', 'string', 'forward_position_controller/commands',
          'Float64MultiArray output.'),
    Param('safety.position_lower', 'double[]', [], 'Lower position limits: one value for '
          'all joints or one per action joint; [] = none.', live=True),
    Param('safety.position_upper', 'double[]', [], 'Upper position limits, as above.',
          live=True),
    Param('safety.max_velocity', 'double[]', [], 'Slew limit in action units per second: '
          'one value or one per action joint; [] = none.', live=True),
    Param('safety.max_step', 'double[]', [], 'Deprecated per-tick slew limit; read as '
          'safety.max_velocity = max_step x control_frequency with a warning.'),
    Param('diagnostics_period', 'double', 1.0, '/diagnostics period, s.', low=0.01,
          high=3600.0),
    Param('autostart', 'bool', False, 'Configure and activate at start-up.'),
    Param('inference_mode', 'string', 'process', 'Where the policy runs.',
          choices=('process', 'thread')),
    Param('inference_nice', 'int', 10, 'Niceness added to the inference process.', low=0,
          high=19),
    Param('torch_threads', 'int', 0, 'Torch threads for inference (0 = torch default).',
          low=0, high=1024),
    Param('executor', 'string', 'single', 'rclpy executor that runs the callbacks, read '
          'once at start-up: single = SingleThreadedExecutor, events = EventsExecutor '
          '(rclpy.experimental: timers and events queued in C++).', choices=('single', 'events')),
    Param('camera_executor', 'string', 'events', 'Where camera messages are taken and '
          'converted: events / single = on a camera node with its own thread and that '
          'rclpy executor (EventsExecutor / SingleThreadedExecutor); shared = on the '
          "node's executor, converted on a worker thread.",
          choices=('events', 'single', 'shared')),
    Param('control_thread_priority', 'int', 0, 'SCHED_FIFO priority of the thread that '
          'runs the control timer, set at configure (0 = normal scheduling; igris_b: 40). '
          'Threads and processes it starts run normally. Needs CAP_SYS_NICE or an rtprio '
          'limit; refused: a warning, normal scheduling.', low=0, high=99),
    Param('gil_switch_interval_ms', 'double', 0.5, 'Python thread switch interval, ms '
          '(0 = leave the default 5 ms).', low=0.0, high=100.0),
    Param('inference_timeout', 'double', 0.0, 'A request without an answer for this long '
          'is a hang, s (0 = max(1 s, 5x the warm-up latency)).', low=0.0, high=3600.0),
    Param('inference_max_restarts', 'int', 3, 'Restarts of a dead or hung inference '
          'process allowed per window.', low=0, high=1000),
    Param('inference_restart_window', 'double', 60.0, 'Window of inference_max_restarts, '
          's.', low=0.001, high=86400.0),
)
PARAMETER_BY_NAME = {p.name: p for p in PARAMETERS}
DEFAULTS: dict[str, Any] = {p.name: p.default for p in PARAMETERS}
CAMERA_KEYS = {'topic': 'Image or CompressedImage topic of this camera.',
               'transport': 'raw (sensor_msgs/Image) or compressed (CompressedImage).',
               'max_age': 'Older frames stop commanding, s.',
               'depth_range': '[near, far] in metres: a depth camera (16UC1 mm, 32FC1 m, '
                              'compressedDepth) mapped to 0-255; [] = a colour camera.'}


def parameter_table() -> str:
    """The Markdown reference table of every parameter (docs/node.md embeds it)."""
    rows = ['| parameter | type | default | live | description |', '|---|---|---|---|---|']
    for p in PARAMETERS:
        extra = f" One of: {', '.join(p.choices)}." if p.choices else ''
        if p.low is not None:
            extra += f' Range [{p.low:g}, {p.high:g}].'
        rows.append(f"| `{p.name}` | {p.kind} | `{p.default!r}` | {'yes' if p.live else ''} "
                    f'| {p.description}{extra} |')
    return '\n'.join(rows)


def parameter_help() -> str:
    """Plain-text parameter list for `env-actor-node --help`: name, type, default, text."""
    lines = []
    for p in PARAMETERS:
        extra = f" One of: {', '.join(p.choices)}." if p.choices else ''
        live = ' Live.' if p.live else ''
        lines.append(f'  {p.name} ({p.kind}, default {p.default!r}): '
                     f'{p.description}{extra}{live}')
    return '\n'.join(lines)


@dataclass
class CameraConfig:
    name: str
    topic: str
    transport: str          # raw | compressed
    max_age: float
    depth_range: Optional[list] = None     # [near, far] m: a depth camera

    @property
    def msgtype(self) -> str:
        """The ROS message type of this camera's topic."""
        return ('sensor_msgs/msg/Image' if self.transport == 'raw'
                else 'sensor_msgs/msg/CompressedImage')

    @property
    def convert(self):
        """message, height, width -> (3, height, width) uint8 RGB (runtime.images); its
        errors name this camera and the parameter to set."""
        from env_actor.runtime.images import compressed_to_chw, image_to_chw
        decode = image_to_chw if self.transport == 'raw' else compressed_to_chw
        name, depth_range = self.name, self.depth_range

        def convert(msg, height: int, width: int):
            try:
                return decode(msg, height, width, depth_range)
            except ValueError as exc:
                text = str(exc).replace('camera.<name>.', f'camera.{name}.')
                raise ValueError(f'camera {name!r}: {text}') from None
        return convert


@dataclass
class NodeConfig:
    """Typed view of the node parameters (see DEFAULTS for names and defaults)."""

    values: dict
    cameras: list = field(default_factory=list)
    outputs: list = field(default_factory=list)    # OutputGroup, one per controller
    sources: list = field(default_factory=list)    # params-file sections read (tools)
    warnings: list = field(default_factory=list)    # for the node to log at configure

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def control_period(self) -> float:
        return 1.0 / self.values['control_frequency']

    def runtime_settings(self, algorithm: Optional[str] = None):
        """The RuntimeSettings these parameters describe (`algorithm` overrides)."""
        from env_actor.runtime.factory import RuntimeSettings
        return RuntimeSettings(
            algorithm=algorithm or self.algorithm, control_period=self.control_period,
            min_num_actions_executed=self.min_num_actions_executed,
            sequential_actions=self.sequential_actions or None,
            delay_window=self.delay_window, initial_delay_steps=self.initial_delay_steps,
            image_stride=self.image_stride, proprio_max_age=self.joint_states_max_age,
            camera_max_age={c.name: c.max_age for c in self.cameras},
            position_lower=self.limits('position_lower'),
            position_upper=self.limits('position_upper'),
            max_velocity=self.limits('max_velocity'),
            inference_timeout=float(self.inference_timeout))

    def limits(self, key: str) -> Optional[list]:
        return safety_limit(self.values[f'safety.{key}'])


def safety_limit(values: list):
    """A safety list parameter as SafetyFilter takes it: None ([]), one value for every
    joint, or one per joint."""
    if not values:
        return None
    return values[0] if len(values) == 1 else list(values)


def _coerce_integer_overrides(node) -> None:
    """`20` in a params file for a double parameter means 20.0 (rclpy would refuse it)."""
    overrides = getattr(node, '_parameter_overrides', None)
    if not isinstance(overrides, dict):
        return
    from rclpy.parameter import Parameter as RclParameter
    for p in PARAMETERS:
        value = overrides.get(p.name)
        if value is None:
            continue
        if p.kind == 'double' and value.type_ == RclParameter.Type.INTEGER:
            overrides[p.name] = RclParameter(p.name, value=float(value.value))
        elif p.kind == 'double[]' and value.type_ == RclParameter.Type.INTEGER_ARRAY:
            overrides[p.name] = RclParameter(p.name, value=[float(v) for v in value.value])


def declare_parameters(node) -> None:
    """Declare every parameter of PARAMETERS not declared yet, with its descriptor.

    Raises:
        ValueError: values of the wrong type (names each parameter and the expected type);
            the others are declared.
    """
    _coerce_integer_overrides(node)
    errors = []
    for p in PARAMETERS:
        if node.has_parameter(p.name):
            continue
        value = p.default
        if value == []:        # rclpy would type an empty list as a byte array
            from rclpy.parameter import Parameter as RclParameter
            value = (RclParameter.Type.DOUBLE_ARRAY if p.kind == 'double[]'
                     else RclParameter.Type.STRING_ARRAY)
        try:
            node.declare_parameter(p.name, value, p.descriptor())
        except Exception as exc:   # rclpy's InvalidParameterTypeException and kin
            errors.append(f'parameter {p.name}: expected {p.kind}: {exc}')
    if errors:
        raise ValueError('; '.join(errors))


def parameter_value_or(node, name: str, default: Any) -> Any:
    """A declared parameter's value, `default` while it is declared but not set."""
    try:
        value = node.get_parameter(name).value
    except Exception:       # rclpy's ParameterUninitializedException
        return default
    return default if value is None else value


def parameter_value(node, name: str) -> Any:
    """A declared parameter's value; its default while it is declared but not set (an
    empty list parameter that no params file or override gave a value)."""
    return parameter_value_or(node, name, DEFAULTS[name])


def read_node_config(node) -> NodeConfig:
    """Declare (if needed) and read every parameter of the policy node.

    Raises:
        ValueError: a value of the wrong kind or out of range (names the parameter).
    """
    declare_parameters(node)
    values = {name: parameter_value(node, name) for name in DEFAULTS}
    for name in ('state_joint_names', 'state_fields', 'action_joint_names', 'cameras',
                 'outputs',
                 'safety.position_lower', 'safety.position_upper', 'safety.max_velocity',
                 'safety.max_step'):
        values[name] = list(values[name] or [])
    if not values['policy_yaml']:
        raise ValueError('parameter policy_yaml is empty: set it to a policy YAML path')
    if values['algorithm'] not in ALGORITHMS:
        raise ValueError(f"parameter algorithm {values['algorithm']!r} unknown; expected "
                         f'one of {ALGORITHMS}')
    if not float(values['control_frequency']) > 0:
        raise ValueError(f"parameter control_frequency must be > 0, got "
                         f"{values['control_frequency']}")
    values['control_frequency'] = float(values['control_frequency'])
    for name in ('safety.position_lower', 'safety.position_upper', 'safety.max_velocity',
                 'safety.max_step'):
        values[name] = [float(v) for v in values[name]]
    for name in ('joint_states_max_age', 'camera_max_age', 'diagnostics_period'):
        if not float(values[name]) > 0:
            raise ValueError(f'parameter {name} must be > 0, got {values[name]}')
    warnings = []
    if values['safety.max_step']:
        if values['safety.max_velocity']:
            raise ValueError('parameters safety.max_step and safety.max_velocity are both '
                             'set: keep safety.max_velocity (action units per second) only')
        values['safety.max_velocity'] = [float(v) * values['control_frequency']
                                         for v in values['safety.max_step']]
        warnings.append('parameter safety.max_step (per control tick) is deprecated: it was '
                        f"read as safety.max_velocity: {values['safety.max_velocity']} per "
                        'second at this control_frequency; set safety.max_velocity instead')
    if not float(values['inference_timeout']) >= 0:
        raise ValueError(f"parameter inference_timeout must be >= 0 s (0 = auto), got "
                         f"{values['inference_timeout']}")
    if int(values['inference_max_restarts']) < 0:
        raise ValueError(f"parameter inference_max_restarts must be >= 0, got "
                         f"{values['inference_max_restarts']}")
    if not float(values['inference_restart_window']) > 0:
        raise ValueError(f"parameter inference_restart_window must be > 0 s, got "
                         f"{values['inference_restart_window']}")
    if values['inference_mode'] not in ('process', 'thread'):
        raise ValueError(f"parameter inference_mode must be 'process' or 'thread', got "
                         f"{values['inference_mode']!r}")
    if values['trajectory_stamp'] not in ('zero', 'now'):
        raise ValueError(f"parameter trajectory_stamp must be 'zero' or 'now', got "
                         f"{values['trajectory_stamp']!r}")
    if not values['state_joint_names']:
        raise ValueError('parameter state_joint_names is empty: list the joints of the '
                         'proprio vector in policy order')
    if not values['action_joint_names']:
        raise ValueError('parameter action_joint_names is empty: list the commanded joints '
                         'in policy action order')
    config = NodeConfig(values, warnings=warnings)
    for cam in values['cameras']:
        prefix = f'camera.{cam}.'
        specs = {'topic': f'{cam}/image_raw', 'transport': 'raw',
                 'max_age': float(values['camera_max_age']), 'depth_range': []}
        kinds = {'max_age': 'double', 'depth_range': 'double[]'}
        for key, default in specs.items():
            kind = kinds.get(key, 'string')
            if not node.has_parameter(prefix + key):
                declared = default
                if default == []:      # rclpy would type an empty list as a byte array
                    from rclpy.parameter import Parameter as RclParameter
                    declared = RclParameter.Type.DOUBLE_ARRAY
                node.declare_parameter(prefix + key, declared, Param(
                    prefix + key, kind, default, CAMERA_KEYS[key]).descriptor())
            specs[key] = parameter_value_or(node, prefix + key, default)
        if specs['transport'] not in ('raw', 'compressed'):
            raise ValueError(f"parameter {prefix}transport must be 'raw' or 'compressed', "
                             f"got {specs['transport']!r}")
        if not float(specs['max_age']) > 0:
            raise ValueError(f"parameter {prefix}max_age must be > 0, got {specs['max_age']}")
        depth_range = [float(v) for v in (specs['depth_range'] or [])]
        if depth_range and not (len(depth_range) == 2 and 0 <= depth_range[0] < depth_range[1]):
            raise ValueError(f'parameter {prefix}depth_range must be [near, far] metres with '
                             f'0 <= near < far, got {depth_range}')
        config.cameras.append(CameraConfig(cam, specs['topic'], specs['transport'],
                                           float(specs['max_age']), depth_range or None))
    from env_actor.ros.outputs import build_output_groups, read_output_specs
    config.outputs, idle = build_output_groups(read_output_specs(node, values, DEFAULTS),
                                               values['action_joint_names'],
                                               unique_joints=bool(values['outputs']))
    config.warnings.extend(idle)
    return config


class DictParameters:
    """The slice of rclpy's parameter API that `read_node_config` uses, backed by a dict,
    so tools (offline evaluation) read a ROS parameters file with the node's own rules."""

    def __init__(self, values: dict) -> None:
        self._values = dict(values)

    def has_parameter(self, name: str) -> bool:
        return name in self._values

    def declare_parameter(self, name: str, default: Any, descriptor: Any = None) -> None:
        import enum
        if isinstance(default, enum.Enum):
            default = []       # a Parameter.Type: an empty list of that type
        self._values.setdefault(name, default)

    def get_parameter(self, name: str):
        class _Value:
            value = self._values[name]
        return _Value


def _node_pattern_matches(pattern: str, fqn: str) -> bool:
    """Whether a params-file node key matches a fully qualified node name, as rcl matches
    them: a key without a leading '/' is relative to the root, '*' stands for one name
    token (or part of one), '/**' for any number of namespace tokens."""
    import fnmatch
    key = pattern if pattern.startswith('/') else '/' + pattern
    key_tokens, name_tokens = key.strip('/').split('/'), fqn.strip('/').split('/')

    def match(keys: list, names: list) -> bool:
        if not keys:
            return not names
        if keys[0] == '**':
            return any(match(keys[1:], names[i:]) for i in range(len(names) + 1))
        return bool(names) and fnmatch.fnmatchcase(names[0], keys[0]) and \
            match(keys[1:], names[1:])
    return match(key_tokens, name_tokens)


def params_file_sections(data: dict, node_name: str = 'env_actor',
                         namespace: str = '/') -> tuple[dict, list]:
    """The parameters a node named `node_name` in `namespace` takes from a params file:
    every section whose key matches it (`/**`, `env_actor`, `/robot/env_actor`,
    `/**/env_actor`, ...), merged in file order as rcl does (later sections win).

    Returns:
        (merged ros__parameters, the keys of the sections used).
    """
    fqn = '/'.join(['', *[t for t in namespace.split('/') if t], node_name])
    merged, used = {}, []
    for key, section in data.items():
        if not isinstance(section, dict) or not isinstance(section.get('ros__parameters'),
                                                            dict):
            continue
        if _node_pattern_matches(str(key), fqn):
            merged.update(section['ros__parameters'])
            used.append(str(key))
    return merged, used


def config_from_params_file(path, overrides: Optional[dict] = None,
                            node_name: str = 'env_actor', namespace: str = '/') -> NodeConfig:
    """NodeConfig from a ROS parameters YAML, taking the sections that apply to the node
    `node_name` in `namespace` (see `params_file_sections`); `config.sources` names them.

    Raises:
        ValueError: unreadable file, no section for this node (names the sections there
            are), or an invalid value.
    """
    import yaml
    from pathlib import Path
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding='utf-8')) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f'cannot read parameters file {path}: {exc}') from exc
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a mapping of `<node or /**>: ros__parameters:`')
    values, used = params_file_sections(data, node_name, namespace)
    if not used:
        sections = [k for k, v in data.items()
                    if isinstance(v, dict) and 'ros__parameters' in v]
        fqn = '/'.join(['', *[t for t in namespace.split('/') if t], node_name])
        raise ValueError(f'{path}: no `ros__parameters` section applies to node {fqn} '
                         f'(sections: {sections}); use `/**`, its name, or pass the node '
                         'name the section is for')
    values.update(overrides or {})
    try:
        config = read_node_config(DictParameters(values))
    except ValueError as exc:
        raise ValueError(f'{path}: {exc}') from None
    config.sources = [f'{path} [{key}]' for key in used]
    return config


if __name__ == '__main__':
    print(parameter_table())
