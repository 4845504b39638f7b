"""Frontal chest radiograph phantoms with findings at graded severity.

A phantom is a density map (bright = dense, values roughly in [0, 1]) drawn on a
normalised grid (x: image left = patient's right, y: top to bottom): body wall, two lungs
with vessel markings fading to the periphery, mediastinum and spine, heart, diaphragm
domes, posterior ribs and clavicles. Findings change what a radiologist looks at:

- cardiomegaly: the heart's width over the thoracic width (cardiothoracic ratio) above 0.5;
- pleural effusion: dependent opacity with a meniscus rising laterally, blunting the
  costophrenic angle;
- pneumothorax: a lateral/apical band without lung markings, bounded by a thin visceral
  pleural line;
- consolidation: a patchy airspace opacity (with air bronchograms when large);
- lung lesion: a well-circumscribed round nodule or mass;
- atelectasis: plate-like basal opacity with volume loss (elevated hemidiaphragm).

Patient size, exposure (contrast, gamma), rotation, blur and noise vary per study. Only
numpy and scipy.ndimage; a 160 px phantom takes a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

#: The findings the phantom draws (CheXpert spelling).
DRAWN_FINDINGS = ("Cardiomegaly", "Pleural Effusion", "Pneumothorax", "Consolidation",
                  "Lung Lesion", "Atelectasis")
SEVERITIES = ("mild", "moderate", "severe")


@dataclass
class Anatomy:
    """A patient's anatomy, fixed across that patient's studies.

    Attributes:
        size: Body width factor (0.85 small ... 1.1 large).
        lung_height: Lung height as a fraction of the image.
        ctr: Cardiothoracic ratio when the heart is normal.
        dome: Height of the diaphragm domes.
        seed: Seed of the patient's vessel texture.
    """

    size: float
    lung_height: float
    ctr: float
    dome: float
    seed: int


@dataclass
class Study:
    """One radiograph's findings and acquisition.

    Attributes:
        findings: Finding -> {"severity": ..., "side": "left"/"right"/"both", ...}.
        rotation: In-plane rotation in degrees.
        contrast: Exposure contrast factor.
        gamma: Exposure gamma.
        noise: Noise standard deviation (density units).
        blur: Gaussian blur sigma in pixels.
    """

    findings: dict[str, dict[str, Any]] = field(default_factory=dict)
    rotation: float = 0.0
    contrast: float = 1.0
    gamma: float = 1.0
    noise: float = 0.01
    blur: float = 0.6


def random_anatomy(rng: np.random.Generator) -> Anatomy:
    """A random patient."""
    return Anatomy(size=float(rng.uniform(0.86, 1.1)), lung_height=float(rng.uniform(0.5, 0.58)),
                   ctr=float(rng.uniform(0.38, 0.47)), dome=float(rng.uniform(0.05, 0.09)),
                   seed=int(rng.integers(2**31)))


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation: (H, W)."""
    field_ = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return field_ / (field_.std() + 1e-8)


def _soft(signed: np.ndarray, width: float) -> np.ndarray:
    """A soft step: 1 where ``signed`` < 0 (inside), 0 outside, over ``width``."""
    return 1.0 / (1.0 + np.exp(np.clip(signed / max(width, 1e-6), -40, 40)))


class _Geometry:
    """The normalised grid and the lungs of one radiograph."""

    def __init__(self, size: int, anatomy: Anatomy) -> None:
        y, x = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1)
        self.x, self.y, self.px = x, y, 1.0 / size
        self.half_width = 0.17 * anatomy.size  # lung half-width
        self.top = 0.14
        self.base = self.top + anatomy.lung_height  # lung bases at the costophrenic angles
        self.centres = {"right": 0.5 - 0.165 * anatomy.size, "left": 0.5 + 0.165 * anatomy.size}

    def lung(self, side: str, base_shift: float = 0.0, dome: float = 0.07) -> np.ndarray:
        """Soft mask of one lung (side in the patient's frame), lifted by ``base_shift``."""
        cx = self.centres[side]
        u = (self.x - cx) / self.half_width  # -1 .. 1 across the lung
        mid = (self.top + self.base) / 2
        v = (self.y - mid) / ((self.base - self.top) / 2)
        outline = u**2 + np.clip(-v, 0, None) ** 2 * 1.2 - 1  # rounded apex, straight sides
        medial = u * (1 if side == "left" else -1)  # -1 medial .. +1 lateral
        floor = self.base - base_shift - dome * (1 - (medial + 0.2) ** 2).clip(0)  # the dome
        inside = np.maximum(outline, (self.y - floor) / 0.05)
        return _soft(inside, 0.04)

    def lateral(self, side: str) -> np.ndarray:
        """Normalised distance from the lung's lateral edge (0 at the edge, 1 medially)."""
        cx = self.centres[side]
        sign = 1 if side == "left" else -1
        return ((cx + sign * self.half_width) - self.x) * sign / (2 * self.half_width)


