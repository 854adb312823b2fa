"""Camera subscriptions on their own node, executor and thread.

The policy node's executor then only serves joint states, the control timer, diagnostics
and services: 90 image messages a second (3 cameras at 30 Hz) no longer queue in front of
a control tick. Each image callback converts its message on this thread (OpenCV releases
the GIL while it decodes and resizes): `on_message` converts and stores the frame. The
subscriptions keep only the newest message (KEEP_LAST 1, best effort): when conversion
falls behind, older frames are dropped by DDS, never converted late.

Topics are resolved (namespace, remapping) by the policy node and passed fully qualified;
this node ignores the process's command-line remappings so they are not applied twice.
"""
import threading
import traceback
from typing import Any, Callable, Sequence

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

NEWEST_FRAME_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                              reliability=ReliabilityPolicy.BEST_EFFORT,
                              durability=DurabilityPolicy.VOLATILE)


class CameraInput:
    """Subscribes to the cameras on a node spun by its own executor thread.

    Args:
        context: the rclpy context of the policy node.
        node_name / namespace: this node's name and namespace.
        cameras: (camera name, message type, fully qualified topic) per camera.
        on_message: called on this thread as on_message(camera, msg) for each message.
        on_error: called as on_error(camera, text) when on_message raises anything but
            ValueError (which on_message reports itself); the thread goes on.
        make_executor: returns the executor to spin (e.g. SingleThreadedExecutor).
    """

    def __init__(self, context, node_name: str, namespace: str,
                 cameras: Sequence[tuple[str, Any, str]],
                 on_message: Callable[[str, Any], None],
                 on_error: Callable[[str, str], None],
                 make_executor: Callable[[], Any]) -> None:
        self._on_message = on_message
        self._on_error = on_error
        self.node = Node(node_name, namespace=namespace, context=context,
                         use_global_arguments=False, start_parameter_services=False)
        for camera, msg_type, topic in cameras:
            self.node.create_subscription(msg_type, topic, self._callback(camera),
                                          NEWEST_FRAME_QOS)
        self._executor = make_executor()
        self._executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name='env_actor_cameras',
                                        daemon=True)
        self._thread.start()

    def _callback(self, camera: str) -> Callable[[Any], None]:
        def callback(msg) -> None:
            try:
                self._on_message(camera, msg)
            except Exception as exc:      # the camera goes stale: the node holds
                self._on_error(camera, f'{type(exc).__name__}: {exc}')
                self.node.get_logger().error(traceback.format_exc(),
                                             throttle_duration_sec=5.0)
        return callback

    def _spin(self) -> None:
        context = self.node.context
        while not self._stop.is_set() and context.ok():
            try:
                self._executor.spin_once(timeout_sec=0.1)
            except Exception:             # e.g. the context shut down under us
                if context.ok() and not self._stop.is_set():
                    raise
                return

    def close(self) -> None:
        """Stop the thread, then destroy the node (no callback runs after this)."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
