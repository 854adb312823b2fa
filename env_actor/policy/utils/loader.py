"""`build_policy()`: policy YAML -> instantiated policy.

Policy YAML schema (paths are relative to the YAML's folder)::

    model:
      component_config_paths:        # required, non-empty: component name -> YAML
        main: components/main.yaml
      checkpoint_path: weights       # optional folder holding {component}.safetensors
                                     # or {component}.pt (state dicts, strict keys)
    policy:
      type: your_policy              # POLICY_REGISTRY name (a plain identifier)
      ...                            # every other key is passed to __init__ as kwargs;
                                     # keys ending in `_path` are resolved like paths
    normalization:                   # optional, see normalization.py
      stats_path: stats.json

Component YAML schema::

    type: mlp                        # COMPONENT_REGISTRY name
    params: {in_dim: 8, out_dim: 4}  # keyword arguments of the component class

Steps: (1) load YAML, (2) resolve component paths against the YAML's folder,
(3) build each nn.Module from its component YAML, (4) load `{component}` state dicts
when `checkpoint_path` is set, (5) look `policy.type` up in POLICY_REGISTRY, else import
`env_actor.policy.policies.{type}.{type}` (nothing else is ever imported) and instantiate.
"""
from dataclasses import dataclass
import importlib
import keyword
from pathlib import Path
import re
from typing import Any, Optional, Union

import torch
import torch.nn as nn
import yaml

from env_actor.policy.registry import COMPONENT_REGISTRY, POLICY_REGISTRY
from env_actor.policy.utils.errors import PolicyFileNotFoundError, PolicyLoadError
from env_actor.policy.utils.normalization import DataNormalizationInterface
from env_actor.policy.utils.weight_transfer import describe_mismatch

PathLike = Union[str, Path]
_IDENTIFIER = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
POLICY_PACKAGE = 'env_actor.policy.policies'


