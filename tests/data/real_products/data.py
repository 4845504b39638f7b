#!/usr/bin/env python3
"""Generate small GeoTIFFs shaped like real Sentinel products and like what is not one.

Run from anywhere: ``python tests/data/real_products/data.py``. Files are written next to
this script (committed; a few KB each). What each file stands for:

* ``s2_l2a_2021.tif`` / ``s2_l2a_2023.tif`` — the same surface (one reflectance cube)
  as an L2A product of processing baseline 02.14 (DN = 10000 ρ) and of baseline 05.09
  (DN = 10000 ρ + 1000, ``BOA_ADD_OFFSET`` = −1000 as dataset and per-band tags, as GDAL's
  SENTINEL2 driver reports them), with ``PRODUCT_TYPE`` / ``PROCESSING_LEVEL`` tags.
  ``s2_l2a_2023_dated.tif`` holds the same 2023 numbers with only a sensing date.
* ``bands/`` — one GeoTIFF per band of one scene: a 10 m band (8 x 8) and three versions
  of a 20 m band (4 x 4) whose pixel (1, 1) is invalid — by nodata 0, by nodata 65535, by
  an internal dataset mask over a plausible value — plus the band with that pixel valid.
* ``s1_db.tif``, ``s1_power.tif``, ``s1_amplitude.tif`` — one Sentinel-1 scene (VV, VH
  described) in dB, linear power and amplitude; ``s1_slc.tif`` complex (CFloat32);
  ``s1_vh_first.tif`` the dB scene with VH first and no band descriptions.
* ``landsat_sr.tif`` (Landsat Collection 2 ``SR_B1``..``SR_B7`` descriptions),
  ``landsat_tagged.tif`` (``B1``..``B7`` with ``SPACECRAFT_ID=LANDSAT_8``),
  ``landsat_12.tif`` (12 undescribed bands, Landsat tags), ``rgb_photo.tif`` (8-bit,
  Red/Green/Blue), ``single_band.tif`` (an elevation model): other sensors.
* ``s2_undescribed.tif`` — 13 bands, no descriptions, no tags: accepted by count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

HERE = Path(__file__).resolve().parent
SIZE = 16
L1C = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
L2A = [b for b in L1C if b != "B10"]


def write(path: Path, data: np.ndarray, *, descriptions: list[str] | None = None,
          tags: dict[str, str] | None = None, band_tags: list[dict[str, str]] | None = None,
          nodata: float | None = None, pixel: float = 10.0, mask: np.ndarray | None = None
          ) -> None:
    """Write (C, H, W) ``data`` as a GeoTIFF in UTM 33N with the given metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "dtype": data.dtype.name, "count": data.shape[0],
               "height": data.shape[1], "width": data.shape[2], "crs": "EPSG:32633",
               "transform": from_origin(500_000, 5_000_000, pixel, pixel), "nodata": nodata}
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = tuple(descriptions)
        if tags:
            dst.update_tags(**tags)
        for index, extra in enumerate(band_tags or [], start=1):
            dst.update_tags(index, **extra)
        if mask is not None:
            dst.write_mask(mask)


def surface(rng: np.random.Generator) -> np.ndarray:
    """(12, H, W) L2A surface reflectance of a field pattern, 0.01-0.45."""
    base = np.linspace(0.03, 0.30, len(L2A))[:, None, None]
    texture = rng.uniform(0.8, 1.5, size=(len(L2A), SIZE, SIZE))
    return np.clip(base * texture, 0.01, 0.45)


def sentinel2(rng: np.random.Generator) -> None:
    rho = surface(rng)
    common = {"PRODUCT_TYPE": "S2MSI2A", "PROCESSING_LEVEL": "Level-2A",
              "SPACECRAFT_NAME": "Sentinel-2B"}
    old = np.round(rho * 10000).astype(np.uint16)
    write(HERE / "s2_l2a_2021.tif", old, descriptions=L2A, nodata=0,
          tags={**common, "PROCESSING_BASELINE": "02.14",
                "PRODUCT_START_TIME": "2021-07-14T10:20:31.024Z"})
    new = np.round(rho * 10000 + 1000).astype(np.uint16)
    offsets = [{"BOA_ADD_OFFSET": "-1000"} for _ in L2A]
    write(HERE / "s2_l2a_2023.tif", new, descriptions=L2A, nodata=0, band_tags=offsets,
          tags={**common, "PROCESSING_BASELINE": "05.09", "BOA_ADD_OFFSET": "-1000",
                "PRODUCT_START_TIME": "2023-07-14T10:20:31.024Z"})
    write(HERE / "s2_l2a_2023_dated.tif", new, descriptions=L2A, nodata=0,
          tags={"PRODUCT_TYPE": "S2MSI2A", "DATATAKE_1_DATATAKE_SENSING_START":
                "2023-07-14T10:20:31.024Z"})
    undescribed = rng.integers(300, 4000, size=(len(L1C), SIZE, SIZE)).astype(np.uint16)
    write(HERE / "s2_undescribed.tif", undescribed, nodata=0)


