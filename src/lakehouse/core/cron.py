"""The one parser for schedule expressions: Quartz cron, 5-field cron and ``@daily`` macros.

:func:`parse` checks every field (ranges, names, lists, ranges, steps, ``?``, ``L``, ``W``,
``#``) and returns a :class:`CronExpression`, which renders itself for each consumer:

* :meth:`CronExpression.croniter_expression` for the scheduler (croniter evaluates it);
* :meth:`CronExpression.to_cron`: 5-field cron for the Airflow exporter;
* :meth:`CronExpression.to_quartz`: Quartz for the Databricks exporter.

Quartz (``sec min hour day-of-month month day-of-week [year]``) numbers the days of the week
``1-7`` = ``SUN-SAT``, cron ``0-7`` (0 and 7 are Sunday); names are the same in both. In
Quartz, ``?`` stands alone in day-of-month or day-of-week (not both), and a day of month and
a day of week are not combined. ``L`` (last day of the month, or ``nL`` the last weekday n),
``nW`` (nearest weekday) and ``n#k`` (k-th weekday n) are understood; ``LW`` and ``L-n`` are
not (croniter has no equivalent). Conversions refuse what the other format cannot express.
A range that runs backwards (``FRI-MON``) wraps around for the scheduler, as croniter reads
it, and is refused by the conversions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from croniter import CroniterError, croniter  # type: ignore[import-untyped]

from lakehouse.core.errors import one_line

Dialect = Literal["quartz", "cron"]

_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class CronError(ValueError):
    """An expression that is invalid, or that the wanted format cannot express.

    ``why`` says what is wrong; ``str()`` adds which expression (when known).
    """

    def __init__(self, why: str, *, key: str = "", expression: str = "") -> None:
        self.why = why
        self.key = key
        self.expression = expression
        where = f"{key} {expression!r}".strip() if key or expression else ""
        super().__init__(f"{why} ({where} is not a valid expression)" if where else why)


@dataclass(frozen=True)
class _Spec:
    """One field's name, range and value names (``names[i]`` is ``name_base + i``)."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0
    hint: str = ""


SECOND = _Spec("second", 0, 59)
MINUTE = _Spec("minute", 0, 59)
HOUR = _Spec("hour", 0, 23)
DAY_OF_MONTH = _Spec("day-of-month", 1, 31)
MONTH = _Spec("month", 1, 12, _MONTHS, 1)
QUARTZ_DOW = _Spec("day-of-week", 1, 7, _DAYS, 1, " (expected 1-7 for SUN-SAT, or SUN..SAT)")
CRON_DOW = _Spec("day-of-week", 0, 7, _DAYS, 0, " (0 and 7 are SUN, or SUN..SAT)")
YEAR = _Spec("year", 1970, 2099)
_QUARTZ: tuple[_Spec, ...] = (SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, QUARTZ_DOW, YEAR)
_CRON: tuple[_Spec, ...] = (MINUTE, HOUR, DAY_OF_MONTH, MONTH, CRON_DOW)
_ITEM = re.compile(
    r"^(?:(?P<star>\*)|(?P<low>\d+|[A-Z]+)(?:-(?P<high>\d+|[A-Z]+))?)(?:/(?P<step>\d+))?$"
)


@dataclass(frozen=True)
class CronItem:
    """One comma-separated item of a field, upper-cased, with its values checked."""

    text: str
    low: int | None = None  # None for '*', '?' and a lone 'L'
    high: int | None = None
    step: int | None = None
    special: str = ""  # '?', 'L' (last), 'W' (nearest weekday) or '#' (k-th weekday)
    low_token: str = ""  # the low value as written: a number or a name
    high_token: str = ""
    nth: int | None = None  # the k of 'n#k'


