"""The recorder (`sim2real-recorder`, `sim2real record`): QoS choice, duplicate/gap counting, decimation and refusals
without ROS, then over real DDS against the simulated arm in its own process: a bag that rosbags and the mcap
library read back, the commands sent byte-exact, counts equal to the summary, a third of the frames with
--image-every 3, SIGINT, SIGTERM and --duration-s stops, QoS that follows the publishers, what a SIGKILL leaves, and
a run with torch, gymnasium, mujoco, pybullet and SB3 unimportable (the robot PC)."""

from __future__ import annotations

import math
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim2real_ros.recorder_core import (
    DEFAULT_TOPICS,
    Delivery,
    RecorderError,
    RecorderOptions,
    RecordingSummary,
    TopicStats,
    TopicSummary,
    check_options,
    format_summary,
    subscription_delivery,
)

NS = "/rec"
ARM_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
ALL_JOINTS = [*ARM_JOINTS, "panda_finger_joint1", "panda_finger_joint2"]
NEUTRAL_Q = [0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79]
CLI = [sys.executable, "-m", "sim2real.cli"]


# -- without ROS ----------------------------------------------------------------------------------------------
def test_the_subscription_is_as_strong_as_every_publisher_allows_and_only_ever_weakens() -> None:
    reliable, best_effort, latched = Delivery(True, False), Delivery(False, False), Delivery(True, True)
    assert subscription_delivery([reliable, reliable]) == reliable
    assert subscription_delivery([reliable, best_effort]) == best_effort  # reliable would not hear best effort
    assert subscription_delivery([latched]) == latched
    assert subscription_delivery([latched, reliable]) == reliable  # transient local would not hear volatile
    assert subscription_delivery([reliable], current=best_effort) == best_effort  # never re-subscribes stronger
    assert subscription_delivery([latched], current=reliable) == reliable


def test_stats_drop_duplicates_count_sequence_gaps_and_keep_one_in_n() -> None:
    stats = TopicStats()
    kept = [stats.admit(b"a", seq, keep_every=3) for seq in (1, 2, 3, 3, 4, 7, 8)]
    assert kept == [True, False, False, False, True, False, False]
    assert (stats.received, stats.written, stats.decimated, stats.duplicates, stats.lost) == (6, 2, 4, 1, 2)
    other = TopicStats()
    assert all(other.admit(None, None) for _ in range(3)) and other.written == 3  # no GID: nothing to compare
    assert other.admit(b"b", 10) and other.lost == 0  # a publisher's first message sets its baseline


def test_options_are_refused_before_anything_is_created(tmp_path: Path) -> None:
    (tmp_path / "bag").mkdir()
    (tmp_path / "bag" / "keep.txt").write_text("mine")
    with pytest.raises(RecorderError, match="exists; the recorder writes a new folder and never replaces one"):
        check_options(RecorderOptions(tmp_path / "bag"))
    assert [p.name for p in (tmp_path / "bag").iterdir()] == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(RecorderError, match="is not a folder"):
        check_options(RecorderOptions(tmp_path / "file" / "bag"))
    for bad, needle in [
        ({"duration_s": -1.0}, "--duration-s"),
        ({"duration_s": math.nan}, "--duration-s"),
        ({"image_every": 0}, "--image-every"),
        ({"topics": ()}, "--topics"),
        ({"topics": ("joint_states", " x")}, "not a topic name"),
    ]:
        with pytest.raises(RecorderError, match=needle):
            check_options(RecorderOptions(tmp_path / "new", **bad))  # type: ignore[arg-type]
    check_options(RecorderOptions(tmp_path / "deeper" / "new"))  # missing parents are made at the start
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag", "file"]


