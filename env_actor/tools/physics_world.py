"""The simulated robot on a physics engine (MuJoCo): the planar arm with inertia, servo
drives and a task that moves.

No ROS here: `sim_robot_node.py` puts it on DDS (`--world physics`); the recorder, the
trainer's evaluation and the closed-loop benchmark step it directly.

Robot: the same kinematics, joints and joint limits as `sim_world` (links 0.35 / 0.30 /
0.15 m, `shoulder`, `elbow`, `wrist`, `gripper`), but each link is a rigid body with mass
(1.6 / 1.0 / 0.45 kg, the finger 0.08 kg) and each joint has a gearbox's armature and
viscous friction. Every joint is driven like an industrial servo: a PD position loop at
the physics rate (`TIMESTEP`) on the set-point, its torque limited by `TORQUE_LIMIT` and
by the motor's torque-speed line (no torque left at `VELOCITY_LIMIT`), so a step in the
set-point overshoots, and a large one saturates. Joint states are what an encoder reads:
positions quantised to `ENCODER_COUNTS` per turn, velocities, and the drive torque.

Task (`TwoTargetTask`): two identical red targets move in front of the robot, one on
each side, sweeping along circles around the base and turning back at the edges of
their side (0.03-0.11 m/s at the target). Either target counts: success is the gripper tip
within `SUCCESS_RADIUS` of one target with the gripper closed for `SUCCESS_HOLD`
seconds without a break, within the episode. The expert (`expert_action`) picks one of
the two at random per episode, so demonstrations are bimodal; it leads the target by
`EXPERT_LEAD` seconds to make up for the servo lag. Cameras as in `sim_world`.
"""
from dataclasses import dataclass, field
import math
from typing import Optional

import mujoco
import numpy as np

from env_actor.tools.sim_world import (draw_scene, EpisodeRules, forward_kinematics,
                                       inverse_kinematics, JOINTS, LINKS, LOWER, UPPER)

TIMESTEP = 0.002                                       # s: physics and servo loop, 500 Hz
HOME = np.array([0.97, 1.2, -0.6, 0.0])                # tip above the base, between goals
KP = np.array([260.0, 160.0, 45.0, 6.0])               # Nm/rad
KD = np.array([9.0, 5.0, 1.2, 0.25])                   # Nm s/rad
TORQUE_LIMIT = np.array([24.0, 14.0, 4.0, 1.0])        # Nm
VELOCITY_LIMIT = np.array([3.5, 3.5, 4.5, 8.0])        # rad/s: the motor's no-load speed
ENCODER_COUNTS = 2 ** 16                               # per turn
SUCCESS_RADIUS = 0.05
SUCCESS_HOLD = 0.5
CLOSED = 0.8
EXPERT_LEAD = 0.15
SIDE_ANGLES = ((0.25, math.pi / 2 - 0.35), (math.pi / 2 + 0.35, math.pi - 0.25))

_MJCF = f'''
<mujoco model="env_actor_planar_arm">
  <compiler angle="radian"/>
  <option timestep="{TIMESTEP}" integrator="implicitfast"/>
  <default>
    <geom contype="0" conaffinity="0"/>
    <joint type="hinge" axis="0 0 1" limited="true"/>
  </default>
  <worldbody>
    <body name="upper_arm">
      <joint name="shoulder" range="{LOWER[0]} {UPPER[0]}" armature="0.08" damping="0.4"/>
      <geom type="capsule" fromto="0 0 0 {LINKS[0]} 0 0" size="0.03" mass="1.6"/>
      <body name="forearm" pos="{LINKS[0]} 0 0">
        <joint name="elbow" range="{LOWER[1]} {UPPER[1]}" armature="0.05" damping="0.25"/>
        <geom type="capsule" fromto="0 0 0 {LINKS[1]} 0 0" size="0.025" mass="1.0"/>
        <body name="hand" pos="{LINKS[1]} 0 0">
          <joint name="wrist" range="{LOWER[2]} {UPPER[2]}" armature="0.01" damping="0.05"/>
          <geom type="capsule" fromto="0 0 0 {LINKS[2]} 0 0" size="0.02" mass="0.45"/>
          <site name="tip" pos="{LINKS[2]} 0 0"/>
          <body name="finger" pos="{LINKS[2] * 0.8} 0 0">
            <joint name="gripper" range="{LOWER[3]} {UPPER[3]}" armature="0.002"
                   damping="0.02"/>
            <geom type="box" size="0.02 0.005 0.01" pos="0.02 0 0" mass="0.08"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
''' + ''.join(f'    <motor name="{j}" joint="{j}" ctrllimited="true" '
              f'ctrlrange="{-t} {t}"/>\n' for j, t in zip(JOINTS, TORQUE_LIMIT)) + '''  </actuator>
</mujoco>
'''


