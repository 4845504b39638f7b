"""Read scenes (one multi-band GeoTIFF, or one GeoTIFF per band) into float arrays, checked.

Every error names the file and the problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import transform as transform_points
from rasterio.warp import transform_bounds

from core.data import SampleError
from domains.remote_sensing import cards

MIN_VALID_FRACTION = 0.5


class SceneError(SampleError):
    """A scene file that cannot be used; the message names the file and the problem."""


def _band_indices(path: Path, descriptions: Sequence[str | None], count: int, sensor: str,
                  bands: Sequence[str]) -> list[int | None]:
    """File band (0-based) of each wanted band; ``None`` for one an L2A product lacks (B10)."""
    l2a = cards.s2_bands("L2A") if sensor == "s2" else []
    lacking = {b for b in bands if b not in l2a} if l2a else set()  # B10 (cirrus)
    named = [d for d in descriptions if d]
    if len(named) == count and all(b in named or b in lacking for b in bands) \
            and any(b in named for b in bands):
        return [named.index(b) if b in named else None for b in bands]
    full = cards.s2_bands("L1C") if sensor == "s2" else cards.s1_bands()
    if count == len(full):
        return [full.index(b) for b in bands]
    if count == len(l2a) and any(b in l2a for b in bands):
        return [l2a.index(b) if b in l2a else None for b in bands]
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
        (C, H, W) float32. A band a 12-band L2A file lacks (B10, cirrus) comes back as NaN,
        i.e. 0 after normalisation, as CLOSP zero-fills it.

    Raises:
        SceneError: If the file is unreadable or truncated, has the wrong band count, or
            has too few valid pixels.
    """
    path = Path(path)
    try:
        with rasterio.open(path) as src:
            index = _band_indices(path, src.descriptions, src.count, sensor, bands)
            present = [i for i in index if i is not None]
            data = src.read([i + 1 for i in present]).astype(np.float32)  # (C', H, W)
            nodata = src.nodata
    except SceneError:
        raise
    except (rasterio.errors.RasterioError, OSError) as error:
        raise SceneError(f"{path}: unreadable GeoTIFF ({error})") from error
    data = mask_invalid(path, data, nodata)
    if len(present) == len(index):
        return data
    full = np.full((len(index), *data.shape[1:]), np.nan, dtype=np.float32)  # (C, H, W)
    full[[k for k, i in enumerate(index) if i is not None]] = data
    return full


def mask_invalid(path: str | Path, data: np.ndarray, nodata: float | None) -> np.ndarray:
    """Check a scene's pixels and set nodata / non-finite ones to NaN (in place).

    Args:
        path: What to name in an error (a file, or ``file:key`` inside an HDF5 archive).
        data: (C, H, W) float32 values.
        nodata: The nodata value, or ``None``.

    Returns:
        ``data`` with invalid pixels set to NaN.

    Raises:
        SceneError: If every pixel is invalid, or fewer than :data:`MIN_VALID_FRACTION`
            of the pixels are valid in all bands.
    """
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


def read_band_files(
    name: str | Path, files: Sequence[Path | None], sensor: str
) -> tuple[np.ndarray, tuple[float, float]]:
    """Stack single-band GeoTIFFs on the grid of the finest one; ``None`` gives a NaN band.

    Coarser bands (Sentinel-2's 20 m and 60 m bands) are upsampled bilinearly to the
    finest band's pixel grid (10 m), as TorchGeo's BigEarthNet loaders do.

    Args:
        name: What to name in errors (the sample's folder).
        files: One file per band in the order wanted (``None`` for a band the archive lacks).
        sensor: ``"s2"`` or ``"s1"`` (its card's nodata applies where a file sets none).

    Returns:
        (C, H, W) float32 with NaN where nodata or missing, and the (lon, lat) of the centre.

    Raises:
        SceneError: If a file is missing or unreadable, or too few pixels are valid.
    """
    present = [f for f in files if f is not None]
    if not present:
        raise SceneError(f"{name}: no band files given for {sensor}")
    current = present[0]
    try:
        shapes = []
        for current in present:
            with rasterio.open(current) as src:
                shapes.append((src.height * src.width, src.height, src.width, current))
        _, height, width, current = max(shapes, key=lambda s: s[0])
        with rasterio.open(current) as src:
            lon_lat = centre_lon_lat(src.crs, src.transform, height, width)
        data = np.full((len(files), height, width), np.nan, dtype=np.float32)  # (C, H, W)
        for index, current in enumerate(files):
            if current is None:
                continue
            with rasterio.open(current) as src:
                band = src.read(1, out_shape=(height, width), out_dtype="float32",
                                resampling=Resampling.bilinear)
                nodata = src.nodata if src.nodata is not None else _card_nodata(sensor)
            if nodata is not None:
                band[band == nodata] = np.nan
            data[index] = band
    except (rasterio.errors.RasterioError, OSError) as error:
        raise SceneError(f"{current}: unreadable GeoTIFF ({error})") from error
    keep = [i for i, f in enumerate(files) if f is not None]
    data[keep] = mask_invalid(name, data[keep], None)
    return data, lon_lat


def _card_nodata(sensor: str) -> float | None:
    value = cards.card("sentinel2" if sensor == "s2" else "sentinel1").get("nodata")
    return None if value is None else float(value)


def centre_lon_lat(crs: Any, transform: Affine, height: int, width: int) -> tuple[float, float]:
    """(lon, lat) in degrees of the centre of a raster grid (NaN when it has no CRS)."""
    if crs is None:
        return float("nan"), float("nan")
    col, row = width / 2, height / 2
    x = transform.c + transform.a * col + transform.b * row
    y = transform.f + transform.d * col + transform.e * row
    return to_lon_lat(crs, x, y)


def scene_lon_lat(path: str | Path) -> tuple[float, float]:
    """(lon, lat) of the centre of a GeoTIFF (NaN when it has no CRS)."""
    try:
        with rasterio.open(path) as src:
            return centre_lon_lat(src.crs, src.transform, src.height, src.width)
    except (rasterio.errors.RasterioError, OSError) as error:
        raise SceneError(f"{path}: unreadable GeoTIFF ({error})") from error


def to_lon_lat(crs: Any, x: float, y: float) -> tuple[float, float]:
    """Project a point from ``crs`` (anything rasterio accepts, e.g. "EPSG:32633") to (lon, lat)."""
    lons, lats = transform_points(CRS.from_user_input(crs), "EPSG:4326", [float(x)], [float(y)])
    return float(lons[0]), float(lats[0])


def geotiff_footprint(path: str | Path) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) in degrees of a GeoTIFF's bounds, or ``None``.

    ``None`` when the file is not a georeferenced raster (no CRS, not readable, a folder).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                return None
            west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    except (rasterio.errors.RasterioError, OSError):
        return None
    return float(west), float(south), float(east), float(north)
