"""What the plots of `make bench` and `python -m reliability` share. They are committed in
docs/images/, where the README shows them, and drawn again by every full run, so a plot's diff should
be its data: matplotlib's Agg backend (no display), a fixed size in pixels with fixed margins (no
tight_layout, whose margins follow the tick labels), legends at fixed places, a modest DPI, and no
metadata that changes between runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Tuple

from bench.common import ROOT

IMAGES = ROOT / "docs" / "images"
DPI = 100
FONT_SIZE = 8


def figure(width_px: int, height_px: int, *, columns: int = 1,
           margins: Tuple[float, float, float, float] = (0.07, 0.97, 0.15, 0.85), wspace: float = 0.3) -> Any:
    """(figure, axes) of `width_px` x `height_px` with `columns` side by side; `margins` are the
    plot area's left, right, bottom and top as fractions of the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": FONT_SIZE, "axes.titlesize": FONT_SIZE + 1, "legend.fontsize": FONT_SIZE - 1})
    drawn, axes = plt.subplots(1, columns, figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    left, right, bottom, top = margins
    drawn.subplots_adjust(left=left, right=right, bottom=bottom, top=top, wspace=wspace)
    return drawn, axes


def save(drawn: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    # No "Software" entry: the PNG changes when the data does, not when matplotlib's version does.
    drawn.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(drawn)
    return path