@dataclass(frozen=True)
class CronField:
    """One field: its spec, its text as written and its items."""

    spec: _Spec
    text: str
    items: tuple[CronItem, ...]

    @property
    def every(self) -> bool:
        """``*`` or ``?``: no restriction."""
        return self.text in ("*", "?")

    def special(self) -> CronItem | None:
        """The first item using ``?``, ``L``, ``W`` or ``#``."""
        return next((item for item in self.items if item.special), None)


@dataclass(frozen=True)
class CronExpression:
    """A parsed, checked schedule expression in its dialect (``fields`` in written order)."""

    source: str
    dialect: Dialect
    fields: tuple[CronField, ...]

    @property
    def key(self) -> str:
        """The bundle.yml key that holds this kind of expression."""
        return "quartz_cron_expression" if self.dialect == "quartz" else "cron_expression"

    def croniter_expression(self) -> tuple[str, bool]:
        """What croniter evaluates, and whether its first field is the seconds."""
        if self.dialect == "cron":
            return " ".join(f.text for f in self.fields), False
        texts = [f.text for f in self.fields]
        texts[5] = ",".join(_croniter_dow(item) for item in self.fields[5].items)
        if len(texts) == 7 and texts[6] in ("*", "?"):
            texts = texts[:6]
        return " ".join(texts), True

    def to_cron(self) -> str:
        """5-field cron; raises :class:`CronError` for what cron cannot express."""
        if self.dialect == "cron":
            _refuse_specials(self.fields, "5-field cron")
            return MACROS.get(self.source.strip().lower(), self.source)
        second, minute, hour, dom, month, dow = self.fields[:6]
        if len(self.fields) == 7 and not self.fields[6].every:
            raise CronError("a year field cannot be expressed in 5-field cron")
        if not (second.text.isdigit() and int(second.text) == 0):
            raise CronError(f"seconds {second.text!r}: 5-field cron runs on the minute only")
        _refuse_specials((dom, dow), "5-field cron", allow_question=True)
        _refuse_specials((minute, hour, month), "5-field cron")
        days = None if dow.text == "?" else _days(dow)
        cron_dom = "*" if dom.text == "?" else _plain(dom)
        if cron_dom != "*" and days is not None:
            raise CronError("both a day of month and a day of week: set one of them to '?'")
        return " ".join([_plain(minute), _plain(hour), cron_dom, _plain(month), _render(days, 0)])

    def to_quartz(self) -> str:
        """Quartz cron; raises :class:`CronError` for what Quartz cannot express."""
        if self.dialect == "quartz":
            return self.source
        _refuse_specials(self.fields, "Quartz")
        minute, hour, dom, month, dow = self.fields
        days = _days(dow)
        quartz_dom = _plain(dom)
        if quartz_dom != "*" and days is not None:
            raise CronError(
                "both a day of month and a day of week (cron runs on either; Quartz cannot say that)"
            )
        quartz_dow = "?" if days is None else _render(days, 1)
        if days is not None:
            quartz_dom = "?"
        return " ".join(["0", _plain(minute), _plain(hour), quartz_dom, _plain(month), quartz_dow])


# ---------------------------------------------------------------- parsing


def parse(expression: str, dialect: Dialect) -> CronExpression:
    """Parse and check a Quartz or 5-field cron expression (``@daily`` etc. for cron).

    Raises :class:`CronError` (whose ``why`` says what is wrong) for an invalid expression.
    """
    if dialect == "cron":
        texts = MACROS.get(expression.strip().lower(), expression).split()
        if len(texts) != 5:
            raise CronError(
                f"expected 5 fields (min hour day-of-month month day-of-week), got {len(texts)}"
            )
        for spec, text in zip(_CRON, texts, strict=True):
            if "?" in text:
                raise CronError(f"{spec.name} {text!r} uses '?', which only Quartz has")
        specs = _CRON
    else:
        texts = expression.split()
        if len(texts) not in (6, 7):
            raise CronError(
                "expected 6 or 7 fields (sec min hour day-of-month month day-of-week [year]), "
                f"got {len(texts)}"
            )
        _check_quartz_days(texts)
        specs = _QUARTZ[: len(texts)]
    fields = tuple(
        CronField(spec, text, tuple(_item(i, spec) for i in text.upper().split(",")))
        for spec, text in zip(specs, texts, strict=True)
    )
    return CronExpression(expression, dialect, fields)


