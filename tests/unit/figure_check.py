"""Reading the tools' PNG figures back with Pillow: their size, that they are not blank, and their panels.

A panel is found by its background, sing_core.figures.PANEL_FACE (chart areas and the frame around image tiles), a
colour no grey image pixel and no anti-aliased edge takes exactly. The figure is cut recursively along rows and
columns that hold none of it (an XY cut), so panels laid out in rows and columns come out one by one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sing_core.figures import PANEL_FACE_RGB


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG", image.format
        return np.asarray(image.convert("RGB"))


def is_blank(pixels: np.ndarray) -> bool:
    """One colour almost everywhere: fewer than 1 % of the pixels differ from the most common one."""
    flat = pixels.reshape(-1, 3)
    _, counts = np.unique(flat, axis=0, return_counts=True)
    return counts.max() > 0.99 * len(flat)


def _runs(profile: np.ndarray, min_length: int) -> list[tuple[int, int]]:
    """[start, end) of the runs where profile is true, at least min_length long."""
    padded = np.concatenate([[False], profile, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= min_length]


def panels(pixels: np.ndarray, min_side: int = 12) -> list[tuple[int, int, int, int]]:
    """Boxes (top, left, bottom, right) of the panels, in reading order."""
    mask = np.all(pixels == PANEL_FACE_RGB, axis=-1)
    found: list[tuple[int, int, int, int]] = []

    def cut(top: int, left: int, block: np.ndarray) -> None:
        rows = _runs(block.any(axis=1), min_side)
        columns = _runs(block.any(axis=0), min_side)
        if len(rows) == 1 and len(columns) == 1:
            (r0, r1), (c0, c1) = rows[0], columns[0]
            found.append((int(top + r0), int(left + c0), int(top + r1), int(left + c1)))
        elif len(rows) > 1:
            for r0, r1 in rows:
                cut(top + r0, left, block[r0:r1])
        else:
            for c0, c1 in columns:
                cut(top, left + c0, block[:, c0:c1])

    cut(0, 0, mask)
    return found
