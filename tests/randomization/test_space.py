"""Randomization YAML: parsing, validation errors that name the field, round trips, presets, distributions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from randomization import ParameterSpace, SpaceError, UniformDR, space_from
from randomization.distributions import _ndtri, draw_value
from randomization.space import presets
from randomization.textures import make_texture


def _space(*params: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"schema_version": 1, "parameters": list(params), **top}


MASS = {"name": "body_mass:object", "nominal": 1.0, "low": 0.5, "high": 2.0}


def test_round_trip_through_yaml(tmp_path: Path) -> None:
    space = ParameterSpace.from_dict(
        _space(
            MASS,
            {
                "name": "gravity",
                "nominal": [0, 0, -9.81],
                "low": [-1, -1, -10],
                "high": [1, 1, -9],
                "std": 0.1,
                "distribution": "truncnormal",
            },
            {"name": "action_delay", "nominal": 0, "low": 0, "high": 2, "integer": True},
            {"name": "texture:table", "patterns": ["checker"], "color_low": 0.1, "color_high": 0.9},
            resample_every_steps=10,
        )
    )
    path = tmp_path / "sub" / "space.yaml"
    space.save(path)
    again = ParameterSpace.load(path)
    assert again.to_dict() == space.to_dict()
    assert again.resample_every_steps == 10
    assert again["gravity"].shape == (3,)  # type: ignore[union-attr]
    assert not list(path.parent.glob(".*tmp"))  # the atomic write left no temp file


@pytest.mark.parametrize(
    ("entry", "top", "needle"),
    [
        ({**MASS, "low": 3.0}, {}, "inverted range"),
        ({**MASS, "nominal": 5.0}, {}, "nominal"),
        ({**MASS, "hgih": 1.0}, {}, "unknown key(s) ['hgih']"),
        ({**MASS, "distribution": "beta"}, {}, "distribution must be one of"),
        ({**MASS, "apply": "multiply"}, {}, "apply must be one of"),
        ({**MASS, "low": 0.0, "distribution": "loguniform", "nominal": 0.0}, {}, "loguniform needs low > 0"),
        ({**MASS, "low": "heavy"}, {}, "'low' must be a number"),
        ({**MASS, "high": float("nan")}, {}, "'high' must be finite"),
        ({"name": "body_mass:object", "low": 0.1, "high": 1.0}, {}, "'nominal' is required"),
        ({"name": "gravity", "nominal": [0, 0, 1], "low": [0, 0], "high": [0, 0, 1]}, {}, "shapes"),
        ({"name": "action_delay", "nominal": 0, "low": 0, "high": 1.5, "integer": True}, {}, "integer low and high"),
        ({"name": "texture:table", "patterns": ["stripes"]}, {}, "patterns must be"),
        ({"name": "texture:table", "nominal": 1.0}, {}, "unknown key(s) ['nominal']"),
        (MASS, {"colour": 1}, "unknown key(s) ['colour']"),
        (MASS, {"resample_every_steps": -1}, "resample_every_steps"),
    ],
)
def test_bad_entries_are_rejected_naming_the_field(entry: dict[str, Any], top: dict[str, Any], needle: str) -> None:
    with pytest.raises(SpaceError) as e:
        ParameterSpace.from_dict(_space(entry, **top), source="my.yaml")
    assert needle in str(e.value)
    assert "my.yaml" in str(e.value)


def test_schema_version_is_checked() -> None:
    with pytest.raises(SpaceError, match="schema_version must be 1, got 2"):
        ParameterSpace.from_dict({"schema_version": 2, "parameters": []})
    with pytest.raises(SpaceError, match="missing"):
        ParameterSpace.from_dict({"parameters": []})


def test_duplicate_names_and_files(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match="appears twice"):
        ParameterSpace.from_dict(_space(MASS, MASS))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ParameterSpace.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: [1\n")
    with pytest.raises(SpaceError, match="not valid YAML"):
        ParameterSpace.load(bad)
    with pytest.raises(FileNotFoundError, match="neither a file nor a preset"):
        space_from("no_such_preset")


def test_presets_parse() -> None:
    assert {"dynamics", "object_dynamics", "visual"} <= set(presets())
    for name in presets():
        assert len(space_from(name)) > 0


def test_expand_per_element() -> None:
    space = ParameterSpace.from_dict(
        _space({"name": "joint_damping:panda_joint*", "nominal": 0, "low": 0, "high": 1, "per_element": True}, MASS)
    )
    out = space.expand(lambda name: [name.replace("*", str(i)) for i in (1, 2)])
    assert out.names == ["joint_damping:panda_joint1", "joint_damping:panda_joint2", "body_mass:object"]


@pytest.mark.parametrize("dist", ["uniform", "loguniform", "truncnormal"])
def test_bounded_distributions_stay_in_range(dist: str, rng: np.random.Generator) -> None:
    p = ParameterSpace.from_dict(_space({**MASS, "low": 0.2, "nominal": 0.3, "distribution": dist, "std": 0.5}))[
        "body_mass:object"
    ]
    draws = np.array([draw_value(p, rng) for _ in range(4000)])  # type: ignore[arg-type]
    assert draws.min() >= 0.2 and draws.max() <= 2.0
    assert draws.max() - draws.min() > 1.2  # they fill the range
    if dist == "loguniform":  # half the draws below the geometric mean
        assert abs(np.mean(draws < np.sqrt(0.2 * 2.0)) - 0.5) < 0.04
    if dist == "truncnormal":  # mass piles up near the nominal, and the mean follows the truncated normal
        assert np.mean(draws < 0.8) > 0.5


def test_truncnormal_far_tail_and_inverse_cdf(rng: np.random.Generator) -> None:
    assert abs(_ndtri(0.975) - 1.959963984540054) < 1e-9
    assert abs(_ndtri(1e-10) + 6.361340902404056) < 1e-6
    p = ParameterSpace.from_dict(
        _space({"name": "x", "nominal": 0.0, "low": 0.0, "high": 1.0, "std": 0.01, "distribution": "truncnormal"})
    )["x"]
    # the mean sits 90 std below the narrowed range: every draw still lands inside it (at its near end)
    draws = [float(draw_value(p, rng, np.array(0.9), np.array(1.0))) for _ in range(50)]  # type: ignore[arg-type]
    assert all(0.9 <= d <= 1.0 for d in draws)


def test_integer_and_fixed_components(rng: np.random.Generator) -> None:
    space = ParameterSpace.from_dict(
        _space(
            {"name": "action_delay", "nominal": 0, "low": 0, "high": 3, "integer": True},
            {"name": "gravity", "nominal": [0, 0, -9.81], "low": [0, 0, -10], "high": [0, 0, -9.6]},
        )
    )
    draws = [UniformDR(space, rng).sample().values for _ in range(200)]
    delays = {float(d["action_delay"]) for d in draws}
    assert delays == {0.0, 1.0, 2.0, 3.0}
    assert all(d["gravity"][0] == 0.0 and -10 <= d["gravity"][2] <= -9.6 for d in draws)


def test_uniform_sampler_is_seeded() -> None:
    space = space_from("visual")
    a = [UniformDR(space, np.random.default_rng(7)).sample().values for _ in range(3)]
    b = [UniformDR(space, np.random.default_rng(7)).sample().values for _ in range(3)]
    c = UniformDR(space, np.random.default_rng(8)).sample().values
    for x, y in zip(a, b):
        assert all(np.array_equal(x[k], y[k]) for k in x)
    assert not all(np.array_equal(a[0][k], c[k]) for k in c)


def test_uniform_state_round_trip() -> None:
    import json

    s1 = UniformDR(space_from("dynamics"), np.random.default_rng(3))
    s1.sample()
    state = json.loads(json.dumps(s1.state_dict()))
    s2 = UniformDR(space_from("dynamics"), np.random.default_rng(99))
    s2.load_state_dict(state)
    x, y = s1.sample().values, s2.sample().values
    assert all(np.array_equal(x[k], y[k]) for k in x)
    with pytest.raises(ValueError, match="differ"):
        UniformDR(space_from("visual"), np.random.default_rng(0)).load_state_dict(state)


@pytest.mark.parametrize("pattern", ["flat", "checker", "noise", "gradient"])
def test_textures(pattern: str, rng: np.random.Generator) -> None:
    a, b = np.array([0.1, 0.2, 0.3]), np.array([0.9, 0.8, 0.7])
    img = make_texture(pattern, a, b, 8, rng, 64)
    assert img.shape == (64, 64, 3) and img.min() >= 0 and img.max() <= 1
    if pattern == "flat":
        assert np.allclose(img, a)
    else:
        assert img.std() > 0.1  # a visible pattern between the two colours
    if pattern == "checker":
        assert np.allclose(img[0, 0], a) and np.allclose(img[0, 8], b) and np.allclose(img[8, 8], a)


def test_provenance_travels_through_save_and_load(tmp_path: Path) -> None:
    data = space_from("dynamics").to_dict()
    data["provenance"] = {"bags": [{"path": "a", "sha256": "00"}], "robot": "panda"}
    path = tmp_path / "calibrated.yaml"
    ParameterSpace.from_dict(data).save(path)
    assert ParameterSpace.load(path).provenance == data["provenance"]
    with pytest.raises(SpaceError, match="provenance must be a mapping"):
        ParameterSpace.from_dict({**data, "provenance": [1]})
