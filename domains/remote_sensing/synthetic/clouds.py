"""Clouds, thin cirrus and cloud shadows over a Sentinel-2 scene, with its SCL layer.

Real Sentinel-2 scenes carry clouds; L2A products describe them in a scene
classification layer (SCL, Sen2Cor codes: 3 cloud shadow, 8/9 cloud of medium/high
probability, 10 thin cirrus; 4 vegetation, 5 not vegetated, 6 water, 11 snow/ice).
This module draws a scene's cloud regime (clear, scattered, partly, heavy; shares and
cover ranges from the ``synthetic`` card), a smooth cloud field thresholded to that cover
with soft edges, an optional thin cirrus veil (adds reflectance in every band, most
visibly in B10 at 1375 nm where the surface is dark), and the clouds' shadows: the cloud
opacity displaced along the anti-solar direction by ``height x tan(sun zenith)``, with
the sun's position computed from the scene's latitude, date and Sentinel-2's 10:30 local
overpass. Cloud fields are periodic (FFT noise), so a displaced field is the shadow of
the clouds just outside the scene too. The land-cover labels stay the surface truth.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from domains.remote_sensing.synthetic.fields import smooth_noise

#: Sen2Cor scene classification codes written by the generator.
SCL_CLOUD_SHADOW, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_THIN_CIRRUS = 3, 8, 9, 10
SCL_CLOUD_CODES = (SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_THIN_CIRRUS)
#: Index of B10 (cirrus, 1375 nm) in the 13-band L1C order.
B10 = 10
PIXEL_M = 10.0
MAX_SUN_ZENITH_DEG = 80.0  # Sentinel-2 does not image darker scenes; caps the shadow length


@dataclass
class CloudCover:
    """What the sky did to one scene.

    Attributes:
        opacity: (H, W) opaque-cloud opacity in [0, 1].
        shadow: (H, W) shadow strength in [0, 1] (displaced opacity).
        cirrus: (H, W) thin-cirrus thickness in [0, 1].
        regime: The cloud regime drawn (``clear``, ``scattered``...).
        sun_zenith_deg: Sun zenith angle at the overpass.
        sun_azimuth_deg: Sun azimuth (clockwise from north).
    """

    opacity: np.ndarray
    shadow: np.ndarray
    cirrus: np.ndarray
    regime: str
    sun_zenith_deg: float
    sun_azimuth_deg: float


def sun_angles(lat: float, date: dt.date, local_solar_hour: float) -> tuple[float, float]:
    """Sun zenith and azimuth (degrees; azimuth clockwise from north) at a place and time.

    Declination from the day of year (Cooper's formula), hour angle from local solar time.

    Args:
        lat: Latitude in degrees.
        date: The day.
        local_solar_hour: Local solar time in hours (12 = noon).

    Returns:
        (zenith, azimuth) in degrees.
    """
    day = date.timetuple().tm_yday
    declination = np.radians(23.44 * np.sin(2 * np.pi * (284 + day) / 365))
    hour = np.radians(15.0 * (local_solar_hour - 12.0))
    phi = np.radians(lat)
    cos_zenith = np.sin(phi) * np.sin(declination) + \
        np.cos(phi) * np.cos(declination) * np.cos(hour)
    zenith = np.degrees(np.arccos(np.clip(cos_zenith, -1.0, 1.0)))
    from_south = np.arctan2(np.sin(hour),
                            np.cos(hour) * np.sin(phi) - np.tan(declination) * np.cos(phi))
    azimuth = (np.degrees(from_south) + 180.0) % 360.0
    return float(zenith), float(azimuth)


def shadow_shift(height_m: float, zenith_deg: float, azimuth_deg: float) -> tuple[int, int]:
    """(rows, cols) a cloud's shadow is displaced by, in 10 m pixels (rows grow southward).

    The shadow falls away from the sun, ``height x tan(zenith)`` metres along the azimuth
    opposite the sun's.
    """
    length = height_m * np.tan(np.radians(min(zenith_deg, MAX_SUN_ZENITH_DEG))) / PIXEL_M
    away = np.radians(azimuth_deg + 180.0)
    east, north = length * np.sin(away), length * np.cos(away)
    return int(round(-north)), int(round(east))


def _regime(rng: np.random.Generator, regimes: dict) -> tuple[str, float]:
    names = list(regimes)
    shares = np.asarray([regimes[n]["share"] for n in names], dtype=float)
    name = names[rng.choice(len(names), p=shares / shares.sum())]
    low, high = regimes[name]["cover"]
    return name, float(rng.uniform(low, high))


def _thresholded(field: np.ndarray, cover: float, threshold: float, width: float) -> np.ndarray:
    """Opacity in [0, 1] reaching ``threshold`` on exactly the top ``cover`` of ``field``."""
    if cover <= 0:
        return np.zeros_like(field)
    cut = np.quantile(field, 1.0 - cover)
    return np.clip((field - cut) / width + threshold, 0.0, 1.0).astype(np.float32)


def draw_clouds(rng: np.random.Generator, size: int, lat: float, date: dt.date,
                card: dict) -> CloudCover:
    """Draw one scene's clouds, cirrus and shadows from the card's ``clouds`` section.

    Args:
        rng: The scene's random generator.
        size: Scene side in pixels.
        lat: Scene latitude (sun position).
        date: Acquisition date (sun position).
        card: The ``clouds`` section of the ``synthetic`` card.

    Returns:
        The scene's cloud cover (all-zero fields for a clear scene).
    """
    zenith, azimuth = sun_angles(lat, date, card["overpass_local_solar_hour"])
    regime, cover = _regime(rng, card["regimes"])
    zeros = np.zeros((size, size), np.float32)
    if cover <= 0:
        return CloudCover(zeros, zeros, zeros, regime, zenith, azimuth)
    threshold = card["cloud_opacity_threshold"]
    field = smooth_noise(rng, (1, size, size), corr_px=card["corr_px"])[0]  # (H, W)
    opacity = _thresholded(field, cover, threshold, card["edge_px_width"])
    shift = shadow_shift(rng.uniform(*card["cloud_height_m"]), zenith, azimuth)
    shadow = np.roll(opacity, shift, axis=(0, 1))  # periodic field: clouds beyond the edge too
    cirrus = zeros
    if rng.random() < card["cirrus_probability"]:
        veil = smooth_noise(rng, (1, size, size), corr_px=2 * card["corr_px"])[0]
        cirrus = _thresholded(veil, float(rng.uniform(0.05, 0.3)),
                              card["cirrus_scl_threshold"], 1.0)
    return CloudCover(opacity, shadow, cirrus, regime, zenith, azimuth)


def apply_clouds(reflectance: np.ndarray, sky: CloudCover, rng: np.random.Generator,
                 cloud_spectrum: np.ndarray, card: dict) -> np.ndarray:
    """Darken the shadows, veil with cirrus and cover with clouds: (13, H, W) reflectance.

    Args:
        reflectance: (13, H, W) top-of-atmosphere reflectance of the clear scene.
        sky: The scene's clouds (:func:`draw_clouds`).
        rng: The scene's random generator.
        cloud_spectrum: (13,) reflectance of an opaque cloud.
        card: The ``clouds`` section of the ``synthetic`` card.

    Returns:
        The cloudy scene's (13, H, W) reflectance.
    """
    if not (sky.opacity.any() or sky.cirrus.any()):
        return reflectance
    darkening = rng.uniform(*card["shadow_darkening"])
    out = reflectance * (1.0 - darkening * sky.shadow[None])  # (13, H, W)
    if sky.cirrus.any():
        veil = rng.uniform(*card["cirrus_reflectance"]) * sky.cirrus  # (H, W)
        out = out + veil[None]  # every band; B10 (dark under the water vapour) shows it most
    cloud = np.asarray(cloud_spectrum, np.float32)[:, None, None]  # (13, 1, 1)
    return out * (1.0 - sky.opacity[None]) + cloud * sky.opacity[None]


def scene_classification(surface_scl: np.ndarray, sky: CloudCover,
                         card: dict) -> np.ndarray:
    """The scene's SCL layer: surface codes with cloud shadow, cirrus and clouds on top.

    Args:
        surface_scl: (H, W) uint8 SCL code of each pixel's surface.
        sky: The scene's clouds.
        card: The ``clouds`` section of the ``synthetic`` card.

    Returns:
        (H, W) uint8 SCL codes.
    """
    threshold = card["cloud_opacity_threshold"]
    scl = surface_scl.astype(np.uint8).copy()
    scl[sky.shadow >= threshold] = SCL_CLOUD_SHADOW
    scl[sky.cirrus >= card["cirrus_scl_threshold"]] = SCL_THIN_CIRRUS
    scl[sky.opacity >= threshold] = SCL_CLOUD_MEDIUM
    scl[sky.opacity >= 0.8] = SCL_CLOUD_HIGH
    return scl


def cloud_fractions(scl: np.ndarray) -> tuple[float, float]:
    """(cloud fraction, cloud-shadow fraction) of an SCL layer.

    Cloud = medium or high probability or thin cirrus (as ESA's cloudy-pixel percentage).
    """
    return float(np.isin(scl, SCL_CLOUD_CODES).mean()), float((scl == SCL_CLOUD_SHADOW).mean())
