"""The env_actor policy node: a lifecycle node that runs a chunking policy on a robot.

Lifecycle: configure = read parameters, build + warm up the policy, create subscriptions,
publishers and timers; activate = start commanding (new episode); deactivate = stop
commanding (a hold trajectory is sent); cleanup / shutdown = release everything.
`autostart: true` configures and activates at start-up. `~/reset` (std_srvs/Trigger)
starts a new episode.

Threading contract (one SingleThreadedExecutor thread + two worker threads):
    * executor thread: every callback. Joint-state callbacks convert inline (a few
      microseconds); image callbacks only hand the message to the ConversionWorker; the
      control timer calls `ChunkExecutor.on_tick` and publishes; diagnostics, `~/reset`
      and lifecycle transitions run here too. Nothing here waits for inference.
    * conversion thread (ConversionWorker): decodes/resizes the newest frame per camera
      and puts it in the ObservationCache (own lock); errors go to `_input_errors`.
    * inference: by default a child process (ProcessInferenceWorker, `inference_mode:
      process`) that builds and runs the policy, so it never holds this process's GIL;
      `inference_mode: thread` runs it on a ThreadedInferenceWorker thread instead.
    `on_tick` and `reset_episode` serialise on the executor's lock.
rclpy's MultiThreadedExecutor is not used: on 2 cores it burned a whole core and dropped
most messages (docs/node.md).
"""
from collections import deque
import math
import sys
import threading
import time
from typing import Optional

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, qos_profile_sensor_data, ReliabilityPolicy

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from env_actor.policy.utils.loader import build_policy_bundle, load_policy_config
from env_actor.policy.utils.spec import PolicySpec
from env_actor.ros.conversion_worker import ConversionWorker
from env_actor.ros.conversions import (action_to_command, chunk_to_trajectory,
                                       diagnostic_status, JointStateConverter)
from env_actor.ros.params import DEFAULTS, NodeConfig, read_node_config
from env_actor.runtime.factory import build_executor, make_executor
from env_actor.runtime.inference_process import ProcessInferenceWorker
from env_actor.runtime.observation import PROPRIO

COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class PolicyNode(LifecycleNode):
    """Subscribes to joint states and cameras, publishes safe action chunks."""

    def __init__(self, node_name: str = 'env_actor', **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.declare_parameter('autostart', DEFAULTS['autostart'])
        self.config: Optional[NodeConfig] = None
        self.spec: Optional[PolicySpec] = None
        self.executor_core = None
        self.joints: Optional[JointStateConverter] = None
        self.lifecycle_state = 'unconfigured'
        self.last_error = ''
        self._active = False
        self._input_errors: dict[str, str] = {}
        self._error_lock = threading.Lock()
        self._last_counts: dict[str, int] = {}
        self._last_diag_time: Optional[float] = None
        self._tick_wall: deque = deque(maxlen=400)
        self._was_commanding = False
        self._converter: Optional[ConversionWorker] = None
        self._entities: list = []
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._diag_timer = None
        self._reset_srv = self.create_service(Trigger, '~/reset', self._on_reset)

    # -- lifecycle --------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as exc:  # a bad YAML / checkpoint must fail the transition only
            self.last_error = f'configure failed: {exc}'
            self.get_logger().error(self.last_error)
            self._release()
            return TransitionCallbackReturn.FAILURE
        self.lifecycle_state = 'inactive'
        self.last_error = ''
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        cfg = read_node_config(self)
        if cfg.gil_switch_interval_ms > 0:   # let the control thread take the GIL sooner
            sys.setswitchinterval(cfg.gil_switch_interval_ms / 1000.0)
        config = load_policy_config(cfg.policy_yaml)
        spec = PolicySpec.from_config(config['policy'], cfg.policy_yaml)
        joints = JointStateConverter(cfg.state_joint_names, cfg.state_fields)
        if joints.dim != spec.state_dim:
            raise ValueError(f'state_joint_names x state_fields gives {joints.dim} values but '
                             f'the policy state_dim is {spec.state_dim}')
        if len(cfg.action_joint_names) != spec.action_dim:
            raise ValueError(f'action_joint_names has {len(cfg.action_joint_names)} joints '
                             f'but the policy action_dim is {spec.action_dim}')
        if sorted(cfg.values['cameras']) != sorted(spec.cameras):
            raise ValueError(f"parameter cameras {cfg.values['cameras']} does not match the "
                             f'policy cameras {list(spec.cameras)}')
        settings = cfg.runtime_settings()
        started = time.perf_counter()
        if cfg.inference_mode == 'process':
            worker = ProcessInferenceWorker(
                cfg.policy_yaml, cfg.device, (spec.action_chunk_size, spec.action_dim),
                guided=cfg.algorithm == 'rtc', torch_threads=int(cfg.torch_threads),
                nice=int(cfg.inference_nice))
            try:
                self.executor_core = make_executor(spec, settings, worker,
                                                   worker.startup_latency_s)
            except Exception:
                worker.close()
                raise
        else:
            if cfg.torch_threads > 0:
                import torch
                torch.set_num_threads(int(cfg.torch_threads))
            bundle = build_policy_bundle(cfg.policy_yaml, map_location=cfg.device)
            bundle.policy.freeze_all_model_params()
            bundle.policy.warmup()
            self.executor_core = build_executor(bundle, settings)
        self.get_logger().info(f'policy {config["policy"]["type"]!r} built and warmed up in '
                               f'{time.perf_counter() - started:.2f} s '
                               f'(inference in a {cfg.inference_mode})')
        self.config, self.spec, self.joints = cfg, spec, joints
        self._create_entities()

    def _create_entities(self) -> None:
        cfg = self.config
        sub = self.create_subscription
        self._converter = ConversionWorker(self._store, self._store_error)
        self._entities.append(sub(JointState, cfg.joint_states_topic, self._on_joint_state,
                                  qos_profile_sensor_data))
        for cam in cfg.cameras:
            msg_type = Image if cam.transport == 'raw' else CompressedImage
            callback = self._image_callback(cam.name, cam.convert)
            self._entities.append(sub(msg_type, cam.topic, callback, qos_profile_sensor_data))
        if cfg.prompt_topic:
            self._entities.append(sub(String, cfg.prompt_topic, self._on_prompt, 10))
        self._traj_pub = (self.create_publisher(JointTrajectory, cfg.trajectory_topic,
                                                COMMAND_QOS)
                          if cfg.publish_trajectory else None)
        self._cmd_pub = (self.create_publisher(Float64MultiArray, cfg.commands_topic,
                                               COMMAND_QOS)
                         if cfg.publish_commands else None)
        self._entities += [p for p in (self._traj_pub, self._cmd_pub) if p is not None]
        self._control_timer = self.create_timer(cfg.control_period, self._on_control_tick)
        self._entities.append(self._control_timer)
        self._diag_timer = self.create_timer(cfg.diagnostics_period, self._publish_diagnostics)
        self._entities.append(self._diag_timer)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.executor_core.reset_episode(self._action_reference())
        self._active = True
        self.lifecycle_state = 'active'
        self.get_logger().info(f'commanding with {self.config.algorithm} at '
                               f'{self.config.control_frequency:g} Hz')
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._send_hold()
        self.lifecycle_state = 'inactive'
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.lifecycle_state = 'unconfigured'
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._active:
            self._active = False
            self._send_hold()
        self._release()
        self.lifecycle_state = 'finalized'
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        self._active = False
        for entity in self._entities:
            if hasattr(entity, 'cancel'):
                entity.cancel()
                self.destroy_timer(entity)
            elif hasattr(entity, 'publish'):
                self.destroy_publisher(entity)
            else:
                self.destroy_subscription(entity)
        self._entities = []
        if self._converter is not None:
            self._converter.close()
            self._converter = None
        if self.executor_core is not None:
            self.executor_core.worker.close()
        self.executor_core = None

    # -- sensor callbacks: conversion only -----------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _store(self, source: str, value, stamp: float) -> None:
        core = self.executor_core
        if core is None:
            return
        core.cache.update(source, value, stamp)
        if source in self._input_errors:
            with self._error_lock:
                self._input_errors.pop(source, None)

    def _store_error(self, source: str, message: str) -> None:
        with self._error_lock:
            self._input_errors[source] = message

    def _on_joint_state(self, msg: JointState) -> None:
        if self.executor_core is None:
            return
        try:
            self._store(PROPRIO, self.joints.to_vector(msg), self._now())
        except ValueError as exc:
            self._store_error(PROPRIO, str(exc))

    def _image_callback(self, camera: str, convert):
        def callback(msg) -> None:
            converter = self._converter
            if converter is not None:
                converter.submit(camera, lambda: convert(msg, self.spec.image_height,
                                                         self.spec.image_width), self._now())
        return callback

    def _on_prompt(self, msg: String) -> None:
        if self.executor_core is not None:
            self._store('prompt', msg.data, self._now())

    # -- control loop ----------------------------------------------------------------------
    def _on_control_tick(self) -> None:
        core = self.executor_core
        if not self._active or core is None:
            return
        self._tick_wall.append(time.monotonic())
        result = core.on_tick(self._now())
        if result.action is None:
            if self._was_commanding and result.state in ('stale', 'unsafe'):
                self._send_hold()
            self._was_commanding = False
            return
        self._was_commanding = True
        if self._cmd_pub is not None:
            self._cmd_pub.publish(action_to_command(result.action))
        if self._traj_pub is not None and result.new_chunk:
            actions = np.vstack([result.action[None], core.planned_actions()])
            self._traj_pub.publish(self._trajectory(actions))

    def _trajectory(self, actions: np.ndarray) -> JointTrajectory:
        stamp = (self.get_clock().now().to_msg() if self.config.trajectory_stamp == 'now'
                 else None)
        return chunk_to_trajectory(actions, self.config.action_joint_names,
                                   self.config.control_period, stamp)

    def _send_hold(self) -> None:
        """Replace the controller's trajectory by the last safe action (stop moving)."""
        core = self.executor_core
        last = None if core is None else core.safety.last
        if last is not None and self._traj_pub is not None:
            self._traj_pub.publish(self._trajectory(last[None]))

    def _action_reference(self) -> Optional[np.ndarray]:
        """Measured positions of the action joints, when proprio holds them."""
        proprio = self.executor_core.cache.get(PROPRIO)
        if proprio is None or 'position' not in self.config.state_fields:
            return None
        offset = self.config.state_fields.index('position') * len(self.joints.names)
        index = {n: offset + i for i, n in enumerate(self.joints.names)}
        if not all(n in index for n in self.config.action_joint_names):
            return None
        return np.asarray([proprio[index[n]] for n in self.config.action_joint_names])

    def _on_reset(self, request, response):
        if self.executor_core is None:
            response.success, response.message = False, 'not configured'
            return response
        self.executor_core.reset_episode(self._action_reference())
        response.success, response.message = True, 'new episode started'
        return response

    # -- diagnostics -----------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [self.diagnostics()]
        self._diag_pub.publish(array)

    def diagnostics(self) -> DiagnosticStatus:
        core = self.executor_core
        values: dict = {'lifecycle_state': self.lifecycle_state}
        if core is None:
            level = DiagnosticStatus.ERROR if self.last_error else DiagnosticStatus.WARN
            return diagnostic_status('env_actor: policy', level,
                                     self.last_error or 'not configured', values, self.get_name())
        stats = core.stats
        p50, p95 = stats.latency_percentiles()
        now = self._now()
        values.update({
            'algorithm': self.config.algorithm, 'state': core.state, 'reason': core.reason,
            'inference_latency_p50_ms': f'{p50 * 1e3:.1f}',
            'inference_latency_p95_ms': f'{p95 * 1e3:.1f}',
            'est_delay_steps': core.est_delay, 'last_delay_steps': core.delay.last,
            'inferences': stats.inferences, 'policy_errors': stats.policy_errors,
            'last_policy_error': stats.last_error, 'commanded_ticks': stats.commanded,
            'starved_ticks': stats.starved_ticks, 'blocked_ticks': stats.blocked_ticks,
            'stale_ticks': stats.stale_ticks, 'waiting_ticks': stats.waiting_ticks,
            'tick_interval_max_ms': f'{self._max_tick_interval_ms():.1f}'})
        values.update({f'safety_{k}': v for k, v in core.safety.counts.as_dict().items()})
        counts = core.cache.counts()
        elapsed = None if self._last_diag_time is None else now - self._last_diag_time
        for source, age in core.cache.ages(now).items():
            values[f'age_{source}_s'] = 'never' if age is None else f'{age:.3f}'
            if elapsed:
                rate = (counts.get(source, 0) - self._last_counts.get(source, 0)) / elapsed
                values[f'rate_{source}_hz'] = f'{rate:.1f}'
        self._last_counts, self._last_diag_time = counts, now
        with self._error_lock:
            errors = dict(self._input_errors)
        values.update({f'input_error_{k}': v for k, v in errors.items()})
        message = f'{core.state}: {core.reason}' if core.reason else core.state
        if errors:
            message += ' | ' + '; '.join(f'{k}: {v}' for k, v in errors.items())
        if not self._active:
            level, message = DiagnosticStatus.WARN, f'{self.lifecycle_state}: not commanding'
        elif core.state in ('stale', 'unsafe') or errors:
            level = DiagnosticStatus.ERROR
        elif core.state == 'commanding' and not stats.last_error:
            level = DiagnosticStatus.OK
        else:
            level = DiagnosticStatus.WARN
        return diagnostic_status('env_actor: policy', level, message, values, self.get_name())

    def _max_tick_interval_ms(self) -> float:
        ticks = list(self._tick_wall)
        return max(np.diff(ticks)) * 1e3 if len(ticks) > 1 else math.nan


def main(args=None) -> None:
    """Console entry point (`env-actor-node --ros-args --params-file f.yaml -p k:=v`)."""
    rclpy.init(args=args)
    node = PolicyNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if node.get_parameter('autostart').value:
            node.trigger_configure()
            if node.lifecycle_state == 'inactive':
                node.trigger_activate()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node.executor_core is not None:
            node._release()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == '__main__':
    main()
