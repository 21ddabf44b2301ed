"""The failures-over-time chart as plain geometry for a server-rendered SVG (no chart library)."""

from __future__ import annotations

from dataclasses import dataclass

from executions import kinds
from executions.selectors.chart import Series

WIDTH, HEIGHT = 1000, 160
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 44, 22, 8


@dataclass
class Segment:
    kind: str
    y: float
    height: float
    count: int


@dataclass
class Bar:
    x: float
    width: float
    label: str
    title: str
    total: int
    segments: list[Segment]
    show_label: bool


def _nice_max(peak: int) -> int:
    if peak <= 5:
        return max(peak, 1)
    magnitude = 10 ** (len(str(peak)) - 1)
    for step in (1, 2, 2.5, 5, 10):
        top = int(step * magnitude)
        if top >= peak:
            return top
    return peak


def chart(series: Series) -> dict:
    plot_w = WIDTH - PAD_LEFT
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    n = max(len(series.buckets), 1)
    slot = plot_w / n
    top = _nice_max(series.peak)
    every = max(1, n // 8)
    bars = []
    for i, bucket in enumerate(series.buckets):
        y = PAD_TOP + plot_h
        segments = []
        for kind in kinds.BY_NAME:
            count = bucket.counts.get(kind, 0)
            if not count:
                continue
            h = plot_h * count / top
            y -= h
            segments.append(Segment(kind, round(y, 2), round(h, 2), count))
        if series.unit == "minute":
            label = bucket.start.strftime("%H:%M")
            title_when = bucket.start.strftime("%Y-%m-%d %H:%M UTC")
        elif series.unit == "hour":
            label = bucket.start.strftime("%H:00")
            title_when = bucket.start.strftime("%Y-%m-%d %H:00 UTC")
        else:
            label = bucket.start.strftime("%b %d")
            title_when = bucket.start.strftime("%Y-%m-%d")
        parts = ", ".join(f"{s.count} {s.kind}" for s in segments) or "no failures"
        bars.append(
            Bar(
                x=round(PAD_LEFT + i * slot + slot * 0.1, 2),
                width=round(slot * 0.8, 2),
                label=label,
                title=f"{title_when}: {bucket.total} ({parts})",
                total=bucket.total,
                segments=segments,
                show_label=i % every == 0,
            )
        )
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "pad_left": PAD_LEFT,
        "baseline": PAD_TOP + plot_h,
        "mid": PAD_TOP + plot_h / 2,
        "top_y": PAD_TOP,
        "plot_h": plot_h,
        "ylab_x": PAD_LEFT - 6,
        "ylab_top": PAD_TOP + 8,
        "label_y": HEIGHT - 6,
        "max": top,
        "half": top / 2 if top % 2 else top // 2,
        "bars": bars,
        "unit": series.unit,
        "total": series.total,
        "start": series.start,
        "end": series.end,
        "kinds": list(kinds.names()),
    }
