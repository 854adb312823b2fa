"""The env_actor policy node: a lifecycle node that runs a chunking policy on a robot.

Lifecycle: configure = read parameters, build + warm up the policy, create subscriptions,
publishers and timers; activate = start commanding (new episode); deactivate = stop
commanding (a hold is sent); cleanup / shutdown = release everything.
`autostart: true` configures and activates at start-up. `~/reset` (std_srvs/Trigger)
starts a new episode (no hold: whatever called it may have moved the robot, and a hold
of the last command would pull it back). /diagnostics is published from construction on,
so a failed configure is visible there (ERROR with the reason).

Safety contract (docs/node.md has the fault table):
    * the first action after activate, ~/reset, a stale spell or an inference fault is
      slew-limited against the measured joint positions of that tick, and a trajectory
      carrying it starts at that measurement; a node whose action joints have no
      measured position refuses to activate;
    * the inference process is supervised (runtime/supervisor.py): a death or a hang is an
      ERROR, the node holds and restarts it (bounded); past the bound it deactivates;
    * every way out (SIGINT, SIGTERM, deactivate, shutdown, an exception in a callback)
      publishes a hold of the last safe action first; a signal exits with code 0.

Threading contract (the control thread, the camera thread, one worker process):
    * control thread (the executor that spins this node, SingleThreadedExecutor by
      default): joint-state conversion (a few microseconds), the control timer
      (`ChunkExecutor.on_tick` and publishing), diagnostics, `~/reset` and lifecycle
      transitions. With `control_thread_priority` > 0 it runs at SCHED_FIFO from
      configure on (runtime/realtime.py); what it starts afterwards runs normally.
      Nothing here waits for inference or decodes an image.
    * camera thread (CameraInput, `camera_executor: events | single`): a second node,
      `<name>_cameras`, spun by its own executor; each image callback converts the
      newest frame and stores it in the ObservationCache (own lock), written straight
      into the camera's shared-memory FrameRing when inference runs in a process;
      conversion errors go to `_input_errors` (own lock). `camera_executor: shared`
      instead subscribes on this node and converts on a ConversionWorker thread.
    * inference: by default a child process (ProcessInferenceWorker, `inference_mode:
      process`) that builds and runs the policy, so it never holds this process's GIL;
      frames reach it as ring slot numbers; watched by a SupervisedWorker (its restarts
      run on a short-lived thread); `inference_mode: thread` runs it on a
      ThreadedInferenceWorker thread instead.
    `on_tick` and `reset_episode` serialise on the executor's lock.
rclpy's MultiThreadedExecutor is not used: on 2 cores it burned a whole core and dropped
most messages (docs/node.md).
"""
from collections import deque
import logging
import math
import signal
import sys
import threading
import time
from typing import Optional

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import (LifecycleNode, LifecyclePublisher, LifecycleState,
                            TransitionCallbackReturn)
from rclpy.qos import QoSProfile, qos_profile_sensor_data, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from env_actor.policy.utils.device import resolve_device
from env_actor.policy.utils.loader import build_ready_bundle, load_policy_config
from env_actor.policy.utils.spec import PolicySpec
from env_actor.ros.camera_input import CameraInput
from env_actor.ros.conversion_worker import ConversionWorker
from env_actor.ros.command_publisher import CommandPublisher
from env_actor.ros.conversions import diagnostic_status, JointStateConverter
from env_actor.ros.params import (declare_parameters, NodeConfig, PARAMETER_BY_NAME,
                                  parameter_help, parameter_value, read_node_config,
                                  safety_limit)
from env_actor.runtime.factory import build_executor, make_executor
from env_actor.runtime.frame_ring import FrameRing, ring_slots
from env_actor.runtime.inference_process import ProcessInferenceWorker
from env_actor.runtime.observation import PROPRIO
from env_actor.runtime.realtime import reset_scheduling, set_fifo_priority
from env_actor.runtime.safety import SafetyFilter
from env_actor.runtime.supervisor import auto_timeout, SupervisedWorker

# reliable (what controllers subscribe with), newest only: after a link outage DDS
# retransmits just the latest message (the hold), never a queue of stale chunks
COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


class _RosLogHandler(logging.Handler):
    """Forwards the runtime's Python `logging` records (env_actor.*) to the node's logger,
    so they reach /rosout."""

    def __init__(self, ros_logger) -> None:
        super().__init__()
        self._ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        text = f'{record.name}: {record.getMessage()}'
        if record.levelno >= logging.ERROR:
            self._ros_logger.error(text)
        elif record.levelno >= logging.WARNING:
            self._ros_logger.warning(text)
        else:
            self._ros_logger.info(text)


