"""Compose a synthetic whole-slide image from the class textures.

A slide is a section of colon wall on white glass: a blob of tissue whose layers follow a
warped axis — mucosa (``NORM``) with a lymphoid follicle (``LYM``), a thin muscularis
mucosae (``MUS``), submucosa of fat (``ADI``) and lymphoid tissue, and muscularis propria
(``MUS``). A tumour slide adds one or two invasive tumours: a core of tumour epithelium
(``TUM``) with a rim of desmoplastic stroma (``STR``), sometimes central necrosis
(``DEB``) and a mucin pool (``MUC``); its box is the level-0 bounding box of the tumour's
``TUM`` / ``DEB`` / ``MUC`` cells, clipped to the tissue.

The layout is decided on a coarse grid (one cell per ``CELL`` px); pixels are painted
block by block (only the classes present in a block, each with the class painter of
:mod:`domains.pathology.synthetic.tissue`), blended with bilinearly upsampled soft class
weights, and rendered with the site's stain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from domains.pathology.synthetic.optics import Site, render
from domains.pathology.synthetic.tissue import field, paint

CELL = 16  # px per layout cell
BLOCK = 256  # px per painted block
CODES = ("ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM")


@dataclass
class SyntheticSlide:
    """A composed slide: RGB pixels, tumour boxes (level-0 ``[x0, y0, x1, y1]``), layout."""

    rgb: np.ndarray  # (H, W, 3) uint8
    tumour_boxes: list[list[int]]
    layout: np.ndarray  # (H / CELL, W / CELL) int: index into CODES
    tissue: np.ndarray  # (H / CELL, W / CELL) bool

    def class_fractions(self) -> dict[str, float]:
        """Share of tissue cells of each class (background excluded)."""
        cells = self.layout[self.tissue]
        return {code: float(np.mean(cells == i)) for i, code in enumerate(CODES)
                if code != "BACK"}


def _layout(grid: tuple[int, int], tumour: bool, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int, int]]]:
    """Class index per cell, tissue mask, and tumour boxes in cells (y0, x0, y1, x1)."""
    gh, gw = grid
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    ny, nx = (yy + 0.5) / gh * 2 - 1, (xx + 0.5) / gw * 2 - 1
    a, b = rng.uniform(0.75, 0.9, 2)
    tissue = np.sqrt((nx / a) ** 2 + (ny / b) ** 2) + 0.18 * field(grid, 6, rng) < 1.0
    angle = rng.uniform(-0.5, 0.5) + (np.pi / 2 if rng.random() < 0.5 else 0.0)
    axis = nx * np.cos(angle) + ny * np.sin(angle)
    if rng.random() < 0.5:
        axis = -axis
    ys, xs = np.nonzero(tissue)
    low, high = axis[ys, xs].min(), axis[ys, xs].max()
    depth = (axis - low) / max(high - low, 1e-6) + 0.05 * field(grid, 8, rng)
    code = {c: i for i, c in enumerate(CODES)}
    layout = np.full(grid, code["MUS"], dtype=np.int64)
    submucosa = (depth >= 0.42) & (depth < 0.68)
    layout[depth < 0.36] = code["NORM"]
    layout[submucosa] = np.where(field(grid, 5, rng)[submucosa] > -0.6, code["ADI"],
                                 code["LYM"])
    fy, fx = rng.uniform(0.2, 0.8) * gh, rng.uniform(0.2, 0.8) * gw
    follicle = np.hypot(yy - fy, xx - fx) < rng.uniform(2.5, 4.5)
    layout[follicle & (depth < 0.5)] = code["LYM"]
    boxes: list[tuple[int, int, int, int]] = []
    if tumour:
        inner = ndimage.binary_erosion(tissue, iterations=max(2, min(gh, gw) // 8))
        candidates = np.argwhere(inner if inner.any() else tissue)
        for _ in range(int(rng.integers(1, 3))):
            cy, cx = candidates[int(rng.integers(len(candidates)))]
            ry, rx = rng.uniform(0.12, 0.22, 2) * min(gh, gw)
            r = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) + 0.2 * field(grid, 4,
                                                                                      rng)
            core = (r < 1.0) & tissue
            if not core.any():
                core = np.zeros(grid, dtype=bool)
                core[cy, cx] = True
            layout[(r >= 1.0) & (r < 1.35) & tissue & (layout != code["TUM"])] = code["STR"]
            layout[core] = code["TUM"]
            if rng.random() < 0.5:
                layout[core & (r < 0.35)] = code["DEB"]
            if rng.random() < 0.4:
                py, px = cy + rng.normal(0, ry / 3), cx + rng.normal(0, rx / 3)
                layout[core & (np.hypot(yy - py, xx - px) < min(ry, rx) / 3)] = code["MUC"]
            cells = np.argwhere(core)
            (y0, x0), (y1, x1) = cells.min(0), cells.max(0) + 1
            boxes.append((int(y0), int(x0), int(y1), int(x1)))
    layout[~tissue] = code["BACK"]
    return layout, tissue, boxes


def _upsample(weights: np.ndarray, y0: int, x0: int, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of cell weights (cell centres) to the pixels of one block."""
    gy = (np.arange(y0, y0 + height, dtype=np.float32) + 0.5) / CELL - 0.5
    gx = (np.arange(x0, x0 + width, dtype=np.float32) + 0.5) / CELL - 0.5
    iy = np.clip(np.floor(gy).astype(int), 0, weights.shape[0] - 1)
    ix = np.clip(np.floor(gx).astype(int), 0, weights.shape[1] - 1)
    jy, jx = np.minimum(iy + 1, weights.shape[0] - 1), np.minimum(ix + 1, weights.shape[1] - 1)
    ty, tx = np.clip(gy - iy, 0, 1)[:, None], np.clip(gx - ix, 0, 1)[None, :]
    top = weights[iy][:, ix] * (1 - tx) + weights[iy][:, jx] * tx
    bottom = weights[jy][:, ix] * (1 - tx) + weights[jy][:, jx] * tx
    return top * (1 - ty) + bottom * ty  # (height, width)


