"""Write scenes as GeoTIFFs in their UTM zone, and compute their footprints.

Sentinel-2 scenes carry the product metadata a reader needs to get reflectance back, as
GeoTIFF tags: ``PROCESSING_LEVEL`` (L1C), ``PROCESSING_BASELINE`` (by sensing date) and,
from baseline 04.00 (25 January 2022) on, ``RADIO_ADD_OFFSET=-1000`` with digital numbers
``DN = 10000 x rho + 1000`` (:func:`s2_product`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
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


@dataclass(frozen=True)
class S2Product:
    """The processing of one synthetic Sentinel-2 product.

    Attributes:
        level: Processing level (``L1C``).
        baseline: Processing baseline in force on the sensing date (``"04.00"``...).
        offset: ``RADIO_ADD_OFFSET`` in DN (-1000 from baseline 04.00 on, else 0).
    """

    level: str
    baseline: str
    offset: int

    def tags(self) -> dict[str, str]:
        """The GeoTIFF tags declaring level, baseline and (when there is one) the offset."""
        tags = {"PROCESSING_LEVEL": self.level, "PROCESSING_BASELINE": self.baseline,
                "QUANTIFICATION_VALUE": "10000"}
        if self.offset:
            tags["RADIO_ADD_OFFSET"] = str(self.offset)
        return tags


def s2_product(date: dt.date | str, card: dict) -> S2Product:
    """The L1C processing baseline and radiometric offset of a product sensed on ``date``.

    Args:
        date: Sensing date.
        card: The ``synthetic`` card (``s2_processing_baselines``,
            ``s2_offset_from_baseline``, ``s2_radiometric_offset``).

    Returns:
        Level, baseline and offset.
    """
    day = dt.date.fromisoformat(date) if isinstance(date, str) else date
    table = sorted((dt.date.fromisoformat(first), baseline)
                   for first, baseline in card["s2_processing_baselines"])
    baseline = table[0][1]
    for first, name in table:
        if day >= first:
            baseline = name
    offset_from = tuple(int(x) for x in card["s2_offset_from_baseline"].split("."))
    with_offset = tuple(int(x) for x in baseline.split(".")) >= offset_from
    return S2Product("L1C", baseline, int(card["s2_radiometric_offset"]) if with_offset else 0)


def write_geotiff(path: Path, image: np.ndarray, lon: float, lat: float, bands: list[str],
                  nodata: float | None, tags: dict[str, str] | None = None) -> str:
    """Write a (C, H, W) scene centred on (lon, lat) at 10 m in its UTM zone.

    Args:
        path: Output file.
        image: (C, H, W) array (uint8, uint16 or float32).
        lon: Scene-centre longitude.
        lat: Scene-centre latitude.
        bands: Band descriptions, one per channel.
        nodata: The nodata value (``None``: none).
        tags: Dataset-level GeoTIFF metadata tags (product level, baseline, offset...).

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
        if tags:
            dst.update_tags(**tags)
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
