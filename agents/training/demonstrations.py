"""Expert demonstrations: observations and the expert's actions on training days, cached on disk.

An expert (MPC or any rule, by name) runs on ``n_days`` training traces in one batch. Half the days
(``noisy_frac``) are *perturbed executions*: the env receives the expert's action plus Gaussian
noise (σ = ``noise_std`` in action units, clipped to [-1, 1]) while the recorded label stays the
expert's clean action, so the cloned policy also learns how the expert recovers from states it
would not reach itself (DART-style noise injection). Observations are the env's own encoded
features (the project's fixed scaling), which is what the cloned policy sees at run time.

Training days use trace seeds ``DEMO_SEED_BASE + i`` (below the training seed limit, disjoint from
the held-out validation and test seeds).

**DAgger** (:func:`collect_demonstrations` with an ``executor``): a learner (the cloned policy)
drives the site while the expert labels every state it visits, so the data covers the states the
clone actually reaches, not only the expert's own. MPC labels such states correctly: it reads the
state from the observation and reconstructs its demand-charge bookkeeping from the applied
setpoints, whoever chose them. :mod:`agents.training.pretrain` runs the rounds.

Which expert to clone (``expert: auto``) is decided by :mod:`agents.training.pretrain`, which
judges the clones on selection days (``SELECT_SEED_BASE``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from agents.evaluation.rollout import DEMO_SEED_BASE, MAX_DEMO_DAYS
from agents.policies.base import Policy, PolicyContext
from agents.policies.registry import make_policy
from agents.policies.trained import actor_obs
from megapod_gym.config import ScenarioConfig
from megapod_gym.envs.vector_env import MegapodVectorEnv
from megapod_gym.sim import layout as L

CACHE_VERSION = 1


@dataclass(frozen=True)
class Demonstrations:
    """Expert transitions: ``obs [N, F]`` (encoded) and clean expert ``actions [N, A]`` in [-1, 1].

    Rows are whole days in order: day ``i`` (seed ``seeds[i]``) fills rows
    ``i * steps_per_day`` to ``(i + 1) * steps_per_day - 1``."""

    obs: np.ndarray
    actions: np.ndarray
    expert: str
    seeds: tuple[int, ...]
    profit_usd: float  # mean episode profit of the clean expert days

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    @property
    def steps_per_day(self) -> int:
        """Steps of each day (rows / days)."""
        n_days = len(self.seeds)
        if n_days == 0 or len(self) % n_days:
            raise ValueError(f"{len(self)} rows do not split into {n_days} whole days")
        return len(self) // n_days


def cache_dir() -> Path:
    """``$MEGAPOD_CACHE/demos`` (default ``~/.cache/megapod-gym/demos``)."""
    root = os.environ.get("MEGAPOD_CACHE") or Path.home() / ".cache" / "megapod-gym"
    return Path(root) / "demos"


def collect_demonstrations(
    config: ScenarioConfig,
    expert: str,
    n_days: int = 128,
    noisy_frac: float = 0.5,
    noise_std: float = 0.15,
    seed: int = 0,
    jobs: int = 1,
    progress: bool = True,
    executor: Policy | None = None,
    first_day: int = 0,
) -> Demonstrations:
    """Run ``expert`` on ``n_days`` training traces and record (obs, clean action) at every step.

    The last ``round(noisy_frac * n_days)`` days are perturbed executions. ``jobs`` worker
    processes share the days (the result does not depend on ``jobs``: each day's noise comes from
    its own generator seeded by ``(seed, day)``). With an ``executor`` (a picklable policy, e.g.
    :class:`ActorExecutor`), the executor's action (plus the noise on perturbed days) drives the
    site and the expert only labels (DAgger). Days are ``DEMO_SEED_BASE + first_day + i``.
    """
    if not 1 <= n_days <= MAX_DEMO_DAYS - first_day or first_day < 0:
        raise ValueError(
            f"n_days must be in [1, {MAX_DEMO_DAYS - first_day}] and first_day >= 0 "
            f"(got n_days={n_days}, first_day={first_day})"
        )
    if not 0.0 <= noisy_frac <= 1.0:
        raise ValueError(f"noisy_frac must be in [0, 1] (got {noisy_frac})")
    if not 0.0 <= noise_std <= 1.0:
        raise ValueError(f"noise_std must be in [0, 1] (got {noise_std})")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1 (got {jobs})")
    seeds = [DEMO_SEED_BASE + first_day + i for i in range(n_days)]
    noisy = [i >= n_days - int(round(noisy_frac * n_days)) for i in range(n_days)]
    chunks = [list(range(n_days))[j::jobs] for j in range(min(jobs, n_days))]
    args = [
        (
            config,
            expert,
            [seeds[i] for i in c],
            [noisy[i] for i in c],
            noise_std,
            seed,
            progress and j == 0,
            executor,
        )
        for j, c in enumerate(chunks)
    ]
    if len(chunks) == 1:
        parts = [_collect(*args[0])]
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(len(chunks)) as pool:
            parts = list(pool.map(_collect, *zip(*args)))
    obs = np.zeros((n_days,) + parts[0][0].shape[1:], dtype=np.float32)
    act = np.zeros((n_days,) + parts[0][1].shape[1:], dtype=np.float32)
    profit = np.zeros(n_days)
    for c, (o, a, p) in zip(chunks, parts):
        obs[c], act[c], profit[c] = o, a, p
    clean = ~np.asarray(noisy)
    return Demonstrations(
        obs.reshape(-1, obs.shape[2]),
        act.reshape(-1, act.shape[2]),
        expert,
        tuple(seeds),
        float(profit[clean].mean()) if clean.any() else float("nan"),
    )


def _collect(
    config: ScenarioConfig,
    expert: str,
    seeds: list[int],
    noisy: list[bool],
    noise_std: float,
    seed: int,
    progress: bool,
    executor: Policy | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(obs [days, T, F], actions [days, T, A], profit [days]) of one batch of days."""
    policy = make_policy(expert)
    n = len(seeds)
    venv = MegapodVectorEnv(num_envs=n, scenario=config, info_keys=())
    obs, _ = venv.reset(seed=seeds)
    trace = venv.sampler.sample(seeds)
    context = PolicyContext(venv.config, trace, venv.encoder, venv.decoder)
    policy.reset(context)
    if executor is not None:
        executor.reset(context)
    rngs = [np.random.default_rng([seed, s]) for s in seeds]
    mask = np.asarray(noisy)
    T = venv.sim.n_steps
    n_act = venv.single_action_space.shape[0]
    obs_log = np.zeros((n, T, obs.shape[1]), dtype=np.float32)
    act_log = np.zeros((n, T, n_act), dtype=np.float32)
    profit_usd = np.zeros(n)
    total = L.OUT_INDEX["total_usd"]
    desc = f"demos ({expert}{', learner drives' if executor is not None else ''})"
    for t in tqdm(range(T), desc=desc, disable=not progress, mininterval=2.0):
        action = np.clip(np.asarray(policy.act(obs), dtype=np.float32), -1.0, 1.0)
        obs_log[:, t], act_log[:, t] = obs, action
        executed = (
            action.copy()
            if executor is None
            else np.clip(np.asarray(executor.act(obs), dtype=np.float32), -1.0, 1.0)
        )
        for i in np.flatnonzero(mask):
            executed[i] += rngs[i].normal(0.0, noise_std, n_act).astype(np.float32)
        obs, _, _, _, _ = venv.step(np.clip(executed, -1.0, 1.0))
        profit_usd += venv.sim.out[:, total]
    venv.close()
    return obs_log, act_log, profit_usd


