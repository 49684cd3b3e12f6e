"""Active DR: particles steered toward distinguishable dynamics, determinism, checkpoints, config checks, cadence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from randomization.active import ActiveDR, ActiveDRConfig
from randomization.sampler import Draw, EpisodeReport
from randomization.space import ParameterSpace

#: p changes the toy's dynamics (0 = nominal = reference); q is a nuisance the dynamics ignore.
TOY = ParameterSpace.from_dict(
    {
        "schema_version": 1,
        "parameters": [
            {"name": "p", "nominal": 0.0, "low": 0.0, "high": 1.0},
            {"name": "q", "nominal": 0.5, "low": 0.0, "high": 1.0},
        ],
    }
)


def toy_episode(p: float, rng: np.random.Generator, steps: int = 40) -> np.ndarray:
    """(steps, 3) features (s_t, a_t, s_t+1) of s' = s + a + 0.5 p sin(3 s) + noise under a fixed random policy."""
    s = rng.normal(0.0, 0.5)
    out = np.empty((steps, 3))
    for t in range(steps):
        a = -0.5 * s + 0.3 * rng.standard_normal()
        s_next = s + a + p * 0.5 * np.sin(3.0 * s) + 0.01 * rng.standard_normal()
        out[t] = (s, a, s_next)
        s = s_next
    return out


def drive(sampler: ActiveDR, n_draws: int, env_seed: int = 7, p_effect: float = 1.0) -> list[Draw]:
    """Run n_draws episodes of the toy under the sampler's draws (p scaled by p_effect), feeding each one back."""
    env_rng = np.random.default_rng(env_seed)
    draws = []
    for _ in range(n_draws):
        draw = sampler.sample()
        transitions = toy_episode(p_effect * float(draw.values["p"]), env_rng)
        sampler.feedback(draw, EpisodeReport(success=0.0, transitions=transitions))
        draws.append(draw)
    return draws


def values_of(draws: list[Draw]) -> np.ndarray:
    return np.array([[float(d.values["p"]), float(d.values["q"])] for d in draws])


def test_particles_move_toward_distinguishable_dynamics() -> None:
    # SVPG's particles approximate a density proportional to exp(J / temperature); mean log D spans ~2 nats here,
    # so the paper's temperature 10 would leave them nearly uniform: 0.05 lets the reward dominate the repulsion.
    sampler = ActiveDR(TOY, np.random.default_rng(0), ActiveDRConfig(temperature=0.05))
    assert sampler.component_names() == ["p", "q"]
    start = sampler.particles()
    assert 0.3 < start[:, 0].mean() < 0.7
    drive(sampler, 360)  # 40 updates of 8 particle episodes and one reference episode
    assert sampler.n_updates == 40
    means = sampler.particles()
    assert means[:, 0].mean() > 0.7, f"p did not move toward the distinguishable end: {means[:, 0]}"
    assert means[:, 1].std() > 0.1, f"the nuisance q collapsed: {means[:, 1]}"  # undirected: stays spread
    # the reward (mean log D) ranks settings by how unlike the reference their dynamics are
    probe_rng = np.random.default_rng(11)
    low, high = (np.mean([sampler.reward(toy_episode(p, probe_rng)) for _ in range(5)]) for p in (0.1, 0.9))
    assert high > low + 0.3, (low, high)
    for values, mu in zip(sampler.particle_values(), means):
        np.testing.assert_allclose([values["p"], values["q"]], mu)


def test_no_drift_when_p_does_not_change_the_dynamics() -> None:
    # the control for the test above: same settings, but every episode runs the reference dynamics
    sampler = ActiveDR(TOY, np.random.default_rng(0), ActiveDRConfig(temperature=0.05))
    drive(sampler, 360, p_effect=0.0)
    means = sampler.particles()
    assert 0.3 < means[:, 0].mean() < 0.7, means[:, 0]
    assert means[:, 0].std() > 0.1, means[:, 0]


def test_same_seed_same_draws_different_seed_different() -> None:
    runs = [values_of(drive(ActiveDR(TOY, np.random.default_rng(seed)), 30)) for seed in (3, 3, 4)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])


def test_state_dict_round_trip_gives_the_same_next_draws() -> None:
    original = ActiveDR(TOY, np.random.default_rng(5), ActiveDRConfig(n_particles=4, temperature=1.0))
    drive(original, 22)  # 4 updates, the discriminator exists, mid-cycle
    assert original.n_updates == 4
    state = json.loads(json.dumps(original.state_dict()))
    restored = ActiveDR(TOY, np.random.default_rng(99))  # other seed and config: the state replaces both
    restored.load_state_dict(state)
    assert restored.config == original.config
    np.testing.assert_array_equal(restored.particles(), original.particles())
    a, b = [original.sample() for _ in range(12)], [restored.sample() for _ in range(12)]
    np.testing.assert_array_equal(values_of(a), values_of(b))
    assert [d.tag for d in a] == [d.tag for d in b]
    probe = toy_episode(0.8, np.random.default_rng(1))
    assert restored.reward(probe) == original.reward(probe)  # same discriminator weights and feature statistics


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_particles", 1),
        ("n_particles", 2.5),
        ("proposal_std", 0.0),
        ("proposal_std", 1.5),
        ("temperature", -1.0),
        ("svpg_lr", 0.0),
        ("reference_every", 1),
        ("discriminator_hidden", 0),
        ("discriminator_steps", 0),
        ("discriminator_lr", float("nan")),
        ("batch_size", 0),
        ("buffer_size", True),
    ],
)
def test_bad_config_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        ActiveDRConfig(**{field: value})


