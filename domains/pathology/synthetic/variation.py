"""What makes synthetic tiles as hard as real ones: mixed tissue, intermediate morphology,
and acquisition variation (focus, noise, JPEG, illumination).

A class painter (:mod:`~domains.pathology.synthetic.tissue`) draws one textbook class per
tile; real NCT-CRC-HE tiles are not that clean, and zero-shot models confuse the same
pairs on them (stroma vs smooth muscle, debris vs lymphocytes / mucus, normal mucosa vs
tumour epithelium, adipose vs background). On top of the painters this module adds:

- **mixed tiles** (:data:`MIX_SHARE` of them): a region of a neighbouring class
  (:data:`NEIGHBOURS`: stroma in tumour tiles, lymphocytes in stroma, debris with mucus,
  muscle next to stroma...) covering 15-45 % of the tile along a smooth random boundary;
  the label stays the majority class;
- **intermediate morphology** (:data:`VARIANT_SHARE` of the tiles of the confused pairs):
  well-differentiated tumour glands, crowded normal crypts, cellular stroma, loose muscle;
- **tissue fraction**: some tissue tiles sit at the edge of the section (glass in a
  corner), some background tiles hold a faint shred of fat or debris;
- **acquisition**: a per-tile focus (a share clearly out of focus), sensor noise of
  varying level, an illumination gradient and brightness
  (vignetting, lamp ageing) and, for most tiles, JPEG compression at quality 55-95 as
  scanners store tiles (PIL's encoder, so the artefacts are real JPEG blocks).

Slides (:mod:`~domains.pathology.synthetic.slide_maker`) keep the clean painters: their
regions already mix classes at their boundaries.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from domains.pathology.synthetic.optics import Site, render
from domains.pathology.synthetic.tissue import VARIANTS, Maps, blur, field, paint

#: Share of tiles holding a region of a neighbouring class.
MIX_SHARE = 0.3
#: Share of the tiles of ``tissue.VARIANTS`` classes painted with intermediate morphology.
VARIANT_SHARE = 0.35
#: Classes met beside each class in real sections (the secondary region's candidates).
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "ADI": ("STR", "BACK"), "BACK": ("ADI", "MUC", "DEB"), "DEB": ("MUC", "LYM", "TUM"),
    "LYM": ("STR", "DEB", "NORM"), "MUC": ("DEB", "STR", "TUM"), "MUS": ("STR", "ADI"),
    "NORM": ("LYM", "STR", "TUM"), "STR": ("LYM", "MUS", "TUM"), "TUM": ("STR", "DEB", "NORM")}
#: Range of the per-tile Gaussian focus blur (sigma, px); a share of tiles is out of focus.
FOCUS = (0.3, 1.0)
BLURRED = (1.2, 2.2)
BLURRED_SHARE = 0.15
#: Share of tiles stored as JPEG (quality 55-95) before the PNG.
JPEG_SHARE = 0.6


def _side_region(shape: tuple[int, int], fraction: float, rng: np.random.Generator
                 ) -> tuple[np.ndarray, tuple[slice, slice]]:
    """A region along one side of the tile, covering about ``fraction`` of it, with a
    smooth wavy boundary: its soft mask (d, W) or (H, d) in [0, 1] and the strip it fills.

    Only the strip is painted with the second class (cheaper than a whole tile)."""
    side = int(rng.integers(4))
    length, across = (shape[1], shape[0]) if side < 2 else (shape[0], shape[1])
    wave = field((2, length), max(length / 3, 2.0), rng)[0]  # (length,)
    profile = across * (fraction + 0.1 * wave)  # depth of the region at each position
    depth = int(min(across, np.ceil(profile.max()) + 3))
    steps = np.arange(depth, dtype=np.float32)[:, None] + 0.5
    mask = np.clip((profile[None, :] - steps) / 1.5 + 0.5, 0.0, 1.0).astype(np.float32)
    if side == 0:
        return mask, (slice(0, depth), slice(None))
    if side == 1:
        return mask[::-1], (slice(shape[0] - depth, None), slice(None))
    if side == 2:
        return mask.T, (slice(None), slice(0, depth))
    return mask.T[:, ::-1], (slice(None), slice(shape[1] - depth, None))


def _blend(a: Maps, b: Maps, mask: np.ndarray, strip: tuple[slice, slice]) -> Maps:
    """``a`` with ``b`` (painted on the strip only) laid over it by ``mask``."""
    h, e = a[0].copy(), a[1].copy()
    h[strip] = h[strip] * (1 - mask) + b[0] * mask
    e[strip] = e[strip] * (1 - mask) + b[1] * mask
    if a[2] is None and b[2] is None:
        return h, e, None
    grey = a[2].copy() if a[2] is not None else np.zeros_like(h)
    grey[strip] = grey[strip] * (1 - mask) + (b[2] if b[2] is not None else 0.0) * mask
    return h, e, grey


def paint_tile(code: str, shape: tuple[int, int], rng: np.random.Generator) -> Maps:
    """Paint one training / test tile of class ``code``: its own focus, sometimes
    intermediate morphology, sometimes a neighbouring class's region or an edge of glass.

    Args:
        code: NCT-CRC-HE class code (the tile's label, always the majority of its area).
        shape: (H, W) in pixels.
        rng: Random generator.

    Returns:
        ``(h, e, grey)`` float32 (H, W) concentration maps (``grey`` may be None).
    """
    sigma = rng.uniform(*(BLURRED if rng.random() < BLURRED_SHARE else FOCUS))
    variant = code in VARIANTS and rng.random() < VARIANT_SHARE
    maps = paint(code, shape, rng, focus=None, variant=variant)
    draw = rng.random()
    if draw < MIX_SHARE:
        other = NEIGHBOURS[code][int(rng.integers(len(NEIGHBOURS[code])))]
        mask, strip = _side_region(shape, rng.uniform(0.15, 0.42), rng)
        second = paint(other, mask.shape, rng, focus=None,
                       variant=other in VARIANTS and rng.random() < VARIANT_SHARE)
        maps = _blend(maps, second, mask, strip)
    elif draw < MIX_SHARE + 0.1 and code != "BACK":  # the edge of the section: bare glass
        mask, strip = _side_region(shape, rng.uniform(0.1, 0.35), rng)
        glass = (np.full(mask.shape, 0.01, np.float32), np.full(mask.shape, 0.015, np.float32),
                 None)
        maps = _blend(maps, glass, mask, strip)
    return blur(maps, sigma)  # one focus for the whole tile


def acquire(maps: Maps, stain: Site, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Render a tile as a scanner records it: stain, illumination, noise, JPEG.

    Args:
        maps: ``(h, e, grey)`` from :func:`paint_tile`.
        stain: The site's stain.
        rng: Random generator.
        jitter: Relative per-tile jitter of the H and E amounts.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    h, e, grey = maps
    shape = h.shape
    angle = rng.uniform(0, 2 * np.pi)
    ys = np.arange(shape[0], dtype=np.float32)[:, None] * np.float32(np.sin(angle) / max(shape))
    xs = np.arange(shape[1], dtype=np.float32)[None, :] * np.float32(np.cos(angle) / max(shape))
    ramp = ys + xs - np.float32(0.5)  # (H, W) in about +-0.9
    illumination = rng.uniform(0.9, 1.04) * (1 + rng.uniform(0, 0.12) * ramp)
    rgb = render(h, e, grey, stain, rng, jitter=jitter, noise=rng.uniform(0.5, 4.0),
                 illumination=illumination)
    if rng.random() < JPEG_SHARE:  # stored as JPEG, as scanners and tile archives do
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=int(rng.integers(55, 96)))
        rgb = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return rgb
