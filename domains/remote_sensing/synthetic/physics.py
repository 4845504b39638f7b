"""Sensor physics: Sentinel-2 reflectance and Sentinel-1 backscatter of a land-cover map.

Sentinel-2: per-class spectra with within-class variation, scene illumination,
haze that is stronger at short wavelengths, sensor noise, optional clouds and
their shadows. Sentinel-1: per-class sigma0 in dB, an incidence-angle trend,
texture, and multiplicative Gamma speckle with the GRD number of looks; SAR
ignores clouds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
        card: The card itself, for the scalar parameters.
    """

    s2_spectra: np.ndarray
    s1_sigma0: np.ndarray
    s1_slope: np.ndarray
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
        return cls(np.asarray(spectra, np.float32), np.asarray(sigma0, np.float32),
                   np.asarray(slope, np.float32), card)


def render_s2(rng: np.random.Generator, surface: np.ndarray, physics: Physics,
              clouds: bool) -> tuple[np.ndarray, float]:
    """Simulate a Sentinel-2 L1C-like scene of a surface map.

    Args:
        rng: Random generator.
        surface: (H, W) indices into the physics tables (classes, then crisis surfaces).
        physics: The physics tables.
        clouds: Whether the scene may have clouds.

    Returns:
        (13, H, W) uint16 digital numbers (reflectance x 10000; 0 is nodata) and the
        cloud fraction.
    """
    card = physics.card
    size = surface.shape[0]
    reflectance = physics.s2_spectra[surface].transpose(2, 0, 1).copy()  # (13, H, W)
    variation = smooth_noise(rng, (1, size, size), corr_px=2.0)[0]  # shared across bands
    reflectance *= 1 + card["s2_within_class_cv"] * variation[None]
    reflectance *= rng.uniform(*card["s2_illumination_range"])
    haze = rng.uniform(*card["s2_haze_range"]) * (S2_WAVELENGTHS_NM[0] / S2_WAVELENGTHS_NM) ** 2
    reflectance += haze[:, None, None]
    cloud_fraction = 0.0
    if clouds:
        cover = smooth_noise(rng, (1, size, size), corr_px=6.0)[0]
        opacity = np.clip((cover - rng.uniform(0.6, 1.6)) * 1.5, 0, 1)  # (H, W)
        shift = rng.integers(2, 6, size=2)
        shadow = np.roll(opacity, tuple(shift), axis=(0, 1))
        reflectance *= 1 - 0.5 * shadow[None]
        cloud = np.asarray(card["cloud_reflectance"], np.float32)[:, None, None]
        reflectance = reflectance * (1 - opacity[None]) + cloud * opacity[None]
        cloud_fraction = float((opacity > 0.5).mean())
    reflectance += rng.normal(0, card["s2_noise_reflectance"], reflectance.shape)
    return np.clip(reflectance * 10000, 1, 65535).astype(np.uint16), cloud_fraction


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
    looks = float(card.get("equivalent_number_of_looks", 4.4))
    speckle = rng.gamma(shape=looks, scale=1 / looks, size=sigma0.shape)
    linear = 10 ** (sigma0 / 10) * speckle
    return (10 * np.log10(np.maximum(linear, 1e-6))).astype(np.float32)
