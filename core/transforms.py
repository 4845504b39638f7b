"""Dictionary transforms every domain shares (MONAI style: a sample dict in, a new one out).

Per-channel standardisation, resizing to the model's input side and dihedral
augmentation act on ``sample["image"]`` (C, H, W). They are used the same way by
training (through a domain's data module) and by inference (through
:class:`core.inference.LoadedRun`), so a model sees its inputs exactly as in training.
Domains keep their own statistics and caption transforms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


class NormalizeChannels:
    """Standardise ``sample["image"]`` per channel: ``(x / scale - mean) / std``; NaN -> 0.

    Non-finite values (nodata) become 0, the channel mean: no information.

    Args:
        mean: Per-channel mean (after dividing by ``scale``).
        std: Per-channel standard deviation.
        scale: Divisor applied first (e.g. 10000 for Sentinel-2 digital numbers).
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, scale: float = 1.0) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32)[:, None, None]  # (C, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32)[:, None, None]  # (C, 1, 1)
        self.scale = scale

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample with its image standardised."""
        image = (sample["image"].float() / self.scale - self.mean) / self.std  # (C, H, W)
        return {**sample, "image": torch.nan_to_num(image, nan=0.0, posinf=0.0, neginf=0.0)}


class ResizeImage:
    """Resize ``sample["image"]`` to ``size`` x ``size`` (bilinear, antialiased when shrinking).

    Applied after normalisation, so nodata (already 0) does not spread.

    Args:
        size: Output side in pixels.
    """

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample with its image resized."""
        image = sample["image"]  # (C, H, W)
        if tuple(image.shape[-2:]) == (self.size, self.size):
            return sample
        shrink = image.shape[-1] > self.size or image.shape[-2] > self.size
        resized = F.interpolate(image[None].float(), size=(self.size, self.size),
                                mode="bilinear", align_corners=False,
                                antialias=shrink)[0]  # (C, size, size)
        return {**sample, "image": resized}


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


class Compose:
    """Apply dictionary transforms in order (``None`` entries are left out)."""

    def __init__(self, *transforms: Any) -> None:
        self.transforms = [t for t in transforms if t is not None]

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the transformed sample."""
        for transform in self.transforms:
            sample = transform(sample)
        return sample
