"""One input check for Sentinel-1/2 scenes, shared by every entry point.

Readers (:mod:`~domains.remote_sensing.scene_io`, the archive loaders, the synthetic
archive), the datasets (hence training and the index build), the zero-shot classifier
and search all pass their raw values through this module, so a scene is recognised,
converted and refused the same way wherever it enters. The contract it enforces:

* **Sentinel-2** comes out as reflectance ρ = (DN + offset) / 10000 (float32, typically
  0–1, NaN where invalid). The offset is −1000 for products of processing baseline 04.00
  and later (ESA, from 25 January 2022: ``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET`` in the
  product metadata); the level (L1C top of atmosphere / L2A surface reflectance) decides
  which normalisation statistics apply.
* **Sentinel-1** comes out as backscatter σ0 in dB (float32, NaN where invalid): linear
  power and amplitude are converted (and said so), uncalibrated digital numbers and
  complex (SLC) data are refused, and channel 0 is verified to be VV from the data (VV is
  brighter than VH over nearly all land covers).
* **Other sensors** (Landsat, RGB photos, single-band rasters, ...) are refused with
  :class:`SensorMismatchError` naming the file, what was found and what is expected. Where
  nothing says what the bands are, the band count decides and
  :class:`AssumedBandOrderWarning` names the order assumed.

rasterio / numpy give the values, tags and descriptions; this module adds what they do
not know: what the numbers mean for these two sensors.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from datetime import date as Date
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from core.data import SampleError
from domains.remote_sensing import cards

S1_UNITS = ("dB", "linear power", "amplitude", "DN", "complex")
OFFSET_BASELINE = 4.0               # processing baseline from which DN carry the offset
OFFSET_START = Date(2022, 1, 25)    # first products of baseline 04.00
POST_2022_OFFSET = -1000.0
QUANTIFICATION = 10000.0            # BOA/TOA quantification value
REFLECTANCE_WARN = (-0.2, 2.0)      # outside this a value is not a plausible reflectance
S1_VV_MARGIN_DB = 1.0               # VV/VH median difference needed to tell them apart
SENSOR_NAMES = {"s2": "Sentinel-2", "s1": "Sentinel-1"}

OFFSET_KEYS = ("radiometric_offset", "boa_add_offset", "radio_add_offset", "add_offset")
BASELINE_KEYS = ("processing_baseline", "baseline", "processing_baseline_id")
LEVEL_KEYS = ("processing_level", "product_type", "producttype", "level", "product_level")
DATE_KEYS = ("acquisition_date", "date", "datetime", "timestamp", "sensing_time",
             "product_start_time", "datatake_sensing_start", "datatake_1_datatake_sensing_start",
             "start_datetime", "sensing_start")
_LEVEL_RE = re.compile(r"(?:level[-_ ]?|msil?|(?<![a-z0-9])l)(1c|2a)(?![a-z0-9])", re.I)
_S2_BAND_RE = re.compile(r"^(?:sentinel[-_ ]?2[a-c]?[ _:-]+)?b0?(\d{1,2}|8a)(?![a-z0-9])", re.I)
_S1_POL_RE = re.compile(r"(?<![a-z])(vv|vh|hh|hv)(?![a-z])", re.I)


class SceneError(SampleError):
    """A scene file that cannot be used; the message names the file and the problem."""


class SensorMismatchError(SceneError):
    """A raster whose bands are not Sentinel-1 or Sentinel-2 (another satellite, a photo)."""


class AssumedBandOrderWarning(UserWarning):
    """Nothing said what a raster's bands are: the band count alone decided.

    Attributes:
        path: The file (or array name).
        sensor: ``"s2"`` or ``"s1"``.
        order: The band order assumed, in file order.
    """

    def __init__(self, path: str, sensor: str, order: Sequence[str]) -> None:
        self.path, self.sensor, self.order = str(path), sensor, list(order)
        name = "Sentinel-2" if sensor == "s2" else "Sentinel-1"
        super().__init__(f"{path}: no band descriptions or tags say what its {len(order)} "
                         f"bands are; assumed {name} order {', '.join(order)}")


class S1UnitsConvertedWarning(UserWarning):
    """Sentinel-1 values were not in dB and were converted (``path``, ``units``)."""

    def __init__(self, path: str, units: str) -> None:
        self.path, self.units = str(path), units
        formula = "10·log10" if units == "linear power" else "20·log10"
        super().__init__(f"{path}: Sentinel-1 values look like {units}; converted to dB "
                         f"({formula})")


class S1ChannelsSwappedWarning(UserWarning):
    """Channel 0 of an undeclared Sentinel-1 scene was VH; channels swapped to VV, VH."""

    def __init__(self, path: str, medians: tuple[float, float]) -> None:
        self.path, self.medians = str(path), medians
        super().__init__(f"{path}: channel 0 is darker than channel 1 (medians "
                         f"{medians[0]:.3g}, {medians[1]:.3g}): VH first; swapped to VV, VH")


class ReflectanceRangeWarning(UserWarning):
    """Sentinel-2 values outside the physical reflectance range (``path``, ``fraction``)."""

    def __init__(self, path: str, fraction: float, low: float, high: float) -> None:
        self.path, self.fraction = str(path), fraction
        super().__init__(f"{path}: {fraction:.1%} of Sentinel-2 values are outside the "
                         f"physical reflectance range (min {low:.3g}, max {high:.3g} after "
                         "(DN + offset) / 10000)")


# --------------------------------------------------------------------------- metadata


def _lookup(tags: Mapping[str, Any] | None, keys: Sequence[str]) -> Any:
    """First non-missing value of any of ``keys`` (case-insensitive) in ``tags``."""
    if not tags:
        return None
    folded = {str(k).lower(): v for k, v in tags.items()}
    for key in keys:
        value = folded.get(key)
        if _present(value):
            return value
    return None


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (float, np.floating)) and np.isnan(value):
        return False
    if isinstance(value, str) and not value.strip():
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):  # arrays, lists
        return True


def _number(value: Any) -> float | None:
    """A float from a tag value (number, numpy scalar/array, bytes, "−1000", "04.00")."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else None
    if isinstance(value, str):
        match = re.search(r"[-+]?\d+(?:\.\d*)?", value.replace("−", "-"))
        return float(match.group()) if match else None
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _date(value: Any) -> Date | None:
    """A date from a tag value (date, datetime, ISO string, unix seconds), else ``None``."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, Date):
        return value
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    try:
        if isinstance(value, (int, float, np.integer, np.floating)):
            return pd.Timestamp(float(value), unit="s").date()
        stamp = pd.Timestamp(str(value).strip())
    except (TypeError, ValueError):
        return None
    return None if pd.isna(stamp) else stamp.date()


def s2_offset(name: str, *, tags: Mapping[str, Any] | None = None, date: Any = None,
              baseline: str | float | None = None, offset: float | None = None) -> float:
    """The radiometric offset to add to Sentinel-2 digital numbers before / 10000.

    Decided, in order, by: ``offset`` given explicitly; the product metadata
    (``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET`` tags, or a ``radiometric_offset`` metadata
    column); the processing baseline (``baseline`` or a ``PROCESSING_BASELINE`` tag /
    column: 04.00 and later carry −1000); the acquisition date (``date`` or a date tag /
    column: on or after 2022-01-25, when baseline 04.00 started, −1000); else 0.

    Args:
        name: The file or sample, for errors.
        tags: Dataset or band tags, or a metadata row (keys are matched case-insensitively).
        date: The acquisition date (date, datetime, ISO string or unix seconds).
        baseline: The processing baseline ("04.00", "N0400", 4.0).
        offset: An explicit offset (overrides everything).

    Returns:
        The offset in digital numbers (0.0 or −1000.0 for real products).

    Raises:
        SceneError: If a metadata offset or baseline is present but not a number.
    """
    if offset is not None:
        return float(offset)
    found = _lookup(tags, OFFSET_KEYS)
    if found is not None:
        value = _number(found)
        if value is None:
            raise SceneError(f"{name}: radiometric offset {found!r} is not a number")
        return value
    baseline = baseline if _present(baseline) else _lookup(tags, BASELINE_KEYS)
    if _present(baseline):
        value = _number(str(baseline).upper().lstrip("N") if isinstance(baseline, str)
                        else baseline)
        if value is None:
            raise SceneError(f"{name}: processing baseline {baseline!r} is not a number")
        if isinstance(baseline, str) and re.fullmatch(r"N?\d{4}", baseline.strip().upper()):
            value /= 100.0  # "N0400" / "0400" -> 4.0
        return POST_2022_OFFSET if value >= OFFSET_BASELINE else 0.0
    when = _date(date) if _present(date) else None
    if when is None:
        found = _lookup(tags, DATE_KEYS)
        when = _date(found) if found is not None else None
    if when is not None:
        return POST_2022_OFFSET if when >= OFFSET_START else 0.0
    return 0.0


def _level_of(value: Any, bare: bool) -> str | None:
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    match = _LEVEL_RE.search(text)
    if match:
        return "L" + match.group(1).upper()
    if bare:
        folded = text.strip().upper()
        if folded in ("1C", "2A"):
            return "L" + folded
        if "TOA" in folded or "TOP OF ATMOSPHERE" in folded:
            return "L1C"
        if "BOA" in folded or "SURFACE REFLECTANCE" in folded:
            return "L2A"
    return None


def s2_level(name: str, *, tags: Mapping[str, Any] | None = None,
             descriptions: Sequence[str | None] = (), level: str | None = None,
             default: str | None = None) -> str:
    """The processing level of a Sentinel-2 product: ``"L1C"`` or ``"L2A"``.

    Decided, in order, by: ``level`` given explicitly; a level tag or metadata column
    (``PROCESSING_LEVEL`` "Level-2A" / "L1C", ``PRODUCT_TYPE`` "S2MSI2A", a
    ``processing_level`` column); any other tag value naming a level (a product name such
    as ``S2B_MSIL2A_...``); the band descriptions ("B04 (L2A)", "surface reflectance").

    Args:
        name: The file or sample, for errors.
        tags: Dataset tags or a metadata row.
        descriptions: Band descriptions.
        level: An explicit level ("L1C", "L2A", "Level-2A", "2A").
        default: The level when nothing says (``None``: raise).

    Returns:
        ``"L1C"`` or ``"L2A"``.

    Raises:
        SceneError: If the level cannot be told and no default is given, or an explicit
            level is not one of the two.
    """
    if level is not None:
        found = _level_of(level, bare=True)
        if found is None:
            raise ValueError(f"{name}: unknown Sentinel-2 level {level!r}; known: L1C, L2A")
        return found
    value = _lookup(tags, LEVEL_KEYS)
    if value is not None and (found := _level_of(value, bare=True)):
        return found
    seen = {lvl for v in (tags or {}).values() if (lvl := _level_of(v, bare=False))}
    seen |= {lvl for d in descriptions if d and (lvl := _level_of(d, bare=True))}
    if len(seen) == 1:
        return seen.pop()
    if default is not None:
        return s2_level(name, level=default)
    said = f"conflicting levels {sorted(seen)}" if seen else "nothing names the level"
    raise SceneError(f"{name}: cannot tell the Sentinel-2 processing level ({said} in its "
                     "tags, metadata or band descriptions); pass level='L1C' or 'L2A'")


def s2_reflectance(name: str, dn: np.ndarray, offset: float) -> np.ndarray:
    """Sentinel-2 digital numbers to reflectance: ``(DN + offset) / 10000``, NaN kept.

    Args:
        name: The file or sample (unused in the arithmetic; kept for a uniform signature).
        dn: (C, H, W) digital numbers (NaN where invalid).
        offset: From :func:`s2_offset` (0 or −1000).

    Returns:
        (C, H, W) float32 reflectance.
    """
    del name
    return ((np.asarray(dn, dtype=np.float32) + np.float32(offset))
            / np.float32(QUANTIFICATION)).astype(np.float32, copy=False)


def check_s2(name: str, data: np.ndarray, nodata: float | None) -> None:
    """Refuse Sentinel-2 digital numbers that cannot be a product; warn on odd ranges.

    Args:
        name: The file or sample, named in the error.
        data: (C, H, W) digital numbers as read (before masking or NaN where masked).
        nodata: The file's nodata value (``None`` when it sets none).

    Raises:
        SceneError: On negative digital numbers (other than the nodata value), or a scene
            of nothing but zeros with no nodata value set.

    Warns:
        ReflectanceRangeWarning: When more than 1 % of the values fall outside
            :data:`REFLECTANCE_WARN` after dividing by 10000.
    """
    values = np.asarray(data)
    if np.iscomplexobj(values):
        raise SensorMismatchError(f"{name}: complex-valued data; Sentinel-2 digital numbers "
                                  "are real, non-negative integers")
    finite = values[np.isfinite(values)]
    if nodata is not None and np.isfinite(nodata):
        finite = finite[finite != nodata]
    if finite.size == 0:
        return
    if nodata is None and not finite.any():
        raise SceneError(f"{name}: every Sentinel-2 value is 0 and the file sets no nodata "
                         "value; an empty (all-nodata) product, or nodata=0 is missing")
    low, high = float(finite.min()), float(finite.max())
    if low < 0:
        raise SceneError(f"{name}: negative Sentinel-2 digital numbers (min {low:.4g}); "
                         "expected DN >= 0 (reflectance x 10000, plus 1000 from baseline "
                         "04.00); already-scaled or offset-corrected values are not DN")
    reflectance = finite / QUANTIFICATION
    outside = (reflectance < REFLECTANCE_WARN[0]) | (reflectance > REFLECTANCE_WARN[1])
    if outside.mean() > 0.01:
        warnings.warn(ReflectanceRangeWarning(name, float(outside.mean()), low / QUANTIFICATION,
                                              high / QUANTIFICATION), stacklevel=2)


# --------------------------------------------------------------------------- Sentinel-1


def s1_units(name: str, data: np.ndarray) -> str:
    """What a Sentinel-1 array holds, from its dtype and value range (NaN ignored).

    complex dtype → ``"complex"`` (SLC); integers reaching above 255, or non-negative
    values with a median above 5 → ``"DN"`` (uncalibrated); values mostly negative →
    ``"dB"``; non-negative values → ``"linear power"`` or ``"amplitude"``, whichever puts
    the per-channel medians closer to the card's dB means (σ0 VV ≈ −12.6 dB, VH ≈ −20.3
    dB: power medians ≈ 0.05 / 0.01, amplitude medians ≈ 0.23 / 0.1).

    Args:
        name: The file or array, named in errors.
        data: (C, H, W) or (H, W) values.

    Returns:
        One of :data:`S1_UNITS`.

    Raises:
        SceneError: If no value is finite.
    """
    values = np.asarray(data)
    if np.iscomplexobj(values):
        return "complex"
    values = values if values.ndim == 3 else values.reshape(1, *values.shape[-2:])
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values.ravel()
    if finite.size == 0:
        raise SceneError(f"{name}: no finite Sentinel-1 value")
    negative = float((finite < 0).mean())
    if negative > 0.05 or finite.min() < -1.0:
        return "dB"
    if values.dtype.kind in "iu" and finite.max() > 255:
        return "DN"
    if float(np.median(finite)) > 5.0:
        return "DN"
    targets = np.asarray(cards.card("sentinel1")["normalisation"]["mean"], dtype=np.float64)
    power_miss = amplitude_miss = 0.0
    for index, channel in enumerate(values.astype(np.float64)):
        positive = channel[np.isfinite(channel) & (channel > 0)]
        if positive.size == 0:
            continue
        log = np.log10(np.median(positive))
        target = targets[min(index, len(targets) - 1)]
        power_miss += abs(10 * log - target)
        amplitude_miss += abs(20 * log - target)
    return "linear power" if power_miss <= amplitude_miss else "amplitude"


def s1_to_db(name: str, data: np.ndarray, units: str | None = None) -> tuple[np.ndarray, str]:
    """Sentinel-1 values in dB: linear power and amplitude converted, DN and SLC refused.

    Args:
        name: The file or array, named in errors and warnings.
        data: (C, H, W) values (NaN where invalid).
        units: What ``data`` holds (one of :data:`S1_UNITS`); ``None``: :func:`s1_units`.

    Returns:
        (C, H, W) float32 σ0 in dB (non-positive power/amplitude → NaN), and the units seen.

    Raises:
        SceneError: For DN (needs radiometric calibration) or complex (SLC) data, naming the
            file, what was seen and what is expected.
        ValueError: For units not in :data:`S1_UNITS`.
    """
    if units is not None and units not in S1_UNITS:
        raise ValueError(f"{name}: unknown Sentinel-1 units {units!r}; known: {S1_UNITS}")
    units = units or s1_units(name, data)
    if units == "complex":
        raise SceneError(f"{name}: complex-valued Sentinel-1 data (dtype "
                         f"{np.asarray(data).dtype}, an SLC product); expected calibrated "
                         "GRD backscatter σ0 in dB: detect (|z|²), calibrate, multilook and "
                         "convert with 10·log10 first")
    if units == "DN":
        finite = np.asarray(data, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        raise SceneError(f"{name}: Sentinel-1 values look like uncalibrated digital numbers "
                         f"(dtype {np.asarray(data).dtype}, median {np.median(finite):.4g}, "
                         f"max {finite.max():.4g}); expected calibrated backscatter σ0 in "
                         "dB (typically −30 to 5): calibrate to σ0 (e.g. SNAP Calibrate) "
                         "and pass 10·log10(σ0)")
    values = np.asarray(data, dtype=np.float32)
    if units == "dB":
        return values, units
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.float32(10.0 if units == "linear power" else 20.0)
        db = np.where(values > 0, factor * np.log10(values), np.float32(np.nan))
    return db.astype(np.float32, copy=False), units


def _s1_names(declared: Sequence[str | None] | None) -> list[str] | None:
    if not declared:
        return None
    names = []
    for item in declared:
        match = _S1_POL_RE.search(str(item or ""))
        if match is None:
            return None
        names.append(match.group(1).upper())
    return names


def order_s1_channels(name: str, data: np.ndarray,
                      declared: Sequence[str | None] | None) -> np.ndarray:
    """Sentinel-1 channels in VV, VH order, verified from the data.

    VV backscatter exceeds VH over nearly all land covers (by ~6–10 dB), so the channel
    with the higher median is VV (medians compare the same in dB, power or amplitude).

    Args:
        name: The file or sample, named in errors and warnings.
        data: (2, H, W) values (NaN where invalid); other channel counts come back as given.
        declared: The channel names the source declares ("VV", "Sigma0_VH_db", ...), or
            ``None`` when it declares none.

    Returns:
        (2, H, W): ``data``, or its channels swapped.

    Raises:
        SceneError: If declared names disagree with the data (declared VV first but channel
            0 is clearly darker), or are not VV and VH.

    Warns:
        S1ChannelsSwappedWarning: When nothing was declared and the data show VH first.
    """
    values = np.asarray(data)
    names = _s1_names(declared)
    if declared and names is None:
        raise SensorMismatchError(f"{name}: Sentinel-1 channels declared as {list(declared)}; "
                                  "expected VV and VH")
    if names is not None and sorted(names) != ["VH", "VV"]:
        raise SensorMismatchError(f"{name}: Sentinel-1 polarisations {names}; the model takes "
                                  "VV, VH (IW dual-pol over land)")
    if values.shape[0] != 2:
        return values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = (float(np.nanmedian(values[0])), float(np.nanmedian(values[1])))
    log_medians = medians
    if np.nanmin(values) >= 0:  # power / amplitude: compare in dB for the margin
        log_medians = tuple(10 * np.log10(m) if m > 0 else -np.inf for m in medians)
    gap = log_medians[0] - log_medians[1]
    conclusive = np.isfinite(gap) and abs(gap) >= S1_VV_MARGIN_DB
    data_vv_first = gap > 0
    if names is not None:
        declared_vv_first = names[0] == "VV"
        if conclusive and data_vv_first != declared_vv_first:
            raise SceneError(f"{name}: channels declared {', '.join(names)} but channel 0 is "
                             f"{'brighter' if data_vv_first else 'darker'} than channel 1 "
                             f"(medians {medians[0]:.3g}, {medians[1]:.3g}); VV is brighter "
                             "than VH over land: the declaration or the data is wrong")
        return values if declared_vv_first else values[::-1].copy()
    if conclusive and not data_vv_first:
        warnings.warn(S1ChannelsSwappedWarning(name, medians), stacklevel=2)
        return values[::-1].copy()
    return values
