"""Rosbag replay: offline evaluation (deterministic, both storage formats), bag errors,
and replay over DDS with /clock into the live node, recording its outputs."""
from pathlib import Path
import subprocess
import sys
import time

import numpy as np
import pytest

from env_actor.ros.policy_node import PolicyNode
from env_actor.tools.bag_io import BagError, BagWriter, open_bag, read_messages, topic_types
from env_actor.tools.bag_player import select_topics
from env_actor.tools.offline_eval import evaluate
from env_actor.tools.synthetic_bag import ACTION_TOPIC, write_episode
from recorded_bag import write_recorded_bag
from ros_harness import Harness
from rosgraph_msgs.msg import Clock

JOINTS = ['j1', 'j2']
DURATION = 4.0


def write_params(tmp_path: Path, transport: str = 'compressed') -> Path:
    suffix = '/compressed' if transport == 'compressed' else ''
    lines = ['/**:', '  ros__parameters:', '    algorithm: rtc', '    control_frequency: 20.0',
             '    min_num_actions_executed: 5', f'    state_joint_names: {JOINTS}',
             f'    action_joint_names: {JOINTS}', '    joint_states_topic: /joint_states',
             '    safety.max_velocity: [4.0]']
    for cam in ('head', 'left', 'right'):
        lines += [f'    camera.{cam}.topic: /{cam}/image_raw{suffix}',
                  f'    camera.{cam}.transport: {transport}']
    path = tmp_path / 'params.yaml'
    path.write_text('\n'.join(lines).replace("'", '') + '\n')
    return path


def write_policy(tmp_path: Path) -> Path:
    (tmp_path / 'mlp.yaml').write_text('type: mlp\nparams: {in_dim: 13, out_dim: 20}\n')
    (tmp_path / 'weights').mkdir(exist_ok=True)
    import torch
    from safetensors.torch import save_file
    from env_actor.policy.utils.loader import build_component
    torch.manual_seed(0)
    save_file(build_component(tmp_path / 'mlp.yaml').state_dict(),
              str(tmp_path / 'weights' / 'main.safetensors'))
    path = tmp_path / 'policy.yaml'
    path.write_text('model: {component_config_paths: {main: mlp.yaml}, '
                    'checkpoint_path: weights}\n'
                    'policy: {type: mlp_chunk, action_chunk_size: 10, action_dim: 2, '
                    'state_dim: 2, proprio_history_size: 2, image_size: [8, 8]}\n')
    return path


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_offline_eval_reads_both_formats_and_is_deterministic(tmp_path, storage,
                                                              monkeypatch):
    import env_actor.runtime.images as images
    bag = tmp_path / 'episode'
    counts = write_episode(bag, JOINTS, DURATION, storage, (64, 48))
    assert counts['/joint_states'] == 400 and counts['/head/image_raw/compressed'] == 120
    params, policy = write_params(tmp_path), write_policy(tmp_path)
    decoded = []
    real = images.compressed_to_chw
    monkeypatch.setattr(images, 'compressed_to_chw',
                        lambda *a, **k: decoded.append(1) or real(*a, **k))
    first = evaluate(bag, policy, params, ACTION_TOPIC, delay_steps=2,
                     out_dir=tmp_path / 'out')
    lazy_decodes, decoded[:] = len(decoded), []
    # decoding every frame up front (how it was done before) gives the same results
    second = evaluate(bag, policy, params, ACTION_TOPIC, delay_steps=2, lazy_decode=False)
    # lazily only frames that reach a policy input (chunks start every s = 5 ticks; the
    # eager path decodes the newest frame of each camera at every tick)
    assert lazy_decodes <= len(decoded) / 3, (lazy_decodes, len(decoded))
    np.testing.assert_array_equal(first.actions, second.actions)
    assert first.chunk_start_ticks == second.chunk_start_ticks
    for a, b in zip(first.chunks, second.chunks):
        np.testing.assert_array_equal(a, b)
    # ticks every 50 ms over the 4 s episode; the first chunk lands 2 ticks after the
    # first complete observation, then a chunk every s = 5 ticks
    assert len(first.times) == 80
    commanded = int(np.isfinite(first.actions[:, 0]).sum())
    assert commanded >= 75 and abs(len(first.chunks) - commanded / 5) <= 1
    assert first.states[:2] == ['stale', 'waiting'] or first.states[0] == 'waiting'
    m = first.metrics
    assert m['errors']['ticks_compared'] >= 75 and np.isfinite(m['errors']['mae_mean'])
    assert set(m['errors']['per_joint']) == set(JOINTS) and m['seams'] == len(first.chunks) - 1
    out = tmp_path / 'out'
    assert len((out / 'ticks.csv').read_text().splitlines()) == 81
    data = np.load(out / 'eval.npz', allow_pickle=False)
    np.testing.assert_array_equal(data['actions'], first.actions)
    assert (out / 'plot_j1.png').stat().st_size > 1000
    reader = open_bag(out / 'predictions')
    try:
        kinds = [topic for topic, _, _ in read_messages(reader, ['/env_actor/commands',
                                                                  '/env_actor/joint_trajectory'])]
    finally:
        reader.close()
    assert kinds.count('/env_actor/commands') == commanded
    assert kinds.count('/env_actor/joint_trajectory') == len(first.chunks)