def load_yaml_mapping(path: PathLike, what: str = 'YAML') -> dict:
    """Read a YAML file whose top level must be a mapping (yaml.safe_load only).

    Raises:
        PolicyFileNotFoundError: the file does not exist.
        PolicyLoadError: the YAML is malformed or its top level is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise PolicyFileNotFoundError(f'{what} file not found: {path}')
    try:
        with open(path, 'r', encoding='utf-8') as stream:
            data = yaml.safe_load(stream)
    except yaml.YAMLError as exc:
        raise PolicyLoadError(f'malformed {what} {path}: {exc}') from exc
    if not isinstance(data, dict):
        raise PolicyLoadError(f'{what} {path}: top level must be a mapping, '
                              f'got {type(data).__name__}')
    return data


def load_policy_config(policy_yaml_path: PathLike) -> dict:
    """Load and validate the structure of a policy YAML (see module docstring)."""
    path = Path(policy_yaml_path)
    config = load_yaml_mapping(path, 'policy YAML')
    model = config.get('model')
    if not isinstance(model, dict):
        raise PolicyLoadError(f'{path}: missing mapping `model`')
    paths = model.get('component_config_paths')
    if not isinstance(paths, dict) or not paths:
        raise PolicyLoadError(f'{path}: `model.component_config_paths` must be a non-empty '
                              f'mapping of component name -> component YAML, got {paths!r}')
    for name, value in paths.items():
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            raise PolicyLoadError(f'{path}: component name {name!r} in '
                                  f'`model.component_config_paths` is not an identifier')
        if not isinstance(value, str) or not value:
            raise PolicyLoadError(f'{path}: `model.component_config_paths.{name}` must be a '
                                  f'path string, got {value!r}')
    policy = config.get('policy')
    if not isinstance(policy, dict) or 'type' not in policy:
        raise PolicyLoadError(f'{path}: missing `policy.type` (the registered policy name)')
    if not isinstance(policy['type'], str):
        raise PolicyLoadError(f'{path}: `policy.type` must be a string, got '
                              f'{policy["type"]!r}')
    return config


def resolve_path(base_dir: Path, value: str) -> Path:
    """Resolve `value` against `base_dir` unless it is absolute (`~` expanded)."""
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else (base_dir / candidate)


def build_component(component_yaml_path: PathLike, name: str = 'component') -> nn.Module:
    """Build one nn.Module from a component YAML (`type` + `params`)."""
    import env_actor.models  # noqa: F401  (registers the built-in components)

    path = Path(component_yaml_path)
    spec = load_yaml_mapping(path, f'component YAML for {name!r}')
    ctype = spec.get('type')
    if not isinstance(ctype, str):
        raise PolicyLoadError(f'{path}: missing string `type`; registered components: '
                              f'{COMPONENT_REGISTRY.names()}')
    if ctype not in COMPONENT_REGISTRY:
        raise PolicyLoadError(f'{path}: unknown component type {ctype!r}; registered: '
                              f'{COMPONENT_REGISTRY.names()}')
    params = spec.get('params', {}) or {}
    if not isinstance(params, dict):
        raise PolicyLoadError(f'{path}: `params` must be a mapping, got {params!r}')
    try:
        return COMPONENT_REGISTRY.get(ctype)(**params)
    except (TypeError, ValueError) as exc:
        raise PolicyLoadError(f'{path}: cannot build component {ctype!r} with params '
                              f'{params}: {exc}') from exc


def read_state_dict(checkpoint_dir: Path, name: str,
                    map_location: Union[str, torch.device] = 'cpu') -> tuple[dict, Path]:
    """Read `{name}.safetensors` (preferred) or `{name}.pt` (weights_only) from a folder."""
    safetensors_path = checkpoint_dir / f'{name}.safetensors'
    pt_path = checkpoint_dir / f'{name}.pt'
    if safetensors_path.is_file():
        from safetensors.torch import load_file
        try:
            return load_file(str(safetensors_path), device=str(map_location)), safetensors_path
        except Exception as exc:  # safetensors raises its own error types
            raise PolicyLoadError(f'cannot read checkpoint {safetensors_path}: {exc}') from exc
    if pt_path.is_file():
        try:
            state = torch.load(pt_path, map_location=map_location, weights_only=True)
        except Exception as exc:  # unpickling refusals, truncated files
            raise PolicyLoadError(f'cannot read checkpoint {pt_path} (weights_only=True): '
                                  f'{exc}') from exc
        if not isinstance(state, dict):
            raise PolicyLoadError(f'checkpoint {pt_path} must hold a state dict, '
                                  f'got {type(state).__name__}')
        return state, pt_path
    raise PolicyFileNotFoundError(f'checkpoint for component {name!r} not found: expected '
                                  f'{safetensors_path} or {pt_path}')


def check_state_dict(module: nn.Module, state: dict, name: str, source: PathLike) -> None:
    """Raise PolicyLoadError naming component, key and shapes unless `state` fits exactly."""
    problem = describe_mismatch(module.state_dict(), state)
    if problem is not None:
        raise PolicyLoadError(f'checkpoint {source} for component {name!r}: {problem}')


def available_policy_types() -> list[str]:
    """Return every policy type that can be built: registered ones and those on disk.

    Policies are imported lazily, so the registry alone may be empty; a policy on disk is
    a package `env_actor/policy/policies/<type>/` holding `<type>.py`.

    Returns:
        The sorted policy type names.
    """
    package_dir = Path(importlib.import_module(POLICY_PACKAGE).__file__).parent
    on_disk = {entry.name for entry in package_dir.iterdir()
               if (entry / f'{entry.name}.py').is_file()}
    return sorted(on_disk | set(POLICY_REGISTRY.names()))


def resolve_policy_class(policy_type: str, source: PathLike = '<policy YAML>') -> type:
    """Return the class registered as `policy_type`, importing only its own module.

    Raises:
        PolicyLoadError: not a plain identifier, no such module, or the module did not
            register `policy_type` (message lists the registered policies).
    """
    if not _IDENTIFIER.match(policy_type) or keyword.iskeyword(policy_type):
        raise PolicyLoadError(f'{source}: `policy.type` {policy_type!r} is not a plain '
                              f'identifier; available: {available_policy_types()}')
    if policy_type not in POLICY_REGISTRY:
        module_name = f'{POLICY_PACKAGE}.{policy_type}.{policy_type}'
        try:
            importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                raise  # the policy module exists but one of its imports is missing
            raise PolicyLoadError(
                f'{source}: unknown policy type {policy_type!r} (no module {module_name}); '
                f'available: {available_policy_types()}') from None
        if policy_type not in POLICY_REGISTRY:
            raise PolicyLoadError(
                f'{source}: module {module_name} did not register {policy_type!r} with '
                f'@POLICY_REGISTRY.register; available: {available_policy_types()}')
    return POLICY_REGISTRY.get(policy_type)


@dataclass
class PolicyBundle:
    """Everything a policy YAML describes, built and ready for inference."""

    policy: Any
    normalizer: DataNormalizationInterface
    config: dict
    path: Path
    components: dict[str, nn.Module]


def build_components(config: dict, base_dir: Path, source: Path,
                     map_location: Union[str, torch.device] = 'cpu') -> dict[str, nn.Module]:
    """Steps 2-4: build every component and load its checkpoint when one is configured."""
    model_cfg = config['model']
    components: dict[str, nn.Module] = {}
    for name, rel in model_cfg['component_config_paths'].items():
        components[name] = build_component(resolve_path(base_dir, rel), name).to(map_location)
    checkpoint: Optional[str] = model_cfg.get('checkpoint_path')
    if checkpoint:
        checkpoint_dir = resolve_path(base_dir, str(checkpoint))
        if not checkpoint_dir.is_dir():
            raise PolicyFileNotFoundError(f'{source}: `model.checkpoint_path` folder not '
                                          f'found: {checkpoint_dir}')
        for name, module in components.items():
            state, state_path = read_state_dict(checkpoint_dir, name, map_location)
            check_state_dict(module, state, name, state_path)
            module.load_state_dict(state, strict=True)
    return components


def build_policy_bundle(policy_yaml_path: PathLike,
                        map_location: Union[str, torch.device] = 'cpu') -> PolicyBundle:
    """Build the policy, its normalization interface and components from a policy YAML."""
    path = Path(policy_yaml_path).expanduser().resolve()
    config = load_policy_config(path)
    policy_cfg = dict(config['policy'])
    policy_cls = resolve_policy_class(policy_cfg.pop('type'), path)
    for key, value in policy_cfg.items():
        if key.endswith('_path') and isinstance(value, str):
            policy_cfg[key] = str(resolve_path(path.parent, value))
    components = build_components(config, path.parent, path, map_location)
    normalizer = DataNormalizationInterface.from_config(config.get('normalization'),
                                                        path.parent, path)
    try:
        policy = policy_cls(components, **policy_cfg)
    except (TypeError, ValueError, KeyError, FileNotFoundError) as exc:
        raise PolicyLoadError(f'{path}: {policy_cls.__name__}(components, **policy) failed '
                              f'with policy keys {sorted(policy_cfg)}: {exc}') from exc
    return PolicyBundle(policy, normalizer, config, path, components)


def build_policy(policy_yaml_path: PathLike, map_location: Union[str, torch.device] = 'cpu'):
    """Build a policy from its YAML (see module docstring for the steps and schema).

    Args:
        policy_yaml_path: path to the policy YAML.
        map_location: device the components are built on and checkpoints are read to.

    Returns:
        The policy instance (satisfies `env_actor.policy.templates.Policy`).

    Raises:
        PolicyLoadError / PolicyFileNotFoundError: with the file and key at fault.
    """
    return build_policy_bundle(policy_yaml_path, map_location).policy


def build_ready_bundle(policy_yaml_path: PathLike,
                       map_location: Union[str, torch.device] = 'cpu') -> PolicyBundle:
    """`build_policy_bundle`, then freeze every parameter and warm up: the one way the
    node, its inference process and the offline tools get a policy ready to run.

    Raises:
        PolicyLoadError: as build_policy_bundle.
    """
    bundle = build_policy_bundle(policy_yaml_path, map_location=map_location)
    bundle.policy.freeze_all_model_params()
    bundle.policy.warmup()
    return bundle
