"""Bags -> episodes: every fault of ROS.md B.4 37-48 as written there, on synthetic MCAP and SQLite3 bags, plus the
reader's contract (the control grid, zero-order-held commands, re-indexing by name, determinism, provenance)."""

from __future__ import annotations

import hashlib
import heapq
import shutil
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from calibration.bags import BagReadSettings, collect_episodes, read_bag, read_bags
from calibration.episodes import (
    AFTER_HALT,
    BEFORE_HALT,
    CLOCK_DRIFT,
    COMMAND_RATE,
    GAPS_RESAMPLED,
    REORDERED,
    SAMPLES_DROPPED,
    SATURATED,
    SIM_TIME,
    STATIC,
    VELOCITY_DIFFERENCED,
    BagReport,
)
from tests.calibration.bag_factory import (
    ARM,
    FINGERS,
    FORWARD_POSITION,
    TYPESTORE,
    CommandSample,
    Extra,
    JointStateSample,
    StatusSample,
    camera_info,
    commands_from,
    image,
    joint_state,
    joint_states_from,
    typestore_with,
    write_bag,
    write_mcap,
)

NS = 1_000_000_000
T0_NS = 1_700_000_000 * NS  # wall-clock stamps (November 2023)
DT_S = 0.04
MID_RAD = np.array([0.0, -0.3, 0.0, -2.0, 0.0, 1.8, 0.8])
AMP_RAD = 0.3
FREQ_HZ = np.linspace(0.3, 0.8, 7)
JTC = "joint_trajectory_controller/joint_trajectory"
JS = "sensor_msgs/msg/JointState"