def parse_schedule(quartz: str | None, cron: str | None) -> CronExpression:
    """The schedule's one expression parsed and checked, croniter able to run it.

    Raises :class:`CronError` naming the key and the expression.
    """
    dialect: Dialect = "quartz" if quartz is not None else "cron"
    source = quartz if quartz is not None else cron
    assert source is not None
    key = "quartz_cron_expression" if quartz is not None else "cron_expression"
    try:
        parsed = parse(source, dialect)
        expression, seconds_first = parsed.croniter_expression()
        try:
            croniter(expression, datetime(2000, 1, 1), second_at_beginning=seconds_first)
        except CroniterError as exc:
            raise CronError(one_line(exc, with_type=False)) from None
    except CronError as exc:
        raise CronError(exc.why, key=key, expression=source) from None
    return parsed


def quartz_to_croniter(expression: str) -> str:
    """A Quartz expression as croniter reads it (seconds first: ``second_at_beginning``)."""
    return parse(expression, "quartz").croniter_expression()[0]


def _check_quartz_days(texts: list[str]) -> None:
    """Quartz's rules for ``?`` and for combining day-of-month with day-of-week."""
    dom, dow = texts[3], texts[5]
    if dom == "?" and dow == "?":
        raise CronError("'?' may stand in day-of-month or day-of-week, not both")
    if dom not in ("?", "*") and dow not in ("?", "*"):
        raise CronError(
            "give '?' in day-of-month or day-of-week: Quartz does not take both a day of "
            f"month and a day of week (got day-of-month {dom!r}, day-of-week {dow!r})"
        )
    for spec, value in zip(_QUARTZ, texts, strict=False):
        if "?" in value and (spec not in (DAY_OF_MONTH, QUARTZ_DOW) or value != "?"):
            raise CronError(
                "'?' is only allowed alone in day-of-month or day-of-week "
                f"(got {value!r} in {spec.name})"
            )


def _item(text: str, spec: _Spec) -> CronItem:
    """One item of a field, its values checked against the field's range and names."""
    special_form = _special_item(text, spec)
    if special_form is not None:
        return special_form
    match = _ITEM.match(text)
    if match is None:
        special = next((c for c in "?LW#" if c in text), None)
        where = f"{spec.name} {text!r}"
        raise CronError(
            f"{where} uses {special!r}, which cannot stand there"
            if special
            else f"{where} is not a cron field"
        )
    step = int(match["step"]) if match["step"] is not None else None
    if step == 0:
        raise CronError(f"{spec.name} {text!r} has a step of 0")
    if match["star"]:
        return CronItem(text, step=step)
    low = _value(match["low"], spec)
    high = _value(match["high"], spec) if match["high"] is not None else None
    return CronItem(text, low, high, step, "", match["low"], match["high"] or "")


def _special_item(text: str, spec: _Spec) -> CronItem | None:
    """The item if ``text`` is a Quartz special form (``?``, ``L``, ``nW``, ``nL``, ``n#k``)."""
    is_dow = spec in (QUARTZ_DOW, CRON_DOW)
    if text == "?" or (text == "L" and (is_dow or spec is DAY_OF_MONTH)):
        return CronItem(text, special=text)
    if spec is DAY_OF_MONTH:
        if text == "LW" or text.startswith("L-"):
            raise CronError(f"day-of-month {text!r}: 'LW' and 'L-n' are not supported")
        if m := re.fullmatch(r"(\d+)W", text):
            return CronItem(text, low=_value(m[1], spec), special="W", low_token=m[1])
    if is_dow and (m := re.fullmatch(r"(\w+?)L", text)):
        return CronItem(text, low=_value(m[1], spec), special="L", low_token=m[1])
    if is_dow and (m := re.fullmatch(r"(\w+)#(\d+)", text)):
        if not 1 <= int(m[2]) <= 5:
            raise CronError(f"day-of-week {text!r}: the week after '#' is 1-5")
        return CronItem(text, _value(m[1], spec), special="#", low_token=m[1], nth=int(m[2]))
    return None


