"""Sweep files: the pydantic models of ``configs/sweeps/NAME.yaml``.

A sweep file (safe-loaded by :func:`~megapod_gym.config.yaml_reader.read_config_yaml`)::

    name: paper                      # default: the file name
    sweep_seed: 0                    # derives every trial's seed and the random search draws
    base:                            # training keys for every trial: a YAML path and/or inline keys
      config: configs/train/ppo.yaml
      eval: {n_episodes: 5}
    algos:                           # optional grid over algorithms: algo -> its base YAML
      ppo: configs/train/ppo.yaml    #   (a path, {config: PATH, inline keys...}, or null for
      sac: {config: configs/train/sac.yaml, n_timesteps: 1e6}   #  configs/train/ALGO.yaml)
    scenarios: [urban-12stall-bev, ercot-rt-summer]             # grid; "all" = every named preset
    seeds: 3                         # replicates per configuration (or a list of explicit seeds)
    space:                           # hyperparameters: constants or one of
      learning_rate: {loguniform: [1e-5, 1e-3]}   # grid, choice, uniform, quniform, loguniform,
      n_epochs: {grid: [5, 10]}                   # randint, lograndint; nested mappings work too
    num_samples: 1                   # draws of the random dimensions (the grid is crossed with them)
    resources_per_trial: {cpu: 1}    # optional gpu
    max_concurrent_trials: null
    max_failures: 0                  # retries of a failed trial (from its last checkpoint)
    scheduler: none                  # or {type: asha, max_t: 2e6, grace_period: 2e5, reduction_factor: 3}
    metric: eval/normalized_score    # or eval/profit_usd, eval/pct_of_optimum
    mode: max
    final_benchmark: true            # each trial's eval/ comparison against every baseline

Training keys merge in this order (mappings merge key by key): the algorithm's YAML, ``base``'s
inline keys, the algorithm entry's inline keys, the sampled ``space`` values.

Validation has two steps. :class:`SweepFile` (pydantic, on :class:`StrictModel` like every other
config) checks the file's own keys: types, ranges, search-space dimensions.
:func:`agents.sweeps.spec.parse_sweep` then resolves it to a :class:`~agents.sweeps.spec.SweepSpec`:
reads the training YAMLs, checks the scenarios, and validates the training config of every
algorithm with every value each dimension can take, so a bad sweep fails before any trial starts.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from agents.evaluation.rollout import TRAIN_SEED_LIMIT
from agents.training.config import ALGOS
from megapod_gym.config import scenario_names
from megapod_gym.config.strict_model import StrictModel

Metric = Literal["eval/normalized_score", "eval/profit_usd", "eval/pct_of_optimum"]
ORACLE_METRICS = ("eval/normalized_score", "eval/pct_of_optimum")
AlgoName = Literal[tuple(ALGOS)]  # type: ignore[valid-type]
DOMAINS: dict[str, str] = {
    "grid": "a non-empty list of values",
    "choice": "a non-empty list of values",
    "uniform": "[low, high] with low < high",
    "quniform": "[low, high, q] with low < high and q > 0",
    "loguniform": "[low, high] with 0 < low < high",
    "randint": "[low, high] integers with low < high (high excluded)",
    "lograndint": "[low, high] integers with 0 < low < high (high excluded)",
}
# Training keys whose values are mappings (a one-key mapping there is not a search-space typo).
MAPPING_KEYS = {"policy_kwargs", "eval", "normalize", "config_overrides"}
# Keys the sweep sets itself: space.KEY -> the top-level key to use instead.
RESERVED_SPACE_KEYS = {"algo": "algos", "scenario": "scenarios", "replicate": "seeds"}
_SCI = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")  # 1e-5: a string to PyYAML's YAML 1.1


class SweepError(ValueError):
    """A sweep cannot run; the message says why (and names the key for a bad sweep file)."""


def _error_at(loc: tuple[str | int, ...], message: str, value: Any) -> ValidationError:
    """A validation error at ``loc`` (relative to the field or model raising it)."""
    return ValidationError.from_exception_data(
        "sweep",
        [InitErrorDetails(type=PydanticCustomError("sweep", message), loc=loc, input=value)],
    )


def _number(value: Any) -> Any:
    """Numbers only (inside lists and tuples too, where StrictModel's field check does not look)."""
    if isinstance(value, (bool, str)):
        raise ValueError(
            f"must be a number, not {'a boolean' if isinstance(value, bool) else 'a string'}"
        )
    return value


Real = Annotated[float, BeforeValidator(_number)]
Int = Annotated[int, BeforeValidator(_number)]
Seed = Annotated[Int, Field(ge=0, lt=TRAIN_SEED_LIMIT)]


# ----------------------------------------------------------------------------- search space
@dataclasses.dataclass(frozen=True)
class Dim:
    """One search-space dimension written in YAML as ``{op: args}``."""

    op: str
    args: tuple[Any, ...]

    def to_yaml(self) -> dict[str, list[Any]]:
        return {self.op: list(self.args)}

    def values(self) -> list[Any]:
        """Values used to validate the dimension before the sweep starts."""
        if self.op in ("grid", "choice"):
            return list(self.args)
        low, high = self.args[0], self.args[1]
        if self.op in ("randint", "lograndint"):
            return [int(low), int(high) - 1]
        return [low, high]


def _args(op: str) -> Any:
    """``{op: args}``'s args: shape first (one message naming the expected form), then each
    number, then the order of the bounds."""
    n = 3 if op == "quniform" else 2

    def shape(value: Any) -> Any:
        ok = isinstance(value, (list, tuple)) and (
            len(value) > 0 if op in ("grid", "choice") else len(value) == n
        )
        if not ok:
            raise ValueError(f"expected {DOMAINS[op]}")
        return value

    def bounds(args: tuple[Any, ...]) -> tuple[Any, ...]:
        low, high = args[0], args[1]
        if not low < high:
            raise ValueError(f"low must be below high; expected {DOMAINS[op]}")
        if op.startswith("log") and low <= 0:
            raise ValueError(f"low must be > 0 on a log scale; expected {DOMAINS[op]}")
        if op == "quniform" and args[2] <= 0:
            raise ValueError(f"q must be > 0; expected {DOMAINS[op]}")
        return args

    if op in ("grid", "choice"):
        return Annotated[tuple[Any, ...], BeforeValidator(shape)]
    number = Int if op.endswith("randint") else Real
    return Annotated[tuple[(number,) * n], BeforeValidator(shape), AfterValidator(bounds)]


# {op: args} as a one-field model per op, so errors read space.KEY.op[.i]
_DIMS: dict[str, type[StrictModel]] = {
    op: create_model(f"Dim_{op}", __base__=StrictModel, **{op: (_args(op), ...)}) for op in DOMAINS
}


def _space_node(value: Any) -> Any:
    """A space value: ``{op: args}`` -> :class:`Dim`, a mapping -> its nodes, else a constant."""
    if not isinstance(value, dict):
        return value
    ops = [k for k in value if k in DOMAINS]
    if ops and len(value) > 1:
        raise ValueError(f"a search-space type goes alone in its mapping: {{{ops[0]}: [...]}}")
    if ops:
        op = ops[0]
        return Dim(op, getattr(_DIMS[op].model_validate(value), op))
    return _NESTED_SPACE.validate_python(value)


SpaceNode = Annotated[Any, BeforeValidator(_space_node)]
_NESTED_SPACE: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, SpaceNode])


