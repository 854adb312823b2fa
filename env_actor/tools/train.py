"""Behaviour cloning from rosbag2 demonstrations into a ready-to-run policy bundle.

    env-actor-train DEMOS_DIR --out policies/sim_flow [--policy flow_matching|act]
        [--params-file config/sim.yaml] [--epochs 40] [--batch-size 64] [--seed 0]
        [--action-topic /expert/action]

Reads every rosbag2 folder under DEMOS_DIR with the node's parameters (topics, joint
names, cameras). The action labels come from --action-topic (std_msgs/Float64MultiArray):
the simulator's recorder writes the expert's own action on /expert/action (the executed,
noise-perturbed command is on /forward_position_controller/commands); for teleoperation
bags pass the topic the operator's commands were recorded on.
On the control-tick grid given by the recorded actions, each sample is
the proprio history, the newest frame per camera (decoded and resized as the node does)
and the next H recorded actions. Computes normalization stats (proprio z-score, actions
min-max to [-1, 1]), trains, and writes OUT/policy.yaml, OUT/components/*.yaml,
OUT/weights/*.safetensors, OUT/stats.json and OUT/training.json.
Flow matching: tau ~ U(0, 1), A_tau = (1 - tau) noise + tau A, loss |v - (A - noise)|^2.
ACT: L1 on the normalised chunk.
"""
import json
from pathlib import Path
import time
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from env_actor.policy.utils.loader import build_component
from env_actor.policy.utils.normalization import DataNormalizationInterface, FeatureStats
from env_actor.policy.utils.torch_policy import encode_observations
from env_actor.ros.conversions import JointStateConverter
from env_actor.ros.params import config_from_params_file
from env_actor.tools.bag_io import (absolute_topic, deserialize, open_bag, read_messages,
                                    require_topics)
from env_actor.tools.share import share_path
from env_actor.tools.sim_record import EXPERT_TOPIC
from env_actor.tools.cli import exit_codes, tool_parser

SIM_PARAMS = share_path('config', 'sim.yaml')


def load_episode(bag: Path, cfg, image_size: tuple[int, int], action_topic: str) -> dict:
    """Per control tick (each recorded action): proprio, frames per camera, action."""
    joints = JointStateConverter(cfg.state_joint_names, cfg.state_fields)
    cams = {absolute_topic(c.topic): c for c in cfg.cameras}
    joint_topic = absolute_topic(cfg.joint_states_topic)
    reader = open_bag(bag)
    try:
        require_topics(reader, {joint_topic: ('sensor_msgs/msg/JointState',),
                                action_topic: ('std_msgs/msg/Float64MultiArray',),
                                **{t: (c.msgtype,) for t, c in cams.items()}})
        latest_proprio, latest_raw = None, {}
        proprio, frames, actions = [], [], []
        for topic, _, raw in read_messages(reader, [joint_topic, action_topic, *cams]):
            if topic == joint_topic:
                latest_proprio = joints.to_vector(deserialize(raw, 'sensor_msgs/msg/JointState'))
            elif topic in cams:
                latest_raw[topic] = raw
            elif latest_proprio is not None and len(latest_raw) == len(cams):
                frames.append(np.stack([c.convert(deserialize(latest_raw[t], c.msgtype),
                                                  *image_size) for t, c in cams.items()]))
                proprio.append(latest_proprio)
                action = deserialize(raw, 'std_msgs/msg/Float64MultiArray')
                actions.append(np.asarray(action.data, dtype=np.float32))
    finally:
        reader.close()
    return {'proprio': np.asarray(proprio, np.float32), 'frames': np.asarray(frames),
            'actions': np.asarray(actions, np.float32)}