def _value(token: str, spec: _Spec) -> int:
    if token.isdigit():
        number = int(token)
        if not spec.low <= number <= spec.high:
            raise CronError(f"{spec.name} {number} is outside {spec.low}-{spec.high}{spec.hint}")
        return number
    if token in spec.names:
        return spec.name_base + spec.names.index(token)
    raise CronError(f"{spec.name} value {token!r} is not understood")


# ---------------------------------------------------------------- rendering


def _croniter_dow(item: CronItem) -> str:
    """A Quartz day-of-week item as croniter reads it (cron numbers 0-6, names as they are)."""

    def number(token: str) -> str:
        return token if token in _DAYS else str(int(token) - 1)

    if item.special == "?" or item.low is None:
        return "6" if item.special == "L" else item.text  # a lone 'L' is Saturday
    if item.special == "L":  # the last <weekday> of the month
        return f"L{(item.low - 1) % 7}"
    if item.special == "#":
        return f"{number(item.low_token)}#{item.nth}"
    step = f"/{item.step}" if item.step is not None else ""
    if item.high is not None:
        return f"{number(item.low_token)}-{number(item.high_token)}{step}"
    if item.step is not None:  # from <weekday> on, every n days
        return f"{number(item.low_token)}-6{step}"
    return number(item.low_token)


def _refuse_specials(
    fields: tuple[CronField, ...], target: str, *, allow_question: bool = False
) -> None:
    for field in fields:
        for item in field.items:
            if item.special and not (allow_question and item.special == "?"):
                raise CronError(
                    f"{field.spec.name} {item.text!r} uses {item.special!r}, "
                    f"which {target} cannot express"
                )


def _backwards(item: CronItem, spec: _Spec) -> CronError:
    return CronError(f"{spec.name} range {item.text!r} runs backwards")


def _plain(field: CronField) -> str:
    """Minute, hour, day-of-month or month in the syntax cron and Quartz share.

    ``n/step`` (from n on, every step) becomes ``n-<max>/step``, which both accept.
    """
    out = []
    for item in field.items:
        if item.low is None:
            out.append(item.text)
        elif item.high is not None and item.high < item.low:
            raise _backwards(item, field.spec)
        elif item.step is not None and item.high is None:
            out.append(f"{item.low}-{field.spec.high}/{item.step}")
        else:
            out.append(item.text)
    return ",".join(out)


def _days(field: CronField) -> set[int] | None:
    """Day-of-week values as days (0 = Sunday); None for every day."""
    offset = field.spec.name_base  # cron 0 = SUN, Quartz 1 = SUN
    last = 6 if field.spec is CRON_DOW else 7  # what '*' spans
    days: set[int] = set()
    for item in field.items:
        if item.low is None:
            if item.step is None:
                return None
            low, high = offset, last
        else:
            high = item.high if item.high is not None else (last if item.step else item.low)
            low = item.low
            if high < low:
                raise _backwards(item, field.spec)
        days.update((n - offset) % 7 for n in range(low, high + 1, item.step or 1))
    return None if len(days) == 7 else days


def _render(days: set[int] | None, offset: int) -> str:
    """Days (0 = Sunday) as a day-of-week field numbered from ``offset``; runs of 3+ as ranges."""
    if days is None:
        return "*"
    runs: list[list[int]] = []
    for n in sorted(d + offset for d in days):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) >= 3 else ",".join(str(n) for n in r) for r in runs)
