"""monitoring.retrain_schedule and batch.schedule (five-field cron, UTC) as the six-field `cron(...)` of EventBridge
Scheduler, which differs in three ways: a year field, `?` in one of day-of-month / day-of-week (AWS
cannot say "this day of the month OR this weekday", which cron can), and weekdays 1-7 from Sunday
(cron: 0-6, 7 = Sunday again). Weekdays are written as names (MON,WED) so no number is misread.
"""

from __future__ import annotations

from ...errors import ConfigError

KEY = "monitoring.retrain_schedule"
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12))


def aws_cron(expression: str, key: str = KEY) -> str:
    """`0 3 * * 1` -> `cron(0 3 ? * MON *)`; raises ConfigError naming `key` when AWS cannot say it."""
    try:
        return _aws_cron(expression)
    except ConfigError as exc:
        raise ConfigError(f"mlops.yaml: {key}: {exc}") from None


def _aws_cron(expression: str) -> str:
    parts = expression.split()
    if len(parts) != 5:
        raise ConfigError(f"'{expression}' is not five fields (minute hour day month weekday)")
    minute, hour, day, month = (_field(value, *spec) for value, spec in zip(parts[:4], _FIELDS, strict=True))
    weekdays = _weekdays(parts[4])
    if day != "*" and weekdays is not None:
        raise ConfigError(
            f"'{expression}' restricts both the day of the month and the weekday; "
            "EventBridge Scheduler can only restrict one of them"
        )
    return f"cron({minute} {hour} {day if weekdays is None else '?'} {month} {weekdays or '?'} *)"


def _field(value: str, name: str, low: int, high: int) -> str:
    """A minute/hour/day/month field in AWS's syntax: the same, but a step starts at a number."""
    items = []
    for item in value.split(","):
        base, _, step = item.partition("/")
        for number in (n for n in base.split("-") if n != "*"):
            if not number.isdigit() or not low <= int(number) <= high:
                raise ConfigError(f"{name} '{number}' is outside {low}-{high}")
        if step and (not step.isdigit() or int(step) < 1):
            raise ConfigError(f"{name} step '{step}' is not a positive number")
        items.append(f"{low if base == '*' else base}/{step}" if step else base)
    return ",".join(items)


def _weekdays(value: str) -> str | None:
    """The weekday field as AWS names (MON,WED,FRI); None when every day is meant."""
    days: set[int] = set()
    for item in value.split(","):
        base, _, step = item.partition("/")
        if base == "*":
            first, last = 0, 6
        else:
            ends = [int(n) if n.isdigit() else -1 for n in base.split("-")]
            if any(not 0 <= n <= 7 for n in ends) or len(ends) > 2:
                raise ConfigError(f"weekday '{base}' is outside 0-7 (0 and 7: Sunday)")
            first, last = ends[0], ends[-1] if len(ends) == 2 else (6 if step else ends[0])
            if first > last:
                raise ConfigError(f"weekday range '{base}' runs backwards")
        if step and (not step.isdigit() or int(step) < 1):
            raise ConfigError(f"weekday step '{step}' is not a positive number")
        days.update(n % 7 for n in range(first, last + 1, int(step or 1)))
    return None if len(days) == 7 else ",".join(DAYS[n] for n in sorted(days))