def test_bag_errors_are_clear(tmp_path):
    params, policy = write_params(tmp_path), write_policy(tmp_path)
    with pytest.raises(BagError, match='bag not found'):
        evaluate(tmp_path / 'absent', policy, params)
    bag = tmp_path / 'episode'
    write_episode(bag, JOINTS, 1.0, 'sqlite3', (32, 24))
    meta = bag / 'metadata.yaml'
    original = meta.read_text()
    meta.write_text(original.replace('storage_identifier: sqlite3', 'storage_identifier: foo'))
    with pytest.raises(BagError, match="unknown storage format 'foo'"):
        evaluate(bag, policy, params)
    meta.write_text(original)
    with pytest.raises(BagError, match=r"has no topic '/forward_position_controller/x'"):
        evaluate(bag, policy, params, action_topic='/forward_position_controller/x')
    raw_params = write_params(tmp_path, transport='raw')
    with pytest.raises(BagError, match=r"has no topic '/head/image_raw' \(expected "
                                       r"sensor_msgs/msg/Image\)") as info:
        evaluate(bag, policy, raw_params)
    for camera in ('left', 'right'):          # every missing topic at once
        assert f"has no topic '/{camera}/image_raw'" in str(info.value)
    wrong = tmp_path / 'wrong'
    with BagWriter(wrong, 'mcap') as writer:
        from std_msgs.msg import Float64MultiArray
        writer.write('/joint_states', 'std_msgs/msg/Float64MultiArray', 1,
                     Float64MultiArray(data=[1.0]))
    with pytest.raises(BagError, match=r"topic '/joint_states' has type "
                                       r'std_msgs/msg/Float64MultiArray, expected '
                                       r'sensor_msgs/msg/JointState'):
        evaluate(wrong, policy, params)


def test_replay_over_dds_with_clock_drives_the_node(tmp_path):
    bag = tmp_path / 'episode'
    counts = write_episode(bag, JOINTS, DURATION, 'mcap', (64, 48))
    params, policy = write_params(tmp_path), write_policy(tmp_path)
    harness = Harness()
    node = PolicyNode(context=harness.context, cli_args=[
        '--ros-args', '--params-file', str(params), '-p', f'policy_yaml:={policy}',
        '-p', 'use_sim_time:=true', '-p', 'inference_mode:=thread',
        '-p', 'initial_delay_steps:=1'])
    stamps = []
    original = node._on_joint_state

    def on_joint_state(msg):
        stamps.append(msg.header.stamp.sec * 10 ** 9 + msg.header.stamp.nanosec)
        original(msg)
    node._on_joint_state = on_joint_state
    harness.add_node(node)
    out = tmp_path / 'recorded'
    try:
        node.trigger_configure()
        node.trigger_activate()
        assert node.lifecycle_state == 'active'
        result = subprocess.run(
            [sys.executable, '-m', 'env_actor.tools.bag_player', str(bag), '--topics',
             '/joint_states', '/head/image_raw/compressed', '/left/image_raw/compressed',
             '/right/image_raw/compressed', '--rate', '0.5', '--record', str(out),
             '--record-topics', '/forward_position_controller/commands',
             '/joint_trajectory_controller/joint_trajectory', '--tail', '0.5'],
            capture_output=True, text=True, timeout=60, env=harness.env)
        assert result.returncode == 0, result.stderr
        assert '/joint_states: 400' in result.stdout
        time.sleep(0.3)
    finally:
        harness.close()
    # the node got joint states (best effort: how many is not the software's to promise)
    # and every one it got was newer than the one before: replay keeps the bag's order
    assert stamps and len(stamps) <= counts['/joint_states']
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    reader = open_bag(out)
    try:
        types = topic_types(reader)
        assert types['/forward_position_controller/commands'] == \
            'std_msgs/msg/Float64MultiArray'
        recorded = list(read_messages(reader, list(types)))
    finally:
        reader.close()
    commands = [s for t, s, _ in recorded if t == '/forward_position_controller/commands']
    chunks = [s for t, s, _ in recorded if t.endswith('joint_trajectory')]
    # the bag played at half speed: a node on wall time would tick 40 times per second of
    # bag time; on /clock time it ticks once per 50 ms of bag time (20 per bag second; the
    # bound below leaves room for /clock samples lost on a busy machine)
    per_bag_second = (len(commands) - 1) / ((commands[-1] - commands[0]) * 1e-9)
    assert 10.0 <= per_bag_second <= 21.0, per_bag_second
    assert abs(len([c for c in chunks]) - len(commands) / 5) <= 3
    assert all(b >= a for a, b in zip(commands, commands[1:]))
    assert commands[-1] - commands[0] >= (DURATION - 1.0) * 1e9