def truth(t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The arm's true motion: positions and velocities (T, 7) at times t_s (T,) from T0."""
    phase = 2 * np.pi * FREQ_HZ * np.asarray(t_s, float)[:, None]
    return MID_RAD + AMP_RAD * np.sin(phase), AMP_RAD * 2 * np.pi * FREQ_HZ * np.cos(phase)


def command(t_s: np.ndarray) -> np.ndarray:
    """The target sent at t_s: the true position 50 ms ahead."""
    return truth(np.asarray(t_s) + 0.05)[0]


def ns(t_s: float | np.ndarray) -> np.ndarray:
    return np.round(np.asarray(t_s, float) * NS).astype(np.int64) + T0_NS


def js_samples(t_s: np.ndarray, velocities: bool = True) -> list[JointStateSample]:
    q, qd = truth(t_s)
    return [JointStateSample(int(t), ARM, q[i], qd[i] if velocities else None) for i, t in enumerate(ns(t_s))]


def cmd_samples(t_s: np.ndarray) -> list[CommandSample]:
    return [CommandSample(int(t), ARM, command(np.array([ts]))[0]) for t, ts in zip(ns(t_s), t_s)]


def recording(
    duration_s: float = 4.0, js_hz: float = 100.0, cmd_start_s: float = 0.2
) -> tuple[list[JointStateSample], list[CommandSample]]:
    """joint_states from 0 to duration_s + 0.2 s, commands every DT_S from cmd_start_s to duration_s."""
    t_js = np.arange(0.0, duration_s + 0.2, 1.0 / js_hz)
    t_cmd = np.arange(cmd_start_s, duration_s, DT_S)
    return js_samples(t_js), cmd_samples(t_cmd)


def rows_s(report: BagReport, k: int = 0) -> np.ndarray:
    """Row times of episode k, in s from T0."""
    e = report.episodes[k]
    return (e.t0_ns - T0_NS) / NS + np.arange(e.n_steps) * e.dt_s


def assert_tracks_truth(report: BagReport, atol_rad: float = 1e-3, atol_rad_s: float = 1e-2) -> None:
    """Every episode's rows hold the true positions/velocities and the last command sent at or before them."""
    assert report.episodes, report.skipped
    for k, e in enumerate(report.episodes):
        t = rows_s(report, k)
        q, qd = truth(t)
        np.testing.assert_allclose(e.q_rad, q, atol=atol_rad)
        np.testing.assert_allclose(e.qd_rad_s, qd, atol=atol_rad_s)
        sent_s = np.round((t - 0.2) / DT_S) * DT_S + 0.2  # commands go out every DT_S from 0.2 s
        np.testing.assert_allclose(e.q_cmd_rad[:-1], command(sent_s[:-1]), atol=1e-12)
        last = command(sent_s[-1:])[0]  # the last row holds the next command, or the last one sent
        assert np.allclose(e.q_cmd_rad[-1], last, atol=1e-12) or np.array_equal(e.q_cmd_rad[-1], e.q_cmd_rad[-2])


def warned(report: BagReport, text: str) -> bool:
    return any(text in w for w in report.warnings)


@pytest.fixture(params=["mcap", "sqlite3"])
def storage(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- the contract ---------------------------------------------------------------------------------------------------


def test_a_clean_recording_gives_one_episode_on_the_control_grid(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    report = read_bag(write_bag(tmp_path / "bag", joint_states=js, commands=cmds, storage=storage), ARM, DT_S)
    assert report.skipped == "" and report.warnings == [] and len(report.episodes) == 1
    e = report.episodes[0]
    # row 0 is the first command (rows before it are dropped); the last command is held one period
    assert e.t0_ns == cmds[0].stamp_ns and e.n_steps == len(cmds) + 1
    assert e.joint_names == ARM and e.dt_s == DT_S and e.command_topic == JTC and e.flags == ()
    assert e.q_rad.shape == e.qd_rad_s.shape == e.q_cmd_rad.shape == (len(cmds) + 1, 7)
    np.testing.assert_array_equal(e.q_cmd_rad[:-1], [c.q_cmd for c in cmds])
    assert_tracks_truth(report, atol_rad=1e-9, atol_rad_s=1e-9)
    assert report.latency_s == 0.0 and e.source.endswith("bag#0")


def test_mcap_and_sqlite3_bags_of_one_recording_read_the_same(tmp_path: Path) -> None:
    js, cmds = recording()
    a = read_bag(write_bag(tmp_path / "a", joint_states=js, commands=cmds, storage="mcap"), ARM)
    b = read_bag(write_bag(tmp_path / "b", joint_states=js, commands=cmds, storage="sqlite3"), ARM)
    for x, y in zip(a.episodes, b.episodes, strict=True):
        np.testing.assert_array_equal(x.q_rad, y.q_rad)
        np.testing.assert_array_equal(x.q_cmd_rad, y.q_cmd_rad)
        assert x.t0_ns == y.t0_ns


def test_reading_is_deterministic_and_hashes_the_data_files(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    js[10] = js[10]._replace(q=np.full(7, np.nan))
    path = write_bag(tmp_path / "bag", joint_states=js, commands=cmds, storage=storage)
    first, second = read_bag(path, ARM), read_bag(path, ARM)
    assert first.warnings == second.warnings and first.sha256 == second.sha256
    for x, y in zip(first.episodes, second.episodes, strict=True):
        assert (x.source, x.t0_ns, x.flags, x.command_topic) == (y.source, y.t0_ns, y.flags, y.command_topic)
        for a, b in ((x.q_rad, y.q_rad), (x.qd_rad_s, y.qd_rad_s), (x.q_cmd_rad, y.q_cmd_rad)):
            np.testing.assert_array_equal(a, b)
    data = next(p for p in path.iterdir() if p.suffix in (".mcap", ".db3"))
    assert first.sha256 == hashlib.sha256(data.read_bytes()).hexdigest()
    other = read_bag(write_bag(tmp_path / "other", joint_states=js[:-1], commands=cmds, storage=storage), ARM)
    assert other.sha256 != first.sha256


def test_read_bags_reads_each_path_in_order_and_bad_arguments_raise(tmp_path: Path) -> None:
    js, cmds = recording()
    good = write_bag(tmp_path / "good", joint_states=js, commands=cmds)
    reports = read_bags([tmp_path / "missing", good], ARM)
    assert [r.path for r in reports] == [str(tmp_path / "missing"), str(good)]
    assert "does not exist" in reports[0].skipped and reports[1].episodes
    with pytest.raises(ValueError, match="not revolute joints"):
        read_bags([good], ("panda_joint1", "elbow"))
    with pytest.raises(ValueError, match="control_dt_s"):
        read_bag(good, ARM, 0.0)


def test_calibration_refuses_when_too_little_data_remains(tmp_path: Path) -> None:
    js, cmds = recording()
    good = read_bag(write_bag(tmp_path / "good", joint_states=js, commands=cmds), ARM)
    empty = read_bag(write_bag(tmp_path / "empty"), ARM)
    assert len(collect_episodes([good, empty], min_total_s=3.0)) == 1
    with pytest.raises(ValueError, match=r"need 10.0 s .*empty.*: the bag is empty"):
        collect_episodes([good, empty], min_total_s=10.0)


def test_velocities_come_from_joint_states_else_from_finite_differences(tmp_path: Path, storage: str) -> None:
    t = np.arange(0.0, 4.2, 0.01)
    js = js_samples(t, velocities=False)
    _, cmds = recording()
    report = read_bag(write_bag(tmp_path / "bag", joint_states=js, commands=cmds, storage=storage), ARM)
    assert VELOCITY_DIFFERENCED in report.episodes[0].flags and warned(report, "no velocities recorded")
    assert_tracks_truth(report, atol_rad_s=0.02)  # central differences at 25 Hz


# -- 37: no metadata.yaml -------------------------------------------------------------------------------------------


def test_37_without_metadata_yaml_the_storage_file_is_read_directly(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    whole = read_bag(write_bag(tmp_path / "whole", joint_states=js, commands=cmds, storage=storage), ARM)
    crashed = write_bag(tmp_path / "crashed", joint_states=js, commands=cmds, storage=storage, metadata=False)
    report = read_bag(crashed, ARM)
    assert warned(report, "no metadata.yaml")
    assert report.sha256 == hashlib.sha256(next(crashed.iterdir()).read_bytes()).hexdigest()
    np.testing.assert_array_equal(report.episodes[0].q_rad, whole.episodes[0].q_rad)
    bare = read_bag(next(crashed.iterdir()), ARM)  # the storage file itself
    assert bare.episodes and not warned(bare, "metadata")


def test_37_a_split_bag_without_metadata_yaml_reads_all_its_files(tmp_path: Path) -> None:
    js, cmds = recording(8.0)
    half = ns(4.0)
    first = write_bag(tmp_path / "a", joint_states=[x for x in js if x.stamp_ns < half], commands=cmds[:95])
    second = write_bag(tmp_path / "b", joint_states=[x for x in js if x.stamp_ns >= half], commands=cmds[95:])
    bag = tmp_path / "split"
    bag.mkdir()
    shutil.move(next(first.glob("*.mcap")), bag / "split_0.mcap")
    shutil.move(next(second.glob("*.mcap")), bag / "split_1.mcap")
    report = read_bag(bag, ARM)
    assert warned(report, "reading split_0.mcap, split_1.mcap directly") and len(report.episodes) == 1
    assert report.episodes[0].n_steps == len(cmds) + 1
    assert_tracks_truth(report)


def test_37_a_folder_without_storage_files_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "bag").mkdir()
    (tmp_path / "bag" / "notes.txt").write_text("no bag here")
    assert "no .mcap or .db3" in read_bag(tmp_path / "bag", ARM).skipped


# -- 38: truncated MCAP, corrupt SQLite ------------------------------------------------------------------------------


def _bag_with_images(path: Path, duration_s: float = 8.0) -> Path:
    """A bag whose 60 KB camera frames at 20 Hz spread it over many 1 MiB MCAP chunks."""
    js, cmds = recording(duration_s)

    def frames() -> Iterator[Extra]:
        for t in ns(np.arange(0.0, duration_s, 0.05)):
            yield Extra("/camera/image_raw", "sensor_msgs/msg/Image", int(t), image(int(t), 60_000))

    return write_bag(path, joint_states=js, commands=cmds, extra=frames())


@pytest.mark.parametrize("metadata", [True, False])
def test_38_a_truncated_mcap_is_salvaged_from_its_complete_chunks(tmp_path: Path, metadata: bool) -> None:
    bag = _bag_with_images(tmp_path / "bag")
    if not metadata:
        (bag / "metadata.yaml").unlink()
    data = next(bag.glob("*.mcap"))
    data.write_bytes(data.read_bytes()[: int(data.stat().st_size * 0.6)])  # the recorder was killed
    report = read_bag(bag, ARM)
    assert warned(report, "truncated") and warned(report, "salvaged")
    assert report.episodes and 2.0 < rows_s(report, len(report.episodes) - 1)[-1] < 6.0  # what the chunks held
    assert_tracks_truth(report)


def test_38_a_truncated_mcap_without_a_complete_chunk_is_skipped(tmp_path: Path) -> None:
    js, cmds = recording()
    bag = write_bag(tmp_path / "bag", joint_states=js, commands=cmds)  # one chunk
    data = next(bag.glob("*.mcap"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    report = read_bag(bag, ARM)
    assert not report.episodes and "truncated" in report.skipped and "salvaged 0 messages" in report.skipped


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_38_a_corrupt_sqlite_bag_is_skipped_and_the_run_goes_on(tmp_path: Path, damage: str) -> None:
    js, cmds = recording()
    bad = write_bag(tmp_path / "bad", joint_states=js, commands=cmds, storage="sqlite3")
    db = next(bad.glob("*.db3"))
    raw = db.read_bytes()
    db.write_bytes(raw[: len(raw) // 2] if damage == "truncated" else raw[:100] + b"\xff" * 12288 + raw[12388:])
    good = write_bag(tmp_path / "good", joint_states=js, commands=cmds, storage="sqlite3")
    reports = read_bags([bad, good], ARM)
    assert "corrupt SQLite" in reports[0].skipped and not reports[0].episodes
    assert reports[1].episodes and not reports[1].skipped


@pytest.mark.parametrize(("compression", "chunked"), [("zstd", True), ("lz4", True), ("none", False)])
def test_38_an_mcap_of_another_writer_killed_mid_write_is_salvaged(
    tmp_path: Path, compression: str, chunked: bool
) -> None:
    js, cmds = recording(8.0)
    whole = write_mcap(
        tmp_path / "whole.mcap", joint_states=js, commands=cmds, compression=compression, chunked=chunked
    )
    reference = read_bag(write_bag(tmp_path / "ref", joint_states=js, commands=cmds), ARM)
    report = read_bag(whole, ARM)  # `ros2 bag record`-style layout, read through its index
    assert report.warnings == [] and len(report.episodes) == 1
    np.testing.assert_array_equal(report.episodes[0].q_rad, reference.episodes[0].q_rad)
    bag = tmp_path / "killed"
    bag.mkdir()
    (bag / "killed_0.mcap").write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    report = read_bag(bag, ARM)
    assert warned(report, "no metadata.yaml") and warned(report, "salvaged")
    assert 3.0 < rows_s(report, 0)[-1] < 6.0
    assert_tracks_truth(report)


# -- 39: empty, topic missing, one message -------------------------------------------------------------------------


def test_39_an_empty_bag_is_skipped_with_its_reason(tmp_path: Path, storage: str) -> None:
    assert "empty" in read_bag(write_bag(tmp_path / "bag", storage=storage), ARM).skipped


def test_39_a_missing_topic_skips_the_bag_naming_it(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    no_cmd = read_bag(write_bag(tmp_path / "a", joint_states=js, storage=storage), ARM)
    assert "no joint_trajectory_controller/joint_trajectory or forward_position_controller/commands" in no_cmd.skipped
    no_js = read_bag(write_bag(tmp_path / "b", commands=cmds, storage=storage), ARM)
    assert "no joint_states topic" in no_js.skipped and "/joint_trajectory_controller/joint_trajectory" in no_js.skipped


def test_39_a_single_message_skips_the_bag(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    report = read_bag(write_bag(tmp_path / "bag", joint_states=js[:1], commands=cmds, storage=storage), ARM)
    assert "only 1 joint_states message" in report.skipped
    short = read_bag(write_bag(tmp_path / "short", joint_states=js[:50], commands=cmds, storage=storage), ARM)
    assert "no usable episode" in short.skipped and "min_episode_s" in short.skipped


# -- 40: custom types, no definitions -------------------------------------------------------------------------------


def test_40_unknown_topics_and_custom_types_are_ignored(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    store = typestore_with({"my_msgs/msg/Widget": "int32 count\nstring label"})
    widget = store.types["my_msgs/msg/Widget"](count=3, label="x")
    extra = [
        Extra("/widget", "my_msgs/msg/Widget", T0_NS + NS, widget),
        Extra("/opaque", "vendor_msgs/msg/Blob", T0_NS + NS, b"\x00\x01\x00\x00not cdr at all"),
        Extra("/joint_states_raw", "sensor_msgs/msg/JointState", T0_NS, joint_state(T0_NS, ARM, np.zeros(7))),
    ]
    path = write_bag(
        tmp_path / "bag",
        joint_states=js,
        commands=cmds,
        extra=extra,
        storage=storage,
        typestore=store,
        broken_definitions={"vendor_msgs/msg/Blob": "this is not !! a definition"},
    )
    report = read_bag(path, ARM)
    assert len(report.episodes) == 1 and report.warnings == []
    assert_tracks_truth(report)


def test_40_the_definitions_stored_in_the_bag_decode_it(tmp_path: Path, storage: str) -> None:
    # a JointState without `effort` (another distro's or a vendor's definition): the default typestore cannot read it
    legacy = "std_msgs/Header header\nstring[] name\nfloat64[] position\nfloat64[] velocity"
    store = typestore_with({"sensor_msgs/msg/JointState": legacy})
    js, cmds = recording()
    header, time, old_js = (store.types[t] for t in ("std_msgs/msg/Header", "builtin_interfaces/msg/Time", JS))
    msgs = [
        Extra("/joint_states", JS, x.stamp_ns, old_js(
            header=header(stamp=time(sec=x.stamp_ns // NS, nanosec=x.stamp_ns % NS), frame_id=""),
            name=list(ARM), position=np.array(x.q), velocity=np.array(x.qd)))
        for x in js
    ]  # fmt: skip
    path = write_bag(tmp_path / "bag", commands=cmds, extra=msgs, storage=storage, typestore=store)
    report = read_bag(path, ARM)
    assert report.warnings == []
    assert_tracks_truth(report, atol_rad=1e-9, atol_rad_s=1e-9)
    with pytest.raises(Exception, match="Could not deserialize"):  # what the default typestore makes of it
        TYPESTORE.deserialize_cdr(store.serialize_cdr(msgs[0].msg, JS), JS)


def test_40_a_bag_without_definitions_uses_the_default_typestore(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    report = read_bag(
        write_bag(tmp_path / "bag", joint_states=js, commands=cmds, storage=storage, definitions=False), ARM
    )
    assert warned(report, "no usable sensor_msgs/msg/JointState definition stored") and warned(report, "default")
    assert_tracks_truth(report, atol_rad=1e-9)


def test_40_a_stored_definition_that_does_not_decode_falls_back_to_the_default(tmp_path: Path) -> None:
    js, cmds = recording()
    broken = {"sensor_msgs/msg/JointState": "my_msgs/Unknown thing"}
    report = read_bag(write_bag(tmp_path / "bag", joint_states=js, commands=cmds, broken_definitions=broken), ARM)
    assert warned(report, "the stored sensor_msgs/msg/JointState definition does not decode")
    assert_tracks_truth(report, atol_rad=1e-9)


def test_40_a_topic_with_the_wrong_type_is_ignored_with_a_warning(tmp_path: Path) -> None:
    js, cmds = recording()
    odd = Extra("/arm/forward_position_controller/commands", "std_msgs/msg/String", T0_NS, b"\x00\x01\x00\x00")
    report = read_bag(write_bag(tmp_path / "bag", joint_states=js, commands=cmds, extra=[odd]), ARM)
    assert warned(report, "has type std_msgs/msg/String, not std_msgs/msg/Float64MultiArray: ignored")
    assert report.episodes


# -- 41: joint order, extra and missing joints --------------------------------------------------------------------


def test_41_joint_order_extra_joints_and_partial_messages_are_reindexed_by_name(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    order = [6, 2, 0, 5, 1, 4, 3]
    mixed = []
    for i, x in enumerate(js):
        q, qd = np.asarray(x.q), np.asarray(x.qd)
        if i % 2:  # one broadcaster: the whole arm in another order, plus the fingers
            names = [ARM[j] for j in order] + list(FINGERS)
            mixed.append(x._replace(names=names, q=[*q[order], 0.02, 0.02], qd=[*qd[order], 0.0, 0.0]))
        else:  # two others: joints 1-4 and joints 5-7, each message partial
            mixed.append(x._replace(names=ARM[:4], q=q[:4], qd=qd[:4]))
            mixed.append(x._replace(names=ARM[4:], q=q[4:], qd=qd[4:], log_ns=x.stamp_ns + 1))
    rev = [c._replace(names=ARM[::-1], q_cmd=np.asarray(c.q_cmd)[::-1]) for c in cmds]
    report = read_bag(write_bag(tmp_path / "bag", joint_states=mixed, commands=rev, storage=storage), ARM)
    assert warned(report, "re-indexed by name") and warned(report, "ignored joints not in the arm")
    assert warned(report, "carry only some arm joints")
    assert_tracks_truth(report, atol_rad=1e-9, atol_rad_s=1e-9)


def test_41_a_missing_required_joint_rejects_the_bag(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    six = [x._replace(names=ARM[:6], q=x.q[:6], qd=x.qd[:6]) for x in js]
    report = read_bag(write_bag(tmp_path / "bag", joint_states=six, commands=cmds, storage=storage), ARM)
    assert "never carries the arm joints ['panda_joint7']" in report.skipped and "rejected" in report.skipped
    part = [c._replace(names=ARM[1:], q_cmd=np.asarray(c.q_cmd)[1:]) for c in cmds]
    report = read_bag(write_bag(tmp_path / "cmd", joint_states=js, commands=part, storage=storage), ARM)
    assert "never carries the arm joints ['panda_joint1']" in report.skipped


def test_41_names_not_in_the_model_reject_the_bag(tmp_path: Path) -> None:
    js, cmds = recording()
    fr3 = [x._replace(names=[n.replace("panda", "fr3") for n in ARM]) for x in js]
    report = read_bag(write_bag(tmp_path / "bag", joint_states=fr3, commands=cmds), ARM)
    assert "carries the arm joints" in report.skipped and "fr3_joint1" in report.skipped


def test_41_forward_commands_follow_the_arm_order_or_the_callers(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    path = write_bag(tmp_path / "a", joint_states=js, commands=cmds, command_kind=FORWARD_POSITION, storage=storage)
    report = read_bag(path, ARM)
    assert report.episodes[0].command_topic == "forward_position_controller/commands"
    assert warned(report, "values taken in the joint order")
    assert_tracks_truth(report)
    rev = [c._replace(q_cmd=np.asarray(c.q_cmd)[::-1]) for c in cmds]
    path = write_bag(tmp_path / "b", joint_states=js, commands=rev, command_kind=FORWARD_POSITION, storage=storage)
    assert_tracks_truth(read_bag(path, ARM, settings=BagReadSettings(forward_joint_names=ARM[::-1])))
    short = [c._replace(q_cmd=np.asarray(c.q_cmd)[:6]) for c in cmds]
    path = write_bag(tmp_path / "c", joint_states=js, commands=short, command_kind=FORWARD_POSITION, storage=storage)
    assert "no command message has as many values as joint names" in read_bag(path, ARM).skipped


def test_namespaced_topics_match_by_suffix_and_two_arms_need_a_namespace(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    one = read_bag(write_bag(tmp_path / "one", joint_states=js, commands=cmds, namespace="arm1", storage=storage), ARM)
    assert_tracks_truth(one)
    two = tmp_path / "two"
    other = [Extra("/arm2/joint_states", "sensor_msgs/msg/JointState", x.stamp_ns, joint_state(x.stamp_ns, ARM, x.q))
             for x in js]  # fmt: skip
    write_bag(two, joint_states=js, commands=cmds, namespace="arm1", extra=other, storage=storage)
    assert "set BagReadSettings.namespace" in read_bag(two, ARM).skipped
    assert_tracks_truth(read_bag(two, ARM, settings=BagReadSettings(namespace="/arm1")))


def test_the_gripper_joint_states_are_ignored(tmp_path: Path) -> None:
    js, cmds = recording()
    fingers = [Extra("/gripper/joint_states", "sensor_msgs/msg/JointState", x.stamp_ns,
                     joint_state(x.stamp_ns, FINGERS, [0.02, 0.02])) for x in js]  # fmt: skip
    report = read_bag(write_bag(tmp_path / "bag", joint_states=js, commands=cmds, extra=fingers), ARM)
    assert report.warnings == []
    assert_tracks_truth(report)


# -- 42: NaN/inf, duplicates, non-monotonic stamps, stamp 0 ----------------------------------------------------------


def test_42_nan_inf_duplicates_and_zero_stamps_are_dropped_and_flagged(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    for i in (30, 31, 100, 200, 250):
        js[i] = js[i]._replace(q=np.where(np.arange(7) == i % 7, np.nan, js[i].q))
    js[150] = js[150]._replace(q=np.full(7, np.inf))
    js[300] = js[300]._replace(stamp_ns=0, log_ns=js[300].stamp_ns)
    js[320] = js[320]._replace(stamp_ns=0, log_ns=js[320].stamp_ns)
    dup = [x._replace(q=np.asarray(x.q) + 0.5, log_ns=x.stamp_ns + 10) for x in js[60:63]]  # same stamps, later
    report = read_bag(write_bag(tmp_path / "bag", joint_states=js + dup, commands=cmds, storage=storage), ARM)
    assert len(report.episodes) == 1 and SAMPLES_DROPPED in report.episodes[0].flags
    assert warned(report, "dropped 2 messages with header stamp 0") and warned(report, "dropped")
    assert_tracks_truth(report)  # the duplicates' different values were not used


def test_42_out_of_order_stamps_are_sorted(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    swapped = list(js)
    for i in range(10, 400, 20):  # received in swapped order: stamps go backwards
        swapped[i], swapped[i + 1] = (
            js[i + 1]._replace(log_ns=js[i].stamp_ns),
            js[i]._replace(log_ns=js[i + 1].stamp_ns),
        )
    report = read_bag(write_bag(tmp_path / "bag", joint_states=swapped, commands=cmds, storage=storage), ARM)
    assert REORDERED in report.episodes[0].flags and warned(report, "out of header-stamp order")
    assert_tracks_truth(report, atol_rad=1e-9, atol_rad_s=1e-9)


def test_42_a_stretch_with_too_many_bad_samples_is_excluded(tmp_path: Path) -> None:
    t = np.concatenate((np.arange(0.0, 4.0, 0.01), np.arange(4.5, 8.5, 0.01)))
    js = js_samples(t)
    rng = np.random.default_rng(0)
    for i in np.flatnonzero(t > 4.4):
        if rng.random() < 0.3:
            js[i] = js[i]._replace(q=np.full(7, np.nan))
    report = read_bag(
        write_bag(tmp_path / "bag", joint_states=js, commands=cmd_samples(np.arange(0.2, 8.3, DT_S))), ARM
    )
    assert len(report.episodes) == 1 and rows_s(report)[-1] < 4.0
    assert warned(report, "bad (> max_bad_fraction")


def test_42_stamps_all_zero_fall_back_to_receive_times(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    unstamped = [x._replace(stamp_ns=0, log_ns=x.stamp_ns) for x in js]
    report = read_bag(write_bag(tmp_path / "bag", joint_states=unstamped, commands=cmds, storage=storage), ARM)
    assert warned(report, "header stamps are 0: receive times used") and report.latency_s is None
    assert_tracks_truth(report, atol_rad=1e-9)


# -- 43: gaps, jitter, other rates -----------------------------------------------------------------------------------


def test_43_short_gaps_are_resampled_and_long_ones_split(tmp_path: Path, storage: str) -> None:
    js, cmds = recording(8.0)
    short = [x for i, x in enumerate(js) if not 200 <= i < 207]  # 80 ms without joint_states
    report = read_bag(write_bag(tmp_path / "a", joint_states=short, commands=cmds, storage=storage), ARM)
    assert len(report.episodes) == 1 and GAPS_RESAMPLED in report.episodes[0].flags
    assert_tracks_truth(report, atol_rad=5e-3, atol_rad_s=5e-2)
    long = [x for i, x in enumerate(js) if not 300 <= i < 350]  # 0.5 s
    report = read_bag(write_bag(tmp_path / "b", joint_states=long, commands=cmds, storage=storage), ARM)
    assert len(report.episodes) == 2 and warned(report, "split at 1 gap(s) longer than max_gap_s")
    assert rows_s(report, 0)[-1] <= 2.99 and rows_s(report, 1)[0] >= 3.5
    assert_tracks_truth(report)


def test_43_a_long_silence_of_the_commands_splits(tmp_path: Path) -> None:
    js, cmds = recording(8.0)
    quiet = [c for c in cmds if not 3.0 <= (c.stamp_ns - T0_NS) / NS < 3.5]
    report = read_bag(write_bag(tmp_path / "bag", joint_states=js, commands=quiet), ARM)
    assert len(report.episodes) == 2 and warned(report, "silence")
    assert_tracks_truth(report)


def test_43_jitter_does_not_move_commands_off_their_rows(tmp_path: Path, storage: str) -> None:
    rng = np.random.default_rng(1)
    js, cmds = recording()
    js = [x._replace(log_ns=x.stamp_ns + int(rng.integers(0, 3_000_000))) for x in js]  # receive jitter
    cmds = [c._replace(log_ns=c.stamp_ns + int(rng.integers(-15_000_000, 15_000_000))) for c in cmds]
    cmds[0] = cmds[0]._replace(log_ns=cmds[0].stamp_ns)
    report = read_bag(write_bag(tmp_path / "bag", joint_states=js, commands=cmds, storage=storage), ARM)
    e = report.episodes[0]
    np.testing.assert_array_equal(e.q_cmd_rad[:-1], [c.q_cmd for c in cmds])  # each on its own row
    assert abs(e.t0_ns - cmds[0].stamp_ns) < 3_000_000
    # ... and each row keeps its command's send time, which the replay applies it at
    sent_s = np.array([(c.log_ns - e.t0_ns) / NS for c in cmds]) - np.arange(len(cmds)) * e.dt_s
    assert e.cmd_offset_s is not None
    # (clocks in sync: the 0-3 ms joint_states latency is not taken off the commands, which arrive as they are logged)
    np.testing.assert_allclose(e.cmd_offset_s[: len(cmds)], sent_s, atol=1e-9)


def test_43_other_recording_rates_are_resampled_to_the_control_rate(tmp_path: Path, storage: str) -> None:
    js, cmds = recording(js_hz=30.0)
    report = read_bag(write_bag(tmp_path / "a", joint_states=js, commands=cmds, storage=storage), ARM)
    assert report.episodes[0].flags == ()
    assert_tracks_truth(report, atol_rad=2e-3, atol_rad_s=2e-2)
    fast = cmd_samples(np.arange(0.2, 4.0, 0.02))  # 50 Hz commands on a 25 Hz grid
    report = read_bag(write_bag(tmp_path / "b", joint_states=js, commands=fast, storage=storage), ARM)
    e = report.episodes[0]
    assert COMMAND_RATE in e.flags and warned(report, "commands arrive every 0.0200 s")
    np.testing.assert_allclose(e.q_cmd_rad[:-1], [c.q_cmd for c in fast[::2]], atol=1e-12)  # the one at each row


# -- 44: sim time, clock jumps, stamp-to-receive offset --------------------------------------------------------------


def test_44_the_header_to_receive_offset_is_estimated_and_maps_the_commands(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    late = [c._replace(log_ns=c.stamp_ns + 300_000_000) for c in cmds]  # the recorder sees everything 0.3 s late
    path = write_bag(tmp_path / "bag", joint_states=js, commands=late, storage=storage, latency_ns=300_000_000)
    report = read_bag(path, ARM)
    assert report.latency_s == pytest.approx(0.3)
    assert report.episodes[0].t0_ns == cmds[0].stamp_ns
    assert_tracks_truth(report, atol_rad=1e-9)


def test_44_trajectory_header_stamps_are_used_when_set(tmp_path: Path) -> None:
    js, cmds = recording()
    stamped = [c._replace(header_stamp_ns=c.stamp_ns, log_ns=c.stamp_ns + 17_000_000) for c in cmds]
    report = read_bag(write_bag(tmp_path / "bag", joint_states=js, commands=stamped), ARM)
    assert report.episodes[0].t0_ns == cmds[0].stamp_ns
    assert_tracks_truth(report, atol_rad=1e-9)


def test_44_sim_time_is_detected_and_flagged(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    sim = T0_NS - 5 * NS  # stamps start at 5 s of sim time; the recorder logs wall-clock time
    js = [x._replace(stamp_ns=x.stamp_ns - T0_NS + 5 * NS, log_ns=x.stamp_ns) for x in js]
    report = read_bag(write_bag(tmp_path / "bag", joint_states=js, commands=cmds, storage=storage), ARM)
    e = report.episodes[0]
    assert SIM_TIME in e.flags and warned(report, "sim time") and report.latency_s == pytest.approx(sim / NS)
    assert e.t0_ns == cmds[0].stamp_ns - sim
    np.testing.assert_array_equal(e.q_cmd_rad[:-1], [c.q_cmd for c in cmds])


def test_44_a_clock_jump_splits_the_recording(tmp_path: Path, storage: str) -> None:
    js, cmds = recording(8.0)
    jumped = [x._replace(stamp_ns=x.stamp_ns - 100 * NS, log_ns=x.stamp_ns) if x.stamp_ns >= ns(4.0) else x for x in js]
    report = read_bag(write_bag(tmp_path / "bag", joint_states=jumped, commands=cmds, storage=storage), ARM)
    assert warned(report, "clock jump: header stamps move -100.000 s") and len(report.episodes) == 2
    before, after = report.episodes
    assert before.t0_ns == cmds[0].stamp_ns and after.t0_ns < before.t0_ns  # the second runs on the jumped clock
    np.testing.assert_array_equal(before.q_cmd_rad[:-1], [c.q_cmd for c in cmds[: before.n_steps - 1]])


def test_44_a_drifting_offset_is_followed_and_flagged(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()

    def wall(stamp_ns: int) -> int:  # sim time runs at 0.8x real time; the recorder logs real time
        return T0_NS + (stamp_ns - T0_NS) * 5 // 4

    js = [x._replace(log_ns=wall(x.stamp_ns)) for x in js]
    cmds = [c._replace(log_ns=wall(c.stamp_ns)) for c in cmds]
    report = read_bag(write_bag(tmp_path / "bag", joint_states=js, commands=cmds, storage=storage), ARM)
    assert warned(report, "offset drifts by") and len(report.episodes) == 1
    assert CLOCK_DRIFT in report.episodes[0].flags and report.episodes[0].n_steps == len(cmds) + 1
    assert_tracks_truth(report)


# -- 45: units and sign ----------------------------------------------------------------------------------------------


def test_45_degrees_reject_the_bag_loudly(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    deg = [x._replace(q=np.rad2deg(x.q)) for x in js]
    report = read_bag(write_bag(tmp_path / "a", joint_states=deg, commands=cmds, storage=storage), ARM)
    assert "degrees, not radians" in report.skipped and "URDF limits" in report.skipped and not report.episodes
    deg_cmd = [c._replace(q_cmd=np.rad2deg(c.q_cmd)) for c in cmds]
    report = read_bag(write_bag(tmp_path / "b", joint_states=js, commands=deg_cmd, storage=storage), ARM)
    assert "commands lie outside the URDF limits" in report.skipped and "degrees" in report.skipped
    deg_qd = [x._replace(qd=np.rad2deg(x.qd)) for x in js]
    report = read_bag(write_bag(tmp_path / "c", joint_states=deg_qd, commands=cmds, storage=storage), ARM)
    assert "deg/s" in report.skipped


def test_45_a_flipped_sign_rejects_the_bag(tmp_path: Path) -> None:
    js, cmds = recording()
    flip = np.array([1, 1, 1, -1, 1, 1, 1])
    report = read_bag(
        write_bag(tmp_path / "bag", joint_states=[x._replace(q=flip * x.q) for x in js], commands=cmds), ARM
    )
    assert "panda_joint4" in report.skipped and "sign convention" in report.skipped


def test_45_a_few_out_of_limit_glitches_are_dropped(tmp_path: Path) -> None:
    js, cmds = recording()
    js[77] = js[77]._replace(q=np.asarray(js[77].q) + np.array([0, 0, 0, 0, 0, 0, 40.0]))
    report = read_bag(write_bag(tmp_path / "bag", joint_states=js, commands=cmds), ARM)
    assert warned(report, "dropped 1 panda_joint7 positions outside the URDF limits (glitches)")
    assert SAMPLES_DROPPED in report.episodes[0].flags
    assert_tracks_truth(report)


# -- 46: static, saturated, halted -----------------------------------------------------------------------------------


def test_46_a_static_robot_is_flagged(tmp_path: Path, storage: str) -> None:
    t = np.arange(0.0, 4.2, 0.01)
    js = [JointStateSample(int(s), ARM, MID_RAD, np.zeros(7)) for s in ns(t)]
    cmds = [CommandSample(int(s), ARM, MID_RAD) for s in ns(np.arange(0.2, 4.0, DT_S))]
    report = read_bag(write_bag(tmp_path / "bag", joint_states=js, commands=cmds, storage=storage), ARM)
    assert report.episodes[0].flags == (STATIC,)


def test_46_saturated_commands_are_flagged(tmp_path: Path) -> None:
    js, cmds = recording()
    top = 2.9671  # panda_joint1's upper limit
    pinned = [c._replace(q_cmd=np.concatenate(([top], np.asarray(c.q_cmd)[1:]))) for c in cmds]
    report = read_bag(write_bag(tmp_path / "bag", joint_states=js, commands=pinned), ARM)
    assert report.episodes[0].flags == (SATURATED + "panda_joint1",)


def test_46_an_e_stop_while_commands_move_is_excluded(tmp_path: Path, storage: str) -> None:
    js, cmds = recording(8.0)
    frozen = truth(np.array([3.0]))[0][0]
    stopped = [x._replace(q=frozen, qd=np.zeros(7)) if 3.0 <= (x.stamp_ns - T0_NS) / NS < 5.0 else x for x in js]
    report = read_bag(write_bag(tmp_path / "bag", joint_states=stopped, commands=cmds, storage=storage), ARM)
    assert warned(report, "frozen while the commands moved") and len(report.episodes) == 2
    first, second = report.episodes
    assert rows_s(report, 0)[-1] < 3.0 and rows_s(report, 1)[0] >= 5.0
    assert BEFORE_HALT in first.flags and AFTER_HALT in second.flags
    assert_tracks_truth(report)


def test_46_a_halt_reported_on_diagnostics_is_excluded(tmp_path: Path, storage: str) -> None:
    js, cmds = recording(8.0)
    statuses = [
        StatusSample(int(ns(1.0)), "policy_node: control", 0, "acting"),
        StatusSample(int(ns(3.0)), "policy_node: control", 2, "halted: ~/halt called"),
        StatusSample(int(ns(4.0)), "policy_node: inputs", 0, "fresh"),
        StatusSample(int(ns(5.0)), "policy_node: control", 0, "acting"),
    ]
    path = write_bag(tmp_path / "bag", joint_states=js, commands=cmds, statuses=statuses, storage=storage)
    report = read_bag(path, ARM)
    assert warned(report, "halted from log time") and len(report.episodes) == 2
    assert rows_s(report, 0)[-1] <= 3.0 + 1e-9 and rows_s(report, 1)[0] >= 5.0 - 1e-9
    assert BEFORE_HALT in report.episodes[0].flags and AFTER_HALT in report.episodes[1].flags
    assert_tracks_truth(report)


# -- 48: very large bags ----------------------------------------------------------------------------------------------


def test_48_large_image_bags_are_streamed_in_bounded_memory(tmp_path: Path, storage: str) -> None:
    js, cmds = recording()
    n_frames, frame_bytes = 120, 500_000

    def frames() -> Iterator[Extra]:
        for t in ns(np.linspace(0.0, 4.2, n_frames)):
            yield Extra("/camera/image_raw", "sensor_msgs/msg/Image", int(t), image(int(t), frame_bytes))

    path = write_bag(tmp_path / "bag", joint_states=js, commands=cmds, extra=frames(), storage=storage)
    bag_bytes = sum(p.stat().st_size for p in path.iterdir())
    assert bag_bytes > n_frames * frame_bytes
    tracemalloc.start()
    try:
        report = read_bag(path, ARM)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < bag_bytes / 8, f"peak {peak} B for a {bag_bytes} B bag"
    assert_tracks_truth(report)


def test_the_bag_factory_writes_what_a_reader_sees(tmp_path: Path) -> None:
    from rosbags.highlevel import AnyReader

    t_s = np.arange(0.0, 1.0, 0.01)
    q, qd = truth(t_s)
    js = joint_states_from(ns(t_s), q, qd)
    cmds = commands_from(ns(t_s[20::4]), command(t_s[20::4]))
    path = write_bag(tmp_path / "bag", joint_states=js, commands=cmds, latency_ns=5)
    with AnyReader([path]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        first = next(reader.messages())
        msg = reader.deserialize(first[2], first[0].msgtype)
    assert counts == {"/joint_states": len(js), f"/{JTC}": len(cmds)}
    assert first[1] == js[0].stamp_ns + 5 and list(msg.name) == list(ARM)
    assert TYPESTORE.types["sensor_msgs/msg/JointState"].__msgtype__ == first[0].msgtype


# -- the camera's latency (the image delay calibration writes) ---------------------------------------------------------


def _camera(topic: str, latency_s: float, every_s: float = 0.1, duration_s: float = 6.0) -> Iterator[Extra]:
    kind = "sensor_msgs/msg/CameraInfo" if topic.endswith("camera_info") else "sensor_msgs/msg/Image"
    for t in ns(np.arange(0.0, duration_s, every_s)):
        msg = camera_info(int(t)) if kind.endswith("CameraInfo") else image(int(t), 1000)
        yield Extra(topic, kind, int(t + latency_s * 1e9), msg)


def test_the_camera_latency_is_read_from_camera_info_else_the_images(tmp_path: Path) -> None:
    js, cmds = recording()
    both = heapq.merge(_camera("/camera/camera_info", 0.06), _camera("/camera/image_raw", 0.5, every_s=0.5),
                       key=lambda x: x.log_ns)  # fmt: skip
    report = read_bag(write_bag(tmp_path / "both", joint_states=js, commands=cmds, extra=both), ARM)
    assert report.camera_latency_s == pytest.approx(0.06)  # camera_info's: the images are not decoded
    images = write_bag(tmp_path / "images", joint_states=js, commands=cmds, extra=_camera("/camera/image_raw", 0.09))
    assert read_bag(images, ARM).camera_latency_s == pytest.approx(0.09)
    none = read_bag(write_bag(tmp_path / "none", joint_states=js, commands=cmds), ARM)
    assert none.camera_latency_s is None and none.episodes


def test_image_headers_are_read_without_decoding_the_pixels() -> None:
    from calibration.bag_storage import header_stamp

    for endian in ("little", "big"):
        store = TYPESTORE
        raw = store.serialize_cdr(image(1_700_000_000_123_456_789, 1000), "sensor_msgs/msg/Image",
                                  little_endian=endian == "little")  # fmt: skip
        stamp = header_stamp(raw).header.stamp
        assert (stamp.sec, stamp.nanosec) == (1_700_000_000, 123_456_789)
    with pytest.raises(ValueError):
        header_stamp(b"\x00\x07\x00\x00" + b"\x00" * 8)  # no CDR encapsulation
