"""`sim2real bench vision`: what the camera pipeline measures. Case `tracker`: the object tracker's pose error and
processing time on rendered frames, against the simulator's ground truth."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sim2real.bench_env import machine_description

CASES = {"tracker": "ArUco object tracker on 640x480 renders of the front camera: pose error vs ground truth, p99 ms"}
#: Targets (issue 16): median position and angle error, processing p99 per frame.
TRACKER_TARGETS = {"position_mm_median": 5.0, "angle_deg_median": 3.0, "processing_ms_p99": 10.0}


def tracker_accuracy(
    backend: str = "mujoco",
    frames: int = 100,
    seed: int = 0,
    camera: str = "front",
    size: tuple[int, int] = (640, 480),
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Render `frames` Push scenes with the marked cube at random table positions and headings (arm at the neutral
    pose), track each frame as the node does (sim2real_ros.tracker_core with the exact intrinsics and extrinsics)
    and compare with the engine's object pose. Errors over the frames where the marker was tracked."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    import gymnasium as gym

    import sim  # noqa: F401
    from sim.camera import base_from_optical, intrinsics
    from sim.scene import NEUTRAL_ARM_Q_RAD
    from sim.transforms import quat_angle_rad
    from sim2real_ros.tracker_core import ObjectTracker, TrackerSettings

    env = gym.make("Sim2Real/Push-v0", backend=backend, object_marker=True, image_size=size, cameras=(camera,),
                   start_arm_q_rad=NEUTRAL_ARM_Q_RAD)  # fmt: skip
    u: Any = env.unwrapped
    rng = np.random.default_rng(seed)
    pos_err, ang_err, ms, missed = [], [], [], []
    try:
        env.reset(seed=seed)
        name = f"camera_fovy:{camera}"
        k = intrinsics(float(u.get_property(name)[name]), *size)
        cam_pos, cam_quat = u.sim.camera_pose(camera)
        tracker = ObjectTracker(TrackerSettings(), base_from_optical(cam_pos, cam_quat, u.sim.scene.robot_base_pos_m))
        tracker.on_camera_info(size[0], size[1], k.ravel().tolist(), [0.0] * 5, "plumb_bob", "front")
        for i in range(frames):
            env.reset(seed=seed + i)
            pos, _ = u.sim.object_pose("object")
            yaw = rng.uniform(-np.pi, np.pi)
            u.sim.set_object_pose("object", pos, np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]))
            rgb = np.asarray(u.sim.render(camera))
            true_pos, true_quat = u.sim.object_pose("object")
            out = tracker.on_image(size[1], size[0], "rgb8", 3 * size[0], rgb.tobytes(), "front", 1.0 + i)
            if isinstance(out, str):
                missed.append(out)
                continue
            base = np.asarray(u.sim.scene.robot_base_pos_m)
            pos_err.append(1e3 * float(np.linalg.norm(out.pos_m + base - true_pos)))
            ang_err.append(float(np.degrees(quat_angle_rad(out.quat_wxyz, true_quat))))
            ms.append(1e3 * out.processing_s)
            if progress is not None and i % 10 == 0:
                progress(f"tracker on {backend}: frame {i + 1}/{frames}")
    finally:
        env.close()
    if not pos_err:
        raise ValueError(f"the tracker found the marker in none of {frames} {backend} frames")
    return {
        "backend": backend,
        "frames": frames,
        "tracked": len(pos_err),
        "tracked_share": len(pos_err) / frames,
        "position_mm_median": float(np.median(pos_err)),
        "position_mm_p95": float(np.percentile(pos_err, 95)),
        "angle_deg_median": float(np.median(ang_err)),
        "angle_deg_p95": float(np.percentile(ang_err, 95)),
        "processing_ms_median": float(np.median(ms)),
        "processing_ms_p99": float(np.percentile(ms, 99)),
        "missed": len(missed),
        "missed_why": sorted(set(missed)),
    }


def bench_vision(
    cases: Sequence[str] | None = None,
    frames: int = 200,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the vision cases (default all); the tracker case on both engines."""
    results: dict[str, Any] = {}
    for case in cases or list(CASES):
        if case not in CASES:
            raise ValueError(f"unknown case {case!r}; cases: {', '.join(CASES)}")
        if case == "tracker":
            results["tracker"] = [tracker_accuracy(b, frames, seed, progress=progress) for b in ("mujoco", "pybullet")]
    return {"bench": "vision", "date": time.strftime("%Y-%m-%d"), "machine": machine_description(), "cases": results,
            "targets": TRACKER_TARGETS}  # fmt: skip
