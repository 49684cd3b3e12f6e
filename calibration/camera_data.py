"""Calibration views from disk: a folder of images with joints.csv, or a rosbag2 bag (camera/image_raw paired with the
joint_states nearest each image's stamp, only while the arm stands still), read with calibration.bag_storage."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from calibration.bag_storage import (
    CAMERA_IMAGE,
    JOINT_STATES,
    TOPIC_TYPES,
    BagStorage,
    TopicBuffer,
    natural_key,
    storage_files,
    topic_role,
)
from calibration.camera import CameraCalibrationError, Dropped, View

#: The joint file of an image folder: a header `file,<joint>,...` naming the arm's joints, one row per image.
JOINTS_CSV = "joints.csv"
FILE_COLUMNS = ("file", "image")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
#: A bag's image is paired with the joint_states stamped nearest to it, at most this far (s) away: at the 0.02 rad/s
#: an arm counts as still, 20 ms move a joint by 0.4 mrad (0.4 mm at a 1 m lever).
MAX_PAIR_S = 0.02
#: Fastest joint speed (rad/s) at which the arm counts as still: from joint_states velocities, and from the position
#: difference across +-STILL_WINDOW_S (encoder noise of 1e-4 rad gives 1e-3 rad/s there).
STILL_RAD_S = 0.02
STILL_WINDOW_S = 0.05
#: Two still images whose joints differ by less than this (rad, every joint) show one pose: the first is kept.
SAME_POSE_RAD = 1e-3
#: Image encodings read from bags -> OpenCV conversion to grey (None: already grey), channels.
ENCODINGS: dict[str, tuple[str | None, int]] = {
    "mono8": (None, 1),
    "rgb8": ("COLOR_RGB2GRAY", 3),
    "bgr8": ("COLOR_BGR2GRAY", 3),
    "rgba8": ("COLOR_RGBA2GRAY", 4),
    "bgra8": ("COLOR_BGRA2GRAY", 4),
}


@dataclass(frozen=True)
class ViewSet:
    """The views read from one source, what was left out and why, and notes on how it was read."""

    source: str
    kind: str
    """folder | bag"""
    views: tuple[View, ...]
    dropped: tuple[Dropped, ...] = ()
    notes: tuple[str, ...] = ()
    images_seen: int = 0


def read_views(
    source: str | Path,
    joint_names: Sequence[str],
    namespace: str | None = None,
    max_pair_s: float = MAX_PAIR_S,
    progress: Callable[[str], None] | None = None,
) -> ViewSet:
    """Views from a folder of images with joints.csv or from a rosbag2 bag (folder or .mcap/.db3 file)."""
    path = Path(source)
    if not path.exists():
        raise CameraCalibrationError(f"{path} does not exist: give a folder of images with {JOINTS_CSV} or a bag")
    if path.is_dir() and (path / JOINTS_CSV).is_file():
        return read_folder(path, joint_names)
    if storage_files(path) or (path.is_dir() and (path / "metadata.yaml").is_file()):
        return read_bag(path, joint_names, namespace, max_pair_s, progress=progress)
    if path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
        raise CameraCalibrationError(
            f"{path} has images but no {JOINTS_CSV}: one row per image, header 'file,{','.join(joint_names)}' (rad)"
        )
    raise CameraCalibrationError(f"{path} is neither a folder of images with {JOINTS_CSV} nor a rosbag2 bag")


# -- a folder of images ---------------------------------------------------------------------------------------------


def read_folder(path: Path, joint_names: Sequence[str]) -> ViewSet:
    """Every image in `path` (png, jpg, bmp) with its row of joints.csv. Refuses, naming the file and row: a row
    that is missing, repeated, names no image or holds a joint that is not a finite number; an unreadable image."""
    rows = _read_joints_csv(path / JOINTS_CSV, joint_names)
    images = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                    key=lambda p: natural_key(p.name))  # fmt: skip
    names = {p.name for p in images}
    unlisted = [p.name for p in images if p.name not in rows]
    if unlisted:
        raise CameraCalibrationError(
            f"{path / JOINTS_CSV} has no row for {', '.join(unlisted[:10])}"
            + (f" and {len(unlisted) - 10} more images" if len(unlisted) > 10 else "")
            + ": every image needs the joint positions it was taken at (or remove the image)"
        )
    for name, (line, _) in rows.items():
        if name not in names:
            raise CameraCalibrationError(
                f"{path / JOINTS_CSV} line {line} names {name}, which is not an image in {path}"
            )
    views = [View(p.name, _read_gray(p), rows[p.name][1]) for p in images]
    return ViewSet(str(path), "folder", tuple(views), images_seen=len(images))


def _read_joints_csv(path: Path, joint_names: Sequence[str]) -> dict[str, tuple[int, np.ndarray]]:
    """File name -> (line number, joints (n,) rad in `joint_names` order)."""
    try:
        with path.open(newline="") as f:
            table = [row for row in csv.reader(f)]
    except (OSError, UnicodeDecodeError) as e:
        raise CameraCalibrationError(f"cannot read {path}: {e}") from None
    lines = [(i + 1, [c.strip() for c in row]) for i, row in enumerate(table) if row and any(c.strip() for c in row)]
    if not lines:
        raise CameraCalibrationError(f"{path} is empty: header 'file,{','.join(joint_names)}', then one row per image")
    _, header = lines[0]
    if header[0].lower() not in FILE_COLUMNS:
        raise CameraCalibrationError(f"{path}: the first column must be 'file' (the image's name), got {header[0]!r}; "
                                     f"header: file,{','.join(joint_names)}")  # fmt: skip
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise CameraCalibrationError(f"{path}: the header names {dupes} twice")
    missing = [n for n in joint_names if n not in header]
    if missing:
        raise CameraCalibrationError(f"{path}: the header lacks the arm joints {missing} (it has {header[1:]}): "
                                     "columns are looked up by joint name")  # fmt: skip
    cols = [header.index(n) for n in joint_names]
    out: dict[str, tuple[int, np.ndarray]] = {}
    for line, row in lines[1:]:
        name = row[0]
        if len(row) != len(header):
            raise CameraCalibrationError(
                f"{path} line {line} ({name}): {len(row)} columns, the header has {len(header)}"
            )
        if name in out:
            raise CameraCalibrationError(f"{path} line {line}: {name} already has a row (line {out[name][0]})")
        q = np.empty(len(cols))
        for j, (c, joint) in enumerate(zip(cols, joint_names)):
            try:
                q[j] = float(row[c])
            except ValueError:
                raise CameraCalibrationError(
                    f"{path} line {line} ({name}): {joint} is {row[c]!r}, not a number (rad)"
                ) from None
            if not math.isfinite(q[j]):
                raise CameraCalibrationError(f"{path} line {line} ({name}): {joint} is {row[c]}: every joint must be "
                                             "a finite angle in rad")  # fmt: skip
        out[name] = (line, q)
    return out


def _read_gray(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise CameraCalibrationError(
            f"{path}: not a readable image (corrupt, or not a {'/'.join(IMAGE_SUFFIXES)} file)"
        )
    if image.dtype != np.uint8:
        raise CameraCalibrationError(f"{path}: {image.dtype} pixels; 8-bit grey or colour images are needed")
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    code = {3: cv2.COLOR_BGR2GRAY, 4: cv2.COLOR_BGRA2GRAY}.get(image.shape[2])
    if code is None:
        raise CameraCalibrationError(f"{path}: {image.shape[2]} channels; grey, BGR or BGRA images are needed")
    return cv2.cvtColor(image, code)


# -- a rosbag2 bag --------------------------------------------------------------------------------------------------


def _stamp_ns(msg: Any) -> int:
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def read_bag(
    path: Path,
    joint_names: Sequence[str],
    namespace: str | None = None,
    max_pair_s: float = MAX_PAIR_S,
    still_rad_s: float = STILL_RAD_S,
    progress: Callable[[str], None] | None = None,
) -> ViewSet:
    """Views from a bag recorded by `sim2real record` (or `ros2 bag record`): each camera/image_raw image with the
    joint_states stamped nearest it. Dropped, with the reason: images more than `max_pair_s` from any joint_states,
    taken while the arm moved faster than `still_rad_s`, with joints missing or not finite in that message, in an
    encoding other than ENCODINGS, or showing a pose an earlier image already shows. Two passes: stamps and joints
    first, then only the chosen images are decoded."""
    say = progress or (lambda _: None)
    storage = BagStorage(path)
    decided: dict[tuple[str, str], bool] = {}

    def select(topic: str, msgtype: str) -> bool:
        key = (topic, msgtype)
        if key not in decided:
            role = topic_role(topic, namespace)
            decided[key] = role in (JOINT_STATES, CAMERA_IMAGE) and TOPIC_TYPES[role] == msgtype
        return decided[key]

    say(f"reading joint_states and image stamps from {path}")
    buffers: dict[str, TopicBuffer] = {}
    images: list[tuple[int, int, str]] = []  # (stamp ns, log ns, topic)
    for item in storage.messages(select):
        if topic_role(item.topic, namespace) == CAMERA_IMAGE:
            images.append((_stamp_ns(item.msg), item.log_time_ns, item.topic))
            continue
        buf = buffers.setdefault(item.topic, TopicBuffer(item.topic, JOINT_STATES, joint_names))
        msg = item.msg
        try:
            buf.add(item.log_time_ns, _stamp_ns(msg), msg.name, msg.position, msg.velocity)
        except (AttributeError, TypeError, ValueError):
            buf.malformed += 1
    _check_topics(path, storage, namespace, images, buffers)
    image_topic = images[0][2]
    js = buffers[next(iter(buffers))].samples()
    t_js = np.where(js.stamp_ns > 0, js.stamp_ns, js.log_ns).astype(np.int64)
    order = np.argsort(t_js, kind="stable")
    t_js, q, qd, present = t_js[order], js.q[order], js.qd[order], js.present[order]
    notes = list(storage.notes)
    if np.any(js.stamp_ns <= 0):
        notes.append(
            f"{js.topic}: {int(np.sum(js.stamp_ns <= 0))} messages without a header stamp: paired by receive time"
        )

    dropped: list[Dropped] = []
    chosen: dict[int, tuple[str, np.ndarray]] = {}
    last_q: np.ndarray | None = None
    last_name = ""
    for stamp, log_ns, topic in sorted(images):
        t = stamp if stamp > 0 else log_ns
        name = f"{topic} @ {t / 1e9:.6f} s"
        reason, joints = _pair(t, t_js, q, qd, present, joint_names, max_pair_s, still_rad_s)
        if reason:
            dropped.append(Dropped(name, reason))
            continue
        assert joints is not None
        if last_q is not None and float(np.max(np.abs(joints - last_q))) < SAME_POSE_RAD:
            dropped.append(Dropped(name, f"the same pose as {last_name} (one view per pose)"))
            continue
        if t in chosen:
            dropped.append(Dropped(name, "a second image with the same stamp"))
            continue
        chosen[t] = (name, joints)
        last_q, last_name = joints, name

    say(f"decoding {len(chosen)} images from {path}")
    views: dict[int, View] = {}
    image_store = BagStorage(path, whole_images=True)
    for item in image_store.messages(
        lambda topic, msgtype: topic == image_topic and msgtype == TOPIC_TYPES[CAMERA_IMAGE]
    ):
        stamp = _stamp_ns(item.msg)
        t = stamp if stamp > 0 else item.log_time_ns
        if t not in chosen or t in views:
            continue
        name, joints = chosen[t]
        try:
            views[t] = View(name, image_to_gray(item.msg), joints)
        except CameraCalibrationError as e:
            dropped.append(Dropped(name, str(e)))
    for t, (name, _) in chosen.items():
        if t not in views and not any(d.name == name for d in dropped):
            dropped.append(Dropped(name, "could not be read back from the bag"))
    return ViewSet(str(path), "bag", tuple(views[t] for t in sorted(views)), tuple(dropped), tuple(notes), len(images))


def _check_topics(
    path: Path, storage: BagStorage, namespace: str | None, images: list[tuple[int, int, str]],
    buffers: dict[str, TopicBuffer],
) -> None:  # fmt: skip
    """Refuse a bag that lacks the camera images or joint_states (naming the topics it has), or has several of one."""
    if storage.unreadable and not storage.counts:
        raise CameraCalibrationError(f"{path}: unreadable: {'; '.join(storage.unreadable)}")
    seen = ", ".join(f"{t} ({m})" for t, m in sorted(storage.topics.items())) or "none"
    where = f" under namespace {namespace!r}" if namespace else ""
    for role, have in ((CAMERA_IMAGE, {t for _, _, t in images}), (JOINT_STATES, set(buffers))):
        if not have:
            raise CameraCalibrationError(f"{path} has no {role} topic of type {TOPIC_TYPES[role]}{where} with messages "
                                         f"(record it with sim2real record); its topics: {seen}")  # fmt: skip
        if len(have) > 1:
            raise CameraCalibrationError(f"{path} has {role} on {sorted(have)}: choose one with --namespace")


def _pair(
    t_ns: int,
    t_js: np.ndarray,
    q: np.ndarray,
    qd: np.ndarray,
    present: np.ndarray,
    joint_names: Sequence[str],
    max_pair_s: float,
    still_rad_s: float,
) -> tuple[str, np.ndarray | None]:
    """The arm joints at an image stamped `t_ns` from the nearest joint_states, or the reason there are none."""
    i = int(np.searchsorted(t_js, t_ns))
    near = [j for j in (i - 1, i) if 0 <= j < len(t_js)]
    j = min(near, key=lambda k: abs(int(t_js[k]) - t_ns))
    dt = abs(int(t_js[j]) - t_ns) / 1e9
    if dt > max_pair_s:
        return f"no joint_states within {1e3 * max_pair_s:g} ms of its stamp (nearest {1e3 * dt:.1f} ms)", None
    stamp = f"joint_states at {t_js[j] / 1e9:.6f} s"
    if not present[j].all():
        return f"{stamp} lacks {[n for n, p in zip(joint_names, present[j]) if not p]}", None
    if not np.all(np.isfinite(q[j])):
        bad = [f"{n} = {v}" for n, v in zip(joint_names, q[j]) if not math.isfinite(v)]
        return f"{stamp} has non-finite positions: {', '.join(bad)}", None
    speeds = []
    if np.all(np.isfinite(qd[j])):
        speeds.append(np.abs(qd[j]))
    window = int(STILL_WINDOW_S * 1e9)
    lo, hi = int(np.searchsorted(t_js, t_ns - window)), int(np.searchsorted(t_js, t_ns + window)) - 1
    if 0 <= lo < hi < len(t_js) and t_js[hi] > t_js[lo] and np.all(np.isfinite(q[[lo, hi]])):
        speeds.append(np.abs(q[hi] - q[lo]) / ((t_js[hi] - t_js[lo]) / 1e9))
    if not speeds:
        return "cannot tell whether the arm stood still (no velocities, no joint_states around it)", None
    speed = np.max(speeds, axis=0)
    if float(speed.max()) > still_rad_s:
        k = int(np.argmax(speed))
        return f"the arm was moving ({speed[k]:.3f} rad/s at {joint_names[k]}, {still_rad_s:g} allowed)", None
    return "", q[j].copy()


def image_to_gray(msg: Any) -> np.ndarray:
    """A sensor_msgs/Image (mono8, rgb8, bgr8, rgba8, bgra8; rows may be padded) -> (H, W) uint8."""
    import cv2

    encoding = str(msg.encoding)
    if encoding not in ENCODINGS:
        raise CameraCalibrationError(f"image encoding {encoding!r} is not read; use one of {sorted(ENCODINGS)}")
    conversion, channels = ENCODINGS[encoding]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.asarray(msg.data, np.uint8).reshape(-1)
    if h <= 0 or w <= 0 or step < w * channels or data.size != h * step:
        raise CameraCalibrationError(f"image {w}x{h} with step {step} does not match its {data.size} bytes")
    rows = data.reshape(h, step)[:, : w * channels]
    if conversion is None:
        return np.ascontiguousarray(rows)
    return cv2.cvtColor(np.ascontiguousarray(rows.reshape(h, w, channels)), getattr(cv2, conversion))
