"""MuJoCo backend: the Panda URDF compiled through mujoco.MjSpec, plus the scene's table, objects, lights, cameras."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering through Mesa/EGL; must precede the import

import mujoco  # noqa: E402

from sim.backend import Backend, Pose  # noqa: E402
from sim.fiducials import BLACK_RGBA, CELL_THICKNESS_M, PLATE_THICKNESS_M, WHITE_RGBA, PatternSpec, black_boxes  # noqa: E402
from sim.observation import RawSignals  # noqa: E402
from sim.properties import KINDS, TEXTURE_SIZE, flat_layout, parse_name  # noqa: E402
from sim.property_target import FlatSetter  # noqa: E402
from sim.robot import RobotDescription  # noqa: E402
from sim.scene import ObjectSpec, SceneSpec  # noqa: E402
from sim.transforms import quat_to_mat  # noqa: E402

_OBJ = mujoco.mjtObj
_GEOM_TYPES = {
    "box": mujoco.mjtGeom.mjGEOM_BOX,
    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
}
# Collision bits: the robot does not collide with itself (as PyBullet loads URDFs), everything else does.
_ROBOT_CONTYPE, _ROBOT_CONAFFINITY = 2, 1
_WORLD_CONTYPE, _WORLD_CONAFFINITY = 1, 3


def _robot_spec(robot: RobotDescription) -> mujoco.MjSpec:
    """Compile-ready MjSpec of the URDF: package:// paths resolved, static links kept as bodies, visuals kept."""
    text = robot.urdf_path.read_text()
    text = text.replace("package://", f"{robot.urdf_path.parent}/")
    head_end = text.index(">", text.index("<robot")) + 1
    compiler = (
        '<mujoco><compiler fusestatic="false" discardvisual="false" strippath="false" balanceinertia="true"/></mujoco>'
    )
    return mujoco.MjSpec.from_string(text[:head_end] + compiler + text[head_end:])


