"""BigEarthNet v2.0 (reBEN; Clasen et al. 2024, arXiv:2407.03653): one GeoTIFF per band.

Layout (``datasets/remote_sensing/bigearthnet.yaml``; the facts are those TorchGeo 0.8's
``BigEarthNetV2`` and its test-data script ``tests/data/bigearthnet/v2/data.py`` rely on,
and ConfigILM's ``BENv2_DataSet.py`` for the metadata columns)::

    <root>/BigEarthNet-S2/<tile>/<patch_id>/<patch_id>_B01.tif ... _B12.tif
        L2A digital numbers, 12 bands (no B10); 10 m bands 120 x 120 px, 20 m bands
        60 x 60, 60 m bands 20 x 20; <tile> is the patch id less its last two "_" parts.
    <root>/BigEarthNet-S1/<product>/<s1_name>/<s1_name>_VV.tif, _VH.tif
        sigma0 in dB, 120 x 120 px; <product> is the S1 name less its last three parts.
    <root>/Reference_Maps/<tile>/<patch_id>/<patch_id>_reference_map.tif   (optional)
        CORINE Land Cover 2018 level-3 code of every pixel.
    <root>/metadata.parquet
        patch_id, labels (19-class names), split ("train" | "validation" | "test"),
        country, s1_name, s2v1_name, contains_seasonal_snow, contains_cloud_or_shadow.
    <root>/metadata_for_patches_with_snow_cloud_or_shadow.parquet   (optional)
        the same columns for the patches reBEN keeps apart because they hold seasonal
        snow, clouds or cloud shadows: they are not in ``metadata.parquet``.

The snow/cloud patches are read from their own table when it is present, so they can
be loaded (``exclude_snow_cloud=False``, the default) or dropped
(``exclude_snow_cloud=True`` drops exactly the patches that table lists, plus any row
of ``metadata.parquet`` flagged ``contains_seasonal_snow`` / ``contains_cloud_or_shadow``).
Each row keeps ``snow_cloud`` (bool) in ``metadata``.

Bands are read by name (S1 files name their polarisation, which is verified from the data;
S2 is the card's level, L2A, turned into reflectance with the offset of the date in the
patch name) and stacked on the 10 m grid (20 m and 60 m bands upsampled
bilinearly, as TorchGeo does). B10 does not exist in L2A: asked for (the default 13-band
order), it comes back as NaN, i.e. 0 after the datamodule's normalisation (the band's
mean: no information), as CLOSP zero-fills it. Labels map to Dynamic World through
``corine_to_dynamic_world.yaml``; with reference maps, captions name the classes largest
area first and samples carry area fractions. S1 and S2 of one patch share a ``pair_id``.

Why not TorchGeo's ``BigEarthNetV2``: it reads every band with ``out_dtype="int32"``,
which truncates Sentinel-1 dB values (-12.7 dB becomes -12) and drops the fractional
part of bilinearly resampled S2 bands; it orders band files by sorted file name, so S1
comes back VH before VV; and it reads only ``metadata.parquet``, so the snow/cloud
patches can be neither loaded nor excluded. The folder layout and the patch-id ->
folder rule are TorchGeo's, kept identical.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio

from domains.remote_sensing import cards
from domains.remote_sensing.scene_dataset import SceneDataset
from domains.remote_sensing.scene_io import SceneError, read_band_files

log = logging.getLogger(__name__)

_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T\d{6}")


def acquisition_date(name: str) -> str:
    """ISO date (YYYY-MM-DD) in a Sentinel product or patch name, or ``""``."""
    match = _DATE.search(name)
    return "-".join(match.groups()) if match else ""


class BigEarthNetV2(SceneDataset):
    """One sensor's patches of a BigEarthNet v2.0 archive.

    Args:
        root: Folder with ``BigEarthNet-S2``, ``BigEarthNet-S1`` and ``metadata.parquet``.
        sensor: ``"s2"`` or ``"s1"``.
        split: ``"train"``, ``"val"`` (the archive's "validation"), ``"test"`` or ``None``.
        bands: Bands to return (default: all 13 S2 bands in L1C order, B10 NaN; or VV, VH).
        transforms: A dictionary transform applied to each sample.
        strict: Raise on the first bad patch instead of skipping it.
        preload: Read and check every patch at construction (small archives, tests).
        exclude_snow_cloud: Drop the patches listed in
            ``metadata_for_patches_with_snow_cloud_or_shadow.parquet`` and any patch
            flagged ``contains_seasonal_snow`` or ``contains_cloud_or_shadow``.
    """

    def __init__(
        self, root: str | Path, sensor: str = "s2", split: str | None = "train",
        bands: Sequence[str] | None = None, transforms: Callable | None = None,
        strict: bool = False, preload: bool = False, exclude_snow_cloud: bool = False,
    ) -> None:
        super().__init__(sensor, bands, transforms, strict)
        self.root = Path(root)
        self.card = cards.card("bigearthnet")
        self.level = str(self.card["level"])  # every S2 patch: picks the statistics
        self.folder = self.root / self.card["folders"][sensor]
        table = self.root / self.card["metadata_file"]
        for path in (table, self.folder):
            if not path.exists():
                raise FileNotFoundError(f"{path}: BigEarthNet v2 file or folder not found")
        frame = self._table(table, sensor)
        names = self.card["split_names"]
        frame = frame.assign(split=[names.get(str(s), str(s)) for s in frame["split"]])
        if split is not None:
            frame = frame[frame["split"] == split]
        if exclude_snow_cloud:
            frame = frame[~frame["snow_cloud"]]
        self.archive_bands = list(self.card[f"{sensor}_bands"])
        self.missing_bands = [b for b in self.bands if b not in self.archive_bands]
        if self.missing_bands:
            log.info("BigEarthNet v2 %s has no %s: returned as NaN (0 after normalisation)",
                     sensor, self.missing_bands)
        self.unknown_labels: Counter[str] = Counter()
        self.metadata = self._rows(frame)
        self._drop_unlabelled()
        if preload:
            self._preload()

    def _table(self, table: Path, sensor: str) -> pd.DataFrame:
        """``metadata.parquet`` joined with the snow/cloud table (if present), flagged."""
        needed = {"patch_id", "labels", "split"} | ({"s1_name"} if sensor == "s1" else set())
        frames = []
        for path in (table, self.root / self.card["snow_cloud_file"]):
            if path != table and not path.is_file():
                continue
            frame = pd.read_parquet(path)
            missing = needed - set(frame.columns)
            if missing:
                raise ValueError(f"{path}: missing columns {sorted(missing)}")
            flagged = np.zeros(len(frame), dtype=bool) if path == table \
                else np.ones(len(frame), dtype=bool)
            for flag in ("contains_seasonal_snow", "contains_cloud_or_shadow"):
                if flag in frame.columns:
                    flagged |= frame[flag].fillna(False).astype(bool).to_numpy()
            frames.append(frame.assign(snow_cloud=flagged))
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        flagged = frame.groupby("patch_id")["snow_cloud"].transform("any")
        return frame.assign(snow_cloud=flagged).drop_duplicates("patch_id", keep="first")

    def _rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        rows = []
        for record in frame.itertuples(index=False):
            patch = str(record.patch_id)
            name = str(record.s1_name) if self.sensor == "s1" else patch
            parts = name.split("_")
            parent = "_".join(parts[:-3] if self.sensor == "s1" else parts[:-2])
            labels, unknown = cards.canonical_labels(str(v) for v in record.labels)
            self.unknown_labels.update(unknown)
            rows.append({"path": str(self.folder / parent / name), "id": name,
                         "pair_id": patch, "labels": labels, "split": record.split,
                         "country": getattr(record, "country", ""),
                         "date": acquisition_date(name),
                         "snow_cloud": bool(record.snow_cloud)})
        if self.unknown_labels:
            log.info("BigEarthNet labels without a vocabulary counterpart (ignored): %s",
                     dict(self.unknown_labels))
        return pd.DataFrame(rows, columns=["path", "id", "pair_id", "labels", "split",
                                           "country", "date", "snow_cloud"])

    def _read(self, index: int) -> dict[str, Any]:
        row = self.metadata.iloc[index]
        folder = Path(row["path"])
        files = [folder / f"{row['id']}_{band}.tif" if band in self.archive_bands else None
                 for band in self.bands]
        missing = [f.name for f in files if f is not None and not f.is_file()]
        if missing:
            raise SceneError(f"{folder}: missing band files {missing}")
        level = {"level": self.level} if self.sensor == "s2" else {}
        image, lon_lat = read_band_files(folder, files, self.sensor, bands=self.bands,
                                         date=row["date"] or None, **level)  # (C, H, W)
        fractions = self._reference_fractions(str(row["pair_id"]))
        return {"image": image, "coords": lon_lat, "fractions": fractions,
                "labels": cards.order_by_area(list(row["labels"]), fractions),
                "date": row["date"]}

    def _reference_fractions(self, patch: str) -> np.ndarray | None:
        """Dynamic World area fractions from the patch's CORINE reference map, if present."""
        tile = "_".join(patch.split("_")[:-2])
        path = self.root / self.card["folders"]["maps"] / tile / patch / \
            f"{patch}_reference_map.tif"
        if not path.is_file():
            return None
        try:
            with rasterio.open(path) as src:
                codes = src.read(1)  # (H, W)
        except (rasterio.errors.RasterioError, OSError) as error:
            raise SceneError(f"{path}: unreadable reference map ({error})") from error
        lookup = {int(c): cards.corine_code_label(int(c)) for c in np.unique(codes) if c > 0}
        fractions = cards.class_fractions(codes, lookup)
        return None if np.isnan(fractions).all() else fractions
