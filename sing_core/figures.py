"""What the demo's figure and the bench's chart share: matplotlib on its Agg backend, one style, image mosaics.

matplotlib is imported only when a figure is drawn (the tools' requirements/tools.txt installs it); the engine and
the webui adapter never import this module. Figures are matplotlib.figure.Figure objects drawn by the Agg canvas
directly, not through pyplot, so no display, no global figure state and no backend switch are involved.

Every panel's background is PANEL_FACE, a faint blue that no grey image pixel can take (its R, G, B differ): a
reader of the PNG finds the panels by it (tests/unit/figure_check.py counts them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

PANEL_FACE = "#f4f6fa"
PANEL_FACE_RGB = (0xF4, 0xF6, 0xFA)
# Okabe-Ito: distinct for colour-blind readers and in greyscale print.
COLORS = {"true": "#000000", "without": "#d55e00", "with": "#0072b2", "half": "#56b4e9"}
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.facecolor": PANEL_FACE,
    "axes.edgecolor": "#444444",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


def style():
    """The figures' rcParams, as a context: draw inside it (matplotlib reads them when each artist is made)."""
    import matplotlib as mpl

    return mpl.rc_context(STYLE)


def new_figure(width_in: float, height_in: float):
    """A Figure of that size in inches on an Agg canvas (call inside style())."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in))
    FigureCanvasAgg(figure)
    return figure


def save_png(figure, path: Path, dpi: int) -> Path:
    """The whole figure, exactly width_in·dpi × height_in·dpi pixels (no tight cropping, so the size is known)."""
    figure.savefig(path, dpi=dpi, format="png")
    return path


def mosaic(tiles: Sequence, gap: int = 1):
    """Tiles of one shape side by side, `gap` pixels apart inside a `gap` border. Grey tiles (H, W) give a float
    array with NaN in the gaps (image_panel shows NaN in PANEL_FACE); RGB tiles (H, W, 3) give uint8 with the gaps
    in PANEL_FACE."""
    import numpy as np

    first = np.asarray(tiles[0])
    height, width = first.shape[:2]
    shape = (height + 2 * gap, len(tiles) * (width + gap) + gap, *first.shape[2:])
    if first.ndim == 2:
        out = np.full(shape, np.nan)
    else:
        out = np.empty(shape, dtype=np.uint8)
        out[:] = PANEL_FACE_RGB
    for i, tile in enumerate(tiles):
        left = gap + i * (width + gap)
        out[gap : gap + height, left : left + width] = tile
    return out


def image_panel(ax, tiles: Sequence, *, lo: float = 0.0, hi: float = 255.0) -> None:
    """Tiles in one panel without ticks or frame: grey tiles from lo (black) to hi (white), or RGB uint8 tiles."""
    import matplotlib as mpl

    image = mosaic(tiles)
    if image.ndim == 3:
        ax.imshow(image, interpolation="nearest")
    else:
        cmap = mpl.colormaps["gray"].with_extremes(bad=PANEL_FACE)
        ax.imshow(image, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
