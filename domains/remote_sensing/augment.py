"""Speckle and cloud augmentations for Sentinel-1/2 training, and ENL degradation for evaluation.

Every real Sentinel-1 scene is speckled and many Sentinel-2 scenes are cloudy; a model
trained on clean scenes has seen neither. These dictionary transforms act on
``sample["image"]`` *before* normalisation, in physical units:

* :class:`RandomSpeckle` (S1, sigma0 in dB): to linear power, times Gamma(L, 1/L)
  speckle with L drawn in a range, back to dB. Multiplying independent unit-mean Gamma
  speckles multiplies their ``1 + 1/L``: a scene of L0 looks speckled with L comes out
  with ``1 / ENL = (1 + 1/L0)(1 + 1/L) - 1``.
* :class:`RandomClouds` (S2 reflectance, or digital numbers with ``scale``): with
  probability ``p`` a smooth cloud field thresholded to a drawn cover (soft edges), a
  cloud spectrum (the ``synthetic`` card's) blended in by opacity, and the cloud's shadow
  (the opacity displaced in a random direction) darkening the surface.
* :class:`SpeckleToLooks` (evaluation, deterministic): brings S1 scenes of a known number
  of looks down to a target one (ENL 1: single-look) with speckle seeded by the scene id,
  so every model sees the same degraded scenes.

The random ones are :class:`core.transforms.RandomTransform` subclasses: all draws come
from the transform's torch generator (NumPy draws are seeded from it), which a training
loader reseeds per (seed, epoch, pass, sample), so runs repeat whatever the workers.
Non-finite values (nodata) stay non-finite.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from core.transforms import RandomTransform, derive_seed
from domains.remote_sensing import cards
from domains.remote_sensing.synthetic.fields import smooth_noise

#: Soft-edge width and SCL-like opacity threshold of augmented clouds (as the generator's).
CLOUD_EDGE = 0.35
CLOUD_THRESHOLD = 0.3


def _db_to_linear(image: torch.Tensor) -> torch.Tensor:
    return torch.pow(10.0, image / 10.0)


def _linear_to_db(linear: torch.Tensor) -> torch.Tensor:
    return 10.0 * torch.log10(torch.clamp(linear, min=1e-6))


def added_looks(target: float, source: float) -> float:
    """Looks of the speckle that brings a scene of ``source`` looks to ``target`` looks.

    From ``(1 + 1/target) = (1 + 1/source)(1 + 1/L)`` for independent unit-mean speckles.

    Args:
        target: The wanted equivalent number of looks (smaller than ``source``).
        source: The scene's equivalent number of looks (``inf``: speckle-free).

    Returns:
        L, the looks of the speckle to multiply in.

    Raises:
        ValueError: ``target`` is not below ``source`` (speckle cannot be removed).
    """
    if not 0 < target < source:
        raise ValueError(f"cannot go from {source} looks to {target}: the target must be "
                         f"positive and below the scene's")
    excess = (1.0 + 1.0 / target) / (1.0 + 1.0 / source) - 1.0
    return 1.0 / excess


def _numpy_rng(generator: torch.Generator) -> np.random.Generator:
    """A NumPy generator seeded from the torch generator (one draw), for Gamma and fields."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    return np.random.default_rng(seed)


def speckle(image: torch.Tensor, looks: float, rng: np.random.Generator) -> torch.Tensor:
    """Multiply Gamma(looks, 1/looks) speckle into a dB image (linear power), NaN kept.

    Args:
        image: (C, H, W) sigma0 in dB.
        looks: Equivalent number of looks of the speckle.
        rng: NumPy generator of the draws.

    Returns:
        (C, H, W) speckled sigma0 in dB (float32).
    """
    gamma = torch.from_numpy(rng.gamma(looks, 1.0 / looks, size=tuple(image.shape))
                             .astype(np.float32))  # (C, H, W), mean 1, variance 1/looks
    out = _linear_to_db(_db_to_linear(image.float()) * gamma)
    return torch.where(torch.isfinite(image), out, image.float())


