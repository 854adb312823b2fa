"""A small simulated robot: a planar 3-joint arm with a gripper, three cameras, a task.

Pure NumPy/OpenCV (no ROS): `sim_robot_node.py` puts it on DDS; the recorder, training
and the closed-loop benchmark use it directly.

Robot: joints `shoulder`, `elbow`, `wrist` (revolute, links 0.35 / 0.30 / 0.15 m, base at
the origin) and `gripper` (0 open .. 1 closed), position-servoed: each joint moves towards
its command at up to `MAX_SPEED`, clipped to its limits. Task: reach the red target and
close the gripper on it; the target is only visible in the images, and it jumps once to a
new place during the episode, so the policy has to look and react. Success: after the
jump, the gripper tip within `SUCCESS_RADIUS` of the target with the gripper closed for
`SUCCESS_HOLD` seconds.
Cameras (RGB, `IMAGE_SIZE`): `head` looks straight down, `left` and `right` are rotated,
scaled views from two sides (affine maps of the plane).
"""
from dataclasses import dataclass, field
import math
from typing import Optional

import cv2
import numpy as np

JOINTS = ('shoulder', 'elbow', 'wrist', 'gripper')
LINKS = np.array([0.35, 0.30, 0.15])
LOWER = np.array([-0.3, -2.6, -2.2, 0.0])
UPPER = np.array([math.pi + 0.3, 2.6, 2.2, 1.0])
MAX_SPEED = np.array([2.0, 2.0, 2.5, 4.0])          # rad/s (gripper: 1/s)
HOME = np.array([1.57, 1.2, 0.6, 0.0])
PHYSICS_DT = 0.005
SUCCESS_RADIUS = 0.05
SUCCESS_HOLD = 0.3
CLOSED = 0.8
IMAGE_SIZE = (128, 128)                             # width, height
TARGET_RADIUS = 0.055


