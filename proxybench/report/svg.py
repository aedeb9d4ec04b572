"""Inline SVG figures for the HTML report: axes, scatters of many points, step fronts, line charts.

**Why SVG written by hand.** The report must open offline as one file. The choices were
(a) matplotlib PNGs inlined as base64 (the project's PNG plots already exist, but a raster
cannot show which architecture a point is, and a 15,625-point panel at a readable size is
~100 kB of PNG per proxy, encoded +33 %), (b) a JavaScript plotting library inlined
(Plotly is ~3.5 MB minified, Vega ~1 MB; a dependency to pin, and a blank page without
JavaScript), or (c) SVG generated here. SVG wins: it needs no dependency, renders without
JavaScript, scales when zoomed, prints, and stays small when drawn compactly:

* all points of a scatter are **one** ``<path>`` of zero-length segments with a square
  line cap (``M x y h0`` per point, integer half-pixel coordinates, each half pixel once):
  4.4 bytes a point for 15,625 NB201 points instead of ~40 for a ``<circle>`` element, and
  one DOM node instead of 15,625, so the page stays responsive;
* hover needs no per-point element either: the point coordinates (in plot pixels) and their
  values travel as one small JSON block, and a few lines of inline script find the nearest
  point under the cursor in a bucket grid (see :mod:`proxybench.report._assets`).

Axis scales follow the project's rules instead of inventing new ones: proxy scores use
:func:`proxybench.stats.plots.x_scale` (log when positive and spanning > 3 decades, symlog
otherwise when they span that much) and search objectives
:func:`proxybench.search.select.log_columns` (> 6 decades).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np

__all__ = ["Axis", "Frame", "decimate_path", "fmt_number", "line_chart", "points_group"]

#: Plot area of one scatter panel, in px (the SVG adds the margins).
WIDTH, HEIGHT = 300, 210
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52, 12, 10, 40


def fmt_number(value: float | None, digits: int = 4) -> str:
    """A short, readable number: ``0.5941``, ``1.2e+30``, ``—`` for None/NaN."""
    if value is None or not math.isfinite(value):
        return "—"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e5 or magnitude < 1e-3:
        return f"{value:.{max(1, digits - 2)}e}"
    return f"{value:.{digits}g}"


@dataclass
class Axis:
    """A mapping from data values to pixels: ``linear``, ``log`` or ``symlog`` (linear within ±``linthresh``).

    ``symlog`` is sign(v)·(|v|/c) inside the linear region and sign(v)·(1 + log10(|v|/c))
    outside it (c = ``linthresh``), i.e. the linear region is one decade wide, as matplotlib's
    symlog with ``linscale=1`` (up to a constant).
    """

    scale: str
    lo: float
    hi: float
    pixels: float
    reverse: bool = False
    linthresh: float = 1.0
    fixed: tuple[float, ...] = ()  # tick at exactly these values (e.g. the n of a learning curve)
    _tlo: float = field(init=False)
    _thi: float = field(init=False)

    def __post_init__(self) -> None:
        self._tlo, self._thi = float(self.transform(np.array([self.lo]))[0]), float(self.transform(np.array([self.hi]))[0])
        if not self._thi > self._tlo:  # one value: a unit-wide window around it
            self._tlo, self._thi = self._tlo - 0.5, self._thi + 0.5
        pad = 0.03 * (self._thi - self._tlo)
        self._tlo, self._thi = self._tlo - pad, self._thi + pad

    @classmethod
    def for_values(cls, values: np.ndarray, pixels: float, scale: str = "linear", linthresh: float | None = None,
                   reverse: bool = False) -> Axis:
        finite = values[np.isfinite(values)]
        if scale == "log":
            finite = finite[finite > 0]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        return cls(scale, lo, hi, pixels, reverse, linthresh if linthresh else 1.0)

    def transform(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        if self.scale == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log10(v)
        if self.scale == "symlog":
            c = self.linthresh
            a = np.abs(v)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.sign(v) * np.where(a <= c, a / c, 1.0 + np.log10(np.maximum(a, c) / c))
        return v

    def __call__(self, v: np.ndarray) -> np.ndarray:
        """Pixels from 0 (the low end, or the high end when reversed) to ``pixels``."""
        share = (self.transform(v) - self._tlo) / (self._thi - self._tlo)
        if self.reverse:
            share = 1.0 - share
        return share * self.pixels

    def ticks(self) -> list[tuple[float, str]]:
        """(value, label) of the tick marks inside the axis range."""
        if self.fixed:
            return [(v, _tick_label(v, 0)) for v in self.fixed]
        lo, hi = self.lo, self.hi
        if self.scale == "log":
            first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
            if last - first <= 2:  # a decade or two (e.g. n = 10..1000): 1-2-5 ticks, plain numbers
                values = [m * 10.0 ** e for e in range(first, last + 1) for m in (1, 2, 5)]
                return [(v, _tick_label(v, 0)) for v in values if self._inside(v)]
            step = max(1, math.ceil((last - first) / 6))
            return [(10.0 ** e, f"1e{e}") for e in range(first, last + 1, step)
                    if self._inside(10.0 ** e)]
        if self.scale == "symlog":
            c = self.linthresh
            top = max(abs(lo), abs(hi))
            decades = list(range(math.floor(math.log10(c)), math.ceil(math.log10(top)) + 1))
            step = max(1, math.ceil(len(decades) / (4 if lo < 0 < hi else 6)))
            out = [(0.0, "0")] if self._inside(0.0) else []
            for e in decades[::step]:
                for sign in (1, -1):
                    if self._inside(sign * 10.0 ** e) and 10.0 ** e >= c:
                        out.append((sign * 10.0 ** e, f"{'-' if sign < 0 else ''}1e{e}"))
            return sorted(out)
        span = hi - lo if hi > lo else max(abs(hi), 1.0)
        raw = span / 5
        power = 10 ** math.floor(math.log10(raw))
        step = min((m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw), default=power * 10)
        start = math.ceil(lo / step) * step if hi > lo else lo
        values = [start + k * step for k in range(12) if start + k * step <= hi + 1e-9 * span] if hi > lo else [lo]
        return [(v, _tick_label(v, step)) for v in values]

    def _inside(self, v: float) -> bool:
        t = float(self.transform(np.array([v]))[0])
        return self._tlo <= t <= self._thi


def _tick_label(value: float, step: float) -> str:
    """``800``, ``1000``, ``0.25``, ``-0.2``; scientific beyond 1e6 or below 1e-3."""
    value = round(value / step) * step if step else value
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e6:
        return f"{round(value, 10):g}"
    return fmt_number(value, 3)


def decimate_path(px: np.ndarray, py: np.ndarray) -> str:
    """One path of zero-length segments (``M x y h0``) in *half pixels*, each half pixel once.

    Coordinates are doubled and rounded to integers (draw the path inside
    ``<g transform="scale(0.5)">``, see :func:`points_group`): integers format fast and
    short, and 0.5 px is finer than the eye can tell on a 300 px panel.
    """
    if px.size == 0:
        return ""
    x = np.round(np.asarray(px) * 2).astype(np.int64)
    y = np.round(np.asarray(py) * 2).astype(np.int64)
    keys = np.unique((x - x.min()) * (int(y.max() - y.min()) + 1) + (y - y.min()))
    span = int(y.max() - y.min()) + 1
    xs, ys = (keys // span + x.min()).tolist(), (keys % span + y.min()).tolist()
    return "".join([f"M{a} {b}h0" for a, b in zip(xs, ys)])


def points_group(px: np.ndarray, py: np.ndarray, style: str = "") -> str:
    """The points of a scatter as one ``<path>`` (:func:`decimate_path`) in a half-scale group."""
    return f'<g transform="scale(0.5)"><path class="pts"{style} d="{decimate_path(px, py)}"/></g>'


@dataclass
class Frame:
    """An SVG panel: margins, axes with ticks and labels, a clip of the plot area."""

    x: Axis
    y: Axis
    xlabel: str
    ylabel: str
    title: str = ""
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def size(self) -> tuple[int, int]:
        return self.width + MARGIN_LEFT + MARGIN_RIGHT, self.height + MARGIN_TOP + MARGIN_BOTTOM

    def px(self, values: np.ndarray) -> np.ndarray:
        return self.x(values)

    def py(self, values: np.ndarray) -> np.ndarray:
        return self.height - self.y(values)

    def open(self, attributes: str = "") -> str:
        w, h = self.size
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
                 f'role="img"{attributes}>']
        if self.title:
            parts.append(f"<title>{escape(self.title)}</title>")
        parts.append(f'<g transform="translate({MARGIN_LEFT},{MARGIN_TOP})">')
        parts.append(f'<rect class="bg" width="{self.width}" height="{self.height}"/>')
        for value, label in self.x.ticks():
            p = float(self.px(np.array([value]))[0])
            parts.append(f'<path class="grid" d="M{p:.1f} 0V{self.height}"/>'
                         f'<text class="tick" x="{p:.1f}" y="{self.height + 13}" text-anchor="middle">{escape(label)}</text>')
        for value, label in self.y.ticks():
            p = float(self.py(np.array([value]))[0])
            parts.append(f'<path class="grid" d="M0 {p:.1f}H{self.width}"/>'
                         f'<text class="tick" x="-4" y="{p + 3:.1f}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<text class="label" x="{self.width / 2}" y="{self.height + 30}" '
                     f'text-anchor="middle">{escape(self.xlabel)}</text>')
        parts.append(f'<text class="label" transform="translate(-40,{self.height / 2}) rotate(-90)" '
                     f'text-anchor="middle">{escape(self.ylabel)}</text>')
        return "".join(parts)

    @staticmethod
    def close() -> str:
        return "</g></svg>"


PALETTE = ("#1f5fa8", "#d1495b", "#2e933c", "#edae49", "#7b4fa0", "#00798c", "#8d6a3f", "#e377c2", "#555555")


def line_chart(series: Sequence[dict], xlabel: str, ylabel: str, title: str, log_x: bool = True) -> str:
    """Lines with markers: ``series`` items have ``label``, ``x``, ``y``, optional ``lo``/``hi`` (a band) and
    ``dashed``; colours by ``colour`` index. Each marker has a ``<title>`` (few points: plain SVG tooltips)."""
    xs = np.array([v for s in series for v in s["x"]], dtype=float)
    ys = np.array([v for s in series for v in list(s["y"]) + list(s.get("lo") or []) + list(s.get("hi") or [])],
                  dtype=float)
    x_axis = Axis.for_values(xs, WIDTH + 60, "log" if log_x and xs.size and xs.min() > 0 else "linear")
    distinct = sorted(set(xs[np.isfinite(xs)].tolist()))
    if 0 < len(distinct) <= 10:
        x_axis.fixed = tuple(distinct)
    frame = Frame(x_axis, Axis.for_values(ys, HEIGHT), xlabel, ylabel, title, width=WIDTH + 60)
    parts = [frame.open(' class="chart"')]
    for s in series:
        colour = PALETTE[s.get("colour", 0) % len(PALETTE)]
        x = np.asarray(s["x"], dtype=float)
        y = np.asarray(s["y"], dtype=float)
        order = np.argsort(x)
        x, y = x[order], y[order]
        px, py = frame.px(x), frame.py(y)
        if s.get("lo") is not None and s.get("hi") is not None:
            lo = np.asarray(s["lo"], dtype=float)[order]
            hi = np.asarray(s["hi"], dtype=float)[order]
            keep = np.isfinite(lo) & np.isfinite(hi)
            if keep.sum() >= 2:
                top = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px[keep], frame.py(hi[keep])))
                bottom = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px[keep][::-1], frame.py(lo[keep])[::-1]))
                parts.append(f'<polygon points="{top} {bottom}" fill="{colour}" fill-opacity="0.15"/>')
        keep = np.isfinite(y)
        dash = ' stroke-dasharray="5 3"' if s.get("dashed") else ""
        parts.append(f'<polyline points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px[keep], py[keep]))}" '
                     f'fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for a, b, xv, yv in zip(px[keep], py[keep], x[keep], y[keep]):
            parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{colour}"><title>{escape(s["label"])}: '
                         f'n={xv:g}, {escape(ylabel)} {fmt_number(float(yv))}</title></circle>')
    parts.append(frame.close())
    dashed = ' stroke-dasharray="5 3"'
    legend = "".join(
        f'<span class="key"><svg width="22" height="10"><path d="M1 5H21" stroke="{PALETTE[s.get("colour", 0) % len(PALETTE)]}" '
        f'stroke-width="2"{dashed if s.get("dashed") else ""}/></svg>{escape(s["label"])}</span>'
        for s in series)
    return f'<figure class="panel wide">{"".join(parts)}<figcaption>{escape(title)}<br>{legend}</figcaption></figure>'
