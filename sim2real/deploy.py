"""`sim2real deploy` and `sim2real bench deploy`: run a policy bundle through the ROS 2 launch files (policy node,
plus the simulated arm for a rehearsal), optionally drive goal episodes over DDS and report success and timing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sim2real_ros.controller_config import COMMAND_INTERFACES, JOINT_TRAJECTORY

if TYPE_CHECKING:
    from policies.manifest import Manifest

LAUNCH_DIR = Path(__file__).resolve().parents[1] / "launch"


class DeployError(ValueError):
    """A deployment that cannot start (no bundle, no ROS 2, a bad argument); the message says which."""


def verified_manifest(bundle: Path) -> Manifest:
    """The manifest of a bundle that loads and verifies (the whole manifest, the ONNX file's SHA-256), checked
    before any node starts rather than after the node's activation timeout; DeployError says what is wrong."""
    if not (bundle / "manifest.json").is_file():
        raise DeployError(f"{bundle}: not a policy bundle (no manifest.json); make one with `sim2real export RUN`")
    from policies.bundle import BundleError, load_bundle

    try:
        return load_bundle(bundle).manifest
    except BundleError as e:
        raise DeployError(f"the bundle does not verify: {e}") from None


#: Where object tasks on the simulated arm get the object's pose: the simulator's truth; the truth while the arm
#: also renders the tracker's camera (the same load, to compare with); sim2real-object-tracker on that camera.
OBJECT_POSE_SOURCES = ("truth", "truth_filmed", "tracker")


def launch_arguments(
    bundle: Path,
    sim: bool,
    backend: str = "pybullet",
    randomization: str = "none",
    controller: str = JOINT_TRAJECTORY,
    namespace: str = "",
    params_file: str = "",
    autostart: bool = True,
    sim_camera: bool = True,
    trigger: str = "timer",
    command_delay_s: float = 0.0,
    joint_states_layout: str = "all",
    object_pose: str = "truth",
    start_joints: str = "",
    camera_pose: str = "",
) -> list[str]:
    """`sim2real launch` arguments: the launch file, then name:=value pairs. Object tasks on the simulated arm take
    the object's pose from the simulator (`object_pose="truth"`) or from sim2real-object-tracker on the marked
    object in the front camera (`"tracker"`); `start_joints` overrides the bundle's start pose. On a real arm,
    `camera_pose` (the camera's optical frame in the base frame) starts sim2real-object-tracker beside the node."""
    manifest = verified_manifest(bundle)
    if controller not in COMMAND_INTERFACES:
        raise DeployError(f"--controller must be {' or '.join(COMMAND_INTERFACES)}, got {controller!r}")
    if trigger not in ("timer", "image"):
        raise DeployError(f"--trigger must be timer or image, got {trigger!r}")
    args = [
        f"bundle:={bundle.resolve()}",
        f"controller:={controller}",
        f"namespace:={namespace}",
        f"trigger:={trigger}",
    ]
    if params_file:
        if not Path(params_file).is_file():
            raise DeployError(f"--params-file {params_file}: no such file")
        args.append(f"params_file:={Path(params_file).resolve()}")
    if sim:
        if joint_states_layout not in ("all", "arm_only", "split"):
            raise DeployError(f"joint_states_layout must be all, arm_only or split, got {joint_states_layout!r}")
        env = manifest.env  # the simulated cell is the one the policy trained for
        start = start_joints or (",".join(f"{v:.6f}" for v in env.start_joints) if env.start_joints else "")
        sim_args = [f"backend:={backend}", f"randomization:={randomization}", f"command_delay_s:={command_delay_s}",
                    f"joint_states_layout:={joint_states_layout}", f"table_height_m:={env.table_height_m or 0.0}",
                    f"start_joints:={start}", f"task:={env.task}"]  # fmt: skip
        camera = manifest.camera
        if camera and sim_camera:  # a pixel policy: the simulated arm films at the bundle's camera size, 30 Hz
            sim_args += ["camera_rate_hz:=30.0", f"image_width:={camera.width}", f"image_height:={camera.height}"]
        if env.task != "reach":
            if object_pose not in OBJECT_POSE_SOURCES:
                raise DeployError(f"object_pose must be one of {list(OBJECT_POSE_SOURCES)}, got {object_pose!r}")
            if object_pose in ("truth", "truth_filmed"):
                sim_args.append("publish_object_pose:=true")
                if object_pose == "truth_filmed":  # the tracker's camera load on the arm, its poses unused
                    sim_args += ["camera_name:=front", "camera_rate_hz:=30.0", "image_width:=640", "image_height:=480"]
            else:
                if camera:
                    raise DeployError("object_pose tracker: a pixel policy already films the scene; the tracker "
                                      "rehearsal is for state policies")  # fmt: skip
                sim_args += ["object_tracker:=true", "camera_name:=front", "camera_rate_hz:=30.0",
                             "image_width:=640", "image_height:=480",
                             f"camera_pose:={tracker_camera_pose()}"]  # fmt: skip
        return [str(LAUNCH_DIR / "deploy_sim.launch.yaml"), *args, *sim_args]
    if camera_pose:
        from sim2real_ros.tracker_core import parse_camera_pose, read_camera_yaml

        is_yaml = Path(camera_pose).suffix in (".yaml", ".yml")
        try:
            read_camera_yaml(camera_pose) if is_yaml else parse_camera_pose(camera_pose)
        except ValueError as e:
            raise DeployError(f"--camera-pose: {e}") from None
        if manifest.env.task == "reach":
            raise DeployError("--camera-pose runs the object tracker, which a reach policy does not use")
        where = f"camera_yaml:={Path(camera_pose).resolve()}" if is_yaml else f"camera_pose:={camera_pose}"
        args += ["object_tracker:=true", where]
    return [str(LAUNCH_DIR / "deploy.launch.yaml"), *args, f"autostart:={'true' if autostart else 'false'}"]


def workspace_line(manifest: Any) -> str:
    """The trained goal box in the robot base frame, as `sim2real deploy` prints it before starting."""
    from sim2real_ros.messages import workspace_text

    chain = manifest.robot.ee_chain
    return (
        f"trained goal workspace: {workspace_text(manifest.goal, chain.base_pos_m, chain.base_quat_wxyz)}; goals "
        "outside it are refused"
    )


def describe_episode(ep: Any) -> str:
    """One goal episode as a line of rich markup: the goal (base frame) and reached-in or missed-by."""
    mark = "[green]reached" if ep.success else "[red]missed"
    took = f" in {ep.time_to_goal_s:.2f} s" if ep.success else f", {100 * ep.final_distance_m:.1f} cm away"
    return f"goal {[round(v, 3) for v in ep.goal_base_m]} m (base frame): {mark}{took}"


def use_large_data_transport() -> None:
    """Fast DDS's LARGE_DATA transports for this process and its children (set before any participant exists):
    over the default UDP transport a 921 KB camera frame at 30 Hz arrives about half the time on one host."""
    os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")


def require_ros() -> None:
    """DeployError unless rclpy imports (the [ros] extra)."""
    from sim2real_ros.availability import INSTALL_HINT, ros_import_error

    error = ros_import_error()
    if error is not None:
        raise DeployError(f"deploying needs the [ros] extra: {INSTALL_HINT} ({error})")


def start_launch(args: list[str], log: TextIO) -> subprocess.Popen[bytes]:
    """`sim2real launch ARGS` in its own process group, output to `log`."""
    cmd = [sys.executable, "-m", "sim2real.cli", "launch", *args]
    use_large_data_transport()
    env = dict(os.environ)  # the node scripts sit beside this interpreter, also when the venv is not activated
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)