def forward_kinematics(q: np.ndarray) -> np.ndarray:
    """(4,) joint positions -> (4, 2) points: base, elbow, wrist, gripper tip."""
    angles = np.cumsum(q[:3])
    steps = LINKS[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.vstack([np.zeros(2), np.cumsum(steps, axis=0)])


def _camera_affines() -> dict:
    """World (x, y) metres -> pixel affine 2x3 for each camera."""
    w, h = IMAGE_SIZE

    def affine(angle_deg: float, scale: float, center_world, center_px) -> np.ndarray:
        a = math.radians(angle_deg)
        rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        rot = rot @ np.diag([1.0, -1.0])            # image y grows downwards
        offset = np.asarray(center_px) - rot @ np.asarray(center_world)
        return np.hstack([rot, offset[:, None]])
    return {'head': affine(0.0, w / 1.8, (0.0, 0.35), (w / 2, h / 2)),
            'left': affine(25.0, w / 2.0, (-0.05, 0.35), (w / 2, h / 2)),
            'right': affine(-25.0, w / 2.0, (0.05, 0.35), (w / 2, h / 2))}


CAMERAS = _camera_affines()
_BACKGROUND = {'head': (70, 70, 80), 'left': (60, 75, 65), 'right': (80, 68, 60)}


def draw_scene(camera: str, q: np.ndarray, targets: list) -> np.ndarray:
    """Draw the planar arm and the targets as `camera` sees them.

    Args:
        camera: one of CAMERAS.
        q: (4,) joint positions (shoulder, elbow, wrist, gripper).
        targets: (2,) world positions of the red targets, in metres.

    Returns:
        (H, W, 3) uint8 RGB image of IMAGE_SIZE.
    """
    w, h = IMAGE_SIZE
    image = np.empty((h, w, 3), np.uint8)
    image[:] = _BACKGROUND[camera]
    affine = CAMERAS[camera]
    scale = float(np.hypot(*affine[:, 0]))

    def px(point):
        p = affine[:, :2] @ point + affine[:, 2]
        return int(round(p[0] * 16)), int(round(p[1] * 16))
    shift = 4                                          # sub-pixel precision
    cv2.circle(image, px(np.zeros(2)), int(0.05 * scale * 16), (40, 40, 40), -1,
               cv2.LINE_AA, shift)
    for target in targets:
        cv2.circle(image, px(target), int(TARGET_RADIUS * scale * 16), (230, 40, 40),
                   -1, cv2.LINE_AA, shift)
    points = forward_kinematics(q)
    for a, b, color in zip(points[:-1], points[1:], ((80, 140, 230), (90, 170, 240),
                                                      (120, 200, 250))):
        cv2.line(image, px(a), px(b), color, max(1, int(0.03 * scale)), cv2.LINE_AA,
                 shift)
    angle = float(np.sum(q[:3]))
    normal = np.array([-math.sin(angle), math.cos(angle)])
    forward = np.array([math.cos(angle), math.sin(angle)])
    spread = 0.045 * (1.0 - 0.8 * q[3])
    for side in (-1.0, 1.0):
        base = points[-1] + side * spread * normal
        cv2.line(image, px(base), px(base + 0.05 * forward), (240, 230, 90),
                 max(1, int(0.015 * scale)), cv2.LINE_AA, shift)
    return image


def sample_target(rng: np.random.Generator, avoid: Optional[np.ndarray] = None) -> np.ndarray:
    """A reachable target in front of the robot, at least 0.25 m from `avoid`."""
    while True:
        radius = rng.uniform(0.35, 0.72)
        angle = rng.uniform(0.25, math.pi - 0.25)
        point = radius * np.array([math.cos(angle), math.sin(angle)])
        if avoid is None or np.linalg.norm(point - avoid) >= 0.25:
            return point


class EpisodeRules:
    """What both simulated worlds share: the set-point the servos follow and when an
    episode is over (attributes `command`, `success`, `time`, `episode_duration`)."""

    @property
    def done(self) -> bool:
        return self.success or self.time >= self.episode_duration

    def set_command(self, command: np.ndarray) -> None:
        """Set the servos' set-point: (4,) positions for shoulder, elbow, wrist, gripper,
        clipped to the joint limits.

        Raises:
            ValueError: not 4 finite values.
        """
        command = np.asarray(command, dtype=np.float64)
        if command.shape != (4,) or not np.all(np.isfinite(command)):
            raise ValueError(f'command must be 4 finite values, got {command}')
        self.command = np.clip(command, LOWER, UPPER)

    def count_hold(self, holding: bool, h: float, required: float) -> None:
        """Advance the success hold by one sub-step.

        Args:
            holding: whether the success condition holds in this sub-step.
            h: the sub-step, s.
            required: how long it must hold without a break, s.
        """
        if not holding:
            self.hold = 0.0
            return
        self.hold += h
        if self.hold >= required and not self.success:
            self.success, self.success_time = True, self.time


@dataclass
class SimWorld(EpisodeRules):
    """One episode of the task. Call `reset`, then `step(command, dt)` repeatedly."""

    seed: int = 0
    episode_duration: float = 8.0
    q: np.ndarray = field(default_factory=lambda: HOME.copy())
    command: np.ndarray = field(default_factory=lambda: HOME.copy())
    target: np.ndarray = field(default_factory=lambda: np.zeros(2))
    time: float = 0.0
    jump_time: float = 3.0
    jumped: bool = False
    hold: float = 0.0
    success: bool = False
    success_time: Optional[float] = None

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def reset(self, seed: Optional[int] = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.q = HOME + self.rng.uniform(-0.1, 0.1, 4) * np.array([1, 1, 1, 0])
        self.command = self.q.copy()
        self.target = sample_target(self.rng)
        self.jump_time = float(self.rng.uniform(2.0, 3.5))
        self.time, self.jumped, self.hold = 0.0, False, 0.0
        self.success, self.success_time = False, None

    @property
    def tip(self) -> np.ndarray:
        return forward_kinematics(self.q)[-1]

    def step(self, dt: float) -> None:
        """Advance the servos and the task by dt seconds (in PHYSICS_DT sub-steps)."""
        steps = max(1, int(round(dt / PHYSICS_DT)))
        h = dt / steps
        for _ in range(steps):
            delta = np.clip(self.command - self.q, -MAX_SPEED * h, MAX_SPEED * h)
            self.q = np.clip(self.q + delta, LOWER, UPPER)
            self.time += h
            if not self.jumped and self.time >= self.jump_time:
                self.target = sample_target(self.rng, self.target)
                self.jumped = True
            near = np.linalg.norm(self.tip - self.target) <= SUCCESS_RADIUS
            self.count_hold(self.jumped and near and self.q[3] >= CLOSED, h, SUCCESS_HOLD)

    def render(self, camera: str) -> np.ndarray:
        """(H, W, 3) uint8 RGB image of the scene from `camera`."""
        return draw_scene(camera, self.q, [self.target])


def inverse_kinematics(target: np.ndarray, q_now: np.ndarray) -> np.ndarray:
    """Arm joints that put the gripper tip on `target`, pointing away from the base.

    Args:
        target: (2,) world position, metres (clamped to the reachable distance).
        q_now: (>=3,) current joints; of the two elbow solutions, the one closer to them
            (and inside the joint limits) is returned.

    Returns:
        (3,) shoulder, elbow, wrist, clipped to the joint limits.
    """
    angle = math.atan2(target[1], target[0])
    wrist = target - LINKS[2] * np.array([math.cos(angle), math.sin(angle)])
    dist = min(np.linalg.norm(wrist), LINKS[0] + LINKS[1] - 1e-6)
    cos_elbow = (dist ** 2 - LINKS[0] ** 2 - LINKS[1] ** 2) / (2 * LINKS[0] * LINKS[1])
    best = None
    for sign in (1.0, -1.0):
        elbow = sign * math.acos(np.clip(cos_elbow, -1.0, 1.0))
        shoulder = math.atan2(wrist[1], wrist[0]) - math.atan2(
            LINKS[1] * math.sin(elbow), LINKS[0] + LINKS[1] * math.cos(elbow))
        q = np.array([shoulder, elbow, angle - shoulder - elbow])
        q[0] = (q[0] + math.pi) % (2 * math.pi) - math.pi
        if q[0] < LOWER[0]:
            q[0] += 2 * math.pi
        q[2] = (q[2] + math.pi) % (2 * math.pi) - math.pi
        cost = np.sum(np.abs(q - q_now[:3])) + 10 * np.sum(
            (q < LOWER[:3]) | (q > UPPER[:3]))
        if best is None or cost < best[0]:
            best = (cost, q)
    return np.clip(best[1], LOWER[:3], UPPER[:3])


def expert_action(world: SimWorld, max_step: float = 0.12) -> np.ndarray:
    """Scripted expert (privileged: knows the target): IK towards the target, close the
    gripper when the tip is near it, open it while travelling."""
    goal = inverse_kinematics(world.target, world.q)
    arm = world.q[:3] + np.clip(goal - world.q[:3], -max_step, max_step)
    near = np.linalg.norm(world.tip - world.target) < 0.07
    gripper = 1.0 if near else 0.0
    return np.concatenate([arm, [gripper]])
