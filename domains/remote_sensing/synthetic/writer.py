"""Write scenes as GeoTIFFs in their UTM zone, and compute their footprints."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin
from shapely.geometry import MultiPolygon, Polygon

PIXEL_M = 10.0


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 / UTM zone holding a point."""
    zone = min(int((lon + 180) // 6) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


@cache
def _to_utm(epsg: int) -> Transformer:
    return Transformer.from_crs(4326, epsg, always_xy=True)


@cache
def _from_utm(epsg: int) -> Transformer:
    return Transformer.from_crs(epsg, 4326, always_xy=True)


def scene_origin(lon: float, lat: float, size: int) -> tuple[int, float, float]:
    """EPSG and upper-left UTM corner of a ``size``-pixel scene centred on (lon, lat)."""
    epsg = utm_epsg(lon, lat)
    easting, northing = _to_utm(epsg).transform(lon, lat)
    half = size * PIXEL_M / 2
    return epsg, round(easting - half), round(northing + half)


def write_geotiff(path: Path, image: np.ndarray, lon: float, lat: float, bands: list[str],
                  nodata: float) -> str:
    """Write a (C, H, W) scene centred on (lon, lat) at 10 m in its UTM zone.

    Args:
        path: Output file.
        image: (C, H, W) array (uint16 or float32).
        lon: Scene-centre longitude.
        lat: Scene-centre latitude.
        bands: Band descriptions, one per channel.
        nodata: The nodata value.

    Returns:
        The CRS as ``"EPSG:<code>"``.
    """
    channels, height, width = image.shape
    epsg, west, north = scene_origin(lon, lat, width)
    profile = {"driver": "GTiff", "dtype": image.dtype.name, "count": channels,
               "height": height, "width": width, "crs": f"EPSG:{epsg}",
               "transform": from_origin(west, north, PIXEL_M, PIXEL_M), "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(image)
        dst.descriptions = tuple(bands)
    return f"EPSG:{epsg}"


def scene_footprint(lon: float, lat: float, size: int) -> Polygon | MultiPolygon:
    """The scene's footprint as a lon/lat polygon.

    A scene crossing the antimeridian gets a two-part MultiPolygon, one part on each side of
    180° (its corners' longitudes come out near +180 and near -180).
    """
    epsg, west, north = scene_origin(lon, lat, size)
    east, south = west + size * PIXEL_M, north - size * PIXEL_M
    xs, ys = _from_utm(epsg).transform([west, east, east, west], [north, north, south, south])
    polygon = Polygon(zip(xs, ys, strict=True))
    if max(xs) - min(xs) <= 180.0:
        return polygon
    from domains.remote_sensing.scene_io import repair_antimeridian  # rare; keeps this light

    return repair_antimeridian(polygon)
