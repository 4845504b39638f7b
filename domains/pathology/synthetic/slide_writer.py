"""Write an RGB image as a real pyramidal tiled TIFF that OpenSlide and MONAI open.

What we add on top of :class:`tifffile.TiffWriter`: the layout OpenSlide's generic-TIFF
driver expects, which a plain ``imwrite`` does not give — every level tiled (OpenSlide
refuses strip-based TIFFs), the full-resolution image in the first directory and each
reduced level (halved with 2 x 2 averaging) in its own top-level directory marked
``NewSubfileType = 1`` (reduced resolution; OpenSlide does not read SubIFDs), and the
resolution tags in pixels per centimetre, from which OpenSlide reports
``openslide.mpp-x`` / ``openslide.mpp-y`` and MONAI's ``WSIReader.get_mpp`` the level's
microns per pixel. Tiles are deflate-compressed at level 1 (zlib, so no codec package is
needed; on the synthetic slides level 1 is faster than the default 6 for files ~5 % larger),
which libtiff inside ``openslide-bin`` and tifffile both read.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from tifffile import TiffWriter

from core.atomic import atomic_write_bytes

_UM_PER_CM = 10_000.0


def _halve(rgb: np.ndarray) -> np.ndarray:
    """2 x 2 mean downsampling of an (H, W, 3) uint8 image (odd edges dropped)."""
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    blocks = rgb[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).astype(np.uint16)  # (H/2, 2, W/2, 2, 3)
    return ((blocks.sum(axis=(1, 3)) + 2) // 4).astype(np.uint8)  # (H/2, W/2, 3)


def pyramid(rgb: np.ndarray, levels: int, tile: int = 256) -> list[np.ndarray]:
    """The image and its halved reductions: ``levels`` arrays, level 0 first.

    Reduction stops early when a level would be smaller than one tile on its short side.

    Args:
        rgb: (H, W, 3) uint8.
        levels: Number of levels wanted (>= 1).
        tile: Tile side; no level smaller than this is made (except level 0).

    Returns:
        Arrays of shape (H / 2**k, W / 2**k, 3).
    """
    out = [rgb]
    while len(out) < levels and min(out[-1].shape[:2]) // 2 >= tile:
        out.append(_halve(out[-1]))
    return out


def write_pyramidal_tiff(path: str | Path, rgb: np.ndarray, mpp: float, tile: int = 256,
                         levels: int = 3, description: str = "") -> Path:
    """Write ``rgb`` as a tiled pyramidal TIFF with its microns per pixel (atomically).

    Args:
        path: Output ``.tif`` / ``.tiff`` file (replaced if it exists).
        rgb: (H, W, 3) uint8 level-0 image.
        mpp: Microns per pixel at level 0 (e.g. 0.5 for a 20x scan).
        tile: Tile side in pixels (a multiple of 16, as TIFF requires).
        levels: Pyramid levels wanted (each halves the previous; fewer are written when
            the image is too small to halve again into at least one tile).
        description: ImageDescription of level 0 (free text).

    Returns:
        ``path``.

    Raises:
        ValueError: The image is not (H, W, 3) uint8, ``mpp`` is not positive, or ``tile``
            is not a positive multiple of 16, naming the problem and ``path``.
    """
    path = Path(path)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"{path}: need an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    if not mpp > 0:
        raise ValueError(f"{path}: microns per pixel must be positive, got {mpp}")
    if tile <= 0 or tile % 16:
        raise ValueError(f"{path}: tile side must be a positive multiple of 16, got {tile}")
    if levels < 1:
        raise ValueError(f"{path}: need at least one level, got {levels}")
    buffer = io.BytesIO()
    with TiffWriter(buffer, bigtiff=rgb.nbytes > 2**31) as tif:
        for k, level in enumerate(pyramid(np.ascontiguousarray(rgb), levels, tile)):
            per_cm = _UM_PER_CM / (mpp * 2**k)
            tif.write(level, photometric="rgb", planarconfig="contig", tile=(tile, tile),
                      compression="zlib", compressionargs={"level": 1}, subfiletype=1 if k else 0,
                      resolution=(per_cm, per_cm), resolutionunit="CENTIMETER",
                      description=description if k == 0 else None, metadata=None,
                      software="mosaic-vlm")
    atomic_write_bytes(path, buffer.getvalue())
    return path
