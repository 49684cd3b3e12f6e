"""The goal-conditioned arm env shared by every task: spaces, control modes, observations, rewards, checks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim.backend import Backend
from sim.cell import Cell, CellError
from sim.engines import BACKENDS, make_backend
from sim.fiducials import object_markers
from sim.ik import EE_BOUNDS_M, ee_step_target
from sim.observation import (
    ObjectMotion,
    RawSignals,
    build_observation,
    check_layout,
    field_slices,
    observation_dim,
    with_layout,
)
from sim.properties import flat_layout, parse_name
from sim.property_target import FlatSetter, PropertyTarget
from sim.randomized import RandomizationArg, Randomizer
from sim.scene import NEUTRAL_ARM_Q_RAD, SceneSpec, with_table_height
from sim.signal_effects import SignalEffects

OBS_MODES = ("state", "pixels", "both")
CONTROLS = ("joint", "ee")
REWARD_TYPES = ("sparse", "dense")

#: Largest joint-target change per env step for a full action (rad) and end-effector move (m).
MAX_JOINT_STEP_RAD = 0.05
MAX_EE_STEP_M = 0.05
#: Largest finger target change per env step (m, per finger).
MAX_FINGER_STEP_M = 0.01


class ArmGoalEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Goal-conditioned Panda task.

    Observations: dict with `observation` (float32, see sim.observation), `achieved_goal` and `desired_goal`
    (3,) m, plus `image_<camera>` (H, W, 3) uint8 in pixel modes. In `pixels` mode `observation` holds only the
    robot's proprioception; the object is seen through the cameras.
    `obs_layout` 2 appends the relative features of sim.observation.RELATIVE_FIELDS to `observation`.
    Actions in [-1, 1]: joint mode (7 joint-target deltas), ee mode (3 end-effector deltas), each followed by
    one gripper command in tasks that use the gripper.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}
    #: Set by subclasses.
    task_name = ""
    uses_gripper = False
    has_object = False
    goal_low_m = np.zeros(3)
    goal_high_m = np.zeros(3)
    #: Arm joint positions every episode starts from (rad); ee mode keeps the gripper at the neutral pose's
    #: orientation (pointing down) whatever the start.
    start_arm_q_rad: tuple[float, ...] = NEUTRAL_ARM_Q_RAD

    def __init__(
        self,
        backend: str = "mujoco",
        obs_mode: str = "state",
        control: str = "joint",
        reward_type: str = "sparse",
        image_size: int | tuple[int, int] = 84,
        cameras: tuple[str, ...] | list[str] = ("scene",),
        distance_threshold_m: float = 0.05,
        render_mode: str | None = None,
        randomization: RandomizationArg | None = None,
        goal_workspace_base_m: Sequence[float] | None = None,
        table_height_m: float = 0.0,
        start_arm_q_rad: Sequence[float] | None = None,
        object_marker: bool = False,
        obs_layout: int = 1,
    ) -> None:
        _choice("backend", backend, BACKENDS)
        _choice("obs_mode", obs_mode, OBS_MODES)
        _choice("control", control, CONTROLS)
        _choice("reward_type", reward_type, REWARD_TYPES)
        self.obs_layout = check_layout(obs_layout)
        if render_mode is not None:
            _choice("render_mode", render_mode, tuple(self.metadata["render_modes"]))
        width, height = (image_size, image_size) if isinstance(image_size, int) else image_size
        box = None if goal_workspace_base_m is None else tuple(float(v) for v in goal_workspace_base_m)
        start = None if start_arm_q_rad is None else tuple(float(v) for v in start_arm_q_rad)
        self.cell = Cell(box, float(table_height_m), start).check()
        scene = with_table_height(self.make_scene(), self.cell.table_height_m).with_image_size(int(width), int(height))
        if object_marker:
            scene = self.with_object_marker(scene)
        cameras = tuple(cameras)
        known = [c.name for c in scene.cameras]
        for cam in cameras:
            if cam not in known:
                raise KeyError(f"unknown camera {cam!r}; this scene has {known}")
        if obs_mode != "state" and not cameras:
            raise ValueError(f"obs_mode={obs_mode!r} needs at least one camera")
        self.backend_name, self.obs_mode, self.control, self.reward_type = (
            backend,
            obs_mode,
            control,
            reward_type,
        )
        self.cameras = cameras if obs_mode != "state" else ()
        self.distance_threshold_m = float(distance_threshold_m)
        self.render_mode = render_mode
        # the cell, before any engine exists (a refused one leaks nothing): goals in its workspace (or the task's box
        # lifted with the table); ee targets may reach them all
        self.goal_low_m, self.goal_high_m = self.cell_goal_box(scene)
        self._table_top_m = self.cell.table_top_world_m(scene.robot_base_pos_m)
        self._ee_bounds_m = self.cell.ee_bounds_world(EE_BOUNDS_M, self.goal_low_m, self.goal_high_m,
                                                      scene.robot_base_pos_m)  # fmt: skip
        self.sim: Backend = make_backend(backend, scene)
        robot = self.sim.robot
        self._arm_lo, self._arm_hi = robot.arm_limits_rad[:, 0].copy(), robot.arm_limits_rad[:, 1].copy()
        self._finger_limits = robot.finger_limits_m
        self._neutral_q = np.array(self.cell.start_arm_q_rad or self.start_arm_q_rad)
        self._finger_closed = self._finger_limits[0] if not self.uses_gripper else self._finger_limits[1]

        n_act = (7 if control == "joint" else 3) + (1 if self.uses_gripper else 0)
        self.action_space = spaces.Box(-1.0, 1.0, (n_act,), np.float32)
        obs_with_object = self.has_object and obs_mode != "pixels"
        self._obs_with_object = obs_with_object
        inf = np.inf
        obs_spaces: dict[str, spaces.Space[Any]] = {
            "observation": spaces.Box(-inf, inf, (observation_dim(obs_with_object, self.obs_layout),), np.float32),
            "achieved_goal": spaces.Box(-inf, inf, (3,), np.float32),
            "desired_goal": spaces.Box(-inf, inf, (3,), np.float32),
        }
        for cam in self.cameras:
            spec = scene.camera(cam)
            obs_spaces[f"image_{cam}"] = spaces.Box(0, 255, (spec.height, spec.width, 3), np.uint8)
        self.observation_space = spaces.Dict(obs_spaces)  # type: ignore[assignment]

        self.goal = np.zeros(3)
        self._motion = ObjectMotion()
        self._time_s = 0.0
        self._arm_target = self._neutral_q.copy()
        self._finger_target = self._finger_closed
        self._ee_down_quat = self.sim.robot.link_pose(robot.ee_link, np.array(NEUTRAL_ARM_Q_RAD))[1]
        try:  # the cell's start pose, which may need the engine's kinematics; a refused one closes the engine
            self._neutral_q = self.cell_start_q(self._neutral_q)
            #: Where the end-effector starts every episode (m, world frame).
            self.start_ee_pos_m = self.sim.robot.link_pose(robot.ee_link, self._neutral_q)[0] + np.asarray(
                scene.robot_base_pos_m
            )
            if self.start_ee_pos_m[2] < self._table_top_m + 0.01:
                z, top = self.start_ee_pos_m[2], self._table_top_m
                raise CellError(f"{self.task_name}: the start pose puts the end-effector {z:.3f} m high, under the "
                                f"table top ({top:.3f} m): choose start_joints")  # fmt: skip
        except BaseException:
            self.sim.close()
            raise
        self._last_q = np.concatenate([self._neutral_q, [self._finger_closed] * 2])
        self._prev_obs = np.zeros(observation_dim(obs_with_object, self.obs_layout), np.float32)
        #: [start, stop] of `goal_rel_achieved_m` in `observation` (layout 2; HER relabelling rewrites it), or None.
        self.goal_relative_slice: list[int] | None = None
        if self.obs_layout != 1:
            rel = field_slices(obs_with_object, self.obs_layout)["goal_rel_achieved_m"]
            self.goal_relative_slice = [rel.start, rel.stop]
        self.effects = SignalEffects(obs_with_object)
        self.randomizer: Randomizer | None = None
        if randomization is not None:
            try:
                self.randomizer = Randomizer(self, randomization)
            except BaseException:
                self.sim.close()
                raise

    # -- task hooks ----------------------------------------------------------------------------
    def cell_goal_box(self, scene: SceneSpec) -> tuple[np.ndarray, np.ndarray]:
        """The goal box (world frame) in this cell; object tasks keep it on the table."""
        return self.cell.goal_box_world(type(self).goal_low_m, type(self).goal_high_m, scene.robot_base_pos_m)

    def cell_start_q(self, q: np.ndarray) -> np.ndarray:
        """The start pose in this cell (tasks whose start depends on the table override it)."""
        return q

    def solve_ee_position(self, q0: np.ndarray, target_m: np.ndarray, iterations: int = 200) -> np.ndarray:
        """Arm joints (7,) that put the end-effector at `target_m` (world) pointing down, from `q0`: the ee-mode IK
        step iterated on the engine's kinematics. CellError when it does not get within 2 mm."""
        q, bounds = np.asarray(q0, float).copy(), np.array([[-5.0, -5.0, -5.0], [5.0, 5.0, 5.0]])
        finger = self._finger_closed
        err = np.inf
        for _ in range(iterations):
            self.sim.reset(q, finger, {})
            pos, quat = self.sim.ee_pose()
            err = float(np.linalg.norm(target_m - pos))
            if err < 1e-4:
                break
            jac = self.sim.arm_jacobian(self.sim.robot.ee_link)
            q = np.clip(ee_step_target(q, pos, quat, jac, target_m - pos, self._ee_down_quat, bounds),
                        self._arm_lo, self._arm_hi)  # fmt: skip
        if err > 2e-3:
            raise CellError(f"{self.task_name}: no start pose puts the end-effector at {np.round(target_m, 3).tolist()}"
                            f" m (world; {err * 1000:.0f} mm off): choose start_joints")  # fmt: skip
        return q

    def make_scene(self) -> SceneSpec:
        """The task's scene (objects); the default has none."""
        return SceneSpec()

    def with_object_marker(self, scene: SceneSpec) -> SceneSpec:
        """The scene with ArUco markers on the object (sim.fiducials.object_markers; the `object_marker` keyword,
        for a camera tracker): a cube carries ids 0-4 on its top and four sides, a cylinder id 0 on its top."""
        obj = next((o for o in scene.objects if o.name == "object"), None)
        if obj is None:
            raise ValueError(f"object_marker: {self.task_name} has no object to put a marker on")
        if obj.shape == "sphere":
            raise ValueError("object_marker: a sphere has no flat top for the marker; use a cube or a cylinder")
        faces = 5 if obj.shape == "box" and len(set(obj.size_m)) == 1 else 1
        return replace(scene, patterns=(*scene.patterns, *object_markers(obj.name, obj.half_height_m, faces)))

    def sample_goal(self) -> np.ndarray:
        """A goal (3,) m drawn from the task's goal box with `self.np_random`."""
        return self.np_random.uniform(self.goal_low_m, self.goal_high_m)

    def sample_objects(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Initial object poses for a new episode."""
        return {}

    def achieved_goal(self) -> np.ndarray:
        """The position that is compared with the goal (3,) m."""
        raise NotImplementedError

    def achieved_goal_from(self, raw: RawSignals) -> np.ndarray:
        """achieved_goal() from signals just read (tasks override it to avoid reading the engine twice)."""
        return self.achieved_goal()

    # -- gymnasium API -------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode. `options` may hold `goal` (3,) m, checked against the task's goal box, and
        `nominal: True` to run this episode at the randomization space's nominal values (nominal evaluation)."""
        super().reset(seed=seed)
        options = dict(options or {})
        goal = options.pop("goal", None)
        nominal = bool(options.pop("nominal", False))
        if options:
            raise KeyError(f"unknown reset option(s) {sorted(options)}; known: ['goal', 'nominal']")
        if self.randomizer is not None:
            if seed is not None:
                self.randomizer.reseed(seed)
            self.randomizer.begin_episode(nominal)
        self.effects.reset()
        self._motion.reset()
        self._time_s = 0.0
        objects = self.sample_objects()
        self.goal = self.sample_goal() if goal is None else self._check_goal(goal)
        if self.sim.scene.target is not None:
            objects["target"] = (self.goal.copy(), np.array([1.0, 0.0, 0.0, 0.0]))
        self._arm_target = self._neutral_q.copy()
        self._finger_target = self._finger_closed
        self.sim.reset(self._arm_target, self._finger_target, objects)
        obs = self._observe()
        if self.effects.active:
            obs = self.effects.observe(obs, self.np_random)
        obs = self._with_layout(obs)
        self._prev_obs = obs["observation"]
        return obs, {"is_success": bool(self._success(obs["achieved_goal"], self.goal))}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        action = policy_action = self._check_action(action)
        effects = self.effects.active
        if effects:
            action = self.effects.delay_action(action)
        q = self._last_q  # joint positions as observed after the previous reset/step: nothing moved since
        arm_q = q[:7]
        if self.control == "joint":
            target = arm_q + MAX_JOINT_STEP_RAD * action[:7]
        else:
            target = self._ee_step(arm_q, MAX_EE_STEP_M * action[:3])
        np.minimum(target, self._arm_hi, out=target)
        np.maximum(target, self._arm_lo, out=target)
        self._arm_target = target
        if self.uses_gripper:
            finger = q[7] + MAX_FINGER_STEP_M * float(action[-1])
            self._finger_target = float(np.clip(finger, *self._finger_limits))
        substeps = self.effects.substeps(self.sim.scene.n_substeps, self.np_random) if effects else None
        self.sim.step(self._arm_target, self._finger_target, substeps)
        self._time_s += (self.sim.scene.n_substeps if substeps is None else substeps) * self.sim.scene.physics_dt_s
        obs = self._observe()
        if effects:
            obs = self.effects.observe(obs, self.np_random)
        obs = self._with_layout(obs)
        d = obs["achieved_goal"] - obs["desired_goal"]
        distance = float(np.sqrt(d @ d))
        success = distance < self.distance_threshold_m
        # the same values as compute_reward, without its vectorised overhead
        reward = (0.0 if success else -1.0) if self.reward_type == "sparse" else float(np.float32(-distance))
        if self.randomizer is not None:
            self.randomizer.record_step(self._prev_obs, policy_action, obs["observation"], reward, success)
            self._prev_obs = obs["observation"]
        return obs, reward, success, False, {"is_success": success, "distance_m": distance}

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Vectorised reward: sparse -1 until within `distance_threshold_m`, 0 then; dense: minus the distance.

        achieved_goal, desired_goal: (..., 3). Returns (...,) float32.
        """
        d = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        if self.reward_type == "sparse":
            return -(d > self.distance_threshold_m).astype(np.float32)
        return (-d).astype(np.float32)

    def render(self) -> np.ndarray | None:
        """RGB frame (H, W, 3) uint8 from the `scene` camera when render_mode is 'rgb_array'."""
        if self.render_mode != "rgb_array":
            return None
        return self.sim.render("scene")  # type: ignore[return-value]

    def close(self) -> None:
        if self.randomizer is not None:
            self.randomizer.end_episode()
        self.sim.close()

    # -- properties (PropertyTarget): engine ones go to the backend, env-level ones to the signal effects ---------
    def concrete_property_names(self, name: str) -> list[str]:
        """The concrete property names (`kind:element`, or `kind`) that a possibly wildcard name refers to."""
        return self._owner(name).concrete_property_names(name)

    def property_names(self) -> list[str]:
        """Every concrete property this env can randomize: the engine's plus the env-level ones."""
        return self.sim.property_names() + self.effects.property_names()

    def get_property(self, name: str) -> dict[str, np.ndarray]:
        """Values of `kind:pattern` for every matching element, keyed by concrete name."""
        return self._owner(name).get_property(name)

    def set_property(self, name: str, value: object) -> None:
        """Set `kind:pattern` on every matching element (validated first; nothing changes on error)."""
        self.set_properties({name: value})

    def set_properties(self, values: Mapping[str, object]) -> None:
        """Set several properties; every value is validated before anything changes."""
        engine = {n: v for n, v in values.items() if self._owner(n) is self.sim}
        env_level = self.effects.check_properties({n: v for n, v in values.items() if n not in engine})
        if engine:
            self.sim.set_properties(engine)  # validates every engine value before it changes any
        self.effects.set_properties(env_level)

    def compile_setter(self, names: Sequence[str]) -> FlatSetter:
        """A fast writer for fixed concrete property names taking one flat vector (see Backend.compile_setter):
        the backend's compiled setter for the engine's names, the signal effects' for the env-level ones."""
        layout = flat_layout(names)
        owners: tuple[PropertyTarget, ...] = (self.sim, self.effects)
        parts: list[tuple[FlatSetter, np.ndarray]] = []
        for owner in owners:
            mine = [i for i, n in enumerate(names) if self._owner(n) is owner]
            if mine:
                idx = np.concatenate([np.arange(layout[i].start, layout[i].stop) for i in mine])
                parts.append((owner.compile_setter([names[i] for i in mine]), idx))

        def write(flat: np.ndarray, forward: bool = True) -> None:
            for owner_write, idx in parts:
                owner_write(flat[idx], forward)

        return write

    def _owner(self, name: str) -> PropertyTarget:
        """Who holds property `name`: the signal effects for env-level kinds, the engine backend otherwise."""
        return self.effects if parse_name(name)[0].env_level else self.sim

    def randomization_state(self) -> dict[str, Any] | None:
        """The randomization sampler's state (ranges, ADR boundaries, Active DR particles), or None."""
        return None if self.randomizer is None else self.randomizer.state_dict()

    # -- internals -----------------------------------------------------------------------------
    def _success(self, achieved: np.ndarray, desired: np.ndarray) -> bool:
        return bool(np.linalg.norm(achieved - desired) < self.distance_threshold_m)

    def _check_action(self, action: np.ndarray) -> np.ndarray:
        arr = np.array(action, dtype=np.float64)
        if arr.shape != self.action_space.shape:
            raise ValueError(
                f"{self.task_name}: action must have shape {self.action_space.shape} "
                f"(control={self.control!r}), got {arr.shape}"
            )
        if not all(map(math.isfinite, arr.tolist())):  # faster than numpy's reduction on 3 to 8 numbers
            bad = ~np.isfinite(arr)
            raise ValueError(
                f"{self.task_name}: action has non-finite values at indices {np.flatnonzero(bad).tolist()}: "
                f"{arr.tolist()}; refusing to step"
            )
        np.minimum(arr, 1.0, out=arr)  # np.clip's Python wrapper costs more than the two ufuncs
        np.maximum(arr, -1.0, out=arr)
        return arr

    def _check_goal(self, goal: Any) -> np.ndarray:
        g = np.asarray(goal, dtype=float)
        if g.shape != (3,) or not np.all(np.isfinite(g)):
            raise ValueError(f"{self.task_name}: goal must be 3 finite numbers (m), got {goal!r}")
        if np.any(g < self.goal_low_m - 1e-9) or np.any(g > self.goal_high_m + 1e-9):
            raise ValueError(
                f"{self.task_name}: goal {g.tolist()} is outside the workspace "
                f"[{self.goal_low_m.tolist()}, {self.goal_high_m.tolist()}] (m, world frame)"
            )
        return g

    def _ee_step(self, arm_q: np.ndarray, delta_m: np.ndarray) -> np.ndarray:
        """Joint target for an end-effector displacement (see ee_step_target), from the engine's pose and Jacobian."""
        pos, quat = self.sim.ee_pose()
        jac = self.sim.arm_jacobian(self.sim.robot.ee_link)
        return ee_step_target(arm_q, pos, quat, jac, delta_m, self._ee_down_quat, self._ee_bounds_m)

    def _with_layout(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The observation in this env's layout, built from the emitted (noisy, delayed) layout-1 vector and goals."""
        if self.obs_layout != 1:
            vec = with_layout(obs["observation"], obs["achieved_goal"], obs["desired_goal"], self._obs_with_object,
                              self.obs_layout)  # fmt: skip
            obs = {**obs, "observation": vec}
        return obs

    def _observe(self) -> dict[str, np.ndarray]:
        raw, self._last_q = self.sim.read_signals("object" if self._obs_with_object else None)
        if self._obs_with_object:  # velocities as the observation defines them (a robot's node computes the same)
            assert raw.object_pos_m is not None and raw.object_quat_wxyz is not None
            lin, ang = self._motion.update(self._time_s, raw.object_pos_m, raw.object_quat_wxyz)
            raw = replace(raw, object_linvel_m_s=lin, object_angvel_rad_s=ang)
        obs = {
            "observation": build_observation(raw, self._obs_with_object),
            "achieved_goal": self.achieved_goal_from(raw).astype(np.float32),
            "desired_goal": self.goal.astype(np.float32),
        }
        for cam in self.cameras:
            obs[f"image_{cam}"] = self.sim.render(cam)  # type: ignore[assignment]
        return obs


def _choice(field: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{field} must be one of {list(allowed)}, got {value!r}")