class PolicyNode(LifecycleNode):
    """Subscribes to joint states and cameras, publishes safe action chunks."""

    def __init__(self, node_name: str = 'env_actor', **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.last_error = ''
        try:                               # every parameter, with its descriptor
            declare_parameters(self)
        except ValueError as exc:          # reported; configure fails with the same text
            self.last_error = str(exc)
            self.get_logger().error(self.last_error)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        # '<namespace/>name: policy', so two instances do not share a diagnostics status
        self.status_name = f"{self.get_fully_qualified_name().lstrip('/')}: policy"
        self._last_state = ''              # the executor state last logged
        self._logged_changes: dict = {}    # (from, to) -> monotonic time of its last line
        self._log_handler = _RosLogHandler(self.get_logger())
        logging.getLogger('env_actor').addHandler(self._log_handler)
        self.config: Optional[NodeConfig] = None
        self.spec: Optional[PolicySpec] = None
        self.executor_core = None
        self.joints: Optional[JointStateConverter] = None
        self._input_errors: dict[str, str] = {}
        self._error_lock = threading.Lock()
        self._last_counts: dict[str, int] = {}
        self._last_diag_time: Optional[float] = None
        self._tick_wall: deque = deque(maxlen=400)
        self._was_commanding = False
        self._converter: Optional[ConversionWorker] = None
        self._cameras: Optional[CameraInput] = None
        self._camera_convert: dict = {}            # camera -> message converter
        self._scheduling = ''                      # how the control thread is scheduled
        self._fifo_thread: Optional[int] = None    # native id of the thread set to FIFO
        self._rings: dict[str, FrameRing] = {}     # camera -> shared-memory frames
        self._entities: list = []
        self._outputs: Optional[CommandPublisher] = None
        self._reference_error = ''        # why the node cannot activate, '' if it can
        self._reported_fault = ''         # the inference fault last logged
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        period = (float(self.get_parameter('diagnostics_period').value)
                  if self.has_parameter('diagnostics_period') else 1.0)
        self._diag_timer = self.create_timer(period if period > 0 else 1.0,
                                             self._publish_diagnostics)
        self._reset_srv = self.create_service(Trigger, '~/reset', self._on_reset)

    @property
    def lifecycle_state(self) -> str:
        """rclpy's own lifecycle state label (unconfigured, inactive, active, finalized,
        or a transition state while a callback runs): no copy kept here."""
        return self._state_machine.current_state[1]

    # -- parameters -------------------------------------------------------------------
    def _on_set_parameters(self, parameters) -> SetParametersResult:
        """While configured, only `live` parameters may change (validated, applied now);
        the rest need cleanup -> set -> configure, and a set is refused saying so."""
        core = self.executor_core
        if core is None:
            return SetParametersResult(successful=True)
        fixed = [p.name for p in parameters
                 if not getattr(PARAMETER_BY_NAME.get(p.name), 'live', False)]
        if fixed:
            live = [p.name for p in PARAMETER_BY_NAME.values() if p.live]
            return SetParametersResult(successful=False, reason=(
                f'{fixed} need a reconfigure (cleanup, set, configure); live while '
                f'configured: {live}'))
        values = {name: parameter_value(self, name) for name in
                  ('safety.position_lower', 'safety.position_upper', 'safety.max_velocity')}
        values.update({p.name: [float(v) for v in p.value] for p in parameters})
        try:
            limits = SafetyFilter(core.safety.dim, *[safety_limit(values[k]) for k in (
                'safety.position_lower', 'safety.position_upper', 'safety.max_velocity')],
                control_period=self.config.control_period)
        except (ValueError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        core.safety.set_limits(limits)
        self.get_logger().info(f'safety limits updated: {sorted(p.name for p in parameters)}')
        return SetParametersResult(successful=True)

    # -- lifecycle --------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as exc:  # a bad YAML / checkpoint must fail the transition only
            self.last_error = f'configure failed: {exc}'
            self.get_logger().error(self.last_error)
            self._release()
            return TransitionCallbackReturn.FAILURE
        self.last_error = ''
        return super().on_configure(state)

    def _configure(self) -> None:
        cfg = read_node_config(self)
        for warning in cfg.warnings:
            self.get_logger().warning(warning)
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
        device = resolve_device(cfg.device)
        self.get_logger().info(f'device {cfg.device!r}: running the policy on {device}')
        try:
            reference_index = joints.position_indices(cfg.action_joint_names)
            self._reference_error = ''
        except ValueError as exc:
            reference_index = None
            self._reference_error = (f'cannot activate: {exc}; the first command could not '
                                     'be limited against where the robot is')
            self.get_logger().error(self._reference_error)
        settings = cfg.runtime_settings()
        started = time.perf_counter()
        if cfg.inference_mode == 'process':
            def start_worker() -> ProcessInferenceWorker:
                return ProcessInferenceWorker(
                    cfg.policy_yaml, device, (spec.action_chunk_size, spec.action_dim),
                    guided=cfg.algorithm == 'rtc', torch_threads=int(cfg.torch_threads),
                    nice=int(cfg.inference_nice))
            first = start_worker()
            timeout = settings.inference_timeout or auto_timeout(first.startup_latency_s)
            worker = SupervisedWorker(first, start_worker, timeout,
                                      int(cfg.inference_max_restarts),
                                      float(cfg.inference_restart_window))
            try:
                self.executor_core = make_executor(spec, settings, worker,
                                                   first.startup_latency_s, reference_index)
            except Exception:
                worker.close()
                raise
            self.get_logger().info(f'inference timeout {timeout:.2f} s, at most '
                                   f'{cfg.inference_max_restarts} restarts in '
                                   f'{cfg.inference_restart_window:g} s')
        else:
            if cfg.torch_threads > 0:
                import torch
                torch.set_num_threads(int(cfg.torch_threads))
            bundle = build_ready_bundle(cfg.policy_yaml, map_location=device)
            self.executor_core = build_executor(bundle, settings,
                                                reference_index=reference_index)
        self.get_logger().info(f'policy {config["policy"]["type"]!r} built and warmed up in '
                               f'{time.perf_counter() - started:.2f} s '
                               f'(inference in a {cfg.inference_mode})')
        self.config, self.spec, self.joints = cfg, spec, joints
        if cfg.inference_mode == 'process':
            slots = ring_slots(spec.num_img_obs, cfg.image_stride)
            shape = (3, spec.image_height, spec.image_width)
            self._rings = {cam.name: FrameRing(shape, slots) for cam in cfg.cameras}
        self._create_entities()
        # last: the camera thread and the inference process started above run normally
        self._scheduling = set_fifo_priority(int(cfg.control_thread_priority))
        if self._scheduling.startswith('SCHED_FIFO'):
            self._fifo_thread = threading.get_native_id()
            self.get_logger().info(f'control thread: {self._scheduling}')
        elif cfg.control_thread_priority:
            self.get_logger().warning(f'control thread: {self._scheduling}; tick jitter '
                                      'grows when the cores are busy (docs/node.md)')

    def _create_entities(self) -> None:
        cfg = self.config
        sub = self.create_subscription
        self._entities.append(sub(JointState, cfg.joint_states_topic, self._on_joint_state,
                                  qos_profile_sensor_data))
        self._camera_convert = {cam.name: cam.convert for cam in cfg.cameras}
        msg_types = {cam.name: Image if cam.transport == 'raw' else CompressedImage
                     for cam in cfg.cameras}
        if cfg.camera_executor == 'shared':
            self._converter = ConversionWorker(self._store, self._store_error)
            for cam in cfg.cameras:
                self._entities.append(sub(msg_types[cam.name], cam.topic,
                                          self._image_callback(cam.name),
                                          qos_profile_sensor_data))
        else:
            cameras = [(cam.name, msg_types[cam.name], self.resolve_topic_name(cam.topic))
                       for cam in cfg.cameras]
            self._cameras = CameraInput(
                self.context, f'{self.get_name()}_cameras', self.get_namespace(), cameras,
                self._on_camera_message, self._store_error,
                lambda: make_ros_executor(cfg.camera_executor, self.context))
        if cfg.prompt_topic:
            self._entities.append(sub(String, cfg.prompt_topic, self._on_prompt, 10))
        # lifecycle publishers: an inactive node cannot command (the hold on deactivate is
        # published before the base class deactivates them)
        self._outputs = CommandPublisher(self, cfg.outputs, cfg.control_period, COMMAND_QOS,
                                         cfg.trajectory_stamp == 'now',
                                         cfg.trajectory_velocities)
        self._entities += self._outputs.publishers
        self.get_logger().info(f'outputs: {self._outputs.describe()}')
        self._control_timer = self.create_timer(cfg.control_period, self._on_control_tick)
        self._entities.append(self._control_timer)
        if abs(self._diag_timer.timer_period_ns * 1e-9 - cfg.diagnostics_period) > 1e-9:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = self.create_timer(cfg.diagnostics_period,
                                                 self._publish_diagnostics)

    def _not_ready(self) -> str:
        """Why the node cannot start commanding now ('' when it can)."""
        core = self.executor_core
        if core is None:
            return 'not configured'
        if self._reference_error:
            return self._reference_error
        check = getattr(core.worker, 'check', None)
        fault = check() if callable(check) else None
        return f'no policy: {fault}' if fault else ''

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        reason = self._not_ready()
        if reason:
            self.last_error = f'activate refused: {reason}'
            self.get_logger().error(self.last_error)
            return TransitionCallbackReturn.FAILURE
        self.last_error = ''
        self.executor_core.reset_episode()
        self._was_commanding = False
        self.get_logger().info(f'commanding with {self.config.algorithm} at '
                               f'{self.config.control_frequency:g} Hz')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_commanding(state.label == 'active')
        return super().on_deactivate(state)

    def _stop_commanding(self, was_active: bool) -> None:
        """Leaving `active` (the callbacks get the state they leave): the controller gets
        a hold of the last safe action while the publishers are still enabled."""
        if was_active:
            self._send_hold()

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_cleanup(state)
        self._release()
        return result

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_commanding(state.label == 'active')
        self._wait_for_delivery()
        result = super().on_shutdown(state)
        self._release()
        return result

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised: hold, release timers, subscriptions and the inference
        process, report, and go back to unconfigured."""
        self._stop_commanding(state.label == 'active')
        self._release()
        super().on_error(state)
        self.last_error = f'transition from {state.label!r} failed: see the log'
        self.get_logger().error(f'{self.last_error}; released everything, unconfigured')
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        self._leave_fifo()
        logging.getLogger('env_actor').removeHandler(self._log_handler)
        super().destroy_node()

    def _release(self) -> None:
        for entity in self._entities:
            if hasattr(entity, 'cancel'):
                entity.cancel()
                self.destroy_timer(entity)
            elif isinstance(entity, LifecyclePublisher):
                self.destroy_lifecycle_publisher(entity)
            elif hasattr(entity, 'publish'):
                self.destroy_publisher(entity)
            else:
                self.destroy_subscription(entity)
        self._entities = []
        self._outputs = None
        if self._cameras is not None:
            self._cameras.close()
            self._cameras = None
        if self._converter is not None:
            self._converter.close()
            self._converter = None
        if self.executor_core is not None:
            self.executor_core.worker.close()
        self.executor_core = None
        for ring in self._rings.values():
            ring.close()
        self._rings = {}
        self._leave_fifo()

    def _leave_fifo(self) -> None:
        """Normal scheduling again for the thread configure set to SCHED_FIFO, when that
        thread is the caller (another thread's scheduling cannot be changed from here)."""
        if self._fifo_thread == threading.get_native_id():
            reset_scheduling()
            self._fifo_thread = None

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

    def _image_callback(self, camera: str):
        def callback(msg) -> None:
            converter = self._converter
            if converter is not None:
                converter.submit(camera, lambda: self._convert_frame(camera, msg), self._now())
        return callback

    def _on_camera_message(self, camera: str, msg) -> None:
        """Camera thread: convert and store (a ValueError is the camera's input error)."""
        stamp = self._now()
        try:
            frame = self._convert_frame(camera, msg)
        except ValueError as exc:
            self._store_error(camera, str(exc))
            return
        self._store(camera, frame, stamp)

    def _convert_frame(self, camera: str, msg):
        """Camera (or conversion) thread: the frame, written into the camera's ring when it has one
        with a free slot (a plain array otherwise)."""
        height, width = self.spec.image_height, self.spec.image_width
        convert = self._camera_convert[camera]
        ring = self._rings.get(camera)
        if ring is not None:
            frame = ring.write(lambda out: np.copyto(out, convert(msg, height, width)))
            if frame is not None:
                return frame
        return convert(msg, height, width)

    def _on_prompt(self, msg: String) -> None:
        if self.executor_core is not None:
            self._store('prompt', msg.data, self._now())

    # -- control loop ----------------------------------------------------------------------
    def _on_control_tick(self) -> None:
        core = self.executor_core
        if core is None or self.lifecycle_state != 'active':
            return
        self._tick_wall.append(time.monotonic())
        result = core.on_tick(self._now())
        if result.state != self._last_state:
            self._log_state_change(result.state, result.reason)
        if result.state == 'fault':
            self._on_inference_fault(result.reason)
        elif self._reported_fault:
            self.get_logger().info('inference process restarted: starting from a fresh chunk')
            self._reported_fault = ''
        if result.action is None:
            if self._was_commanding and result.state in ('stale', 'unsafe', 'fault'):
                self._send_hold()
            self._was_commanding = False
            self._outputs.forget()
            return
        self._was_commanding = True
        if result.restart:               # limited against the measurement: start there
            self._outputs.forget()
        self._outputs.send(result.action,
                           core.planned_actions() if result.new_chunk else None,
                           core.measured_reference())

    def _log_state_change(self, state: str, reason: str) -> None:
        """One line per change of the executor state (stale / recovered, starved, ...); the
        same change is not repeated within a second (a flapping input)."""
        previous, self._last_state = self._last_state, state
        now = time.monotonic()
        if now - self._logged_changes.get((previous, state), -math.inf) < 1.0:
            return
        self._logged_changes[(previous, state)] = now
        text = f'{previous or "start"} -> {state}' + (f': {reason}' if reason else '')
        if state in ('stale', 'unsafe', 'fault') and previous:
            self.get_logger().error(text)
        elif not previous and state != 'commanding':     # inputs not there yet at start
            self.get_logger().warning(text)
        elif state in ('starved', 'blocked') or reason.startswith('policy error'):
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)

    def _on_inference_fault(self, reason: str) -> None:
        """Log a new inference fault once; past the restart bound leave the active state."""
        if reason != self._reported_fault:
            self._reported_fault = reason
            self.get_logger().error(reason)
        if getattr(self.executor_core.worker, 'failed', False):
            self.get_logger().error('inference cannot be restarted: deactivating; cleanup '
                                    'and configure to rebuild the policy')
            self.trigger_deactivate()            # holds
            self._was_commanding = False
            self.last_error = reason

    def _send_hold(self) -> None:
        """Stop moving: a one-point trajectory and a command of the last safe action.

        Nothing is sent when nothing was commanded since the last (re)start: the controller
        then already holds where the robot is.
        """
        core = self.executor_core
        last = None if core is None else core.safety.last
        if last is None:
            return
        if self._outputs is not None:
            self._outputs.hold(last)

    def _wait_for_delivery(self, timeout_s: float = 1.0) -> None:
        """Give RELIABLE command messages (a hold) time to reach their subscribers."""
        if self._outputs is not None:
            self._outputs.wait_for_delivery(timeout_s)

    def stop_safely(self) -> None:
        """Every exit path: hold, let the hold go out, release the policy process."""
        self._stop_commanding(self.lifecycle_state == 'active')
        self._wait_for_delivery()
        if self.executor_core is not None:
            self._release()

    def _on_reset(self, request, response):
        reason = self._not_ready()
        if reason:
            response.success, response.message = False, reason
            return response
        self.executor_core.reset_episode()
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
            return diagnostic_status(self.status_name, level,
                                     self.last_error or 'not configured', values, self.get_name())
        worker = core.worker
        if isinstance(worker, SupervisedWorker):
            values.update({'inference_faults': worker.faults,
                           'inference_restarts': worker.restarts,
                           'inference_pid': worker.pid,
                           'inference_timeout_s': f'{worker.timeout_s:.2f}'})
        stats = core.stats
        p50, p95 = stats.latency_percentiles()
        now = self._now()
        values.update({
            'algorithm': self.config.algorithm, 'state': core.state, 'reason': core.reason,
            'inference_latency_p50_ms': f'{p50 * 1e3:.1f}',
            'inference_latency_p95_ms': f'{p95 * 1e3:.1f}',
            'est_delay_steps': core.est_delay, 'last_delay_steps': core.delay.last,
            'ticks': stats.ticks, 'inferences': stats.inferences,
            'policy_errors': stats.policy_errors,
            'last_policy_error': stats.last_error, 'commanded_ticks': stats.commanded,
            'starved_ticks': stats.starved_ticks, 'blocked_ticks': stats.blocked_ticks,
            'stale_ticks': stats.stale_ticks, 'waiting_ticks': stats.waiting_ticks,
            'fault_ticks': stats.fault_ticks,
            'tick_interval_max_ms': f'{self._max_tick_interval_ms():.1f}'})
        values['control_thread_scheduling'] = self._scheduling
        if self._rings:      # frames that missed shared memory (copied at submit instead)
            values['frame_ring_full'] = sum(ring.full for ring in self._rings.values())
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
        if self.lifecycle_state != 'active':
            reason = self.last_error or self._reference_error
            level = DiagnosticStatus.ERROR if reason else DiagnosticStatus.WARN
            message = f'{self.lifecycle_state}: not commanding' + (f': {reason}'
                                                                     if reason else '')
        elif core.state in ('stale', 'unsafe', 'fault') or errors:
            level = DiagnosticStatus.ERROR
        elif core.state == 'commanding' and not stats.last_error:
            level = DiagnosticStatus.OK
        else:
            level = DiagnosticStatus.WARN
        return diagnostic_status(self.status_name, level, message, values, self.get_name())

    def _max_tick_interval_ms(self) -> float:
        ticks = list(self._tick_wall)
        return max(np.diff(ticks)) * 1e3 if len(ticks) > 1 else math.nan


def make_ros_executor(kind: str, context=None):
    """The rclpy executor named by the node's `executor` / `camera_executor` parameter.

    Args:
        kind: 'single' (SingleThreadedExecutor) or 'events' (rclpy's EventsExecutor).
        context: the rclpy context (None: the default one).

    Returns:
        An executor for that context.

    Raises:
        ValueError: another kind.
    """
    if kind == 'single':
        return SingleThreadedExecutor(context=context)
    if kind == 'events':
        from rclpy.experimental import EventsExecutor
        return EventsExecutor(context=context)
    raise ValueError(f"parameter executor must be 'single' or 'events', got {kind!r}")


def spin_until_stopped(node: PolicyNode, executor, stop: threading.Event) -> int:
    """Run the node until `stop` is set or the context ends; hold and release on the way out.

    Returns:
        0 after a stop request or an external shutdown, 1 after an exception in a callback
        (logged as FATAL; the hold is still sent).
    """
    code = 0
    try:
        if node.get_parameter('autostart').value and not stop.is_set():
            node.trigger_configure()
            if node.lifecycle_state == 'inactive' and not stop.is_set():
                node.trigger_activate()
        else:
            name = node.get_fully_qualified_name()
            node.get_logger().info(
                f'unconfigured (autostart is false): waiting for `ros2 lifecycle set {name} '
                f'configure`, then `activate`; or start with -p autostart:=true')
        while not stop.is_set() and node.context.ok():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:  # a callback raised: hold, report, exit non-zero
        node.get_logger().fatal(f'{type(exc).__name__}: {exc}: holding and exiting')
        code = 1
    finally:
        if node.context.ok():
            node.stop_safely()
    return code


NODE_USAGE = """usage: env-actor-node [-h] --ros-args --params-file FILE [-p NAME:=VALUE ...]

The env_actor lifecycle policy node (what `ros2 run env_actor policy_node` starts).
Parameters come from a params file and `-p` overrides after --ros-args; with
autostart false it waits for configure/activate (`ros2 lifecycle set`).
SIGINT/SIGTERM hold the robot, then exit 0.

parameters:
"""


def main(args=None) -> int:
    """Console entry point (`env-actor-node --ros-args --params-file f.yaml -p k:=v`).

    SIGINT and SIGTERM are handled here, not by rclpy, so that the context is still up when
    the hold goes out: the executor stops, the node holds and releases, exit code 0. An
    exception in a callback also holds first, then exits with code 1.
    """
    argv = list(sys.argv[1:] if args is None else args)
    own_args = argv[:argv.index('--ros-args')] if '--ros-args' in argv else argv
    if '-h' in own_args or '--help' in own_args:
        print(NODE_USAGE + parameter_help())
        return 0
    stop = threading.Event()
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except _rclpy.RCLError as exc:        # e.g. an unreadable params file: one line, exit 2
        print(f'env-actor-node: error: {str(exc).splitlines()[0]}', file=sys.stderr)
        return 2
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    node = PolicyNode()
    executor = make_ros_executor(node.get_parameter('executor').value)
    executor.add_node(node)
    node.get_logger().info(f'callbacks run on {type(executor).__name__}')
    try:
        code = spin_until_stopped(node, executor, stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):   # a late signal must not
            signal.signal(signum, signal.SIG_IGN)        # interrupt the clean-up
        node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    raise SystemExit(main())
