"""Offline evaluation: run a policy on a recorded rosbag2 episode without DDS.

    env-actor-eval BAG --policy-yaml P --params-file F --out DIR
        [--action-topic T] [--delay-steps D] [--algorithm A] [--seed S] [--no-plots]

The bag's joint states and camera images go through the node's own conversions, history
and executor (Sequential / RTC / ...) on a simulated clock (ticks every control period
from the first message), with inference delayed by a fixed number of ticks (default: the
measured latency after warm-up), deterministically. Like the live node's conversion
thread, each tick uses the newest frame per camera. Writes to DIR:
    ticks.csv        one row per tick: time, state, new_chunk, action
    eval.npz         times, actions (NaN = nothing commanded), new_chunk, chunks,
                     chunk_start_ticks, recorded actions (if --action-topic)
    predictions/     a rosbag2 with /env_actor/commands (Float64MultiArray per tick) and
                     /env_actor/joint_trajectory (JointTrajectory per new chunk)
    metrics.json     seam smoothness; per-joint MAE/RMSE against --action-topic
    plot_<joint>.png recorded vs predicted, chunk starts marked
"""
import csv
from dataclasses import dataclass, field
import json
import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from env_actor.policy.utils.device import resolve_device
from env_actor.policy.utils.loader import build_ready_bundle
from env_actor.policy.utils.spec import PolicySpec
from env_actor.ros.conversions import (action_to_command, chunk_to_trajectory,
                                       JointStateConverter)
from env_actor.ros.params import config_from_params_file, NodeConfig
from env_actor.runtime.executor import ALGORITHMS
from env_actor.runtime.factory import build_executor, measure_latency
from env_actor.runtime.history import LazyFrame
from env_actor.runtime.observation import PROPRIO
from env_actor.tools.bag_io import (absolute_topic, BagError, BagWriter, deserialize,
                                    open_bag, read_messages, require_topics, topic_types)
from env_actor.tools.metrics import error_metrics, plot_joints, seam_metrics
from env_actor.tools.cli import exit_codes, tool_parser

JOINT_STATE = 'sensor_msgs/msg/JointState'
ACTION_TYPES = ('std_msgs/msg/Float64MultiArray', JOINT_STATE,
                'trajectory_msgs/msg/JointTrajectory')


@dataclass
class EvalResult:
    times: np.ndarray
    actions: np.ndarray
    states: list
    new_chunk: np.ndarray
    chunks: list
    chunk_start_ticks: list
    recorded: Optional[np.ndarray]
    metrics: dict
    sources: list = field(default_factory=list)   # params-file sections used


def recorded_action(msg, msgtype: str, joint_names: Sequence[str]) -> np.ndarray:
    """A recorded action message -> vector in action_joint_names order."""
    if msgtype == 'std_msgs/msg/Float64MultiArray':
        return np.asarray(msg.data, dtype=np.float64)
    if msgtype == JOINT_STATE:
        index = {n: i for i, n in enumerate(msg.name)}
        return np.asarray([msg.position[index[n]] for n in joint_names], dtype=np.float64)
    index = {n: i for i, n in enumerate(msg.joint_names)}
    first = msg.points[0].positions
    return np.asarray([first[index[n]] for n in joint_names], dtype=np.float64)