def draw_radiograph(anatomy: Anatomy, study: Study, size: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Render a frontal chest radiograph phantom.

    Args:
        anatomy: The patient's anatomy.
        study: The findings and acquisition of this radiograph.
        size: Image side in pixels.
        rng: Random generator (texture, lesion placement, noise).

    Returns:
        (size, size) float64 density in [0, 1], bright = dense.
    """
    g = _Geometry(size, anatomy)
    x, y = g.x, g.y
    findings = study.findings
    texture_rng = np.random.default_rng(anatomy.seed)
    # Body wall and abdomen.
    body = _soft(((x - 0.5) / (0.44 * anatomy.size)) ** 2 + ((y - 0.62) / 0.62) ** 2 - 1, 0.03)
    density = 0.5 * body
    # Lungs (atelectasis lifts the hemidiaphragm on its side).
    lungs = {}
    for side in ("right", "left"):
        lift = 0.0
        atel = findings.get("Atelectasis")
        if atel and atel["side"] in (side, "both"):
            lift = {"mild": 0.015, "moderate": 0.035, "severe": 0.06}[atel["severity"]]
        lungs[side] = g.lung(side, lift, anatomy.dome) * body
    lung_any = np.maximum(lungs["right"], lungs["left"])
    density = density - 0.38 * lung_any
    # Vessel markings: branching texture, dense at the hila, fading laterally.
    vessels = np.abs(_smooth_noise(texture_rng, (size, size), size / 60))
    vessels = (vessels < 0.35).astype(np.float64)  # thin ridges
    hilar = np.zeros_like(x)
    for side in ("right", "left"):
        hilar = np.maximum(hilar, np.clip(g.lateral(side), 0, 1) * lungs[side])
    markings = 0.1 * vessels * hilar**0.6
    ptx = findings.get("Pneumothorax")
    ptx_band = np.zeros_like(x)
    if ptx:
        width = {"mild": 0.14, "moderate": 0.25, "severe": 0.4}[ptx["severity"]]
        for side in ("right", "left") if ptx["side"] == "both" else (ptx["side"],):
            apical = np.clip((g.base - y) / (g.base - g.top), 0, 1) ** 0.5
            edge = width * (0.55 + 0.45 * apical)  # widest at the apex
            ptx_band = np.maximum(ptx_band, lungs[side] * _soft(g.lateral(side) - edge, 0.01))
            line = np.exp(-((g.lateral(side) - edge) / 0.012) ** 2) * lungs[side]
            density = density + 0.2 * line  # the visceral pleural line
    density = density + markings * (1 - ptx_band) - 0.1 * ptx_band
    # Mediastinum, spine, heart.
    spine = _soft(np.abs(x - 0.5) - 0.045, 0.01) * _soft(-(y - 0.08), 0.02)
    density = np.maximum(density, 0.62 * spine)
    thorax = 2 * (g.half_width * 2 + 0.165 * anatomy.size - g.half_width) / 2
    ctr = anatomy.ctr
    cardio = findings.get("Cardiomegaly")
    if cardio:
        ctr = {"mild": 0.56, "moderate": 0.62, "severe": 0.68}[cardio["severity"]]
        ctr += float(rng.uniform(-0.015, 0.015))
    heart_width = ctr * 2 * thorax
    heart_top = g.base - 0.22
    heart_cx = 0.5 + heart_width * 0.12  # two thirds of the heart lie left of midline
    heart = _soft(((x - heart_cx) / (heart_width / 2)) ** 2
                  + ((y - (g.base - 0.05)) / (g.base - 0.05 - heart_top)) ** 2 - 1, 0.03)
    density = np.maximum(density, 0.6 * heart * body)
    # Ribs and clavicles (added over everything inside the body).
    ribs = np.zeros_like(x)
    for k in range(9):
        y0 = g.top + 0.02 + k * (g.base - g.top) / 9.5
        for side in ("right", "left"):
            u = (x - g.centres[side]) / (g.half_width * 1.3)
            curve = y0 + 0.06 * u**2 - 0.02 * u * (1 if side == "left" else -1)
            ribs = np.maximum(ribs, np.exp(-((y - curve) / 0.009) ** 2) * (np.abs(u) < 1.05))
    density = density + 0.09 * ribs * body
    for sign in (-1, 1):  # the right and left clavicles
        x0, x1 = 0.5 + sign * 0.05, 0.5 + sign * 0.3 * anatomy.size
        t = np.clip((x - x0) / (x1 - x0), 0, 1)
        curve = 0.16 - 0.05 * t + 0.03 * np.sin(np.pi * t)
        on = ((x - x0) * sign > 0) & ((x - x1) * sign < 0)
        density = density + 0.2 * np.exp(-((y - curve) / 0.014) ** 2) * on
    # Parenchymal findings.
    effusion = findings.get("Pleural Effusion")
    if effusion:
        height = {"mild": 0.07, "moderate": 0.16, "severe": 0.28}[effusion["severity"]]
        for side in ("right", "left") if effusion["side"] == "both" else (effusion["side"],):
            level = g.base - height - 0.18 * height / 0.16 * (1 - g.lateral(side)).clip(0, 1) ** 2
            fluid = _soft(level - y, 0.012) * _soft(np.abs(x - g.centres[side])
                                                    - g.half_width * 1.08, 0.01) * body
            density = np.maximum(density, 0.52 * fluid + density * (1 - fluid))
    consolidation = findings.get("Consolidation")
    if consolidation:
        side = consolidation["side"] if consolidation["side"] != "both" else "right"
        radius = {"mild": 0.06, "moderate": 0.09, "severe": 0.12}[consolidation["severity"]]
        cy = float(rng.uniform(g.top + 0.15, g.base - 0.1))
        cx = g.centres[side] + float(rng.uniform(-0.3, 0.3)) * g.half_width
        patch = _smooth_noise(rng, (size, size), size / 40) * 0.35
        region = _soft(np.hypot(x - cx, y - cy) / radius - 1 + patch, 0.15) * lungs[side]
        bronchi = (np.abs(_smooth_noise(rng, (size, size), size / 50)) < 0.12) * region
        density = density + 0.3 * region - 0.12 * bronchi * (radius > 0.07)
    lesion = findings.get("Lung Lesion")
    if lesion:
        side = lesion["side"] if lesion["side"] != "both" else "left"
        radius = {"mild": 0.025, "moderate": 0.04, "severe": 0.065}[lesion["severity"]]
        cy = float(rng.uniform(g.top + 0.1, g.base - 0.15))
        cx = g.centres[side] + float(rng.uniform(-0.4, 0.4)) * g.half_width
        nodule = _soft(np.hypot(x - cx, y - cy) - radius, 0.004)
        density = density + 0.32 * nodule
    atel = findings.get("Atelectasis")
    if atel:
        for side in ("right", "left") if atel["side"] == "both" else (atel["side"],):
            thick = {"mild": 0.012, "moderate": 0.02, "severe": 0.03}[atel["severity"]]
            cy = g.base - 0.1 - float(rng.uniform(0, 0.05))
            tilt = float(rng.uniform(-0.15, 0.15))
            band = np.exp(-((y - cy - tilt * (x - g.centres[side])) / thick) ** 2) * lungs[side]
            density = density + 0.28 * band
    # Acquisition: rotation, blur, exposure, noise.
    density = ndimage.rotate(density, study.rotation, reshape=False, order=1, mode="nearest")
    density = ndimage.gaussian_filter(density, study.blur)
    density = np.clip(density, 0, None)
    density = np.clip(study.contrast * density, 0, 1.2) ** study.gamma
    density = density + study.noise * rng.standard_normal(density.shape)
    return np.clip(density / 1.2, 0, 1)
