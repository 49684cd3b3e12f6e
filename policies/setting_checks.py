"""Type and range checks for every agent setting (`--set key=value`, a config's `settings:`), run before anything
is built, so a bad value is refused with its key named instead of failing in a library at the first update."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

#: How HER agents learn from `--demos` (policies.her_buffer, policies.demo_learning): the demonstrations' share of
#: every batch, and the Q-filtered behaviour-cloning step's weight, batch and filter.
DEMO_SETTINGS = ("demo_share", "bc_weight", "bc_batch_size", "bc_q_filter")
#: Settings an agent takes beyond its tuned defaults (policies.hyperparams), with the same checks.
OPTIONAL: dict[str, frozenset[str]] = {
    "tqc_her": frozenset({"tau", "ent_coef", "target_entropy", "top_quantiles_to_drop_per_net", *DEMO_SETTINGS}),
    "sac_her": frozenset({"tau", "ent_coef", "target_entropy", *DEMO_SETTINGS}),
    "recurrent_sac_her": frozenset({"tau"}),
    "ppo": frozenset({"n_epochs", "gae_lambda", "clip_range", "vf_coef", "max_grad_norm"}),
    "recurrent_ppo": frozenset({"n_epochs", "gae_lambda", "clip_range", "vf_coef", "max_grad_norm"}),
}

#: policy_kwargs keys per agent (those we can check and that plain YAML can express).
POLICY_KWARGS: dict[str, frozenset[str]] = {
    "tqc_her": frozenset({"net_arch", "n_critics", "n_quantiles", "log_std_init", "share_features_extractor"}),
    "sac_her": frozenset({"net_arch", "n_critics", "log_std_init", "share_features_extractor"}),
    "recurrent_sac_her": frozenset({"net_arch", "lstm_hidden_size"}),
    "ppo": frozenset({"net_arch", "log_std_init", "ortho_init", "share_features_extractor"}),
    "recurrent_ppo": frozenset(
        {
            "net_arch",
            "log_std_init",
            "ortho_init",
            "lstm_hidden_size",
            "n_lstm_layers",
            "enable_critic_lstm",
            "shared_lstm",
        }
    ),  # fmt: skip
}


class SettingError(ValueError):
    """A setting of the wrong type or out of range; the message names the key."""


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise SettingError(f"settings.{key} must be a number, got {value!r}")
    if isinstance(value, str):  # YAML reads 1e-3 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            raise SettingError(f"settings.{key} must be a number, got {value!r}") from None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise SettingError(f"settings.{key} must be a finite number, got {value!r}")
    return float(value)


def _integer(key: str, value: Any) -> int:
    x = _number(key, value)
    if x != int(x):
        raise SettingError(f"settings.{key} must be a whole number, got {value!r}")
    return int(x)


def integer(low: int) -> Callable[[str, Any], int]:
    """A whole number >= low."""

    def check(key: str, value: Any) -> int:
        x = _integer(key, value)
        if x < low:
            raise SettingError(f"settings.{key} must be >= {low}, got {x}")
        return x

    return check


def number(low: float, high: float = math.inf, low_open: bool = False) -> Callable[[str, Any], float]:
    """A finite number in [low, high] (or (low, high] with low_open)."""

    def check(key: str, value: Any) -> float:
        x = _number(key, value)
        if x > high or x < low or (low_open and x == low):
            bound = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
            raise SettingError(f"settings.{key} must be in {bound}, got {x}")
        return x

    return check


def boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingError(f"settings.{key} must be true or false, got {value!r}")
    return value


def choice(*allowed: str) -> Callable[[str, Any], str]:
    def check(key: str, value: Any) -> str:
        if value not in allowed:
            raise SettingError(f"settings.{key} must be one of {list(allowed)}, got {value!r}")
        return str(value)

    return check


def _train_freq(key: str, value: Any) -> Any:
    """train_freq: N (env steps) or [N, "step" | "episode"]."""
    if isinstance(value, list | tuple):
        if len(value) != 2 or value[1] not in ("step", "episode"):
            raise SettingError(f"settings.{key} must be N or [N, 'step' | 'episode'], got {value!r}")
        return [integer(1)(key, value[0]), value[1]]
    return integer(1)(key, value)


def _gradient_steps(key: str, value: Any) -> int:
    x = _integer(key, value)
    if x < 1 and x != -1:
        raise SettingError(f"settings.{key} must be >= 1 (or -1: as many as env steps collected), got {x}")
    return x


def _auto_or(check: Callable[[str, Any], float]) -> Callable[[str, Any], Any]:
    """'auto' (or SAC's 'auto_<initial value>') or a number that passes `check`."""

    def inner(key: str, value: Any) -> Any:
        if isinstance(value, str) and (value == "auto" or value.startswith("auto_")):
            if value != "auto":
                number(0.0, low_open=True)(key, value.removeprefix("auto_"))
            return value
        return check(key, value)

    return inner


def _net_arch(networks: frozenset[str], required: bool) -> Callable[[str, Any], Any]:
    """Layer widths for every network, or per network as {pi: [...], qf: [...]} (off-policy: pi and qf, both
    required) or {pi: [...], vf: [...]} (on-policy)."""

    def layers(k: str, v: Any) -> list[int]:
        if not isinstance(v, list):
            raise SettingError(f"settings.{k} must be a list of layer widths such as [256, 256], got {v!r}")
        return [integer(1)(f"{k}[{i}]", w) for i, w in enumerate(v)]

    def check(key: str, value: Any) -> Any:
        if isinstance(value, dict):
            names = sorted(networks)
            unknown = sorted(set(value) - networks)
            if unknown or (required and set(value) != networks):
                raise SettingError(f"settings.{key} per network takes {names}{' (both)' if required else ''}, "
                                   f"got {sorted(value)}")  # fmt: skip
            return {k: layers(f"{key}.{k}", v) for k, v in value.items()}
        return layers(key, value)

    return check


#: Setting name -> check (returns the value, converted where YAML gave a numeric string).
RULES: dict[str, Callable[[str, Any], Any]] = {
    "total_steps": integer(1),
    "batch_size": integer(1),
    "buffer_size": integer(1),
    "learning_starts": integer(0),
    "n_steps": integer(2),
    "n_epochs": integer(1),
    "top_quantiles_to_drop_per_net": integer(0),
    "gamma": number(0.0, 1.0, low_open=True),
    "tau": number(0.0, 1.0, low_open=True),
    "gae_lambda": number(0.0, 1.0, low_open=True),
    "learning_rate": number(0.0, low_open=True),
    "clip_range": number(0.0, low_open=True),
    "max_grad_norm": number(0.0, low_open=True),
    "vf_coef": number(0.0),
    "action_noise_std": number(0.0),
    "action_noise_type": choice("normal", "ou"),
    "ent_coef": _auto_or(number(0.0)),
    "target_entropy": _auto_or(number(-math.inf)),
    "train_freq": _train_freq,
    "gradient_steps": _gradient_steps,
    "normalize": boolean,
    "demo_share": number(0.0, 0.9),
    "bc_weight": number(0.0),
    "bc_batch_size": integer(1),
    "bc_q_filter": boolean,
    "burn_in": integer(0),
    "train_window": integer(1),
}

_POLICY_RULES: dict[str, Callable[[str, Any], Any]] = {
    "n_critics": integer(1),
    "n_quantiles": integer(1),
    "lstm_hidden_size": integer(1),
    "n_lstm_layers": integer(1),
    "log_std_init": number(-math.inf),
    "ortho_init": boolean,
    "share_features_extractor": boolean,
    "enable_critic_lstm": boolean,
    "shared_lstm": boolean,
}

_HER_RULES: dict[str, Callable[[str, Any], Any]] = {
    "n_sampled_goal": integer(1),
    "goal_selection_strategy": choice("future", "final", "episode"),
    "copy_info_dict": boolean,
    "n_steps": integer(1),
}


def _mapping(key: str, value: Any, rules: dict[str, Callable[[str, Any], Any]], allowed: frozenset[str]) -> dict:
    if not isinstance(value, dict):
        raise SettingError(f"settings.{key} must be a mapping such as {{{next(iter(sorted(allowed)))}: ...}}, "
                           f"got {value!r}")  # fmt: skip
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise SettingError(f"settings.{key}: unknown key(s) {unknown}; known: {sorted(allowed)}")
    return {k: rules[k](f"{key}.{k}", v) for k, v in value.items()}


def check_settings(agent: str, settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` (an agent's tuned defaults with the user's overrides) checked and converted; SettingError names
    the first bad key."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if key == "policy_kwargs":
            on_policy = agent in ("ppo", "recurrent_ppo")
            arch = _net_arch(frozenset({"pi", "vf"} if on_policy else {"pi", "qf"}), required=not on_policy)
            out[key] = _mapping(key, value, {**_POLICY_RULES, "net_arch": arch}, POLICY_KWARGS[agent])
        elif key == "her":
            out[key] = _mapping(key, value, _HER_RULES, frozenset(_HER_RULES))
        elif key in RULES:
            out[key] = RULES[key](key, value)
        else:
            raise SettingError(f"settings.{key}: no check is defined for this setting")
    if "buffer_size" in out and out.get("batch_size", 0) > out["buffer_size"]:
        raise SettingError(f"settings.batch_size {out['batch_size']} exceeds settings.buffer_size {out['buffer_size']}")
    return out