def band_files(rng: np.random.Generator) -> None:
    """A 10 m band and a 20 m band whose pixel (1, 1) is invalid in three ways."""
    b02 = rng.integers(800, 1200, size=(1, 8, 8)).astype(np.uint16)
    write(HERE / "bands" / "B02.tif", b02, nodata=0, pixel=10.0)
    b05 = rng.integers(1500, 2500, size=(1, 4, 4)).astype(np.uint16)
    write(HERE / "bands" / "B05_valid.tif", b05, nodata=0, pixel=20.0)
    zero = b05.copy()
    zero[0, 1, 1] = 0
    write(HERE / "bands" / "B05_nodata0.tif", zero, nodata=0, pixel=20.0)
    high = b05.copy()
    high[0, 1, 1] = 65535
    write(HERE / "bands" / "B05_nodata65535.tif", high, nodata=65535, pixel=20.0)
    masked = b05.copy()
    masked[0, 1, 1] = 9000  # a plausible value, invalid only by the dataset mask
    mask = np.full((4, 4), 255, dtype=np.uint8)
    mask[1, 1] = 0
    write(HERE / "bands" / "B05_masked.tif", masked, pixel=20.0, mask=mask)


def sentinel1(rng: np.random.Generator) -> None:
    db = np.stack([-11 + 2.5 * rng.standard_normal((SIZE, SIZE)),
                   -19 + 2.5 * rng.standard_normal((SIZE, SIZE))]).astype(np.float32)
    power = (10 ** (db / 10)).astype(np.float32)
    pols = ["VV", "VH"]
    write(HERE / "s1_db.tif", db, descriptions=pols, nodata=-9999.0)
    write(HERE / "s1_power.tif", power, descriptions=pols, nodata=0.0)
    write(HERE / "s1_amplitude.tif", np.sqrt(power), descriptions=pols, nodata=0.0)
    phase = rng.uniform(-np.pi, np.pi, size=power.shape)
    slc = (np.sqrt(power) * np.exp(1j * phase)).astype(np.complex64)
    write(HERE / "s1_slc.tif", slc, descriptions=pols)
    write(HERE / "s1_vh_first.tif", db[::-1].copy(), nodata=-9999.0)


def other_sensors(rng: np.random.Generator) -> None:
    landsat = rng.integers(7000, 20000, size=(7, SIZE, SIZE)).astype(np.uint16)
    write(HERE / "landsat_sr.tif", landsat, nodata=0,
          descriptions=[f"SR_B{i}" for i in range(1, 8)])
    write(HERE / "landsat_tagged.tif", landsat, nodata=0,
          descriptions=[f"B{i}" for i in range(1, 8)],
          tags={"SPACECRAFT_ID": "LANDSAT_8", "SENSOR_ID": "OLI_TIRS"})
    twelve = rng.integers(7000, 20000, size=(12, SIZE, SIZE)).astype(np.uint16)
    write(HERE / "landsat_12.tif", twelve, nodata=0,
          tags={"SPACECRAFT_ID": "LANDSAT_9", "PRODUCT_ID": "LC09_L2SP_193029_20230714"})
    photo = rng.integers(0, 256, size=(3, SIZE, SIZE)).astype(np.uint8)
    write(HERE / "rgb_photo.tif", photo, descriptions=["Red", "Green", "Blue"])
    dem = rng.uniform(200, 900, size=(1, SIZE, SIZE)).astype(np.float32)
    write(HERE / "single_band.tif", dem, nodata=-32768.0)


def main() -> None:
    rng = np.random.default_rng(13)
    sentinel2(rng)
    band_files(rng)
    sentinel1(rng)
    other_sensors(rng)


if __name__ == "__main__":
    main()