def stop_launch(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> int:
    """Ctrl-C to the launch runner (it escalates to its processes as ros2 launch does); its exit code."""
    from sim2real.child_processes import interrupt

    return interrupt(proc, timeout_s, group=True)


def rss_mb_of(name: str) -> float | None:
    """Resident memory (MB) of the first process whose command line contains `name` (Linux /proc)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if name in cmdline and "sim2real.cli" not in cmdline:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            continue
    return None


def tracker_camera_pose() -> str:
    """The simulated front camera's optical frame in the base frame, 'x,y,z,qw,qx,qy,qz' (the exact extrinsics
    sim2real-object-tracker takes as camera_pose; a real cell measures them with sim2real calibrate-camera)."""
    import numpy as np

    from sim.camera import base_from_optical
    from sim.scene import SceneSpec
    from sim.transforms import pose_string

    scene = SceneSpec()
    cam = scene.camera("front")
    return pose_string(
        base_from_optical(np.asarray(cam.pos_m), np.asarray(cam.quat), np.asarray(scene.robot_base_pos_m))
    )


def run_goals(
    bundle: Path,
    goals: int,
    backend: str = "pybullet",
    randomization: str = "none",
    controller: str = JOINT_TRAJECTORY,
    seed: int = 0,
    log_path: Path | None = None,
    duration_s: float = 0.0,
    on_episode: Any = None,
    camera: str = "sim",
    trigger: str = "timer",
    command_delay_s: float = 0.0,
    joint_states_layout: str = "all",
    object_pose: str = "truth",
    start_joints: str = "",
    episode_ticks: int = 50,
    params_file: str = "",
) -> dict[str, Any]:
    """Start the rehearsal (simulated arm + policy node), run `goals` episodes (or as many as fit in duration_s,
    sampling the policy node's memory), stop it; the figures as a dict. `command_delay_s`: the simulated arm's
    extra command latency; `joint_states_layout`: what its joint_states carry (all, arm_only, split)."""
    require_ros()
    from sim2real_ros.goal_episodes import run_goal_episodes

    manifest = verified_manifest(bundle)
    if camera not in ("sim", "replay"):
        raise DeployError(f"camera must be sim or replay, got {camera!r}")
    replay = replay_frame(manifest, backend) if camera == "replay" and manifest.camera else None
    args = launch_arguments(
        bundle, True, backend, randomization, controller, sim_camera=replay is None, trigger=trigger,
        command_delay_s=command_delay_s, joint_states_layout=joint_states_layout, object_pose=object_pose,
        start_joints=start_joints, params_file=params_file,
    )  # fmt: skip
    log_path = log_path or Path("out") / "deploy.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"bundle": str(bundle), "backend": backend, "randomization": randomization}
    if manifest.env.task != "reach":
        result["object_pose"] = object_pose
    memory: list[tuple[float, float | None]] = []  # timed runs: (seconds, policy node RSS MB) after each episode
    started = time.monotonic()

    def each(episode: Any) -> None:
        if duration_s > 0:
            memory.append((round(time.monotonic() - started, 1), rss_mb_of("sim2real-policy-node")))
        if on_episode is not None:
            on_episode(episode)

    with open(log_path, "w") as log:
        proc = start_launch(args, log)
        try:
            alive = lambda: proc.poll() is None  # noqa: E731
            report = run_goal_episodes(manifest, goals, seed, on_episode=each, alive=alive, replay_frame=replay,
                                       duration_s=duration_s, episode_ticks=episode_ticks)  # fmt: skip
        except (TimeoutError, RuntimeError) as e:
            stop_launch(proc)
            tail = "".join(log_path.read_text().splitlines(keepends=True)[-8:])
            raise DeployError(f"{e}\n--- last lines of {log_path} ---\n{tail}") from None
        finally:
            result["launch_exit_code"] = stop_launch(proc)
    episodes = report.episodes
    result["episodes"] = [e.__dict__ for e in episodes]
    result["success"] = sum(e.success for e in episodes) / max(1, len(episodes))
    result["timing"] = report.timing
    if memory:
        result["memory_mb"] = memory
    result["log"] = str(log_path)
    return result


def replay_frame(manifest: Manifest, backend: str) -> Any:
    """One real frame of the training scene at the bundle's camera size (the replayed camera's picture)."""
    from sim.env_spec import EnvSpec, make_env

    cam = manifest.camera
    if cam is None:
        raise DeployError("a replayed camera needs a pixel policy; this bundle observes no camera")
    spec = EnvSpec(task=manifest.env.task, backend=backend, obs_mode="pixels")
    env = make_env(spec, image_size=(cam.width, cam.height))
    obs, _ = env.reset(seed=0)
    env.close()
    return obs[f"image_{cam.name}"]


def bench_deploy(
    bundle: Path,
    goals: int = 20,
    backend: str = "pybullet",
    seed: int = 0,
    duration_s: float = 0.0,
    progress: Any = None,
    camera: str = "sim",
    trigger: str = "timer",
    randomization: str = "none",
    object_pose: str = "truth",
    start_joints: str = "",
    episode_ticks: int = 50,
    params_file: str = "",
) -> dict[str, Any]:
    """In-sim success of the bundle (runtime in the env, same engine) vs its success driving the simulated arm over
    DDS in separate processes (with `randomization` drawn on the arm), plus the node's control-loop timing."""
    from sim2real.bench_env import machine_description
    from sim2real.export_run import evaluate_bundle

    pixels = verified_manifest(bundle).camera is not None
    if progress:
        progress(f"in-sim evaluation on {backend} ({goals} episodes)")
    in_sim = evaluate_bundle(bundle, episodes=goals, backend=backend, seed=seed)["nominal"]["success"]
    done: list[bool] = []

    def tick(ep: Any) -> None:
        done.append(ep.success)
        if progress:
            progress(f"over ROS 2: episode {len(done)}, {sum(done)} reached")

    ros = run_goals(bundle, goals, backend, randomization, seed=seed, duration_s=duration_s, on_episode=tick,
                    camera=camera, trigger=trigger, object_pose=object_pose, start_joints=start_joints,
                    episode_ticks=episode_ticks, params_file=params_file)  # fmt: skip
    t = ros["timing"]
    figures = {
        "in_sim_success": in_sim,
        "ros_success": ros["success"],
        "ratio": ros["success"] / in_sim if in_sim else None,
        "episodes": len(ros["episodes"]),
        "tick_compute_ms_p50": _f(t.get("tick_compute_ms_p50")),
        "tick_compute_ms_p99": _f(t.get("tick_compute_ms_p99")),
        "input_to_publish_ms_p50": _f(t.get("input_to_publish_ms_p50")),
        "input_to_publish_ms_p99": _f(t.get("input_to_publish_ms_p99")),
        "image_callback_ms_p99": _f(t.get("image_callback_ms_p99")),
        "image_to_publish_ms_p50": _f(t.get("image_to_publish_ms_p50")),
        "image_to_publish_ms_p99": _f(t.get("image_to_publish_ms_p99")),
        "published_ticks": _f(t.get("published_ticks")),
        "missed_ticks": _f(t.get("missed_ticks")),
    }
    if "memory_mb" in ros:
        mem = [m for _, m in ros["memory_mb"] if m is not None]
        if mem:
            figures["memory_mb_first"], figures["memory_mb_last"] = mem[0], mem[-1]
    return {
        "bundle": str(bundle),
        "backend": backend,
        "randomization": randomization,
        "goals": goals,
        "duration_s": duration_s,
        "camera": camera if pixels else None,
        "trigger": trigger,
        "object_pose": object_pose if verified_manifest(bundle).env.task != "reach" else None,
        "start_joints": start_joints or None,
        "episode_ticks": episode_ticks,
        "params_file": params_file or None,
        "figures": figures,
        "run": ros,
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d"),
    }


def _f(text: str | None) -> float | None:
    return None if text is None else float(text)
