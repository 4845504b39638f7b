"""What a raster's bands are: Sentinel-2 bands, Sentinel-1 polarisations, or another sensor.

rasterio gives a file's band descriptions and tags; this module reads them as Sentinel-1/2
band names, refuses rasters whose descriptions or tags name another platform (Landsat,
RGB photos, single-band rasters, ...) with
:class:`~domains.remote_sensing.inputs.SensorMismatchError`, and only where nothing names
the bands lets the band count decide, with
:class:`~domains.remote_sensing.inputs.AssumedBandOrderWarning` naming the order assumed.
Split from :mod:`domains.remote_sensing.inputs` (the value checks) to keep both readable.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from domains.remote_sensing import cards
from domains.remote_sensing.inputs import (
    _S1_POL_RE,
    _S2_BAND_RE,
    SENSOR_NAMES,
    AssumedBandOrderWarning,
    SensorMismatchError,
    _present,
)

PLATFORM_KEYS = ("spacecraft_id", "spacecraft", "spacecraft_name", "satellite", "platform",
                 "mission", "sensor", "sensor_id", "instrument", "satellite_id")
_SENTINEL_RE = re.compile(r"sentinel|\bs[12][a-d]?\b|msi|c-sar|sar", re.I)
_OTHER_SENSOR_RE = re.compile(r"landsat|lc0[89]|le07|lt0[45]|\boli\b|tirs|\betm\b|\bmss\b|"
                              r"modis|planet|spot[-_ ]?\d|worldview|pleiades|sentinel[-_ ]?3",
                              re.I)
@dataclass(frozen=True)
class BandLayout:
    """What a raster's bands are.

    Attributes:
        sensor: ``"s2"`` or ``"s1"``.
        bands: Band names in file order.
        assumed: True when the band count alone decided (nothing named the bands).
        notes: What was seen (for summaries): e.g. ``"band order assumed"``.
    """

    sensor: str
    bands: tuple[str, ...]
    assumed: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


def s2_band_name(description: str | None) -> str | None:
    """The Sentinel-2 band a description names ("B4", "B04", "B8A, central ..."), or None."""
    if not description:
        return None
    match = _S2_BAND_RE.match(str(description).strip())
    if match is None:
        return None
    token = match.group(1).upper()
    name = "B8A" if token == "8A" else f"B{int(token):02d}"
    return name if name in cards.s2_bands("L1C") else None


def s1_band_name(description: str | None) -> str | None:
    """The Sentinel-1 polarisation a description names ("VV", "Sigma0_VH_db"), or None."""
    if not description:
        return None
    text = str(description).strip()
    if _S2_BAND_RE.match(text):
        return None
    match = _S1_POL_RE.search(text)
    return match.group(1).upper() if match else None


def _platform(tags: Mapping[str, Any] | None) -> str | None:
    """The tags naming a platform other than Sentinel-1/2 ("K=V, ..."), or ``None``."""
    found = [f"{key}={value}" for key, value in (tags or {}).items()
             if _OTHER_SENSOR_RE.search(f"{key}={value}")
             or (str(key).lower() in PLATFORM_KEYS and _present(value)
                 and not _SENTINEL_RE.search(str(value)))]
    return ", ".join(found) or None


def _tag_sensor(tags: Mapping[str, Any] | None) -> str | None:
    text = " ".join(f"{k}={v}" for k, v in (tags or {}).items())
    s1 = re.search(r"sentinel[-_ ]?1|\bs1[a-d]\b|c-sar|\bgrd\b|\bslc\b|s1[a-d]_iw", text, re.I)
    s2 = re.search(r"sentinel[-_ ]?2|\bs2[a-d]\b|msil?(1c|2a)|s2msi", text, re.I)
    if s1 and not s2:
        return "s1"
    if s2 and not s1:
        return "s2"
    return None


def _expected(sensor: str | None, extra_counts: Mapping[str, Sequence[str]] | None) -> str:
    parts = []
    if sensor in (None, "s1"):
        parts.append(f"{len(cards.s1_bands())} bands (Sentinel-1 {', '.join(cards.s1_bands())})")
    if sensor in (None, "s2"):
        parts += [f"{len(b)} bands (Sentinel-2 {lvl}: {', '.join(b)})"
                  for lvl, b in cards.card("sentinel2")["levels"].items()]
    layouts = [*cards.card("sentinel2")["levels"].values(), cards.s1_bands()]
    for own_sensor, own in (extra_counts or {}).items():
        if sensor in (None, own_sensor) and own and list(own) not in layouts:
            parts.append(f"{len(own)} bands ({SENSOR_NAMES[own_sensor]} {', '.join(own)})")
    return " or ".join(parts)


def identify_bands(name: str, count: int, descriptions: Sequence[str | None] = (),
                   tags: Mapping[str, Any] | None = None, sensor: str | None = None,
                   dtype: str | None = None,
                   model_bands: Mapping[str, Sequence[str]] | None = None) -> BandLayout:
    """What a raster's bands are, refusing anything that is not Sentinel-1 or Sentinel-2.

    Band descriptions decide first, then tags (a platform other than Sentinel, a product
    name), then — only when nothing says what the bands are — the band count, with an
    :class:`AssumedBandOrderWarning` naming the order assumed.

    Args:
        name: The file, named in errors and warnings.
        count: Number of bands.
        descriptions: Band descriptions (``None`` / empty for undescribed bands).
        tags: Dataset tags (and/or a metadata row).
        sensor: The sensor the caller expects (``None``: tell from the raster).
        dtype: The raster's data type ("uint8" 3-band rasters are photos, not products).
        model_bands: Band lists a model takes per sensor, accepted by count as well.

    Returns:
        The :class:`BandLayout`.

    Raises:
        SensorMismatchError: If descriptions or tags name other bands or another platform,
            or the count fits neither sensor; the message names the file, what was found
            and what is expected.
    """
    if sensor not in (None, "s1", "s2"):
        raise ValueError(f"unknown sensor {sensor!r}; known: s1, s2")
    described = [str(d).strip() for d in descriptions if d and str(d).strip()]
    expected = _expected(sensor, model_bands)
    platform = _platform(tags)
    if platform is not None:
        raise SensorMismatchError(f"{name}: tags name another platform ({platform}); expected "
                                  f"a Sentinel-1 or Sentinel-2 product: {expected}")
    if described:
        s2 = [s2_band_name(d) for d in descriptions]
        s1 = [s1_band_name(d) for d in descriptions]
        if len(described) == count and all(s2) and sensor in (None, "s2") \
                and len(set(s2)) == count:
            return BandLayout("s2", tuple(str(b) for b in s2))
        if len(described) == count and all(s1) and sensor in (None, "s1") \
                and len(set(s1)) == count and set(s1) <= set(cards.s1_bands()):
            return BandLayout("s1", tuple(str(b) for b in s1))
        found = ", ".join(str(d) if d else "(none)" for d in descriptions)
        which = SENSOR_NAMES.get(sensor or "", "Sentinel-1 or Sentinel-2")
        raise SensorMismatchError(f"{name}: band descriptions [{found}] do not name {which} "
                                  f"bands; expected {expected}")
    tagged = _tag_sensor(tags)
    if sensor is not None and tagged is not None and tagged != sensor:
        raise SensorMismatchError(f"{name}: tags say {SENSOR_NAMES[tagged]} but a "
                                  f"{SENSOR_NAMES[sensor]} scene was expected: {expected}")
    if dtype is not None and np.dtype(dtype) == np.uint8 and count in (1, 3, 4):
        raise SensorMismatchError(f"{name}: {count}-band 8-bit raster (a photo or a rendered "
                                  f"true-colour image, not calibrated values); expected "
                                  f"{expected}")
    candidates: list[tuple[str, list[str]]] = []
    want = [sensor] if sensor else ([tagged] if tagged else ["s1", "s2"])
    for kind in want:
        if kind == "s2":
            full = cards.s2_bands_for_count(count)
            if full is not None:
                candidates.append(("s2", full))
        elif count == len(cards.s1_bands()):
            candidates.append(("s1", cards.s1_bands()))
        own = list((model_bands or {}).get(kind, []))
        if own and count == len(own) and not any(c[0] == kind for c in candidates):
            candidates.append((kind, own))
    if not candidates:
        what = "a single-band raster" if count == 1 else f"{count} bands"
        raise SensorMismatchError(f"{name}: {what} with no band descriptions naming Sentinel "
                                  f"bands; expected {expected}")
    kind, order = candidates[0]
    warnings.warn(AssumedBandOrderWarning(name, kind, order), stacklevel=2)
    return BandLayout(kind, tuple(order), assumed=True, notes=("band order assumed",))
