"""rosbag2 (sqlite3 / MCAP) reading and writing through `rosbags`, with clear errors.

Message types from a bag are only ever mapped to classes of an allowlist of message
packages (`MESSAGE_PACKAGES`); a bag cannot make this process import anything else.
"""
import importlib
from pathlib import Path
import re
from typing import Iterable, Iterator, Optional, Sequence, Union

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.serde import SerdeError
from rosbags.typesys import get_typestore, Stores

MESSAGE_PACKAGES = ('sensor_msgs', 'std_msgs', 'trajectory_msgs', 'geometry_msgs',
                    'diagnostic_msgs', 'rosgraph_msgs', 'builtin_interfaces')
STORAGE = {'sqlite3': StoragePlugin.SQLITE3, 'mcap': StoragePlugin.MCAP}
FILE_SUFFIXES = ('.mcap', '.db3')
_MSGTYPE = re.compile(r'^([a-z][a-z0-9_]*)/msg/([A-Z][A-Za-z0-9]*)$')
TYPESTORE = get_typestore(Stores.ROS2_JAZZY)


def absolute_topic(topic: str, namespace: str = '/') -> str:
    """Resolve a node-relative topic name the way a node in `namespace` would."""
    if topic.startswith('/'):
        return topic
    return namespace.rstrip('/') + '/' + topic


class BagError(ValueError):
    """A bag is missing, unreadable, or lacks what the caller needs (names what and where)."""


def message_class(msgtype: str):
    """The rclpy class for 'pkg/msg/Name', for allowlisted packages only.

    Raises:
        BagError: malformed name or a package outside MESSAGE_PACKAGES.
    """
    match = _MSGTYPE.match(msgtype)
    if not match or match.group(1) not in MESSAGE_PACKAGES:
        raise BagError(f'message type {msgtype!r} is not supported; packages: '
                       f'{list(MESSAGE_PACKAGES)}')
    module = importlib.import_module(f'{match.group(1)}.msg')
    return getattr(module, match.group(2))


def open_bag(path: Union[str, Path]) -> Reader:
    """Open a rosbag2 for reading: a bag folder (sqlite3 or MCAP storage, one file or split
    into several, as `ros2 bag record` writes it) or a single `.mcap` / `.db3` file.

    Raises:
        BagError: no such path, a folder without metadata.yaml, or an unknown storage
            format.
    """
    path = Path(path)
    if not path.exists():
        raise BagError(f'bag not found: {path}')
    if path.is_file():
        if path.suffix not in FILE_SUFFIXES:
            raise BagError(f'{path}: not a bag file; expected a rosbag2 folder or a file '
                           f'ending in {" or ".join(FILE_SUFFIXES)}')
    elif not (path / 'metadata.yaml').is_file():
        files = sorted(p.name for p in path.iterdir() if p.suffix in FILE_SUFFIXES)
        hint = f'; pass one of its files instead: {files}' if files else ''
        raise BagError(f'{path} is not a rosbag2 folder (no metadata.yaml){hint}')
    else:
        import yaml
        meta = yaml.safe_load((path / 'metadata.yaml').read_text()) or {}
        storage = (meta.get('rosbag2_bagfile_information') or {}).get('storage_identifier')
        if storage not in STORAGE:
            raise BagError(f'{path}: unknown storage format {storage!r}; expected one of '
                           f'{sorted(STORAGE)}')
    reader = Reader(path)
    try:
        reader.open()
    except Exception as exc:  # rosbags raises its own ReaderError types
        raise BagError(f'cannot open bag {path}: {exc}') from exc
    return reader


def playable_reason(msgtype: str) -> Optional[str]:
    """Why messages of `msgtype` cannot be published here, or None when they can.

    Returns:
        None, or a short reason: a package outside MESSAGE_PACKAGES, or one whose Python
        message module is not installed.
    """
    match = _MSGTYPE.match(msgtype)
    if not match or match.group(1) not in MESSAGE_PACKAGES:
        return 'message package not supported by this player'
    try:
        message_class(msgtype)
    except (ImportError, AttributeError):
        return 'message type not installed'
    return None


def topic_types(reader: Reader) -> dict[str, str]:
    return {c.topic: c.msgtype for c in reader.connections}


def require_topics(reader: Reader, required: dict[str, Sequence[str]]) -> None:
    """Check that each topic exists with one of the allowed message types.

    Raises:
        BagError: names the bag, the topic, what was expected and what the bag has.
    """
    types = topic_types(reader)
    problems = []      # every missing or mistyped topic at once, not only the first
    for topic, allowed in required.items():
        if topic not in types:
            problems.append(f'has no topic {topic!r} (expected {" or ".join(allowed)})')
        elif types[topic] not in allowed:
            problems.append(f'topic {topic!r} has type {types[topic]}, expected '
                            f'{" or ".join(allowed)}')
    if problems:
        raise BagError(f'bag {reader.path}: ' + '; '.join(problems) +
                       f'; topics: {sorted(types)}')


def read_messages(reader: Reader, topics: Iterable[str]) -> Iterator[tuple[str, int, bytes]]:
    """(topic, timestamp ns, CDR bytes) of the given topics in time order."""
    wanted = set(topics)
    connections = [c for c in reader.connections if c.topic in wanted]
    for connection, stamp, raw in reader.messages(connections=connections):
        yield connection.topic, stamp, raw


def _deserialize_prefix(raw: bytes, msgtype: str) -> tuple:
    """(message, end offset of the CDR payload) ignoring bytes after the message."""
    msgdef = TYPESTORE.get_msgdef(msgtype)
    func = msgdef.deserialize_cdr_le if raw[1] else msgdef.deserialize_cdr_be
    return func(memoryview(raw)[4:], 0, msgdef.cls, TYPESTORE)


def deserialize(raw: bytes, msgtype: str):
    """CDR bytes -> a rosbags message object (attributes as in the ROS message).

    Trailing bytes after the message are tolerated: rclpy's serializer (and so messages
    recorded from it) can leave a few past the end, which rosbags alone rejects.
    """
    try:
        return TYPESTORE.deserialize_cdr(raw, msgtype)
    except SerdeError as exc:
        if 'size mismatch' not in str(exc):
            raise
        return _deserialize_prefix(raw, msgtype)[0]


class BagWriter:
    """Write rclpy messages (serialized with rclpy) into a new rosbag2."""

    def __init__(self, path: Union[str, Path], storage: str = 'mcap') -> None:
        if storage not in STORAGE:
            raise BagError(f'unknown storage format {storage!r}; expected one of '
                           f'{sorted(STORAGE)}')
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f'output bag already exists: {self.path}')
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGE[storage])
        self._writer.open()
        self._connections: dict[str, object] = {}

    def write(self, topic: str, msgtype: str, stamp_ns: int, message=None,
              raw: Optional[bytes] = None) -> None:
        """Write `message` (an rclpy message) or already-serialized `raw` CDR bytes."""
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(topic, msgtype,
                                                                   typestore=TYPESTORE)
        if raw is None:
            from rclpy.serialization import serialize_message
            raw = serialize_message(message)
            raw = raw[:4 + _deserialize_prefix(raw, msgtype)[1]]   # drop trailing bytes
        self._writer.write(self._connections[topic], int(stamp_ns), raw)

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> 'BagWriter':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
