"""The train command's flags are generated from the config dataclasses: every field has one, with its docstring
as help, its choice table as choices, and only the flags given override a config file."""

from __future__ import annotations

import dataclasses
import json

from sim.env_spec import CHOICES, EnvSpec
from sim2real.cli import build_parser
from sim2real.train_config import CONFIG_KEYS, TRAIN_CHOICES, TrainConfig
from sim2real_ros.dataclass_flags import field_docs


def test_every_config_field_has_a_docstring() -> None:
    for cls in (EnvSpec, TrainConfig):
        docs = field_docs(cls)
        assert {f.name for f in dataclasses.fields(cls)} == set(docs), cls
        assert all(len(d) > 5 for d in docs.values())


def _train_parser():  # type: ignore[no-untyped-def]
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["train"]  # type: ignore[attr-defined]


def test_the_train_flags_are_the_config_fields_with_their_choices() -> None:
    actions = {a.dest: a for a in _train_parser()._actions}
    plain = [k for k in CONFIG_KEYS if k not in ("settings", "randomizer_settings")]  # mappings: config files, --set
    assert set(plain) <= set(actions)
    for name, allowed in {**CHOICES, **TRAIN_CHOICES}.items():
        assert list(actions[name].choices) == list(allowed), name
    assert "Seed of the envs" in actions["seed"].help


def test_only_given_flags_are_set() -> None:
    args = _train_parser().parse_args(["--task", "push", "--no-gif", "--steps", "auto", "--seed", "4"])
    given = {k: getattr(args, k) for k in CONFIG_KEYS if getattr(args, k, None) is not None}
    assert given == {"task": "push", "gif": False, "seed": 4}  # --steps auto is the tuned budget: None


def test_a_run_older_than_a_config_field_resumes_with_that_fields_default() -> None:
    """A config.json written before `framework` (or `obs_layout`) existed holds no such key: the run had the
    default, so resuming with the default is no change, and asking for another value is one."""
    from sim2real.train_config import resume_changes, train_config

    cfg = train_config(task="reach", steps=100)
    saved = {k: v for k, v in json.loads(json.dumps(cfg.to_dict())).items() if k not in ("framework", "obs_layout")}
    assert resume_changes(saved, cfg) == []
    other = train_config(task="reach", steps=100, framework="sbx")
    assert resume_changes(saved, other) == ["framework='sbx' (the run has 'sb3')"]
