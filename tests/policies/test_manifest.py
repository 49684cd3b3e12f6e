"""Bundle manifests: every real export validates and round-trips through the Manifest dataclass, each kind of wrong
field is refused by its dotted path, version 2 upgrades to 3 and any other version is refused."""

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

from policies import manifest as schema
from policies.bundle import BundleError, load_bundle
from policies.manifest import JOINT_TYPES, SCHEMA_VERSION, EnvInfo, Manifest, upgrade_v2
from sim2real.export_run import export_run
from tests.bundle_edits import without_fields
from tests.quick_runs import SMALL, quick_run

Data = dict[str, Any]
DATA = Path(__file__).parent / "data"
#: Real manifests written by the schema-version-2 exporter (source.run shortened): a state tqc_her policy in
#: end-effector control (normalised) and a pixel PPO policy in joint control at a 128x96 camera.
V2_FILES = {
    "tqc_her_ee": DATA / "manifest_v2_tqc_her_ee.json",
    "ppo_joint_pixels": DATA / "manifest_v2_ppo_joint_pixels.json",
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real bundle: 64 PPO steps on Reach in joint control (PPO's defaults normalise the observations)."""
    tmp = tmp_path_factory.mktemp("manifest")
    return export_run(quick_run(tmp / "run", task="reach", agent="ppo", control="joint", steps=64), tmp / "bundle")


@pytest.fixture
def manifest(exported: Path) -> Data:
    """A fresh copy of the real export's manifest, for a test to break."""
    return dict(json.loads((exported / "manifest.json").read_text()))


def _input(m: Data, name: str) -> tuple[int, dict[str, Any]]:
    """(index, spec) of the observation input called `name`."""
    return next((i, s) for i, s in enumerate(m["observation"]["inputs"]) if s["name"] == name)


def _obs(m: Data) -> int:
    return _input(m, "observation")[0]


def _camera(m: Data) -> None:
    m["camera"] = {"name": "scene", "width": 0, "height": 48, "k": [[50.0, 0.0, 32.0], [0.0, 50.0, 24.0], [0, 0, 1]]}


#: (id, change to a real manifest, the message it must raise; `{obs}` is the observation input's index).
CASES: list[tuple[str, Callable[[Data], Any], str]] = [
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
        lambda m: m["env"].update(control="torque"),
        "env.control is \"torque\": must be one of ['ee', 'joint']",
    ),
    (
        "ee control without its IK settings",
        lambda m: m["env"].update(control="ee"),
        "policy.ee_control is missing: an ee-control policy needs it",
    ),
    ("missing env", lambda m: m.pop("env"), "env is missing"),
    ("an unknown task", lambda m: m["env"].update(task="stack"), 'env.task is "stack": must be one of'),
    ("a number for a randomization space", lambda m: m["env"].update(randomization=3), "env.randomization is 3"),
    ("an unknown nested key", lambda m: m["goal"].update(radius_m=1.0), "goal: unknown field(s) ['radius_m']"),
    (
        "a fact kept twice (v2's policy.task)",
        lambda m: m["policy"].update(task="reach"),
        "policy: unknown field(s) ['task']",
    ),
    (
        "pixels without an image input",
        lambda m: m["env"].update(obs_mode="pixels"),
        'env.obs_mode is "pixels" but no observation input is an image',
    ),
    (
        "a null normalization epsilon with statistics",
        lambda m: m["observation"].update(normalization_epsilon=None),
        "observation.normalization_epsilon is null: the inputs have normalization statistics",
    ),
    ("a provenance source that is not an object", lambda m: m.update(source="run"), 'source is "run": must be'),
    (
        "an image input without a camera",
        lambda m: m["observation"]["inputs"].append(
            {"name": "image_scene", "shape": [48, 64, 3], "dtype": "uint8", "normalization": None}
        ),
        "observation.inputs[3] is an image but camera is null",
    ),
]


def test_a_real_export_validates_and_round_trips(manifest: Data) -> None:
    m = Manifest.from_dict(manifest, "manifest.json")
    assert m.to_dict() == manifest and Manifest.from_dict(m.to_dict()) == m
    assert m.to_dict()["schema_version"] == SCHEMA_VERSION == 3 and list(m.to_dict())[0] == "schema_version"
    assert m.env == EnvInfo(task="reach", backend="mujoco", control="joint", obs_mode="state", reward="dense",
                            randomization="")  # fmt: skip
    assert m.source is not None and set(m.source) == {"run", "seed"}  # task and backend live in env only


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_wrong_fields_are_refused_by_their_dotted_path(
    manifest: Data, change: Callable[[Data], Any], message: str
) -> None:
    broken = copy.deepcopy(manifest)
    change(broken)
    with pytest.raises(BundleError, match=re.escape("bundle/manifest.json: ") + r"(.*; )?" + re.escape(
        message.format(obs=_obs(manifest))
    )):  # fmt: skip
        Manifest.from_dict(broken, "bundle/manifest.json")


def test_every_problem_is_reported_at_once(manifest: Data) -> None:
    manifest["goal"].pop("distance_threshold_m")
    manifest["control_rate_hz"] = float("nan")
    with pytest.raises(BundleError) as e:
        Manifest.from_dict(manifest, "m.json")
    assert "goal.distance_threshold_m is missing" in str(e.value) and "control_rate_hz is NaN" in str(e.value)


def test_optional_fields_may_be_absent_or_null(manifest: Data) -> None:
    for spec in manifest["observation"]["inputs"]:
        spec["normalization"] = None
        spec.pop("dtype")  # float32 when absent
    manifest["observation"].update(normalization_epsilon=None, normalization_clip=None)
    manifest.update(randomization=None, camera=None)
    manifest.pop("created")
    manifest.pop("source")
    m = Manifest.from_dict(manifest, "m.json")
    assert m.env.obs_layout is None  # bundles before layouts existed, and layout-1 ones: the node builds layout 1
    assert m.created is None and m.source is None and {s.dtype for s in m.observation.inputs} == {"float32"}
    assert "created" not in m.to_dict() and "source" not in m.to_dict()
    manifest["randomization"] = {"sampler": "uniform", "space": {"anything": [1, 2]}}  # provenance: free below
    assert Manifest.from_dict(manifest, "m.json").randomization == manifest["randomization"]


@pytest.mark.parametrize("version", [1, 4, "3", 3.0, None])
def test_other_schema_versions_are_refused_asking_for_a_re_export(manifest: Data, version: Any) -> None:
    if version is None:
        manifest.pop("schema_version")
    else:
        manifest["schema_version"] = version
    with pytest.raises(BundleError, match=r"^m\.json: schema_version .*re-export the policy"):
        Manifest.from_dict(manifest, "m.json")


def _v2(m: Data) -> Data:
    """A version-3 manifest as the version-2 exporter wrote it: no env; policy.task and policy.control;
    source.task and source.backend."""
    v2 = copy.deepcopy(m)
    env = v2.pop("env")
    v2["schema_version"] = 2
    v2["policy"].update(control=env["control"], task=env["task"])
    v2["source"] = {"run": v2["source"]["run"], "task": env["task"], "backend": env["backend"], "seed": 0}
    return v2


@pytest.mark.parametrize(
    ("name", "env"),
    [
        ("tqc_her_ee", EnvInfo(task="reach", backend="mujoco", control="ee", obs_mode="state", reward="sparse",
                               randomization="")),
        ("ppo_joint_pixels", EnvInfo(task="reach", backend="mujoco", control="joint", obs_mode="pixels",
                                     reward="dense", randomization="")),
    ],
)  # fmt: skip
def test_real_version_2_manifests_upgrade_to_3(name: str, env: EnvInfo) -> None:
    data = json.loads(V2_FILES[name].read_text())
    assert data["schema_version"] == 2 and "env" not in data
    m = Manifest.from_dict(data, str(V2_FILES[name]))
    assert m.env == env and m.to_dict()["schema_version"] == 3
    assert m.source == {"run": data["source"]["run"], "seed": 0}  # source.task and .backend moved to env
    assert "task" not in m.to_dict()["policy"] and "control" not in m.to_dict()["policy"]
    assert (m.policy.ee_control is not None) == (env.control == "ee") and (m.camera is not None) == (
        name != "tqc_her_ee"
    )
    assert Manifest.from_dict(m.to_dict()) == m  # upgraded once: the version-3 form loads as it is
    assert upgrade_v2(data)["schema_version"] == 3 and data["schema_version"] == 2  # a copy: the input stays


@pytest.mark.parametrize(
    ("agent", "camera", "source", "env"),
    [
        ("sac_her", None, {"backend": "pybullet"}, ("pybullet", "state", "sparse", "")),
        ("recurrent_ppo", {"name": "scene"}, {"backend": "mujoco", "randomization": "visual"},
         ("mujoco", "pixels", "dense", "visual")),
        ("ppo", None, None, ("mujoco", "state", "dense", "")),
    ],
)  # fmt: skip
def test_upgrade_v2_fills_env_as_documented(agent: str, camera: Any, source: Any, env: tuple[str, ...]) -> None:
    v2: Data = {"schema_version": 2, "policy": {"agent": agent, "task": "push", "control": "joint", "recurrent": False},
                "camera": camera, "observation": {"inputs": [{"name": "observation", "shape": [3]}]}}  # fmt: skip
    if source is not None:
        v2["source"] = source
    up = upgrade_v2(v2)
    backend, obs_mode, reward, randomization = env
    assert up["env"] == {"task": "push", "control": "joint", "backend": backend, "obs_mode": obs_mode,
                         "reward": reward, "randomization": randomization}  # fmt: skip
    assert up["policy"] == {"agent": agent, "recurrent": False}
    assert up.get("source", {}) == {} and ("source" in up) == (source is not None)  # moved to env, not copied
    assert up["observation"]["inputs"][0]["normalization"] is None  # v2 allowed it absent; v3 always writes it


def test_a_version_2_bundle_loads_through_the_upgrade(exported: Path, tmp_path: Path) -> None:
    """A version-2 bundle on disk (its ONNX untouched) loads as the version-3 export of the same run."""
    bundle = tmp_path / "v2"
    shutil.copytree(exported, bundle)
    v3 = json.loads((exported / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps(_v2(v3)))
    assert load_bundle(bundle).manifest.to_dict() == v3
    broken = _v2(v3)
    broken["policy"]["control"] = "torque"
    (bundle / "manifest.json").write_text(json.dumps(broken))
    message = f'{bundle / "manifest.json"} (schema_version 2, read through upgrade_v2): env.control is "torque"'
    with pytest.raises(BundleError, match=re.escape(message)):
        load_bundle(bundle)


def test_load_bundle_names_the_missing_field(exported: Path, tmp_path: Path) -> None:
    """The manifest is not hashed (the SHA-256 is the ONNX file's): an edited one reaches the validator."""
    bundle = without_fields(exported, tmp_path / "bundle", "goal.distance_threshold_m")
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
    m = bundle.manifest  # load_bundle validated it
    assert m.to_dict() == json.loads((bundle.path / "manifest.json").read_text())  # the file is to_dict()
    assert Manifest.from_dict(m.to_dict(), "m.json") == m
    assert (m.policy.ee_control is not None) == (kw["control"] == "ee") == (m.env.control == "ee")
    assert bool(m.state) == (kw["agent"] == "recurrent_ppo") and (m.camera is not None) == ("obs_mode" in kw)
    assert m.env.obs_mode == kw.get("obs_mode", "state") and m.env.reward == (
        "sparse" if "her" in kw["agent"] else "dense"
    )
    if kw["agent"] == "tqc_her":
        obs = next(s for s in m.observation.inputs if s.name == "observation")
        assert m.observation.normalization_epsilon and m.observation.normalization_epsilon > 0 and obs.normalization


def test_the_node_tests_scripted_bundles_validate(exported: Path, tmp_path: Path) -> None:
    from tests.ros.bundles import scripted_bundle

    for name, kw in (("plain", {}), ("nan", {"offset_rad": float("nan")}), ("pixels", {"image_hw": (48, 64)})):
        load_bundle(scripted_bundle(exported, tmp_path / name, **kw))


def test_joint_types_are_the_kinematics(manifest: Data) -> None:
    from sim.kinematics import JOINT_TYPES as KINEMATICS_JOINT_TYPES

    assert JOINT_TYPES == KINEMATICS_JOINT_TYPES


def test_the_env_section_copies_sim_and_the_agents() -> None:
    """env.* takes what sim.env_spec.EnvSpec takes (copied: policies never imports sim), field for field."""
    import dataclasses

    from policies.agents import AGENTS
    from sim import env_spec

    fields = dataclasses.fields(EnvInfo)
    assert [f.name for f in fields] == list(env_spec.FIELDS)
    choices = {f.name: spec.choices for f in fields if getattr(spec := f.metadata["spec"], "choices", None)}
    assert choices == env_spec.CHOICES
    assert set(schema.HER_AGENTS) == {name for name, spec in AGENTS.items() if spec.her}


def test_every_field_has_a_docstring() -> None:
    """House style: each field of every manifest dataclass is documented (an attribute docstring)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(schema))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in {"Manifest", "EnvInfo"} | {
            cls.__name__ for cls in _records(Manifest)
        }:
            body = node.body
            for i, stmt in enumerate(body):
                if isinstance(stmt, ast.AnnAssign) and "ClassVar" not in ast.unparse(stmt.annotation):
                    doc = body[i + 1] if i + 1 < len(body) else None
                    assert isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant), (
                        f"{node.name}.{ast.unparse(stmt.target)} has no docstring"
                    )


def _records(cls: type) -> set[type]:
    """The dataclasses a manifest is made of, below `cls`."""
    import dataclasses

    found: set[type] = set()
    for f in dataclasses.fields(cls):
        spec = f.metadata["spec"]
        while isinstance(spec, schema.List | schema.Nullable):
            spec = spec.item if isinstance(spec, schema.List) else spec.spec
        if isinstance(spec, schema.Record):
            found |= {spec.cls} | _records(spec.cls)
    return found


def test_the_validator_imports_neither_torch_nor_onnxruntime() -> None:
    code = (
        "import sys, policies.manifest; "
        "bad = [m for m in ('torch', 'onnxruntime', 'stable_baselines3', 'sim') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