class ChunkDataset:
    """Windows over episodes: proprio history (P), frames at t, actions t .. t+H-1."""

    def __init__(self, episodes: list, history: int, chunk: int) -> None:
        self.episodes, self.history, self.chunk = episodes, history, chunk
        self.index = [(e, t) for e, ep in enumerate(episodes) for t in range(len(ep['actions']))]

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, ids: np.ndarray) -> tuple:
        proprio, frames, chunks = [], [], []
        for i in ids:
            e, t = self.index[i]
            ep = self.episodes[e]
            last = len(ep['actions']) - 1
            proprio.append(ep['proprio'][np.clip(np.arange(t - self.history + 1, t + 1), 0,
                                                 last)])
            frames.append(ep['frames'][t])
            chunks.append(ep['actions'][np.clip(np.arange(t, t + self.chunk), 0, last)])
        return (torch.from_numpy(np.stack(proprio)), torch.from_numpy(np.stack(frames)),
                torch.from_numpy(np.stack(chunks)))


def component_specs(policy: str, state_dim: int, action_dim: int, history: int,
                    chunk: int, cameras: int) -> dict:
    token = 64
    specs = {
        'image_encoder': {'type': 'resnet_encoder', 'params': {
            'out_dim': token, 'widths': [16, 32, 64], 'stem_width': 16,
            'pool': 'spatial_softmax'}},
        'proprio_encoder': {'type': 'mlp', 'params': {
            'in_dim': history * state_dim, 'out_dim': token, 'hidden_dims': [128],
            'layer_norm': True}}}
    head = {'action_dim': action_dim, 'chunk_size': chunk, 'token_dim': token,
            'num_obs_tokens': cameras + 1, 'd_model': 96, 'depth': 3, 'heads': 4,
            'ff_dim': 192}
    if policy == 'flow_matching':
        specs['velocity'] = {'type': 'flow_transformer', 'params': head}
    else:
        specs['decoder'] = {'type': 'act_decoder', 'params': head}
    return specs


