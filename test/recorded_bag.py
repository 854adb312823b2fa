"""Write a bag laid out the way `ros2 bag record -a -s mcap --max-bag-duration D` (Jazzy)
writes one on a robot: split into `<name>_0.mcap`, `<name>_1.mcap`, one metadata.yaml
listing both files (version 9, `ros_distro: jazzy`), and beside the robot's own topics
the ones every live ROS graph has: /rosout, /parameter_events, /tf, /tf_static,
rosbag2's /events/write_split, /diagnostics, a simulator's /clock (its own time base,
starting near zero, not the bag's receive time) and the controller command topic.

Only the layout is imitated; the messages are real CDR of the real types, so reading it
exercises the same code paths as a recorded bag.
"""
from pathlib import Path
import shutil
import tempfile

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores
import yaml

from env_actor.tools.bag_io import open_bag, read_messages, topic_types
from env_actor.tools.synthetic_bag import write_episode

TS = get_typestore(Stores.ROS2_JAZZY)
EXTRA_TYPES = {'/rosout': 'rcl_interfaces/msg/Log',
               '/parameter_events': 'rcl_interfaces/msg/ParameterEvent',
               '/tf': 'tf2_msgs/msg/TFMessage', '/tf_static': 'tf2_msgs/msg/TFMessage',
               '/events/write_split': 'rosbag2_interfaces/msg/WriteSplitEvent',
               '/clock': 'rosgraph_msgs/msg/Clock'}


def _time(stamp_ns: int):
    return TS.types['builtin_interfaces/msg/Time'](sec=stamp_ns // 10 ** 9,
                                                   nanosec=stamp_ns % 10 ** 9)


def _header(stamp_ns: int, frame: str):
    return TS.types['std_msgs/msg/Header'](stamp=_time(stamp_ns), frame_id=frame)


def _extra_messages(start_ns: int, duration: float, name: str, split_ns: int) -> list:
    """(topic, stamp ns, message) of the graph's own topics."""
    types = TS.types
    out = []
    for i in range(int(duration)):                          # 1 Hz log lines
        stamp = start_ns + i * 10 ** 9
        out.append(('/rosout', stamp, types['rcl_interfaces/msg/Log'](
            stamp=_time(stamp), level=20, name='robot_state_publisher', msg=f'tick {i}',
            file='rsp.cpp', function='publish', line=42)))
    out.append(('/parameter_events', start_ns, types['rcl_interfaces/msg/ParameterEvent'](
        stamp=_time(start_ns), node='/controller_manager', new_parameters=[],
        changed_parameters=[], deleted_parameters=[])))
    transform = types['geometry_msgs/msg/TransformStamped']
    vector, quat = types['geometry_msgs/msg/Vector3'], types['geometry_msgs/msg/Quaternion']
    for i in range(int(duration * 50)):                     # 50 Hz /tf
        stamp = start_ns + i * 20_000_000
        out.append(('/tf', stamp, types['tf2_msgs/msg/TFMessage'](transforms=[transform(
            header=_header(stamp, 'base_link'), child_frame_id='head_camera',
            transform=types['geometry_msgs/msg/Transform'](
                translation=vector(x=0.1, y=0.0, z=0.5), rotation=quat(x=0, y=0, z=0, w=1)))])))
    out.append(('/tf_static', start_ns, types['tf2_msgs/msg/TFMessage'](transforms=[])))
    out.append(('/events/write_split', split_ns,
                types['rosbag2_interfaces/msg/WriteSplitEvent'](
                    closed_file=f'{name}_0.mcap', opened_file=f'{name}_1.mcap',
                    node_name='/rosbag2_recorder')))
    for i in range(int(duration * 100)):                    # the simulator's clock
        stamp = start_ns + i * 10_000_000
        out.append(('/clock', stamp, types['rosgraph_msgs/msg/Clock'](
            clock=_time(5_000_000 + i * 10_000_000))))
    return out


def write_recorded_bag(folder: Path, joints, duration: float = 4.0,
                       size: tuple[int, int] = (64, 48)) -> dict:
    """Write the bag into `folder` (must not exist); returns message counts per topic.

    Args:
        folder: the bag folder; its files are `<folder name>_0.mcap` and `_1.mcap`.
        joints: joint names on /joint_states.
        duration: seconds of recording; the split is at the middle.
        size: camera image size (raw rgb8 on /<camera>/image_raw).
    """
    name = folder.name
    start_ns = 1_700_000_000_000_000_000
    split_ns = start_ns + int(duration / 2 * 1e9)
    with tempfile.TemporaryDirectory() as tmp:
        robot = Path(tmp) / 'robot'
        write_episode(robot, joints, duration, 'mcap', size, transport='raw',
                      start_ns=start_ns)
        reader = open_bag(robot)
        types = topic_types(reader)
        messages = [(t, s, raw) for t, s, raw in read_messages(reader, list(types))]
        reader.close()
        for topic, stamp, msg in _extra_messages(start_ns, duration, name, split_ns):
            types[topic] = EXTRA_TYPES[topic]
            messages.append((topic, stamp, TS.serialize_cdr(msg, EXTRA_TYPES[topic])))
        messages.sort(key=lambda m: m[1])
        parts = [[m for m in messages if m[1] < split_ns],
                 [m for m in messages if m[1] >= split_ns]]
        folder.mkdir(parents=True)
        files, counts = [], {}
        for index, part in enumerate(parts):
            part_dir = Path(tmp) / f'part{index}'
            writer = Writer(part_dir, version=9, storage_plugin=StoragePlugin.MCAP)
            writer.open()
            connections = {}
            for topic, stamp, raw in part:
                if topic not in connections:
                    connections[topic] = writer.add_connection(topic, types[topic],
                                                               typestore=TS)
                writer.write(connections[topic], stamp, raw)
                counts[topic] = counts.get(topic, 0) + 1
            writer.close()
            file_name = f'{name}_{index}.mcap'
            shutil.move(part_dir / f'part{index}.mcap', folder / file_name)
            files.append({'path': file_name, 'starting_time': {
                'nanoseconds_since_epoch': part[0][1]},
                'duration': {'nanoseconds': part[-1][1] - part[0][1]},
                'message_count': len(part)})
            if index == 0:
                meta = yaml.safe_load((part_dir / 'metadata.yaml').read_text())
    info = meta['rosbag2_bagfile_information']
    topic_meta = {}
    for part_dir_meta in [info]:
        for entry in part_dir_meta['topics_with_message_count']:
            topic_meta[entry['topic_metadata']['name']] = entry['topic_metadata']
    for topic in types:
        topic_meta.setdefault(topic, {'name': topic, 'type': types[topic],
                                      'serialization_format': 'cdr',
                                      'offered_qos_profiles': [],
                                      'type_description_hash': ''})
    info.update({
        'ros_distro': 'jazzy', 'relative_file_paths': [f['path'] for f in files],
        'files': files, 'message_count': sum(counts.values()),
        'starting_time': {'nanoseconds_since_epoch': messages[0][1]},
        'duration': {'nanoseconds': messages[-1][1] - messages[0][1]},
        'topics_with_message_count': [{'message_count': counts[t],
                                       'topic_metadata': topic_meta[t]}
                                      for t in sorted(counts)]})
    (folder / 'metadata.yaml').write_text(yaml.safe_dump(meta, sort_keys=False))
    return counts
