"""Play a rosbag2 over DDS like `ros2 bag play --clock`, optionally recording outputs.

    env-actor-replay BAG [--rate 1.0] [--start-offset S] [--topics T ...]
        [--remap OLD:=NEW ...] [--clock-frequency 100] [--no-clock]
        [--record OUT --record-topics T ...] [--storage mcap|sqlite3] [--tail 1.0]

Messages are published already serialized (the bag's own CDR bytes) at their recorded
timing scaled by --rate; /clock carries the bag time, so a node with use_sim_time runs
exactly as under `ros2 bag play --clock`. With --record, the listed topics (e.g. the
node's trajectory and command outputs) are written to a new bag stamped with bag time.

BAG is a bag folder (single or split files) or a bare `.mcap`/`.db3` file. Not played,
with one line naming each topic and why: message types outside the player's packages
(/rosout, /parameter_events, /tf without tf2_msgs, rosbag2's split events, ...), the
bag's own /clock while the player publishes /clock, the recorded topics, and the
node's output types (JointTrajectory, Float64MultiArray, DiagnosticArray) unless
--play-outputs: a replay must not command the controllers beside the node under test.
"""
from pathlib import Path
import threading
import time
from typing import Optional, Sequence

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

from builtin_interfaces.msg import Time
from rosgraph_msgs.msg import Clock

from env_actor.tools.bag_io import (BagError, BagWriter, message_class, open_bag,
                                    playable_reason, read_messages, topic_types)
from env_actor.tools.cli import exit_codes, tool_parser

# what the policy node publishes (and never subscribes to): not played unless asked for,
# so that a recorded command never reaches the robot's controllers beside the node's own
NODE_OUTPUT_TYPES = ('trajectory_msgs/msg/JointTrajectory', 'std_msgs/msg/Float64MultiArray',
                     'diagnostic_msgs/msg/DiagnosticArray')


def select_topics(types: dict[str, str], topics: Optional[Sequence[str]] = None,
                  publish_clock: bool = True, play_outputs: bool = False,
                  exclude: Sequence[str] = ()) -> tuple[list[str], dict[str, str]]:
    """Choose the topics to play.

    Args:
        types: topic -> message type of the bag.
        topics: topics asked for explicitly (None: all that can be played).
        publish_clock: the player publishes /clock, so the bag's own is never played.
        play_outputs: also play topics of the node's output types (commands,
            trajectories, diagnostics), which are skipped by default.
        exclude: topics never to play (e.g. the ones being recorded).

    Returns:
        (topics to play, {skipped topic: reason}).

    Raises:
        BagError: an explicitly asked topic is missing or cannot be played.
    """
    if topics:
        unknown = [t for t in topics if t not in types]
        if unknown:
            raise BagError(f'bag has no topics {unknown}; topics: {sorted(types)}')
        bad = {t: playable_reason(types[t]) for t in topics if playable_reason(types[t])}
        if bad:
            raise BagError('cannot play ' + ', '.join(f'{t} ({types[t]}: {why})'
                                                      for t, why in bad.items()))
        if publish_clock and '/clock' in topics:
            raise BagError('/clock is published by the player; pass --no-clock to play '
                           "the bag's own /clock instead")
        return list(topics), {}
    selected, skipped = [], {}
    for topic in sorted(types):
        reason = playable_reason(types[topic])
        if reason:
            skipped[topic] = f'{types[topic]}: {reason}'
        elif topic == '/clock' and publish_clock:
            skipped[topic] = 'the player publishes /clock (--no-clock plays this one)'
        elif topic in exclude:
            skipped[topic] = 'recorded from the node (--record-topics)'
        elif types[topic] in NODE_OUTPUT_TYPES and not play_outputs:
            skipped[topic] = (f'{types[topic].rsplit("/", 1)[1]}: the node under test '
                              'publishes this type (--play-outputs plays it)')
        else:
            selected.append(topic)
    return selected, skipped


REPORT_EVERY_S = 5.0    # a progress line this often (wall time)


def ns_to_time(stamp_ns: int) -> Time:
    return Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)


