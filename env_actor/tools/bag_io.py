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
    """Open a rosbag2 folder (sqlite3 or MCAP storage) for reading.

    Raises:
        BagError: no such folder, no metadata.yaml, or an unknown storage format.
    """
    path = Path(path)
    if not path.exists():
        raise BagError(f'bag not found: {path}')
    if not (path / 'metadata.yaml').is_file():
        raise BagError(f'{path} is not a rosbag2 folder (no metadata.yaml)')
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


def topic_types(reader: Reader) -> dict[str, str]:
    return {c.topic: c.msgtype for c in reader.connections}


def require_topics(reader: Reader, required: dict[str, Sequence[str]]) -> None:
    """Check that each topic exists with one of the allowed message types.

    Raises:
        BagError: names the bag, the topic, what was expected and what the bag has.
    """
    types = topic_types(reader)
    for topic, allowed in required.items():
        if topic not in types:
            raise BagError(f'bag {reader.path} has no topic {topic!r} (expected '
                           f'{" or ".join(allowed)}); topics: {sorted(types)}')
        if types[topic] not in allowed:
            raise BagError(f'bag {reader.path}: topic {topic!r} has type {types[topic]}, '
                           f'expected {" or ".join(allowed)}')


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
