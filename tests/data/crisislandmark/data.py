#!/usr/bin/env python3
"""Generate a tiny CrisisLandMark archive in the layout of its public release.

Layout (github.com/DarthReca/closp, ``dataset/crisis_land_mark.py``): ``crisislandmark.h5``
with one group per sample key holding ``image`` (C, H, W), ``coords`` (2, H, W: x / y of
every pixel in the sample's CRS) and the attributes ``crs`` and ``timestamp``; and
``metadata.parquet`` with ``key``, ``labels`` (list of str) and ``split`` (train / test).

Samples (16 x 16 px; each key names its source dataset, which tells the sensor):

- ``benv2s2_...``: 12 L2A bands, CORINE level-3 labels, centre at (15 E, 45.1535 N);
- ``sen2flood_...``: 13 L1C bands, Dynamic World labels + "Flooded Area" (test split);
- ``cabuar_...``: broken — 5 bands (wrong band count);
- ``benv2s1_...``: VH stored before VV (as the release stores BigEarthNet-S1);
- ``quakeset_...``: 4 channels (pre / post event), "Earthquake Damage";
- ``mmflood_...``: broken — every pixel NaN.

Run ``python tests/data/crisislandmark/data.py``; files are written next to this script.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SIZE = 16


def coords_grid(x_centre: float, y_centre: float) -> np.ndarray:
    """(2, H, W) x / y of 10 m pixels whose centre pixel is at (x_centre, y_centre)."""
    offsets = (np.arange(SIZE) - SIZE // 2) * 10.0
    x = np.broadcast_to(x_centre + offsets[None, :], (SIZE, SIZE))
    y = np.broadcast_to(y_centre - offsets[:, None], (SIZE, SIZE))
    return np.stack([x, y]).astype(np.float64)


def main() -> None:
    rng = np.random.default_rng(0)
    s2_l2a = rng.uniform(200, 4000, (12, SIZE, SIZE)).astype(np.float32)
    s2_l2a[:, 0, 0] = np.nan  # a nodata pixel, as the release stores them
    s2_l1c = rng.uniform(200, 4000, (13, SIZE, SIZE)).astype(np.float32)
    vv = rng.normal(-10.0, 2.0, (SIZE, SIZE)).astype(np.float32)
    vh = rng.normal(-17.0, 2.0, (SIZE, SIZE)).astype(np.float32)
    samples = {
        "benv2s2_S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57":
            (s2_l2a, "EPSG:32633", (500000.0, 5000000.0), "2017-06-13T10:10:31",
             ["Coniferous forest", "Non-irrigated arable land", "Water bodies"], "train"),
        "sen2flood_Bolivia_103757":
            (s2_l1c, "EPSG:32632", (500000.0, 5300000.0), "2018-02-15T14:00:00",
             ["Crops", "Water", "Flooded Area"], "test"),
        "cabuar_california_0042":
            (s2_l2a[:5], "EPSG:32633", (500000.0, 5000000.0), "2021-08-01T18:00:00",
             ["Burned Area", "Shrub and Scrub"], "train"),
        "benv2s1_S1A_IW_GRDH_1SDV_20170613T165043_33UUP_61_39":
            (np.stack([vh, vv]), "EPSG:32633", (500000.0, 5000000.0), "2017-06-13T16:50:43",
             ["Mixed forest", "Urban fabric", "Martian canals"], "train"),
        "quakeset_turkey_0007":
            (np.stack([vv - 1, vh - 1, vv, vh]), "EPSG:32737", (500000.0, 8100000.0),
             "2023-02-07T03:00:00", ["Built", "Earthquake Damage"], "train"),
        "mmflood_EMSR271_02":
            (np.full((2, SIZE, SIZE), np.nan, np.float32), "EPSG:32633", (500000.0, 5000000.0),
             "2018-03-01T05:00:00", ["Water", "Flooded Area"], "train"),
    }
    with h5py.File(HERE / "crisislandmark.h5", "w") as archive:
        for key, (image, crs, centre, timestamp, _, _) in samples.items():
            group = archive.create_group(key)
            group.create_dataset("image", data=image, compression="gzip")
            group.create_dataset("coords", data=coords_grid(*centre), compression="gzip")
            group.attrs["crs"] = crs
            group.attrs["timestamp"] = timestamp
    frame = pd.DataFrame({"key": list(samples),
                          "labels": [s[4] for s in samples.values()],
                          "split": [s[5] for s in samples.values()]})
    frame.to_parquet(HERE / "metadata.parquet", index=False)


if __name__ == "__main__":
    main()