class ActorExecutor:
    """The deterministic action of an SB3 model's actor as a picklable policy (for worker
    processes): a CPU copy of the policy network, one torch thread per process. A recurrent
    actor's LSTM state starts afresh at :meth:`reset` (a day's first step) and runs through the day."""

    def __init__(self, model: Any) -> None:
        import copy

        self.policy = copy.deepcopy(model.policy).to("cpu")
        self._state: Any = None
        self._start = True

    def reset(self, context: PolicyContext) -> None:
        import torch

        torch.set_num_threads(1)
        self._state, self._start = None, True

    def act(self, obs: np.ndarray) -> np.ndarray:
        # the policy's observation space is the model's (privileged features padded, never read)
        x = actor_obs(self.policy, obs)
        action, self._state = self.policy.predict(
            x,
            state=self._state,
            episode_start=np.full(x.shape[0], self._start),
            deterministic=True,
        )
        self._start = False
        return np.asarray(action, dtype=np.float32)


@functools.lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    """SHA-256 of the source files that decide what an expert does on a day, read once per
    process (the code a process runs is the code it imported, even if files change later)."""
    import agents
    import megapod_gym

    h = hashlib.sha256()
    roots = [Path(megapod_gym.__file__).parent, Path(agents.__file__).parent]
    files = sorted(
        [
            *roots[0].rglob("*.py"),
            *(roots[1] / "optim").rglob("*.py"),
            roots[1] / "policies" / "rules.py",
        ]
    )
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()


def demonstrations(
    config: ScenarioConfig,
    expert: str,
    n_days: int = 128,
    noisy_frac: float = 0.5,
    noise_std: float = 0.15,
    seed: int = 0,
    jobs: int = 1,
    progress: bool = True,
    cache: bool = True,
) -> Demonstrations:
    """:func:`collect_demonstrations`, read from / written to :func:`cache_dir` when ``cache``.

    The cache key covers the resolved scenario, the expert, every collection setting and the
    source of the simulator, the rules and the optimizers, so a changed scenario, simulator or
    expert never reuses stale data.
    """

    key_src = json.dumps(
        {
            "v": CACHE_VERSION,
            "code": _code_fingerprint(),
            "scenario": config.model_dump(mode="json"),
            "expert": expert,
            "n_days": n_days,
            "noisy_frac": noisy_frac,
            "noise_std": noise_std,
            "seed": seed,
        },
        sort_keys=True,
    )
    path = (
        cache_dir()
        / f"{config.name}-{expert}-{hashlib.sha256(key_src.encode()).hexdigest()[:16]}.npz"
    )
    if cache and path.is_file():
        with np.load(path) as z:
            return Demonstrations(
                z["obs"],
                z["actions"],
                expert,
                tuple(int(s) for s in z["seeds"]),
                float(z["profit_usd"]),
            )
    demos = collect_demonstrations(
        config, expert, n_days, noisy_frac, noise_std, seed, jobs, progress
    )
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        # a name of this process's own: runs started side by side may collect the same days, and
        # a shared temporary file would be renamed away under the other writer
        tmp = path.with_name(f"{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp.npz")
        np.savez_compressed(
            tmp,
            obs=demos.obs,
            actions=demos.actions,
            seeds=np.asarray(demos.seeds),
            profit_usd=demos.profit_usd,
        )
        os.replace(tmp, path)
    return demos
