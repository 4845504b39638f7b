"""Dictionary transforms for scene samples (MONAI style): normalisation and augmentation."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class NormalizeBands:
    """Standardise ``sample["image"]`` per band: ``(x / scale - mean) / std``; NaN (nodata) -> 0.

    Args:
        mean: Per-band mean (after dividing by ``scale``).
        std: Per-band standard deviation.
        scale: Divisor applied first (10000 for Sentinel-2 digital numbers, 1 for dB).
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, scale: float = 1.0) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32)[:, None, None]  # (C, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32)[:, None, None]  # (C, 1, 1)
        self.scale = scale

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample with its image standardised."""
        image = (sample["image"].float() / self.scale - self.mean) / self.std  # (C, H, W)
        return {**sample, "image": torch.nan_to_num(image, nan=0.0, posinf=0.0, neginf=0.0)}


class RandomFlipRotate:
    """Random horizontal/vertical flips and 90-degree rotations of ``sample["image"]``.

    Args:
        seed: Seed of the transform's own generator (reproducible augmentation).
    """

    def __init__(self, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample with a random dihedral transform applied to its image."""
        image = sample["image"]  # (C, H, W)
        flip, turns = torch.randint(0, 2, (1,), generator=self.generator), torch.randint(
            0, 4, (1,), generator=self.generator)
        if flip.item():
            image = image.flip(-1)
        image = torch.rot90(image, int(turns.item()), dims=(-2, -1))
        return {**sample, "image": image.contiguous()}


class AreaWeightedCaptions:
    """Caption augmentation: sometimes describe only the classes covering enough area.

    With probability ``p`` a threshold t ~ U(min_fraction, max_fraction) is drawn and the
    caption (and the multi-hot ``label``) keep only the land-cover classes covering at
    least t of the scene — the largest class always stays, crisis tags always stay. A
    class covering most of a scene is thus named in nearly every caption, a sliver rarely,
    which teaches the image embedding what dominates the scene. Samples without area
    fractions keep their caption.

    Args:
        p: Probability of rewriting a caption.
        min_fraction: Lower bound of the threshold.
        max_fraction: Upper bound of the threshold.
        seed: Seed of the transform's generator.
    """

    def __init__(self, p: float = 0.5, min_fraction: float = 0.05, max_fraction: float = 0.5,
                 seed: int = 0) -> None:
        from domains.remote_sensing import cards

        self.p, self.low, self.high = p, min_fraction, max_fraction
        self.classes = cards.land_cover_classes()
        self.vocabulary = cards.label_vocabulary()
        self.caption_for = cards.caption_for
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample, possibly with a shorter caption and matching labels."""
        fractions = sample.get("fractions")
        names = [n for n in sample.get("label_names", "").split("; ") if n]
        draw = torch.rand(2, generator=self.generator)
        if fractions is None or torch.isnan(fractions).any() or not names or draw[0] >= self.p:
            return sample
        threshold = self.low + float(draw[1]) * (self.high - self.low)
        largest = self.classes[int(fractions.argmax())]
        kept = [n for n in names if n not in self.classes or n == largest
                or fractions[self.classes.index(n)] >= threshold]
        label = torch.zeros(len(self.vocabulary))
        for name in kept:
            label[self.vocabulary.index(name)] = 1.0
        return {**sample, "caption": self.caption_for(kept), "label": label,
                "label_names": "; ".join(kept)}


class Compose:
    """Apply dictionary transforms in order."""

    def __init__(self, *transforms: Any) -> None:
        self.transforms = [t for t in transforms if t is not None]

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the transformed sample."""
        for transform in self.transforms:
            sample = transform(sample)
        return sample
