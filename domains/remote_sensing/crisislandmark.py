"""CrisisLandMark (the CLOSP corpus) read as its public release stores it.

Layout (``datasets/remote_sensing/crisislandmark.yaml``; from the Hugging Face dataset
card, huggingface.co/datasets/DarthReca/crisislandmark, and the public CLOSP code,
github.com/DarthReca/closp, ``dataset/crisis_land_mark.py``)::

    <root>/crisislandmark.h5     HDF5 external links, one per sample key, into 12 shards
    <root>/benv2s2_part1.h5 ...  the shards (listed in the card); they must sit beside it
        <key>/image   (B, H, W) float32: S2 12 L2A bands (digital numbers), S1 VV, VH (dB)
        <key>/coords  (2, H, W) float32: x / y of every pixel in the sample's CRS
        attrs crs (1,) float32 EPSG code; timestamp (1,) float32 when available;
              labels (L,) harmonised labels (Dynamic World classes + crisis tags)
    <root>/metadata.parquet      key, split ("train" | "test"), labels (source names)
    <root>/queries.jsonl, qrels/ the retrieval benchmark (:mod:`.benchmark`)

What this adds on top of h5py and the CLOSP reference loader (which trusts every file):

- the 12 shards are checked when the dataset is opened, and a missing one is one error
  naming it — before anything is read (nothing is scanned at construction: the sample
  list comes from ``metadata.parquet``);
- ``crs`` and ``timestamp`` are accepted as numbers, one-element arrays, bytes or strings
  (:func:`crs_of`, :func:`timestamp_of`);
- Sentinel-2 comes back as reflectance ρ = (DN + offset) / 10000 with the offset of the
  acquisition date (processing baseline 04.00 products, from 2022-01-25, carry +1000) and
  its level from the band count (12: L2A, 13: L1C; it picks the normalisation statistics),
  checked by :func:`~domains.remote_sensing.inputs.check_s2`; a 12-band sample lacks B10,
  which comes back as NaN (0, the band mean, after normalisation — as CLOSP zero-fills it);
- Sentinel-1 units and channel order are verified from the data of every sample
  (:func:`~domains.remote_sensing.inputs.s1_to_db`,
  :func:`~domains.remote_sensing.inputs.order_s1_channels`: VV is brighter than VH) instead
  of flips and slices per source; what was converted or swapped is counted per source
  (``s1_fixes``);
- labels: the harmonised ``labels`` attribute of each sample (read with the sample), mapped
  to our vocabulary by :func:`cards.canonical_labels`; the source labels of
  ``metadata.parquet`` (CORINE or Dynamic World names, mapped the same way) serve before a
  sample is read (filtering, label vectors of unread samples) and where the attribute is
  absent.

The sensor of a sample is its source dataset, a ``_``-separated token of its key (S2:
``benv2s2``, ``cabuar``, ``sen2flood``; S1: ``benv2s1``, ``mmflood``, ``sen1flood``,
``quakeset``), as in the CLOSP code; the location is the centre pixel of ``coords``
projected from ``crs`` to (lon, lat). Only this release is read (an earlier one, with
``geocrisis.parquet``, is not).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from domains.remote_sensing import cards
from domains.remote_sensing.inputs import (
    S1ChannelsSwappedWarning,
    check_s2,
    order_s1_channels,
    s1_to_db,
    s2_offset,
    s2_reflectance,
)
from domains.remote_sensing.scene_dataset import SceneDataset
from domains.remote_sensing.scene_io import SceneError, mask_invalid, to_lon_lat

log = logging.getLogger(__name__)

try:  # the release may compress with HDF5 filter plugins; registering them is optional
    import hdf5plugin  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    hdf5plugin = None

_TOKENS = re.compile(r"[_\-/.:\s]+")


def split_of(value: str, key: str, val_fraction: float, names: dict[str, str]) -> str:
    """Our split (train/val/test) of a row: the table's, with ``val`` carved from train.

    The carve is a stable hash of the key, so a sample never moves between runs.
    """
    split = names.get(str(value).lower(), str(value).lower())
    if split == "train" and zlib.crc32(key.encode()) % 10_000 < val_fraction * 10_000:
        return "val"
    return split


def source_of(key: str, sources: dict[str, list[str]]) -> tuple[str, str] | None:
    """(sensor, source) of a sample key: the first ``_``-separated token naming a source."""
    tokens = _TOKENS.split(key.lower())
    for token in tokens:
        for sensor, names in sources.items():
            if token in names:
                return sensor, token
    return None


def _scalar(value: Any) -> Any:
    """A one-element array or list as its element; bytes decoded; anything else as is."""
    if isinstance(value, (np.ndarray, list, tuple)):
        flat = np.asarray(value, dtype=object).ravel()
        if flat.size != 1:
            raise ValueError(f"expected one value, got {flat.size}")
        value = flat[0]
    if isinstance(value, (bytes, np.bytes_)):
        value = bytes(value).decode(errors="replace")
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _scalar_or(value: Any) -> Any:
    """:func:`_scalar`, or the value itself when it holds several."""
    try:
        return _scalar(value)
    except ValueError:
        return value


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def crs_of(value: Any) -> str:
    """The CRS of a sample's ``crs`` attribute, as text rasterio accepts.

    Args:
        value: The EPSG code as the card stores it (a (1,) float32 array), or a number,
            bytes or a string ("32633", "EPSG:32633", WKT).

    Returns:
        ``"EPSG:<code>"`` for codes, else the string as given.

    Raises:
        ValueError: If the value is empty, not one value, or not a positive whole code.
    """
    value = _scalar(value)
    if isinstance(value, str):
        text = value.strip()
        number = _number(text)
        if number is None:
            if not text:
                raise ValueError("empty crs")
            return text
        value = number
    code = float(value)
    if not np.isfinite(code) or code <= 0 or code != round(code):
        raise ValueError(f"crs {value!r} is not an EPSG code")
    return f"EPSG:{int(round(code))}"


#: Unix seconds of 2000-01-01 and of 2100-01-01: a number between is a time in seconds.
_SECONDS = (946_684_800.0, 4_102_444_800.0)


def timestamp_of(value: Any) -> str:
    """The acquisition time of a sample's ``timestamp`` attribute, as ISO 8601 (UTC).

    Args:
        value: A number, a one-element array (the card's (1,) float32), bytes or a string.
            Numbers are unix seconds (milliseconds when 1000 times larger), or a
            ``YYYYMMDD`` date; strings are ISO dates or such numbers. The card's float32
            holds unix seconds to about two minutes.

    Returns:
        ``YYYY-MM-DDTHH:MM:SS``, ``YYYY-MM-DD`` for a date, or ``""`` when absent (NaN, 0,
        empty).

    Raises:
        ValueError: If a value is present but is no time.
    """
    value = _scalar(value)
    if isinstance(value, str):
        text = value.strip()
        if not text or text.lower() in ("nan", "none", "null"):
            return ""
        number = _number(text)
        if number is None:
            stamp = pd.Timestamp(text)
            if stamp.tzinfo is not None:
                stamp = stamp.tz_convert("UTC").tz_localize(None)
            return stamp.isoformat()
        value = number
    if value is None:
        return ""
    number = float(value)
    if not np.isfinite(number) or number == 0:
        return ""
    if _SECONDS[0] * 1000 <= number < _SECONDS[1] * 1000:
        number /= 1000.0
    if _SECONDS[0] <= number < _SECONDS[1]:
        return pd.Timestamp(round(number), unit="s").isoformat()
    if 19_000_101 <= number <= 21_001_231 and number == round(number):
        return pd.Timestamp(str(int(number))).date().isoformat()
    raise ValueError(f"timestamp {value!r} is neither unix time nor a YYYYMMDD date")


class CrisisLandMark(SceneDataset):
    """One sensor's samples of a CrisisLandMark archive.

    Args:
        root: Folder with ``crisislandmark.h5``, its 12 shards and ``metadata.parquet``.
        sensor: ``"s2"`` or ``"s1"``.
        split: ``"train"``, ``"val"`` (carved from train, see the card), ``"test"`` (the
            card's corpus set) or ``None`` for all.
        bands: Bands to return (default: all 13 S2 bands, or VV, VH).
        transforms: A dictionary transform applied to each sample.
        strict: Raise on the first bad sample instead of skipping it.
        preload: Read and check every sample at construction (small archives, tests).

    Attributes:
        unknown_labels: How often each source label without a vocabulary counterpart was seen.
        s1_fixes: ``(source, what)`` -> count of S1 samples whose units were converted
            (``"linear power"``, ``"amplitude"``) or whose channels were swapped
            (``"swapped"``) because the data disagreed with the card (this process only).
        unreadable_timestamps: How many samples had a ``timestamp`` of unknown form, by the
            type of the value (their date is empty; this process only).

    Raises:
        FileNotFoundError: Naming every missing file (the master file, a shard, the table).
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
        needed = [self.h5_path, table, *(self.root / s for s in self.card["shards"])]
        missing = [p.name for p in needed if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{self.root}: CrisisLandMark files not found: {', '.join(missing)} (the "
                f"master file {self.h5_path.name} links into {len(self.card['shards'])} "
                "shard files that must sit beside it)")
        frame = pd.read_parquet(table)
        absent = {"key", "labels", "split"} - set(frame.columns)
        if absent:
            raise ValueError(f"{table}: missing columns {sorted(absent)}")
        self.unknown_labels: Counter[str] = Counter()
        self.s1_fixes: Counter[tuple[str, str]] = Counter()
        self.unreadable_timestamps: Counter[str] = Counter()
        self._handle: Any = None
        self._handle_pid = -1
        self.metadata = self._rows(frame, split)
        self._drop_unlabelled()
        if preload:
            self._preload()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the open HDF5 handle (DataLoader workers open their own)."""
        state = self.__dict__.copy()
        state["_handle"], state["_handle_pid"] = None, -1
        return state

    def _rows(self, frame: pd.DataFrame, split: str | None) -> pd.DataFrame:
        rows, unplaced = [], []
        for record in frame.itertuples(index=False):
            key = str(record.key)
            found = source_of(key, self.card["sources"])
            if found is None:
                unplaced.append(key)
            row_split = split_of(record.split, key, float(self.card["val_fraction"]),
                                 self.card["split_names"])
            if found is None or found[0] != self.sensor or \
                    (split is not None and row_split != split):
                continue
            labels, unknown = cards.canonical_labels(str(v) for v in record.labels)
            self.unknown_labels.update(unknown)
            rows.append({"path": f"{self.h5_path}:{key}", "id": key, "key": key,
                         "source": found[1], "labels": labels, "split": row_split})
        if self.unknown_labels:
            log.info("CrisisLandMark labels without a vocabulary counterpart (ignored): %s",
                     dict(self.unknown_labels))
        if unplaced:
            known = ", ".join(n for names in self.card["sources"].values() for n in names)
            message = (f"{self.root / self.card['metadata_file']}: {len(unplaced)} of "
                       f"{len(frame)} keys name no source dataset (e.g. {unplaced[0]!r}); "
                       f"known sources: {known}")
            if len(unplaced) == len(frame):
                raise ValueError(message)
            log.warning("%s; those samples are left out", message)
        return pd.DataFrame(rows, columns=["path", "id", "key", "source", "labels", "split"])

    def _archive(self) -> Any:
        """The master file, opened once per process."""
        import h5py

        if self._handle is None or self._handle_pid != os.getpid():
            self._handle = h5py.File(self.h5_path, "r")
            self._handle_pid = os.getpid()
        return self._handle

    def _read(self, index: int) -> dict[str, Any]:
        row = self.metadata.iloc[index]
        name, key = row["path"], row["key"]
        try:
            archive = self._archive()
            self._check_link(archive, name, key)
            group = archive[key]
            image = np.asarray(group["image"][()], dtype=np.float32)  # (C, H, W)
            coords = np.asarray(group["coords"][()], dtype=np.float64)  # (2, H, W)
            attrs = dict(group.attrs)
        except (OSError, KeyError, ValueError) as error:
            if "filter" in str(error).lower() and hdf5plugin is None:
                raise RuntimeError(f"{name}: the HDF5 archive uses a compression filter; "
                                   "install `hdf5plugin` to read it") from error
            raise SceneError(f"{name}: unreadable HDF5 sample ({error})") from error
        if "crs" not in attrs:
            raise SceneError(f"{name}: no crs attribute")
        try:
            crs = crs_of(attrs["crs"])
        except (TypeError, ValueError) as error:
            raise SceneError(f"{name}: {error}") from error
        date = self._date(name, attrs.get("timestamp"))
        if image.ndim != 3:
            raise SceneError(f"{name}: image has shape {image.shape}, expected (C, H, W)")
        level = self._level(name, image.shape[0]) if self.sensor == "s2" else None
        image = self._bands_of(name, row["source"], image, date)
        lon_lat = self._centre(name, crs, coords)
        labels = _attr_labels(attrs.get("labels"))
        return {"image": image, "coords": lon_lat, "date": date, "labels": labels or None,
                "level": level}

    def _date(self, name: str, value: Any) -> str:
        """The sample's timestamp as ISO text; ``""`` (counted, logged once) when unreadable.

        The timestamp is optional in the release ("if available"), so a value of unknown
        form loses the date, not the sample; S2 then gets the offset of a product without
        date (none).
        """
        try:
            return timestamp_of(value)
        except (TypeError, ValueError) as error:
            if not self.unreadable_timestamps:
                log.warning("%s: %s; the date is left empty (counted in "
                            "unreadable_timestamps)", name, error)
            self.unreadable_timestamps[type(_scalar_or(value)).__name__] += 1
            return ""

    @staticmethod
    def _level(name: str, count: int) -> str:
        """The Sentinel-2 level of a sample from its band count (12: L2A, 13: L1C)."""
        for level, bands in cards.card("sentinel2")["levels"].items():
            if len(bands) == count:
                return str(level)
        raise SceneError(f"{name}: wrong band count {count} for s2 "
                         "(expected 12 L2A bands, or 13 for L1C)")

    def _check_link(self, archive: Any, name: str, key: str) -> None:
        """A clear error when the key is absent or its shard is missing."""
        import h5py

        link = archive.get(key, getlink=True)
        if link is None:
            raise SceneError(f"{name}: no such key in {self.h5_path.name}")
        if isinstance(link, h5py.ExternalLink) and \
                not (self.h5_path.parent / link.filename).is_file():
            raise SceneError(f"{name}: its shard {link.filename} is missing beside "
                             f"{self.h5_path.name}")

    def _centre(self, name: str, crs: str, coords: np.ndarray) -> tuple[float, float]:
        if coords.ndim != 3 or coords.shape[0] != 2:
            raise SceneError(f"{name}: coords has shape {coords.shape}, expected (2, H, W)")
        centre = coords[:, coords.shape[1] // 2, coords.shape[2] // 2]  # (2,)
        try:
            return to_lon_lat(crs, centre[0], centre[1])
        except Exception as error:  # rasterio raises several CRS error types
            raise SceneError(f"{name}: cannot project coords from crs {crs!r} ({error})") \
                from error

    def _bands_of(self, name: str, source: str, image: np.ndarray, date: str) -> np.ndarray:
        """The requested bands in order, in the contract's units; absent bands are NaN."""
        nodata = float(cards.card("sentinel2" if self.sensor == "s2" else "sentinel1")
                       ["nodata"])
        if self.sensor == "s1":
            stored = self._s1(name, source, image, nodata)
            order = list(self.card["s1_channels"])
        else:
            order = cards.s2_bands_for_count(image.shape[0])
            if order is None:
                raise SceneError(f"{name}: wrong band count {image.shape[0]} for s2 "
                                 "(expected 12 L2A bands, or 13 for L1C)")
            check_s2(name, image, nodata)
            image = mask_invalid(name, image, nodata)
            stored = s2_reflectance(name, image, s2_offset(name, date=date or None))
        present = [i for i, band in enumerate(self.bands) if band in order]
        out = np.full((len(self.bands), *stored.shape[1:]), np.nan, dtype=np.float32)
        out[present] = stored[[order.index(self.bands[i]) for i in present]]  # (C, H, W)
        return out

    def _s1(self, name: str, source: str, image: np.ndarray, nodata: float) -> np.ndarray:
        """(2, H, W) dB in VV, VH order, verified from the data."""
        declared = list(self.card["s1_channels"])
        if image.shape[0] != len(declared):
            raise SceneError(f"{name}: wrong band count {image.shape[0]} for s1 (expected "
                             f"{len(declared)}: {', '.join(declared)}, as the card declares)")
        image = mask_invalid(name, image, nodata)
        db, units = s1_to_db(name, image)
        if units != "dB":
            self._fixed(source, units)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", S1ChannelsSwappedWarning)
            ordered = order_s1_channels(name, db, None)
        if any(issubclass(w.category, S1ChannelsSwappedWarning) for w in seen):
            self._fixed(source, "swapped")
        return np.ascontiguousarray(ordered, dtype=np.float32)

    def _fixed(self, source: str, what: str) -> None:
        """Count an S1 correction; log the first of each kind per source."""
        if not self.s1_fixes[(source, what)]:
            log.warning("CrisisLandMark %s: S1 data disagree with the card (%s); corrected "
                        "from the data (counted in s1_fixes)", source,
                        "VH before VV" if what == "swapped" else f"{what}, not dB")
        self.s1_fixes[(source, what)] += 1


def _attr_labels(value: Any) -> list[str]:
    """Vocabulary labels of a ``labels`` attribute (str, bytes or an array of either)."""
    if value is None:
        return []
    items = [value] if isinstance(value, (str, bytes)) else list(np.asarray(value).ravel())
    names = [v.decode(errors="replace") if isinstance(v, (bytes, np.bytes_)) else str(v)
             for v in items]
    return cards.canonical_labels(names)[0]