class MujocoBackend(Backend):
    """The scene in MuJoCo: position actuators (kp, kv) on every movable joint, gravity-compensated robot bodies,
    the implicit-fast integrator; objects have free joints, the goal marker is a mocap body."""

    name = "mujoco"

    def __init__(self, scene: SceneSpec, robot: RobotDescription) -> None:
        super().__init__(scene, robot)
        self._batching = self._stale_const = self._stale_forward = False
        self._scale: dict[str, float] = {}
        self.spec = spec = _robot_spec(robot)
        spec.option.timestep = scene.physics_dt_s
        spec.option.gravity = list(scene.gravity)
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        spec.visual.headlight.active = 0
        width = max([640] + [c.width for c in scene.cameras])
        height = max([480] + [c.height for c in scene.cameras])
        spec.visual.global_.offwidth, spec.visual.global_.offheight = width, height

        robot_links = {link.name for link in robot.links}
        for body in spec.bodies:
            if body.name == robot.base_link:
                body.pos = list(scene.robot_base_pos_m)
            if body.name in robot_links:
                body.gravcomp = 1.0
        for geom in spec.geoms:
            if geom.contype or geom.conaffinity:
                geom.contype, geom.conaffinity = _ROBOT_CONTYPE, _ROBOT_CONAFFINITY
            else:  # visual meshes: light grey arm, as in the real Panda
                geom.rgba = [0.92, 0.92, 0.92, 1.0]

        kp = [*scene.arm_kp, scene.finger_kp, scene.finger_kp]
        kd = [*scene.arm_kd, scene.finger_kd, scene.finger_kd]
        for joint, p, d in zip(robot.movable_joints, kp, kd):
            act = spec.add_actuator(name=joint.name, target=joint.name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
            act.set_to_position(kp=p, kv=d)
            act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
            act.forcerange = [-joint.effort, joint.effort]
            act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE

        floor_z = scene.table.pos_m[2] - scene.table.half_height_m
        spec.worldbody.add_geom(
            name="floor",
            type=mujoco.mjtGeom.mjGEOM_PLANE,
            size=[3, 3, 0.1],
            pos=[0, 0, floor_z],
            rgba=[0.3, 0.3, 0.3, 1],
            contype=_WORLD_CONTYPE,
            conaffinity=_WORLD_CONAFFINITY,
        )
        for obj in scene.all_objects:
            self._add_object(spec, obj)
        self._pattern_geoms: set[str] = set()
        for pattern in scene.patterns:
            self._pattern_geoms |= _add_pattern(spec, pattern)
        for light in scene.lights:
            spec.worldbody.add_light(
                name=light.name,
                pos=list(light.pos_m),
                dir=list(light.dir),
                diffuse=list(light.diffuse),
                ambient=list(light.ambient),
                specular=list(light.specular),
                castshadow=False,
            )
        for cam in scene.cameras:
            parent = spec.worldbody if cam.parent is None else spec.body(cam.parent)
            if parent is None:
                raise KeyError(f"camera {cam.name!r}: parent link {cam.parent!r} is not in the robot")
            parent.add_camera(name=cam.name, pos=list(cam.pos_m), quat=list(cam.quat), fovy=cam.fovy_deg)

        with warnings.catch_warnings():  # the Panda's visual OBJ files lack texture coordinates; harmless
            warnings.filterwarnings("ignore", message="obj_decoder")
            self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        m = self.model
        joints = [j.name for j in robot.movable_joints]
        self._qadr = np.array([m.jnt_qposadr[m.joint(n).id] for n in joints])
        self._vadr = np.array([m.jnt_dofadr[m.joint(n).id] for n in joints])
        self._arm_dofs = self._vadr[: self.n_arm]
        self._qsel, self._vsel = _as_slice(self._qadr), _as_slice(self._vadr)  # slices are faster to gather
        self._body_id = {m.body(i).name: i for i in range(m.nbody)}
        self._objects = {o.name: o for o in scene.all_objects}
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        self._vel6 = np.zeros(6)
        self._ee_body = self._body_id[robot.ee_link]
        self._geoms_of_body = self._index_geoms()
        self._movable_jnt_ids = [m.joint(j.name).id for j in robot.movable_joints]
        self._update_ctrl_limits()

    @staticmethod
    def _add_object(spec: mujoco.MjSpec, obj: ObjectSpec) -> None:
        size = list(obj.size_m) + [0.0] * (3 - len(obj.size_m))
        body = spec.worldbody.add_body(name=obj.name, pos=list(obj.pos_m), quat=list(obj.quat))
        geom = dict(
            name=obj.name,
            type=_GEOM_TYPES[obj.shape],
            size=size,
            rgba=list(obj.rgba),
            friction=list(obj.friction),
        )
        if obj.visual_only:
            body.mocap = True
            body.add_geom(**geom, contype=0, conaffinity=0, group=2)
            return
        # a white texture under the colour, so `texture:<name>` can draw a pattern (multiplied by the rgba)
        tex = spec.add_texture(
            name=f"{obj.name}_tex",
            type=mujoco.mjtTexture.mjTEXTURE_2D,
            width=TEXTURE_SIZE,
            height=TEXTURE_SIZE,
            nchannel=3,
        )
        tex.data = np.full((TEXTURE_SIZE, TEXTURE_SIZE, 3), 255, np.uint8).tobytes()
        mat = spec.add_material(name=f"{obj.name}_mat")
        mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = tex.name
        geom["material"] = mat.name
        body.add_geom(**geom, contype=_WORLD_CONTYPE, conaffinity=_WORLD_CONAFFINITY, mass=obj.mass_kg)
        if not obj.fixed:
            body.add_freejoint(name=f"{obj.name}_free")

    def _index_geoms(self) -> dict[str, tuple[list[int], list[int]]]:
        """Body name -> (collision geom ids, visual geom ids)."""
        m = self.model
        out: dict[str, tuple[list[int], list[int]]] = {}
        for g in range(m.ngeom):
            body = m.body(m.geom_bodyid[g]).name
            if not body or m.geom(g).name in self._pattern_geoms:  # prints keep their colours and sizes
                continue
            coll, vis = out.setdefault(body, ([], []))
            if m.geom_contype[g] or m.geom_conaffinity[g]:
                coll.append(g)
            if m.geom_group[g] != 0 or not (m.geom_contype[g] or m.geom_conaffinity[g]) or body in self._objects:
                vis.append(g)
        return out

    def _update_ctrl_limits(self) -> None:
        ranges = self.model.jnt_range[self._movable_jnt_ids]
        self._ctrl_lo, self._ctrl_hi = ranges[:, 0], ranges[:, 1]  # fancy indexing made a copy already

    # -- lifecycle and control ------------------------------------------------------------------
    def reset(self, arm_q_rad: np.ndarray, finger_q_m: float, objects: Mapping[str, Pose]) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        q = np.concatenate([np.asarray(arm_q_rad, float), [finger_q_m] * self.n_fingers])
        d.qpos[self._qadr] = q
        d.ctrl[:] = q
        for name, (pos, quat) in objects.items():
            self.set_object_pose(name, pos, quat)
        mujoco.mj_forward(m, d)

    def step(self, arm_target_rad: np.ndarray, finger_target_m: float, n_substeps: int | None = None) -> None:
        arm = self._check_targets(arm_target_rad, finger_target_m)
        ctrl = self.data.ctrl
        ctrl[: self.n_arm] = arm
        ctrl[self.n_arm :] = finger_target_m
        np.minimum(ctrl, self._ctrl_hi, out=ctrl)
        np.maximum(ctrl, self._ctrl_lo, out=ctrl)
        m, d = self.model, self.data
        mujoco.mj_step(m, d, nstep=n_substeps or self.scene.n_substeps)
        # mj_step leaves body poses and velocities at the last substep's start; bring them to the state just
        # integrated, so the end-effector signals are the forward kinematics of the joints read with them
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        mujoco.mj_comVel(m, d)

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()

    # -- state ----------------------------------------------------------------------------------
    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data.qpos[self._qsel].copy(), self.data.qvel[self._vsel].copy()

    def _body(self, name: str, kind: str = "link") -> int:
        try:
            return self._body_id[name]
        except KeyError:
            raise KeyError(f"unknown {kind} {name!r}; known: {sorted(n for n in self._body_id if n)}") from None

    def link_pose(self, link: str) -> Pose:
        b = self._body(link)
        return self.data.xpos[b].copy(), self.data.xquat[b].copy()

    def link_velocity(self, link: str) -> tuple[np.ndarray, np.ndarray]:
        mujoco.mj_objectVelocity(self.model, self.data, _OBJ.mjOBJ_XBODY, self._body(link), self._vel6, 0)
        return self._vel6[3:].copy(), self._vel6[:3].copy()

    def read_signals(self, obj: str | None) -> tuple[RawSignals, np.ndarray]:
        """As Backend.read_signals, reading MuJoCo's arrays directly (the env's per-step hot path)."""
        m, d, vel = self.model, self.data, self._vel6
        q, qd = d.qpos[self._qsel].copy(), d.qvel[self._vsel].copy()
        ee = self._ee_body
        mujoco.mj_objectVelocity(m, d, _OBJ.mjOBJ_XBODY, ee, vel, 0)
        ee_vel = vel[3:].copy()
        if obj is None:
            return RawSignals(q[:7], qd[:7], d.xpos[ee].copy(), ee_vel, float(q[7] + q[8])), q
        b = self._object(obj)
        mujoco.mj_objectVelocity(m, d, _OBJ.mjOBJ_XBODY, b, vel, 0)
        raw = RawSignals(
            q[:7], qd[:7], d.xpos[ee].copy(), ee_vel, float(q[7] + q[8]),
            d.xpos[b].copy(), d.xquat[b].copy(), vel[3:].copy(), vel[:3].copy(),
        )  # fmt: skip
        return raw, q

    def _object(self, name: str) -> int:
        if name not in self._objects:
            raise KeyError(f"unknown object {name!r}; scene objects: {list(self._objects)}")
        return self._body_id[name]

    def object_pose(self, name: str) -> Pose:
        b = self._object(name)
        return self.data.xpos[b].copy(), self.data.xquat[b].copy()

    def object_velocity(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        self._object(name)
        return self.link_velocity(name)

    def set_object_pose(self, name: str, pos_m: np.ndarray, quat: np.ndarray) -> None:
        b = self._object(name)
        m, d = self.model, self.data
        quat = np.asarray(quat, float) / np.linalg.norm(quat)
        if m.body_mocapid[b] >= 0:
            d.mocap_pos[m.body_mocapid[b]] = pos_m
            d.mocap_quat[m.body_mocapid[b]] = quat
        elif m.body_jntnum[b] > 0:
            j = m.body_jntadr[b]
            d.qpos[m.jnt_qposadr[j] : m.jnt_qposadr[j] + 7] = np.concatenate([pos_m, quat])
            d.qvel[m.jnt_dofadr[j] : m.jnt_dofadr[j] + 6] = 0.0
        else:
            raise ValueError(f"object {name!r} is fixed and cannot be moved")
        mujoco.mj_kinematics(m, d)

    def arm_jacobian(self, link: str) -> np.ndarray:
        b = self._body(link)
        mujoco.mj_jac(self.model, self.data, self._jacp, self._jacr, self.data.xpos[b], b)
        return np.vstack([self._jacp[:, self._arm_dofs], self._jacr[:, self._arm_dofs]])

    # -- rendering -----------------------------------------------------------------------------
    def render(self, camera: str, depth: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        self._check_camera(camera)
        spec = self.scene.camera(camera)
        key = (spec.height, spec.width)
        r = self._renderers.get(key)
        if r is None:
            r = self._renderers[key] = mujoco.Renderer(self.model, spec.height, spec.width)
        r.update_scene(self.data, camera=camera)
        rgb = r.render().copy()
        if not depth:
            return rgb
        r.enable_depth_rendering()
        try:
            r.update_scene(self.data, camera=camera)
            z = r.render().astype(np.float32)
        finally:
            r.disable_depth_rendering()
        return rgb, z

    def camera_pose(self, camera: str) -> Pose:
        self._check_camera(camera)
        c = self.model.camera(camera).id
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, self.data.cam_xmat[c])
        return self.data.cam_xpos[c].copy(), quat

    def _rescale(self, element: str, scale: float) -> None:
        """Resize an object's geoms in place: MuJoCo's collision uses geom_size, rbound and aabb directly, so
        no recompile is needed (mass and inertia stay what body_mass/body_inertia say)."""
        if element not in self.elements("movable"):
            raise KeyError(f"object_scale:{element}: not a movable task object; have {self.elements('movable')}")
        m = self.model
        ratio = scale / self._scale.get(element, 1.0)
        for g in set(self._geoms_of_body[element][0]) | set(self._geoms_of_body[element][1]):
            m.geom_size[g] *= ratio
            m.geom_rbound[g] *= ratio
            m.geom_aabb[g] *= ratio  # centre (0 for primitives) and half-extents
        self._scale[element] = scale

    def _texture_view(self, element: str) -> np.ndarray:
        """The texture's pixels (H, W, 3) uint8, a view into model.tex_data."""
        m = self.model
        t = m.texture(f"{element}_tex").id
        n = m.tex_height[t] * m.tex_width[t] * 3
        return m.tex_data[m.tex_adr[t] : m.tex_adr[t] + n].reshape(m.tex_height[t], m.tex_width[t], 3)

    def _upload_texture(self, tex_id: int) -> None:
        """Send a changed texture to every live renderer's GPU context (0.5 ms, against 130 ms for a new one)."""
        for key, r in list(self._renderers.items()):
            ctx, gl = getattr(r, "_mjr_context", None), getattr(r, "_gl_context", None)
            if ctx is None or gl is None:  # a mujoco release without these internals: rebuild the renderer
                r.close()
                del self._renderers[key]
                continue
            gl.make_current()
            mujoco.mjr_uploadTexture(self.model, ctx, tex_id)

    # -- properties ----------------------------------------------------------------------------
    def elements(self, element_type: str) -> list[str]:
        m = self.model
        if element_type == "body":
            links = [lk.name for lk in self.robot.links if lk.mass_kg > 0]
            return links + [o.name for o in self.scene.objects]
        if element_type == "collision":
            links = [lk.name for lk in self.robot.links if lk.collision_meshes]
            return links + [o.name for o in self.scene.all_objects if not o.visual_only]
        if element_type == "visual":
            links = [lk.name for lk in self.robot.links if lk.visual_meshes]
            return links + [o.name for o in self.scene.all_objects]
        if element_type == "textured":
            return [o.name for o in self.scene.all_objects if not o.visual_only]
        if element_type == "movable":
            return [o.name for o in self.scene.objects if not (o.fixed or o.visual_only)]
        if element_type in ("joint", "actuator"):
            return [j.name for j in self.robot.movable_joints]
        if element_type == "light":
            return [m.light(i).name for i in range(m.nlight)]
        if element_type == "camera":
            return [m.camera(i).name for i in range(m.ncam)]
        raise KeyError(f"unknown element type {element_type!r}")

    def _get(self, kind: str, element: str | None) -> np.ndarray:
        if kind in self._ARRAY_KINDS:  # the first place it is stored, sign undone
            arr, idx, sign, _ = self._cells(kind, element)[0]
            return (sign * np.asarray(arr[idx], dtype=float)).reshape(KINDS[kind].shape)
        assert element is not None
        if kind == "texture":
            return self._texture_view(element).astype(float) / 255.0
        if kind == "object_scale":
            return np.asarray(self._scale.get(element, 1.0))
        raise KeyError(f"property kind {kind!r} is not supported by the mujoco backend")

    def _set(self, kind: str, element: str | None, value: np.ndarray) -> None:
        if kind in self._ARRAY_KINDS:
            for arr, idx, sign, _ in self._cells(kind, element):
                arr[idx] = sign * value
            if kind in ("body_mass", "body_inertia"):
                self._stale_const = True
            elif kind == "joint_range":
                self._update_ctrl_limits()
        elif kind == "object_scale":
            assert element is not None
            self._rescale(element, float(value))
        elif kind == "texture":
            assert element is not None
            self._texture_view(element)[:] = np.round(value * 255.0).astype(np.uint8)
            self._upload_texture(self.model.texture(f"{element}_tex").id)
            return
        else:
            raise KeyError(f"property kind {kind!r} is not supported by the mujoco backend")
        self._stale_forward = True
        if not self._batching:
            self._end_batch()

    #: Kinds that are plain entries of model arrays: kind -> [(array attribute, sign, first column)].
    _ARRAY_KINDS: dict[str, list[tuple[str, float, int]]] = {
        "body_mass": [("body_mass", 1.0, 0)],
        "body_inertia": [("body_inertia", 1.0, 0)],
        "geom_friction": [("geom_friction", 1.0, 0)],
        "geom_rgba": [("geom_rgba", 1.0, 0)],
        "joint_damping": [("dof_damping", 1.0, 0)],
        "joint_armature": [("dof_armature", 1.0, 0)],
        "joint_frictionloss": [("dof_frictionloss", 1.0, 0)],
        "actuator_kp": [("actuator_gainprm", 1.0, 0), ("actuator_biasprm", -1.0, 1)],
        "actuator_kd": [("actuator_biasprm", -1.0, 2)],
        "light_pos": [("light_pos", 1.0, 0)],
        "light_diffuse": [("light_diffuse", 1.0, 0)],
        "light_ambient": [("light_ambient", 1.0, 0)],
        "camera_pos": [("cam_pos", 1.0, 0)],
        "camera_fovy": [("cam_fovy", 1.0, 0)],
        "gravity": [("gravity", 1.0, 0)],
        "joint_range": [("jnt_range", 1.0, 0)],  # lower < upper checked on every write
        "camera_quat": [("cam_quat", 1.0, 0)],  # normalised after every write
        "light_dir": [("light_dir", 1.0, 0)],  # checked non-zero on every write
    }

    def _rows(self, kind: str, element: str | None) -> list[int]:
        """Rows of the model array that hold `kind` of `element`."""
        m = self.model
        if kind in ("body_mass", "body_inertia"):
            return [self._body(str(element))]
        if kind == "geom_friction":
            return [int(g) for g in self._geoms_of_body[str(element)][0]]
        if kind == "geom_rgba":
            return [int(g) for g in self._geoms_of_body[str(element)][1]]
        if kind == "joint_range":
            return [m.joint(element).id]
        if kind.startswith("joint_"):
            return [int(m.jnt_dofadr[m.joint(element).id])]
        if kind.startswith("actuator_"):
            return [m.actuator(element).id]
        if kind.startswith("light_"):
            return [m.light(element).id]
        if kind.startswith("camera_"):
            return [m.camera(element).id]
        return [0]  # gravity

    def _cells(self, kind: str, element: str | None) -> list[tuple[np.ndarray, Any, float, str]]:
        """Every place the plain-array property `kind` of `element` is stored: (model array, index into it, sign,
        array name). The per-value _get/_set and the compiled writer both read this, so they cannot disagree."""
        n = int(np.prod(KINDS[kind].shape, dtype=int))
        out = []
        for attr, sign, col0 in self._ARRAY_KINDS[kind]:
            arr = self.model.opt.gravity if attr == "gravity" else getattr(self.model, attr)
            for row in self._rows(kind, element):
                idx: Any = slice(None) if attr == "gravity" else (row, slice(col0, col0 + n)) if arr.ndim == 2 else row
                out.append((arr, idx, sign, attr))
        return out

    def compile_setter(self, names: Sequence[str]) -> FlatSetter:
        """As Backend.compile_setter, with every plain-array kind written by one fancy-indexed assignment per
        model array (a hundred properties cost a dozen numpy writes and one mj_setConst/mj_forward)."""
        layout = flat_layout(names)
        slow: list[int] = []
        groups: dict[str, tuple[list[int], list[int], list[float]]] = {}
        views: dict[str, np.ndarray] = {}  # flat writable views: model arrays never move
        limits: list[tuple[str, int]] = []
        unit: list[tuple[str, slice, int, bool]] = []  # (name, values, row, normalise) of quaternions and directions
        for i, (name, sl) in enumerate(zip(names, layout)):
            kind, element = parse_name(name)
            if kind.name not in self._ARRAY_KINDS:
                slow.append(i)
                continue
            if element is not None:
                self.property_elements(name)  # raises for an unknown element
            if kind.name == "joint_range":
                limits.append((name, sl.start))
            if kind.name in ("camera_quat", "light_dir"):
                unit.append((name, sl, self._rows(kind.name, element)[0], kind.name == "camera_quat"))
            for arr, idx, sign, attr in self._cells(kind.name, element):
                dest, src, signs = groups.setdefault(attr, ([], [], []))
                cells = np.arange(arr.size).reshape(arr.shape)[idx].ravel()  # flat positions in the array
                dest.extend(int(c) for c in cells)
                src.extend(range(sl.start, sl.start + cells.size))
                signs.extend([sign] * cells.size)
                views[attr] = arr.reshape(-1)
        plan = [
            (views[attr], np.array(d), np.array(s_), None if all(x == 1.0 for x in g) else np.array(g))
            for attr, (d, s_, g) in groups.items()
        ]
        masses = "body_mass" in groups or "body_inertia" in groups
        slow_names = [names[i] for i in slow]
        slow_idx = np.concatenate([np.arange(layout[i].start, layout[i].stop) for i in slow]) if slow else None
        slow_write = Backend.compile_setter(self, slow_names) if slow else None

        lower = np.array([at for _, at in limits], dtype=int)
        unit_idx = np.concatenate([np.arange(sl.start, sl.stop) for _, sl, _, _ in unit]) if unit else None
        unit_starts = np.cumsum([0] + [sl.stop - sl.start for _, sl, _, _ in unit])[:-1]
        quat_rows = [row for _, _, row, normalise in unit if normalise]

        def write(flat: np.ndarray, forward: bool = True) -> None:
            if limits and np.any(flat[lower] >= flat[lower + 1]):
                name, at = limits[int(np.argmax(flat[lower] >= flat[lower + 1]))]
                raise ValueError(f"property {name!r}: lower limit must be below upper, got {flat[at : at + 2]}")
            if unit_idx is not None:
                sq = np.add.reduceat(flat[unit_idx] ** 2, unit_starts)
                if not sq.all():
                    name, sl, _, _ = unit[int(np.argmin(sq))]
                    raise ValueError(f"property {name!r}: value must be non-zero, got {flat[sl].tolist()}")
            for view, dest, src, sign in plan:
                view[dest] = flat[src] if sign is None else sign * flat[src]
            if quat_rows:
                q = self.model.cam_quat[quat_rows]
                self.model.cam_quat[quat_rows] = q / np.sqrt((q * q).sum(axis=1))[:, None]
            self._stale_const = self._stale_const or masses
            self._stale_forward = self._stale_forward or (forward and bool(plan))
            if limits:
                self._update_ctrl_limits()
            if slow_write is not None:
                self._batching = True
                slow_write(flat[slow_idx], forward)  # ends the batch: recomputes what the array writes need too
            else:
                self._end_batch(forward)

        return write

    def _begin_batch(self) -> None:
        self._batching = True

    def _end_batch(self, forward: bool = True) -> None:
        self._batching = False
        if self._stale_const:  # refresh quantities derived from masses (subtree masses, inverse weights)
            mujoco.mj_setConst(self.model, self.data)
        if self._stale_forward and forward:
            mujoco.mj_forward(self.model, self.data)
        self._stale_const = self._stale_forward = False


def _add_pattern(spec: mujoco.MjSpec, pattern: PatternSpec) -> set[str]:
    """Add a print's plate and black cells as massless visual boxes on its parent body; returns their names."""
    body = spec.body(pattern.parent)
    if body is None:
        raise KeyError(f"pattern {pattern.name!r}: parent {pattern.parent!r} is neither a scene object nor a link")
    rot = quat_to_mat(np.asarray(pattern.quat, float))
    origin = np.asarray(pattern.pos_m, float)
    names = set()
    boxes = [(f"{pattern.name}_plate", (0.0, 0.0), pattern.plate_half_m, -CELL_THICKNESS_M - 0.5 * PLATE_THICKNESS_M,
              0.5 * PLATE_THICKNESS_M, WHITE_RGBA)]  # fmt: skip
    for i, (centre, half) in enumerate(black_boxes(pattern)):
        boxes.append((f"{pattern.name}_cell{i}", centre, half, -0.5 * CELL_THICKNESS_M, 0.5 * CELL_THICKNESS_M,
                      BLACK_RGBA))  # fmt: skip
    for name, (x, y), (hx, hy), z, hz, rgba in boxes:
        body.add_geom(
            name=name,
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[hx, hy, hz],
            pos=(origin + rot @ np.array([x, y, z])).tolist(),
            quat=list(pattern.quat),
            rgba=list(rgba),
            contype=0,
            conaffinity=0,
            group=2,
            mass=0.0,
            density=0.0,
        )
        names.add(name)
    return names


def _as_slice(idx: np.ndarray) -> slice | np.ndarray:
    """A slice equivalent to a contiguous increasing index array, else the array itself."""
    if len(idx) and np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))):
        return slice(int(idx[0]), int(idx[0]) + len(idx))
    return idx
