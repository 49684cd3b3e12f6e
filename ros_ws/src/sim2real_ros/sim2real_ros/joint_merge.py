"""JointState messages merged by joint name, as real drivers publish them: franka_ros2 sends only the seven arm
joints on `joint_states` and the fingers on the gripper's own topic (or not at all); a robot with several joint
state broadcasters sends partial messages on one topic. Each joint keeps its newest value and when it came; the arm
and the fingers are judged as groups (complete? fresh?), so one silent broadcaster makes its group stale."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim2real_ros.messages import MessageError, check_joint_state_shape


@dataclass(frozen=True)
class Reading:
    """The arm and finger joints one message carried, with their positions and velocities (zeros when it had none)."""

    names: list[str]
    q: np.ndarray
    qd: np.ndarray

    def of(self, group: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The group's joints in this reading and their positions."""
        wanted = set(group)
        keep = [k for k, n in enumerate(self.names) if n in wanted]
        return [self.names[k] for k in keep], self.q[keep]


class JointMerger:
    """The newest position and velocity of each arm and finger joint, from any number of JointState sources."""

    def __init__(self, arm: Sequence[str], fingers: Sequence[str]) -> None:
        self.arm, self.fingers = list(arm), list(fingers)
        self._arm = set(self.arm)
        self._index = {n: i for i, n in enumerate(self.arm + self.fingers)}
        n = len(self._index)
        self.q = np.full(n, np.nan)
        self.qd = np.full(n, np.nan)
        self.steady_s = np.full(n, -math.inf)
        """When each joint last arrived (steady clock); -inf: never."""

    def read(self, topic: str, names: Sequence[str], position: Sequence[float], velocity: Sequence[float]) -> Reading:
        """One JointState's arm and finger joints (others are ignored), not taken yet. MessageError for duplicate
        names, mismatched lengths, non-finite values of our joints, and arm joints without velocities (the policy
        observes joint speeds)."""
        names = check_joint_state_shape(topic, names, position, velocity)
        src = [i for i, n in enumerate(names) if n in self._index]
        carried = [names[i] for i in src]
        q = np.asarray(position, float)[src] if src else np.zeros(0)
        qd = np.asarray(velocity, float)[src] if src and len(velocity) else np.zeros(len(src))
        if not len(velocity) and any(n in self._arm for n in carried):
            raise MessageError(f"{topic} has no velocities; the policy observes joint speeds")
        bad = [n for n, a, b in zip(carried, q, qd) if not (math.isfinite(a) and math.isfinite(b))]
        if bad:
            raise MessageError(f"{topic} holds non-finite values for {bad}")
        return Reading(carried, q, qd)

    def take(self, reading: Reading, steady_s: float) -> None:
        """Keep a reading's values as the newest of its joints."""
        idx = [self._index[n] for n in reading.names]
        self.q[idx], self.qd[idx], self.steady_s[idx] = reading.q, reading.qd, steady_s

    def missing(self, group: Sequence[str]) -> list[str]:
        """The group's joints that never arrived."""
        return [n for n in group if self.steady_s[self._index[n]] == -math.inf]

    def age_s(self, group: Sequence[str], steady_s: float) -> float:
        """How long ago the group's oldest joint arrived (inf when one never did; 0 for an empty group)."""
        if not group:
            return 0.0
        return steady_s - float(min(self.steady_s[self._index[n]] for n in group))

    def values(self, group: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The group's newest positions and velocities, in its order (NaN for joints that never arrived)."""
        idx = [self._index[n] for n in group]
        return self.q[idx].copy(), self.qd[idx].copy()
