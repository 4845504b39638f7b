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
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from domains.remote_sensing import cards
from domains.remote_sensing.inputs import SceneError, SensorMismatchError  # noqa: F401

MIN_VALID_FRACTION = 0.5


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


def geotiff_footprint(path: str | Path) -> Polygon | MultiPolygon | None:
    """A GeoTIFF's footprint in degrees (EPSG:4326): the box of its lon/lat bounds, or ``None``.

    A scene crossing the antimeridian (west > east after transforming its bounds, or a
    geographic raster running past ±180°) gets a two-part MultiPolygon, one box on each
    side of 180°, every part within [-180, 180]; any other scene gets
    ``box(*transform_bounds(...))``. ``None`` when the file is not a georeferenced raster
    (no CRS, not readable, a folder).
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
    return lonlat_box(float(west), float(south), float(east), float(north))


def lonlat_box(west: float, south: float, east: float, north: float) -> Polygon | MultiPolygon:
    """A lon/lat box as a footprint, cut in two where it crosses the antimeridian.

    Args:
        west: Western edge in degrees; greater than ``east`` for a box crossing 180°
            (as ``rasterio.warp.transform_bounds`` returns such boxes), or past ±180°.
        south: Southern edge.
        east: Eastern edge.
        north: Northern edge.

    Returns:
        ``box(west, south, east, north)`` when it lies within [-180, 180] and west <= east;
        otherwise the same box drawn eastwards from ``west`` and wrapped by
        :func:`wrap_antimeridian` (a two-part MultiPolygon when it crosses 180°).
    """
    if west <= east and -180.0 <= west and east <= 180.0:
        return box(west, south, east, north)
    if west > east:
        east += 360.0  # drawn continuously eastwards across 180°
    return wrap_antimeridian(box(west, south, east, north))


def wrap_antimeridian(geometry: BaseGeometry) -> BaseGeometry:
    """Cut a lon/lat polygon drawn continuously past ±180° into parts within [-180, 180].

    Args:
        geometry: A (multi)polygon in degrees whose longitudes may run past 180 or -180
            (e.g. 179.9..180.1 for a scene straddling the antimeridian).

    Returns:
        The geometry unchanged when it already lies within [-180, 180]; a box spanning
        every longitude when it wraps the whole globe; else its pieces shifted by ±360°
        into [-180, 180] (a MultiPolygon when there are several, as on either side of 180°).
    """
    west, south, east, north = geometry.bounds
    if -180.0 <= west and east <= 180.0:
        return geometry
    if east - west >= 360.0:
        return box(-180.0, south, 180.0, north)
    parts: list[Polygon] = []
    for shift in (360.0, 0.0, -360.0):  # the piece that lands in [-180, 180] after +shift
        piece = geometry.intersection(box(-180.0 - shift, south, 180.0 - shift, north))
        pieces = getattr(piece, "geoms", [piece])
        parts.extend(affinity.translate(part, xoff=shift) for part in pieces
                     if isinstance(part, Polygon) and part.area > 0)
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def repair_antimeridian(geometry: BaseGeometry | None) -> BaseGeometry | None:
    """Cut a footprint polygon wrongly drawn across the globe at the antimeridian.

    A polygon whose corners were projected to lon/lat one by one comes out with
    longitudes near +180 and near -180 for a scene crossing the antimeridian, and so
    spans nearly 360°. When moving its negative longitudes east by 360° makes it a proper
    polygon narrower than 180°, that is what happened (a scene is never wider than 180° of
    longitude): it is redrawn so and cut by
    :func:`wrap_antimeridian`. Anything else (a real footprint, a point, a polar box
    spanning every longitude, coordinates that are not degrees, ``None``) comes back
    unchanged.
    """
    if not isinstance(geometry, Polygon) or geometry.is_empty:
        return geometry
    west, south, east, north = geometry.bounds
    if east - west <= 180.0 or not (-180.0 <= west and east <= 180.0
                                    and -90.0 <= south and north <= 90.0):
        return geometry  # narrow enough, or not in degrees at all

    def unwrap(coords: np.ndarray) -> np.ndarray:  # (P, 2) lon, lat
        coords = np.array(coords, dtype=float)
        coords[coords[:, 0] < 0, 0] += 360.0
        return coords

    shell = unwrap(geometry.exterior.coords)
    if np.ptp(shell[:, 0]) >= 180.0:
        return geometry
    unwrapped = Polygon(shell, [unwrap(ring.coords) for ring in geometry.interiors])
    if not unwrapped.is_valid or unwrapped.area <= 0:
        return geometry  # e.g. box(-180, s, 180, n) around a pole
    return wrap_antimeridian(unwrapped)
