"""Dictionary transforms every domain shares (MONAI style: a sample dict in, a new one out).

Per-channel standardisation, resizing to the model's input side and dihedral
augmentation act on ``sample["image"]`` (C, H, W). They are used the same way by
training (through a domain's data module) and by inference (through
:class:`core.inference.LoadedRun`), so a model sees its inputs exactly as in training.
Domains keep their own statistics and caption transforms.

Random transforms (:class:`RandomTransform`) take a seed, MONAI style, and draw from
their own generator. A training loader restarts that generator for every sample from
``(seed, epoch, pass, sample index)`` (:meth:`RandomTransform.reseed`, called through
:meth:`Compose.reseed` by :class:`core.data.SeededSamples`), so the draws of a sample
depend neither on the DataLoader worker that handles it nor on the number of workers,
change from epoch to epoch, and are the same again when a run resumes at that epoch.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def derive_seed(*values: int) -> int:
    """A 63-bit seed mixed from integers (e.g. run seed, salt, epoch, pass, sample index).

    Nearby inputs give unrelated seeds (NumPy's ``SeedSequence`` hashing), so streams of
    consecutive samples or epochs do not overlap the way ``seed + index`` streams would.

    Args:
        *values: Integers of any sign and size.

    Returns:
        A seed for ``torch.Generator.manual_seed``.
    """
    words = np.random.SeedSequence([int(v) % 2**64 for v in values]).generate_state(2)
    return (int(words[0]) | int(words[1]) << 32) & (2**63 - 1)


class RandomTransform:
    """Base of random dictionary transforms: a seed and the generator every draw uses.

    Without :meth:`reseed` the draws follow one sequence from ``seed`` (reproducible in
    one process). A training loader calls :meth:`reseed` before every sample instead, so
    that each sample's draws come from its own stream.

    Args:
        seed: Seed of the transform's own generator (reproducible augmentation).
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)

    def set_random_state(self, seed: int) -> RandomTransform:
        """Restart the generator from ``seed`` (as MONAI's ``Randomizable``); returns self."""
        self.generator.manual_seed(int(seed) % 2**63)
        return self

    def reseed(self, *keys: int) -> None:
        """Draw the next sample from the stream of ``(seed, transform class, *keys)``.

        Args:
            *keys: What identifies the sample's draws, e.g. ``(epoch, pass, index)``.
                The class name is mixed in, so two transforms built with one run seed
                still draw independently.
        """
        salt = zlib.crc32(type(self).__qualname__.encode())
        self.generator.manual_seed(derive_seed(self.seed, salt, *keys))


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


class RandomFlipRotate(RandomTransform):
    """Random horizontal/vertical flips and 90-degree rotations of ``sample["image"]``.

    Each call draws a flip (p = 0.5) and a number of quarter turns (0-3): one of the
    eight symmetries of the square, uniformly.

    Args:
        seed: Seed of the transform's own generator (reproducible augmentation).
    """

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

    def reseed(self, *keys: int) -> None:
        """Reseed every random transform inside for one sample (:meth:`RandomTransform.reseed`)."""
        for transform in self.transforms:
            if callable(getattr(transform, "reseed", None)):
                transform.reseed(*keys)

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the transformed sample."""
        for transform in self.transforms:
            sample = transform(sample)
        return sample
