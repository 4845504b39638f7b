"""Sensor physics: Sentinel-2 reflectance and Sentinel-1 backscatter of a land-cover map.

Sentinel-2: per-class spectra with within-class variation, scene illumination,
haze that is stronger at short wavelengths, clouds, cirrus and their shadows
(:mod:`.clouds`, with the scene classification layer), sensor noise; digital numbers
with or without the post-2022 radiometric offset. Sentinel-1: per-class sigma0 in dB,
an incidence-angle trend, texture, and multiplicative speckle in linear power,
Gamma(L, 1/L) with L the card's equivalent number of looks (IW GRD: about 4.4), then
dB; SAR ignores clouds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from domains.remote_sensing.synthetic.clouds import (
    CloudCover,
    apply_clouds,
    draw_clouds,
    scene_classification,
)
from domains.remote_sensing.synthetic.fields import smooth_noise

S2_WAVELENGTHS_NM = np.array([443, 490, 560, 665, 705, 740, 783, 842, 865, 945, 1375, 1610, 2190],
                             dtype=np.float32)


@dataclass
class Physics:
    """Tables and parameters read from the `synthetic` dataset card.

    Attributes:
        s2_spectra: (K + T, 13) reflectance of the K classes, then the T crisis surfaces.
        s1_sigma0: (K + T, 2) sigma0 (dB) for VV, VH at the reference incidence.
        s1_slope: (K + T,) incidence-angle slope in dB per degree.
        scl_surface: (K + T,) uint8 SCL code of each surface under a clear sky.
        card: The card itself, for the scalar parameters.
    """

    s2_spectra: np.ndarray
    s1_sigma0: np.ndarray
    s1_slope: np.ndarray
    scl_surface: np.ndarray
    card: dict

    @classmethod
    def from_card(cls, card: dict, classes: list[str], tags: list[str]) -> Physics:
        """Assemble the tables in label-vocabulary order (classes, then crisis tags)."""
        spectra = [card["s2_reflectance"][c] for c in classes]
        spectra += [card["s2_crisis_reflectance"][t] for t in tags]
        sigma0 = [card["s1_sigma0_db"][c] for c in classes]
        sigma0 += [card["s1_crisis_sigma0_db"][t] for t in tags]
        slopes = card["s1_incidence_slope_db_per_deg"]
        surfaces = classes + tags
        slope = [slopes.get(s, slopes["default"]) for s in surfaces]
        if "flooded area" in surfaces:
            slope[surfaces.index("flooded area")] = slopes.get("water", slopes["default"])
        scl = [card["scl_surface"][s] for s in surfaces]
        return cls(np.asarray(spectra, np.float32), np.asarray(sigma0, np.float32),
                   np.asarray(slope, np.float32), np.asarray(scl, np.uint8), card)


def render_s2(rng: np.random.Generator, surface: np.ndarray, physics: Physics, lat: float,
              date: dt.date) -> tuple[np.ndarray, np.ndarray, CloudCover]:
    """Simulate a Sentinel-2 L1C-like scene of a surface map, clouds included.

    Args:
        rng: Random generator.
        surface: (H, W) indices into the physics tables (classes, then crisis surfaces).
        physics: The physics tables.
        lat: Scene latitude (sun position, for the cloud shadows).
        date: Acquisition date (sun position).

    Returns:
        (13, H, W) float32 top-of-atmosphere reflectance, the (H, W) uint8 scene
        classification layer (SCL codes) and the scene's clouds.
    """
    card = physics.card
    size = surface.shape[0]
    reflectance = physics.s2_spectra[surface].transpose(2, 0, 1).copy()  # (13, H, W)
    variation = smooth_noise(rng, (1, size, size), corr_px=2.0)[0]  # shared across bands
    reflectance *= 1 + card["s2_within_class_cv"] * variation[None]
    reflectance *= rng.uniform(*card["s2_illumination_range"])
    haze = rng.uniform(*card["s2_haze_range"]) * (S2_WAVELENGTHS_NM[0] / S2_WAVELENGTHS_NM) ** 2
    reflectance += haze[:, None, None]
    sky = draw_clouds(rng, size, lat, date, card["clouds"])
    reflectance = apply_clouds(reflectance, sky, rng, card["cloud_reflectance"], card["clouds"])
    reflectance += rng.normal(0, card["s2_noise_reflectance"], reflectance.shape)
    scl = scene_classification(physics.scl_surface[surface], sky, card["clouds"])
    return reflectance.astype(np.float32), scl, sky


def digital_numbers(reflectance: np.ndarray, offset: int = 0) -> np.ndarray:
    """Sentinel-2 digital numbers of a reflectance scene: ``DN = 10000 x rho - offset``.

    Args:
        reflectance: (13, H, W) reflectance.
        offset: The product's ``RADIO_ADD_OFFSET`` (-1000 from baseline 04.00 on, else 0):
            ``rho = (DN + offset) / 10000``.

    Returns:
        (13, H, W) uint16 digital numbers, at least 1 (0 is nodata).
    """
    dn = np.rint(reflectance.astype(np.float64) * 10000) - offset  # (13, H, W)
    return np.clip(dn, 1, 65535).astype(np.uint16)


def render_s1(rng: np.random.Generator, surface: np.ndarray, physics: Physics) -> np.ndarray:
    """Simulate a Sentinel-1 GRD scene (VV, VH sigma0 in dB) of a surface map.

    Args:
        rng: Random generator.
        surface: (H, W) indices into the physics tables.
        physics: The physics tables.

    Returns:
        (2, H, W) float32 sigma0 in dB.
    """
    card = physics.card
    size = surface.shape[0]
    sigma0 = physics.s1_sigma0[surface].transpose(2, 0, 1).copy()  # (2, H, W)
    near = rng.uniform(*card["s1_incidence_range_deg"])
    incidence = near + np.linspace(0, 0.6, size, dtype=np.float32)[None, :]  # across range
    sigma0 += (physics.s1_slope[surface] * (incidence - 37.0))[None]
    sigma0 += card["s1_within_class_db"] * smooth_noise(rng, (2, size, size), corr_px=1.5)
    looks = float(card["s1_equivalent_number_of_looks"])
    speckle = rng.gamma(shape=looks, scale=1 / looks, size=sigma0.shape)
    linear = 10 ** (sigma0 / 10) * speckle
    return (10 * np.log10(np.maximum(linear, 1e-6))).astype(np.float32)
