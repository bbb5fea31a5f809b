"""Fleet configuration: K Megapod sites sharing one pool of deferrable training jobs.

A fleet YAML file (``megapod_gym/presets/fleets/*.yaml``, also ``configs/fleets/``)::

    name: tri-tz-3site
    episode: {days: 1, step_min: 5}        # applied to every site (they step in lockstep)
    sites:
      - {scenario: caiso-rt-spring, utc_offset_h: -8}
      - {scenario: urban-12stall-bev, utc_offset_h: -5, overrides: {battery.energy_kwh: 0}}
      - {scenario: ercot-rt-summer, utc_offset_h: 1, count: 2}     # two copies
    jobs: {load_factor: 0.8, deadline_h: [4, 24]}
    network: {bandwidth_gbps: 10}
    outages: {rate_per_site_day: 0.02, scheduled: [{site: 1, start_h: 10, duration_h: 3}]}

Every site keeps its own scenario (tariff, real-time market, chargers, battery, IT size, local
inference demand); in a fleet its training work comes from the shared job pool instead of its own
backlog, valued at ``jobs.value_usd_per_kwh``. The fleet episode starts at UTC midnight: a site at
``utc_offset_h = -8`` starts its episode at 16:00 local time of the previous day.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator

from megapod_gym.config.loading import (
    ConfigError,
    deep_merge,
    expand_dotted,
    format_validation_error,
    load_scenario,
    preset_path,
    preset_root,
)
from megapod_gym.config.schema import EpisodeConfig, ScenarioConfig
from megapod_gym.config.strict_model import StrictModel
from megapod_gym.config.yaml_reader import YamlConfigError, read_config_yaml

DEFAULT_FLEET = "tri-tz-3site"

NonNeg = Annotated[float, Field(ge=0.0)]


class FleetSite(StrictModel):
    """One site entry: a scenario (preset name or YAML path), overrides, and its time zone."""

    scenario: str
    overrides: dict[str, Any] = {}
    utc_offset_h: float = Field(0.0, ge=-12.0, le=14.0)  # local time = UTC + offset
    count: int = Field(1, ge=1, le=1000)  # identical copies (names get -1, -2, ...)
    name: str | None = None


class JobConfig(StrictModel):
    """The shared pool of deferrable training jobs (Poisson arrivals over the episode).

    Work is measured like the single-site backlog: IT kWh at full speed. The arrival rate is set
    so that the expected work arriving per hour is ``load_factor`` x the fleet's total IT kW.
    """

    load_factor: float = Field(0.6, ge=0.0, le=5.0)  # E: offered work / fleet IT capacity
    initial_load_h: NonNeg = 2.0  # E: jobs queued at step 0, in hours of fleet IT capacity
    size_mwh_median: float = Field(2.0, gt=0.0)  # E: ~4 h of a 0.5 MW pod (sources §7 typical site)
    size_log_sd: float = Field(0.8, ge=0.0, le=3.0)  # E: lognormal spread of job sizes
    deadline_h: tuple[float, float] = (6.0, 36.0)  # E: deadline after arrival, uniform range
    # sources §4e: $2.25/GPU-h / 1.275 kW per GPU = $1.76 per IT kWh of work (same as ComputeConfig)
    value_usd_per_kwh: NonNeg = 1.76
    # sources §4d: a 70B model with Adam state is 0.7-1 TB; smaller fine-tunes far less (median E)
    checkpoint_gb_median: float = Field(300.0, gt=0.0)
    checkpoint_log_sd: float = Field(0.8, ge=0.0, le=3.0)

    @model_validator(mode="after")
    def _deadline(self) -> JobConfig:
        lo, hi = self.deadline_h
        if not (0.0 < lo <= hi):
            raise ValueError(
                f"deadline_h must be (lo, hi) with 0 < lo <= hi (got {self.deadline_h})"
            )
        return self


class NetworkConfig(StrictModel):
    """Inter-site links used by job migration (a checkpoint moves from one site to another)."""

    bandwidth_gbps: float = Field(10.0, gt=0.0)  # E: a 10 Gb/s metro/long-haul wave per site
    # E: network transfer energy ~0.06 kWh/GB (2015 estimate, halving about every 2 years) -> 0.03
    energy_kwh_per_gb: NonNeg = 0.03


class ScheduledOutage(StrictModel):
    """A grid outage of one site, in hours after the fleet episode start."""

    site: int = Field(ge=0)
    start_h: NonNeg
    duration_h: float = Field(gt=0.0)


class OutageConfig(StrictModel):
    """Grid outages: the site islands (cars may charge from its battery), compute is forced off.

    Outages come from ``scheduled`` and/or are sampled: each site starts an outage in a step with
    probability ``rate_per_site_day`` per day, lasting an exponential time with mean
    ``duration_h_mean``.
    """

    rate_per_site_day: float = Field(0.0, ge=0.0, le=24.0)  # E: storms; US SAIDI is ~2-5 h/yr
    duration_h_mean: float = Field(2.0, gt=0.0)  # E
    scheduled: tuple[ScheduledOutage, ...] = ()


class FleetConfig(StrictModel):
    """A validated fleet: site entries, the job pool, the network and outages."""

    name: str = DEFAULT_FLEET
    description: str = ""
    episode: dict[str, Any] = {}  # episode keys applied to every site
    sites: tuple[FleetSite, ...]
    jobs: JobConfig = JobConfig()
    network: NetworkConfig = NetworkConfig()
    outages: OutageConfig = OutageConfig()

    @property
    def n_sites(self) -> int:
        return sum(s.count for s in self.sites)

    @field_validator("sites")
    @classmethod
    def _some_sites(cls, v: tuple[FleetSite, ...]) -> tuple[FleetSite, ...]:
        if not v:
            raise ValueError("must list at least one site")
        return v

    @model_validator(mode="after")
    def _outage_sites(self) -> FleetConfig:
        for i, o in enumerate(self.outages.scheduled):
            if o.site >= self.n_sites:
                raise ValueError(
                    f"outages.scheduled.{i}.site must be < {self.n_sites} (got {o.site})"
                )
        return self


def fleet_names() -> list[str]:
    """Names of the embedded fleets, e.g. ``tri-tz-3site``."""
    return sorted(p.stem for p in (preset_root() / "fleets").glob("*.yaml"))


def is_fleet(name_or_path: str | Path) -> bool:
    """True if ``name_or_path`` names an embedded fleet or a YAML file with a ``sites`` list."""
    s = str(name_or_path)
    if s in fleet_names():
        return True
    p = Path(s)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        try:
            data = read_config_yaml(p)
        except YamlConfigError:
            return False
        return isinstance(data, dict) and "sites" in data
    return False


def load_fleet(
    fleet: str | Path | Mapping[str, Any] | FleetConfig | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> FleetConfig:
    """Build a validated :class:`FleetConfig` from a preset name, YAML path, mapping or object;
    ``overrides`` (nested or dotted keys) merge on top. Raises :class:`ConfigError` naming the
    bad field path."""
    base_dir: Path | None = None
    if fleet is None:
        fleet = DEFAULT_FLEET
    if isinstance(fleet, FleetConfig):
        data: dict[str, Any] = fleet.model_dump(mode="python")
        source = f"fleet object {fleet.name!r}"
    elif isinstance(fleet, Mapping):
        data, source = copy.deepcopy(dict(fleet)), "fleet mapping"
    elif isinstance(fleet, (str, Path)):
        path = preset_path(str(fleet), "fleets")
        try:
            data = read_config_yaml(path) or {}
        except YamlConfigError as exc:
            raise ConfigError(str(exc)) from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping of fleet keys")
        source, base_dir = str(path), path.parent
        data.setdefault("name", path.stem)
    else:
        raise ConfigError(
            f"fleet must be a name, path, mapping or FleetConfig (got {type(fleet).__name__})"
        )
    if overrides:
        data = deep_merge(data, expand_dotted(overrides))
        source += " + overrides"
    try:
        cfg = FleetConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, what="fleet config")) from None
    if base_dir is not None:  # scenario paths in a fleet file are relative to that file
        sites = []
        for s in cfg.sites:
            p = Path(s.scenario)
            if p.suffix in (".yaml", ".yml") and not p.is_absolute():
                s = s.model_copy(update={"scenario": str(base_dir / p)})
            sites.append(s)
        cfg = cfg.model_copy(update={"sites": tuple(sites)})
    return cfg


def fleet_site_configs(fleet: FleetConfig) -> list[ScenarioConfig]:
    """The K site scenarios of ``fleet``, each adapted to the fleet.

    Per site: the fleet ``episode`` keys, the site's overrides, ``episode.start_hour`` = the
    site's local hour at the fleet's UTC-midnight start, and a compute block whose training work
    comes from the job pool (no own backlog or arrivals; work valued at the job value).
    """
    configs: list[ScenarioConfig] = []
    for i, site in enumerate(fleet.sites):
        start_hour = site.utc_offset_h % 24.0
        for c in range(site.count):
            overrides = deep_merge({"episode": dict(fleet.episode)}, expand_dotted(site.overrides))
            overrides = deep_merge(
                overrides,
                {
                    "episode": {"start_hour": start_hour},
                    "compute": {
                        "training_backlog_initial_h": 0.0,
                        "training_arrival_h_per_day": 0.0,
                        "training_value_usd_per_kwh": fleet.jobs.value_usd_per_kwh,
                    },
                },
            )
            try:
                cfg = load_scenario(site.scenario, overrides)
            except ConfigError as exc:
                raise ConfigError(f"fleet {fleet.name!r}: sites.{i}: {exc}") from None
            label = site.name or cfg.name
            if site.count > 1:
                label = f"{label}-{c + 1}"
            configs.append(cfg.model_copy(update={"name": label}))
    first = configs[0].episode
    for i, cfg in enumerate(configs):
        ep: EpisodeConfig = cfg.episode
        if (ep.step_min, ep.n_steps, ep.forecast_horizon_h) != (
            first.step_min,
            first.n_steps,
            first.forecast_horizon_h,
        ):
            raise ConfigError(
                f"fleet {fleet.name!r}: site {i} ({cfg.name}) has episode step_min={ep.step_min}, "
                f"days={ep.days}, forecast_horizon_h={ep.forecast_horizon_h}; every site must "
                f"match site 0 (step_min={first.step_min}, days={first.days}, "
                f"forecast_horizon_h={first.forecast_horizon_h}): set them in the fleet's episode"
            )
    return configs
