"""Bundle manifests: every real export validates, and each kind of wrong field is refused by its dotted path."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from policies.bundle import BundleError, load_bundle
from policies.manifest import JOINT_TYPES, validate_manifest
from sim2real.export_run import export_run
from tests.quick_runs import SMALL, quick_run

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real bundle: 64 PPO steps on Reach in joint control (PPO's defaults normalise the observations)."""
    tmp = tmp_path_factory.mktemp("manifest")
    return export_run(quick_run(tmp / "run", task="reach", agent="ppo", control="joint", steps=64), tmp / "bundle")


@pytest.fixture
def manifest(exported: Path) -> Manifest:
    """A fresh copy of the real export's manifest, for a test to break."""
    return dict(json.loads((exported / "manifest.json").read_text()))


def _input(m: Manifest, name: str) -> tuple[int, dict[str, Any]]:
    """(index, spec) of the observation input called `name`."""
    return next((i, s) for i, s in enumerate(m["observation"]["inputs"]) if s["name"] == name)


def _obs(m: Manifest) -> int:
    return _input(m, "observation")[0]


def _camera(m: Manifest) -> None:
    m["camera"] = {"name": "scene", "width": 0, "height": 48, "k": [[50.0, 0.0, 32.0], [0.0, 50.0, 24.0], [0, 0, 1]]}


#: (id, change to a real manifest, the message it must raise; `{obs}` is the observation input's index).
CASES: list[tuple[str, Callable[[Manifest], Any], str]] = [
    (
        "missing distance threshold",
        lambda m: m["goal"].pop("distance_threshold_m"),
        "goal.distance_threshold_m is missing",
    ),
    (
        "NaN normalization mean",
        lambda m: m["observation"]["inputs"][_obs(m)]["normalization"]["mean"].__setitem__(2, float("nan")),
        "observation.inputs[{obs}].normalization.mean[2] is NaN: must be finite",
    ),
    (
        "negative normalization var",
        lambda m: m["observation"]["inputs"][_obs(m)]["normalization"]["var"].__setitem__(3, -1.0),
        "observation.inputs[{obs}].normalization.var[3] is -1.0: must be finite and >= 0",
    ),
    (
        "wrong-length normalization var",
        lambda m: m["observation"]["inputs"][_obs(m)]["normalization"]["var"].pop(),
        "observation.inputs[{obs}].normalization.var has 20 values: the input has 21",
    ),
    ("zero control rate", lambda m: m.update(control_rate_hz=0), "control_rate_hz is 0: must be finite and > 0"),
    (
        "joint limits low >= high",
        lambda m: m["joint_limits_rad"].__setitem__(3, [1.0, 1.0]),
        "joint_limits_rad[3] is [1.0, 1.0]: low must be < high",
    ),
    (
        "a joint limit pair short",
        lambda m: m["joint_limits_rad"].pop(),
        "joint_limits_rad has 6 pairs: one per joint name (7)",
    ),
    ("missing ee_chain", lambda m: m["robot"].pop("ee_chain"), "robot.ee_chain is missing"),
    ("camera width 0", _camera, "camera.width is 0: must be an integer >= 1"),
    (
        "a string for a number",
        lambda m: m["goal"].update(distance_threshold_m="0.05"),
        'goal.distance_threshold_m is "0.05": must be a number',
    ),
    ("unknown top-level key", lambda m: m.update(extra=1), "unknown field(s) ['extra']"),
    ("missing top-level key", lambda m: m.pop("joint_names"), "joint_names is missing"),
    (
        "infinite chain offset",
        lambda m: m["robot"]["ee_chain"]["joints"][0]["xyz_m"].__setitem__(2, float("inf")),
        "robot.ee_chain.joints[0].xyz_m[2] is Infinity: must be finite",
    ),
    (
        "goal box inside out",
        lambda m: m["goal"].update(world_low_m=[-0.15, -0.15, 0.4]),
        "goal.world_low_m[2] is 0.4: must be < goal.world_high_m[2] (0.3)",
    ),
    (
        "zero shape entry",
        lambda m: m["outputs"][0].update(shape=[0]),
        "outputs[0].shape[0] is 0: must be an integer >= 1",
    ),
    (
        "float shape entry",
        lambda m: m["action"].update(shape=[7.0]),
        "action.shape[0] is 7.0: must be an integer >= 1",
    ),
    (
        "zero normalization epsilon",
        lambda m: m["observation"].update(normalization_epsilon=0.0),
        "observation.normalization_epsilon is 0.0: must be finite and > 0",
    ),
    (
        "negative normalization clip",
        lambda m: m["observation"].update(normalization_clip=-10.0),
        "observation.normalization_clip is -10.0: must be finite and > 0",
    ),
    (
        "a bool for a number",
        lambda m: m.update(control_rate_hz=True),
        "control_rate_hz is true: must be a number",
    ),
    (
        "chain joints differ from joint_names",
        lambda m: m["joint_names"].__setitem__(6, "wrist"),
        "robot.ee_chain's moving joints",
    ),
    (
        "a truncated ONNX digest",
        lambda m: m.update(onnx_sha256=m["onnx_sha256"][:16]),
        "onnx_sha256 is ",
    ),
    (
        "an unknown control",
        lambda m: m["policy"].update(control="torque"),
        "policy.control is \"torque\": must be one of ['ee', 'joint']",
    ),
    (
        "ee control without its IK settings",
        lambda m: m["policy"].update(control="ee"),
        "policy.ee_control is missing: an ee-control policy needs it",
    ),
    (
        "an image input without a camera",
        lambda m: m["observation"]["inputs"].append({"name": "image_scene", "shape": [48, 64, 3], "dtype": "uint8"}),
        "observation.inputs[3] is an image but camera is null",
    ),
]


