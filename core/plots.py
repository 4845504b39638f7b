"""Figures people would rather see than read: training curves, confusion matrices, galleries.

Every function writes a PNG (atomically) and returns its path. Matplotlib runs
headless (Agg backend).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from core.atomic import atomic_write_bytes  # noqa: E402


def _save(figure: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def read_metrics_csv(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Read a Lightning ``CSVLogger`` metrics file into series of (step, value).

    Args:
        path: The ``metrics.csv`` file.

    Returns:
        Metric name -> list of (step, value), in file order, empty cells skipped.
    """
    series: dict[str, list[tuple[int, float]]] = {}
    with Path(path).open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            step = int(float(row.get("step") or 0))
            for key, value in row.items():
                if key in ("step", "epoch") or value in (None, ""):
                    continue
                series.setdefault(key, []).append((step, float(value)))
    return series


def plot_training_curves(
    runs: dict[str, dict[str, list[tuple[int, float]]]],
    metrics: Sequence[str],
    path: str | Path,
    smooth: int = 10,
) -> Path:
    """Plot chosen metrics of one or several runs against the step, one panel per metric.

    Args:
        runs: Run label -> metric series (as :func:`read_metrics_csv` returns).
        metrics: Metric names to plot (missing ones are left out).
        path: Output PNG.
        smooth: Moving-average window for noisy per-step series.

    Returns:
        The PNG path.
    """
    present = [m for m in metrics if any(m in series for series in runs.values())]
    figure, axes = plt.subplots(1, max(len(present), 1), figsize=(5 * max(len(present), 1), 3.6),
                                squeeze=False)
    for axis, metric in zip(axes[0], present, strict=False):
        for label, series in runs.items():
            if metric not in series:
                continue
            steps, values = map(np.asarray, zip(*series[metric], strict=True))
            if len(values) > smooth > 1:
                kernel = np.ones(smooth) / smooth
                values = np.convolve(values, kernel, mode="valid")
                steps = steps[smooth - 1 :]
            axis.plot(steps, values, label=label)
        axis.set_title(metric)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return _save(figure, path)


def plot_confusion_matrix(
    matrix: np.ndarray, classnames: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Plot a row-normalised confusion matrix with counts.

    Args:
        matrix: (C, C) counts, rows = true class, columns = predicted class.
        classnames: The C class names.
        path: Output PNG.
        title: Figure title.

    Returns:
        The PNG path.
    """
    matrix = np.asarray(matrix, dtype=float)
    rates = matrix / np.clip(matrix.sum(1, keepdims=True), 1, None)
    size = 1.0 + 0.55 * len(classnames)
    figure, axis = plt.subplots(figsize=(size + 1.5, size))
    image = axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(classnames)), classnames, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(range(len(classnames)), classnames, fontsize=8)
    for i in range(len(classnames)):
        for j in range(len(classnames)):
            if matrix[i, j]:
                axis.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=7,
                          color="white" if rates[i, j] > 0.5 else "black")
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.colorbar(image, fraction=0.046)
    return _save(figure, path)


@dataclass
class GalleryItem:
    """One retrieved item: an RGB picture (H, W, 3) in [0, 1], a caption, relevance.

    ``relevant=None`` (relevance unknown, e.g. a user's search) draws a grey frame.
    """

    picture: np.ndarray
    caption: str
    relevant: bool | None = None


def plot_gallery(rows: Sequence[tuple[str, Sequence[GalleryItem]]], path: str | Path) -> Path:
    """Plot a retrieval gallery: one row per query, its top hits left to right.

    Relevant hits get a green frame, irrelevant ones a red one, unknown ones grey.

    Args:
        rows: (query text, ranked hits) pairs.
        path: Output PNG.

    Returns:
        The PNG path.
    """
    columns = max(1, max((len(items) for _, items in rows), default=1))
    figure, axes = plt.subplots(len(rows), columns, figsize=(2.3 * columns, 2.6 * len(rows)),
                                squeeze=False)
    for r, (query, items) in enumerate(rows):
        for c in range(columns):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c >= len(items):
                axis.axis("off")
                continue
            item = items[c]
            axis.imshow(np.clip(item.picture, 0, 1))
            colour = {True: "tab:green", False: "tab:red"}.get(item.relevant, "tab:gray")
            for spine in axis.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(4)
            axis.set_title(item.caption, fontsize=6)
        axes[r][0].set_ylabel(query, fontsize=8, rotation=0, ha="right", va="center", wrap=True)
    return _save(figure, path)


def tile_grid(scores: Sequence[float] | np.ndarray, positions: np.ndarray, tile_size: int,
              dimensions: tuple[int, int]) -> np.ndarray:
    """Per-tile scores laid out on the tile grid of a large image (NaN where no tile).

    Args:
        scores: (T,) score of each tile.
        positions: (T, 2) (x, y) of each tile's top-left corner in full-resolution pixels.
        tile_size: Tile side in full-resolution pixels.
        dimensions: (width, height) of the full-resolution image.

    Returns:
        (ceil(height / tile_size), ceil(width / tile_size)) float array.
    """
    width, height = (int(v) for v in dimensions)
    grid = np.full((-(-height // tile_size), -(-width // tile_size)), np.nan)  # (rows, cols)
    positions = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(values) != len(positions):
        raise ValueError(f"{len(values)} scores for {len(positions)} tile positions")
    grid[positions[:, 1] // tile_size, positions[:, 0] // tile_size] = values
    return grid


def plot_tile_heatmap(
    background: np.ndarray,
    scores: Sequence[float] | np.ndarray,
    positions: np.ndarray,
    tile_size: int,
    dimensions: tuple[int, int],
    path: str | Path,
    title: str = "",
    label: str = "score",
    boxes: Sequence[Sequence[float]] = (),
) -> Path:
    """Plot per-tile scores as a translucent heat map over a picture of the whole image.

    Used for whole-slide images (a tumour probability per tissue tile over the slide
    thumbnail) and for any large image scored tile by tile. Cells without a tile stay
    clear.

    Args:
        background: (h, w, 3) RGB picture of the whole image in [0, 1] (a thumbnail).
        scores: (T,) score of each tile, in [0, 1].
        positions: (T, 2) (x, y) of each tile's top-left corner in full-resolution pixels.
        tile_size: Tile side in full-resolution pixels.
        dimensions: (width, height) of the full-resolution image.
        path: Output PNG.
        title: Figure title.
        label: Colour-bar label.
        boxes: Outlines to draw, ``(x0, y0, x1, y1)`` in full-resolution pixels (e.g. an
            annotated tumour region).

    Returns:
        The PNG path.
    """
    width, height = (int(v) for v in dimensions)
    grid = tile_grid(scores, positions, tile_size, dimensions)  # (rows, columns)
    rows, columns = grid.shape
    aspect = height / max(width, 1)
    figure, axis = plt.subplots(figsize=(7, max(2.5, 7 * aspect)))
    axis.imshow(np.clip(background, 0, 1), extent=(0, width, height, 0))
    image = axis.imshow(np.ma.masked_invalid(grid), cmap="inferno", vmin=0, vmax=1, alpha=0.55,
                        extent=(0, columns * tile_size, rows * tile_size, 0),
                        interpolation="nearest")
    for x0, y0, x1, y1 in boxes:
        axis.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False,
                                     edgecolor="tab:cyan", linewidth=1.5, linestyle="--"))
    axis.set_xlim(0, width)
    axis.set_ylim(height, 0)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title(title, fontsize=9)
    figure.colorbar(image, fraction=0.046, label=label)
    return _save(figure, path)
