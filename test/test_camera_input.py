"""Cameras on their own node and executor thread: the node's namespace and remappings
still decide the topics, a raising callback is reported and the thread goes on, and
nothing is delivered after close. Real DDS on loopback; nothing mocked."""
import os
from pathlib import Path
import time

import cv2
import numpy as np
import pytest

from lifecycle_msgs.msg import Transition
from sensor_msgs.msg import CompressedImage

from env_actor.ros.camera_input import CameraInput
from env_actor.ros.policy_node import make_ros_executor, PolicyNode
from env_actor.runtime.frame_ring import RingFrame
from env_actor.runtime.realtime import scheduling_policy
from ros_harness import Harness

ROOT = Path(__file__).resolve().parent.parent
PARAMS = ROOT / 'test' / 'fixtures' / 'node_params.yaml'
POLICY = ROOT / 'env_actor' / 'policy' / 'policies' / 'mlp_chunk' / 'mlp_chunk.yaml'


def jpeg_message(value: int) -> CompressedImage:
    image = np.full((48, 64, 3), value, np.uint8)
    return CompressedImage(format='jpeg', data=cv2.imencode('.jpg', image)[1].tobytes())


def publish_until(harness: Harness, topic: str, done, what: str, value: int = 90) -> None:
    publisher = harness.probe.create_publisher(CompressedImage, topic, 10)
    deadline = time.monotonic() + 20
    while not done():
        assert time.monotonic() < deadline, f'timed out waiting for {what}'
        publisher.publish(jpeg_message(value))
        time.sleep(0.05)
    harness.probe.destroy_publisher(publisher)


@pytest.mark.parametrize('kind', ['events', 'single'])
def test_raising_callback_is_reported_and_later_frames_still_arrive(kind):
    harness = Harness()
    received, errors = [], []

    def on_message(camera, msg):
        if not errors:
            raise RuntimeError('boom')
        received.append((camera, bytes(msg.data)))

    cameras = CameraInput(harness.context, 'cams', '/robot',
                          [('head', CompressedImage, '/robot/head/jpeg')], on_message,
                          lambda camera, text: errors.append((camera, text)),
                          lambda: make_ros_executor(kind, harness.context))
    try:
        publish_until(harness, '/robot/head/jpeg', lambda: received, 'a frame after an error')
        assert errors[0] == ('head', 'RuntimeError: boom')
        assert received[0][0] == 'head'
    finally:
        cameras.close()
    count = len(received)
    publisher = harness.probe.create_publisher(CompressedImage, '/robot/head/jpeg', 10)
    for _ in range(10):
        publisher.publish(jpeg_message(1))
        time.sleep(0.02)
    assert len(received) == count          # closed: no callback any more
    harness.close()


@pytest.mark.parametrize('camera_executor', ['events', 'shared'])
def test_camera_topics_follow_the_node_namespace_and_remapping(camera_executor):
    """`-r left/...:=/cams/left` given to the policy node moves the camera subscription;
    the others resolve in the node's namespace; frames land in the frame rings. With
    control_thread_priority the control thread may run at SCHED_FIFO (where permitted),
    the camera thread and the inference process it started never do. `shared` subscribes
    on the policy node itself (a conversion worker thread converts)."""
    harness = Harness('robot/env_actor')
    node = PolicyNode(context=harness.context, cli_args=[
        '--ros-args', '--params-file', str(PARAMS), '-p', f'policy_yaml:={POLICY}',
        '-p', 'autostart:=false', '-p', 'control_thread_priority:=40',
        '-p', f'camera_executor:={camera_executor}', '-r', '__ns:=/robot',
        '-r', 'left/image_raw/compressed:=/cams/left'])
    harness.add_node(node)
    try:
        assert harness.transition(Transition.TRANSITION_CONFIGURE)
        graph = harness.probe
        subscriber = 'env_actor' if camera_executor == 'shared' else 'env_actor_cameras'
        for topic in ('/cams/left', '/robot/head/image_raw/compressed'):
            harness.wait_for(lambda: any(
                (i.node_name, i.node_namespace) == (subscriber, '/robot')
                for i in graph.get_subscriptions_info_by_topic(topic)), 20, topic)
        assert not graph.get_subscriptions_info_by_topic('/robot/left/image_raw/compressed')
        cache = node.executor_core.cache
        publish_until(harness, '/cams/left', lambda: cache.get('left') is not None,
                      'a converted frame', value=200)
        frame = cache.get('left')
        assert isinstance(frame, RingFrame) and frame.array.shape == (3, 240, 320)
        assert abs(int(frame.array.mean()) - 200) <= 2
        values = {kv.key: kv.value for kv in node.diagnostics().values}
        scheduling = values['control_thread_scheduling']
        assert scheduling == 'SCHED_FIFO 40' or 'SCHED_FIFO 40 refused' in scheduling
        fifo = scheduling == 'SCHED_FIFO 40'
        assert (scheduling_policy(harness._thread.native_id) == os.SCHED_FIFO) == fifo
        started = [int(values['inference_pid'])]
        if node._cameras is not None:
            started.append(node._cameras._thread.native_id)
        for tid in started:
            assert scheduling_policy(tid) == os.SCHED_OTHER
    finally:
        assert harness.transition(Transition.TRANSITION_CLEANUP)
        harness.close()