def test_a_real_export_validates(manifest: Manifest) -> None:
    validate_manifest(manifest, "manifest.json")


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_wrong_fields_are_refused_by_their_dotted_path(
    manifest: Manifest, change: Callable[[Manifest], Any], message: str
) -> None:
    broken = copy.deepcopy(manifest)
    change(broken)
    with pytest.raises(BundleError, match=re.escape("bundle/manifest.json: ") + r"(.*; )?" + re.escape(
        message.format(obs=_obs(manifest))
    )):  # fmt: skip
        validate_manifest(broken, "bundle/manifest.json")


def test_every_problem_is_reported_at_once(manifest: Manifest) -> None:
    manifest["goal"].pop("distance_threshold_m")
    manifest["control_rate_hz"] = float("nan")
    with pytest.raises(BundleError) as e:
        validate_manifest(manifest, "m.json")
    assert "goal.distance_threshold_m is missing" in str(e.value) and "control_rate_hz is NaN" in str(e.value)


def test_optional_fields_may_be_absent_or_null(manifest: Manifest) -> None:
    for spec in manifest["observation"]["inputs"]:
        spec["normalization"] = None
    manifest["observation"].update(normalization_epsilon=None, normalization_clip=None)
    manifest.update(randomization=None, camera=None)
    manifest.pop("created")
    manifest.pop("source")
    validate_manifest(manifest, "m.json")
    manifest["randomization"] = {"sampler": "uniform", "space": {"anything": [1, 2]}}  # provenance: free below
    validate_manifest(manifest, "m.json")


def test_load_bundle_names_the_missing_field(exported: Path, tmp_path: Path) -> None:
    """The manifest is not hashed (the SHA-256 is the ONNX file's): an edited one reaches the validator."""
    bundle = tmp_path / "bundle"
    shutil.copytree(exported, bundle)
    m = json.loads((bundle / "manifest.json").read_text())
    del m["goal"]["distance_threshold_m"]
    (bundle / "manifest.json").write_text(json.dumps(m))
    message = f"{bundle / 'manifest.json'}: goal.distance_threshold_m is missing"
    with pytest.raises(BundleError, match=re.escape(message)):
        load_bundle(bundle)


@pytest.mark.parametrize(
    ("kw", "camera_size"),
    [
        ({"agent": "tqc_her", "control": "ee", "settings": {**SMALL["tqc_her"], "normalize": True}}, None),
        ({"agent": "recurrent_ppo", "control": "ee"}, None),
        ({"agent": "ppo", "control": "joint", "obs_mode": "pixels"}, (128, 96)),
    ],
    ids=["tqc_her-ee-normalized", "recurrent_ppo-ee", "ppo-joint-pixels"],
)
def test_every_kind_of_real_export_validates(
    kw: dict[str, Any], camera_size: tuple[int, int] | None, tmp_path: Path
) -> None:
    run = quick_run(tmp_path / "run", task="reach", steps=64, **kw)
    bundle = load_bundle(export_run(run, tmp_path / "bundle", camera_size))
    m = bundle.manifest
    validate_manifest(m, "m.json")  # load_bundle validated it too
    assert (m["policy"].get("ee_control") is not None) == (kw["control"] == "ee")
    assert bool(m["state"]) == (kw["agent"] == "recurrent_ppo") and (m["camera"] is not None) == ("obs_mode" in kw)
    if kw["agent"] == "tqc_her":
        assert m["observation"]["normalization_epsilon"] > 0 and _input(m, "observation")[1]["normalization"]


def test_the_node_tests_scripted_bundles_validate(exported: Path, tmp_path: Path) -> None:
    from tests.ros.bundles import scripted_bundle

    for name, kw in (("plain", {}), ("nan", {"offset_rad": float("nan")}), ("pixels", {"image_hw": (48, 64)})):
        load_bundle(scripted_bundle(exported, tmp_path / name, **kw))


def test_joint_types_are_the_kinematics(manifest: Manifest) -> None:
    from sim.kinematics import JOINT_TYPES as KINEMATICS_JOINT_TYPES

    assert JOINT_TYPES == KINEMATICS_JOINT_TYPES


def test_the_validator_imports_neither_torch_nor_onnxruntime() -> None:
    code = (
        "import sys, policies.manifest; "
        "bad = [m for m in ('torch', 'onnxruntime', 'stable_baselines3', 'sim') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