def test_replay_selects_what_it_can_play_and_never_the_nodes_outputs(tmp_path):
    counts = write_recorded_bag(tmp_path / 'rec', JOINTS)
    reader = open_bag(tmp_path / 'rec')
    types = topic_types(reader)
    reader.close()
    assert set(types) == set(counts)
    selected, skipped = select_topics(types)
    assert selected == ['/head/image_raw', '/joint_states', '/left/image_raw',
                        '/right/image_raw']
    assert set(skipped) == set(types) - set(selected)
    assert 'not supported' in skipped['/rosout'] and 'not supported' in skipped['/tf']
    assert 'the player publishes /clock' in skipped['/clock']
    assert 'the node under test publishes' in skipped['/forward_position_controller/commands']
    # with --no-clock the bag's clock is the only clock and is played; outputs on request
    selected, _ = select_topics(types, publish_clock=False, play_outputs=True,
                                exclude=['/joint_states'])
    assert '/clock' in selected and '/forward_position_controller/commands' in selected
    assert '/joint_states' not in selected
    with pytest.raises(BagError, match=r"cannot play /rosout \(rcl_interfaces/msg/Log: "):
        select_topics(types, topics=['/joint_states', '/rosout'])
    with pytest.raises(BagError, match='pass --no-clock'):
        select_topics(types, topics=['/clock'])
    with pytest.raises(BagError, match=r"no topics \['/nope'\]"):
        select_topics(types, topics=['/nope'])


def test_replay_plays_a_recorded_split_bag_with_one_clock(tmp_path):
    counts = write_recorded_bag(tmp_path / 'rec', JOINTS)
    harness = Harness()
    clock_ns = []
    harness.probe.create_subscription(
        Clock, '/clock', lambda m: clock_ns.append(m.clock.sec * 10 ** 9 + m.clock.nanosec),
        100)
    try:
        result = subprocess.run(
            [sys.executable, '-m', 'env_actor.tools.bag_player', str(tmp_path / 'rec'),
             '--rate', '2.0', '--tail', '0.2', '--wait-subscribers', '2'],
            capture_output=True, text=True, timeout=60, env=harness.env)
        assert result.returncode == 0, result.stderr
        time.sleep(0.3)
        first_run_clock = list(clock_ns)
        # the bare file of one split part plays too
        part = subprocess.run(
            [sys.executable, '-m', 'env_actor.tools.bag_player',
             str(tmp_path / 'rec' / 'rec_1.mcap'), '--topics', '/joint_states',
             '--rate', '4.0', '--tail', '0', '--wait-subscribers', '0'],
            capture_output=True, text=True, timeout=60, env=harness.env)
        time.sleep(0.3)
        commands = harness.snapshot('cmd')
    finally:
        harness.close()
    assert f"/joint_states: {counts['/joint_states']}" in result.stdout
    assert f"/head/image_raw: {counts['/head/image_raw']}" in result.stdout  # both parts
    assert 'not playing 7 topics: ' in result.stdout
    for topic in ('/clock', '/events/write_split', '/forward_position_controller/commands',
                  '/parameter_events', '/rosout', '/tf', '/tf_static'):
        assert f'{topic} (' in result.stdout
    assert commands == []                     # the recorded commands never went out
    # one clock: the player's, in bag time; the simulator's recorded clock (near 0) never
    # reached the graph, so bag time never jumps back
    assert first_run_clock and min(first_run_clock) >= 1_700_000_000 * 10 ** 9
    assert all(b >= a for a, b in zip(first_run_clock, first_run_clock[1:]))
    assert part.returncode == 0, part.stderr
    assert f"/joint_states: {counts['/joint_states'] // 2}" in part.stdout