class Recorder:
    """Writes raw messages of some topics into a bag, stamped with the current bag time."""

    def __init__(self, node, path: Path, topics: dict[str, str], storage: str,
                 bag_time) -> None:
        self._writer = BagWriter(path, storage)
        self._lock = threading.Lock()
        self.counts = {topic: 0 for topic in topics}
        for topic, msgtype in topics.items():
            node.create_subscription(message_class(msgtype), topic,
                                     self._callback(topic, msgtype, bag_time),
                                     QoSProfile(depth=100), raw=True)

    def _callback(self, topic: str, msgtype: str, bag_time):
        def write(raw: bytes) -> None:
            with self._lock:
                self._writer.write(topic, msgtype, bag_time(), raw=raw)
                self.counts[topic] += 1
        return write

    def close(self) -> None:
        with self._lock:
            self._writer.close()


def play(bag: Path, rate: float = 1.0, start_offset: float = 0.0,
         topics: Optional[Sequence[str]] = None, remap: Optional[dict] = None,
         clock_frequency: float = 100.0, publish_clock: bool = True,
         record: Optional[Path] = None, record_topics: Optional[dict] = None,
         storage: str = 'mcap', tail: float = 1.0, args: Optional[list] = None,
         wait_subscribers: float = 5.0, play_outputs: bool = False,
         log=print) -> dict:
    """Play `bag`; returns counts of published (and recorded) messages.

    Topics that cannot or should not be played are skipped (see `select_topics`), with
    one line through `log` naming each and why.

    Raises:
        BagError: missing/unknown bag, or explicitly asked topics that are missing or
            cannot be played.
    """
    if rate <= 0:
        raise ValueError(f'--rate must be > 0, got {rate}')
    reader = open_bag(bag)
    try:
        selected, skipped = select_topics(topic_types(reader), topics, publish_clock,
                                          play_outputs, tuple(record_topics or ()))
    except BagError as exc:
        reader.close()
        raise BagError(f'{bag}: {exc}') from None
    types = topic_types(reader)
    if skipped:
        log(f'not playing {len(skipped)} topics: ' +
            '; '.join(f'{topic} ({why})' for topic, why in skipped.items()))
    remap = remap or {}
    context = rclpy.Context()
    rclpy.init(args=args, context=context)
    node = rclpy.create_node('env_actor_bag_player', context=context)
    publishers = {t: node.create_publisher(message_class(types[t]), remap.get(t, t),
                                           QoSProfile(depth=100,
                                                      reliability=ReliabilityPolicy.RELIABLE))
                  for t in selected}
    clock_pub = node.create_publisher(Clock, '/clock', QoSProfile(depth=10))
    start_ns = reader.start_time + int(start_offset * 1e9)
    state = {'bag_ns': start_ns}
    recorder = (Recorder(node, record, record_topics or {}, storage, lambda: state['bag_ns'])
                if record else None)
    spinning = threading.Event()
    spin_thread = threading.Thread(target=lambda: _spin(node, context, spinning), daemon=True)
    spin_thread.start()
    counts = {t: 0 for t in selected}
    deadline = time.monotonic() + wait_subscribers    # like waiting for the reader to match
    while time.monotonic() < deadline and not all(
            p.get_subscription_count() > 0 for p in publishers.values()):
        time.sleep(0.05)
    time.sleep(0.2)
    wall0 = time.monotonic()

    def bag_now() -> int:
        return start_ns + int((time.monotonic() - wall0) * rate * 1e9)

    next_clock = 0.0
    next_report = time.monotonic() + REPORT_EVERY_S
    total_s = (reader.end_time - start_ns) * 1e-9
    try:
        for topic, stamp, raw in read_messages(reader, selected):
            if time.monotonic() >= next_report:
                next_report += REPORT_EVERY_S
                log(f'played {(stamp - start_ns) * 1e-9:.0f} of {total_s:.0f} s '
                    f'({sum(counts.values())} messages)')
            if stamp < start_ns:
                continue
            while True:
                now_ns = bag_now()
                if publish_clock and time.monotonic() >= next_clock:
                    state['bag_ns'] = min(now_ns, stamp)
                    clock_pub.publish(Clock(clock=ns_to_time(state['bag_ns'])))
                    next_clock = time.monotonic() + 1.0 / clock_frequency
                if now_ns >= stamp:
                    break
                time.sleep(min((stamp - now_ns) * 1e-9 / rate, max(0.0, next_clock -
                                                                     time.monotonic()), 0.01))
            state['bag_ns'] = stamp
            publishers[topic].publish(raw)
            counts[topic] += 1
        end = time.monotonic() + tail                  # let the node finish its last ticks
        while time.monotonic() < end:
            state['bag_ns'] = bag_now()
            if publish_clock:
                clock_pub.publish(Clock(clock=ns_to_time(state['bag_ns'])))
            time.sleep(1.0 / clock_frequency)
    finally:
        reader.close()
        spinning.set()
        spin_thread.join(timeout=5.0)
        if recorder is not None:
            recorder.close()
            counts.update({f'recorded:{k}': v for k, v in recorder.counts.items()})
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    return counts


