#!/usr/bin/env python3
"""Generate the bad-input corpus: a scene folder with one good and several broken GeoTIFFs.

Besides broken files: ``landsat.tif`` (13 bands, but described as Landsat Collection 2
bands: another sensor) and ``negative.tif`` (negative values: not Sentinel-2 DN).

Run from anywhere: ``python tests/data/bad_geotiffs/data.py``. Files are written next
to this script (committed; a few KB each).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

HERE = Path(__file__).resolve().parent
S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11",
            "B12"]
SIZE = 16


def write(
    name: str, data: np.ndarray, descriptions: list[str] | None, nodata: float | None
) -> None:
    profile = {"driver": "GTiff", "dtype": data.dtype.name, "count": data.shape[0],
               "height": SIZE, "width": SIZE, "crs": "EPSG:32633",
               "transform": from_origin(500000, 5000000, 10, 10), "nodata": nodata}
    (HERE / name).unlink(missing_ok=True)  # rasterio cannot overwrite a truncated file
    with rasterio.open(HERE / name, "w", **profile) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = tuple(descriptions)


def main() -> None:
    rng = np.random.default_rng(0)
    good = rng.integers(200, 4000, size=(13, SIZE, SIZE)).astype(np.uint16)
    write("good.tif", good, S2_BANDS, 0)
    write("wrong_bands.tif", good[:5], None, 0)
    write("all_nodata.tif", np.zeros_like(good), S2_BANDS, 0)
    non_finite = good.astype(np.float32)
    non_finite[:, :, : SIZE * 3 // 4] = np.nan
    non_finite[:, 0, -1] = np.inf
    write("non_finite.tif", non_finite, S2_BANDS, None)
    write("truncated.tif", good, S2_BANDS, 0)
    data = (HERE / "truncated.tif").read_bytes()
    (HERE / "truncated.tif").write_bytes(data[: len(data) // 3])
    (HERE / "not_a_tiff.tif").write_text("this is not a GeoTIFF\n")
    write("missing_caption.tif", good, S2_BANDS, 0)
    landsat = rng.integers(7000, 20000, size=(13, SIZE, SIZE)).astype(np.uint16)
    write("landsat.tif", landsat, [f"SR_B{i}" for i in range(1, 8)]
          + ["ST_B10", "ST_ATRAN", "ST_CDIST", "ST_DRAD", "ST_EMIS", "QA_PIXEL"], 0)
    negative = good.astype(np.int16) - 1500  # already offset-corrected: not DN
    write("negative.tif", negative, S2_BANDS, None)
    rows = [("good.tif", "trees. crops", "trees; crops"),
            ("wrong_bands.tif", "water", "water"),
            ("all_nodata.tif", "water", "water"),
            ("non_finite.tif", "crops", "crops"),
            ("truncated.tif", "built area", "built area"),
            ("not_a_tiff.tif", "bare ground", "bare ground"),
            ("missing_caption.tif", "", "trees"),
            ("landsat.tif", "crops", "crops"),
            ("negative.tif", "crops", "crops")]
    lines = ["path,caption,labels,sensor,lon,lat"]
    lines += [f"{p},{c},{labels},s2,15.0,45.0" for p, c, labels in rows]
    (HERE / "metadata.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