def compose_slide(size: tuple[int, int], tumour: bool, stain: Site,
                  rng: np.random.Generator) -> SyntheticSlide:
    """Paint one slide.

    Args:
        size: (width, height) at level 0, multiples of ``CELL``.
        tumour: Whether the slide holds tumour regions.
        stain: The site's stain (already jittered for this slide if wanted).
        rng: Random generator.

    Returns:
        The slide's pixels, tumour boxes (level-0 px) and layout.
    """
    width, height = size
    if width % CELL or height % CELL or min(width, height) < 4 * CELL:
        raise ValueError(f"slide size must be multiples of {CELL} px and at least "
                         f"{4 * CELL} px, got {size}")
    grid = (height // CELL, width // CELL)
    layout, tissue, boxes = _layout(grid, tumour, rng)
    present = sorted(int(i) for i in np.unique(layout))
    soft = {i: ndimage.gaussian_filter((layout == i).astype(np.float32), 0.6) for i in present}
    glass = float(rng.uniform(0.0, 0.04))  # one neutral density for the slide's empty glass
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    for y0 in range(0, height, BLOCK):
        for x0 in range(0, width, BLOCK):
            bh, bw = min(BLOCK, height - y0), min(BLOCK, width - x0)
            cells = (slice(max(y0 // CELL - 1, 0), (y0 + bh) // CELL + 1),
                     slice(max(x0 // CELL - 1, 0), (x0 + bw) // CELL + 1))
            h = np.zeros((bh, bw), np.float32)
            e = np.zeros((bh, bw), np.float32)
            grey = np.zeros((bh, bw), np.float32)
            total = np.zeros((bh, bw), np.float32)
            for i in present:
                if soft[i][cells].max() < 0.02:
                    continue
                weight = _upsample(soft[i], y0, x0, bh, bw)
                if CODES[i] == "BACK":  # uniform glass (a tile painter's haze would show seams)
                    ph, pe, pg = np.float32(0.008), np.float32(0.012), np.float32(glass)
                else:
                    ph, pe, pg = paint(CODES[i], (bh, bw), rng)
                h += weight * ph
                e += weight * pe
                if pg is not None:
                    grey += weight * pg
                total += weight
            total = np.maximum(total, 1e-6)
            rgb[y0:y0 + bh, x0:x0 + bw] = render(h / total, e / total, grey / total, stain,
                                                 rng)
    return SyntheticSlide(rgb, [[x0 * CELL, y0 * CELL, x1 * CELL, y1 * CELL]
                                for y0, x0, y1, x1 in boxes], layout, tissue)
