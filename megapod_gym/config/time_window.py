"""Recurring time windows (hours, weekdays, months): tariff periods, price events, retail peaks."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from megapod_gym.config.strict_model import StrictModel

Hour = Annotated[int, Field(ge=0, le=24)]
Weekday = Annotated[int, Field(ge=0, le=6)]  # 0 = Monday
Month = Annotated[int, Field(ge=1, le=12)]

ALL_WEEKDAYS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
ALL_MONTHS: tuple[int, ...] = tuple(range(1, 13))


class TimeWindow(StrictModel):
    """A recurring window: hours ``[start_hour, end_hour)`` (wraps past midnight when start > end)
    on the listed weekdays (0 = Monday) and months (1 = January)."""

    start_hour: Hour = 0
    end_hour: Hour = 24
    weekdays: tuple[Weekday, ...] = ALL_WEEKDAYS
    months: tuple[Month, ...] = ALL_MONTHS

    @model_validator(mode="after")
    def _non_empty(self) -> TimeWindow:
        if self.start_hour == self.end_hour:
            raise ValueError("start_hour must differ from end_hour (an empty window)")
        if not self.weekdays or not self.months:
            raise ValueError("weekdays and months must each list at least one value")
        return self
