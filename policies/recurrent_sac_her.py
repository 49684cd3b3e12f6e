"""Recurrent SAC + HER (`--agent recurrent_sac_her`): an off-policy LSTM agent with hindsight goals, which neither
SB3 nor sb3-contrib offers (their only recurrent agent, RecurrentPPO, is on-policy; recurrent SAC is sb3-contrib
issue #201).

The networks and the update are policies.recurrent_sac, the replay policies.sequence_replay (R2D2's stored states
and burn-in, one relabelled goal per sequence). This module is the agent the pipeline drives as it drives SB3's:
`learn` with an SB3 callback, `predict` with a recurrent state (RecurrentPPO's signature), `save` / `load`,
`save_replay_buffer` / `load_replay_buffer`. It takes the pipeline's VecEnv of one env, wrapped or not in
VecNormalize: the replay keeps raw observations (relabelling needs raw goals) and normalises when it samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch as th

from policies.recurrent_sac import RecurrentSAC, RecurrentSACConfig, sequence_tensors
from policies.sequence_replay import SequenceReplay, SequenceSpec

#: Episode length of the tasks (their TimeLimit): the replay's row length.
MAX_EPISODE_STEPS = 50
#: Stored states of the sampled episodes are recomputed with the current networks every this many updates.
REFRESH_EVERY_UPDATES = 50


class ExportPolicy(th.nn.Module):
    """The actor's deterministic step for export: `lstm_actor` (the exporter reads its layers and width for the
    state inputs) and recurrent_step(obs, (h, c)) -> (action, (h, c)) on normalised observation dicts."""

    def __init__(self, net: RecurrentSAC) -> None:
        super().__init__()
        self.actor = net.actor
        self.lstm_actor = net.actor.lstm

    def recurrent_step(self, obs: dict[str, th.Tensor], state: tuple[th.Tensor, th.Tensor]) -> tuple[th.Tensor, Any]:
        x = th.cat([obs["observation"], obs["achieved_goal"], obs["desired_goal"]], dim=-1).unsqueeze(1)
        feats, state = self.actor.features(x, state)
        return self.actor.deterministic(feats[:, 0]), state


class RecurrentSACHER:
    """Recurrent SAC with HER on sequences. Settings: SB3's names where they exist (batch_size counts sequences)."""

    def __init__(
        self,
        policy: str,
        env: Any,
        seed: int = 0,
        tensorboard_log: str | None = None,
        device: str = "auto",
        verbose: int = 0,
        learning_rate: float = 1e-3,
        buffer_size: int = 1_000_000,
        learning_starts: int = 1000,
        batch_size: int = 32,
        gamma: float = 0.95,
        tau: float = 0.05,
        train_freq: int = 4,
        gradient_steps: int = 1,
        burn_in: int = 10,
        train_window: int = 20,
        action_noise: Any = None,
        policy_kwargs: dict[str, Any] | None = None,
        replay_buffer_class: Any = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        _init_setup_model: bool = True,
    ) -> None:
        if device not in ("auto", "cpu"):
            raise ValueError(f"recurrent_sac_her runs on the CPU; device {device!r} is not supported yet")
        if getattr(env, "num_envs", 1) != 1:
            raise ValueError("recurrent_sac_her steps one env (n_envs 1)")
        self.policy_name, self.seed, self.verbose = policy, seed, verbose
        self.tensorboard_log, self.device = tensorboard_log, th.device("cpu")
        self.learning_rate, self.batch_size, self.gamma, self.tau = learning_rate, batch_size, gamma, tau
        self.learning_starts, self.train_freq, self.gradient_steps = learning_starts, train_freq, gradient_steps
        self.buffer_size, self.burn_in, self.train_window = buffer_size, burn_in, train_window
        self.action_noise = action_noise
        self.policy_kwargs = dict(policy_kwargs or {})
        her = dict(replay_buffer_kwargs or {})
        self.n_sampled_goal = int(her.pop("n_sampled_goal", 4))
        self.goal_strategy = str(her.pop("goal_selection_strategy", "future"))
        slice_ = her.pop("goal_relative_slice", None)
        self.goal_relative_slice = None if slice_ is None else (int(slice_[0]), int(slice_[1]))
        her.pop("copy_info_dict", None)
        her.pop("gamma", None)  # what build_agent adds for n-step returns, refused below with them
        if her:
            raise ValueError(f"recurrent_sac_her: HER settings {sorted(her)} are not supported; it takes "
                             "n_sampled_goal and goal_selection_strategy")  # fmt: skip
        self.env: Any = None
        self.num_timesteps, self.n_updates = 0, 0
        self.logger: Any = None
        self.replay_buffer: SequenceReplay | None = None
        if env is not None:
            self.set_env(env)
        if _init_setup_model:
            self._setup_model()

    # -- construction ----------------------------------------------------------------------------------------
    def set_env(self, env: Any) -> None:
        space = env.observation_space
        self.obs_dim = int(space["observation"].shape[0])
        self.goal_dim = int(space["desired_goal"].shape[0])
        self.act_dim = int(env.action_space.shape[0])
        self.observation_space, self.action_space = space, env.action_space
        self.env = env
        self._last_obs: dict[str, np.ndarray] | None = None

    def get_env(self) -> Any:
        return self.env

    def _setup_model(self) -> None:
        th.manual_seed(self.seed)
        np.random.seed(self.seed)  # noqa: NPY002  (as SB3: exploration and replay draw from the global generator)
        net_arch = self.policy_kwargs.get("net_arch", [256, 256])
        cfg = RecurrentSACConfig(lstm_hidden=int(self.policy_kwargs.get("lstm_hidden_size", 128)),
                                 head=tuple(int(w) for w in net_arch), gamma=self.gamma, tau=self.tau,
                                 learning_rate=self.learning_rate)  # fmt: skip
        self.net = RecurrentSAC(self.obs_dim + 2 * self.goal_dim, self.act_dim, cfg)
        self.replay_buffer = SequenceReplay(
            max(1, self.buffer_size // MAX_EPISODE_STEPS), MAX_EPISODE_STEPS, self.obs_dim, self.goal_dim,
            self.act_dim, self.net.state_dim, SequenceSpec(self.burn_in, self.train_window, self.train_window),
            her_ratio=self.n_sampled_goal / (self.n_sampled_goal + 1), goal_strategy=self.goal_strategy,
            seed=self.seed,
        )  # fmt: skip

    # -- acting ------------------------------------------------------------------------------------------------
    def _x(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        parts = [obs["observation"], obs["achieved_goal"], obs["desired_goal"]]
        return np.concatenate(parts, axis=-1).reshape(-1, self.net.in_dim)

    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: np.ndarray | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Actions for (already normalised) observations and the recurrent state after them (B, state_dim); a None
        state or episode_start True starts from the zero state, as every episode does."""
        x = self._x(observation)
        flat = np.zeros((x.shape[0], self.net.state_dim), np.float32) if state is None else np.array(state, np.float32)
        if episode_start is not None:
            flat[np.asarray(episode_start, bool).reshape(-1)] = 0.0
        action, nxt = self.net.act(x, th.as_tensor(flat), deterministic)
        single = np.ndim(observation["observation"]) == 1
        return (action[0] if single else action), nxt.numpy()

    @property
    def policy(self) -> ExportPolicy:
        """The deterministic acting path as the exporter traces it (policies.export: LSTM state in and out)."""
        return ExportPolicy(self.net)

    # -- learning ------------------------------------------------------------------------------------------------
    def _raw(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The observations the env gave before normalisation (exact: VecNormalize keeps them)."""
        original = getattr(self.env, "get_original_obs", None)
        return original() if original is not None else obs

    def _normalize(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        normalize = getattr(self.env, "normalize_obs", None)
        return normalize(obs) if normalize is not None else obs

    def learn(self, total_timesteps: int, callback: Any = None, reset_num_timesteps: bool = True,
              tb_log_name: str = "run", progress_bar: bool = False) -> RecurrentSACHER:  # fmt: skip
        """Collect and learn for `total_timesteps` more env steps (the SB3 callback sees every step)."""
        from stable_baselines3.common.logger import configure

        if reset_num_timesteps:
            self.num_timesteps = 0
        if self.logger is None:
            folder = None if self.tensorboard_log is None else str(Path(self.tensorboard_log) / f"{tb_log_name}_1")
            self.logger = configure(folder, ["tensorboard"] if folder else [""])
        target = self.num_timesteps + int(total_timesteps)
        if callback is not None:
            callback.init_callback(self)
            callback.on_training_start(locals(), globals())
        obs = self.env.reset()
        state = np.zeros((1, self.net.state_dim), np.float32)
        episode: dict[str, list[Any]] = {k: [] for k in ("obs", "ag", "action", "state")}
        raw = self._raw(obs)
        while self.num_timesteps < target:
            action, nxt = self.predict({k: v for k, v in obs.items()}, state)
            if self.num_timesteps < self.learning_starts:
                action = np.random.uniform(-1, 1, action.shape).astype(np.float32)  # noqa: NPY002
            elif self.action_noise is not None:
                action = np.clip(action + self.action_noise(), -1, 1)
            episode["obs"].append(raw["observation"][0])
            episode["ag"].append(raw["achieved_goal"][0])
            episode["action"].append(np.asarray(action, np.float32).reshape(-1))
            episode["state"].append(state[0])
            obs, _, dones, infos = self.env.step(np.asarray(action, np.float32).reshape(1, -1))
            state = nxt
            self.num_timesteps += 1
            if dones[0]:
                final = infos[0]["terminal_observation"]
                if hasattr(self.env, "unnormalize_obs"):  # VecNormalize hands it normalised
                    final = self.env.unnormalize_obs(final)
                self._store(episode, raw["desired_goal"][0], final, bool(dones[0]) and not
                            infos[0].get("TimeLimit.truncated", False))  # fmt: skip
                episode = {k: [] for k in episode}
                state = np.zeros_like(state)
                if self.action_noise is not None:
                    self.action_noise.reset()
            raw = self._raw(obs)
            if callback is not None:
                callback.update_locals(locals())
                if not callback.on_step():
                    break
            if self.num_timesteps >= self.learning_starts and self.num_timesteps % self.train_freq == 0 \
                    and self.replay_buffer is not None and self.replay_buffer.size:  # fmt: skip
                for _ in range(self.gradient_steps):
                    self._update()
        if callback is not None:
            callback.on_training_end()
        return self

    def _store(self, ep: dict[str, list[Any]], goal: np.ndarray, final: dict[str, Any], terminated: bool) -> None:
        assert self.replay_buffer is not None
        obs = np.stack([*ep["obs"], np.asarray(final["observation"]).reshape(-1)])
        ag = np.stack([*ep["ag"], np.asarray(final["achieved_goal"]).reshape(-1)])
        self.replay_buffer.add_episode(obs, ag, goal, np.stack(ep["action"]), terminated, np.stack(ep["state"]))

    def _compute_reward(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        return np.asarray(self.env.env_method("compute_reward", achieved, desired, None, indices=[0])[0])

    def _normalized_batch(self, batch: Any) -> Any:
        """The sampled sequences in the policy's input space: the goal-relative slice rewritten for each sequence's
        goal (layout 2), then the observation normaliser (raw values are what the replay keeps)."""
        goal = batch.desired_goal
        for obs_key, ag_key in (("observation", "achieved_goal"), ("next_observation", "next_achieved_goal")):
            vec, ag = getattr(batch, obs_key), getattr(batch, ag_key)
            if self.goal_relative_slice is not None:
                a, b = self.goal_relative_slice
                vec = vec.copy()
                vec[..., a:b] = goal - ag
            normed = self._normalize({"observation": vec, "achieved_goal": ag, "desired_goal": goal})
            setattr(batch, obs_key, normed["observation"])
            setattr(batch, ag_key, normed["achieved_goal"])
        batch.desired_goal = normed["desired_goal"]
        return batch

    def _update(self) -> None:
        assert self.replay_buffer is not None
        batch = self.replay_buffer.sample(self.batch_size, self._compute_reward)
        episodes = batch.episode
        stats = self.net.update(sequence_tensors(self._normalized_batch(batch)))
        self.n_updates += 1
        if self.n_updates % REFRESH_EVERY_UPDATES == 0:
            self.replay_buffer.refresh_states(episodes, self._unroll_states)
        if self.n_updates % 1000 == 0 and self.logger is not None:
            for k, v in stats.items():
                self.logger.record(f"train/{k}", v)
            self.logger.dump(self.num_timesteps)

    def _unroll_states(self, observation: np.ndarray, achieved: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Every network's state before each step of a stored episode (raw observations), from the zero state."""
        obs = {"observation": observation, "achieved_goal": achieved,
               "desired_goal": np.repeat(goal[None], len(observation), axis=0)}  # fmt: skip
        x = self._x(self._normalize(obs))
        state = th.zeros(1, self.net.state_dim)
        out = np.zeros((len(x), self.net.state_dim), np.float32)
        for t in range(len(x)):
            out[t] = state[0].numpy()
            _, state = self.net.act(x[t : t + 1], state, deterministic=True)
        return out

    # -- files ------------------------------------------------------------------------------------------------------
    _SETTINGS = ("policy_name", "seed", "learning_rate", "buffer_size", "learning_starts", "batch_size", "gamma",
                 "tau", "train_freq", "gradient_steps", "burn_in", "train_window", "policy_kwargs",
                 "n_sampled_goal", "goal_strategy", "goal_relative_slice", "num_timesteps", "n_updates")  # fmt: skip

    def save(self, path: str | Path) -> None:
        """Settings, networks and optimisers in one torch file (the replay goes to save_replay_buffer)."""
        net = self.net
        nets = {"net": net.state_dict(), "actor_opt": net.actor_opt.state_dict(),
                "critic_opt": net.critic_opt.state_dict(), "alpha_opt": net.alpha_opt.state_dict()}  # fmt: skip
        th.save({"settings": {k: getattr(self, k) for k in self._SETTINGS}, **nets}, str(path))

    @classmethod
    def load(cls, path: str | Path, env: Any = None, device: str = "auto") -> RecurrentSACHER:
        data = th.load(str(path), weights_only=True)  # tensors and plain values: nothing executes
        s = dict(data["settings"])
        her = {"n_sampled_goal": s.pop("n_sampled_goal"), "goal_selection_strategy": s.pop("goal_strategy")}
        if s["goal_relative_slice"] is not None:
            her["goal_relative_slice"] = list(s["goal_relative_slice"])
        s.pop("goal_relative_slice")
        steps, updates = s.pop("num_timesteps"), s.pop("n_updates")
        model = cls(s.pop("policy_name"), env, device=device, replay_buffer_kwargs=her, _init_setup_model=False, **s)
        if env is None:
            raise ValueError("recurrent_sac_her.load needs the env (its spaces size the networks)")
        model._setup_model()
        model.net.load_state_dict(data["net"])
        for name in ("actor_opt", "critic_opt", "alpha_opt"):
            getattr(model.net, name).load_state_dict(data[name])
        model.num_timesteps, model.n_updates = steps, updates
        return model

    def save_replay_buffer(self, path: str | Path) -> None:
        if self.replay_buffer is None:
            raise ValueError("recurrent_sac_her has no replay to save before its model is set up")
        self.replay_buffer.save(path)

    def load_replay_buffer(self, path: str | Path) -> None:
        """The replay saved beside a checkpoint; ValueError naming the file when it does not fit this agent."""
        loaded = SequenceReplay.load(path)
        if self.replay_buffer is not None:
            for name in SequenceReplay.ARRAYS:
                have, want = getattr(loaded, name).shape, getattr(self.replay_buffer, name).shape
                if have != want:
                    raise ValueError(f"{path}: replay array {name} has shape {have}, this agent's replay {want}")
        self.replay_buffer = loaded
