"""A trained radiology run loaded for inference: radiographs prepared exactly as in training.

Built on :class:`core.inference.LoadedRun` (loading without unpickling, fingerprint,
batched embedding). What this adds: radiographs read from DICOM / PNG / JPEG with
:func:`domains.radiology.image_io.read_radiograph` (modality LUT, VOI LUT / window,
MONOCHROME1 inverted) or taken as arrays, and prepared with the model's own
:func:`~domains.radiology.transforms.prepare` (whole-image resize, CheXzero
standardisation) — the transform training used. Shared by the classifier and evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from core.image_text_inference import IMAGE_TOWER, ImageTextRun
from domains.radiology.transforms import prepare


def as_radiograph(image: str | Path | np.ndarray | torch.Tensor) -> torch.Tensor:
    """A radiograph as a (1, H, W) float32 tensor in [0, 1], bright = dense.

    Args:
        image: A DICOM / PNG / JPEG path (read with the standard's LUTs), or an (H, W) /
            (1, H, W) array already in display orientation; arrays outside [0, 1] (raw
            8/16-bit pixels) are min-max scaled.

    Returns:
        (1, H, W) float32.
    """
    if isinstance(image, str | Path):
        from domains.radiology.image_io import read_radiograph

        array = np.asarray(read_radiograph(Path(image)), dtype=np.float32)
    else:
        array = image.detach().cpu().float().numpy() if isinstance(image, torch.Tensor) \
            else np.asarray(image, dtype=np.float32)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"a radiograph must be (H, W) or (1, H, W), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("the radiograph holds non-finite values")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 1:
        array = (array - low) / (high - low) if high > low else np.zeros_like(array)
    return torch.from_numpy(np.ascontiguousarray(array))[None]  # (1, H, W)


@dataclass
class ChestXrayRun(ImageTextRun):
    """A trained radiograph <-> report model ready for inference."""

    domain: ClassVar[str] = "radiology"
    image_transform = staticmethod(prepare)

    def embed_radiographs(self, images: list[str | Path | np.ndarray | torch.Tensor],
                          batch_size: int = 64) -> torch.Tensor:
        """(N, D) normalised embeddings of radiographs (paths or arrays)."""
        prepared = [self.prepare(IMAGE_TOWER, as_radiograph(image)) for image in images]
        return self.embed_images(IMAGE_TOWER, prepared, batch_size=batch_size)
