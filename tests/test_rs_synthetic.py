"""The synthetic archive: determinism, real GeoTIFF/GeoParquet output, and the physics."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from domains.remote_sensing import cards
from domains.remote_sensing.synthetic import default_archive, generate_archive


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("archive") / "a"
    return generate_archive(out, n_s2=500, n_s1=500, n_paired=40, seed=3, size=32,
                            workers=2, progress=False)


def test_layout_crs_and_metadata(archive: Path) -> None:
    frame = gpd.read_parquet(archive / "metadata.parquet")
    assert len(frame) == 500 + 500 + 2 * 40
    assert frame.crs.to_epsg() == 4326
    row = frame[frame["sensor"] == "s2"].iloc[0]
    with rasterio.open(archive / row["path"]) as src:
        assert src.count == 13 and src.dtypes[0] == "uint16" and src.nodata == 0
        assert src.descriptions == tuple(cards.s2_bands("L1C"))
        assert src.crs.to_epsg() == int(row["crs"].split(":")[1])
        assert 32601 <= src.crs.to_epsg() <= 32760  # a UTM zone
        assert src.res == (10.0, 10.0)
        assert frame.geometry.iloc[0].contains(gpd.points_from_xy([row["lon"]], [row["lat"]])[0])
    s1 = frame[frame["sensor"] == "s1"].iloc[0]
    with rasterio.open(archive / s1["path"]) as src:
        assert src.count == 2 and src.descriptions == ("VV", "VH")
    paired = frame[frame["pair_id"] != ""]
    assert set(paired["split"]) == {"test"} and len(paired) == 80
    assert paired.groupby("pair_id")["caption"].nunique().max() == 1
    assert frame["labels"].map(len).min() >= 1 and frame["labels"].map(len).mean() > 1.5
    events = frame[frame["event"] != ""]
    assert len(events) > 0 and events["crisis_tags"].map(len).sum() > 0
    assert json.loads((archive / "manifest.json").read_text())["rows"] == len(frame)


def test_generation_is_deterministic(archive: Path, tmp_path: Path) -> None:
    again = generate_archive(tmp_path / "b", n_s2=500, n_s1=500, n_paired=40, seed=3, size=32,
                             workers=1, progress=False)
    first = gpd.read_parquet(archive / "metadata.parquet")
    second = gpd.read_parquet(again / "metadata.parquet")
    assert first.drop(columns="geometry").equals(second.drop(columns="geometry"))
    path = first["path"][7]
    with rasterio.open(archive / path) as a, rasterio.open(again / path) as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_default_archive_is_cached(tmp_path: Path) -> None:
    first = default_archive(tmp_path, n_s2=20, n_s1=20, n_paired=2, size=16)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    assert default_archive(tmp_path, n_s2=20, n_s1=20, n_paired=2, size=16) == first
    assert (first / "manifest.json").stat().st_mtime_ns == stamp


def _scene_means(archive: Path, sensor: str) -> tuple[np.ndarray, np.ndarray]:
    frame = gpd.read_parquet(archive / "metadata.parquet")
    frame = frame[frame["sensor"] == sensor]
    means = []
    for path in frame["path"]:
        with rasterio.open(archive / path) as src:
            means.append(src.read().reshape(src.count, -1).astype(float).mean(1))
    classes = [f"frac_{c.replace(' ', '_')}" for c in cards.land_cover_classes()]
    return np.asarray(means), frame[classes].to_numpy().argmax(1)


def test_physics_multispectral_separates_classes_better_than_rgb(archive: Path) -> None:
    means, dominant = _scene_means(archive, "s2")
    names = cards.land_cover_classes()
    keep = np.isin(dominant, [names.index(c) for c in
                              ("water", "trees", "crops", "built area", "bare ground")])
    x, y = np.log(means[keep]), dominant[keep]
    model = LogisticRegression(max_iter=5000)
    all_bands = cross_val_score(model, x, y, cv=5).mean()
    rgb = cross_val_score(model, x[:, [3, 2, 1]], y, cv=5).mean()
    print(f"S2 dominant class from scene-mean reflectance: 13 bands {all_bands:.3f}, "
          f"RGB {rgb:.3f}")
    assert all_bands > rgb + 0.15


def test_physics_sar_separates_water_forest_urban(archive: Path) -> None:
    frame = gpd.read_parquet(archive / "metadata.parquet")
    frame = frame[frame["sensor"] == "s1"]
    pixels: dict[str, list[float]] = {"water": [], "trees": [], "built area": []}
    for path, water, trees, built in zip(frame["path"], frame["frac_water"], frame["frac_trees"],
                                         frame["frac_built_area"], strict=True):
        fractions = {"water": water, "trees": trees, "built area": built}
        best = max(fractions, key=fractions.get)
        if fractions[best] > 0.6:
            with rasterio.open(archive / path) as src:
                vv, vh = src.read()
            pixels[best].append(float(np.median(vh)))
            pixels[best].append(float(np.median(vv)))
    vh_vv = {k: (np.mean(v[0::2]), np.mean(v[1::2])) for k, v in pixels.items() if v}
    print("S1 median (VH, VV) dB of scenes dominated by a class:", vh_vv)
    assert vh_vv["water"][1] < vh_vv["trees"][1] - 8 < vh_vv["built area"][1] - 8
    assert vh_vv["water"][0] < vh_vv["trees"][0] - 8
