"""The base of every config model, :class:`StrictModel`, and the bounded number types of its fields.

A :class:`StrictModel` refuses unknown keys, is immutable, validates its defaults, refuses NaN and
infinities and takes numbers only in number fields. Scenario (:mod:`megapod_gym.config.schema`),
fleet and sweep configs derive from it.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

# No figure of a site comes near 1e9 in its unit (kW, kWh, USD, minutes, ...); a larger value is a
# typo or an attack, and up to it every product the simulator forms stays far from overflow.
MAX_MAGNITUDE = 1e9
Frac = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0, le=MAX_MAGNITUDE)]
NonNegFloat = Annotated[float, Field(ge=0.0, le=MAX_MAGNITUDE)]


class StrictModel(BaseModel):
    """Base: unknown keys are errors, instances are immutable, defaults are validated too, NaN and
    infinities are refused everywhere, and a number field takes numbers only (``True`` or
    ``"0.5"`` is an error, not 1.0 or 0.5)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and _wants_number(field.annotation):
            _refuse_non_numbers(value, _wants_sequence(field.annotation))
        return value


_NUMERIC = (int, float)


@functools.cache
def _wants_number(annotation: Any) -> bool:
    """True for ``float``/``int`` fields and sequences/optionals of them (not ``bool``)."""
    if annotation in _NUMERIC:
        return True
    args = [a for a in get_args(annotation) if a is not type(None) and a is not Ellipsis]
    return bool(args) and all(_wants_number(a) for a in args)


@functools.cache
def _wants_sequence(annotation: Any) -> bool:
    return get_origin(annotation) in (tuple, list)


def _refuse_non_numbers(value: Any, sequence: bool) -> None:
    items = value if sequence and isinstance(value, (list, tuple)) else [value]
    for i, v in enumerate(items):
        if v is None and not sequence:
            continue
        if isinstance(v, (bool, str)):
            kind = "a boolean" if isinstance(v, bool) else "a string"
            where = f"element {i} " if sequence else ""
            raise ValueError(f"{where}must be a number, not {kind}")
