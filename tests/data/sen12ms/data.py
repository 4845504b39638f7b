#!/usr/bin/env python3
"""Generate a tiny SEN12MS archive in its real folder layout.

Layout (as TorchGeo's ``SEN12MS`` and the authors' github.com/schmitt-muc/SEN12MS read it)::

    ROIs<nnnn>_<season>/<source>_<scene>/ROIs<nnnn>_<season>_<source>_<scene>_p<patch>.tif
        source s2: 13 bands B01..B12 with B8A and B10 (uint16 digital numbers)
        source s1: 2 bands VV, VH (float32 dB)
        source lc: 4 bands IGBP, LCCS land cover, LCCS land use, LCCS hydrology (uint16)
    train_list.txt, test_list.txt: one S2 file name per line (SEN12MS has no validation
        list: the loader carves one from the train list by whole (season, scene) groups)

Patches are 16 x 16 px (the archive: 256) in UTM 37S with their centre at (39 E, 17.18 S).
S2 band k of B01..B12 holds ~100 * k, so tests can check the band order. Broken on
purpose: the S2 file of ``ROIs1158_spring_..._p2`` has 5 bands, and the S1 file of
``ROIs1868_summer_..._146_p202`` is all NaN — the real archive's one known broken patch.

Run ``python tests/data/sen12ms/data.py``; files are written next to this script.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

HERE = Path(__file__).resolve().parent
SIZE = 16
#: (season folder, scene, patch, IGBP code -> area share, split). The train list covers five
#: (season, scene) groups, so validation (carved by scene, 20 %) gets one whole scene; the
#: test patch has a scene of its own.
PATCHES = [
    ("ROIs1158_spring", 1, 1, {12: 0.6, 17: 0.4}, "train"),
    ("ROIs1158_spring", 1, 2, {5: 1.0}, "train"),
    ("ROIs1868_summer", 146, 202, {13: 0.7, 10: 0.3}, "train"),
    ("ROIs1868_summer", 146, 204, {10: 1.0}, "train"),
    ("ROIs1970_fall", 7, 10, {4: 0.8, 12: 0.2}, "train"),
    ("ROIs2017_winter", 30, 5, {15: 0.9, 16: 0.1}, "train"),
    ("ROIs1158_spring", 2, 3, {9: 1.0}, "train"),
    ("ROIs1868_summer", 147, 203, {16: 0.5, 7: 0.48, 17: 0.02}, "test"),
]


def write(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "dtype": data.dtype.name, "count": data.shape[0],
               "height": SIZE, "width": SIZE, "crs": "EPSG:32737", "nodata": None,
               "transform": from_origin(500000 - 80, 8100000 + 80, 10, 10)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def igbp_map(rng: np.random.Generator, shares: dict[int, float]) -> np.ndarray:
    counts = [round(share * SIZE * SIZE) for share in shares.values()]
    codes = np.repeat(list(shares), counts)[: SIZE * SIZE]
    return rng.permutation(codes).reshape(SIZE, SIZE)


def main() -> None:
    rng = np.random.default_rng(0)
    lists: dict[str, list[str]] = {"train": [], "test": []}
    for season in {p[0] for p in PATCHES}:
        shutil.rmtree(HERE / season, ignore_errors=True)
    for season, scene, patch, shares, split in PATCHES:
        def path(source: str, season: str = season, scene: int = scene,
                 patch: int = patch) -> Path:
            return HERE / season / f"{source}_{scene}" / f"{season}_{source}_{scene}_p{patch}.tif"

        s2 = (100 * np.arange(1, 14)[:, None, None] + rng.integers(0, 20, (13, SIZE, SIZE)))
        s2 = s2.astype(np.uint16)
        write(path("s2"), s2[:5] if patch == 2 else s2)
        s1 = np.stack([rng.normal(-10.0, 1.0, (SIZE, SIZE)), rng.normal(-17.0, 1.0, (SIZE, SIZE))])
        write(path("s1"), np.full_like(s1, np.nan, np.float32) if patch == 202
              else s1.astype(np.float32))
        igbp = igbp_map(rng, shares)
        lc = np.stack([igbp, igbp + 20, igbp + 40, np.ones_like(igbp)]).astype(np.uint16)
        write(path("lc"), lc)
        lists[split].append(path("s2").name)
    for split, names in lists.items():
        (HERE / f"{split}_list.txt").write_text("\n".join(names) + "\n")


if __name__ == "__main__":
    main()
