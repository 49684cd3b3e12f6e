"""PyBullet realisation of a SceneSpec: Python PD control with gravity compensation, TinyRenderer images."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pybullet as pb

from sim.backend import Backend, Pose
from sim.fiducials import BLACK_RGBA, CELL_THICKNESS_M, PLATE_THICKNESS_M, WHITE_RGBA, PatternSpec, black_boxes
from sim.properties import TEXTURE_SIZE
from sim.robot import RobotDescription
from sim.scene import ObjectSpec, SceneSpec
from sim.transforms import mat_to_quat, quat_to_mat, wxyz_to_xyzw, xyzw_to_wxyz

#: Shapes one pybullet visual shape array keeps (its b3 limit); longer lists lose the rest.
SHAPES_PER_ARRAY = 16

#: Velocity scale (rad/s or m/s) of the smooth sign function that models dry joint friction: tanh(qd / scale).
FRICTIONLOSS_VEL_SCALE = 0.01
#: Solver iterations per physics step (pybullet's own default, set explicitly so it is visible).
NUM_SOLVER_ITERATIONS = 50
#: Half extent (m) of the visual floor slab under the table; its collision is an infinite plane.
FLOOR_HALF_M = 3.0
FLOOR_RGBA = (0.3, 0.3, 0.3, 1.0)
#: Colour of the robot's visual meshes (light grey, as the real Panda and the MuJoCo backend).
ROBOT_RGBA = (0.92, 0.92, 0.92, 1.0)
#: Sliding, torsional, rolling friction of the robot's links: MuJoCo's defaults, which the MuJoCo backend keeps
#: (pybullet would take 0.5 for the arm and the URDF's <contact> values for the fingers).
ROBOT_FRICTION = (1.0, 0.005, 0.0001)


def _wxyz(q_xyzw: tuple[float, ...]) -> np.ndarray:
    """PyBullet quaternion -> ours, with w >= 0 like `sim.transforms.mat_to_quat`."""
    q = xyzw_to_wxyz(q_xyzw)
    return q if q[0] >= 0.0 else -q


def _box_mesh(half_m: tuple[float, ...]) -> tuple[list[list[float]], list[int], list[list[float]], list[list[float]]]:
    """Vertices, triangle indices, UVs and normals of a box with half extents `half_m`; each face maps the
    whole texture (u along the face's first in-plane axis, v along the second)."""
    verts: list[list[float]] = []
    uvs: list[list[float]] = []
    normals: list[list[float]] = []
    idx: list[int] = []
    for axis in range(3):
        u_ax, v_ax = (a for a in range(3) if a != axis)
        ccw_sign = -1.0 if axis == 1 else 1.0  # sign of e_u x e_v along the face normal's axis
        for sign in (1.0, -1.0):
            base = len(verts)
            for du, dv in ((-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)):
                p = [0.0, 0.0, 0.0]
                p[axis], p[u_ax], p[v_ax] = sign * half_m[axis], du * half_m[u_ax], dv * half_m[v_ax]
                n = [0.0, 0.0, 0.0]
                n[axis] = sign
                verts.append(p)
                normals.append(n)
                uvs.append([(du + 1.0) / 2.0, (dv + 1.0) / 2.0])
            tri = (0, 1, 2, 0, 2, 3) if sign * ccw_sign > 0 else (0, 2, 1, 0, 3, 2)
            idx.extend(base + t for t in tri)
    return verts, idx, uvs, normals


def _shape_inertia(spec: ObjectSpec, mass_kg: float) -> np.ndarray:
    """Principal moments (3,) kg m^2 of a solid primitive about its centre (MuJoCo computes the same)."""
    s = spec.size_m
    if spec.shape == "box":
        x, y, z = (2.0 * v for v in s)
        return mass_kg / 12.0 * np.array([y * y + z * z, x * x + z * z, x * x + y * y])
    if spec.shape == "sphere":
        return np.full(3, 0.4 * mass_kg * s[0] ** 2)
    r, h = s[0], 2.0 * s[1]
    side = mass_kg * (3.0 * r * r + h * h) / 12.0
    return np.array([side, side, 0.5 * mass_kg * r * r])


class PybulletBackend(Backend):
    """The Panda and a SceneSpec in a private pybullet DIRECT client.

    Control is PD torque with gravity compensation, computed in Python every physics step:
    f = clip(kp (target - q) - kd qd, -effort, effort) - damping qd - frictionloss tanh(qd / 0.01),
    applied as tau = f - (A + dt D) a + G(q), where G(q) is pybullet's inverse dynamics at zero velocity
    and acceleration (it follows `gravity`), A = diag(armature), D = d(-f)/d(qd) (kd where the actuator
    is not saturated, plus the damping and friction slopes) and a solves (M + A + dt D) a = f - C(q, qd).
    pybullet's explicit step then gives the joints the acceleration MuJoCo's implicitfast integrator
    would: armature adds rotor inertia on its own joint only, and the velocity terms are implicit, so
    both engines follow the same joint trajectory (explicit PD differs by ~1e-2 rad at kd = 50, dt = 2 ms)
    and high damping stays stable. pybullet's own joint damping, link damping and velocity motors are
    switched off so that the only forces on the joints are this law, the contacts and the joint limits.

    Approximations (pybullet has no direct equivalent):
    - Contacts and joint limits act on the arm without its armature (pybullet's solver sees M, not M + A).
    - `body_mass` and `body_inertia` are independent (as in MuJoCo): setting the mass keeps the inertia.
      On fixed bodies (the robot base, fixed task objects) they are stored but have no effect. Principal
      moments that violate the triangle inequality are rejected (pybullet's dynamics cannot use them).
    - Lighting maps onto TinyRenderer's single directional light; see `_light_kwargs`.
    """

    name = "pybullet"

    def __init__(self, scene: SceneSpec, robot: RobotDescription) -> None:
        super().__init__(scene, robot)
        self._cid = pb.connect(pb.DIRECT)
        if self._cid < 0:
            raise RuntimeError("pybullet.connect(DIRECT) failed")
        self._closed = False
        self._texture_dir: str | None = None
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # -- construction ----------------------------------------------------------------------------
    def _build(self) -> None:
        scene, robot, cid = self.scene, self.robot, self._cid
        pb.setPhysicsEngineParameter(
            fixedTimeStep=scene.physics_dt_s,
            numSolverIterations=NUM_SOLVER_ITERATIONS,
            numSubSteps=0,
            deterministicOverlappingPairs=1,
            physicsClientId=cid,
        )
        self._gravity = np.asarray(scene.gravity, dtype=float)
        pb.setGravity(*self._gravity.tolist(), physicsClientId=cid)

        # Robot, and name -> index maps read from the engine (never assumed).
        self._robot_id = pb.loadURDF(
            str(robot.urdf_path),
            basePosition=list(scene.robot_base_pos_m),
            useFixedBase=True,
            flags=pb.URDF_USE_INERTIA_FROM_FILE,
            physicsClientId=cid,
        )
        rid = self._robot_id
        self._robot_base_com = pb.getBasePositionAndOrientation(rid, physicsClientId=cid)
        self._link_index: dict[str, int] = {pb.getBodyInfo(rid, physicsClientId=cid)[0].decode(): -1}
        self._joint_index: dict[str, int] = {}
        for i in range(pb.getNumJoints(rid, physicsClientId=cid)):
            info = pb.getJointInfo(rid, i, physicsClientId=cid)
            self._joint_index[info[1].decode()] = i
            self._link_index[info[12].decode()] = i
        missing = [j.name for j in robot.movable_joints if j.name not in self._joint_index]
        if missing:
            raise ValueError(f"joints {missing} of {robot.name!r} not found in {robot.urdf_path}")
        movable = robot.movable_joints
        self._joint_names = [j.name for j in movable]
        self._child_link: dict[str, str] = {j.name: j.child for j in movable}
        self._movable = [self._joint_index[j.name] for j in movable]
        self._n_dof = len(self._movable)
        self._zeros = [0.0] * self._n_dof
        for link_idx in range(-1, pb.getNumJoints(rid, physicsClientId=cid)):
            pb.changeDynamics(rid, link_idx, linearDamping=0.0, angularDamping=0.0, physicsClientId=cid)
        for j in self._movable:
            pb.changeDynamics(rid, j, jointDamping=0.0, physicsClientId=cid)
        pb.setJointMotorControlArray(rid, self._movable, pb.VELOCITY_CONTROL, forces=self._zeros, physicsClientId=cid)
        # Controller state over the movable joints (robot.movable_joints order).
        n_arm = self.n_arm
        self._kp = np.array([*scene.arm_kp, *([scene.finger_kp] * self.n_fingers)], dtype=float)
        self._kd = np.array([*scene.arm_kd, *([scene.finger_kd] * self.n_fingers)], dtype=float)
        if self._kp.shape != (self._n_dof,) or self._kd.shape != (self._n_dof,):
            raise ValueError(f"scene gains must cover {n_arm} arm joints, got kp={scene.arm_kp} kd={scene.arm_kd}")
        self._effort = np.array([j.effort for j in movable], dtype=float)
        self._damping = np.zeros(self._n_dof)
        self._frictionloss = np.zeros(self._n_dof)
        self._armature = np.zeros(self._n_dof)
        self._range = np.array([(j.lower, j.upper) for j in movable], dtype=float)
        self._target = np.zeros(self._n_dof)
        self._passive = False  # any damping or frictionloss set (skips their terms in the hot path when not)

        # Scene objects.
        self._floor_id = self._make_floor()
        self._textures: dict[str, np.ndarray] = {}
        self._texture_cache: dict[str, int] = {}
        self._obj_ids: dict[str, int] = {}
        self._scale: dict[str, float] = {}
        self._object_specs: dict[str, ObjectSpec] = {}
        for spec in scene.all_objects:
            if spec.name in self._obj_ids or spec.name in self._link_index:
                raise ValueError(f"scene object name {spec.name!r} is used twice (objects or robot links)")
            self._obj_ids[spec.name] = self._make_object(spec)
            self._object_specs[spec.name] = spec

        # Property elements: (body id, link index) per name, plus values pybullet cannot hold or read back.
        self._bodies: dict[str, tuple[int, int]] = {}
        self._fixed_bodies: set[str] = set()
        self._mass: dict[str, float] = {}
        self._inertia: dict[str, np.ndarray] = {}
        for link in robot.links:
            if link.mass_kg > 0.0:
                self._bodies[link.name] = (rid, self._link_index[link.name])
                self._mass[link.name] = float(link.mass_kg)
                self._inertia[link.name] = np.array(link.inertia_diag, dtype=float)
        self._fixed_bodies.add(robot.base_link)
        for spec in scene.objects:
            self._bodies[spec.name] = (self._obj_ids[spec.name], -1)
            self._mass[spec.name] = float(spec.mass_kg)
            self._inertia[spec.name] = _shape_inertia(spec, spec.mass_kg)
            if spec.fixed or spec.visual_only:
                self._fixed_bodies.add(spec.name)
            else:
                self._apply_inertia(spec.name)
        # collision: links and objects with collision shapes (table included); visual: everything drawn.
        self._collision: dict[str, tuple[int, int]] = {}
        self._visual: dict[str, tuple[int, int]] = {}
        self._rgba: dict[str, np.ndarray] = {}
        drawn = {v[1] for v in pb.getVisualShapeData(rid, physicsClientId=cid)}
        for link in robot.links:
            idx = self._link_index[link.name]
            if link.collision_meshes:
                self._collision[link.name] = (rid, idx)
                lateral, spinning, rolling = ROBOT_FRICTION
                pb.changeDynamics(
                    rid,
                    idx,
                    lateralFriction=lateral,
                    spinningFriction=spinning,
                    rollingFriction=rolling,
                    physicsClientId=cid,
                )
            if link.visual_meshes and idx in drawn:
                self._visual[link.name] = (rid, idx)
                self._rgba[link.name] = np.array(ROBOT_RGBA)
                pb.changeVisualShape(rid, idx, rgbaColor=list(ROBOT_RGBA), physicsClientId=cid)
        for spec in scene.all_objects:
            if not spec.visual_only:
                self._collision[spec.name] = (self._obj_ids[spec.name], -1)
            self._visual[spec.name] = (self._obj_ids[spec.name], -1)
            self._rgba[spec.name] = np.array(spec.rgba, dtype=float)
        self._patterns = [(p, self._make_pattern(p)) for p in scene.patterns]

        self._lights = {
            lt.name: {
                "light_pos": np.array(lt.pos_m, dtype=float),
                "light_dir": np.array(lt.dir, dtype=float) / np.linalg.norm(lt.dir),  # MuJoCo normalises it too
                "light_diffuse": np.array(lt.diffuse, dtype=float),
                "light_ambient": np.array(lt.ambient, dtype=float),
                "specular": np.array(lt.specular, dtype=float),
            }
            for lt in scene.lights
        }
        self._cameras = {
            c.name: {
                "camera_pos": np.array(c.pos_m, dtype=float),
                "camera_quat": np.array(c.quat, dtype=float) / np.linalg.norm(c.quat),
                "camera_fovy": np.array(c.fovy_deg, dtype=float),
            }
            for c in scene.cameras
        }
        for c in scene.cameras:
            if c.parent is not None and c.parent not in self._link_index:
                raise ValueError(f"camera {c.name!r}: parent {c.parent!r} is not a link of {robot.name!r}")
        table = scene.table
        self._scene_centre_m = np.array(table.pos_m) + np.array([0.0, 0.0, table.half_height_m])

        q0 = np.array([(j.lower + j.upper) / 2.0 if j.lower < j.upper else 0.0 for j in movable])
        self.reset(q0[: self.n_arm], float(q0[-1]), {})

    def _make_floor(self) -> int:
        table = self.scene.table
        z = table.pos_m[2] - table.half_height_m
        col = pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=self._cid)
        vis = pb.createVisualShape(
            pb.GEOM_BOX,
            halfExtents=[FLOOR_HALF_M, FLOOR_HALF_M, 0.005],
            visualFramePosition=[0.0, 0.0, -0.005],
            rgbaColor=list(FLOOR_RGBA),
            physicsClientId=self._cid,
        )
        return pb.createMultiBody(0.0, col, vis, basePosition=[0.0, 0.0, z], physicsClientId=self._cid)

    def _make_object(self, spec: ObjectSpec) -> int:
        cid, s = self._cid, spec.size_m
        if spec.shape == "box":  # a mesh, so that a texture covers each face once (pybullet's box uses an atlas)
            verts, idx, uvs, normals = _box_mesh(s)
            vis = pb.createVisualShape(
                pb.GEOM_MESH,
                vertices=verts,
                indices=idx,
                uvs=uvs,
                normals=normals,
                rgbaColor=list(spec.rgba),
                physicsClientId=cid,
            )
            col_kw: dict[str, object] = {"halfExtents": list(s)}
            shape = pb.GEOM_BOX
        elif spec.shape == "sphere":
            vis = pb.createVisualShape(pb.GEOM_SPHERE, radius=s[0], rgbaColor=list(spec.rgba), physicsClientId=cid)
            col_kw, shape = {"radius": s[0]}, pb.GEOM_SPHERE
        else:
            vis = pb.createVisualShape(
                pb.GEOM_CYLINDER,
                radius=s[0],
                length=2.0 * s[1],
                rgbaColor=list(spec.rgba),
                physicsClientId=cid,
            )
            col_kw, shape = {"radius": s[0], "height": 2.0 * s[1]}, pb.GEOM_CYLINDER
        col = -1 if spec.visual_only else pb.createCollisionShape(shape, physicsClientId=cid, **col_kw)
        mass = 0.0 if (spec.fixed or spec.visual_only) else spec.mass_kg
        body = pb.createMultiBody(
            baseMass=mass,
            baseCollisionShapeIndex=col,
            baseVisualShapeIndex=vis,
            basePosition=list(spec.pos_m),
            baseOrientation=wxyz_to_xyzw(spec.quat),
            physicsClientId=cid,
        )
        pb.changeDynamics(
            body,
            -1,
            lateralFriction=spec.friction[0],
            spinningFriction=spec.friction[1],
            rollingFriction=spec.friction[2],
            linearDamping=0.0,
            angularDamping=0.0,
            physicsClientId=cid,
        )
        if not spec.visual_only:  # white texture under the colour, so `texture:<name>` can draw a pattern
            white = np.ones((TEXTURE_SIZE, TEXTURE_SIZE, 3))
            pb.changeVisualShape(body, -1, textureUniqueId=self._texture_id(white), physicsClientId=cid)
            pb.changeVisualShape(body, -1, rgbaColor=list(spec.rgba), physicsClientId=cid)
            self._textures[spec.name] = white
        return body

    def _texture_id(self, rgb: np.ndarray) -> int:
        """pybullet texture id for an (N, N, 3) image in [0, 1], loaded once per distinct image.

        TinyRenderer reads textures only from files (changeTexture reaches the OpenGL renderer alone) and
        never frees them, so each distinct image costs about 50 kB for the life of the client.
        """
        pixels = np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
        key = hashlib.sha1(pixels.tobytes()).hexdigest()
        tex = self._texture_cache.get(key)
        if tex is None:
            from PIL import Image

            if self._texture_dir is None:
                self._texture_dir = tempfile.mkdtemp(prefix="sim2real_pybullet_tex_")
            path = os.path.join(self._texture_dir, f"{key}.png")
            Image.fromarray(pixels).save(path)
            try:
                tex = pb.loadTexture(path, physicsClientId=self._cid)
            finally:
                os.remove(path)
            if tex < 0:
                raise RuntimeError(f"pybullet could not load a texture from {path}")
            self._texture_cache[key] = tex
        return tex

    # -- lifecycle and control ------------------------------------------------------------------
    def reset(self, arm_q_rad: np.ndarray, finger_q_m: float, objects: Mapping[str, Pose]) -> None:
        arm = np.asarray(arm_q_rad, dtype=float)
        if arm.shape != (self.n_arm,):
            raise ValueError(f"arm configuration must have shape ({self.n_arm},), got {arm.shape}")
        if not (np.all(np.isfinite(arm)) and np.isfinite(finger_q_m)):
            raise ValueError(f"joint positions must be finite, got arm={arm.tolist()} finger={finger_q_m}")
        unknown = [name for name in objects if name not in self._obj_ids]
        if unknown:
            raise KeyError(f"unknown objects {unknown}; this scene has {list(self._obj_ids)}")
        poses = {name: self._check_pose(name, *pose) for name, pose in objects.items()}
        self._drop_contacts()
        rid, cid = self._robot_id, self._cid
        pb.resetBasePositionAndOrientation(rid, *self._robot_base_com, physicsClientId=cid)
        q = np.concatenate([arm, np.full(self.n_fingers, float(finger_q_m))])
        for j, v in zip(self._movable, q.tolist(), strict=True):
            pb.resetJointState(rid, j, v, 0.0, physicsClientId=cid)
        self._target[:] = q
        for name, spec in self._object_specs.items():
            if name in poses:
                self._place(name, *poses[name])
            elif not spec.fixed:
                self._place(name, np.array(spec.pos_m, dtype=float), np.array(spec.quat, dtype=float))

    def _drop_contacts(self) -> None:
        """Forget every cached contact of the robot and the movable objects, so that an episode does not
        depend on the one before (pybullet warm-starts contacts from its persistent manifolds): move them
        far apart, let the broadphase drop their pairs, and leave the caller to put them back."""
        cid = self._cid
        movers = [self._robot_id] + [b for n, b in self._obj_ids.items() if not self._object_specs[n].fixed]
        for k, body in enumerate(movers):
            pb.resetBasePositionAndOrientation(body, [0.0, 0.0, 1000.0 + 10.0 * k], [0, 0, 0, 1], physicsClientId=cid)
        pb.performCollisionDetection(physicsClientId=cid)

    def step(self, arm_target_rad: np.ndarray, finger_target_m: float, n_substeps: int | None = None) -> None:
        arm = self._check_targets(arm_target_rad, finger_target_m)
        target = self._target
        target[: self.n_arm] = arm
        target[self.n_arm :] = finger_target_m
        np.clip(target, self._range[:, 0], self._range[:, 1], out=target)

        rid, cid, movable, zeros = self._robot_id, self._cid, self._movable, self._zeros
        kp, kd, effort, neg_effort = self._kp, self._kd, self._effort, -self._effort
        damping, frictionloss, passive, armature = self._damping, self._frictionloss, self._passive, self._armature
        dt, inv_scale, diag_step = self.scene.physics_dt_s, 1.0 / FRICTIONLOSS_VEL_SCALE, self._n_dof + 1
        get_states, inv_dyn, mass_matrix = pb.getJointStates, pb.calculateInverseDynamics, pb.calculateMassMatrix
        set_control, step_sim, torque = pb.setJointMotorControlArray, pb.stepSimulation, pb.TORQUE_CONTROL
        array, solve, minimum, maximum = np.array, np.linalg.solve, np.minimum, np.maximum
        for _ in range(n_substeps or self.scene.n_substeps):
            states = get_states(rid, movable, physicsClientId=cid)
            q = [s[0] for s in states]
            qd_list = [s[1] for s in states]
            qd = array(qd_list)
            gravity_tau = array(inv_dyn(rid, q, zeros, zeros, physicsClientId=cid))
            bias = array(inv_dyn(rid, q, qd_list, zeros, physicsClientId=cid))  # Coriolis + gravity torques
            force = kp * (target - array(q))
            force -= kd * qd
            stiff = kd * (abs(force) < effort)  # d(-force)/d(qd); zero where the actuator saturates
            minimum(force, effort, out=force)
            maximum(force, neg_effort, out=force)
            if passive:
                th = np.tanh(qd * inv_scale)
                force -= damping * qd + frictionloss * th
                stiff += damping + frictionloss * inv_scale * (1.0 - th * th)
            # Solve (M + A + dt D) a = force - Coriolis (armature A, velocity terms implicit), then apply the
            # torque that gives pybullet's explicit step that same acceleration: M a = force - (A + dt D) a.
            stiff *= dt
            stiff += armature
            m = array(mass_matrix(rid, q, physicsClientId=cid))
            m.ravel()[::diag_step] += stiff
            stiff *= solve(m, force - bias + gravity_tau)
            force -= stiff
            force += gravity_tau
            set_control(rid, movable, torque, forces=force.tolist(), physicsClientId=cid)
            step_sim(physicsClientId=cid)

    def close(self) -> None:
        if not getattr(self, "_closed", True):
            self._closed = True
            with contextlib.suppress(pb.error):
                pb.disconnect(physicsClientId=self._cid)
            if self._texture_dir is not None:
                shutil.rmtree(self._texture_dir, ignore_errors=True)
                self._texture_dir = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- state ----------------------------------------------------------------------------------
    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        states = pb.getJointStates(self._robot_id, self._movable, physicsClientId=self._cid)
        return np.array([s[0] for s in states]), np.array([s[1] for s in states])

    def _link(self, link: str) -> int:
        idx = self._link_index.get(link)
        if idx is None:
            raise KeyError(f"unknown robot link {link!r}; links: {list(self._link_index)}")
        return idx

    def _link_frame(self, idx: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """World pose (position, quaternion xyzw) of a link's URDF frame."""
        rid, cid = self._robot_id, self._cid
        if idx == -1:
            com_pos, com_orn = pb.getBasePositionAndOrientation(rid, physicsClientId=cid)
            dyn = pb.getDynamicsInfo(rid, -1, physicsClientId=cid)
            inv_pos, inv_orn = pb.invertTransform(dyn[3], dyn[4], physicsClientId=cid)
            return pb.multiplyTransforms(com_pos, com_orn, inv_pos, inv_orn, physicsClientId=cid)
        st = pb.getLinkState(rid, idx, computeForwardKinematics=1, physicsClientId=cid)
        return st[4], st[5]

    def link_pose(self, link: str) -> Pose:
        pos, orn = self._link_frame(self._link(link))
        return np.array(pos), _wxyz(orn)

    def link_velocity(self, link: str) -> tuple[np.ndarray, np.ndarray]:
        idx = self._link(link)
        rid, cid = self._robot_id, self._cid
        if idx == -1:
            v, w = pb.getBaseVelocity(rid, physicsClientId=cid)
            p_com = pb.getBasePositionAndOrientation(rid, physicsClientId=cid)[0]
            p_frame = self._link_frame(-1)[0]
        else:
            st = pb.getLinkState(rid, idx, computeLinkVelocity=1, computeForwardKinematics=1, physicsClientId=cid)
            p_com, p_frame, v, w = st[0], st[4], st[6], st[7]
        w_arr = np.array(w)
        return np.array(v) + np.cross(w_arr, np.subtract(p_frame, p_com)), w_arr

    def _object(self, name: str) -> int:
        body = self._obj_ids.get(name)
        if body is None:
            raise KeyError(f"unknown object {name!r}; this scene has {list(self._obj_ids)}")
        return body

    def object_pose(self, name: str) -> Pose:
        pos, orn = pb.getBasePositionAndOrientation(self._object(name), physicsClientId=self._cid)
        return np.array(pos), _wxyz(orn)

    def object_velocity(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        v, w = pb.getBaseVelocity(self._object(name), physicsClientId=self._cid)
        return np.array(v), np.array(w)

    def set_object_pose(self, name: str, pos_m: np.ndarray, quat: np.ndarray) -> None:
        self._place(name, *self._check_pose(name, pos_m, quat))

    def _check_pose(self, name: str, pos_m: np.ndarray, quat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Validated position (3,) and unit quaternion (4,) wxyz for a movable object."""
        self._object(name)
        pos = np.asarray(pos_m, dtype=float)
        q = np.asarray(quat, dtype=float)
        ok = pos.shape == (3,) and q.shape == (4,) and np.all(np.isfinite(pos)) and np.all(np.isfinite(q))
        if not ok or float(np.linalg.norm(q)) < 1e-9:
            raise ValueError(
                f"object {name!r}: pose must be a finite position (3,) and quaternion (4,), got {pos}, {q}"
            )
        if self._object_specs[name].fixed:
            raise ValueError(f"object {name!r} is fixed and cannot be moved")
        return pos, q / np.linalg.norm(q)

    def _place(self, name: str, pos: np.ndarray, quat: np.ndarray) -> None:
        body, cid = self._obj_ids[name], self._cid
        pb.resetBasePositionAndOrientation(body, pos.tolist(), wxyz_to_xyzw(quat), physicsClientId=cid)
        pb.resetBaseVelocity(body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], physicsClientId=cid)

    def arm_jacobian(self, link: str) -> np.ndarray:
        idx = self._link(link)
        if idx == -1:
            return np.zeros((6, self.n_arm))
        q = [s[0] for s in pb.getJointStates(self._robot_id, self._movable, physicsClientId=self._cid)]
        # pybullet 3.2.x takes localPosition in the URDF link frame (checked against finite differences of
        # link_pose: an offset by the inertial origin, as the quickstart guide suggests, is off by it).
        lin, ang = pb.calculateJacobian(
            self._robot_id,
            idx,
            [0.0, 0.0, 0.0],
            q,
            self._zeros,
            self._zeros,
            physicsClientId=self._cid,
        )
        return np.vstack([np.asarray(lin)[:, : self.n_arm], np.asarray(ang)[:, : self.n_arm]])

    # -- rendering -----------------------------------------------------------------------------
    def camera_pose(self, camera: str) -> Pose:
        self._check_camera(camera)
        cam = self._cameras[camera]
        parent = self.scene.camera(camera).parent
        if parent is None:
            return cam["camera_pos"].copy(), cam["camera_quat"].copy()
        link_pos, link_orn = self._link_frame(self._link(parent))
        pos, orn = pb.multiplyTransforms(
            link_pos,
            link_orn,
            cam["camera_pos"].tolist(),
            wxyz_to_xyzw(cam["camera_quat"]),
            physicsClientId=self._cid,
        )
        return np.array(pos), _wxyz(orn)

    def _light_kwargs(self) -> dict[str, object]:
        """TinyRenderer lighting from the first scene light.

        TinyRenderer shades albedo * (ambient_coeff + diffuse_coeff * light_colour * max(0, n.l) + specular)
        with one directional light. Mapping: the direction towards the light is `light_pos` (the scene sits
        near the origin); light colour = diffuse / max(diffuse) and diffuse coeff = max(diffuse) times a
        spot factor max(0, cos angle(light_dir, scene centre - light_pos)), so aiming the light away from
        the table darkens it; ambient coeff = mean(ambient) (TinyRenderer's ambient is uncoloured);
        specular coeff = mean(specular) / 4.
        """
        if not self._lights:
            return {}
        light = next(iter(self._lights.values()))
        pos, direction = light["light_pos"], light["light_dir"]
        diffuse = np.clip(light["light_diffuse"], 0.0, None)
        to_scene = self._scene_centre_m - pos
        dist = float(np.linalg.norm(to_scene))
        spot = 1.0 if dist < 1e-9 else max(0.0, float(np.dot(direction, to_scene) / (np.linalg.norm(direction) * dist)))
        scale = float(diffuse.max())
        colour = diffuse / scale if scale > 0.0 else np.ones(3)
        towards = pos if float(np.linalg.norm(pos)) > 1e-9 else -direction
        return {
            "lightDirection": towards.tolist(),
            "lightColor": colour.tolist(),
            "lightDiffuseCoeff": scale * spot,
            "lightAmbientCoeff": float(np.mean(light["light_ambient"])),
            "lightSpecularCoeff": float(np.mean(light["specular"])) / 4.0,
        }

    def _make_pattern(self, pattern: PatternSpec) -> tuple[int, ...]:
        """A print as visual-only bodies (the white plate; the black cells, at most SHAPES_PER_ARRAY per body: a
        visual shape array keeps no more), moved onto their parent at each render (pybullet cannot add shapes to a
        built body)."""
        if pattern.parent not in self._obj_ids and pattern.parent not in self._link_index:
            raise KeyError(f"pattern {pattern.name!r}: parent {pattern.parent!r} is neither a scene object nor a link")
        cid = self._cid
        hx, hy = pattern.plate_half_m
        plate = pb.createVisualShape(
            pb.GEOM_BOX,
            halfExtents=[hx, hy, 0.5 * PLATE_THICKNESS_M],
            visualFramePosition=[0.0, 0.0, -CELL_THICKNESS_M - 0.5 * PLATE_THICKNESS_M],
            rgbaColor=list(WHITE_RGBA),
            physicsClientId=cid,
        )
        bodies = [pb.createMultiBody(0.0, -1, plate, physicsClientId=cid)]
        boxes = black_boxes(pattern)
        for i in range(0, len(boxes), SHAPES_PER_ARRAY):
            chunk = boxes[i : i + SHAPES_PER_ARRAY]
            cells = pb.createVisualShapeArray(
                shapeTypes=[pb.GEOM_BOX] * len(chunk),
                halfExtents=[[bx, by, 0.5 * CELL_THICKNESS_M] for _, (bx, by) in chunk],
                visualFramePositions=[[x, y, -0.5 * CELL_THICKNESS_M] for (x, y), _ in chunk],
                physicsClientId=cid,
            )
            bodies.append(pb.createMultiBody(0.0, -1, cells, physicsClientId=cid))
            pb.changeVisualShape(bodies[-1], -1, rgbaColor=list(BLACK_RGBA), physicsClientId=cid)
        return tuple(bodies)

    def _place_patterns(self) -> None:
        """Put every print where its parent object or link is now."""
        for pattern, bodies in self._patterns:
            parent = pattern.parent
            pos, quat = self.object_pose(parent) if parent in self._obj_ids else self.link_pose(parent)
            rot = quat_to_mat(quat)
            world_pos = pos + rot @ np.asarray(pattern.pos_m, float)
            world_quat = mat_to_quat(rot @ quat_to_mat(np.asarray(pattern.quat, float)))
            for body in bodies:
                pb.resetBasePositionAndOrientation(body, world_pos.tolist(), wxyz_to_xyzw(world_quat),
                                                  physicsClientId=self._cid)  # fmt: skip

    def render(self, camera: str, depth: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        self._check_camera(camera)
        self._place_patterns()
        spec = self.scene.camera(camera)
        w, h = spec.width, spec.height
        pos, quat = self.camera_pose(camera)
        rot = quat_to_mat(quat)
        view = pb.computeViewMatrix(
            pos.tolist(), (pos - rot[:, 2]).tolist(), rot[:, 1].tolist(), physicsClientId=self._cid
        )
        fovy = float(self._cameras[camera]["camera_fovy"])
        proj = pb.computeProjectionMatrixFOV(fovy, w / h, spec.near_m, spec.far_m, physicsClientId=self._cid)
        _, _, rgba, zbuf, _ = pb.getCameraImage(
            w,
            h,
            viewMatrix=view,
            projectionMatrix=proj,
            shadow=0,
            renderer=pb.ER_TINY_RENDERER,
            flags=pb.ER_NO_SEGMENTATION_MASK,
            physicsClientId=self._cid,
            **self._light_kwargs(),
        )
        rgb = np.ascontiguousarray(np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[:, :, :3])
        z = np.asarray(zbuf, dtype=np.float64).reshape(h, w)
        rgb[z >= 1.0] = 0  # nothing drawn: black, like MuJoCo without a skybox (TinyRenderer clears to white)
        if not depth:
            return rgb
        near, far = spec.near_m, spec.far_m
        return rgb, (far * near / (far - (far - near) * z)).astype(np.float32)

    # -- properties ----------------------------------------------------------------------------
    def _rebuild_object(self, name: str, scale: float) -> None:
        """PyBullet cannot resize a collision shape: make the object anew at the new size where it stands, and
        carry over its pose, velocity and every property set on it (mass, inertia, friction, colour, texture)."""
        if name not in self.elements("movable"):
            raise KeyError(f"object_scale:{name}: not a movable task object; have {self.elements('movable')}")
        if scale == self._scale.get(name, 1.0):
            return
        cid, old = self._cid, self._obj_ids[name]
        pos, orn = pb.getBasePositionAndOrientation(old, physicsClientId=cid)
        lin, ang = pb.getBaseVelocity(old, physicsClientId=cid)
        carried = {k: self._get(k, name) for k in ("geom_friction", "geom_rgba", "texture")}
        spec = self._object_specs[name]
        size = tuple(float(x) * scale for x in spec.size_m)
        pb.removeBody(old, physicsClientId=cid)
        quat = tuple(float(x) for x in xyzw_to_wxyz(orn))
        body = self._make_object(replace(spec, size_m=size, pos_m=tuple(pos), quat=quat))  # type: ignore[arg-type]
        self._obj_ids[name] = body
        self._bodies[name] = self._collision[name] = self._visual[name] = (body, -1)
        self._scale[name] = scale
        pb.resetBaseVelocity(body, lin, ang, physicsClientId=cid)
        pb.changeDynamics(body, -1, mass=self._mass[name], physicsClientId=cid)
        self._apply_inertia(name)
        for k, v in carried.items():
            self._set(k, name, v)

    def elements(self, element_type: str) -> list[str]:
        if element_type == "body":
            return list(self._bodies)
        if element_type == "collision":
            return list(self._collision)
        if element_type == "visual":
            return list(self._visual)
        if element_type == "textured":
            return list(self._textures)
        if element_type == "movable":
            return [o.name for o in self.scene.objects if not (o.fixed or o.visual_only)]
        if element_type in ("joint", "actuator"):
            return list(self._joint_names)
        if element_type == "light":
            return list(self._lights)
        if element_type == "camera":
            return list(self._cameras)
        raise KeyError(
            f"unknown element type {element_type!r}; "
            "use body, collision, visual, textured, joint, actuator, light, camera"
        )

    def _dof(self, joint: str) -> int:
        try:
            return self._joint_names.index(joint)
        except ValueError:
            raise KeyError(f"unknown joint {joint!r}; joints: {self._joint_names}") from None

    def _need(self, table: Mapping[str, object], kind: str, element: str | None) -> str:
        if element is None or element not in table:
            raise KeyError(f"{kind}: unknown element {element!r}; available: {list(table)}")
        return element

    def _apply_inertia(self, body_name: str) -> None:
        """Push the stored inertia into the engine."""
        body, link = self._bodies[body_name]
        pb.changeDynamics(body, link, localInertiaDiagonal=self._inertia[body_name].tolist(), physicsClientId=self._cid)

    def _get(self, kind: str, element: str | None) -> np.ndarray:
        cid = self._cid
        if kind == "gravity":
            return self._gravity.copy()
        if kind == "object_scale":
            return np.asarray(self._scale.get(str(element), 1.0))
        if kind == "body_mass":
            return np.array(self._mass[self._need(self._bodies, kind, element)])
        if kind == "body_inertia":
            return self._inertia[self._need(self._bodies, kind, element)].copy()
        if kind == "geom_friction":
            body, link = self._collision[self._need(self._collision, kind, element)]
            dyn = pb.getDynamicsInfo(body, link, physicsClientId=cid)
            return np.array([dyn[1], dyn[7], dyn[6]])
        if kind == "geom_rgba":
            return self._rgba[self._need(self._visual, kind, element)].copy()
        if kind == "texture":
            return self._textures[self._need(self._textures, kind, element)].copy()
        if kind in ("joint_damping", "joint_frictionloss", "joint_armature", "joint_range"):
            k = self._dof(self._need(self._child_link, kind, element))
            table = {
                "joint_damping": self._damping,
                "joint_frictionloss": self._frictionloss,
                "joint_armature": self._armature,
                "joint_range": self._range,
            }[kind]
            return np.array(table[k])
        if kind in ("actuator_kp", "actuator_kd"):
            k = self._dof(self._need(self._child_link, kind, element))
            return np.array((self._kp if kind == "actuator_kp" else self._kd)[k])
        if kind.startswith("light_"):
            return self._lights[self._need(self._lights, kind, element)][kind].copy()
        if kind.startswith("camera_"):
            return self._cameras[self._need(self._cameras, kind, element)][kind].copy()
        raise KeyError(f"unknown property kind {kind!r}")

    def _set(self, kind: str, element: str | None, value: np.ndarray) -> None:
        cid = self._cid
        value = np.array(value, dtype=float)
        if kind == "gravity":
            self._gravity = value
            pb.setGravity(*value.tolist(), physicsClientId=cid)
        elif kind == "object_scale":
            self._rebuild_object(str(element), float(value))
        elif kind in ("body_mass", "body_inertia"):
            name = self._need(self._bodies, kind, element)
            if kind == "body_mass":
                self._mass[name] = float(value)
            else:
                a, b, c = np.sort(value)
                if a + b < c:  # pybullet's dynamics (inverse dynamics, mass matrix) reject such a tensor
                    raise ValueError(
                        f"body_inertia:{name}: principal moments {value.tolist()} violate the triangle inequality "
                        "(the two smaller must sum to at least the largest), which no rigid body can have"
                    )
                self._inertia[name] = value
            if name not in self._fixed_bodies:
                body, link = self._bodies[name]
                if kind == "body_mass":  # pybullet recomputes inertia from the shape when the mass changes
                    pb.changeDynamics(body, link, mass=float(value), physicsClientId=cid)
                self._apply_inertia(name)
        elif kind == "geom_friction":
            body, link = self._collision[self._need(self._collision, kind, element)]
            pb.changeDynamics(
                body,
                link,
                lateralFriction=float(value[0]),
                spinningFriction=float(value[1]),
                rollingFriction=float(value[2]),
                physicsClientId=cid,
            )
        elif kind == "geom_rgba":
            name = self._need(self._visual, kind, element)
            body, link = self._visual[name]
            pb.changeVisualShape(body, link, rgbaColor=value.tolist(), physicsClientId=cid)
            self._rgba[name] = value
        elif kind == "texture":
            name = self._need(self._textures, kind, element)
            tex = self._texture_id(value)
            pb.changeVisualShape(self._obj_ids[name], -1, textureUniqueId=tex, physicsClientId=cid)
            self._textures[name] = np.round(value * 255.0) / 255.0  # what the renderer holds (8-bit)
        elif kind in ("joint_damping", "joint_frictionloss"):
            k = self._dof(self._need(self._child_link, kind, element))
            (self._damping if kind == "joint_damping" else self._frictionloss)[k] = float(value)
            self._passive = bool(np.any(self._damping) or np.any(self._frictionloss))
        elif kind == "joint_armature":
            self._armature[self._dof(self._need(self._child_link, kind, element))] = float(value)
        elif kind == "joint_range":
            name = self._need(self._child_link, kind, element)
            k = self._dof(name)
            self._range[k] = value
            self._target[k] = np.clip(self._target[k], value[0], value[1])
            pb.changeDynamics(
                self._robot_id,
                self._joint_index[name],
                jointLowerLimit=float(value[0]),
                jointUpperLimit=float(value[1]),
                physicsClientId=cid,
            )
        elif kind in ("actuator_kp", "actuator_kd"):
            k = self._dof(self._need(self._child_link, kind, element))
            (self._kp if kind == "actuator_kp" else self._kd)[k] = float(value)
        elif kind.startswith("light_"):
            self._lights[self._need(self._lights, kind, element)][kind] = value
        elif kind.startswith("camera_"):
            cam = self._cameras[self._need(self._cameras, kind, element)]
            cam[kind] = value / np.linalg.norm(value) if kind == "camera_quat" else value
        else:
            raise KeyError(f"unknown property kind {kind!r}")
