"""`sim2real export`: a trained run -> a policy bundle, with what the robot side needs in its manifest (joint
names, order and limits from the robot description, control rate, camera, randomization provenance)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sim2real.train_config import ConfigError, config_from_dict


def is_run_folder(path: Path) -> bool:
    """True for a folder `sim2real train` wrote (its config.json with checkpoints or a final model)."""
    return (path / "config.json").is_file() and ((path / "checkpoints").is_dir() or (path / "model.zip").is_file())


def check_export_target(run: Path, out: Path, force: bool) -> None:
    """ExportError unless a bundle of `run` may go to `out`: never into or over a run folder (the run itself or
    any folder inside one), and otherwise as policies.export.check_bundle_target says."""
    from policies.export import ExportError, check_bundle_target

    target = out.resolve()
    for folder in (target, *target.parents):
        if is_run_folder(folder):
            raise ExportError(
                f"--out {out} is {'the run folder' if folder == target else 'inside the run folder'} {folder}; "
                "bundles go outside runs (default bundles/<run name>)"
            )
    if run.resolve() in target.parents or run.resolve() == target:
        raise ExportError(f"--out {out} is inside the run {run}; bundles go outside runs")
    check_bundle_target(out, force)


def export_run(
    run: Path, out: Path | None = None, camera_size: tuple[int, int] | None = None, force: bool = False
) -> Path:
    """Export the final model of `run` to `out` (default bundles/<run name>); returns the bundle folder.

    Pixel policies take camera frames of `camera_size` (width, height; default the trained image size) with the
    training camera's vertical field of view; the graph crops and resamples them to the trained size. `out` must
    be new or empty, or hold a bundle that `force` replaces; it is never a run folder or inside one."""

    from policies.agents import agent_spec, load_agent
    from policies.export import export_bundle
    from policies.manifest import CameraSpec, PolicyInfo
    from sim.env_spec import make_env
    from sim.robot import panda
    from sim.scene import SceneSpec
    from sim.tasks.base import MAX_JOINT_STEP_RAD

    if not (run / "config.json").is_file() or not (run / "model.zip").is_file():
        raise ConfigError(f"{run} is not a finished run (needs config.json and model.zip)")
    out = out or Path("bundles") / run.name
    check_export_target(run, out, force)
    cfg = config_from_dict(json.loads((run / "config.json").read_text()), source=str(run / "config.json"))
    spec = cfg.env
    env = make_env(spec) if agent_spec(cfg.agent).her else None  # HER models load their buffer class with an env
    model = load_agent(cfg.agent, str(run / "model.zip"), env, device="cpu", framework=cfg.framework)
    robot = panda()
    scene = SceneSpec()
    limits = robot.arm_limits_rad
    # the cell (goal box, ee bounds, start pose) as the env resolved it: the HER env's, or one made for this
    probe = (env if env is not None else make_env(spec)).unwrapped
    cell_fields, ee_control = cell_manifest_fields(spec, probe)
    if env is None:
        probe.close()
    norm_path = run / "obs_normalization.json"
    rand_path = run / "randomization_state.json"
    camera, camera_hw = None, None
    if spec.obs_mode != "state":
        from sim.camera import intrinsics

        cam = scene.camera("scene")
        shape = model.observation_space.spaces["image_scene"].shape  # (3, h, w) as trained
        width, height = camera_size or (int(shape[2]), int(shape[1]))
        camera_hw = (height, width)
        calibrated_k = calibrated_intrinsics(spec.randomization, width, height)
        camera = CameraSpec(
            name=cam.name,
            width=width,
            height=height,
            encoding="rgb8",
            fovy_deg=float(cam.fovy_deg),
            k=_rows(intrinsics(cam.fovy_deg, width, height) if calibrated_k is None else calibrated_k),
            trained_width=int(shape[2]),
            trained_height=int(shape[1]),
        )
    elif camera_size is not None:
        raise ConfigError(f"{run}: --camera-size is for pixel policies; this one observes states")
    fields: dict[str, Any] = {
        "source": {"run": str(run), "seed": cfg.seed},
        "policy": PolicyInfo(agent=cfg.agent, recurrent=agent_spec(cfg.agent).recurrent, ee_control=ee_control),
        **cell_fields,
        "camera": camera,
        "randomization": json.loads(rand_path.read_text()) if rand_path.is_file() else None,
    }
    joint_target = None
    if spec.control == "joint":
        joint_target = {"q_slice": [0, 7], "step_rad": MAX_JOINT_STEP_RAD, "limits_rad": limits.tolist()}
    normalization = json.loads(norm_path.read_text()) if norm_path.is_file() else None
    return export_bundle(model, out, fields, normalization, joint_target, cfg.seed, camera_hw, force=force)


def calibrated_intrinsics(randomization: str | None, width: int, height: int) -> Any:
    """The real camera's K (3, 3) at width x height when the run trained on a camera.yaml of `sim2real
    calibrate-camera` (its provenance.camera_calibration), so the node checks camera_info against the camera that
    was measured; None for any other randomization."""
    import numpy as np

    if not randomization:
        return None
    from randomization.space import SpaceError, space_from

    try:
        cal = dict(space_from(randomization).provenance).get("camera_calibration")
    except (SpaceError, OSError, ValueError):
        return None
    if not isinstance(cal, dict) or "K" not in cal:
        return None
    k = np.array(cal["K"], float)
    sx, sy = width / float(cal["image_width"]), height / float(cal["image_height"])
    k[0] *= sx  # fx, skew, cx scale with the width
    k[1] *= sy  # fy, cy with the height
    return k


def cell_manifest_fields(spec: Any, probe: Any) -> tuple[dict[str, Any], Any]:
    """The manifest fields that describe the env's cell and robot (env, joint_names, joint_limits_rad, robot, goal,
    control_rate_hz), and policy.ee_control (None for joint control), from `spec` (sim.env_spec.EnvSpec) and the
    unwrapped env `probe` that resolved its cell (goal box, end-effector bounds, start pose, gripper use)."""
    import numpy as np

    from policies.manifest import EeChain, EeChainJoint, EeControl, EnvInfo, GoalSpec, GripperControl, RobotInfo
    from sim.ik import IK_DAMPING, IK_ORIENTATION_GAIN
    from sim.robot import panda
    from sim.scene import NEUTRAL_ARM_Q_RAD, SceneSpec
    from sim.tasks.base import MAX_EE_STEP_M, MAX_FINGER_STEP_M

    robot = panda()
    scene = SceneSpec()
    base = np.eye(4)
    base[:3, 3] = scene.robot_base_pos_m
    cell = spec.cell()
    start_q, uses_gripper = probe._neutral_q, probe.uses_gripper
    ee_control = None
    if spec.control == "ee":  # the node turns the action into joint targets with the env's own IK step
        ee_control = EeControl(
            max_step_m=float(MAX_EE_STEP_M),
            ik_damping=float(IK_DAMPING),
            orientation_gain=float(IK_ORIENTATION_GAIN),
            bounds_world_m=_rows(probe._ee_bounds_m),
            down_quat_wxyz=_vec(robot.link_pose(robot.ee_link, np.array(NEUTRAL_ARM_Q_RAD))[1]),
        )
    chain = robot.kinematic_chain(robot.ee_link, base)
    fields = {
        "env": EnvInfo(
            task=spec.task,
            backend=spec.backend,
            control=spec.control,
            obs_mode=spec.obs_mode,
            reward=spec.reward,
            randomization=spec.randomization,
            goal_workspace_base_m=cell.goal_workspace_base_m,
            table_height_m=cell.table_height_m if cell.table_height_m else None,
            start_joints=_vec(start_q) if cell.start_arm_q_rad is not None else None,
            obs_layout=spec.obs_layout if spec.obs_layout != 1 else None,
        ),
        "joint_names": tuple(j.name for j in robot.arm_joints),
        "joint_limits_rad": _rows(robot.arm_limits_rad),
        "robot": RobotInfo(
            name=robot.name,
            base_link=robot.base_link,
            ee_link=robot.ee_link,
            finger_joint_names=tuple(robot.finger_joint_names),
            blocked_finger_width_m=None if uses_gripper else 2 * float(robot.finger_limits_m[0]),
            gripper=GripperControl(step_m=MAX_FINGER_STEP_M, finger_limits_m=_vec(robot.finger_limits_m))
            if uses_gripper
            else None,
            ee_chain=EeChain(
                base_pos_m=_vec(chain.base_pos_m),
                base_quat_wxyz=_vec(chain.base_quat_wxyz),
                joints=tuple(
                    EeChainJoint(
                        name=j.name, type=j.type, xyz_m=_vec(j.xyz_m), rpy_rad=_vec(j.rpy_rad), axis=_vec(j.axis)
                    )
                    for j in chain.joints
                ),
            ),
        ),
        # goals arrive in the robot's base frame; the policy saw them in the training world, base at base_pos_m
        "goal": GoalSpec(
            frame_id=robot.base_link,
            world_low_m=_vec(probe.goal_low_m),
            world_high_m=_vec(probe.goal_high_m),
            distance_threshold_m=float(probe.distance_threshold_m),
        ),
        "control_rate_hz": 1.0 / scene.control_dt_s,
    }
    return fields, ee_control


def _vec(values: Any) -> tuple[float, ...]:
    """A vector (numpy array or sequence) as the manifest holds it: a tuple of floats."""
    return tuple(float(v) for v in values)


def _rows(matrix: Any) -> tuple[tuple[float, ...], ...]:
    """A matrix (numpy array or nested sequence) as the manifest holds it: a tuple of rows of floats."""
    return tuple(_vec(row) for row in matrix)


def evaluate_bundle(
    bundle_dir: Path,
    episodes: int = 50,
    backend: str | None = None,
    randomization: str | None = None,
    seed: int = 30_000,
) -> dict[str, Any]:
    """Run an exported bundle (the ONNX graph through the numpy + onnxruntime runtime, as a robot would) in the
    simulated task it was trained on (on `backend`, default the training engine): success on nominal and, with a
    space, randomized scenes."""
    import numpy as np

    from policies.bundle import load_bundle
    from sim.env_spec import EnvSpec, make_env, make_sampler
    from sim2real.train_config import check_episodes

    check_episodes(episodes)
    bundle = load_bundle(bundle_dir)
    trained, camera = bundle.manifest.env, bundle.manifest.camera
    space = randomization if randomization is not None else ""
    backend = backend or trained.backend
    spec = EnvSpec(task=trained.task, backend=backend, control=trained.control, obs_mode=trained.obs_mode,
                   reward=trained.reward, randomization=space, obs_layout=trained.obs_layout or 1).check()  # fmt: skip
    sampler = make_sampler(spec, "uniform", np.random.default_rng([0, 3]))
    pixels: dict[str, Any] = {"image_size": (camera.width, camera.height)} if camera else {}
    env = make_env(spec, sampler, **pixels)
    result: dict[str, Any] = {
        "bundle": str(bundle_dir),
        "backend": backend,
        "randomization": space or None,
        "episodes": episodes,
        "seed": seed,
    }
    for kind in ("nominal", "randomized") if sampler is not None else ("nominal",):
        wins = []
        for ep in range(episodes):
            obs, info = env.reset(seed=seed + ep, options={"nominal": True} if kind == "nominal" and sampler else None)
            state, done = bundle.initial_state(), False
            while not done:
                out = bundle.run({**obs, **state})
                state = {s.name: out[f"{s.name}_out"] for s in bundle.manifest.state}
                obs, _, terminated, truncated, info = env.step(out["action"])
                done = terminated or truncated
            wins.append(float(info["is_success"]))
        result[kind] = {"success": float(np.mean(wins)), "episodes": episodes}
    env.close()
    return result
