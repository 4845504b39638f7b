"""Paint the nine colorectal tissue classes as haematoxylin / eosin concentration maps.

Each painter takes a shape and a random generator and returns ``(h, e, grey)``: float32
(H, W) stain concentrations in optical-density units (``grey`` a neutral density or None),
which :func:`domains.pathology.synthetic.optics.render` turns into a site's RGB. Scale is
that of a 20x scan (0.5 um/px): a lymphocyte nucleus ~11 px across, a crypt ~70 px.

What each class gets (the morphology the knowledge card describes):

- ``ADI``  polygonal clear vacuoles with thin eosin membranes, few flat peripheral nuclei;
- ``BACK`` near-white glass, faint grey haze, dust specks, rarely a faint tissue shred;
- ``DEB``  patchy granular eosin, karyorrhectic nuclear dust, pyknotic nuclei, red cells;
- ``LYM``  packed small round hyperchromatic nuclei with scant cytoplasm;
- ``MUC``  pale blue-grey wisps (ridges of a smooth random field) with few floating cells;
- ``MUS``  dense eosinophilic long parallel fibres, elongated cigar nuclei along them;
- ``NORM`` regular round crypts: lumen, epithelium with goblet vacuoles, basal nuclei in a
  ring, lamina propria with small round cells between;
- ``STR``  loose wavy pale fibres with gaps, few spindle fibroblast nuclei along them;
- ``TUM``  crowded irregular (harmonic-perturbed) glands, thick epithelium, large
  pleomorphic hyperchromatic nuclei without polarity, sometimes dirty necrosis in lumens.

Drawing is vectorised numpy: nuclei are splatted as soft ellipses all at once
(``np.bincount`` over their patches), fields are low-resolution noise zoomed up.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

Maps = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]
F32 = np.float32


def _interpolation(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) linear-interpolation weights spreading n_in - 2 cells over n_out px."""
    position = (np.arange(n_out, dtype=F32) + 0.5) * (n_in - 2) / n_out + 0.5
    low = np.floor(position).astype(int)
    weight = np.zeros((n_out, n_in), dtype=F32)
    weight[np.arange(n_out), low] = 1 - (position - low)
    weight[np.arange(n_out), np.minimum(low + 1, n_in - 1)] += position - low
    return weight


