"""The env a policy trains, is evaluated and is deployed in, as data: `EnvSpec` (task, engine, control,
observation, reward, randomization space) and the one `make_env(spec)` that train, evaluate, export and the
simulated arm build their envs with."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.cell import Cell, CellError, parse_box, parse_start_joints
from sim.engines import BACKENDS
from sim.observation import check_layout
from sim.registration import TASKS

__all__ = ["TASKS", "EnvSpec", "EnvSpecError", "make_env", "make_sampler", "task_class"]

CONTROLS = ("ee", "joint")
OBS_MODES = ("state", "pixels", "both")
REWARDS = ("auto", "sparse", "dense")


class EnvSpecError(ValueError):
    """An env spec field with a value no env takes; the message names the field."""


@dataclass(frozen=True)
class EnvSpec:
    """One env as data. The defaults are the tasks' own; every field is a plain value, so a spec travels in config
    files, run folders and manifests."""

    task: str = "reach"
    """The task to learn (TASKS: its gymnasium id)."""
    backend: str = "mujoco"
    """The physics engine (sim.engines.BACKENDS)."""
    control: str = "ee"
    """Action space: ee (end-effector deltas) | joint (joint-target deltas)."""
    obs_mode: str = "state"
    """What the policy observes: state vectors, camera pixels (and proprioception), or both."""
    reward: str = "auto"
    """sparse | dense | auto (the task's default, sparse; training resolves it per agent)."""
    randomization: str = ""
    """A preset name (dynamics, object_dynamics, visual) or a randomization YAML path; empty: none."""
    goal_workspace_base_m: tuple[float, ...] = ()
    """The goal box XLO,YLO,ZLO,XHI,YHI,ZHI in metres, robot base frame (panda_link0); object tasks keep objects and
    goals on the table inside it. Empty: the task's own box."""
    table_height_m: float = 0.0
    """The table top's height in the robot base frame (m, <= 0): 0 when the base stands on the table, -0.2 on a
    20 cm pedestal."""
    start_joints: str = ""
    """The arm's start pose: a name (neutral, ready), or 7 comma-separated joint angles in rad; empty: the task's."""
    obs_layout: int = 1
    """The state observation's layout (sim.observation): 1, or 2 with FetchPush's relative features appended (the
    object relative to the end-effector, the goal relative to the achieved goal)."""

    def __post_init__(self) -> None:
        # a YAML list or "a,b,..." becomes the tuple the field holds (a malformed one is left for check() to name)
        box = self.goal_workspace_base_m
        if not isinstance(box, tuple) or any(not isinstance(v, float) for v in box):
            try:
                parsed = parse_box(box) if (box if isinstance(box, str) else len(box)) else ()
            except (CellError, TypeError):
                return
            object.__setattr__(self, "goal_workspace_base_m", parsed)

    @property
    def env_id(self) -> str:
        """The gymnasium id of the task."""
        return TASKS[self.task]

    def check(self) -> EnvSpec:
        """The spec itself when every field holds a value an env takes; EnvSpecError naming the first that does not."""
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise EnvSpecError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
        try:
            check_layout(self.obs_layout)
        except ValueError as e:
            raise EnvSpecError(str(e)) from None
        if not isinstance(self.randomization, str):
            raise EnvSpecError(f"randomization must be a preset name or a YAML path, got {self.randomization!r}")
        try:
            self.cell().check()
        except CellError as e:
            raise EnvSpecError(str(e)) from None
        return self

    def cell(self) -> Cell:
        """The cell settings as the env takes them (CellError for a malformed start pose or box)."""
        from sim.robot import panda

        box = parse_box(self.goal_workspace_base_m) if len(self.goal_workspace_base_m) else None
        start = parse_start_joints(self.start_joints, panda().arm_limits_rad)
        return Cell(box, float(self.table_height_m), start)

    def replace(self, **changes: Any) -> EnvSpec:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of gym.make for this spec (without the randomization, which make_env binds)."""
        kw: dict[str, Any] = {"backend": self.backend, "control": self.control, "obs_mode": self.obs_mode}
        if self.reward != "auto":
            kw["reward_type"] = self.reward
        if self.obs_layout != 1:
            kw["obs_layout"] = self.obs_layout
        cell = self.cell()  # only what differs from the task's own, so default specs make the envs they always did
        if cell.goal_workspace_base_m is not None:
            kw["goal_workspace_base_m"] = cell.goal_workspace_base_m
        if cell.table_height_m != 0.0:
            kw["table_height_m"] = cell.table_height_m
        if cell.start_arm_q_rad is not None:
            kw["start_arm_q_rad"] = cell.start_arm_q_rad
        return kw


FIELDS = tuple(f.name for f in dataclasses.fields(EnvSpec))
#: The values each choice field takes (checks, the command line's choices and help use this one table).
CHOICES: dict[str, tuple[str, ...]] = {
    "task": tuple(TASKS),
    "backend": BACKENDS,
    "control": CONTROLS,
    "obs_mode": OBS_MODES,
    "reward": REWARDS,
}


def make_sampler(spec: EnvSpec, kind: str, rng: np.random.Generator, **settings: Any) -> Any:
    """A `kind` sampler (uniform | adr | active) over the spec's randomization space with its wildcards expanded
    against the task's property names; None when the spec has no space or kind is none."""
    if not spec.randomization or kind == "none":
        return None
    import gymnasium as gym

    import sim  # noqa: F401  (registers the ids)
    from randomization import make_sampler as build
    from randomization import space_from

    probe = gym.make(spec.env_id, backend=spec.backend)
    space = space_from(spec.randomization).expand(probe.unwrapped.concrete_property_names)  # type: ignore[attr-defined]
    probe.close()
    return build(kind, space, rng, **settings)


def make_env(spec: EnvSpec, randomization: Any = None, **kwargs: Any) -> Any:
    """The gymnasium env of `spec`. `randomization` is what randomizes it: a sampler (make_sampler, the pipeline's
    seeded choice), anything the env's `randomization=` takes (a preset name, a YAML path or dict: uniform draws),
    or None: unrandomized, whatever spec.randomization names. `kwargs` go to gym.make as well (render_mode,
    image_size, cameras, ...)."""
    import gymnasium as gym

    import sim  # noqa: F401  (registers the ids)

    extra = {"randomization": randomization} if randomization is not None else {}
    return gym.make(spec.env_id, **spec.kwargs(), **extra, **kwargs)


def task_class(spec: EnvSpec) -> Any:
    """The env class registered for the spec's task (its goal box is a class attribute)."""
    import gymnasium as gym

    import sim  # noqa: F401

    entry = gym.spec(spec.env_id).entry_point
    if callable(entry):
        return entry
    module, _, name = str(entry).partition(":")
    return getattr(__import__(module, fromlist=[name]), name)
