#!/usr/bin/env python3
"""Generate a tiny CrisisLandMark archive as its dataset card describes the release.

Written from the Hugging Face dataset card (huggingface.co/datasets/DarthReca/crisislandmark,
"Dataset Structure") and the file list of the public CLOSP code (github.com/DarthReca/closp,
``dataset/crisis_land_mark.py``, ``filenames_urls``), not from our loader:

- ``crisislandmark.h5`` holds no data of its own: one **HDF5 external link** per sample key,
  pointing into one of 12 shard files that must sit beside it (``benv2s2_part1..4.h5``,
  ``benv2s1_part1..4.h5``, ``cabuar.h5``, ``sen12flood.h5``, ``mmflood.h5``, ``quakeset.h5``);
- each key holds ``image`` (B, H, W) float32 — B = 2 for Sentinel-1 (VV, VH) or 12 for
  Sentinel-2 — and ``coords`` (2, H, W) float32, the x and y of every pixel;
- attributes: ``crs`` (1,) float32, the EPSG code; ``timestamp`` (1,) float32 when
  available (here: unix seconds; absent on one sample); ``labels`` (L,) strings, the
  harmonised labels (Dynamic World classes + crisis tags);
- ``metadata.parquet``: ``key``, ``split`` (``train`` / ``test``: the training and corpus
  sets) and ``labels`` as the original source names them (CORINE or Dynamic World);
- ``queries.jsonl`` (one ``{"_id", "text"}`` per line) and ``qrels/test.tsv``
  (``query-id``, ``corpus-id``, ``score``; the BEIR layout of a "qrels folder"), the score
  being the number of query labels a corpus sample carries (the graded relevance of the
  CLOSP paper).

Samples are 16 x 16 px (the release: 120). Sentinel-2 holds digital numbers (band k of
B01..B12 in L1C order ~ 100 * (k + 1); B10 is not stored). The cabuar sample of 2022-08-01 is a
processing-baseline 04.00 product (DN = 10000 * reflectance + 1000). Sentinel-1 holds dB,
VV brighter than VH; the QuakeSet sample has the 2 channels the card describes. Broken on
purpose: ``cabuar_california_0042`` has 5 bands, ``mmflood_EMSR271_02`` is all NaN.

Run ``python tests/data/crisislandmark/data.py``; files are written next to this script.
:func:`write_archive` is reused by tests to write variants (a swapped or linear S1 sample).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SIZE = 16
SHARDS = [*(f"benv2s2_part{i}.h5" for i in range(1, 5)),
          *(f"benv2s1_part{i}.h5" for i in range(1, 5)),
          "cabuar.h5", "sen12flood.h5", "mmflood.h5", "quakeset.h5"]
#: Query id -> (text, harmonised labels it asks for).
QUERIES = {
    "q0": ("flooded area", ["Flooded Area"]),
    "q1": ("trees", ["Trees"]),
    "q2": ("water. flooded area", ["Water", "Flooded Area"]),
    "q3": ("built area", ["Built"]),
}


@dataclass
class Sample:
    """One sample of the fixture, as the release stores it."""

    shard: str
    image: np.ndarray
    epsg: int
    centre: tuple[float, float]
    timestamp: str | None
    source_labels: list[str]
    labels: list[str]
    split: str
    extra: dict = field(default_factory=dict)


def coords_grid(x_centre: float, y_centre: float) -> np.ndarray:
    """(2, H, W) float32 x / y of 10 m pixels whose centre pixel is at (x_centre, y_centre)."""
    offsets = (np.arange(SIZE) - SIZE // 2) * 10.0
    x = np.broadcast_to(x_centre + offsets[None, :], (SIZE, SIZE))
    y = np.broadcast_to(y_centre - offsets[:, None], (SIZE, SIZE))
    return np.stack([x, y]).astype(np.float32)


def unix_seconds(iso: str) -> float:
    """Unix seconds of an ISO date-time (UTC)."""
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


def s2_dn(rng: np.random.Generator, offset: float = 0.0) -> np.ndarray:
    """(12, H, W) L2A digital numbers (B01..B09, B8A, B11, B12), plus ``offset``.

    Band k of the 13 L1C bands B01..B12 (B10 included) holds ~100 * (k + 1) + noise, so
    B11 ~ 1200 and B12 ~ 1300: tests can check where each stored band lands.
    """
    levels = 100.0 * np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13])[:, None, None]
    return (levels + rng.integers(0, 20, (12, SIZE, SIZE)) + offset).astype(np.float32)


def s1_db(rng: np.random.Generator, vv: float = -10.0, vh: float = -17.0) -> np.ndarray:
    """(2, H, W) sigma0 in dB, VV then VH."""
    return np.stack([rng.normal(vv, 1.0, (SIZE, SIZE)),
                     rng.normal(vh, 1.0, (SIZE, SIZE))]).astype(np.float32)


def samples(rng: np.random.Generator) -> dict[str, Sample]:
    """The fixture's samples by key (the key names the source dataset, hence the sensor)."""
    nodata = s2_dn(rng)
    nodata[:, 0, 0] = np.nan  # a nodata pixel, as the release stores them
    return {
        "benv2s2_S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57": Sample(
            "benv2s2_part1.h5", nodata, 32633, (500000.0, 5000000.0), "2017-06-13T10:10:31",
            ["Coniferous forest", "Non-irrigated arable land", "Water bodies"],
            ["Trees", "Crops", "Water"], "train"),
        "benv2s2_S2B_MSIL2A_20170615T102019_N9999_R122_T33UUP_45_23": Sample(
            "benv2s2_part2.h5", s2_dn(rng), 32633, (501200.0, 5001200.0),
            "2017-06-15T10:20:19", ["Pastures", "Discontinuous urban fabric"],
            ["Grass", "Built"], "train"),
        "benv2s2_S2A_MSIL2A_20180402T101021_N9999_R022_T32TMR_10_10": Sample(
            "benv2s2_part3.h5", s2_dn(rng), 32632, (500000.0, 5100000.0),
            "2018-04-02T10:10:21", ["Broad-leaved forest"], ["Trees"], "test"),
        "benv2s2_S2B_MSIL2A_20180410T102019_N9999_R122_T32TMR_77_03": Sample(
            "benv2s2_part4.h5", s2_dn(rng), 32632, (520000.0, 5080000.0),
            "2018-04-10T10:20:19", ["Sea and ocean"], ["Water"], "test"),
        "sen2flood_Bolivia_103757": Sample(
            "sen12flood.h5", s2_dn(rng), 32720, (500000.0, 8400000.0), None,
            ["Crops", "Water", "Flooded Area"], ["Crops", "Water", "Flooded Area"], "test"),
        "cabuar_california_0042": Sample(
            "cabuar.h5", s2_dn(rng)[:5], 32610, (600000.0, 4300000.0), "2021-08-01T18:00:00",
            ["Burned Area", "Shrub and Scrub"], ["Shrub and Scrub", "Burned Area"], "train"),
        "cabuar_california_0107": Sample(
            "cabuar.h5", s2_dn(rng, offset=1000.0), 32610, (600000.0, 4300000.0),
            "2022-08-01T18:40:00", ["Burned Area", "Shrub and Scrub"],
            ["Shrub and Scrub", "Burned Area"], "train"),
        "benv2s1_S1A_IW_GRDH_1SDV_20170613T165043_33UUP_61_39": Sample(
            "benv2s1_part1.h5", s1_db(rng), 32633, (500000.0, 5000000.0),
            "2017-06-13T16:50:43", ["Mixed forest", "Discontinuous urban fabric",
                                    "Martian canals"], ["Trees", "Built"], "train"),
        "benv2s1_S1B_IW_GRDH_1SDV_20170615T170156_33UUP_77_12": Sample(
            "benv2s1_part2.h5", s1_db(rng, -11.0, -18.0), 32633, (501200.0, 5001200.0),
            "2017-06-15T17:01:56", ["Pastures"], ["Grass"], "train"),
        "benv2s1_S1A_IW_GRDH_1SDV_20180402T170000_32TMR_10_10": Sample(
            "benv2s1_part3.h5", s1_db(rng, -9.0, -15.0), 32632, (500000.0, 5100000.0),
            "2018-04-02T17:00:00", ["Broad-leaved forest"], ["Trees"], "test"),
        "benv2s1_S1A_IW_GRDH_1SDV_20180410T170000_32TMR_77_03": Sample(
            "benv2s1_part4.h5", s1_db(rng, -20.0, -27.0), 32632, (520000.0, 5080000.0),
            "2018-04-10T17:00:00", ["Sea and ocean"], ["Water"], "test"),
        "quakeset_turkey_0007": Sample(
            "quakeset.h5", s1_db(rng, -6.0, -13.0), 32637, (500000.0, 4200000.0),
            "2023-02-07T03:00:00", ["Built", "Earthquake Damage"],
            ["Built", "Earthquake Damage"], "train"),
        "mmflood_EMSR271_02": Sample(
            "mmflood.h5", np.full((2, SIZE, SIZE), np.nan, np.float32), 32633,
            (500000.0, 5000000.0), "2018-03-01T05:00:00", ["Water", "Flooded Area"],
            ["Water", "Flooded Area"], "train"),
        "sen1flood_Bolivia_103757": Sample(
            "sen12flood.h5", s1_db(rng, -14.0, -22.0), 32720, (500000.0, 8400000.0), None,
            ["Crops", "Water", "Flooded Area"], ["Crops", "Water", "Flooded Area"], "test"),
    }


