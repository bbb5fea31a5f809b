"""The CSV table reader of the replay (:mod:`megapod_gym.scenario.replay`, whose docstring gives
the file formats, units and time rules): :class:`ReplayError`, :class:`_Table` (one CSV or
``.gz`` file as rows of strings with their line numbers, column checks, numeric cells, and
ISO 8601 timestamps mapped onto local wall-clock time with time zones and daylight saving time)
and :func:`_check_spacing` (strictly increasing series without gaps)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import math
import zlib
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

# A series may skip at most max(GAP_MEDIAN_FACTOR x median spacing, MIN_GAP_LIMIT_S).
GAP_MEDIAN_FACTOR: float = 2.0
MIN_GAP_LIMIT_S: int = 3600


class ReplayError(ValueError):
    """A replay file is missing or malformed; the message names the file, the row and the column."""


def _fmt(t: np.datetime64) -> str:
    return str(np.datetime64(t, "m")).replace("T", " ")


# ------------------------------------------------------------------------------------- CSV parsing
class _Table:
    """Rows of one CSV file as strings, with the line number of each row."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.name = str(path)
        self.naive = True  # no timestamp carried a UTC offset (set by timestamps())
        if not path.is_file():
            raise ReplayError(f"{self.name}: {what} file not found (row -, column -)")
        opener = (
            (lambda: gzip.open(path, "rt", encoding="utf-8-sig", newline=""))
            if path.suffix == ".gz"
            else (lambda: path.open("r", encoding="utf-8-sig", newline=""))
        )
        try:
            with opener() as fh:
                reader = csv.reader(fh)
                header: list[str] | None = None
                rows: list[list[str]] = []
                lines: list[int] = []
                for raw in reader:
                    if not raw or all(not c.strip() for c in raw):
                        continue  # blank line
                    if header is None:
                        header = [c.strip() for c in raw]
                        self.header_line = reader.line_num
                        continue
                    rows.append(raw)
                    lines.append(reader.line_num)
        except (OSError, UnicodeDecodeError, csv.Error, EOFError, zlib.error) as exc:
            raise ReplayError(
                f"{self.name}: cannot read {what} file: {exc} (row -, column -)"
            ) from None
        if header is None:
            raise ReplayError(f"{self.name}: row 1, column -: empty file, expected a header row")
        seen: set[str] = set()
        for col in header:
            if col in seen:
                raise ReplayError(
                    f"{self.name}: row {self.header_line}, column {col!r}: column appears twice"
                )
            seen.add(col)
        self.header = header
        self.rows = rows
        self.lines = lines

    def error(self, line: int, column: str, message: str) -> ReplayError:
        return ReplayError(f"{self.name}: row {line}, column {column!r}: {message}")

    def check_columns(self, allowed: Sequence[str], required: Sequence[str]) -> None:
        """Header has only ``allowed`` columns and all ``required`` ones; rows match its width."""
        unknown = [c for c in self.header if c not in allowed]
        missing = [c for c in required if c not in self.header]
        if unknown:
            also = f"; missing required column(s): {', '.join(missing)}" if missing else ""
            raise ReplayError(
                f"{self.name}: row {self.header_line}, column {', '.join(map(repr, unknown))}: unknown "
                f"column(s); allowed columns: {', '.join(allowed)}{also}"
            )
        if missing:
            raise ReplayError(
                f"{self.name}: row {self.header_line}, column {missing[0]!r}: required column missing "
                f"(header has: {', '.join(self.header)})"
            )
        for raw, line in zip(self.rows, self.lines, strict=True):
            if len(raw) != len(self.header):
                raise ReplayError(
                    f"{self.name}: row {line}, column -: {len(raw)} fields but the header has "
                    f"{len(self.header)}"
                )

    def need_rows(self, minimum: int) -> None:
        if len(self.rows) < minimum:
            raise ReplayError(
                f"{self.name}: row {self.header_line + 1}, column -: needs at least {minimum} data "
                f"row(s), found {len(self.rows)}"
            )

    def cells(self, column: str) -> list[tuple[int, str]]:
        j = self.header.index(column)
        return [(line, raw[j].strip()) for raw, line in zip(self.rows, self.lines, strict=True)]

    def timestamps(
        self, column: str, tz: ZoneInfo | None = None, *, optional: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Parse a timestamp column into local wall-clock times and their UTC offsets.

        Returns ``(local, utc_offset_s)``: ``local`` is naive ``datetime64[s]``; ``utc_offset_s``
        (``int64`` seconds, local = UTC + offset) is ``None`` when ``tz`` is ``None`` (naive
        times as they stand, or one shared UTC offset dropped). With ``tz``, offset timestamps are
        converted into ``tz`` and naive ones are read as ``tz`` local time (see the module
        docstring of :mod:`megapod_gym.scenario.replay` for the repeated and the skipped hour).
        Sets ``self.naive`` (no row had an offset) and, without ``tz``, ``self.shared_offset``
        (the one offset of the column, None for naive times) and ``self.offset_line`` (the first
        row giving it). ``optional``: empty cells are NaT instead of an error.
        """
        out = np.empty(len(self.rows), dtype="datetime64[s]")
        offsets = np.zeros(len(self.rows), dtype=np.int64)
        offset: dt.timedelta | None = None
        first_line = 0
        previous_utc: dt.datetime | None = None  # absolute time of the previous row (with tz)
        self.naive = True
        for i, (line, text) in enumerate(self.cells(column)):
            if not text:
                if optional:
                    out[i] = np.datetime64("NaT")
                    continue
                raise self.error(line, column, "empty timestamp")
            iso = text[:-1] + "+00:00" if text[-1] in "zZ" else text
            try:
                stamp = dt.datetime.fromisoformat(iso)
            except ValueError:
                raise self.error(
                    line, column, f"cannot parse timestamp {text!r} (expected ISO 8601)"
                ) from None
            this = stamp.utcoffset()
            if this is not None:
                self.naive = False
            if tz is None:
                if not first_line:
                    offset, first_line = this, line
                elif this != offset:
                    raise self.error(
                        line,
                        column,
                        f"UTC offset {_fmt_offset(this)} differs from {_fmt_offset(offset)} on row "
                        f"{first_line}; give naive local times or one fixed offset for the whole "
                        "file, or declare replay.timezone (an IANA name, e.g. America/Los_Angeles) "
                        "to convert the timestamps into the site's local time",
                    )
                out[i] = np.datetime64(stamp.replace(tzinfo=None), "s")
                continue
            local = (
                stamp.astimezone(tz)
                if this is not None
                else self._localize(stamp, tz, previous_utc, line, column)
            )
            previous_utc = local.astimezone(dt.timezone.utc)
            out[i] = np.datetime64(local.replace(tzinfo=None), "s")
            offsets[i] = int((local.utcoffset() or dt.timedelta(0)).total_seconds())
        self.shared_offset, self.offset_line = offset, first_line
        return out, (None if tz is None else offsets)

    def _localize(
        self,
        stamp: dt.datetime,
        tz: ZoneInfo,
        previous_utc: dt.datetime | None,
        line: int,
        column: str,
    ) -> dt.datetime:
        """Naive local time ``stamp`` in ``tz``: the first occurrence of a repeated local time
        unless it would not come after the previous row; a skipped local time is an error."""
        first = stamp.replace(tzinfo=tz, fold=0)
        first_utc = first.astimezone(dt.timezone.utc)
        if first_utc.astimezone(tz).replace(tzinfo=None) != stamp:
            raise self.error(
                line,
                column,
                f"local time {stamp.isoformat(sep=' ')} does not exist in {tz.key} (the clocks "
                "jump forward over it when daylight saving time starts); is the file in another "
                "zone than replay.timezone?",
            )
        second = stamp.replace(tzinfo=tz, fold=1)
        if previous_utc is not None and first_utc <= previous_utc:
            if second.astimezone(dt.timezone.utc) != first_utc:  # repeated: the second occurrence
                return second.astimezone(tz)
        return first.astimezone(tz)

    def numbers(
        self,
        column: str,
        lo: float | None = None,
        hi: float | None = None,
        *,
        optional: bool = False,
        lo_open: bool = False,
        unit: str = "",
    ) -> np.ndarray:
        """Parse a numeric column (empty cells -> NaN if ``optional``); check ``[lo, hi]``."""
        out = np.full(len(self.rows), np.nan)
        if column not in self.header:
            return out
        for i, (line, text) in enumerate(self.cells(column)):
            if not text:
                if optional:
                    continue
                raise self.error(line, column, "empty value")
            try:
                x = float(text)
            except ValueError:
                raise self.error(line, column, f"not a number: {text!r}") from None
            if not math.isfinite(x):
                raise self.error(line, column, f"value must be finite (got {text!r})")
            below = lo is not None and (x <= lo if lo_open else x < lo)
            above = hi is not None and x > hi
            if below or above:
                left = "(" if lo_open else "["
                lo_s = "-inf" if lo is None else f"{lo:g}"
                hi_s = "inf)" if hi is None else f"{hi:g}]"
                raise self.error(
                    line,
                    column,
                    f"value {x:g}{unit} outside the physical range {left}{lo_s}, {hi_s}",
                )
            out[i] = x
        return out


def _fmt_offset(offset: dt.timedelta | None) -> str:
    if offset is None:
        return "none (naive)"
    total = int(offset.total_seconds())
    sign = "+" if total >= 0 else "-"
    return f"{sign}{abs(total) // 3600:02d}:{abs(total) % 3600 // 60:02d}"


def _check_spacing(
    table: _Table, stamps: np.ndarray, column: str, utc_offset_s: np.ndarray | None = None
) -> None:
    """Strictly increasing absolute times (``stamps - utc_offset_s``) without gaps wider than
    max(2 x median spacing, 1 h); errors show local times. Naive timestamps read without a zone
    that repeat or skip an hour get a hint to declare ``replay.timezone``."""
    t_s = stamps.astype(np.int64)
    if utc_offset_s is not None:
        t_s = t_s - utc_offset_s
    diff = np.diff(t_s)
    dst_hint = table.naive and utc_offset_s is None
    bad = np.flatnonzero(diff <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        message = (
            f"timestamp {_fmt(stamps[i])} is not after the previous row's {_fmt(stamps[i - 1])} "
            "(timestamps must be strictly increasing)"
        )
        if dst_hint and -diff[i - 1] < 3600:
            message += (
                "; naive local times that repeat like this are ambiguous (e.g. the repeated hour "
                "when daylight saving time ends): declare replay.timezone (an IANA name, e.g. "
                "America/Los_Angeles) or give timestamps with UTC offsets"
            )
        raise table.error(table.lines[i], column, message)
    limit_s = max(GAP_MEDIAN_FACTOR * float(np.median(diff)), float(MIN_GAP_LIMIT_S))
    gaps = np.flatnonzero(diff > limit_s)
    if gaps.size:
        i = int(gaps[0]) + 1
        message = (
            f"gap of {diff[i - 1] / 60:g} min after {_fmt(stamps[i - 1])} exceeds the limit of "
            f"{limit_s / 60:g} min (max of {GAP_MEDIAN_FACTOR:g} x median spacing and "
            f"{MIN_GAP_LIMIT_S // 60} min); fill missing data before replaying"
        )
        if dst_hint and diff[i - 1] - 3600 <= limit_s:
            message += (
                " (if this is the hour skipped when daylight saving time starts, declare "
                "replay.timezone, an IANA name such as America/Los_Angeles)"
            )
        raise table.error(table.lines[i], column, message)