def train(demos: Path, out: Path, policy: str = 'flow_matching',
          params_file: Path = SIM_PARAMS, epochs: int = 40, batch_size: int = 64,
          lr: float = 1e-3, seed: int = 0, chunk: int = 24, history: int = 2,
          image_size: tuple[int, int] = (96, 96), action_topic: str = EXPERT_TOPIC,
          log=print, node_name: str = 'env_actor', namespace: str = '/',
          rtc_prefix: bool = False, max_delay: int = 8, prefix_noise: float = 0.0) -> dict:
    """Train and write the bundle; returns the training summary (also training.json).

    With `rtc_prefix` (flow_matching only), training-time RTC: per sample a delay d is
    drawn uniformly from 0..max_delay; the chunk's first d actions are given clean (flow
    time 1), the rest noised as usual, and the loss covers only those. The bundle then
    selects `guided_method: prefix`. `prefix_noise` (normalised action units) perturbs
    the clean prefix, so the model learns not to trust it blindly (at run time the prefix
    is an older plan, not the demonstration's own actions).
    """
    if rtc_prefix and policy != 'flow_matching':
        raise ValueError('--rtc-prefix needs --policy flow_matching')
    if rtc_prefix and not 0 <= max_delay < chunk:
        raise ValueError(f'--max-delay must be in [0, chunk) = [0, {chunk}), got {max_delay}')
    started = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = config_from_params_file(params_file, {'policy_yaml': '-'}, node_name, namespace)
    log(f'parameters from {", ".join(cfg.sources)}')
    bags = sorted(p.parent for p in Path(demos).glob('**/metadata.yaml'))
    if not bags:
        raise ValueError(f'no rosbag2 folders under {demos}')
    episodes = [load_episode(b, cfg, image_size, action_topic) for b in bags]
    data = ChunkDataset(episodes, history, chunk)
    load_s = time.perf_counter() - started
    log(f'{len(bags)} episodes, {len(data)} samples loaded in {load_s:.1f} s')
    state_dim, action_dim = episodes[0]['proprio'].shape[1], episodes[0]['actions'].shape[1]
    all_proprio = np.concatenate([e['proprio'] for e in episodes])
    all_actions = np.concatenate([e['actions'] for e in episodes])
    norm = DataNormalizationInterface(FeatureStats.from_samples(all_proprio),
                                      FeatureStats.from_samples(all_actions),
                                      'zscore', 'minmax')
    cameras = [c.name for c in cfg.cameras]
    specs = component_specs(policy, state_dim, action_dim, history, chunk, len(cameras))
    (out / 'components').mkdir(parents=True, exist_ok=True)
    for name, spec in specs.items():
        (out / 'components' / f'{name}.yaml').write_text(yaml.safe_dump(spec, sort_keys=False))
    components = {n: build_component(out / 'components' / f'{n}.yaml', n) for n in specs}
    parameters = [p for c in components.values() for p in c.parameters()]
    steps_per_epoch = max(1, len(data) // batch_size)
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs *
                                                   steps_per_epoch, pct_start=0.1)
    head = components['velocity' if policy == 'flow_matching' else 'decoder']
    losses = []
    for epoch in range(epochs):
        order = rng.permutation(len(data))
        epoch_loss = 0.0
        for step in range(steps_per_epoch):
            proprio, frames, target = data.batch(order[step * batch_size:(step + 1) *
                                                       batch_size])
            proprio_n = norm.normalize_proprio(proprio).reshape(len(proprio), -1)
            proprio_n = proprio_n + 0.05 * torch.randn_like(proprio_n)
            images = [frames[:, i:i + 1] for i in range(len(cameras))]
            tokens = encode_observations([components['image_encoder']] * len(cameras),
                                         components['proprio_encoder'], images, proprio_n)
            target_n = norm.normalize_action(target)
            if policy == 'flow_matching' and rtc_prefix:
                noise = torch.randn_like(target_n)
                delay = torch.randint(0, max_delay + 1, (len(target_n),))
                prefix = torch.arange(target_n.shape[1])[None, :] < delay[:, None]
                times = torch.where(prefix, 1.0, torch.rand(len(target_n))[:, None])
                a_tau = (1 - times[..., None]) * noise + times[..., None] * target_n
                if prefix_noise > 0:
                    a_tau = a_tau + prefix_noise * torch.randn_like(a_tau) * prefix[..., None]
                error = (head(a_tau, tokens, times) - (target_n - noise)) ** 2
                loss = error[~prefix].mean()        # the postfix only
            elif policy == 'flow_matching':
                noise = torch.randn_like(target_n)
                tau = torch.rand(len(target_n))
                a_tau = (1 - tau[:, None, None]) * noise + tau[:, None, None] * target_n
                loss = F.mse_loss(head(a_tau, tokens, tau), target_n - noise)
            else:
                loss = F.l1_loss(head(tokens), target_n)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            schedule.step()
            epoch_loss += loss.item()
        losses.append(epoch_loss / steps_per_epoch)
        log(f'epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f} '
            f'({time.perf_counter() - started:.0f} s)')
    from safetensors.torch import save_file
    (out / 'weights').mkdir(exist_ok=True)
    for name, module in components.items():
        save_file({k: v.contiguous() for k, v in module.state_dict().items()},
                  str(out / 'weights' / f'{name}.safetensors'))
    norm.to_file(out / 'stats.json')
    policy_section = {'type': policy, 'action_chunk_size': chunk, 'action_dim': action_dim,
                      'state_dim': state_dim, 'proprio_history_size': history,
                      'num_img_obs': 1, 'image_size': list(image_size), 'cameras': cameras,
                      'soft_mask_schedule': 'exp', 'warmup_iters': 2}
    if policy == 'flow_matching':
        policy_section.update({'num_steps': 10, 'max_guidance_weight': 5.0,
                               'noise_seed': None,
                               'guided_method': 'prefix' if rtc_prefix else 'guidance',
                               'prefix_trained': bool(rtc_prefix)})
    bundle = {'model': {'component_config_paths': {n: f'components/{n}.yaml' for n in specs},
                        'checkpoint_path': 'weights'},
              'policy': policy_section,
              'normalization': {'stats_path': 'stats.json', 'proprio': 'zscore',
                                'action': 'minmax'}}
    (out / 'policy.yaml').write_text(
        f'# Trained by env-actor-train from {len(bags)} demonstrations ({policy}).\n' +
        yaml.safe_dump(bundle, sort_keys=False))
    summary = {'policy': policy, 'episodes': len(bags), 'samples': len(data),
               'epochs': epochs, 'batch_size': batch_size, 'lr': lr, 'seed': seed,
               'final_loss': losses[-1], 'losses': losses,
               'wall_time_s': time.perf_counter() - started, 'load_time_s': load_s,
               'torch_threads': torch.get_num_threads(), 'action_topic': action_topic,
               'rtc_prefix': bool(rtc_prefix), 'max_delay': max_delay if rtc_prefix else None,
               'prefix_noise': prefix_noise if rtc_prefix else None}
    (out / 'training.json').write_text(json.dumps(summary, indent=1))
    return summary