class RandomSpeckle(RandomTransform):
    """Extra multiplicative speckle on Sentinel-1 scenes (sigma0 in dB).

    With probability ``p``: L ~ U(looks[0], looks[1]), image = dB(linear x Gamma(L, 1/L)).

    Args:
        p: Probability of speckling a scene.
        looks: Range of the speckle's equivalent number of looks (smaller: stronger).
        seed: Seed of the transform's generator.
    """

    def __init__(self, p: float = 0.8, looks: Sequence[float] = (1.0, 4.0),
                 seed: int = 0) -> None:
        super().__init__(seed)
        if not 0 < looks[0] <= looks[1]:
            raise ValueError(f"looks must be a range of positive numbers, got {looks}")
        self.p, self.looks = float(p), (float(looks[0]), float(looks[1]))

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample, possibly with its image speckled."""
        draw = torch.rand(2, generator=self.generator)
        if draw[0] >= self.p:
            return sample
        looks = self.looks[0] + float(draw[1]) * (self.looks[1] - self.looks[0])
        return {**sample, "image": speckle(sample["image"], looks,
                                           _numpy_rng(self.generator))}


class RandomClouds(RandomTransform):
    """A cloud and its shadow over Sentinel-2 scenes (reflectance x ``scale``).

    With probability ``p``: a smooth field (correlation ``corr`` x the scene side) is
    thresholded to a cover ~ U(cover), opacity rising over soft edges; the shadow is the
    opacity rolled by ``shadow_shift`` x the side in a random direction and darkens the
    surface by U(0.45, 0.7); the cloud (the ``synthetic`` card's cloud spectrum, x U(0.85,
    1.15)) is blended in by opacity. Labels are untouched: they describe the surface.

    Args:
        bands: The scene's band names (to pick the cloud spectrum).
        p: Probability of clouding a scene.
        cover: Range of the cloud cover (fraction of the scene at opacity >= 0.3).
        scale: Image units per reflectance unit (1 for reflectance, 10000 for DN).
        corr: Cloud-field correlation length as a fraction of the scene side.
        shadow_shift: Range of the shadow's displacement as a fraction of the side.
        seed: Seed of the transform's generator.
    """

    def __init__(self, bands: Sequence[str], p: float = 0.3,
                 cover: Sequence[float] = (0.05, 0.5), scale: float = 1.0,
                 corr: float = 0.1, shadow_shift: Sequence[float] = (0.05, 0.3),
                 seed: int = 0) -> None:
        super().__init__(seed)
        all_bands = cards.s2_bands("L1C")
        unknown = [b for b in bands if b not in all_bands]
        if unknown:
            raise ValueError(f"unknown Sentinel-2 bands {unknown}; known: {all_bands}")
        spectrum = cards.card("synthetic")["cloud_reflectance"]
        self.cloud = torch.tensor([spectrum[all_bands.index(b)] for b in bands],
                                  dtype=torch.float32)[:, None, None]  # (C, 1, 1)
        self.p, self.cover, self.scale = float(p), (float(cover[0]), float(cover[1])), scale
        self.corr, self.shadow_shift = corr, (float(shadow_shift[0]), float(shadow_shift[1]))

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample, possibly with a cloud and its shadow over its image."""
        draw = torch.rand(6, generator=self.generator)
        if draw[0] >= self.p:
            return sample
        image = sample["image"].float()  # (C, H, W)
        height, width = image.shape[-2:]
        cover = self.cover[0] + float(draw[1]) * (self.cover[1] - self.cover[0])
        field = smooth_noise(_numpy_rng(self.generator), (1, height, width),
                             corr_px=max(1.0, self.corr * min(height, width)))[0]  # (H, W)
        cut = np.quantile(field, 1.0 - cover)
        opacity = torch.from_numpy(np.clip((field - cut) / CLOUD_EDGE + CLOUD_THRESHOLD,
                                           0.0, 1.0))  # (H, W)
        angle = 2 * np.pi * float(draw[2])
        length = (self.shadow_shift[0] + float(draw[3])
                  * (self.shadow_shift[1] - self.shadow_shift[0])) * min(height, width)
        shift = (int(round(length * np.cos(angle))), int(round(length * np.sin(angle))))
        shadow = torch.roll(opacity, shift, dims=(0, 1))  # (H, W)
        darkening = 0.45 + 0.25 * float(draw[4])
        brightness = 0.85 + 0.3 * float(draw[5])
        surface = image / self.scale * (1.0 - darkening * shadow)  # (C, H, W) reflectance
        cloudy = surface * (1.0 - opacity) + brightness * self.cloud * opacity
        return {**sample, "image": cloudy * self.scale}


class SpeckleToLooks:
    """Deterministic speckle bringing S1 scenes (dB) from ``source`` looks to ``target``.

    The draws of a scene come from ``(seed, crc32(scene id))``, so every model and every
    run sees the same degraded scene, whatever the batch or the order.

    Args:
        target: Wanted equivalent number of looks (1: single-look).
        source: The scenes' equivalent number of looks (IW GRD: 4.4).
        seed: Seed mixed with each scene's id.
    """

    def __init__(self, target: float = 1.0, source: float = 4.4, seed: int = 0) -> None:
        self.target, self.source, self.seed = float(target), float(source), int(seed)
        self.looks = added_looks(self.target, self.source)

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample with its image degraded to ``target`` looks."""
        key = zlib.crc32(str(sample.get("id", sample.get("path", ""))).encode())
        rng = np.random.default_rng(derive_seed(self.seed, key))
        return {**sample, "image": speckle(sample["image"], self.looks, rng)}
