"""Goal-reaching episodes over ROS 2 against a running policy node and simulated arm: halt, reset the arm, send a
goal on goal_pose, resume, and watch joint_states until the end-effector (forward kinematics from the bundle's
chain) is within the success distance or the episode's time is up. `sim2real deploy --goals` and
`sim2real bench deploy` report what this measures."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import Trigger

from policies.manifest import CameraSpec, Manifest
from sim.kinematics import KinematicChain
from sim2real_ros.probe import QOS, Probe


@dataclass
class EpisodeResult:
    goal_base_m: list[float]
    success: bool
    time_to_goal_s: float | None
    final_distance_m: float


@dataclass
class GoalReport:
    episodes: list[EpisodeResult] = field(default_factory=list)
    timing: dict[str, str] = field(default_factory=dict)


class GoalClient:
    """Drives episodes from a Probe node (its own context, spun in a background thread)."""

    def __init__(
        self,
        manifest: Manifest,
        namespace: str = "",
        replay_frame: np.ndarray | None = None,
        camera_hz: float = 30.0,
    ) -> None:
        self.ns = namespace.rstrip("/")
        self.probe = Probe("sim2real_goal_client")
        self.node = self.probe.node
        self.chain = KinematicChain.from_dict(manifest.robot.ee_chain.to_dict())
        self.goal = manifest.goal
        self.joints = list(manifest.joint_names)
        self.ee_world_m: np.ndarray | None = None
        self.object_world_m: np.ndarray | None = None
        self.has_object = manifest.env.task != "reach"
        self.timing: dict[str, str] = {}
        self.node.create_subscription(JointState, f"{self.ns}/joint_states", self._on_joints, QOS["sensor"])
        if self.has_object:  # the simulated arm's true object pose scores object tasks (whatever the node sees)
            self.node.create_subscription(PoseStamped, f"{self.ns}/sim/object_pose", self._on_object, QOS["sensor"])
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.goal_pub = self.node.create_publisher(PoseStamped, f"{self.ns}/goal_pose", 1)
        if replay_frame is not None:
            if manifest.camera is None:
                raise ValueError("a replayed camera needs a pixel policy; this bundle observes no camera")
            self._start_replay_camera(manifest.camera, replay_frame, camera_hz)

    def _start_replay_camera(self, camera: CameraSpec, frame: np.ndarray, rate_hz: float) -> None:
        """A camera driver stand-in: the same real frame (H, W, 3) RGB, freshly stamped, at rate_hz with its
        CameraInfo, so the policy node sees the image load of a live camera (latency benchmarks)."""
        h, w = frame.shape[:2]
        image = Image(height=h, width=w, encoding="rgb8", step=3 * w)
        image.data = frame.astype(np.uint8).tobytes()
        image.header.frame_id = f"{camera.name}_optical_frame"
        k = np.asarray(camera.k, float)
        info = CameraInfo(height=h, width=w, distortion_model="plumb_bob", d=[0.0] * 5)
        info.k = k.ravel().tolist()
        info.r = np.eye(3).ravel().tolist()
        info.p = np.hstack([k, np.zeros((3, 1))]).ravel().tolist()
        info.header.frame_id = image.header.frame_id
        image_pub = self.node.create_publisher(Image, f"{self.ns}/camera/image_raw", 5)
        info_pub = self.node.create_publisher(CameraInfo, f"{self.ns}/camera/camera_info", 5)

        def publish() -> None:
            stamp = self.node.get_clock().now().to_msg()
            image.header.stamp = info.header.stamp = stamp
            image_pub.publish(image)
            info_pub.publish(info)

        self.node.create_timer(1.0 / rate_hz, publish)

    def _on_joints(self, msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        if not all(j in index for j in self.joints):
            return
        q = {j: float(msg.position[index[j]]) for j in self.joints}
        self.ee_world_m = self.chain.pose(q)[0]

    def _on_object(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        self.object_world_m = self.chain.base_pos_m + np.array([p.x, p.y, p.z])

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for s in msg.status:
            if s.name.endswith("policy_node: timing"):
                self.timing = {kv.key: kv.value for kv in s.values}

    def call(self, srv: str) -> Any:
        """A std_srvs/Trigger service's response."""
        return self.probe.call(Trigger, srv)

    def wait_active(self, timeout_s: float = 60.0, alive: Callable[[], bool] = lambda: True) -> None:
        """Wait until the policy node reports `active` (autostart activates it once its inputs are fresh);
        `alive` false (the nodes' launch ended) stops the wait."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not alive():
                raise RuntimeError("the deployment's processes exited before the policy node became active")
            try:
                if self.probe.lifecycle_state(f"{self.ns}/policy_node", timeout_s=0.5) == "active":
                    return
            except TimeoutError:  # not up yet
                continue
            time.sleep(0.2)
        raise TimeoutError(f"{self.ns}/policy_node did not become active within {timeout_s} s")

    def send_goal(self, goal_base_m: np.ndarray) -> None:
        msg = PoseStamped()
        msg.header.frame_id = self.goal.frame_id
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in goal_base_m)
        msg.pose.orientation.w = 1.0
        self.goal_pub.publish(msg)

    def episode(self, goal_base_m: np.ndarray, duration_s: float) -> EpisodeResult:
        """One episode: halt, reset the simulated arm, goal, resume, watch; the policy is halted again at the end."""
        self.call(f"{self.ns}/policy_node/halt")
        if not self.call(f"{self.ns}/sim_arm/reset").success:
            raise RuntimeError("the simulated arm refused ~/reset")
        time.sleep(0.3)  # fresh joint_states from the reset arm
        if self.has_object:  # object goals lie on the table, at the height of the object's centre
            self.object_world_m = None
            deadline = time.monotonic() + 5.0
            while self.object_world_m is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no {self.ns}/sim/object_pose from the simulated arm for 5 s")
                time.sleep(0.01)
            goal_base_m = np.array([goal_base_m[0], goal_base_m[1], self.object_world_m[2] - self.chain.base_pos_m[2]])
        self.send_goal(goal_base_m)
        goal_world = self.chain.base_pos_m + goal_base_m
        deadline = time.monotonic() + 5.0
        while not self.call(f"{self.ns}/policy_node/resume").success:
            if time.monotonic() > deadline:
                raise TimeoutError("the policy node refused ~/resume for 5 s (inputs not fresh?)")
            time.sleep(0.05)
        start = time.monotonic()
        reached: float | None = None
        distance = float("inf")
        while time.monotonic() - start < duration_s:
            achieved = self.object_world_m if self.has_object else self.ee_world_m
            if achieved is not None:
                distance = float(np.linalg.norm(achieved - goal_world))
                if distance < self.goal.distance_threshold_m:
                    reached = time.monotonic() - start
                    break
            time.sleep(0.002)
        self.call(f"{self.ns}/policy_node/halt")
        return EpisodeResult([float(v) for v in goal_base_m], reached is not None, reached, distance)

    def close(self) -> None:
        self.probe.close()


def sample_goals_base_m(manifest: Manifest, n: int, seed: int) -> np.ndarray:
    """n goals drawn uniformly in the trained goal box (as the env draws them), in the robot's base frame (n, 3)."""
    rng = np.random.default_rng(seed)
    lo, hi = np.asarray(manifest.goal.world_low_m), np.asarray(manifest.goal.world_high_m)
    base = np.asarray(manifest.robot.ee_chain.base_pos_m)
    return rng.uniform(lo, hi, size=(n, 3)) - base


