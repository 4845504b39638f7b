"""A trained pathology run loaded for inference: tiles prepared exactly as in training.

Built on :class:`core.inference.LoadedRun` (loading without unpickling, fingerprint,
batched embedding). What this adds: tiles read from PNG / JPEG / TIFF with
:func:`domains.pathology.tile_io.read_tile` (RGB, checked) or taken as arrays
(``(H, W, 3)`` uint8 as image libraries give them, or ``(3, H, W)`` in [0, 1]), and
prepared with the model's own :func:`~domains.pathology.transforms.prepare` (whole-tile
resize, the model's stain normalisation, RGB standardisation) — the transform training
used. Shared by the classifier and evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from core.image_text_inference import IMAGE_TOWER, ImageTextRun
from domains.pathology.transforms import prepare

Tile = str | Path | np.ndarray | torch.Tensor


def as_tile(image: Tile) -> torch.Tensor:
    """A tile as a (3, H, W) float32 RGB tensor in [0, 1].

    Args:
        image: A PNG / JPEG / TIFF path, an (H, W, 3) array (uint8 0-255, or floats in
            [0, 1]), or a (3, H, W) array / tensor in [0, 1].

    Returns:
        (3, H, W) float32.

    Raises:
        ValueError: Naming the problem (shape, values), or the file when unreadable.
    """
    if isinstance(image, str | Path):
        from domains.pathology.tile_io import read_tile

        return torch.as_tensor(np.asarray(read_tile(Path(image)), dtype=np.float32))
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 3 and array.shape[0] != 3:
        array = np.moveaxis(array, -1, 0)  # (H, W, 3) -> (3, H, W)
    if array.ndim != 3 or array.shape[0] != 3:
        raise ValueError(f"a tile must be RGB, (H, W, 3) or (3, H, W); got shape {array.shape}")
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError("the tile holds non-finite values")
    if array.min() < 0 or array.max() > 1:
        raise ValueError(f"a float tile must lie in [0, 1], got [{array.min():.3g}, "
                         f"{array.max():.3g}] (pass uint8 arrays for 0-255 pixels)")
    return torch.from_numpy(np.ascontiguousarray(array))


@dataclass
class TissueRun(ImageTextRun):
    """A trained tile <-> caption model ready for inference."""

    domain: ClassVar[str] = "pathology"
    require_domain: ClassVar[bool] = True
    image_transform = staticmethod(prepare)

    @property
    def input_size(self) -> int:
        """The side tiles are resized to."""
        return int(self.model.config.extra["input_size"])

    def embed_tiles(self, tiles: Sequence[Tile], batch_size: int = 64) -> torch.Tensor:
        """(N, D) normalised embeddings of tiles (paths or arrays), each resized whole."""
        prepared = [self.prepare(IMAGE_TOWER, as_tile(tile)) for tile in tiles]
        return self.embed_images(IMAGE_TOWER, prepared, batch_size=batch_size)