def test_load_state_from_another_space_or_sampler_is_rejected() -> None:
    state = ActiveDR(TOY, np.random.default_rng(0)).state_dict()
    other = ParameterSpace.from_dict(
        {"schema_version": 1, "parameters": [{"name": "body_mass:object", "nominal": 1.0, "low": 0.5, "high": 2.0}]}
    )
    with pytest.raises(ValueError, match=r"parameters \['p', 'q'\] differ"):
        ActiveDR(other, np.random.default_rng(0)).load_state_dict(state)
    fixed_q = ParameterSpace.from_dict(
        {
            "schema_version": 1,
            "parameters": [
                {"name": "p", "nominal": 0.0, "low": 0.0, "high": 1.0},
                {"name": "q", "nominal": 0.5, "low": 0.5, "high": 0.5},
            ],
        }
    )
    with pytest.raises(ValueError, match="moves components"):
        ActiveDR(fixed_q, np.random.default_rng(0)).load_state_dict(state)
    with pytest.raises(ValueError, match="not 'active'"):
        ActiveDR(TOY, np.random.default_rng(0)).load_state_dict({**state, "sampler": "adr"})


def test_reference_draws_are_nominal_at_the_documented_cadence() -> None:
    sampler = ActiveDR(TOY, np.random.default_rng(1))  # 8 particles: every 9th draw is the reference
    draws = [sampler.sample() for _ in range(27)]
    refs = [i + 1 for i, d in enumerate(draws) if d.tag.get("reference")]
    assert refs == [9, 18, 27]
    for d in draws:
        assert d.tag["sampler"] == "active"
        if d.tag.get("reference"):
            assert {k: float(v) for k, v in d.values.items()} == {"p": 0.0, "q": 0.5}
    particles = [d.tag["particle"] for d in draws if not d.tag.get("reference")]
    assert particles == list(range(8)) * 3
    custom = ActiveDR(TOY, np.random.default_rng(1), ActiveDRConfig(n_particles=3, reference_every=2))
    assert [bool(custom.sample().tag.get("reference")) for _ in range(6)] == [False, True] * 3


def test_draws_map_the_unit_box_onto_the_space() -> None:
    space = ParameterSpace.from_dict(
        {
            "schema_version": 1,
            "parameters": [
                {"name": "gravity", "nominal": [0, 0, -9.81], "low": [0, 0, -11], "high": [0, 0, -8]},
                {"name": "action_delay", "nominal": 0, "low": 0, "high": 3, "integer": True},
                {"name": "texture:table"},
            ],
        }
    )
    sampler = ActiveDR(space, np.random.default_rng(2))
    assert sampler.component_names() == ["gravity[2]", "action_delay"]
    for _ in range(20):
        draw = sampler.sample()
        if draw.tag.get("reference"):
            assert "texture:table" not in draw.values  # nominal: the scene keeps its own texture
            continue
        x = np.asarray(draw.tag["x"])
        np.testing.assert_allclose(draw.values["gravity"], [0.0, 0.0, -11.0 + 3.0 * x[0]])
        assert draw.values["action_delay"] == round(3.0 * x[1])
        assert draw.values["texture:table"].shape == (64, 64, 3)


def test_feedback_without_transitions_counts_nothing() -> None:
    sampler = ActiveDR(TOY, np.random.default_rng(0), ActiveDRConfig(n_particles=2))
    for _ in range(9):
        sampler.feedback(sampler.sample(), EpisodeReport(success=1.0))
    assert sampler.n_updates == 0
    assert sampler.state_dict()["discriminator"] is None
    with pytest.raises(ValueError, match=r"\(T, F\)"):
        sampler.feedback(sampler.sample(), EpisodeReport(success=1.0, transitions=np.zeros(5)))


def test_module_import_does_not_import_torch() -> None:
    code = "import sys, randomization.active; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_make_sampler_builds_an_active_sampler() -> None:
    from randomization import Sampler, make_sampler

    sampler = make_sampler("active", TOY, np.random.default_rng(0), n_particles=3, temperature=0.1)
    assert isinstance(sampler, ActiveDR) and isinstance(sampler, Sampler)
    assert sampler.config.n_particles == 3 and sampler.particles().shape == (3, 2)
    with pytest.raises(TypeError):
        make_sampler("active", TOY, np.random.default_rng(0), particles=3)
