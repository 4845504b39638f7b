"""H&E tile transforms: what training and inference do to a tile before the model.

Built on :mod:`core.transforms` (dictionary transforms, seeded random transforms) and the
stain transforms of :mod:`domains.pathology.stain`. What is about histology tiles:

- :func:`prepare` — the per-sample transform training *and* inference use: resize the
  whole [0, 1] RGB tile to the model's input side (a tile is one field of view; a larger
  image is tiled by :class:`core.inference.LoadedRun`), optionally Macenko-normalise its
  stain (the model config's ``extra.stain_normalisation``), then standardise per RGB
  channel with the model config's statistics;
- :func:`training_augment` — what only training adds, on the resized [0, 1] tile: H&E
  stain perturbation in HED space (:class:`~domains.pathology.stain.RandomHEStain`; stain
  varies between sites, so it is the augmentation that matters) and the eight dihedral
  symmetries (:class:`core.transforms.RandomFlipRotate`; histology has no up or left).

Resizing comes first so that stain estimation and augmentation work on the small tile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from core.model_input import input_size
from core.transforms import Compose, NormalizeChannels, RandomFlipRotate, ResizeImage

#: RGB statistics of [0, 1] H&E tiles (used when a model config gives none).
DEFAULT_NORMALISATION = {"mean": [0.70, 0.53, 0.69], "std": [0.17, 0.20, 0.15]}
STAIN_NORMALISATIONS = (None, "macenko")


def stain_normalisation(model_extra: Mapping[str, Any]) -> str | None:
    """The model's stain normalisation (``None`` or ``"macenko"``), checked."""
    value = model_extra.get("stain_normalisation")
    if value not in STAIN_NORMALISATIONS:
        raise ValueError(f"model config extra.stain_normalisation must be one of "
                         f"{STAIN_NORMALISATIONS}, got {value!r}")
    return value


def standardise(model_extra: Mapping[str, Any]) -> NormalizeChannels:
    """Per-channel standardisation with the model config's RGB statistics."""
    stats = {**DEFAULT_NORMALISATION, **(model_extra.get("normalisation") or {})}
    mean = np.broadcast_to(np.asarray(stats["mean"], dtype=np.float32), (3,)).copy()
    std = np.broadcast_to(np.asarray(stats["std"], dtype=np.float32), (3,)).copy()
    return NormalizeChannels(mean, std)


class ClampUnit:
    """Clamp ``sample["image"]`` to [0, 1] (bilinear resizing and stain maths overshoot)."""

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample with its image clamped."""
        return {**sample, "image": sample["image"].float().clamp(0, 1)}


def macenko() -> Any:
    """Macenko normalisation to the card's stored reference stain."""
    from domains.pathology.stain import MacenkoNormalize

    return MacenkoNormalize()


def prepare(model_extra: Mapping[str, Any], stain: str | None | bool = True,
            augment: Any = None) -> Compose:
    """The deterministic per-sample transform of a model: resize, (stain), standardise.

    Args:
        model_extra: The model config's ``extra`` (``input_size``, ``normalisation``,
            ``stain_normalisation``).
        stain: ``True``: the model's own stain normalisation; ``None``/``False``: none;
            ``"macenko"``: Macenko whatever the model says (evaluation's comparison).
        augment: A transform of the resized [0, 1] tile applied before standardising
            (training: :func:`training_augment`).

    Returns:
        A transform of ``{"image": (3, H, W) in [0, 1]}`` to ``(3, S, S)`` standardised.
    """
    chosen = stain_normalisation(model_extra) if stain is True else (stain or None)
    if chosen not in STAIN_NORMALISATIONS:
        raise ValueError(f"stain normalisation must be one of {STAIN_NORMALISATIONS}, got "
                         f"{chosen!r}")
    return Compose(ResizeImage(input_size(model_extra)), ClampUnit(),
                   macenko() if chosen == "macenko" else None, augment,
                   standardise(model_extra))


def training_augment(seed: int = 0, stain_scale: float = 0.05, stain_shift: float = 0.01,
                     flips: bool = True) -> Compose:
    """The random part of the training transform (on the resized [0, 1] tile).

    Args:
        seed: Seed of the random transforms.
        stain_scale: HED scale jitter ``alpha`` (Tellez et al.; 0 with ``stain_shift`` 0:
            no stain augmentation).
        stain_shift: HED shift jitter ``beta``.
        flips: Random flips and quarter turns.

    Returns:
        H&E stain perturbation, then a dihedral symmetry.
    """
    stain = None
    if stain_scale > 0 or stain_shift > 0:
        from domains.pathology.stain import RandomHEStain

        stain = RandomHEStain(alpha=stain_scale, beta=stain_shift, seed=seed)
    return Compose(stain, ClampUnit() if stain is not None else None,
                   RandomFlipRotate(seed=seed + 1) if flips else None)


def class_index(label: torch.Tensor | np.ndarray) -> np.ndarray:
    """(N,) class index of one-hot rows, -1 where a row has no class (unknown).

    Args:
        label: (N, C) one-hot (all zero when unknown).
    """
    array = np.asarray(label, dtype=np.float64)
    index = array.argmax(1)
    index[array.max(1) <= 0] = -1
    return index
