#!/usr/bin/env python3
"""Generate a tiny BigEarthNet v2.0 (reBEN) archive in its real folder layout.

Layout (as TorchGeo's ``BigEarthNetV2`` reads it)::

    BigEarthNet-S2/<tile>/<patch_id>/<patch_id>_<band>.tif   12 L2A bands, no B10
    BigEarthNet-S1/<product>/<s1_name>/<s1_name>_<VV|VH>.tif  sigma0 in dB
    Reference_Maps/<tile>/<patch_id>/<patch_id>_reference_map.tif   CORINE codes
    metadata.parquet   patch_id, labels, split, country, s1_name, s2v1_name,
                       contains_seasonal_snow, contains_cloud_or_shadow
    metadata_for_patches_with_snow_cloud_or_shadow.parquet   the same columns for the
                       patches reBEN keeps apart (snow, clouds or shadows): here the
                       validation patch (seasonal snow) and a cloudy train patch

Bands keep the archive's resolutions at 1/5 of its size: 10 m bands 24 x 24 px, 20 m
bands 12 x 12, 60 m bands 4 x 4, all over the same 240 m footprint (UTM 33N, the patch
centre at 15 E). Each band holds a constant plus noise that identifies it (B01 ~ 100,
B02 ~ 200, ...), so tests can check the band order. Broken on purpose: the S2 band B05 of
the test patch is truncated, and the VH file of the second train patch's S1 partner is
missing.

Run ``python tests/data/bigearthnet/data.py``; files are written next to this script.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.transform import from_origin

HERE = Path(__file__).resolve().parent
SIZE = 24  # 10 m pixels (the archive: 120)
S2_BANDS = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
            "B08": 10, "B8A": 20, "B09": 60, "B11": 20, "B12": 20}
#: The value level of each L1C band (B10 would be 1100): band k of B01..B12 ~ 100 * k.
LEVEL = {b: 100 * (i + 1) for i, b in enumerate(
    ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"])}
PATCHES = [
    ("S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57",
     "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_61_39", "train",
     ["Coniferous forest", "Arable land", "Inland waters"], {312: 0.6, 211: 0.3, 512: 0.1}),
    ("S2B_MSIL2A_20170615T102019_N9999_R122_T33UUP_45_23",
     "S1A_IW_GRDH_1SDV_20170615T170156_33UUP_77_12", "train",
     ["Urban fabric", "Pastures"], {112: 0.25, 231: 0.75}),
    ("S2A_MSIL2A_20170618T101021_N9999_R022_T33UUP_89_34",
     "S1A_IW_GRDH_1SDV_20170618T165722_33UUP_92_45", "validation",
     ["Marine waters", "Beaches, dunes, sands"], {523: 0.8, 331: 0.2}),
    ("S2A_MSIL2A_20170704T101031_N9999_R022_T33UUP_12_80",
     "S1A_IW_GRDH_1SDV_20170704T165043_33UUP_11_22", "test",
     ["Mixed forest"], {313: 1.0}),
    ("S2B_MSIL2A_20170717T101029_N9999_R022_T33UUP_55_61",
     "S1B_IW_GRDH_1SDV_20170717T165001_33UUP_40_18", "train",
     ["Broad-leaved forest"], {311: 1.0}),
]
#: Patches reBEN lists in the snow/cloud table instead of metadata.parquet: patch id ->
#: (contains_seasonal_snow, contains_cloud_or_shadow).
SNOW_CLOUD = {PATCHES[2][0]: (True, False), PATCHES[4][0]: (False, True)}


def write(path: Path, data: np.ndarray, pixel: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "dtype": data.dtype.name, "count": 1, "height": data.shape[0],
               "width": data.shape[1], "crs": "EPSG:32633",
               "transform": from_origin(500000 - 120, 5000000 + 120, pixel, pixel)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def reference_map(rng: np.random.Generator, shares: dict[int, float]) -> np.ndarray:
    counts = [round(share * SIZE * SIZE) for share in shares.values()]
    codes = np.repeat(list(shares), counts)[: SIZE * SIZE]
    return rng.permutation(codes).reshape(SIZE, SIZE).astype(np.uint16)


def main() -> None:
    rng = np.random.default_rng(0)
    for folder in ("BigEarthNet-S2", "BigEarthNet-S1", "Reference_Maps"):
        shutil.rmtree(HERE / folder, ignore_errors=True)
    rows = []
    for patch, s1_name, split, labels, shares in PATCHES:
        tile, product = "_".join(patch.split("_")[:-2]), "_".join(s1_name.split("_")[:-3])
        for band, metres in S2_BANDS.items():
            side = SIZE * 10 // metres
            data = (LEVEL[band] + rng.integers(0, 20, (side, side))).astype(np.uint16)
            write(HERE / "BigEarthNet-S2" / tile / patch / f"{patch}_{band}.tif", data, metres)
        for band, level in (("VV", -10.0), ("VH", -17.0)):
            data = rng.normal(level, 1.0, (SIZE, SIZE)).astype(np.float32)
            write(HERE / "BigEarthNet-S1" / product / s1_name / f"{s1_name}_{band}.tif", data,
                  10)
        write(HERE / "Reference_Maps" / tile / patch / f"{patch}_reference_map.tif",
              reference_map(rng, shares), 10)
        rows.append({"patch_id": patch, "labels": labels, "split": split, "country": "Austria",
                     "s1_name": s1_name, "s2v1_name": patch.replace("MSIL2A", "MSIL2A_v1"),
                     "contains_seasonal_snow": SNOW_CLOUD.get(patch, (False, False))[0],
                     "contains_cloud_or_shadow": SNOW_CLOUD.get(patch, (False, False))[1]})
    broken = PATCHES[3][0]
    b05 = HERE / "BigEarthNet-S2" / "_".join(broken.split("_")[:-2]) / broken / f"{broken}_B05.tif"
    b05.write_bytes(b05.read_bytes()[:200])
    s1_name = PATCHES[1][1]
    (HERE / "BigEarthNet-S1" / "_".join(s1_name.split("_")[:-3]) / s1_name /
     f"{s1_name}_VH.tif").unlink()
    frame = pd.DataFrame(rows)
    apart = frame["patch_id"].isin(list(SNOW_CLOUD))
    frame[~apart].to_parquet(HERE / "metadata.parquet", index=False)
    frame[apart].to_parquet(HERE / "metadata_for_patches_with_snow_cloud_or_shadow.parquet",
                            index=False)


if __name__ == "__main__":
    main()