def test_the_summary_lists_every_requested_topic() -> None:
    stats = TopicStats()
    for seq in range(1, 31):
        stats.admit(b"g", seq, keep_every=10)
    topics = [
        TopicSummary("/joint_states", "sensor_msgs/msg/JointState", "reliable", TopicStats(received=5, written=5)),
        TopicSummary("/camera/image_raw", "sensor_msgs/msg/Image", "best effort", stats),
        TopicSummary("/goal_pose"),
    ]
    text = format_summary(RecordingSummary(Path("bags/a"), 2.04, topics, "SIGINT", 2_500_000))
    assert text.splitlines()[0] == "recorded 8 messages in 2.0 s to bags/a (rosbag2, mcap, 2.5 MB; stopped by SIGINT)"
    assert _summary_counts(text) == {"/joint_states": 5, "/camera/image_raw": 3, "/goal_pose": 0}
    assert "best effort (of 30 received)" in text and "(no publisher)" in text


def test_the_defaults_cover_the_deployment_topics() -> None:
    from sim2real_ros.controller_config import COMMAND_TOPICS

    assert set(COMMAND_TOPICS.values()) <= set(DEFAULT_TOPICS)
    assert {"joint_states", "gripper/joint_states", "goal_pose", "object_pose", "/diagnostics"} <= set(DEFAULT_TOPICS)
    assert {"camera/image_raw", "camera/camera_info"} <= set(DEFAULT_TOPICS)


def test_without_rclpy_the_script_says_which_extra_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['rclpy'] = None; from sim2real_ros.recorder import main; "
        f"sys.exit(main(['x', '--out', {str(tmp_path / 'bag')!r}]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and not (tmp_path / "bag").exists()
    assert "sim2real-recorder needs the [ros] extra: pip install 'sim2real[ros]'" in out.stderr