@exit_codes
def main(args: Optional[Sequence[str]] = None) -> int:
    parser = tool_parser('Behaviour cloning from rosbag2 demos into '
                                                 'a policy bundle.')
    parser.add_argument('demos', type=Path, help='folder with rosbag2 episodes')
    parser.add_argument('--out', type=Path, required=True,
                        help='output policy bundle folder (required)')
    parser.add_argument('--policy', choices=('flow_matching', 'act'), default='flow_matching',
                        help='policy type to train')
    parser.add_argument('--params-file', type=Path, default=SIM_PARAMS,
                        help='node parameters: joints, topics, rates, history lengths')
    parser.add_argument('--epochs', type=int, default=40, help='training epochs')
    parser.add_argument('--batch-size', type=int, default=64, help='samples per step')
    parser.add_argument('--lr', type=float, default=1e-3, help='learning rate')
    parser.add_argument('--seed', type=int, default=0, help='torch and data seed')
    parser.add_argument('--chunk', type=int, default=24, help='action chunk size H')
    parser.add_argument('--action-topic', default=EXPERT_TOPIC,
                        help='Float64MultiArray topic with the action labels')
    parser.add_argument('--node-name', default='env_actor',
                        help='the policy node whose section of --params-file applies')
    parser.add_argument('--namespace', default='/', help="that node's namespace")
    parser.add_argument('--rtc-prefix', action='store_true',
                        help='training-time RTC (flow_matching): condition on a clean prefix '
                             'of d ~ U{0..max-delay} executed actions; the bundle uses '
                             'guided_method: prefix')
    parser.add_argument('--max-delay', type=int, default=8,
                        help='largest simulated inference delay for --rtc-prefix, ticks')
    parser.add_argument('--prefix-noise', type=float, default=0.0,
                        help='std of noise added to the clean prefix in training, in '
                             'normalised action units (--rtc-prefix)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing bundle in --out (refused otherwise)')
    opts = parser.parse_args(args)
    if opts.out.exists() and any(opts.out.iterdir()) and not opts.overwrite:
        raise FileExistsError(f'{opts.out} already holds files (a policy bundle?); choose '
                              'another --out or pass --overwrite')
    summary = train(opts.demos, opts.out, opts.policy, opts.params_file, opts.epochs,
                    opts.batch_size, opts.lr, opts.seed, opts.chunk,
                    action_topic=opts.action_topic, node_name=opts.node_name,
                    namespace=opts.namespace, rtc_prefix=opts.rtc_prefix,
                    max_delay=opts.max_delay, prefix_noise=opts.prefix_noise)
    print(f'trained {opts.policy} in {summary["wall_time_s"]:.0f} s, final loss '
          f'{summary["final_loss"]:.4f}; bundle in {opts.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
