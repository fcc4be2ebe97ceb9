"""Minimal raster plots with no imaging library: an RGB canvas, a 5×7 bitmap font, a bar chart and a PNG encoder.

sing_core is torch + safetensors only, so the demo's figure and the benchmarks' charts are drawn here, pixel by pixel,
with the standard library (zlib + struct for the PNG). Coordinates are pixels, origin top left, y down.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

Color = tuple[int, int, int]

BLACK: Color = (0, 0, 0)
WHITE: Color = (255, 255, 255)
GREY: Color = (150, 150, 150)
LIGHT_GREY: Color = (225, 225, 225)
# Distinct, colour-blind-safe series colours (Okabe-Ito).
PALETTE: tuple[Color, ...] = ((0, 0, 0), (213, 94, 0), (0, 114, 178), (0, 158, 115), (230, 159, 0), (204, 121, 167))

GLYPH_W, GLYPH_H = 5, 7
# Rows top to bottom, "1" = ink. Letters are upper case only; text() maps lower case onto them.
_GLYPH_ROWS = {
    "0": "01110 10001 10011 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111",
    "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010",
    "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110",
    "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
    "A": "01110 10001 10001 11111 10001 10001 10001",
    "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110",
    "D": "11100 10010 10001 10001 10001 10010 11100",
    "E": "11111 10000 10000 11110 10000 10000 11111",
    "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111",
    "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110",
    "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001",
    "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001",
    "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110",
    "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101",
    "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110",
    "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110",
    "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010",
    "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 10001 01010 00100 00100 00100",
    "Z": "11111 00001 00010 00100 01000 10000 11111",
    " ": "00000 00000 00000 00000 00000 00000 00000",
    ".": "00000 00000 00000 00000 00000 01100 01100",
    ",": "00000 00000 00000 00000 01100 00100 01000",
    "-": "00000 00000 00000 11111 00000 00000 00000",
    "+": "00000 00100 00100 11111 00100 00100 00000",
    ":": "00000 01100 01100 00000 01100 01100 00000",
    "=": "00000 00000 11111 00000 11111 00000 00000",
    "(": "00010 00100 01000 01000 01000 00100 00010",
    ")": "01000 00100 00010 00010 00010 00100 01000",
    "/": "00000 00001 00010 00100 01000 10000 00000",
    "%": "11000 11001 00010 00100 01000 10011 00011",
    "_": "00000 00000 00000 00000 00000 00000 11111",
    "'": "01100 00100 01000 00000 00000 00000 00000",
    '"': "01010 01010 01010 00000 00000 00000 00000",
    "?": "01110 10001 00001 00010 00100 00000 00100",
    "!": "00100 00100 00100 00100 00100 00000 00100",
    "<": "00010 00100 01000 10000 01000 00100 00010",
    ">": "01000 00100 00010 00001 00010 00100 01000",
    "|": "00100 00100 00100 00100 00100 00100 00100",
    "*": "00000 00100 10101 01110 10101 00100 00000",
    "#": "01010 01010 11111 01010 11111 01010 01010",
    ";": "00000 01100 01100 00000 01100 00100 01000",
}
GLYPHS: dict[str, tuple[tuple[int, int], ...]] = {
    char: tuple((x, y) for y, row in enumerate(rows.split()) for x, bit in enumerate(row) if bit == "1")
    for char, rows in _GLYPH_ROWS.items()
}


def text_width(text: str, scale: int = 1) -> int:
    """Width in pixels of `text` drawn at `scale`: 6·scale per character (5 of ink, 1 of gap), no trailing gap."""
    return max(0, len(text) * (GLYPH_W + 1) * scale - scale)


class Canvas:
    """An RGB raster, stored as rows of bytes; drawing clips silently at the edges (a partly visible shape is fine)."""

    def __init__(self, width: int, height: int, background: Color = WHITE):
        if width <= 0 or height <= 0:
            raise ValueError(f"Canvas: size {width}×{height} must be positive in both directions")
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def pixel(self, x: int, y: int) -> Color:
        i = 3 * (y * self.width + x)
        return tuple(self.pixels[i : i + 3])  # type: ignore[return-value]

    def fill_rect(self, x: float, y: float, w: float, h: float, color: Color) -> None:
        x0, y0 = max(0, round(x)), max(0, round(y))
        x1, y1 = min(self.width, round(x + w)), min(self.height, round(y + h))
        if x1 <= x0 or y1 <= y0:
            return
        run = bytes(color) * (x1 - x0)
        for row in range(y0, y1):
            start = 3 * (row * self.width + x0)
            self.pixels[start : start + len(run)] = run

    def rect(self, x: float, y: float, w: float, h: float, color: Color, *, line_width: int = 1) -> None:
        """An outline, drawn inside the box."""
        self.fill_rect(x, y, w, line_width, color)
        self.fill_rect(x, y + h - line_width, w, line_width, color)
        self.fill_rect(x, y, line_width, h, color)
        self.fill_rect(x + w - line_width, y, line_width, h, color)

    def line(self, x0: float, y0: float, x1: float, y1: float, color: Color, *, line_width: int = 1) -> None:
        """A straight segment, stamped as squares of side line_width along its length."""
        n = max(1, math.ceil(max(abs(x1 - x0), abs(y1 - y0))))
        half = (line_width - 1) / 2
        for i in range(n + 1):
            t = i / n
            self.fill_rect(x0 + t * (x1 - x0) - half, y0 + t * (y1 - y0) - half, line_width, line_width, color)

    def text(self, x: float, y: float, text: str, *, color: Color = BLACK, scale: int = 1, align: str = "left") -> int:
        """Draws `text` with its top edge at y; align is "left", "center" or "right" about x. Returns the width."""
        width = text_width(text, scale)
        offsets = {"left": 0, "center": width / 2, "right": width}
        if align not in offsets:
            raise ValueError(f"Canvas.text: align={align!r}; use 'left', 'center' or 'right'")
        # Round the origin once: rounding every glyph pixel (banker's rounding of .5) would squash rows.
        left, top = round(x - offsets[align]), round(y)
        for i, char in enumerate(text):
            if char.upper() not in GLYPHS:
                raise ValueError(f"Canvas.text: no glyph for {char!r} in {text!r}; the font has {''.join(GLYPHS)}")
            for gx, gy in GLYPHS[char.upper()]:
                self.fill_rect(left + (i * (GLYPH_W + 1) + gx) * scale, top + gy * scale, scale, scale, color)
        return width

    def grey_image(
        self, x: int, y: int, rows: Sequence[Sequence[float]], *, lo: float, hi: float, scale: int = 1
    ) -> None:
        """Draws a 2-D array of values as grey levels, lo → black and hi → white (clamped), each value scale×scale."""
        span = hi - lo
        if span <= 0:
            raise ValueError(f"Canvas.grey_image: lo={lo} must be below hi={hi}")
        for r, values in enumerate(rows):
            line = b"".join(bytes([min(255, max(0, round(255 * (v - lo) / span)))] * 3) * scale for v in values)
            top = y + r * scale
            for row in range(max(0, top), min(self.height, top + scale)):
                x0 = max(0, x)
                clipped = line[3 * (x0 - x) : 3 * (x0 - x) + 3 * (self.width - x0)]
                start = 3 * (row * self.width + x0)
                self.pixels[start : start + len(clipped)] = clipped

    def to_png(self) -> bytes:
        return encode_png(self.width, self.height, self.pixels)

    def save_png(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.to_png())
        return path


def encode_png(width: int, height: int, rgb: bytes | bytearray) -> bytes:
    """An 8-bit RGB PNG: signature, IHDR, one zlib IDAT (filter type 0 on every row), IEND."""
    if len(rgb) != 3 * width * height:
        raise ValueError(f"encode_png: {len(rgb)} bytes for {width}×{height} RGB; expected {3 * width * height}")
    stride = 3 * width
    raw = b"".join(b"\x00" + bytes(rgb[row * stride : (row + 1) * stride]) for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, colour type 2 (RGB), no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def nice_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 × 10^k) covering [lo, hi]."""
    if hi <= lo:
        raise ValueError(f"nice_ticks: lo={lo} must be below hi={hi}")
    raw = (hi - lo) / max(1, max_ticks - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [round(k * step, 10) for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def _wrap(label: str, width: float, scale: int) -> list[str]:
    """Splits a label at spaces into lines no wider than `width` (a single long word keeps its own line)."""
    lines: list[str] = []
    for word in label.split(" "):
        if lines and text_width(f"{lines[-1]} {word}", scale) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def _format_tick(value: float) -> str:
    return f"{value:g}"


def bar_chart(
    canvas: Canvas,
    box: tuple[int, int, int, int],
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str = "",
    y_range: tuple[float, float] | None = None,
    colors: Sequence[Color] = PALETTE,
    scale: int = 1,
) -> dict[tuple[int, int], tuple[int, int, int, int]]:
    """Grouped bars in box = (x, y, w, h): one group per category, one bar per series, bars grow from y = 0.

    Draws the title, y axis with ticks and grid, category labels and a legend of the series names. Returns the
    pixel rectangle (x, y, w, h) of every bar keyed by (category index, series index), so callers and tests can
    find them.
    """
    if not categories or not series:
        raise ValueError("bar_chart: needs at least one category and one series")
    for name, values in series:
        if len(values) != len(categories):
            raise ValueError(f"bar_chart: series {name!r} has {len(values)} values for {len(categories)} categories")
    if y_range is None:
        values = [v for _, vs in series for v in vs] + [0.0]
        y_range = (min(values), max(values))
        if y_range[1] == y_range[0]:
            y_range = (y_range[0] - 1, y_range[1] + 1)
    lo, hi = y_range
    x, y, w, h = box
    line_h = (GLYPH_H + 4) * scale
    # wrap labels that would touch their neighbours (a gap of a fifth of the group stays free)
    label_lines = [_wrap(category, 0.8 * w / len(categories), scale) for category in categories]
    tick_w = max(text_width(_format_tick(t), scale) for t in nice_ticks(lo, hi, 8)) + 6 * scale
    legend_h = line_h
    plot_x, plot_y = x + tick_w, y + (line_h if title else 0) + legend_h
    plot_w, plot_h = w - tick_w, h - (plot_y - y) - line_h * max(map(len, label_lines))
    if plot_w <= 0 or plot_h <= 0:
        raise ValueError(f"bar_chart: box {box} is too small for its labels at scale {scale}")

    def to_y(value: float) -> float:
        return plot_y + plot_h * (hi - min(hi, max(lo, value))) / (hi - lo)

    if title:
        canvas.text(x + w / 2, y, title, scale=scale, align="center")
    legend_x = plot_x
    for i, (name, _) in enumerate(series):
        color = colors[i % len(colors)]
        canvas.fill_rect(legend_x, plot_y - legend_h, GLYPH_H * scale, GLYPH_H * scale, color)
        legend_x += GLYPH_H * scale + 3 * scale
        legend_x += canvas.text(legend_x, plot_y - legend_h, name, scale=scale) + 8 * scale
    for tick in nice_ticks(lo, hi, 8):
        ty = to_y(tick)
        canvas.fill_rect(plot_x, ty, plot_w, 1, LIGHT_GREY)
        canvas.text(
            plot_x - 4 * scale, ty - GLYPH_H * scale / 2, _format_tick(tick), color=GREY, scale=scale, align="right"
        )
    group_w = plot_w / len(categories)
    bar_w = group_w * 0.8 / len(series)
    zero_y = to_y(0.0)
    bars = {}
    for c in range(len(categories)):
        group_x = plot_x + c * group_w + group_w * 0.1
        for s, (_, values) in enumerate(series):
            top, bottom = sorted((to_y(values[c]), zero_y))
            rect = (round(group_x + s * bar_w), round(top), max(1, round(bar_w) - 1), max(1, round(bottom - top)))
            canvas.fill_rect(*rect, colors[s % len(colors)])
            bars[(c, s)] = rect
        for i, label in enumerate(label_lines[c]):
            label_y = plot_y + plot_h + 3 * scale + i * line_h
            canvas.text(plot_x + (c + 0.5) * group_w, label_y, label, scale=scale, align="center")
    canvas.fill_rect(plot_x, zero_y, plot_w, 1, BLACK)
    canvas.fill_rect(plot_x, plot_y, 1, plot_h, BLACK)
    return bars
