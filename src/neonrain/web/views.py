"""Presentation helpers for the pages: relative times, numbers, rates and the SVG charts.

Everything here is pure (no database, no request), so the templates stay simple and the helpers
are easy to test. Charts are built as data (coordinates, labels) and drawn by the templates, so
Jinja2's autoescaping applies to every piece of text in them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import urlsplit

from neonrain.api_types import ReadinessOut
from neonrain.readiness import CHECK_TITLES, Summary, summarize

#: Limits of the configuration fields (api.md, ``PUT /api/servers/:serverId``).
WEBSITE_URL_MAX = 2048
WEBSITE_NAME_MAX = 100
PASSWORD_MIN = 10
PASSWORD_MAX = 256
EMAIL_MAX = 254
#: Rates above this are shown as "999%+" (a bot may send several replies per message).
RATE_CAP = 9.99


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def relative_time(value: str | datetime | None, now: datetime | None = None) -> str:
    """ "just now", "5 minutes ago", "3 days ago", … (the JS module keeps these fresh)."""
    moment = parse_iso(value) if isinstance(value, str) or value is None else value
    if moment is None:
        return "never"
    now = now or datetime.now(UTC)
    seconds = (now - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 45:
        return "just now"
    for unit, size in (
        ("year", 365 * 86400),
        ("month", 30 * 86400),
        ("week", 7 * 86400),
        ("day", 86400),
        ("hour", 3600),
        ("minute", 60),
    ):
        if seconds >= size:
            count = round(seconds / size) if size == 60 else int(seconds // size)
            count = max(count, 1)
            text = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {text}" if future else f"{text} ago"
    return "just now"  # pragma: no cover - 45 s ≤ seconds < 60 s rounds to a minute above


def absolute_time(value: str | None) -> str:
    moment = parse_iso(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def later(*values: str | None) -> str | None:
    """The later of ISO timestamps (None when all are None)."""
    moments = [(parse_iso(v), v) for v in values if v]
    moments = [(m, v) for m, v in moments if m is not None]
    return max(moments)[1] if moments else None


def number(value: int) -> str:
    return f"{value:,}"


def plural(count: int, word: str, words: str | None = None) -> str:
    """ "1 message", "2 messages", "1,204 messages" (``words`` for irregular plurals)."""
    return f"{number(count)} {word if count == 1 else (words or word + 's')}"


def response_rate(sent: int, received: int) -> str:
    """Sent / received as a percentage; "—" when nothing was received; capped at 999%+."""
    if received <= 0:
        return "—"
    rate = sent / received
    if rate > RATE_CAP:
        return "999%+"
    return f"{round(rate * 100)}%"


def human_size(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.1f} KB"
    return f"{size / 1_000_000:.1f} MB"


def host_of(url: str) -> str:
    return urlsplit(url).hostname or url


def initial(name: str) -> str:
    stripped = name.strip()
    return stripped[0].upper() if stripped else "?"


def safe_next(target: str | None, default: str = "/dashboard") -> str:
    """A local path to go to after signing in; anything else (other sites, ``//host``) → default."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) < 32 for ch in target):
        return default
    return target


# ------------------------------------------------------------------------------------ readiness


def server_state(readiness: ReadinessOut | None, bot_active: bool) -> Summary:
    """A server's state as its badge says it (``neonrain.readiness.summarize``)."""
    if readiness is None:  # not computed: never claim that the bot answers
        return Summary("checking", "On — checking…") if bot_active else Summary("off", "Off")
    return summarize(readiness)


def check_title(check_id: str) -> str:
    return CHECK_TITLES.get(check_id, check_id)


# ------------------------------------------------------------------------------------ charts


@dataclass(frozen=True)
class Sparkline:
    points: str  # SVG polyline points
    area: str  # SVG polygon points (filled area under the line)
    total: int
    width: int
    height: int


def sparkline(values: Sequence[int], width: int = 120, height: int = 28) -> Sparkline:
    """A polyline of ``values`` (messages per day, oldest first) in a width×height box."""
    count = max(len(values), 2)
    peak = max(max(values, default=0), 1)
    step = width / (count - 1)
    coords = []
    for index, value in enumerate(values or [0, 0]):
        x = round(index * step, 1)
        y = round(height - 2 - (value / peak) * (height - 4), 1)
        coords.append(f"{x},{y}")
    points = " ".join(coords)
    area = f"0,{height} {points} {width},{height}"
    return Sparkline(points=points, area=area, total=sum(values), width=width, height=height)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    value: int


@dataclass(frozen=True)
class DayColumn:
    date: str
    label: str
    received: Bar
    sent: Bar
    #: Drafts held back that day (a third bar, only when the chart has any).
    held: Bar | None = None


@dataclass(frozen=True)
class DailyChart:
    width: int
    height: int
    plot_top: int
    plot_bottom: int
    bar_width: float
    peak: int
    columns: list[DayColumn]
    total_received: int
    total_sent: int
    busiest: str | None
    first_label: str
    last_label: str
    summary: str
    total_held_back: int = 0

    @property
    def has_held_back(self) -> bool:
        return self.total_held_back > 0


def daily_chart(
    days: Sequence[tuple[str, int, int]],
    width: int = 600,
    height: int = 160,
    *,
    held_back: Sequence[int] | None = None,
) -> DailyChart:
    """Grouped bars of (date, received, sent) per day, oldest first, and a third bar per day for
    the drafts held back (``held_back``, one count per day) when there are any. The SVG holds only
    the bars and axis lines (it stretches to its box); labels are HTML next to it, so they stay
    legible at any width."""
    held = list(held_back or [0] * len(days))
    if len(held) != len(days):
        raise ValueError("held_back needs one count per day")
    total_held_back = sum(held)
    series = 3 if total_held_back else 2
    plot_top, plot_bottom, left = 4, height - 1, 0
    peak = max([max(r, s, h) for (_d, r, s), h in zip(days, held, strict=True)] + [1])
    slot = (width - left) / max(len(days), 1)
    bar_width = max(round(slot * 0.76 / series, 2), 1.0)
    usable = plot_bottom - plot_top

    def bar(x: float, value: int) -> Bar:
        h = round(value / peak * usable, 2)
        return Bar(x=round(x, 2), y=round(plot_bottom - h, 2), height=h, value=value)

    columns: list[DayColumn] = []
    for index, ((day, received, sent), drafts) in enumerate(zip(days, held, strict=True)):
        x0 = left + index * slot + slot * 0.1
        columns.append(
            DayColumn(
                date=day,
                label=_short_date(day),
                received=bar(x0, received),
                sent=bar(x0 + bar_width, sent),
                held=bar(x0 + 2 * bar_width, drafts) if total_held_back else None,
            )
        )
    total_received = sum(r for _d, r, _s in days)
    total_sent = sum(s for _d, _r, s in days)
    busiest = None
    if total_received or total_sent:
        top = max(days, key=lambda d: (d[1] + d[2], d[0]))
        busiest = f"{_short_date(top[0])} ({number(top[1])} received, {number(top[2])} sent)"
    first_label = _short_date(days[0][0]) if days else ""
    last_label = _short_date(days[-1][0]) if days else ""
    not_posted = ""
    if total_held_back:
        were = "reply was" if total_held_back == 1 else "replies were"
        not_posted = f" {number(total_held_back)} {were} drafted but not posted."
    if total_received or total_sent:
        summary = (
            f"Over the last {len(days)} days ({first_label} to {last_label}): "
            f"{plural(total_received, 'message')} received and {number(total_sent)} sent. "
            f"Busiest day: {busiest}.{not_posted}"
        )
    else:
        summary = (
            f"No messages in the last {len(days)} days ({first_label} to {last_label}).{not_posted}"
        )
    return DailyChart(
        width=width,
        height=height,
        plot_top=plot_top,
        plot_bottom=plot_bottom,
        bar_width=bar_width,
        peak=peak,
        columns=columns,
        total_received=total_received,
        total_sent=total_sent,
        busiest=busiest,
        first_label=first_label,
        last_label=last_label,
        summary=summary,
        total_held_back=total_held_back,
    )


def _short_date(day: str) -> str:
    parsed = date.fromisoformat(day)
    return f"{parsed.strftime('%b')} {parsed.day}"