def _spin(node, context, stop: threading.Event) -> None:
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    while not stop.is_set() and context.ok():
        executor.spin_once(timeout_sec=0.05)


def parse_remaps(items: Sequence[str]) -> dict:
    remap = {}
    for item in items:
        if ':=' not in item:
            raise ValueError(f'--remap expects OLD:=NEW, got {item!r}')
        old, new = item.split(':=', 1)
        remap[old] = new
    return remap


@exit_codes
def main(args: Optional[Sequence[str]] = None) -> int:
    parser = tool_parser(
        description='Play a rosbag2 over DDS with /clock (like ros2 bag play --clock) and '
                    'optionally record output topics to a new bag.')
    parser.add_argument('bag', type=Path,
                        help='rosbag2 folder, or a single .mcap / .db3 file')
    parser.add_argument('--rate', type=float, default=1.0, help='playback speed factor')
    parser.add_argument('--start-offset', type=float, default=0.0,
                        help='start this many seconds into the bag')
    parser.add_argument('--topics', nargs='*', default=None,
                        help='topics to play (default: all the player can play)')
    parser.add_argument('--remap', nargs='*', default=[], help='topic remaps OLD:=NEW')
    parser.add_argument('--clock-frequency', type=float, default=100.0,
                        help='/clock publish rate, Hz')
    parser.add_argument('--no-clock', action='store_true', help='do not publish /clock')
    parser.add_argument('--record', type=Path, default=None,
                        help='output bag folder for --record-topics (default: record '
                             'nothing)')
    parser.add_argument('--record-topics', nargs='*', default=[],
                        help='TOPIC or TOPIC=TYPE (default type: JointTrajectory for '
                             '*trajectory*, Float64MultiArray otherwise)')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap',
                        help='storage format of --record')
    parser.add_argument('--tail', type=float, default=1.0,
                        help='seconds of /clock after the last message')
    parser.add_argument('--play-outputs', action='store_true',
                        help='also play command, trajectory and diagnostics topics, which '
                             'are skipped by default because the node under test '
                             'publishes them')
    parser.add_argument('--wait-subscribers', type=float, default=5.0,
                        help='wait up to this long for every topic to have a subscriber')
    opts, ros_args = parser.parse_known_args(args)
    record_topics = {}
    for item in opts.record_topics:
        topic, _, msgtype = item.partition('=')
        record_topics[topic] = msgtype or ('trajectory_msgs/msg/JointTrajectory'
                                           if 'trajectory' in topic
                                           else 'std_msgs/msg/Float64MultiArray')
    try:
        counts = play(opts.bag, opts.rate, opts.start_offset, opts.topics,
                      parse_remaps(opts.remap), opts.clock_frequency, not opts.no_clock,
                      opts.record, record_topics, opts.storage, opts.tail, ros_args,
                      opts.wait_subscribers, opts.play_outputs)
    except (BagError, ValueError) as exc:
        parser.exit(2, f'env-actor-replay: error: {exc}\n')
    for topic, count in sorted(counts.items()):
        print(f'{topic}: {count}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