def field(shape: tuple[int, int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth random field (about zero mean, unit std) with features ~``scale`` px wide."""
    small = (int(shape[0] / scale) + 3, int(shape[1] / scale) + 3)
    noise = ndimage.gaussian_filter(rng.standard_normal(small, dtype=F32), 0.8, mode="wrap")
    big = _interpolation(shape[0], small[0]) @ noise @ _interpolation(shape[1], small[1]).T
    return (big - big.mean()) / (big.std() + 1e-6)


def grain(shape: tuple[int, int], rng: np.random.Generator, sigma: float = 1.0) -> np.ndarray:
    """Fine granular texture (unit std) at ~``sigma`` px."""
    g = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=F32), sigma)
    return g / (g.std() + 1e-6)


def jittered_points(shape: tuple[int, int], spacing: float, jitter: float,
                    rng: np.random.Generator, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Points on a randomly shifted square grid, each moved by up to ``jitter`` x spacing."""
    ys = np.arange(-margin, shape[0] + margin, spacing) + rng.uniform(0, spacing)
    xs = np.arange(-margin, shape[1] + margin, spacing) + rng.uniform(0, spacing)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    yy = yy.ravel() + rng.uniform(-jitter, jitter, yy.size) * spacing
    xx = xx.ravel() + rng.uniform(-jitter, jitter, xx.size) * spacing
    return yy, xx


def splat(shape: tuple[int, int], cy: np.ndarray, cx: np.ndarray, ry: np.ndarray,
          rx: np.ndarray, theta: np.ndarray, value: np.ndarray, edge: float = 0.9) -> np.ndarray:
    """Sum of soft filled ellipses (nuclei): ``rx`` along ``theta``, ``ry`` across it.

    Args:
        shape: (H, W) of the output.
        cy, cx: (N,) centres in pixels (may lie outside; clipped parts are dropped).
        ry, rx: (N,) semi-axes in pixels.
        theta: (N,) orientation of the ``rx`` axis (radians, from +x towards +y).
        value: (N,) concentration inside each ellipse.
        edge: Width of the soft edge in pixels.

    Returns:
        (H, W) float32 map.
    """
    height, width = shape
    if len(cy) == 0:
        return np.zeros(shape, dtype=F32)
    radius = int(np.ceil(max(float(np.max(rx)), float(np.max(ry))) + edge)) + 1
    offsets = np.arange(-radius, radius + 1, dtype=F32)
    cy, cx = np.asarray(cy, F32), np.asarray(cx, F32)
    iy, ix = np.round(cy), np.round(cx)
    fy = (iy - cy)[:, None, None] + offsets[None, :, None]  # (N, K, 1) from the true centre
    fx = (ix - cx)[:, None, None] + offsets[None, None, :]  # (N, 1, K)
    cos = np.cos(theta).astype(F32)[:, None, None]
    sin = np.sin(theta).astype(F32)[:, None, None]
    u = (fx * cos + fy * sin) / np.asarray(rx, F32)[:, None, None]
    v = (fy * cos - fx * sin) / np.asarray(ry, F32)[:, None, None]
    d2 = u * u + v * v  # (N, K, K): 1 on the ellipse; 1 - d ~ (1 - d2) / 2 near the edge
    alpha = np.clip((1.0 - d2) * (np.asarray(ry, F32)[:, None, None] / (2 * edge)) + 0.5,
                    0.0, 1.0)
    # Splat onto a canvas padded by the patch radius (centres outside it are dropped), so
    # every patch pixel has an index and no per-pixel masking is needed; then crop.
    keep = (iy > -radius) & (iy < height + radius) & (ix > -radius) & (ix < width + radius)
    pad_h, pad_w = height + 4 * radius, width + 4 * radius
    steps = offsets.astype(np.int64)
    row = (iy[keep].astype(np.int64) + 2 * radius)[:, None] + steps[None, :]  # (M, K)
    col = (ix[keep].astype(np.int64) + 2 * radius)[:, None] + steps[None, :]  # (M, K)
    index = row[:, :, None] * pad_w + col[:, None, :]  # (M, K, K)
    weights = alpha[keep] * np.asarray(value, F32)[keep][:, None, None]
    canvas = np.bincount(index.ravel(), weights=weights.ravel(), minlength=pad_h * pad_w)
    out = canvas.reshape(pad_h, pad_w)[2 * radius:2 * radius + height,
                                       2 * radius:2 * radius + width]
    return out.astype(F32)


def _nuclei(shape: tuple[int, int], cy: np.ndarray, cx: np.ndarray, ry: np.ndarray,
            rx: np.ndarray, theta: np.ndarray, value: np.ndarray, rng: np.random.Generator,
            cap: float = 1.6) -> np.ndarray:
    """Nuclei (soft ellipses); overlaps saturate at ``cap``. ``paint`` adds the chromatin."""
    return np.minimum(splat(shape, cy, cx, ry, rx, theta, value), cap)


def _uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return rng.uniform(low, high, n)


def _scatter(shape: tuple[int, int], n: int, rng: np.random.Generator,
             mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random positions, inside ``mask`` when given (uniform over its pixels)."""
    if mask is None:
        return rng.uniform(0, shape[0], n), rng.uniform(0, shape[1], n)
    index = np.flatnonzero(mask)
    if index.size == 0:
        return np.zeros(0), np.zeros(0)
    pick = index[rng.integers(0, index.size, n)]
    return (pick // shape[1] + rng.uniform(-0.5, 0.5, n), pick % shape[1]
            + rng.uniform(-0.5, 0.5, n))


def _round_cells(shape: tuple[int, int], n: int, radius: tuple[float, float],
                 darkness: tuple[float, float], rng: np.random.Generator,
                 mask: np.ndarray | None = None) -> np.ndarray:
    """Small round nuclei (lymphocytes, plasma cells) scattered at random."""
    cy, cx = _scatter(shape, n, rng, mask)
    r = _uniform(rng, *radius, cy.size)
    return _nuclei(shape, cy, cx, r, r * _uniform(rng, 1.0, 1.15, cy.size),
                   rng.uniform(0, np.pi, cy.size), _uniform(rng, *darkness, cy.size), rng)


def adipose(shape: tuple[int, int], rng: np.random.Generator) -> Maps:
    """Polygonal clear fat cells: membranes where the nearest cell centre changes."""
    spacing = rng.uniform(45, 80)
    cy, cx = jittered_points(shape, spacing, 0.35, rng, margin=spacing)
    seeds = np.zeros(shape, dtype=np.int32)
    keep = (cy >= 0) & (cy < shape[0]) & (cx >= 0) & (cx < shape[1])
    seeds[cy[keep].astype(int), cx[keep].astype(int)] = np.arange(1, keep.sum() + 1)
    if keep.sum() == 0:
        seeds[shape[0] // 2, shape[1] // 2] = 1
    _, (iy, ix) = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    cell = seeds[iy, ix]
    wall = np.zeros(shape, dtype=bool)
    wall[:-1] |= cell[:-1] != cell[1:]
    wall[:, :-1] |= cell[:, :-1] != cell[:, 1:]
    membrane = ndimage.gaussian_filter(wall.astype(F32), 0.9) * 2.2
    e = membrane * rng.uniform(0.35, 0.5) * (1 + 0.15 * grain(shape, rng)) + 0.01
    n = int(rng.integers(2, 8))
    wy, wx = np.nonzero(wall)
    pick = rng.integers(0, max(wy.size, 1), n) if wy.size else np.zeros(0, int)
    theta = rng.uniform(0, np.pi, pick.size)
    h = _nuclei(shape, wy[pick].astype(float), wx[pick].astype(float),
                _uniform(rng, 1.8, 2.6, pick.size), _uniform(rng, 5.0, 8.0, pick.size), theta,
                _uniform(rng, 0.7, 1.0, pick.size), rng) + 0.04 * membrane
    return h, e.astype(F32), None


def background(shape: tuple[int, int], rng: np.random.Generator) -> Maps:
    """Empty glass: grey haze, dust specks, and in a few tiles a faint tissue shred."""
    grey = (rng.uniform(0.0, 0.06) + 0.012 * field(shape, 60, rng)).clip(0).astype(F32)
    n = int(rng.integers(0, 6))
    cy, cx = _scatter(shape, n, rng)
    r = _uniform(rng, 0.8, 2.5, n)
    grey += splat(shape, cy, cx, r, r * 1.5, rng.uniform(0, np.pi, n),
                  _uniform(rng, 0.1, 0.4, n))
    h = (0.01 + 0.006 * field(shape, 40, rng)).clip(0).astype(F32)
    e = (0.015 + 0.008 * field(shape, 40, rng)).clip(0).astype(F32)
    if rng.random() < 0.15:  # a faint shred of tissue at the edge of the section
        shred = (field(shape, 30, rng) > 1.6).astype(F32)
        e += ndimage.gaussian_filter(shred, 2.0) * 0.15
    return h, e, grey


def debris(shape: tuple[int, int], rng: np.random.Generator) -> Maps:
    """Necrosis: patchy granular eosin, nuclear dust in clusters, pyknotic nuclei, red cells."""
    patch = field(shape, 25, rng)
    e = (0.22 + 0.12 * patch + 0.08 * grain(shape, rng, 1.2)).clip(0.02)
    e = np.where(patch < -1.0, e * 0.3, e)  # pale holes
    clusters = int(rng.integers(4, 10))
    ky, kx = _scatter(shape, clusters, rng)
    n = int(rng.integers(150, 320))
    owner = rng.integers(0, clusters, n)
    cy = ky[owner] + rng.normal(0, 22, n)
    cx = kx[owner] + rng.normal(0, 22, n)
    r = _uniform(rng, 1.0, 2.6, n)
    h = _nuclei(shape, cy, cx, r, r * _uniform(rng, 1.0, 1.8, n), rng.uniform(0, np.pi, n),
                _uniform(rng, 0.8, 1.3, n), rng)
    h += _round_cells(shape, int(rng.integers(15, 40)), (2.5, 4.0), (1.2, 1.5), rng)  # pyknotic
    h += 0.05 * (1 + 0.5 * patch.clip(-1, 1))
    if rng.random() < 0.6:  # haemorrhage: red cells, strongly eosinophilic discs
        m = int(rng.integers(20, 80))
        by, bx = _scatter(shape, 1, rng)
        ry = by[0] + rng.normal(0, 25, m)
        rx_ = bx[0] + rng.normal(0, 25, m)
        rr = _uniform(rng, 2.8, 3.6, m)
        e = e + np.minimum(splat(shape, ry, rx_, rr, rr, np.zeros(m), np.full(m, 0.55)), 0.8)
    return h.astype(F32), e.astype(F32), None


def lymphocytes(shape: tuple[int, int], rng: np.random.Generator) -> Maps:
    """Sheets of small round dark nuclei with scant cytoplasm."""
    spacing = rng.uniform(10.5, 13.0)
    cy, cx = jittered_points(shape, spacing, 0.3, rng, margin=6)
    n = cy.size
    r = _uniform(rng, 4.2, 5.6, n)
    h = _nuclei(shape, cy, cx, r, r * _uniform(rng, 1.0, 1.15, n), rng.uniform(0, np.pi, n),
                _uniform(rng, 1.05, 1.4, n), rng)
    e = (0.12 + 0.04 * field(shape, 20, rng) + 0.03 * grain(shape, rng)).clip(0.02)
    return h, e.astype(F32), None


def _wisps(shape: tuple[int, int], scale: float, rng: np.random.Generator,
           width: float) -> np.ndarray:
    """Thin wavy strands along the zero lines of a smooth field (0..1)."""
    return np.exp(-(field(shape, scale, rng) / width) ** 2)


def mucus(shape: tuple[int, int], rng: np.random.Generator) -> Maps:
    """Pale blue-grey stringy mucin, few floating cells."""
    strands = 0.6 * _wisps(shape, 28, rng, 0.25) + 0.4 * _wisps(shape, 14, rng, 0.35)
    lake = (0.7 + 0.3 * field(shape, 50, rng)).clip(0.2, 1.2)
    h = (rng.uniform(0.08, 0.13) + rng.uniform(0.12, 0.2) * strands) * lake
    e = (rng.uniform(0.03, 0.06) + 0.05 * strands) * lake
    h = h + _round_cells(shape, int(rng.integers(0, 8)), (3.5, 5.0), (0.7, 1.0), rng)
    return h.astype(F32), e.astype(F32), None


def _coordinates(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(F32)
    return yy, xx


def smooth_muscle(shape: tuple[int, int], rng: np.random.Generator,
                  variant: bool = False) -> Maps:
    """Dense eosinophilic long parallel fibres with elongated nuclei along them.

    ``variant``: muscle cut obliquely, looser and paler, with wavier fibres (close to
    stroma).
    """
    angle = rng.uniform(0, np.pi)
    yy, xx = _coordinates(shape)
    across = -xx * np.sin(angle) + yy * np.cos(angle)  # distance across the fibres
    period = rng.uniform(5.0, 8.0)
    warp = (rng.uniform(3.0, 6.0) if variant else 1.5) * field(shape, 60, rng)
    fibres = 0.5 + 0.5 * np.sin(2 * np.pi * (across + warp) / period)
    bundles = 0.5 + 0.5 * np.sin(2 * np.pi * (across + 4 * warp) / rng.uniform(50, 90))
    cleft = np.where(bundles > 0.97, 0.45, 1.0)  # thin pale clefts between fascicles
    level = rng.uniform(0.3, 0.45) if variant else rng.uniform(0.5, 0.62)
    e = (level + 0.12 * fibres + 0.05 * grain(shape, rng)) * cleft
    cy, cx = jittered_points(shape, rng.uniform(24, 32), 0.45, rng, margin=12)
    n = cy.size
    h = _nuclei(shape, cy, cx, _uniform(rng, 2.2, 3.2, n), _uniform(rng, 10, 16, n),
                angle + rng.normal(0, 0.06, n), _uniform(rng, 0.8, 1.1, n), rng)
    return (h + 0.03).astype(F32), e.astype(F32), None


def stroma(shape: tuple[int, int], rng: np.random.Generator, variant: bool = False) -> Maps:
    """Loose wavy pale collagen with gaps and scattered spindle fibroblasts.

    ``variant``: cellular (desmoplastic) stroma, close to smooth muscle: denser, straighter,
    more eosinophilic fibres and two to three times the fibroblasts.
    """
    angle = rng.uniform(0, np.pi)
    yy, xx = _coordinates(shape)
    across = -xx * np.sin(angle) + yy * np.cos(angle)
    wave = (rng.uniform(1.5, 3.5) if variant else 7.0) * field(shape, 35, rng)
    period = rng.uniform(6.5, 10.0) if variant else rng.uniform(9.0, 14.0)
    fibre = np.clip(np.sin(2 * np.pi * (across + wave) / period) - 0.2, 0, None) / 0.8
    density = (0.75 + 0.35 * field(shape, 45, rng)).clip(0.2, 1.2)
    amount = rng.uniform(0.38, 0.5) if variant else rng.uniform(0.28, 0.38)
    base = rng.uniform(0.15, 0.3) if variant else 0.08
    e = (base + amount * fibre * density + 0.03 * grain(shape, rng)).clip(0.02)
    n = int(rng.integers(25, 50)) if variant else int(rng.integers(10, 24))
    cy, cx = _scatter(shape, n, rng)
    h = _nuclei(shape, cy, cx, _uniform(rng, 1.7, 2.4, n), _uniform(rng, 7, 11, n),
                angle + rng.normal(0, 0.3, n), _uniform(rng, 0.75, 1.0, n), rng)
    h += _round_cells(shape, int(rng.integers(0, 8)), (4.0, 5.0), (1.0, 1.3), rng)
    return (h + 0.03).astype(F32), e.astype(F32), None


def _gland_distance(shape: tuple[int, int], cy: np.ndarray, cx: np.ndarray,
                    radius: np.ndarray, aspect: np.ndarray, angle: np.ndarray,
                    wobble: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: the smallest normalised distance to a gland centre (1 = its outer edge),
    and the index of that gland. Computed on a half-resolution grid (distances are smooth
    at that scale), upsampled bilinearly (the owner by repetition).

    ``wobble`` (G, K, 2) holds amplitudes and phases of harmonics 2.. that make a gland's
    outline irregular (tumour); None keeps outlines elliptical (normal crypts).
    """
    half = ((shape[0] + 1) // 2, (shape[1] + 1) // 2)
    best = np.full(half, np.inf, dtype=F32)
    owner = np.zeros(half, dtype=np.int32)
    for g in range(cy.size):
        reach = (radius[g] * max(aspect[g], 1.0) * (
            1.0 if wobble is None else 1.0 + float(wobble[g, :, 0].sum())) + 2) / 2
        gy, gx = cy[g] / 2, cx[g] / 2
        y0, y1 = max(int(gy - reach), 0), min(int(gy + reach) + 1, half[0])
        x0, x1 = max(int(gx - reach), 0), min(int(gx + reach) + 1, half[1])
        if y0 >= y1 or x0 >= x1:
            continue
        dy = 2 * np.arange(y0, y1, dtype=F32)[:, None] + F32(0.5 - cy[g])  # (h, 1) full px
        dx = 2 * np.arange(x0, x1, dtype=F32)[None, :] + F32(0.5 - cx[g])  # (1, w)
        c, s = F32(np.cos(angle[g])), F32(np.sin(angle[g]))
        u, v = (dx * c + dy * s) / F32(aspect[g]), dy * c - dx * s  # (h, w)
        d = np.sqrt(u * u + v * v) / F32(radius[g])
        if wobble is not None:
            phi = np.arctan2(v, u)
            d = d / (1 + sum(F32(wobble[g, k, 0]) * np.cos((k + 2) * phi + F32(wobble[g, k, 1]))
                             for k in range(wobble.shape[1])))
        window = best[y0:y1, x0:x1]
        closer = d < window
        window[closer] = d[closer]
        owner[y0:y1, x0:x1][closer] = g
    full = (slice(0, shape[0]), slice(0, shape[1]))
    smooth = _twice(shape[0], half[0]) @ np.minimum(best, 10.0) @ _twice(shape[1], half[1]).T
    return smooth, np.repeat(np.repeat(owner, 2, 0), 2, 1)[full]


def _twice(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) bilinear weights from a half-resolution grid to full pixels."""
    position = np.clip((np.arange(n_out, dtype=F32) + 0.5) / 2 - 0.5, 0, n_in - 1)
    low = np.minimum(np.floor(position).astype(int), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    weight = np.zeros((n_out, n_in), dtype=F32)
    weight[np.arange(n_out), low] = 1 - (position - low)
    weight[np.arange(n_out), high] += position - low
    return weight


def _radial(ny: np.ndarray, nx: np.ndarray, owner: np.ndarray, cy: np.ndarray,
            cx: np.ndarray) -> np.ndarray:
    """Angle from each point's gland centre to the point (radial nuclear orientation)."""
    g = owner[ny.astype(int).clip(0, owner.shape[0] - 1),
              nx.astype(int).clip(0, owner.shape[1] - 1)]
    return np.arctan2(ny - cy[g], nx - cx[g])


def _glands(shape: tuple[int, int], rng: np.random.Generator, tumour: bool,
            variant: bool = False) -> Maps:
    """Glands; ``variant``: well-differentiated tumour (regular, spaced glands, smaller
    nuclei) or crowded hyperplastic crypts (normal) -- the two classes' meeting ground."""
    if tumour:
        spacing = rng.uniform(66, 86) if variant else rng.uniform(58, 78)
    else:
        spacing = rng.uniform(60, 74) if variant else rng.uniform(72, 92)
    cy, cx = jittered_points(shape, spacing, 0.4 if tumour and not variant else 0.18, rng,
                             margin=0.6 * spacing)
    g = cy.size
    if tumour:
        radius = spacing * (_uniform(rng, 0.42, 0.55, g) if variant
                            else _uniform(rng, 0.5, 0.72, g))
    else:
        radius = spacing * (_uniform(rng, 0.4, 0.5, g) if variant
                            else _uniform(rng, 0.36, 0.44, g))
    aspect = _uniform(rng, 1.0, 1.6, g) if tumour else _uniform(rng, 1.0, 1.25, g)
    angle = rng.uniform(0, np.pi, g)
    wobble = None
    if tumour:
        wobble = np.stack([rng.uniform(0, 0.05 if variant else 0.12, (g, 3)),
                           rng.uniform(0, 2 * np.pi, (g, 3))], -1)
    d, owner = _gland_distance(shape, cy, cx, radius, aspect, angle, wobble)
    lumen_edge = _uniform(rng, 0.12, 0.45, g) if tumour else _uniform(rng, 0.3, 0.4, g)
    lumen = d < float(np.median(lumen_edge))
    epithelium = (d < 1.0) & ~lumen
    outside = d >= 1.0
    if tumour:
        if rng.random() < 0.5:  # cribriform: extra small lumens inside the epithelium
            k = int(rng.integers(3, 10))
            ly, lx = _scatter(shape, k, rng, epithelium)
            r = _uniform(rng, 3, 7, ly.size)
            lumen |= splat(shape, ly, lx, r, r, np.zeros(ly.size), np.ones(ly.size)) > 0.5
            epithelium &= ~lumen
        e = np.where(epithelium, rng.uniform(0.3, 0.42), 0.0)
        e = e + np.where(outside, 0.22 + 0.1 * field(shape, 20, rng), 0.0)
        n = int(epithelium.sum() / (rng.uniform(280, 360) if variant else rng.uniform(210, 270)))
        ny, nx = _scatter(shape, n, rng, epithelium)
        rx = np.exp(rng.normal(np.log(6.8 if variant else 8.5), 0.2, ny.size)).clip(
            4.5 if variant else 5.5, 13.0)
        theta = _radial(ny, nx, owner, cy, cx)
        theta = np.where(rng.random(ny.size) < 0.6, rng.uniform(0, np.pi, ny.size), theta)
        h = _nuclei(shape, ny, nx, rx * _uniform(rng, 0.5, 0.8, ny.size), rx, theta,
                    _uniform(rng, 1.0, 1.5, ny.size), rng, cap=1.8)
        h += _round_cells(shape, max(1, n // 4), (0.8, 1.3), (0.6, 0.9), rng, epithelium)
        sy, sx = _scatter(shape, int(rng.integers(3, 9)), rng, outside)  # stromal spindles
        h += _nuclei(shape, sy, sx, _uniform(rng, 1.7, 2.3, sy.size),
                     _uniform(rng, 7, 10, sy.size), rng.uniform(0, np.pi, sy.size),
                     _uniform(rng, 0.8, 1.0, sy.size), rng)
        if rng.random() < 0.35:  # dirty necrosis in lumens
            dy, dx = _scatter(shape, int(rng.integers(20, 60)), rng, lumen)
            r = _uniform(rng, 1.0, 2.2, dy.size)
            h += _nuclei(shape, dy, dx, r, r, np.zeros(dy.size), _uniform(rng, 0.8, 1.2,
                                                                         dy.size), rng)
            e = e + np.where(lumen, 0.12 * (1 + field(shape, 8, rng).clip(-1, 1)), 0.0)
    else:
        goblets = np.zeros(shape, dtype=bool)
        k = int(epithelium.sum() / 220)
        gy, gx = _scatter(shape, k, rng, epithelium & (d < 0.8))
        r = _uniform(rng, 3.5, 5.5, gy.size)
        goblets = splat(shape, gy, gx, r, r, np.zeros(gy.size), np.ones(gy.size)) > 0.5
        e = np.where(epithelium & ~goblets, rng.uniform(0.26, 0.34), 0.0)
        e = e + np.where(outside, 0.2 + 0.05 * field(shape, 20, rng), 0.0)
        h = np.where(goblets & epithelium, 0.12, 0.0).astype(F32)
        ring = epithelium & (d > 0.78) & (d < 0.92)
        n = int(ring.sum() / (20 if variant else 28))
        ny, nx = _scatter(shape, n, rng, ring)
        theta = _radial(ny, nx, owner, cy, cx)
        h = h + _nuclei(shape, ny, nx, _uniform(rng, 2.4, 3.0, ny.size),
                        _uniform(rng, 4.5, 6.0, ny.size), theta,
                        _uniform(rng, 0.85, 1.1, ny.size), rng)
        h += _round_cells(shape, int(outside.sum() / 260), (3.5, 4.5), (0.9, 1.2), rng, outside)
    e = e + 0.03 * grain(shape, rng)
    e = np.where(lumen & (e > 0.2), e, np.where(lumen, 0.015, e))
    return (h + 0.02).astype(F32), e.clip(0.0).astype(F32), None


def normal_mucosa(shape: tuple[int, int], rng: np.random.Generator,
                  variant: bool = False) -> Maps:
    """Regular crypts: lumen, goblet-rich epithelium, basal nuclei, lamina propria.
    ``variant``: crowded hyperplastic crypts with denser nuclei."""
    return _glands(shape, rng, tumour=False, variant=variant)


def tumour(shape: tuple[int, int], rng: np.random.Generator, variant: bool = False) -> Maps:
    """Crowded irregular glands with large pleomorphic nuclei and little stroma.
    ``variant``: well-differentiated, regular glands with smaller nuclei."""
    return _glands(shape, rng, tumour=True, variant=variant)


#: Classes whose painter takes ``variant`` (intermediate morphology of a confused pair).
VARIANTS = ("MUS", "NORM", "STR", "TUM")

#: Painter of each NCT-CRC-HE class code.
PAINTERS: dict[str, Callable[..., Maps]] = {
    "ADI": adipose, "BACK": background, "DEB": debris, "LYM": lymphocytes, "MUC": mucus,
    "MUS": smooth_muscle, "NORM": normal_mucosa, "STR": stroma, "TUM": tumour}


def paint(code: str, shape: tuple[int, int], rng: np.random.Generator,
          focus: tuple[float, float] | None = (0.4, 0.9), variant: bool = False) -> Maps:
    """Paint one class and blur it by a random focus (a scanner's depth of field).

    Args:
        code: NCT-CRC-HE class code.
        shape: (H, W) in pixels.
        rng: Random generator.
        focus: Range of the Gaussian blur sigma in pixels; None: no blur (the caller
            blurs, e.g. after blending two classes).
        variant: Paint the class's intermediate morphology (classes in ``VARIANTS``).

    Returns:
        ``(h, e, grey)`` float32 (H, W) concentration maps (``grey`` may be None).
    """
    if code not in PAINTERS:
        raise KeyError(f"no painter for class code {code!r}; known: {', '.join(PAINTERS)}")
    h, e, grey = (PAINTERS[code](shape, rng, variant=True) if variant and code in VARIANTS
                  else PAINTERS[code](shape, rng))
    h = h * (1.0 + 0.15 * rng.standard_normal(shape, dtype=F32))  # chromatin granularity
    if focus is None:
        return h, e, grey
    sigma = rng.uniform(*focus)
    return blur((h, e, grey), sigma)


def blur(maps: Maps, sigma: float) -> Maps:
    """Gaussian focus blur (``sigma`` px) of the H and E maps, clipped at zero."""
    h, e, grey = maps
    h = ndimage.gaussian_filter(h, sigma, truncate=3.0)  # 3 sigma: 99.7 % of the kernel
    e = ndimage.gaussian_filter(e, sigma, truncate=3.0)
    return h.clip(0), e.clip(0), grey
