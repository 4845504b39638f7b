"""CrisisLandMark (the CLOSP corpus) as its public release stores it.

Layout (``datasets/remote_sensing/crisislandmark.yaml``; read from the public CLOSP code,
github.com/DarthReca/closp, ``dataset/crisis_land_mark.py``, class
``CrisisLandMarkDataset``)::

    <root>/crisislandmark.h5     one HDF5 group per sample, named by its key, holding
                                 image  (C, H, W)  S2: 12 L2A bands (B01..B09 with B8A,
                                                   B11, B12) or 13 L1C; S1: 2 channels in dB
                                 coords (2, H, W)  x / y of every pixel in the group's CRS
                                 attrs  crs (e.g. "EPSG:32633"), timestamp
    <root>/metadata.parquet      key, labels (list of str), split ("train" | "test")

Facts carried over from that code: the sensor of a sample is read from its key, which
names its source dataset (S2: benv2s2, cabuar, sen2flood; S1: benv2s1, mmflood,
sen1flood, quakeset); BigEarthNet-S1 and Sen1Floods11 store VH before VV and QuakeSet
stores four channels of which the last two are kept; the location is the centre pixel
of ``coords`` projected from ``crs`` to (lon, lat); labels are CORINE level-3 names or
Dynamic World names and crisis tags ("Flooded Area", "Burned Area", "Earthquake
Damage"), mapped to the vocabulary by ``dataset/mapping.py`` — here by
:func:`cards.canonical_labels`. The earlier release (``geocrisis.parquet`` with a
``file`` column naming one HDF5 file per source) is read too when the table has ``file``.

A 12-band (L2A) S2 sample lacks B10 (cirrus): the band comes back as NaN, which the
datamodule's normalisation turns into 0 — the band's mean, i.e. no information — as
CLOSP zero-fills it.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from domains.remote_sensing import cards
from domains.remote_sensing.scene_dataset import SceneDataset
from domains.remote_sensing.scene_io import SceneError, mask_invalid, to_lon_lat

log = logging.getLogger(__name__)

try:  # the release may compress with HDF5 filter plugins; registering them is optional
    import hdf5plugin  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    hdf5plugin = None


def split_of(value: str, key: str, val_fraction: float, names: dict[str, str]) -> str:
    """Our split (train/val/test) of a row: the table's, with ``val`` carved from train.

    The carve is a stable hash of the key, so a sample never moves between runs.
    """
    split = names.get(str(value).lower(), str(value).lower())
    if split == "train" and zlib.crc32(key.encode()) % 10_000 < val_fraction * 10_000:
        return "val"
    return split


class CrisisLandMark(SceneDataset):
    """One sensor's samples of a CrisisLandMark archive.

    Args:
        root: Folder with ``crisislandmark.h5`` and ``metadata.parquet``.
        sensor: ``"s2"`` or ``"s1"``.
        split: ``"train"``, ``"val"`` (carved from train, see the card), ``"test"`` or
            ``None`` for all.
        bands: Bands to return (default: all 13 S2 bands, or VV, VH).
        transforms: A dictionary transform applied to each sample.
        strict: Raise on the first bad sample instead of skipping it.
        preload: Read and check every sample at construction (small archives, tests).

    Attributes:
        unknown_labels: How often each archive label without a vocabulary counterpart was seen.
    """

    def __init__(
        self, root: str | Path, sensor: str = "s2", split: str | None = "train",
        bands: Sequence[str] | None = None, transforms: Callable | None = None,
        strict: bool = False, preload: bool = False,
    ) -> None:
        super().__init__(sensor, bands, transforms, strict)
        self.root = Path(root)
        self.card = cards.card("crisislandmark")
        self.h5_path = self.root / self.card["h5_file"]
        table = self.root / self.card["metadata_file"]
        for path in (table,) if "file" in _columns(table) else (table, self.h5_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: CrisisLandMark file not found")
        frame = pd.read_parquet(table)
        missing = {"key", "labels", "split"} - set(frame.columns)
        if missing:
            raise ValueError(f"{table}: missing columns {sorted(missing)}")
        self.unknown_labels: Counter[str] = Counter()
        self.metadata = self._rows(frame, split)
        self._drop_unlabelled()
        if preload:
            self._preload()

    def _sensor_of(self, key: str) -> str | None:
        for sensor, sources in self.card["sources"].items():
            if any(source in key for source in sources):
                return sensor
        return None

    def _rows(self, frame: pd.DataFrame, split: str | None) -> pd.DataFrame:
        rows = []
        for record in frame.itertuples(index=False):
            key = str(record.key)
            sensor = getattr(record, "sensor", None) or self._sensor_of(key)
            row_split = split_of(record.split, key, float(self.card["val_fraction"]),
                                 self.card["split_names"])
            if sensor != self.sensor or (split is not None and row_split != split):
                continue
            labels, unknown = cards.canonical_labels(str(v) for v in record.labels)
            self.unknown_labels.update(unknown)
            h5 = self.root / str(record.file) if hasattr(record, "file") else self.h5_path
            rows.append({"path": f"{h5}:{key}", "id": key, "key": key, "h5": str(h5),
                         "labels": labels, "split": row_split})
        if self.unknown_labels:
            log.info("CrisisLandMark labels without a vocabulary counterpart (ignored): %s",
                     dict(self.unknown_labels))
        return pd.DataFrame(rows, columns=["path", "id", "key", "h5", "labels", "split"])

    def _read(self, index: int) -> dict[str, Any]:
        import h5py

        row = self.metadata.iloc[index]
        name, key = row["path"], row["key"]
        try:
            with h5py.File(row["h5"], "r") as archive:
                group = archive[key]
                image = np.asarray(group["image"][()], dtype=np.float32)  # (C, H, W)
                coords = np.asarray(group["coords"][()], dtype=np.float64)  # (2, H, W)
                crs = _text(group.attrs["crs"])
                date = _text(group.attrs.get("timestamp", ""))
        except (OSError, KeyError, ValueError) as error:
            if "filter" in str(error).lower() and hdf5plugin is None:
                raise RuntimeError(f"{name}: the HDF5 archive uses a compression filter; "
                                   "install `hdf5plugin` to read it") from error
            raise SceneError(f"{name}: unreadable HDF5 sample ({error})") from error
        if image.ndim != 3:
            raise SceneError(f"{name}: image has shape {image.shape}, expected (C, H, W)")
        image = self._bands_of(name, key, image)
        if coords.shape[0] != 2:
            raise SceneError(f"{name}: coords has shape {coords.shape}, expected (2, H, W)")
        centre = coords[:, coords.shape[1] // 2, coords.shape[2] // 2] if coords.ndim == 3 \
            else coords
        try:
            lon_lat = to_lon_lat(crs, centre[0], centre[1])
        except Exception as error:  # rasterio raises several CRS error types
            raise SceneError(f"{name}: cannot project coords from crs {crs!r} ({error})") \
                from error
        return {"image": image, "coords": lon_lat, "date": date}

    def _bands_of(self, name: str, key: str, image: np.ndarray) -> np.ndarray:
        """The requested bands in order; a band the sample lacks (B10 in L2A) is NaN."""
        nodata = cards.card("sentinel2" if self.sensor == "s2" else "sentinel1")["nodata"]
        if self.sensor == "s1":
            channels = next((c for source, c in self.card["s1_channels"].items()
                             if source != "default" and source in key),
                            self.card["s1_channels"]["default"])
            if image.shape[0] <= max(channels):
                raise SceneError(f"{name}: wrong band count {image.shape[0]} for s1 "
                                 f"(channels {channels} wanted)")
            stored = dict(zip(cards.s1_bands(), channels, strict=True))
        else:
            order = cards.s2_bands_for_count(image.shape[0])
            if order is None:
                raise SceneError(f"{name}: wrong band count {image.shape[0]} for s2 "
                                 "(expected 12 for L2A or 13 for L1C)")
            stored = {band: order.index(band) for band in order}
        present = [i for i, band in enumerate(self.bands) if band in stored]
        out = np.full((len(self.bands), *image.shape[1:]), np.nan, dtype=np.float32)
        out[present] = image[[stored[self.bands[i]] for i in present]]  # (C, H, W)
        out[present] = mask_invalid(name, out[present], float(nodata))
        return out


def _columns(table: Path) -> list[str]:
    if not table.is_file():
        return []
    import pyarrow.parquet as pq

    return list(pq.read_schema(table).names)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