# ------------------------------------------------------------------------------ sweep file
class TrainRef(StrictModel):
    """Training keys: ``PATH``, or ``{config: PATH, inline keys...}``, or inline keys only. The
    inline keys are training keys (extra keys here), checked by the training config later."""

    model_config = ConfigDict(extra="allow")
    config: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _path(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"config": value}
        if not isinstance(value, dict):
            raise ValueError("expected a training YAML path or a mapping of training keys")
        return value

    @property
    def inline(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Resources(StrictModel):
    cpu: float = Field(1.0, gt=0.0)
    gpu: float = Field(0.0, ge=0.0)


class AshaScheduler(StrictModel):
    """Ray Tune's ASHA on the env step counter."""

    type: Literal["asha"]
    max_t: int = Field(ge=1)  # env steps
    grace_period: int = Field(ge=1)
    reduction_factor: int = Field(3, ge=2)

    @field_validator("grace_period")
    @classmethod
    def _within_max_t(cls, v: int, info: ValidationInfo) -> int:
        max_t = info.data.get("max_t")
        if max_t is not None and v > max_t:
            raise ValueError(f"must not exceed max_t ({max_t})")
        return v


def _seeds_kind(value: Any) -> str:
    return "list" if isinstance(value, list) else "replicates"


def _distinct(seeds: list[int]) -> list[int]:
    if len(set(seeds)) != len(seeds):
        raise ValueError("listed twice")
    return seeds


Seeds = Annotated[
    Annotated[Int, Field(ge=1), Tag("replicates")]
    | Annotated[list[Seed], Field(min_length=1), AfterValidator(_distinct), Tag("list")],
    Discriminator(_seeds_kind),
]


class SweepFile(StrictModel):
    """The keys of a sweep file, validated (training keys and scenarios are checked on resolution)."""

    name: str
    sweep_seed: int = Field(0, ge=0)
    base: TrainRef | None = None
    algos: Annotated[dict[AlgoName, TrainRef | None], Field(min_length=1)] | None = None
    scenarios: Annotated[list[str], Field(min_length=1)] | None = None
    seeds: Seeds | None = None
    space: dict[str, SpaceNode] = Field(default_factory=dict)
    num_samples: int = Field(1, ge=1)
    resources_per_trial: Resources = Resources()
    max_concurrent_trials: int | None = Field(None, ge=1)
    max_failures: int = Field(0, ge=0)
    scheduler: AshaScheduler | None = None
    metric: Metric = "eval/normalized_score"
    mode: Literal["max", "min"] = "max"
    final_benchmark: StrictBool = True

    @model_validator(mode="before")
    @classmethod
    def _numbers(cls, data: Any) -> Any:
        """``1e-5`` is a string to PyYAML (YAML 1.1): read it as the number it is, anywhere."""

        def coerce(node: Any) -> Any:
            if isinstance(node, str) and _SCI.match(node.strip()):
                return float(node)
            if isinstance(node, dict):
                return {k: coerce(v) for k, v in node.items()}
            if isinstance(node, list):
                return [coerce(v) for v in node]
            return node

        return coerce(data)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v):
            raise ValueError("use letters, digits, '.', '_' and '-'")
        return v

    @field_validator("scenarios", mode="before")
    @classmethod
    def _all_or_one(cls, v: Any) -> Any:
        if v == "all":
            return scenario_names()
        return [v] if isinstance(v, str) else v

    @field_validator("space", mode="before")
    @classmethod
    def _space_keys(cls, v: Any) -> Any:
        if not v:
            return {}
        if not isinstance(v, dict):
            raise ValueError("expected a mapping of training keys")
        for key, value in v.items():
            if key in RESERVED_SPACE_KEYS:
                raise _error_at(
                    (key,), f"use the top-level {RESERVED_SPACE_KEYS[key]!r} key", value
                )
            mapping_key = key in MAPPING_KEYS or str(key).endswith("_kwargs")
            if isinstance(value, dict) and len(value) == 1 and not mapping_key:
                op = next(iter(value))
                if op not in DOMAINS:
                    raise _error_at(
                        (key,),
                        f"unknown search-space type {op!r}; use one of {sorted(DOMAINS)} "
                        "(or a plain value)",
                        value,
                    )
        return v

    @field_validator("space")
    @classmethod
    def _seed_values(cls, v: dict[str, Any]) -> dict[str, Any]:
        if "seed" not in v:
            return v
        seed = v["seed"]
        if isinstance(seed, Dim) and seed.op not in ("grid", "choice", "randint", "lograndint"):
            raise _error_at(
                ("seed",), "seeds are integers: use grid, choice or (log)randint", seed.to_yaml()
            )
        for value in seed.values() if isinstance(seed, Dim) else [seed]:
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 0 <= value < TRAIN_SEED_LIMIT
            ):
                raise _error_at(
                    ("seed",), f"seeds must be integers in [0, {TRAIN_SEED_LIMIT})", value
                )
        return v

    @field_validator("scheduler", mode="before")
    @classmethod
    def _no_scheduler(cls, v: Any) -> Any:
        if v in (None, "none", "fifo"):
            return None
        if not isinstance(v, dict):
            raise ValueError("expected none, fifo or {type: asha, max_t, grace_period}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> SweepFile:
        if "seed" in self.space and self.seeds is not None:
            raise _error_at(
                ("seeds",), "set seeds either with 'seeds' or with space.seed, not both", self.seeds
            )
        if self.algos is not None and self.base is not None and self.base.config is not None:
            raise _error_at(
                ("base", "config"),
                "with algos, each algorithm's YAML goes under algos (base keeps inline keys for "
                "every algorithm)",
                self.base.config,
            )
        return self