def evaluate(bag: Path, policy_yaml: Path, params_file: Path,
             action_topic: Optional[str] = None, delay_steps: Optional[int] = None,
             algorithm: Optional[str] = None, seed: int = 0,
             out_dir: Optional[Path] = None, plots: bool = True,
             node_name: str = 'env_actor', namespace: str = '/',
             lazy_decode: bool = True) -> EvalResult:
    """Run the evaluation (see module docstring).

    Raises:
        BagError: missing bag, unknown storage, missing topic or wrong topic type.
        ValueError / PolicyLoadError: bad parameters or policy.
    """
    cfg = config_from_params_file(params_file, {'policy_yaml': str(policy_yaml)}, node_name,
                                  namespace)
    joint_topic = absolute_topic(cfg.joint_states_topic)
    action_topic = absolute_topic(action_topic) if action_topic else None
    reader = open_bag(bag)
    try:
        cams = {absolute_topic(c.topic): c for c in cfg.cameras}
        required = {joint_topic: (JOINT_STATE,), **{t: (c.msgtype,) for t, c in cams.items()}}
        if action_topic:
            required[action_topic] = ACTION_TYPES
        require_topics(reader, required)
        types = topic_types(reader)
        torch.manual_seed(seed)
        bundle = build_ready_bundle(policy_yaml, map_location=resolve_device(cfg.device))
        spec = PolicySpec.from_config(bundle.config['policy'], policy_yaml)
        dt = cfg.control_period
        if delay_steps is None:
            latency = measure_latency(bundle, spec, (algorithm or cfg.algorithm) == 'rtc')
            delay_steps = int(math.ceil(latency / dt))
        settings = cfg.runtime_settings(algorithm)
        if settings.initial_delay_steps < 0:    # 'measure it': offline, the delay is known
            settings.initial_delay_steps = int(delay_steps)
        torch.manual_seed(seed)
        executor = build_executor(bundle, settings, int(delay_steps))
        joints = JointStateConverter(cfg.state_joint_names, cfg.state_fields)
        pending: dict[str, tuple[bytes, float]] = {}
        times, actions, states, new_chunk = [], [], [], []
        chunks, chunk_starts, recorded_rows = [], [], []
        last_recorded: Optional[np.ndarray] = None
        next_tick: Optional[float] = None

        def decoder(camera, raw: bytes, stamp: float):
            def decode() -> np.ndarray:
                try:
                    return camera.convert(deserialize(raw, camera.msgtype),
                                          spec.image_height, spec.image_width)
                except ValueError as exc:
                    raise ValueError(f'{bag}: frame at {stamp:.3f} s: {exc}') from None
            return decode

        def tick(now: float) -> None:
            for topic, (raw, stamp) in pending.items():
                decode = decoder(cams[topic], raw, stamp)
                if lazy_decode:    # decoded only if a policy input ever contains it
                    frame = LazyFrame(decode)
                else:
                    try:
                        frame = decode()
                    except ValueError:
                        continue                 # reported by staleness, as in the node
                executor.cache.update(cams[topic].name, frame, stamp)
            pending.clear()
            result = executor.on_tick(now)
            times.append(now)
            states.append(result.state)
            new_chunk.append(bool(result.new_chunk and result.action is not None))
            actions.append(result.action if result.action is not None
                           else np.full(spec.action_dim, np.nan))
            recorded_rows.append(last_recorded if last_recorded is not None
                                 else np.full(spec.action_dim, np.nan))
            if new_chunk[-1]:
                chunks.append(np.vstack([result.action[None], executor.planned_actions()]))
                chunk_starts.append(result.tick)

        topics = [joint_topic, *cams] + ([action_topic] if action_topic else [])
        last_t = None
        for topic, stamp_ns, raw in read_messages(reader, topics):
            t = last_t = stamp_ns * 1e-9
            if next_tick is None:
                next_tick = t
            while t > next_tick:
                tick(next_tick)
                next_tick += dt
            if topic == joint_topic:
                try:
                    executor.cache.update(PROPRIO, joints.to_vector(
                        deserialize(raw, JOINT_STATE)), t)
                except ValueError:
                    pass
            elif topic in cams:
                pending[topic] = (raw, t)
            if topic == action_topic:
                last_recorded = recorded_action(deserialize(raw, types[topic]), types[topic],
                                                cfg.action_joint_names)
        if next_tick is not None and next_tick <= last_t:     # ticks end with the episode
            tick(next_tick)
        executor.worker.close()
    finally:
        reader.close()
    result = EvalResult(np.asarray(times), np.asarray(actions, dtype=np.float64), states,
                        np.asarray(new_chunk, dtype=bool), chunks, chunk_starts,
                        np.asarray(recorded_rows, dtype=np.float64) if action_topic else None,
                        {}, cfg.sources)
    result.metrics = {'ticks': len(times), 'commanded': int(np.sum(np.isfinite(
        result.actions[:, 0]))) if len(times) else 0, 'chunks': len(chunks),
        'delay_steps': int(delay_steps), 'algorithm': algorithm or cfg.algorithm,
        **seam_metrics(result.actions, result.new_chunk)}
    if result.recorded is not None:
        result.metrics['errors'] = error_metrics(result.actions, result.recorded,
                                                 cfg.action_joint_names)
    if out_dir is not None:
        write_outputs(result, Path(out_dir), cfg, dt, plots, storage_of(bag))
    return result


def storage_of(bag: Path) -> str:
    import yaml
    meta = yaml.safe_load((Path(bag) / 'metadata.yaml').read_text())
    return meta['rosbag2_bagfile_information']['storage_identifier']


