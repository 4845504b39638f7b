"""Read one GeoTIFF scene into a float array, checking it and naming the file in any error."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio

from domains.remote_sensing import cards

MIN_VALID_FRACTION = 0.5


class SceneError(ValueError):
    """A scene file that cannot be used; the message names the file and the problem."""


def _band_indices(path: Path, descriptions: Sequence[str | None], count: int, sensor: str,
                  bands: Sequence[str]) -> list[int]:
    named = [d for d in descriptions if d]
    if len(named) == count and all(b in named for b in bands):
        return [named.index(b) for b in bands]
    full = cards.s2_bands("L1C") if sensor == "s2" else cards.s1_bands()
    if count == len(full):
        return [full.index(b) for b in bands]
    l2a = cards.s2_bands("L2A") if sensor == "s2" else []
    if count == len(l2a) and all(b in l2a for b in bands):
        return [l2a.index(b) for b in bands]
    if count == len(bands):
        return list(range(count))
    raise SceneError(f"{path}: wrong band count {count} for {sensor} (expected {len(full)}"
                     f"{' or ' + str(len(l2a)) if l2a else ''}, or band descriptions naming "
                     f"{list(bands)})")


def read_scene(path: str | Path, sensor: str, bands: Sequence[str]) -> np.ndarray:
    """Read the requested bands of a scene; nodata and non-finite pixels become NaN.

    Args:
        path: The GeoTIFF.
        sensor: ``"s2"`` (digital numbers) or ``"s1"`` (dB).
        bands: Band names in the order wanted.

    Returns:
        (C, H, W) float32.

    Raises:
        SceneError: If the file is unreadable or truncated, has the wrong band count, or
            has too few valid pixels.
    """
    path = Path(path)
    try:
        with rasterio.open(path) as src:
            index = _band_indices(path, src.descriptions, src.count, sensor, bands)
            data = src.read([i + 1 for i in index]).astype(np.float32)  # (C, H, W)
            nodata = src.nodata
    except SceneError:
        raise
    except (rasterio.errors.RasterioError, OSError) as error:
        raise SceneError(f"{path}: unreadable GeoTIFF ({error})") from error
    invalid = ~np.isfinite(data)
    if nodata is not None:
        invalid |= data == nodata
    if invalid.all():
        raise SceneError(f"{path}: all pixels are nodata or non-finite")
    valid_fraction = 1.0 - invalid.any(axis=0).mean()
    if valid_fraction < MIN_VALID_FRACTION:
        raise SceneError(f"{path}: only {valid_fraction:.0%} of pixels are valid "
                         f"(nodata or non-finite elsewhere)")
    data[invalid] = np.nan
    return data
