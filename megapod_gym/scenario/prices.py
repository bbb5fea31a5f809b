"""Energy price generators: time-of-use schedules and a synthetic real-time market."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from megapod_gym.config.schema import RealtimePriceModel, TariffConfig
from megapod_gym.scenario.calendar import Calendar, window_mask
from megapod_gym.scenario.noise import ar1


def tou_price(tariff: TariffConfig, cal: Calendar) -> np.ndarray:
    """Price ($/kWh) per step: the first TOU period whose window matches; later periods fill the
    rest. Steps matched by no period take the last period's price."""
    price = np.full(cal.hour.shape, tariff.tou[-1].price_usd_per_kwh)
    assigned = np.zeros(cal.hour.shape, dtype=bool)
    for period in tariff.tou:
        mask = window_mask(period.window, cal) & ~assigned
        price[mask] = period.price_usd_per_kwh
        assigned |= mask
    return price


@dataclass(frozen=True)
class RealtimeCalendar:
    """What the synthetic real-time market needs of an episode's calendar (built once per start
    day; the draws per seed are in :func:`realtime_price`)."""

    shape: np.ndarray  # [n] hourly shape (mean 1) at each step
    day: np.ndarray  # [n] day number of each step
    hour_id: np.ndarray  # [n] clock-hour number since the start (day * 24 + hour)
    n_days: int
    negative_window: np.ndarray  # [n] bool: negative-price hours may fall here
    spike_window: np.ndarray  # [n] bool: scarcity spikes may start here

    @staticmethod
    def build(model: RealtimePriceModel, cal: Calendar) -> RealtimeCalendar:
        shape = np.asarray(model.hourly_shape) / np.mean(model.hourly_shape)
        return RealtimeCalendar(
            shape=shape[cal.hour_index],
            day=cal.day,
            hour_id=cal.day * 24 + cal.hour_index,
            n_days=int(cal.day[-1]) + 1,
            negative_window=window_mask(model.negative_window, cal),
            spike_window=window_mask(model.spike_window, cal),
        )


def realtime_price(
    model: RealtimePriceModel, cal: RealtimeCalendar, step_min: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic real-time price and its day-ahead forecast, both in $/MWh.

    price = mean x shape(hour) x day factor x AR(1) lognormal noise, then negative-price hours
    (whole clock hours inside ``negative_window``, each with probability ``negative_prob``) and
    scarcity spikes (start with ``spike_prob`` per step inside ``spike_window``, geometric length).
    The forecast knows the shape, the day factor and the negative hours (as a day-ahead market
    would), not the intraday noise or the spikes.
    """
    n = cal.shape.shape[0]
    day_factor = np.exp(
        rng.normal(0.0, model.day_factor_sigma, cal.n_days) - 0.5 * model.day_factor_sigma**2
    )
    forecast = model.mean_usd_per_mwh * cal.shape * day_factor[cal.day]

    # AR(1) in log space with stationary sd = noise_sigma, mean-corrected so E[noise] = 1.
    phi = model.noise_autocorr ** (step_min / 5.0)
    innov = rng.normal(0.0, model.noise_sigma * np.sqrt(1.0 - phi**2), n)
    log_noise = ar1(innov, phi, rng.normal(0.0, model.noise_sigma))
    price = forecast * np.exp(log_noise - 0.5 * model.noise_sigma**2)

    n_hours = cal.n_days * 24
    neg_draw = rng.random(n_hours) < model.negative_prob
    neg_value = rng.uniform(*model.negative_usd_per_mwh, n_hours)
    negative = neg_draw[cal.hour_id] & cal.negative_window
    price = np.where(negative, neg_value[cal.hour_id], price)
    forecast = np.where(negative, neg_value[cal.hour_id], forecast)

    starts = (rng.random(n) < model.spike_prob) & cal.spike_window
    if starts.any():
        spike = np.zeros(n)
        p_end = 1.0 / max(model.spike_duration_steps, 1.0)
        for s in np.flatnonzero(starts):
            length = int(rng.geometric(p_end))
            spike[s : s + length] = np.maximum(
                spike[s : s + length], rng.uniform(*model.spike_usd_per_mwh)
            )
        price = np.where(spike > 0, np.maximum(price, spike), price)
    return price, forecast