def write_archive(root: Path, found: dict[str, Sample], queries: dict | None = None) -> None:
    """Write shards, the master file of external links, metadata and the benchmark files.

    Args:
        root: Folder to write into (created).
        found: Samples by key.
        queries: Query id -> (text, labels); ``None``: :data:`QUERIES`.
    """
    root.mkdir(parents=True, exist_ok=True)
    shards = {name: h5py.File(root / name, "w") for name in SHARDS}
    try:
        for key, sample in found.items():
            group = shards[sample.shard].create_group(key)
            group.create_dataset("image", data=sample.image.astype(np.float32),
                                 compression="gzip")
            group.create_dataset("coords", data=coords_grid(*sample.centre), compression="gzip")
            group.attrs["crs"] = np.array([sample.epsg], dtype=np.float32)
            if sample.timestamp is not None:
                group.attrs["timestamp"] = np.array([unix_seconds(sample.timestamp)],
                                                    dtype=np.float32)
            group.attrs["labels"] = list(sample.labels)
            for name, value in sample.extra.items():
                group.attrs[name] = value
    finally:
        for handle in shards.values():
            handle.close()
    with h5py.File(root / "crisislandmark.h5", "w") as master:
        for key, sample in found.items():
            master[key] = h5py.ExternalLink(sample.shard, f"/{key}")
    pd.DataFrame({"key": list(found), "split": [s.split for s in found.values()],
                  "labels": [s.source_labels for s in found.values()]}
                 ).to_parquet(root / "metadata.parquet", index=False)
    queries = QUERIES if queries is None else queries
    with (root / "queries.jsonl").open("w") as handle:
        for query_id, (text, _) in queries.items():
            handle.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    (root / "qrels").mkdir(exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore"]
    for query_id, (_, wanted) in queries.items():
        for key, sample in found.items():
            score = len(set(wanted) & set(sample.labels))
            if sample.split == "test" and score:
                lines.append(f"{query_id}\t{key}\t{score}")
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")


def main() -> None:
    """Write the fixture next to this script."""
    for stale in HERE.glob("*.h5"):
        stale.unlink()
    write_archive(HERE, samples(np.random.default_rng(0)))


if __name__ == "__main__":
    main()