def write_outputs(result: EvalResult, out: Path, cfg: NodeConfig, dt: float, plots: bool,
                  storage: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    names = cfg.action_joint_names
    with open(out / 'ticks.csv', 'w', newline='', encoding='utf-8') as stream:
        writer = csv.writer(stream)
        writer.writerow(['tick', 'time_s', 'state', 'new_chunk', *names])
        for i, (t, state, new, action) in enumerate(zip(result.times, result.states,
                                                         result.new_chunk, result.actions)):
            row = ['' if not np.isfinite(a) else f'{a:.6f}' for a in action]
            writer.writerow([i, f'{t:.6f}', state, int(new), *row])
    H = max((len(c) for c in result.chunks), default=0)
    padded = np.full((len(result.chunks), H, len(names)), np.nan)
    for i, chunk in enumerate(result.chunks):
        padded[i, :len(chunk)] = chunk
    arrays = dict(times=result.times, actions=result.actions, new_chunk=result.new_chunk,
                  states=np.asarray(result.states, dtype='U16'), chunks=padded,
                  chunk_start_ticks=np.asarray(result.chunk_start_ticks, dtype=np.int64))
    if result.recorded is not None:
        arrays['recorded'] = result.recorded
    np.savez(out / 'eval.npz', **arrays)
    bag_path = out / 'predictions'
    if bag_path.exists():
        import shutil
        shutil.rmtree(bag_path)
    with BagWriter(bag_path, storage) as bag:
        for t, action in zip(result.times, result.actions):
            if np.all(np.isfinite(action)):
                bag.write('/env_actor/commands', 'std_msgs/msg/Float64MultiArray',
                          int(round(t * 1e9)), action_to_command(action))
        for tick, chunk in zip(result.chunk_start_ticks, result.chunks):
            bag.write('/env_actor/joint_trajectory', 'trajectory_msgs/msg/JointTrajectory',
                      int(round(result.times[tick] * 1e9)),
                      chunk_to_trajectory(chunk, names, dt))
    (out / 'metrics.json').write_text(json.dumps(result.metrics, indent=1), encoding='utf-8')
    if plots and len(result.times):
        chunk_times = result.times[np.asarray(result.chunk_start_ticks, dtype=int)]
        plot_joints(out, result.times - result.times[0], result.actions, result.recorded,
                    chunk_times - result.times[0], names)


@exit_codes
def main(args: Optional[Sequence[str]] = None) -> int:
    parser = tool_parser(
        description='Run a policy offline on a rosbag2 episode (no DDS), write predicted '
                    'chunks/actions (bag, CSV, NPZ), metrics and plots.')
    parser.add_argument('bag', type=Path, help='rosbag2 folder (sqlite3 or mcap)')
    parser.add_argument('--policy-yaml', type=Path, required=True, help='policy YAML')
    parser.add_argument('--params-file', type=Path, required=True,
                        help='the node parameters file (topics, joints, rates, limits)')
    parser.add_argument('--out', type=Path, required=True, help='output folder')
    parser.add_argument('--node-name', default='env_actor',
                        help='the policy node whose section of --params-file applies')
    parser.add_argument('--namespace', default='/', help="that node's namespace")
    parser.add_argument('--action-topic', default=None,
                        help='recorded actions (Float64MultiArray, JointState or '
                             'JointTrajectory) to compare against')
    parser.add_argument('--delay-steps', type=int, default=None,
                        help='simulated inference delay in ticks (default: measured)')
    parser.add_argument('--algorithm', choices=ALGORITHMS,
                        help="control algorithm (default: the params file's `algorithm`)")
    parser.add_argument('--seed', type=int, default=0, help='torch seed of the policy')
    parser.add_argument('--no-plots', action='store_true', help='skip the PNG plots')
    opts = parser.parse_args(args)
    try:
        result = evaluate(opts.bag, opts.policy_yaml, opts.params_file, opts.action_topic,
                          opts.delay_steps, opts.algorithm, opts.seed, opts.out,
                          not opts.no_plots, opts.node_name, opts.namespace)
    except (BagError, ValueError) as exc:
        parser.exit(2, f'env-actor-eval: error: {exc}\n')
    m = result.metrics
    print(f'parameters from {", ".join(result.sources)}')
    print(f'{m["ticks"]} ticks, {m["commanded"]} commanded, {m["chunks"]} chunks '
          f'({m["algorithm"]}, delay {m["delay_steps"]} ticks); seam step mean '
          f'{m["seam_step_mean"]:.4f} vs inside {m["inside_step_mean"]:.4f}')
    if 'errors' in m and m['errors'].get('ticks_compared'):
        print(f'vs {opts.action_topic}: MAE {m["errors"]["mae_mean"]:.4f}, '
              f'RMSE {m["errors"]["rmse_mean"]:.4f} over {m["errors"]["ticks_compared"]} ticks')
    print(f'wrote {opts.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
