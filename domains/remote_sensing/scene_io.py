"""Read scenes (one multi-band GeoTIFF, or one GeoTIFF per band) into float arrays, checked.

rasterio reads the pixels, tags, descriptions and dataset masks; this module adds what is
about Sentinel products: bands identified (and other sensors refused) through the shared
input check :mod:`~domains.remote_sensing.inputs`, masks computed at native resolution and
resampled as masks before any value is, and radiometry applied — Sentinel-2 comes back as
reflectance ``(DN + offset) / 10000`` (the −1000 offset of processing baseline 04.00 and
later found from tags, metadata, baseline or date), Sentinel-1 as σ0 in dB. Every error
names the file and the problem.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
import torch.nn.functional as F
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform as transform_points
from rasterio.warp import transform_bounds
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from domains.remote_sensing import band_layout, cards, inputs
from domains.remote_sensing.inputs import SceneError, SensorMismatchError

MIN_VALID_FRACTION = 0.5
ARRAY_REFLECTANCE_MAX = 3.0  # float S2 values all below this are reflectance, not DN


@dataclass
class SceneInfo:
    """What reading a scene found out, for summaries and search metadata.

    Attributes:
        sensor: ``"s2"`` or ``"s1"``.
        level: Sentinel-2 processing level ("L1C" / "L2A"); ``None`` for S1.
        offset: Sentinel-2 radiometric offset applied (0 or −1000); ``None`` for S1.
        units: Sentinel-1 units found in the file ("dB", "linear power", "amplitude").
        assumed_order: The band order assumed from the band count, when nothing named it.
        swapped: Whether Sentinel-1 channels were swapped to VV, VH (VH came first).
        as_reflectance: Whether Sentinel-2 values were float reflectance already (every
            valid value below :data:`ARRAY_REFLECTANCE_MAX`) and taken as they are.
        warnings: The warnings raised while reading (re-emitted by :func:`read_scene`).
    """

    sensor: str
    level: str | None = None
    offset: float | None = None
    units: str | None = None
    assumed_order: tuple[str, ...] | None = None
    swapped: bool = False
    as_reflectance: bool = False
    warnings: list[Warning] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """Short notes on what was converted or assumed (empty when nothing was)."""
        notes = []
        if self.units and self.units != "dB":
            notes.append(f"S1 {self.units} converted to dB")
        if self.swapped:
            notes.append("S1 channels swapped to VV, VH")
        if self.as_reflectance:
            notes.append("S2 values taken as reflectance (float, all below 3)")
        if self.assumed_order:
            notes.append(f"band order assumed ({', '.join(self.assumed_order)})")
        return notes


def _wanted_indices(path: Path, layout: band_layout.BandLayout, bands: Sequence[str],
                    level: str | None) -> list[int | None]:
    """File band (0-based) of each wanted band; ``None`` for one an L2A product lacks (B10)."""
    names = list(layout.bands)
    lacking = set(cards.s2_bands("L1C")) - set(cards.s2_bands("L2A")) \
        if layout.sensor == "s2" and level == "L2A" else set()
    if layout.assumed and len(names) == len(bands) and not set(bands) <= set(names):
        names = list(bands)  # a model's own band subset, accepted by count
    missing = [b for b in bands if b not in names and b not in lacking]
    if missing:
        raise SensorMismatchError(f"{path}: lacks bands {missing} (it has {', '.join(names)})")
    return [names.index(b) if b in names else None for b in bands]


def read_scene(path: str | Path, sensor: str, bands: Sequence[str], **options: Any) -> np.ndarray:
    """Read the requested bands of a scene: S2 reflectance, S1 σ0 in dB, NaN where invalid.

    Warnings found while reading (band order assumed, S1 units converted, channels swapped)
    are emitted; :func:`read_scene_info` returns them instead.

    Args:
        path: The GeoTIFF.
        sensor: ``"s2"`` or ``"s1"``.
        bands: Band names in the order wanted.
        **options: ``level``, ``offset``, ``date``, ``baseline`` (explicit radiometry) and
            ``metadata`` (a metadata-table row), see :func:`read_scene_info`.

    Returns:
        (C, H, W) float32. A band a 12-band L2A file lacks (B10, cirrus) comes back as NaN,
        i.e. 0 after normalisation, as CLOSP zero-fills it.
    """
    data, info = read_scene_info(path, sensor, bands, **options)
    for warning in info.warnings:
        warnings.warn(warning, stacklevel=2)
    return data


def read_scene_info(path: str | Path, sensor: str, bands: Sequence[str], *,
                    level: str | None = None, offset: float | None = None, date: Any = None,
                    baseline: str | float | None = None,
                    metadata: Mapping[str, Any] | None = None) -> tuple[np.ndarray, SceneInfo]:
    """Read a scene through the shared input check (:mod:`~domains.remote_sensing.inputs`).

    The bands are identified from descriptions, tags or (with a warning) the band count;
    other sensors are refused. Invalid pixels (file nodata, rasterio's dataset masks,
    non-finite values) become NaN. Sentinel-2 digital numbers become reflectance
    ``(DN + offset) / 10000`` with the level and offset from the options, the metadata row,
    the file's tags, the baseline or the date; Sentinel-1 values become dB (linear power
    and amplitude converted, DN and SLC refused) with channel 0 verified to be VV.

    Args:
        path: The GeoTIFF.
        sensor: ``"s2"`` or ``"s1"``.
        bands: Band names in the order wanted.
        level: Sentinel-2 level ("L1C" / "L2A"), overriding what the file says.
        offset: Sentinel-2 radiometric offset, overriding what the file says.
        date: Acquisition date (decides the offset when nothing else does).
        baseline: Sentinel-2 processing baseline.
        metadata: A metadata-table row (``processing_level``, ``radiometric_offset``,
            ``processing_baseline``, ``date``...), read after the file's tags.

    Returns:
        (C, H, W) float32 and the :class:`SceneInfo`.

    Raises:
        SceneError: If the file is unreadable or truncated, not a Sentinel scene
            (:class:`~domains.remote_sensing.inputs.SensorMismatchError`), has impossible
            values, or has too few valid pixels.
    """
    path = Path(path)
    info = SceneInfo(sensor)
    try:
        with rasterio.open(path) as src, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            file_tags = src.tags()
            tags = {**file_tags, **_present_items(metadata)}
            descriptions = tuple(src.descriptions)
            layout = band_layout.identify_bands(str(path), src.count, descriptions, file_tags,
                                           sensor=sensor, dtype=src.dtypes[0],
                                           model_bands={sensor: list(bands)})
            raw = src.read()  # (C', H, W) native dtype
            masks = src.read_masks()  # (C', H, W) 0 where invalid
            nodata = src.nodata
            if sensor == "s2":
                band_tags = [src.tags(i + 1) for i in range(src.count)]
    except SceneError:
        raise
    except (rasterio.errors.RasterioError, OSError) as error:
        raise SceneError(f"{path}: unreadable GeoTIFF ({error})") from error
    info.warnings.extend(w.message for w in caught if isinstance(w.message, Warning))
    if layout.assumed:
        info.assumed_order = layout.bands
    if sensor == "s2":
        info.as_reflectance = _is_reflectance(raw, nodata)
        if not info.as_reflectance:
            inputs.check_s2(str(path), raw, nodata)
        default = "L2A" if len(layout.bands) == len(cards.s2_bands("L2A")) \
            and "B10" not in layout.bands else cards.card("sentinel2")["default_level"]
        info.level = inputs.s2_level(str(path), tags=tags, descriptions=descriptions,
                                     level=level, default=default)
        index = _wanted_indices(path, layout, bands, info.level)
        present = [i for i in index if i is not None]
        data = mask_invalid(path, raw[present].astype(np.float32), nodata,
                            masks[present] == 0)
        if not info.as_reflectance:
            offsets = [inputs.s2_offset(str(path), tags={**band_tags[i], **tags}, date=date,
                                        baseline=baseline, offset=offset) for i in present]
            info.offset = offsets[0] if len(set(offsets)) == 1 else None
            data = np.stack([inputs.s2_reflectance(str(path), band, o)
                             for band, o in zip(data, offsets, strict=True)])  # (C', H, W)
        if len(present) == len(index):
            return data, info
        full = np.full((len(index), *data.shape[1:]), np.nan, dtype=np.float32)  # (C, H, W)
        full[[k for k, i in enumerate(index) if i is not None]] = data
        return full, info
    data, info.units = _s1_db(str(path), raw, nodata, masks == 0)
    if info.units != "dB":
        info.warnings.append(inputs.S1UnitsConvertedWarning(str(path), info.units))
    names = list(layout.bands)
    if len(names) == 2:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ordered = inputs.order_s1_channels(str(path), data,
                                               None if layout.assumed else names)
        info.warnings.extend(w.message for w in caught if isinstance(w.message, Warning))
        info.swapped = any(isinstance(w.message, inputs.S1ChannelsSwappedWarning)
                           for w in caught)
        data, names = ordered, cards.s1_bands()
    index = _wanted_indices(path, band_layout.BandLayout("s1", tuple(names)), bands, None)
    return np.ascontiguousarray(data[index]), info


def read_array_info(name: str, array: np.ndarray, sensor: str, bands: Sequence[str], *,
                    level: str | None = None, offset: float | None = None, date: Any = None,
                    baseline: str | float | None = None,
                    nodata: float | None = None) -> tuple[np.ndarray, SceneInfo]:
    """An in-memory scene through the same input check and masking as a file.

    Sentinel-2 arrays hold digital numbers (converted with the offset from the options,
    as :func:`read_scene_info` does) or, when every finite value is below
    :data:`ARRAY_REFLECTANCE_MAX` in a float array, reflectance already. Their channels
    are the model's ``bands`` or a full L1C (13) / L2A (12) scene in card order. Sentinel-1
    arrays are recognised (dB, linear power, amplitude; DN and complex refused) and their
    channels checked to be VV, VH (swapped, with a warning, when VH comes first).

    Args:
        name: What to name in errors ("array[0]").
        array: (C, H, W) values (NaN where invalid).
        sensor: ``"s2"`` or ``"s1"``.
        bands: The bands wanted, in the model's order.
        level: Sentinel-2 level (default: L2A for 12 channels, else the card's default).
        offset: Sentinel-2 radiometric offset for digital numbers.
        date: Acquisition date (decides the offset when nothing else does).
        baseline: Sentinel-2 processing baseline.
        nodata: The nodata value (default: the sensor card's, e.g. DN 0 for Sentinel-2).

    Returns:
        (C, H, W) float32 in the wanted band order and the :class:`SceneInfo`.

    Raises:
        SceneError: On a channel count fitting neither the model nor a full scene,
            impossible values, or too few valid pixels.
    """
    values = np.asarray(array)
    info = SceneInfo(sensor)
    nodata = _card_nodata(sensor) if nodata is None else nodata
    count, wanted = values.shape[0], list(bands)
    if sensor == "s2":
        full = cards.s2_bands_for_count(count) or []
        if count != len(wanted) and not (full and set(wanted) <= set(full) | {"B10"}):
            raise SceneError(f"{name}: {count} channels for s2; this model takes {len(wanted)} "
                             f"({', '.join(wanted)}) in that order (or a full 13/12-band "
                             "scene in card order)")
        default = "L2A" if count == len(cards.s2_bands("L2A")) and count != len(wanted) \
            else cards.card("sentinel2")["default_level"]
        info.level = inputs.s2_level(name, level=level, default=default)
        if np.iscomplexobj(values):
            inputs.check_s2(name, values, nodata)  # raises
        data = values.astype(np.float32)
        if _is_reflectance(values, nodata):  # the documented array input: no note
            data = mask_invalid(name, data, None)
        else:
            inputs.check_s2(name, data, nodata)
            data = mask_invalid(name, data, nodata)
            info.offset = inputs.s2_offset(name, date=date, baseline=baseline, offset=offset)
            data = inputs.s2_reflectance(name, data, info.offset)
        if count != len(wanted):
            index = [full.index(b) if b in full else None for b in wanted]
            picked = np.full((len(wanted), *data.shape[1:]), np.nan, np.float32)  # (C, H, W)
            for k, i in enumerate(index):
                if i is not None:
                    picked[k] = data[i]
            data = picked
        return data, info
    if count != len(wanted) and count != len(cards.s1_bands()):
        raise SceneError(f"{name}: {count} channels for s1; this model takes {len(wanted)} "
                         f"({', '.join(wanted)}) in that order")
    data, info.units = _s1_db(name, values, nodata, None)
    if info.units != "dB":
        info.warnings.append(inputs.S1UnitsConvertedWarning(name, info.units))
    if count == 2:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = inputs.order_s1_channels(name, data, None)
        info.warnings.extend(w.message for w in caught if isinstance(w.message, Warning))
        info.swapped = bool(caught)
        if len(wanted) != 2:
            data = data[[cards.s1_bands().index(b) for b in wanted]]
    return np.ascontiguousarray(data, dtype=np.float32), info


def _is_reflectance(values: np.ndarray, nodata: float | None) -> bool:
    """Whether S2 values are reflectance already: float, every valid |value| below 3."""
    if values.dtype.kind != "f":
        return False
    finite = values[np.isfinite(values)]
    if nodata is not None:
        finite = finite[finite != nodata]
    return finite.size > 0 and float(np.abs(finite).max()) < ARRAY_REFLECTANCE_MAX


def _s1_db(name: str, raw: np.ndarray, nodata: float | None,
           mask: np.ndarray | None) -> tuple[np.ndarray, str]:
    """Sentinel-1 values masked, recognised and converted to dB: (C, H, W) float32, units."""
    if np.iscomplexobj(raw):
        inputs.s1_to_db(name, raw, "complex")  # raises, naming the file
    data = mask_invalid(name, raw.astype(np.float32), nodata, mask)
    units = inputs.s1_units(name, data)  # after masking: a nodata of -9999 is no dB hint
    if raw.dtype.kind in "iu" and units != "dB" and float(np.nanmax(data)) > 255:
        units = "DN"
    return inputs.s1_to_db(name, data, units)


def _present_items(row: Mapping[str, Any] | None) -> dict[str, Any]:
    """The entries of a metadata row that hold a value (NaN / None / "" left out)."""
    return {str(k): v for k, v in (row or {}).items() if inputs._present(v)}


def mask_invalid(path: str | Path, data: np.ndarray, nodata: float | None,
                 mask: np.ndarray | None = None) -> np.ndarray:
    """Check a scene's pixels and set nodata / masked / non-finite ones to NaN (in place).

    Args:
        path: What to name in an error (a file, or ``file:key`` inside an HDF5 archive).
        data: (C, H, W) float32 values.
        nodata: The nodata value, or ``None``.
        mask: (C, H, W) or (H, W) bool, True where invalid (e.g. rasterio's dataset masks
            ``read_masks() == 0``), or ``None``.

    Returns:
        ``data`` with invalid pixels set to NaN.

    Raises:
        SceneError: If every pixel is invalid, or fewer than :data:`MIN_VALID_FRACTION`
            of the pixels are valid in all bands that have any valid pixel (a band missing
            entirely, as B10 from an L2A scene, stays NaN).
    """
    invalid = ~np.isfinite(data)
    if nodata is not None:
        invalid |= data == nodata
    if mask is not None:
        invalid |= np.broadcast_to(mask, data.shape)
    if invalid.all():
        raise SceneError(f"{path}: all pixels are nodata or non-finite")
    present = ~invalid.reshape(len(invalid), -1).all(axis=1)  # (C,) a band entirely
    valid_fraction = 1.0 - invalid[present].any(axis=0).mean()  # missing (B10) is no hole
    if valid_fraction < MIN_VALID_FRACTION:
        raise SceneError(f"{path}: only {valid_fraction:.0%} of pixels are valid "
                         f"(nodata or non-finite elsewhere)")
    data[invalid] = np.nan
    return data


def resample_masked(band: np.ndarray, invalid: np.ndarray, height: int,
                    width: int) -> np.ndarray:
    """Bilinear resampling that lets no invalid source pixel reach a valid output pixel.

    The mask is resampled as a mask: an output pixel any invalid source pixel contributes
    to (non-zero bilinear weight) is invalid. Values are resampled with invalid pixels
    filled by 0, which then only reaches outputs that the mask discards.

    Args:
        band: (h, w) values at native resolution.
        invalid: (h, w) bool, True where invalid (nodata, masked, non-finite).
        height: Output rows.
        width: Output columns.

    Returns:
        (height, width) float32 with NaN where invalid.
    """
    if band.shape == (height, width):
        return np.where(invalid, np.float32(np.nan), band).astype(np.float32)
    filled = torch.from_numpy(np.where(invalid, 0.0, band).astype(np.float32))  # (h, w)
    stack = torch.stack([filled, torch.from_numpy(invalid.astype(np.float32))])[None]
    out = F.interpolate(stack, size=(height, width), mode="bilinear",
                        align_corners=False)[0]  # (2, height, width)
    values, touched = out[0].numpy(), out[1].numpy() > 1e-6
    return np.where(touched, np.float32(np.nan), values).astype(np.float32)


def read_band_files(name: str | Path, files: Sequence[Path | None], sensor: str, *,
                    bands: Sequence[str] | None = None, level: str | None = None,
                    offset: float | None = None, date: Any = None,
                    metadata: Mapping[str, Any] | None = None,
                    ) -> tuple[np.ndarray, tuple[float, float]]:
    """Stack single-band GeoTIFFs on the grid of the finest one; ``None`` gives a NaN band.

    Masks first: each file's invalid pixels (its nodata, else the card's; rasterio's
    dataset masks; non-finite values) are found at native resolution, and coarser bands
    (Sentinel-2's 20 m and 60 m) are upsampled bilinearly to the finest grid by
    :func:`resample_masked`, so no nodata value reaches a valid pixel. Then the shared
    input check: S2 digital numbers become reflectance with the offset from the options,
    ``metadata``, the files' tags or the date; S1 values become dB (units recognised over
    all files together) with channel 0 verified to be VV when ``bands`` names them.

    Args:
        name: What to name in errors (the sample's folder).
        files: One file per band in the order wanted (``None`` for a band the archive lacks).
        sensor: ``"s2"`` or ``"s1"`` (its card's nodata applies where a file sets none).
        bands: The band names of ``files`` (S1: declared polarisations, verified).
        level: Sentinel-2 level, when the archive knows it.
        offset: Sentinel-2 radiometric offset, overriding the metadata.
        date: Acquisition date.
        metadata: The sample's metadata row.

    Returns:
        (C, H, W) float32 with NaN where invalid or missing, and the (lon, lat) of the centre.

    Raises:
        SceneError: If a file is missing or unreadable, has impossible values, or too few
            pixels are valid.
    """
    present = [f for f in files if f is not None]
    if not present:
        raise SceneError(f"{name}: no band files given for {sensor}")
    current = present[0]
    row = _present_items(metadata)
    try:
        shapes = []
        for current in present:
            with rasterio.open(current) as src:
                shapes.append((src.height * src.width, src.height, src.width, current))
        _, height, width, current = max(shapes, key=lambda s: s[0])
        with rasterio.open(current) as src:
            lon_lat = centre_lon_lat(src.crs, src.transform, height, width)
        data = np.full((len(files), height, width), np.nan, dtype=np.float32)  # (C, H, W)
        for index, current in enumerate(files):
            if current is None:
                continue
            with rasterio.open(current) as src:
                raw = src.read(1)  # (h, w) native resolution and dtype
                invalid = src.read_masks(1) == 0
                nodata = src.nodata if src.nodata is not None else _card_nodata(sensor)
                tags = {**src.tags(), **src.tags(1), **row}
            if np.iscomplexobj(raw):
                inputs.s1_to_db(str(current), raw, "complex")  # raises, naming the file
            band = raw.astype(np.float32)
            invalid |= ~np.isfinite(band)
            if nodata is not None:
                invalid |= band == nodata
            if sensor == "s2":
                inputs.check_s2(str(current), raw, nodata)
                band = inputs.s2_reflectance(str(current), band, inputs.s2_offset(
                    str(current), tags=tags, date=date, offset=offset))
            data[index] = resample_masked(band, invalid, height, width)
    except SceneError:
        raise
    except (rasterio.errors.RasterioError, OSError) as error:
        raise SceneError(f"{current}: unreadable GeoTIFF ({error})") from error
    keep = [i for i, f in enumerate(files) if f is not None]
    data[keep] = mask_invalid(name, data[keep], None)
    if sensor == "s1":
        data[keep], _ = inputs.s1_to_db(str(name), data[keep])
        if len(keep) == 2 == len(files):
            data = inputs.order_s1_channels(str(name), data, bands)
    elif level is not None:
        inputs.s2_level(str(name), level=level)  # an unknown level is an error
    return data, lon_lat


def _card_nodata(sensor: str) -> float | None:
    value = cards.card("sentinel2" if sensor == "s2" else "sentinel1").get("nodata")
    return None if value is None else float(value)


def centre_lon_lat(crs: Any, transform: Affine, height: int, width: int) -> tuple[float, float]:
    """(lon, lat) in degrees of the centre of a raster grid (NaN when it has no CRS)."""
    if crs is None:
        return float("nan"), float("nan")
    col, row = width / 2, height / 2
    x = transform.c + transform.a * col + transform.b * row
    y = transform.f + transform.d * col + transform.e * row
    return to_lon_lat(crs, x, y)


def scene_lon_lat(path: str | Path) -> tuple[float, float]:
    """(lon, lat) of the centre of a GeoTIFF (NaN when it has no CRS)."""
    try:
        with rasterio.open(path) as src:
            return centre_lon_lat(src.crs, src.transform, src.height, src.width)
    except (rasterio.errors.RasterioError, OSError) as error:
        raise SceneError(f"{path}: unreadable GeoTIFF ({error})") from error


def to_lon_lat(crs: Any, x: float, y: float) -> tuple[float, float]:
    """Project a point from ``crs`` (anything rasterio accepts, e.g. "EPSG:32633") to (lon, lat)."""
    lons, lats = transform_points(CRS.from_user_input(crs), "EPSG:4326", [float(x)], [float(y)])
    return float(lons[0]), float(lats[0])


def geotiff_footprint(path: str | Path) -> Polygon | MultiPolygon | None:
    """A GeoTIFF's footprint in degrees (EPSG:4326): the box of its lon/lat bounds, or ``None``.

    A scene crossing the antimeridian (west > east after transforming its bounds, or a
    geographic raster running past ±180°) gets a two-part MultiPolygon, one box on each
    side of 180°, every part within [-180, 180]; any other scene gets
    ``box(*transform_bounds(...))``. ``None`` when the file is not a georeferenced raster
    (no CRS, not readable, a folder).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                return None
            west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    except (rasterio.errors.RasterioError, OSError):
        return None
    return lonlat_box(float(west), float(south), float(east), float(north))


def lonlat_box(west: float, south: float, east: float, north: float) -> Polygon | MultiPolygon:
    """A lon/lat box as a footprint, cut in two where it crosses the antimeridian.

    Args:
        west: Western edge in degrees; greater than ``east`` for a box crossing 180°
            (as ``rasterio.warp.transform_bounds`` returns such boxes), or past ±180°.
        south: Southern edge.
        east: Eastern edge.
        north: Northern edge.

    Returns:
        ``box(west, south, east, north)`` when it lies within [-180, 180] and west <= east;
        otherwise the same box drawn eastwards from ``west`` and wrapped by
        :func:`wrap_antimeridian` (a two-part MultiPolygon when it crosses 180°).
    """
    if west <= east and -180.0 <= west and east <= 180.0:
        return box(west, south, east, north)
    if west > east:
        east += 360.0  # drawn continuously eastwards across 180°
    return wrap_antimeridian(box(west, south, east, north))


def wrap_antimeridian(geometry: BaseGeometry) -> BaseGeometry:
    """Cut a lon/lat polygon drawn continuously past ±180° into parts within [-180, 180].

    Args:
        geometry: A (multi)polygon in degrees whose longitudes may run past 180 or -180
            (e.g. 179.9..180.1 for a scene straddling the antimeridian).

    Returns:
        The geometry unchanged when it already lies within [-180, 180]; a box spanning
        every longitude when it wraps the whole globe; else its pieces shifted by ±360°
        into [-180, 180] (a MultiPolygon when there are several, as on either side of 180°).
    """
    west, south, east, north = geometry.bounds
    if -180.0 <= west and east <= 180.0:
        return geometry
    if east - west >= 360.0:
        return box(-180.0, south, 180.0, north)
    parts: list[Polygon] = []
    for shift in (360.0, 0.0, -360.0):  # the piece that lands in [-180, 180] after +shift
        piece = geometry.intersection(box(-180.0 - shift, south, 180.0 - shift, north))
        pieces = getattr(piece, "geoms", [piece])
        parts.extend(affinity.translate(part, xoff=shift) for part in pieces
                     if isinstance(part, Polygon) and part.area > 0)
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def repair_antimeridian(geometry: BaseGeometry | None) -> BaseGeometry | None:
    """Cut a footprint polygon wrongly drawn across the globe at the antimeridian.

    A polygon whose corners were projected to lon/lat one by one comes out with
    longitudes near +180 and near -180 for a scene crossing the antimeridian, and so
    spans nearly 360°. When moving its negative longitudes east by 360° makes it a proper
    polygon narrower than 180°, that is what happened (a scene is never wider than 180° of
    longitude): it is redrawn so and cut by
    :func:`wrap_antimeridian`. Anything else (a real footprint, a point, a polar box
    spanning every longitude, coordinates that are not degrees, ``None``) comes back
    unchanged.
    """
    if not isinstance(geometry, Polygon) or geometry.is_empty:
        return geometry
    west, south, east, north = geometry.bounds
    if east - west <= 180.0 or not (-180.0 <= west and east <= 180.0
                                    and -90.0 <= south and north <= 90.0):
        return geometry  # narrow enough, or not in degrees at all

    def unwrap(coords: np.ndarray) -> np.ndarray:  # (P, 2) lon, lat
        coords = np.array(coords, dtype=float)
        coords[coords[:, 0] < 0, 0] += 360.0
        return coords

    shell = unwrap(geometry.exterior.coords)
    if np.ptp(shell[:, 0]) >= 180.0:
        return geometry
    unwrapped = Polygon(shell, [unwrap(ring.coords) for ring in geometry.interiors])
    if not unwrapped.is_valid or unwrapped.area <= 0:
        return geometry  # e.g. box(-180, s, 180, n) around a pole
    return wrap_antimeridian(unwrapped)
