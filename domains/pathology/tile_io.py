"""Read an H&E tile (PNG, JPEG or TIFF) as RGB float32 (3, H, W) in [0, 1], or refuse it.

Tile archives (NCT-CRC-HE-100K's ``.tif``, Quilt/ARCH ``.jpg``/``.png``, the synthetic
set's ``.png``) are read with Pillow, the library those archives were written with. What
this module adds is the check of every tile, so that a tile that is not an 8-bit-per-
channel RGB H&E image never reaches a model silently; each refusal is a
:class:`TileError` naming the file and the problem (datasets skip and count it, or raise
it with ``strict=True``, :class:`core.data.SampleDataset`):

- unreadable: missing file, not an image, truncated or damaged data (Pillow's
  ``LOAD_TRUNCATED_IMAGES`` stays off, so a cut PNG/JPEG/TIFF is an error, not grey
  padding);
- too small: a side below ``min_side`` pixels (default :data:`MIN_SIDE`; a 1-pixel image
  is an export error, not a tile);
- CMYK (a print/publishing export, typically a CMYK JPEG): refused, not converted.
  Pillow's CMYK -> RGB conversion is the naive ``255 - (C + K)`` formula without the
  file's colour profile (and Adobe's inverted-CMYK JPEGs come out as negatives), so the
  hue of haematoxylin and eosin — what stain normalisation and the model read — would
  be wrong by an unknown amount. Re-export such images as RGB with a colour-managed tool;
- grey-scale (``L``, ``1``, ``I;16``...): refused — a stain image without its colour has
  lost what separates haematoxylin from eosin; a deliberate grey experiment should
  convert before reading;
- 32-bit integer or float images (``I``, ``F``): refused, their values have no fixed
  range to map to [0, 1];
- RGBA / LA / palette with transparency: the alpha channel is dropped (tiles exported
  from slide viewers carry an opaque alpha); palette images are expanded to RGB;
- 16-bit-per-channel RGB (TIFF/PNG): accepted — Pillow keeps the high byte of each value
  (``v >> 8``), the same [0, 1] scale at 8-bit precision, which is the precision the
  model's inputs have anyway.

No resizing happens here: a tile keeps its stored size (NCT-CRC-HE: 224 px at 0.5 um/px);
the domain's transforms resize.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.data import SampleError

#: Smallest accepted tile side in pixels (NCT-CRC-HE tiles are 224; a thumbnail-sized
#: tile below this carries no tissue structure at 0.5 um/px).
MIN_SIDE = 16
#: File suffixes the tile layouts list as images.
TILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_GREY_MODES = ("1", "L", "LA", "I;16", "I;16B", "I;16L", "I;16N")


class TileError(SampleError):
    """A tile that cannot be used; the message is ``"<file>: <problem>"``."""


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:200]


def tile_problem(mode: str, size: tuple[int, int], min_side: int = MIN_SIDE) -> str | None:
    """Why an image of Pillow ``mode`` and ``(width, height)`` is not a usable RGB tile.

    Args:
        mode: Pillow's image mode (``"RGB"``, ``"CMYK"``, ``"L"``...).
        size: ``(width, height)`` in pixels.
        min_side: Smallest accepted side.

    Returns:
        The problem, or None when the image can be read as an RGB tile.
    """
    width, height = size
    if min(width, height) < min_side:
        return (f"image of {width} x {height} pixels; a tile needs sides of at least "
                f"{min_side} pixels")
    if mode == "CMYK":
        return ("CMYK image (a print/publishing export), not an RGB H&E tile: a conversion "
                "without its colour profile would shift the stain colours; re-export as RGB")
    if mode in _GREY_MODES:
        return (f"grey-scale image (mode {mode}); an H&E tile must be RGB (the stain colour "
                f"is what separates haematoxylin from eosin)")
    if mode in ("I", "F", "I;32", "F;32"):
        return f"{mode} (32-bit) pixels have no fixed range; an 8- or 16-bit RGB tile is needed"
    if mode not in ("RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "YCbCr"):
        return f"unsupported image mode {mode}; an RGB tile is needed"
    return None


def read_tile(path: str | Path, min_side: int = MIN_SIDE) -> np.ndarray:
    """Read one tile as RGB float32 (3, H, W) in [0, 1].

    Args:
        path: A PNG, JPEG or TIFF file.
        min_side: Smallest accepted side in pixels.

    Returns:
        (3, H, W) float32 in [0, 1] (value / 255).

    Raises:
        TileError: Naming the file and the problem (see the module docstring).
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            problem = tile_problem(image.mode, image.size, min_side)
            if problem:
                raise TileError(f"{path}: {problem}")
            image.load()
            if image.mode == "P" and "transparency" in image.info:
                image = image.convert("RGBA")
            rgb = image if image.mode == "RGB" else image.convert("RGB")  # alpha dropped
            array = np.asarray(rgb)                                     # (H, W, 3) uint8
    except FileNotFoundError:
        raise TileError(f"{path}: file not found") from None
    except UnidentifiedImageError:
        raise TileError(f"{path}: not a readable image (PNG, JPEG or TIFF expected)") from None
    except Image.DecompressionBombError as error:
        raise TileError(f"{path}: image too large for a tile ({_first_line(error)})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        if isinstance(error, TileError):
            raise
        raise TileError(f"{path}: truncated or damaged image file "
                        f"({_first_line(error)})") from None
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise TileError(f"{path}: decoded to {array.dtype} of shape {array.shape}; "
                        f"(H, W, 3) uint8 expected")
    return np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32) / 255.0  # (3, H, W)