def servo_torque(setpoint: np.ndarray, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
    """The drives' torque: PD on the set-point, limited by the motor's torque-speed line.

    Args:
        setpoint: (4,) commanded positions.
        q: (4,) joint positions.
        qd: (4,) joint velocities.

    Returns:
        (4,) torques: KP*(setpoint - q) - KD*qd, clipped to +-TORQUE_LIMIT, and in the
        direction of motion to TORQUE_LIMIT * (1 - |qd| / VELOCITY_LIMIT) (braking gets
        the full limit), so no joint is driven faster than VELOCITY_LIMIT.
    """
    torque = KP * (setpoint - q) - KD * qd
    available = TORQUE_LIMIT * np.clip(1.0 - np.abs(qd) / VELOCITY_LIMIT, 0.0, 1.0)
    upper = np.where(qd > 0, available, TORQUE_LIMIT)
    lower = np.where(qd < 0, -available, -TORQUE_LIMIT)
    return np.clip(torque, lower, upper)


@dataclass
class MovingTarget:
    """A target sweeping along a circle around the base, turning back at its side's edges."""

    radius: float
    angle: float
    angular_speed: float                               # rad/s, signed
    bounds: tuple

    @property
    def position(self) -> np.ndarray:
        return self._point(self.angle)

    def ahead(self, seconds: float) -> np.ndarray:
        """Where the target will be in `seconds` (turning back at the bounds)."""
        return self._point(self._turned(self.angle + self.angular_speed * seconds))

    def step(self, h: float) -> None:
        moved = self.angle + self.angular_speed * h
        turned = self._turned(moved)
        if turned != moved:
            self.angular_speed = -self.angular_speed
        self.angle = float(np.clip(turned, *self.bounds))

    def _turned(self, angle: float) -> float:
        """`angle` reflected back inside the bounds (one bounce)."""
        low, high = self.bounds
        return 2 * high - angle if angle > high else 2 * low - angle if angle < low else angle

    def _point(self, angle: float) -> np.ndarray:
        return self.radius * np.array([math.cos(angle), math.sin(angle)])


def sample_targets(rng: np.random.Generator) -> list:
    """One moving target on each side of the robot, at a reachable distance."""
    targets = []
    for bounds in SIDE_ANGLES:
        radius = rng.uniform(0.42, 0.7)
        speed = rng.uniform(0.08, 0.16) * rng.choice([-1.0, 1.0])
        targets.append(MovingTarget(radius, rng.uniform(*bounds), speed, bounds))
    return targets


@dataclass
class PhysicsWorld(EpisodeRules):
    """One episode of the two-moving-targets task on MuJoCo. `reset`, then `set_command`
    and `step(dt)` repeatedly. `q` is what the encoders read; `command` is the set-point
    the servos follow."""

    seed: int = 0
    episode_duration: float = 8.0
    command: np.ndarray = field(default_factory=lambda: HOME.copy())
    targets: list = field(default_factory=list)
    expert_goal: int = 0                               # which target the expert chose
    time: float = 0.0
    hold: float = 0.0
    success: bool = False
    success_time: Optional[float] = None
    tracking_error_max: np.ndarray = field(default_factory=lambda: np.zeros(4))

    def __post_init__(self) -> None:
        self.model = mujoco.MjModel.from_xml_string(_MJCF)
        self.data = mujoco.MjData(self.model)
        self.rng = np.random.default_rng(self.seed)

    def reset(self, seed: Optional[int] = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = HOME + self.rng.uniform(-0.1, 0.1, 4) * np.array([1, 1, 1, 0])
        mujoco.mj_forward(self.model, self.data)
        self.command = self.data.qpos.copy()
        self.targets = sample_targets(self.rng)
        self.expert_goal = int(self.rng.integers(2))
        self.time, self.hold = 0.0, 0.0
        self.success, self.success_time = False, None
        self.tracking_error_max = np.zeros(4)

    @property
    def q(self) -> np.ndarray:
        """(4,) joint positions as the encoders read them."""
        count = 2 * math.pi / ENCODER_COUNTS
        return np.round(self.data.qpos / count) * count

    @property
    def velocity(self) -> np.ndarray:
        return self.data.qvel.copy()

    @property
    def effort(self) -> np.ndarray:
        return self.data.ctrl.copy()

    @property
    def tip(self) -> np.ndarray:
        return forward_kinematics(self.data.qpos)[-1]

    @property
    def target(self) -> np.ndarray:
        """The target the expert goes for."""
        return self.targets[self.expert_goal].position

    def step(self, dt: float) -> None:
        """Advance physics, servos and task by dt seconds (sub-steps of <= TIMESTEP)."""
        steps = max(1, int(math.ceil(dt / TIMESTEP - 1e-9)))
        self.model.opt.timestep = dt / steps
        for _ in range(steps):
            self.data.ctrl[:] = servo_torque(self.command, self.data.qpos, self.data.qvel)
            mujoco.mj_step(self.model, self.data)
            h = self.model.opt.timestep
            self.time += h
            for target in self.targets:
                target.step(h)
            self.tracking_error_max = np.maximum(self.tracking_error_max,
                                                 np.abs(self.command - self.data.qpos))
            tip = self.tip
            near = min(np.linalg.norm(tip - t.position) for t in self.targets)
            self.count_hold(near <= SUCCESS_RADIUS and self.data.qpos[3] >= CLOSED, h,
                            SUCCESS_HOLD)

    def render(self, camera: str) -> np.ndarray:
        """(H, W, 3) uint8 RGB image of the scene from `camera`."""
        return draw_scene(camera, self.data.qpos, [t.position for t in self.targets])


def expert_action(world: PhysicsWorld, max_step: float = 0.12) -> np.ndarray:
    """Scripted expert (privileged: knows both targets' motion and its own choice): IK
    towards where its target will be in EXPERT_LEAD s, at most `max_step` rad per tick;
    the gripper closes when the tip comes within 6 cm of the target and, once closed,
    opens again only beyond 10 cm (hysteresis on the measured gripper, so the label does
    not flap while the tip follows the moving target)."""
    target = world.targets[world.expert_goal]
    goal = inverse_kinematics(target.ahead(EXPERT_LEAD), world.q)
    arm = world.q[:3] + np.clip(goal - world.q[:3], -max_step, max_step)
    distance = np.linalg.norm(world.tip - target.position)
    close = distance < (0.10 if world.q[3] >= 0.5 else 0.06)
    return np.concatenate([arm, [1.0 if close else 0.0]])
