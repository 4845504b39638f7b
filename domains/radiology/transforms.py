"""Radiograph and report transforms: what training and inference do to a study before the model.

Built on :mod:`core.transforms` (dictionary transforms, seeded random transforms). What is
about radiographs and reports:

- :func:`prepare` — the per-sample transform training *and* inference use: resize the whole
  radiograph to the model's input side (never tiled: a chest film is one field of view),
  then standardise with the model config's statistics (CheXzero's mean/std on windowed
  [0, 1] images by default);
- :class:`RandomExposure` — exposure/contrast jitter and a small shift (no flips: left and
  right matter in a chest report);
- :class:`ReportSentences` — report augmentation: a training report keeps a random
  subset of its sentences, so single statements align with images too;
- :class:`TrainingTargets` — the label vector (1 / 0 / -1 uncertain / NaN not mentioned)
  as soft-target rows: 1, 0, ``uncertain`` and 0 (CheXpert's U-policies as one number).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from core.model_input import input_size
from core.towers.text import split_sentences
from core.transforms import Compose, NormalizeChannels, RandomTransform, ResizeImage

DEFAULT_NORMALISATION = {"mean": 0.398, "std": 0.327}


def prepare(model_extra: Mapping[str, Any]) -> Compose:
    """The deterministic per-sample transform of a model: resize, then standardise.

    Args:
        model_extra: The model config's ``extra`` (``input_size``, ``normalisation``).

    Returns:
        A transform of ``{"image": (1, H, W) in [0, 1]}`` to ``(1, S, S)`` standardised.
    """
    stats = {**DEFAULT_NORMALISATION, **(model_extra.get("normalisation") or {})}
    return Compose(ResizeImage(input_size(model_extra)),
                   NormalizeChannels(np.array([stats["mean"]], dtype=np.float32),
                                     np.array([stats["std"]], dtype=np.float32)))


class RandomExposure(RandomTransform):
    """Exposure jitter (gamma 0.8-1.25, contrast +-10 %) and a shift of up to ``shift`` px.

    Applied to the [0, 1] image before :func:`prepare`.

    Args:
        shift: Largest translation in pixels (edge pixels repeat).
        seed: Seed of the transform's generator.
    """

    def __init__(self, shift: int = 4, seed: int = 0) -> None:
        super().__init__(seed)
        self.shift = shift

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample with its image jittered."""
        image = sample["image"].float().clamp(0, 1)  # (1, H, W)
        draws = torch.rand(4, generator=self.generator)
        gamma = float(0.8 * (1.25 / 0.8) ** draws[0])
        contrast = 0.9 + 0.2 * float(draws[1])
        image = ((image**gamma - 0.5) * contrast + 0.5).clamp(0, 1)
        if self.shift:
            dy, dx = (int(round((float(d) * 2 - 1) * self.shift)) for d in draws[2:])
            padded = torch.nn.functional.pad(image[None], (self.shift,) * 4,
                                             mode="replicate")[0]  # (1, H+2s, W+2s)
            top, left = self.shift + dy, self.shift + dx
            image = padded[:, top:top + image.shape[1], left:left + image.shape[2]]
        return {**sample, "image": image}


class ReportSentences(RandomTransform):
    """With probability ``p``, a report keeps a random non-empty subset of its sentences.

    Args:
        p: Chance of rewriting a report (0 disables it).
        seed: Seed of the transform's generator.
    """

    def __init__(self, p: float = 0.5, seed: int = 0) -> None:
        super().__init__(seed)
        self.p = p

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample with its caption possibly shortened."""
        if self.p <= 0 or float(torch.rand(1, generator=self.generator)) >= self.p:
            return sample
        sentences = split_sentences(sample["caption"])
        if len(sentences) < 2:
            return sample
        keep = torch.rand(len(sentences), generator=self.generator) < 0.5
        if not keep.any():
            keep[int(torch.randint(len(sentences), (1,), generator=self.generator))] = True
        return {**sample, "caption": " ".join(s for s, k in zip(sentences, keep.tolist(),
                                                               strict=True) if k)}


class TrainingTargets:
    """Label rows for the soft-target loss: 1 -> 1, 0 -> 0, -1 -> ``uncertain``, NaN -> 0.

    Args:
        uncertain: Target of an uncertain finding (0: U-Zeros, 1: U-Ones, 0.5 between).
    """

    def __init__(self, uncertain: float = 0.5) -> None:
        self.uncertain = float(uncertain)

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample with ``label`` as (F,) float targets without NaN."""
        label = torch.as_tensor(sample["label"], dtype=torch.float32)  # (F,)
        target = torch.where(label == 1, 1.0, torch.where(label == -1, self.uncertain, 0.0))
        return {**sample, "label": target}


def finding_sets(labels: torch.Tensor | np.ndarray) -> np.ndarray:
    """Which findings a study has, for retrieval hits: positive or uncertain (N, F) bool.

    Args:
        labels: (N, F) with 1 / 0 / -1 / NaN.
    """
    array = np.asarray(labels, dtype=np.float64)
    return (array == 1) | (array == -1)
