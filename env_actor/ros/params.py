"""The policy node's ROS parameters: declaration, defaults and validation.

Everything the node needs is a parameter (topics, QoS-relevant choices, shapes it checks
against the policy). `read_node_config(node)` declares them and returns a NodeConfig;
it raises ValueError naming the parameter at fault.
"""
from dataclasses import dataclass, field
from typing import Any, Optional

from rcl_interfaces.msg import ParameterDescriptor

_DYNAMIC = ParameterDescriptor(dynamic_typing=True)

DEFAULTS: dict[str, Any] = {
    'policy_yaml': '',
    'device': 'auto',                     # auto: cuda when torch sees a GPU, else cpu
    'algorithm': 'rtc',                   # sequential | rtc | naive_async | blend
    'control_frequency': 20.0,            # Hz
    'min_num_actions_executed': 25,       # s
    'sequential_actions': 0,              # 0: = s
    'delay_window': 5,
    'initial_delay_steps': -1,            # -1: from the warm-up latency
    'image_stride': 1,
    'joint_states_topic': 'joint_states',
    'state_joint_names': [],
    'state_fields': ['position'],
    'action_joint_names': [],
    'cameras': ['head', 'left', 'right'],
    'prompt_topic': '',                   # '' = no prompt subscription
    'joint_states_max_age': 0.1,          # s
    'camera_max_age': 0.5,                # s, default for every camera
    'publish_trajectory': True,
    'trajectory_topic': 'joint_trajectory_controller/joint_trajectory',
    'trajectory_stamp': 'zero',           # zero: start on arrival | now: absolute stamp
    'publish_commands': True,
    'commands_topic': 'forward_position_controller/commands',
    'safety.position_lower': [],          # per joint, or one value for all; [] = none
    'safety.position_upper': [],
    'safety.max_velocity': [],            # action units per second; [] = none
    'safety.max_step': [],                # deprecated: per tick; converted with a warning
    'diagnostics_period': 1.0,
    'autostart': False,
    'inference_mode': 'process',          # process: own process (no GIL sharing) | thread
    'inference_nice': 10,                 # process mode: lower CPU priority of inference
    'torch_threads': 0,                   # 0 = torch default
    'inference_timeout': 0.0,             # s; 0 = max(1 s, 5 x warm-up latency)
    'inference_max_restarts': 3,          # restarts of a dead/hung process per window
    'inference_restart_window': 60.0,     # s
    'gil_switch_interval_ms': 0.5,        # Python thread switch interval (default 5 ms)
}


@dataclass
class CameraConfig:
    name: str
    topic: str
    transport: str          # raw | compressed
    max_age: float

    @property
    def msgtype(self) -> str:
        """The ROS message type of this camera's topic."""
        return ('sensor_msgs/msg/Image' if self.transport == 'raw'
                else 'sensor_msgs/msg/CompressedImage')

    @property
    def convert(self):
        """message, height, width -> (3, height, width) uint8 RGB (see conversions)."""
        from env_actor.ros.conversions import compressed_to_chw, image_to_chw
        return image_to_chw if self.transport == 'raw' else compressed_to_chw


@dataclass
class NodeConfig:
    """Typed view of the node parameters (see DEFAULTS for names and defaults)."""

    values: dict
    cameras: list = field(default_factory=list)
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
        values = self.values[f'safety.{key}']
        if not values:
            return None
        return values[0] if len(values) == 1 else list(values)


def read_node_config(node) -> NodeConfig:
    """Declare (if needed) and read every parameter of the policy node.

    Raises:
        ValueError: a value of the wrong kind or out of range (names the parameter).
    """
    values = {}
    for name, default in DEFAULTS.items():
        if not node.has_parameter(name):
            node.declare_parameter(name, default, _DYNAMIC)
        values[name] = node.get_parameter(name).value
    for name in ('state_joint_names', 'state_fields', 'action_joint_names', 'cameras',
                 'safety.position_lower', 'safety.position_upper', 'safety.max_velocity',
                 'safety.max_step'):
        values[name] = list(values[name] or [])
    if not values['policy_yaml']:
        raise ValueError('parameter policy_yaml is empty: set it to a policy YAML path')
    if values['algorithm'] not in ('sequential', 'rtc', 'naive_async', 'blend'):
        raise ValueError(f"parameter algorithm {values['algorithm']!r} unknown; expected "
                         f'sequential, rtc, naive_async or blend')
    if not float(values['control_frequency']) > 0:
        raise ValueError(f"parameter control_frequency must be > 0, got "
                         f"{values['control_frequency']}")
    values['control_frequency'] = float(values['control_frequency'])
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
                 'max_age': float(values['camera_max_age'])}
        for key, default in specs.items():
            if not node.has_parameter(prefix + key):
                node.declare_parameter(prefix + key, default, _DYNAMIC)
            specs[key] = node.get_parameter(prefix + key).value
        if specs['transport'] not in ('raw', 'compressed'):
            raise ValueError(f"parameter {prefix}transport must be 'raw' or 'compressed', "
                             f"got {specs['transport']!r}")
        if not float(specs['max_age']) > 0:
            raise ValueError(f"parameter {prefix}max_age must be > 0, got {specs['max_age']}")
        config.cameras.append(CameraConfig(cam, specs['topic'], specs['transport'],
                                           float(specs['max_age'])))
    return config


class DictParameters:
    """The slice of rclpy's parameter API that `read_node_config` uses, backed by a dict,
    so tools (offline evaluation) read a ROS parameters file with the node's own rules."""

    def __init__(self, values: dict) -> None:
        self._values = dict(values)

    def has_parameter(self, name: str) -> bool:
        return name in self._values

    def declare_parameter(self, name: str, default: Any, descriptor: Any = None) -> None:
        self._values.setdefault(name, default)

    def get_parameter(self, name: str):
        class _Value:
            value = self._values[name]
        return _Value


def config_from_params_file(path, overrides: Optional[dict] = None) -> NodeConfig:
    """NodeConfig from a ROS parameters YAML (`/**:` or `<node>:` -> `ros__parameters`).

    Raises:
        ValueError: unreadable file, no ros__parameters section, or an invalid value.
    """
    import yaml
    from pathlib import Path
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding='utf-8')) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f'cannot read parameters file {path}: {exc}') from exc
    sections = [v['ros__parameters'] for v in data.values()
                if isinstance(v, dict) and isinstance(v.get('ros__parameters'), dict)]
    if not sections:
        raise ValueError(f'{path}: no `<node or /**>: ros__parameters:` section')
    values = dict(sections[0])
    values.update(overrides or {})
    try:
        return read_node_config(DictParameters(values))
    except ValueError as exc:
        raise ValueError(f'{path}: {exc}') from None
