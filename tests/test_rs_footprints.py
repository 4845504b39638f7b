"""Footprints across the antimeridian: two-part MultiPolygons, found by bbox filters."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds
from shapely.geometry import MultiPolygon, Point, Polygon, box

from core.retrieval import EmbeddingIndex
from domains.remote_sensing.index import INDEX_TYPE, _footprint
from domains.remote_sensing.scene_index import SceneIndex, parse_bbox
from domains.remote_sensing.scene_io import (
    geotiff_footprint,
    lonlat_box,
    repair_antimeridian,
    wrap_antimeridian,
)
from domains.remote_sensing.synthetic.writer import scene_footprint

PIXELS = 10  # scene width and height in pixels


def _write(path: Path, crs: str | None, west: float, north: float, pixel: float) -> Path:
    """A (1, PIXELS, PIXELS) uint16 GeoTIFF with its upper-left corner at (west, north)."""
    profile = {"driver": "GTiff", "dtype": "uint16", "count": 1, "height": PIXELS,
               "width": PIXELS, "transform": from_origin(west, north, pixel, pixel)}
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((1, PIXELS, PIXELS), np.uint16))
    return path


def _utm_across(path: Path) -> Path:
    """A 10 km UTM zone 1N scene at 60°N centred on the antimeridian (lon ±180)."""
    x, y = Transformer.from_crs(4326, 32601, always_xy=True).transform(-180.0, 60.0)
    return _write(path, "EPSG:32601", x - 5000, y + 5000, 1000.0)


def _assert_two_sided(footprint: object, min_area: float, max_area: float) -> None:
    """A valid MultiPolygon with one part east of 179° and one west of -179°."""
    assert isinstance(footprint, MultiPolygon)
    assert footprint.is_valid
    assert len(footprint.geoms) == 2
    for part in footprint.geoms:
        west, south, east, north = part.bounds
        assert -180 <= west <= east <= 180 and -90 <= south <= north <= 90
    sides = sorted(part.bounds[0] for part in footprint.geoms)
    assert sides[0] == -180 and sides[1] > 179
    assert max(part.bounds[2] for part in footprint.geoms) == 180
    assert min_area < footprint.area < max_area  # square degrees


def test_utm_scene_across_the_antimeridian(tmp_path: Path) -> None:
    footprint = geotiff_footprint(_utm_across(tmp_path / "utm.tif"))
    # 10 km x 10 km at 60°N: ~0.18° of longitude x ~0.09° of latitude.
    _assert_two_sided(footprint, 0.01, 0.03)
    east_part, west_part = sorted(footprint.geoms, key=lambda part: -part.bounds[0])
    assert east_part.bounds[0] == pytest.approx(179.91, abs=0.01)
    assert west_part.bounds[2] == pytest.approx(-179.91, abs=0.01)


def test_geographic_scene_past_180(tmp_path: Path) -> None:
    # EPSG:4326 from 179.95 to 180.05 (0.01° pixels): past 180 until normalised.
    footprint = geotiff_footprint(_write(tmp_path / "geo.tif", "EPSG:4326", 179.95, 10.0, 0.01))
    _assert_two_sided(footprint, 0.0099, 0.0101)
    expected = MultiPolygon([box(179.95, 9.9, 180, 10), box(-180, 9.9, -179.95, 10)])
    assert footprint.symmetric_difference(expected).area < 1e-12
    # Wholly past 180: one box, shifted into [-180, 180].
    shifted = geotiff_footprint(_write(tmp_path / "far.tif", "EPSG:4326", 180.5, 10.0, 0.01))
    assert isinstance(shifted, Polygon)
    assert shifted.symmetric_difference(box(-179.5, 9.9, -179.4, 10)).area < 1e-12


def test_normal_scene_keeps_its_box(tmp_path: Path) -> None:
    path = _write(tmp_path / "normal.tif", "EPSG:32633", 500000.0, 5300000.0, 1000.0)
    footprint = geotiff_footprint(path)
    with rasterio.open(path) as src:
        expected = box(*transform_bounds(src.crs, "EPSG:4326", *src.bounds))
    assert isinstance(footprint, Polygon)
    assert footprint.equals_exact(expected, 0)
    assert geotiff_footprint(_write(tmp_path / "nocrs.tif", None, 5, 50, 1)) is None
    assert geotiff_footprint(tmp_path) is None  # a folder


def test_box_helpers() -> None:
    assert lonlat_box(10, 20, 11, 21).equals_exact(box(10, 20, 11, 21), 0)
    _assert_two_sided(lonlat_box(179.5, 0, -179.5, 1), 0.99, 1.01)
    assert wrap_antimeridian(box(170, 0, 600, 1)).equals(box(-180, 0, 180, 1))  # whole globe
    # A footprint whose corners were projected one by one, drawn the wrong way round the globe.
    drawn = Polygon([(179.9, 1), (-179.9, 1), (-179.9, 0), (179.9, 0)])
    _assert_two_sided(repair_antimeridian(drawn), 0.19, 0.21)
    for unchanged in (box(-180, 80, 180, 90),  # around a pole
                      box(10, 20, 11, 21), Point(179.9, 0),
                      box(300000, 6600000, 310000, 6610000)):  # metres, not degrees
        assert repair_antimeridian(unchanged) is unchanged
    assert repair_antimeridian(None) is None


def test_synthetic_writer_footprint() -> None:
    normal = scene_footprint(12.5, 45.0, 64)
    assert isinstance(normal, Polygon) and normal.is_valid and normal.area < 1e-4
    across = scene_footprint(179.9995, 45.0, 64)  # 640 m wide, centred ~40 m from 180°
    _assert_two_sided(across, 0, 1e-4)


def test_index_footprint_cuts_table_and_geotiff_footprints(tmp_path: Path) -> None:
    path = _utm_across(tmp_path / "utm.tif")
    _assert_two_sided(_footprint(pd.DataFrame({"id": ["a"]}), 0, str(path), 180.0, 60.0),
                      0.01, 0.03)
    drawn = Polygon([(179.9, 1), (-179.9, 1), (-179.9, 0), (179.9, 0)])
    table = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=[drawn, box(1, 2, 3, 4)],
                             crs="EPSG:4326")
    _assert_two_sided(_footprint(table, 0, str(path), 180.0, 0.5), 0.19, 0.21)
    assert _footprint(table, 1, str(path), 2.0, 3.0).equals_exact(box(1, 2, 3, 4), 0)
    assert _footprint(pd.DataFrame(), 0, str(tmp_path / "missing.tif"), 5.0, 6.0) == Point(5, 6)


@pytest.fixture
def scene_index(tmp_path: Path) -> SceneIndex:
    """A 4-row scene index (no model): crossing, normal, point and missing footprints,
    saved and loaded so the footprints go through GeoParquet."""
    crossing = geotiff_footprint(_utm_across(tmp_path / "utm.tif"))
    geometry = [crossing, box(10, 40, 11, 41), Point(-179.95, 60.0), None]
    metadata = gpd.GeoDataFrame(
        {"id": ["across", "alps", "point", "nowhere"], "sensor": ["s2", "s2", "s1", "s1"],
         "lon": [180.0, 10.5, -179.95, 0.0], "lat": [60.0, 40.5, 60.0, 0.0],
         "date": ["2024-01-01"] * 4, "labels": [[]] * 4, "caption": [""] * 4,
         "path": [str(tmp_path / "utm.tif"), "", "", ""], "row": [0, 1, 2, 3]},
        geometry=geometry, crs="EPSG:4326")
    index = EmbeddingIndex(4)
    index.add(np.eye(4, dtype=np.float32), metadata)  # (4, 4)
    index.info = {"type": INDEX_TYPE, "run": str(tmp_path / "run"),
                  "archive": str(tmp_path / "archive")}
    return SceneIndex.load(index.save(tmp_path / "index"))


@pytest.mark.parametrize(("bbox", "expected"), [
    ((179, 59, 180, 61), {"across"}),                       # east of 180°
    ((-180, 59, -179, 61), {"across", "point"}),            # west of 180°
    ("179,59,-179,61", {"across", "point"}),                # a query box crossing 180°
    ((179.95, 59.99, 179.96, 60.01), {"across"}),           # a small box inside one part
    ((-179.5, 59, -179, 61), set()),                        # beside, not on, the scene
    ((170, 59, 179.5, 61), set()),
    ((179, 0, -179, 1), set()),                             # the right longitudes, far south
    ((0, 30, 20, 50), {"alps"}),
    ((-180, -90, 180, 90), {"across", "alps", "point"}),    # everywhere
])
def test_bbox_filter_across_the_antimeridian(scene_index: SceneIndex, bbox: object,
                                             expected: set[str]) -> None:
    assert isinstance(scene_index.metadata.geometry.iloc[0], MultiPolygon)  # kept by GeoParquet
    mask = scene_index.filter_mask(bbox=bbox)
    assert set(scene_index.metadata["id"][mask]) == expected
    hits = scene_index.search_vector(np.ones(4, np.float32), k=4, mask=mask)
    assert set(hits["id"]) == expected and hits.attrs["matching"] == len(expected)


def test_parse_bbox_west_of_east() -> None:
    assert parse_bbox("179,-1,-179,1") == (179.0, -1.0, -179.0, 1.0)
    assert parse_bbox((170, 0, -170, 5)) == (170.0, 0.0, -170.0, 5.0)
    with pytest.raises(ValueError, match="longitudes"):
        parse_bbox("181,0,-179,1")