def run_goal_episodes(
    manifest: Manifest,
    n_goals: int,
    seed: int = 0,
    namespace: str = "",
    episode_ticks: int = 50,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    alive: Callable[[], bool] = lambda: True,
    replay_frame: np.ndarray | None = None,
    duration_s: float = 0.0,
) -> GoalReport:
    """`n_goals` episodes (or, with duration_s > 0, as many as start within that time, a fresh goal draw each) of
    `episode_ticks` control periods (the training episode length) against the policy node and simulated arm
    running under `namespace`."""
    client = GoalClient(manifest, namespace, replay_frame)
    report = GoalReport()
    try:
        client.wait_active(alive=alive)
        episode_s = episode_ticks / manifest.control_rate_hz
        for goal in _goals(manifest, n_goals, seed, duration_s):
            result = client.episode(goal, episode_s)
            report.episodes.append(result)
            if on_episode is not None:
                on_episode(result)
        time.sleep(1.1)  # one more /diagnostics period for the timing figures
        report.timing = dict(client.timing)
    finally:
        client.close()
    return report


def _goals(manifest: Manifest, n_goals: int, seed: int, duration_s: float) -> Iterator[np.ndarray]:
    """n_goals draws; or, with duration_s > 0, one draw (seed, seed + 1, ...) per episode until the time is up."""
    if duration_s <= 0:
        yield from sample_goals_base_m(manifest, n_goals, seed)
        return
    start, k = time.monotonic(), 0
    while time.monotonic() - start < duration_s:
        yield sample_goals_base_m(manifest, 1, seed + k)[0]
        k += 1