def test_record_help_lists_the_flags() -> None:
    r = subprocess.run([*CLI, "record", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for flag in ("--out", "--duration-s", "--topics", "--namespace", "--image-every"):
        assert flag in r.stdout


# -- over DDS -------------------------------------------------------------------------------------------------
def _summary_counts(text: str) -> dict[str, int]:
    """topic -> messages written, from the summary's per-topic lines."""
    return {m[1]: int(m[2]) for m in re.finditer(r"^  (/\S+)\s+\S+\s+(\d+)\s", text, re.MULTILINE)}


def _read_bag(path: Path) -> dict[str, list[tuple[int, bytes, Any]]]:
    """topic -> [(log time ns, raw CDR, message)] in log-time order, read with rosbags' AnyReader."""
    from rosbags.highlevel import AnyReader

    out: dict[str, list[tuple[int, bytes, Any]]] = {}
    with AnyReader([path]) as reader:
        for connection in reader.connections:
            out.setdefault(connection.topic, [])
        for connection, t_ns, raw in reader.messages():
            out[connection.topic].append((t_ns, bytes(raw), reader.deserialize(raw, connection.msgtype)))
    return out


def _metadata(path: Path) -> dict[str, Any]:
    info: dict[str, Any] = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    return info


def _recorder_subscribed(probe: Any, topic: str) -> bool:
    return any(i.node_name == "recorder" for i in probe.node.get_subscriptions_info_by_topic(topic))


def _stop(proc: subprocess.Popen[str], signum: int) -> str:
    from tests.ros.harness import output_of

    t0 = time.monotonic()
    proc.send_signal(signum)
    code = proc.wait(timeout=10)
    out = output_of(proc)
    assert code == 0, out
    assert time.monotonic() - t0 < 5.0, "the recorder took longer than a launch's SIGINT timeout to close the bag"
    return out


@pytest.fixture(scope="module")
def arm() -> Iterator[Any]:
    """The simulated arm (PyBullet, 20 Hz 64x48 camera) under /rec and a probe; both live for the module."""
    harness = pytest.importorskip("tests.ros.harness")
    from sensor_msgs.msg import JointState

    params = {"backend": "pybullet", "camera_rate_hz": "20.0", "image_width": "64", "image_height": "48"}
    ros_args = ("-r", f"__ns:={NS}", *(a for k, v in params.items() for a in ("-p", f"{k}:={v}")))
    with harness.console_script("sim2real-sim-arm", ros_args=ros_args) as proc, harness.probe("rec_probe") as p:
        js = p.collect(JointState, f"{NS}/joint_states")
        harness.wait_for(lambda: js or proc.poll() is not None, 60.0, "the sim arm's joint_states")
        assert proc.poll() is None, harness.output_of(proc)
        yield p


@pytest.mark.ros
def test_sigint_closes_a_bag_with_everything_received(arm: Any, tmp_path: Path) -> None:
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory

    from tests.ros.harness import console_script, wait_for

    bag = tmp_path / "bag"
    topic = f"{NS}/joint_trajectory_controller/joint_trajectory"
    jtc = arm.publisher(JointTrajectory, topic)
    delivered = arm.collect_raw(JointTrajectory, topic)  # the serialized bytes as a second raw subscriber gets them
    fcc = arm.publisher(Float64MultiArray, f"{NS}/forward_position_controller/commands")
    with console_script("sim2real-recorder", "--out", str(bag), "--namespace", "rec", "--image-every", "3") as proc:
        wait_for(lambda: jtc.get_subscription_count() >= 3 or proc.poll() is not None, 20.0, "the recorder on JTC")
        wait_for(lambda: fcc.get_subscription_count() >= 1, 10.0, "the recorder on the forward command topic")
        wait_for(lambda: _recorder_subscribed(arm, f"{NS}/camera/image_raw"), 10.0, "the recorder on the camera")
        sent = [_trajectory(_q(0.05 * k), 0.3) for k in range(1, 4)]
        forward = [Float64MultiArray(data=_q(-0.02 * k)) for k in range(1, 3)]
        for msg in sent:
            jtc.publish(msg)
            time.sleep(0.2)
        wait_for(lambda: len(delivered) == len(sent), 5.0, "the probe's copies of the commands")
        for f in forward:
            fcc.publish(f)
        time.sleep(2.0)  # about 40 frames at 20 Hz
        out = _stop(proc, signal.SIGINT)

    assert "stopped by SIGINT" in out and "Traceback" not in out
    counts = _summary_counts(out)
    messages = _read_bag(bag)
    info = _metadata(bag)
    assert info["version"] == 9 and info["storage_identifier"] == "mcap"
    assert info["relative_file_paths"] == ["bag.mcap"]
    in_metadata = {t["topic_metadata"]["name"]: t["message_count"] for t in info["topics_with_message_count"]}
    in_bag = {topic: len(msgs) for topic, msgs in messages.items()}
    assert {t: n for t, n in counts.items() if n} == {t: n for t, n in in_bag.items() if n} == in_metadata
    assert set(counts) == {f"{NS}/{t}" if not t.startswith("/") else t for t in DEFAULT_TOPICS}
    assert info["message_count"] == sum(in_bag.values())

    from mcap.reader import make_reader

    with (bag / "bag.mcap").open("rb") as fh:  # the footer and summary section are there: a seeking reader opens it
        mcap_summary = make_reader(fh).get_summary()
    assert mcap_summary is not None and mcap_summary.statistics is not None
    assert mcap_summary.statistics.message_count == sum(in_bag.values())

    joint_states = messages[f"{NS}/joint_states"]
    assert len(joint_states) > 50
    assert all(list(m.name) == ALL_JOINTS and len(m.position) == 9 for _, _, m in joint_states)
    stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for _, _, m in joint_states]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    log_times = [t for t, _, _ in joint_states]
    assert all(0 <= t - s < 10**9 for t, s in zip(log_times, stamps))  # the receive time, just after the stamp

    recorded = messages[f"{NS}/joint_trajectory_controller/joint_trajectory"]
    assert [raw for _, raw, _ in recorded] == delivered  # byte-exact: what DDS delivered to another subscriber
    assert [arm.deserialize(raw, JointTrajectory) for _, raw, _ in recorded] == sent
    for (_, _, got), want in zip(recorded, sent):
        assert list(got.joint_names) == ARM_JOINTS
        assert got.points[0].positions.tolist() == list(want.points[0].positions)
    recorded_forward = messages[f"{NS}/forward_position_controller/commands"]
    assert [m.data.tolist() for _, _, m in recorded_forward] == [list(f.data) for f in forward]

    received = int(re.search(rf"{NS}/camera/image_raw .*\(of (\d+) received\)", out)[1])  # type: ignore[index]
    frames = messages[f"{NS}/camera/image_raw"]
    infos = messages[f"{NS}/camera/camera_info"]
    assert received >= 9 and len(frames) == math.ceil(received / 3)  # the 1st, 4th, 7th, ... frame
    assert abs(len(infos) - received) <= 3  # camera_info is kept whole: one per frame published
    assert all((m.width, m.height, m.encoding, len(m.data)) == (64, 48, "rgb8", 64 * 48 * 3) for _, _, m in frames)
    assert messages["/diagnostics"]


@pytest.mark.ros
def test_sigterm_to_sim2real_record_leaves_a_readable_bag(arm: Any, tmp_path: Path) -> None:
    from tests.ros.harness import wait_for

    bag = tmp_path / "deep" / "bag"
    cmd = [*CLI, "record", "--out", str(bag), "--namespace", NS, "--topics", "joint_states", "/diagnostics"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: _recorder_subscribed(arm, f"{NS}/joint_states") or proc.poll() is not None, 30, "recording")
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(1.0)
        out = _stop(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "stopped by SIGTERM" in out
    counts = _summary_counts(out)
    messages = _read_bag(bag)
    assert set(counts) == {f"{NS}/joint_states", "/diagnostics"}
    assert counts[f"{NS}/joint_states"] == len(messages[f"{NS}/joint_states"]) > 20
    assert _metadata(bag)["message_count"] == sum(counts.values())


@pytest.mark.ros
def test_duration_stops_by_itself_on_a_robot_pc_without_the_training_stack(arm: Any, tmp_path: Path) -> None:
    """The recorder runs with torch, gymnasium, mujoco, pybullet, SB3 and our sim/policies packages unimportable."""
    bag = tmp_path / "bag"
    blocked = ["torch", "gymnasium", "mujoco", "pybullet", "stable_baselines3", "sb3_contrib", "sim", "policies"]
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "from sim2real_ros.recorder import main\n"
        f"sys.exit(main(['sim2real-recorder', '--out', {str(bag)!r}, '--namespace', 'rec', '--topics',"
        " 'joint_states', '--duration-s', '5']))\n"
    )
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert time.monotonic() - t0 < 20.0
    assert "stopped by duration" in r.stdout and re.search(r"in 5\.[0-4] s", r.stdout), r.stdout
    counts = _summary_counts(r.stdout)  # DDS discovery alone may take 2.5 s of the 5
    assert counts[f"{NS}/joint_states"] > 10, r.stdout + r.stderr
    assert counts[f"{NS}/joint_states"] == len(_read_bag(bag)[f"{NS}/joint_states"])


@pytest.mark.ros
def test_qos_follows_the_publishers(arm: Any, tmp_path: Path) -> None:
    """A best-effort publisher is heard (best-effort subscription); a best-effort publisher joining a reliable
    topic makes the recorder re-subscribe weaker, without duplicates; a latched message published before the
    recorder started arrives (transient local)."""
    from geometry_msgs.msg import PoseStamped

    from tests.ros.harness import console_script, wait_for

    latched = arm.publisher(PoseStamped, f"{NS}/latched", "latched")
    latched.publish(_pose(9.0))
    sensor = arm.publisher(PoseStamped, f"{NS}/object_pose", "best_effort")
    goal = arm.publisher(PoseStamped, f"{NS}/goal_pose", "reliable")
    bag = tmp_path / "bag"
    topics = ("--topics", "object_pose", "goal_pose", "latched")
    with console_script("sim2real-recorder", "--out", str(bag), "--namespace", "rec", *topics) as proc:
        wait_for(
            lambda: (
                sensor.get_subscription_count() and goal.get_subscription_count() and latched.get_subscription_count()
            ),
            20.0,
            "the recorder",
        )
        for k in range(3):
            sensor.publish(_pose(float(k)))
            goal.publish(_pose(10.0 + k))
            time.sleep(0.05)
        late = arm.publisher(PoseStamped, f"{NS}/goal_pose", "best_effort")
        wait_for(lambda: late.get_subscription_count(), 10.0, "the recorder to hear the best-effort publisher")
        time.sleep(0.3)
        for k in range(3):
            goal.publish(_pose(20.0 + k))
            late.publish(_pose(30.0 + k))
            time.sleep(0.05)
        time.sleep(0.5)
        out = _stop(proc, signal.SIGINT)
    messages = _read_bag(bag)
    xs = {t: [m.pose.position.x for _, _, m in msgs] for t, msgs in messages.items()}
    assert xs[f"{NS}/object_pose"] == [0.0, 1.0, 2.0]
    assert xs[f"{NS}/latched"] == [9.0]
    assert sorted(xs[f"{NS}/goal_pose"]) == [10.0, 11.0, 12.0, 20.0, 21.0, 22.0, 30.0, 31.0, 32.0]
    assert re.search(rf"{NS}/object_pose .* best effort\n", out) and re.search(rf"{NS}/latched .* transient local", out)
    assert re.search(rf"{NS}/goal_pose .* best effort", out) and "re-subscribed best effort (was reliable)" in out


@pytest.mark.ros
def test_a_sigkill_leaves_complete_chunks_to_salvage(arm: Any, tmp_path: Path) -> None:
    """No footer and no metadata.yaml after SIGKILL, but the chunks written each second stream back."""
    from mcap.exceptions import McapError
    from mcap.records import Message
    from mcap.stream_reader import StreamReader

    from tests.ros.harness import console_script, wait_for

    bag = tmp_path / "bag"
    with console_script("sim2real-recorder", "--out", str(bag), "--namespace", "rec", "--topics", "joint_states") as p:
        wait_for(lambda: _recorder_subscribed(arm, f"{NS}/joint_states"), 20.0, "the recorder")
        time.sleep(2.5)
        p.kill()
        p.wait()
    assert not (bag / "metadata.yaml").exists()
    messages = 0
    with (bag / "bag.mcap").open("rb") as fh:
        try:
            for record in StreamReader(fh).records:
                messages += isinstance(record, Message)
        except (McapError, EOFError, ValueError):
            pass  # the unfinished end
    assert messages > 50  # at least the first second or so of 100 Hz joint states


@pytest.mark.ros
def test_an_existing_out_or_a_bad_name_is_refused_and_nothing_is_touched(tmp_path: Path) -> None:
    harness = pytest.importorskip("tests.ros.harness")
    existing = tmp_path / "bag"
    existing.mkdir()
    (existing / "notes.txt").write_text("keep me")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in existing.iterdir())
    r = subprocess.run(
        [str(harness.BIN / "sim2real-recorder"), "--out", str(existing)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "sim2real-recorder: --out" in r.stderr and "exists" in r.stderr
    r = subprocess.run([*CLI, "record", "--out", str(existing)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("sim2real record: --out") and "exists" in r.stderr, r.stderr
    assert sorted((p.name, p.stat().st_mtime_ns) for p in existing.iterdir()) == before
    assert (existing / "notes.txt").read_text() == "keep me"
    fresh = tmp_path / "fresh"
    r = subprocess.run(
        [*CLI, "record", "--out", str(fresh), "--topics", "bad name"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and "sim2real record: --topics 'bad name'" in r.stderr, r.stderr
    r = subprocess.run([*CLI, "record", "--out", str(fresh), "--image-every", "0"], capture_output=True, text=True)
    assert r.returncode == 2 and "--image-every must be at least 1" in r.stderr
    assert not fresh.exists()


def _q(delta_rad: float) -> list[float]:
    return [NEUTRAL_Q[0] + delta_rad, *NEUTRAL_Q[1:]]


def _trajectory(q: list[float], t_s: float) -> Any:
    """One JTC point at q, t_s from now (as the policy node sends them)."""
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    point = JointTrajectoryPoint(positions=q, time_from_start=Duration(sec=int(t_s), nanosec=round(t_s % 1 * 1e9)))
    return JointTrajectory(joint_names=ARM_JOINTS, points=[point])


def _pose(x: float) -> Any:
    from geometry_msgs.msg import PoseStamped

    msg = PoseStamped()
    msg.header.frame_id = "panda_link0"
    msg.pose.position.x = x
    msg.pose.orientation.w = 1.0
    return msg
