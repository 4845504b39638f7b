"""A trained run loaded for inference, and batched embedding of inputs of any size.

Every domain's classifier, index builder and evaluation embeds inputs the same way:

- :class:`LoadedRun` loads a variant of a run folder (safetensors weights + JSON
  config, never unpickled), fingerprints it (what an index was built with), and
  prepares raw images with the same per-sample transforms training used (a domain
  passes them in; see :mod:`core.transforms`);
- :meth:`LoadedRun.embed_images` embeds images of any size: larger than the model's
  input they are cut into model-size tiles (overlapping where the side is not a
  multiple) whose normalised embeddings are averaged and re-normalised; smaller ones
  are resized up;
- :func:`embed_batches` embeds every batch of a DataLoader (evaluation), keeping the
  fields a metric needs beside the features.

What this adds on top of :func:`core.checkpoint.load_run`: variants, fingerprints,
tiling and batching, written once for every domain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    load_run,
    read_run_config,
    variant_folder,
)
from core.checksums import sha256_files
from core.model import ContrastiveModel


def run_folder(run: str | Path, variant: str = "main") -> Path:
    """The folder holding a variant's weights: the run folder, or ``companions/<variant>``.

    Raises:
        FileNotFoundError: Naming the folder, when it holds no trained model.
    """
    folder = variant_folder(Path(run), variant)
    if not (folder / CONFIG_FILE).is_file():
        companions = sorted(p.name for p in (Path(run) / "companions").glob("*")) \
            if (Path(run) / "companions").is_dir() else []
        hint = f" (companions here: {', '.join(companions)})" if companions else ""
        raise FileNotFoundError(f"{folder}: no trained model ({CONFIG_FILE} missing); pass a "
                                f"run folder written by a domain's train command{hint}")
    return folder


def run_fingerprint(folder: str | Path) -> str:
    """SHA-256 over a run folder's config and weights (what an index was built with)."""
    return sha256_files([Path(folder) / CONFIG_FILE, Path(folder) / WEIGHTS_FILE])


def tile_starts(length: int, tile: int) -> list[int]:
    """Start offsets of ``ceil(length / tile)`` tiles covering ``length`` (last one flush)."""
    count = max(1, math.ceil(length / tile))
    if count == 1:
        return [0]
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tiles_of(image: torch.Tensor, size: int | None) -> torch.Tensor:
    """Cut a prepared image into model-size tiles.

    Args:
        image: (C, H, W) prepared (normalised) image.
        size: The model's input side (``None``: any size, the image is one tile).

    Returns:
        (T, C, size, size) tiles (T = 1 when the image is not larger than ``size``).
    """
    if size is None:
        return image[None]
    height, width = image.shape[-2:]
    if min(height, width) < size:  # resize up so the short side fits one tile
        factor = size / min(height, width)
        shape = (max(size, round(height * factor)), max(size, round(width * factor)))
        image = F.interpolate(image[None].float(), size=shape, mode="bilinear",
                              align_corners=False)[0]
        height, width = shape
    return torch.stack([image[:, top:top + size, left:left + size]
                        for top in tile_starts(height, size)
                        for left in tile_starts(width, size)])  # (T, C, size, size)


@dataclass
class LoadedRun:
    """A trained model ready for inference.

    Attributes:
        folder: The variant's folder (weights + config).
        model: The model, in eval mode.
        config: The saved run config (``config.json``).
        image_size: Side of the model's input in pixels (``None``: any size).
        fingerprint: SHA-256 of the weights and config.
        transforms: Image tower -> the per-sample transform that prepares a raw image as
            training did (applied to ``{"image": tensor}``).
    """

    folder: Path
    model: ContrastiveModel
    config: dict[str, Any]
    image_size: int | None
    fingerprint: str
    transforms: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = field(
        default_factory=dict)

    @classmethod
    def open(cls, run: str | Path, variant: str = "main", device: str | torch.device = "cpu",
             image_towers: Sequence[str] = ()) -> dict[str, Any]:
        """Load a run's variant; the fields a (domain) subclass completes and passes to ``cls``.

        Args:
            run: The run folder.
            variant: ``main`` or a companion's name.
            device: Where to run the model.
            image_towers: The image towers whose input side is the run's ``image_size``
                (those the model has; they must agree).

        Returns:
            ``folder``, ``model``, ``config``, ``image_size`` and ``fingerprint``.
        """
        folder = run_folder(run, variant)
        model = load_run(folder, device=device)
        present = [t for t in image_towers if t in model.towers]
        sizes = {model.config.towers[t].get("img_size") for t in present}
        if len(sizes) > 1:
            raise ValueError(f"{folder}: image towers differ in img_size {sizes}")
        return {"folder": folder, "model": model, "config": read_run_config(folder),
                "image_size": sizes.pop() if sizes else None,
                "fingerprint": run_fingerprint(folder)}

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return next(self.model.parameters()).device

    @property
    def has_location(self) -> bool:
        """Whether the model has a location tower."""
        return "location" in self.model.towers

    def check_image_tower(self, tower: str) -> None:
        """Raise a clear error when the run cannot prepare and embed images for ``tower``."""
        if tower not in self.transforms or tower not in self.model.towers:
            raise ValueError(f"{self.folder}: this model embeds {', '.join(self.transforms)} "
                             f"images, not {tower}")

    def prepare(self, tower: str, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Prepare a raw image for ``tower`` exactly as training did.

        Args:
            tower: The image tower.
            image: (C, H, W) raw values (NaN where nodata).

        Returns:
            (C, H, W) float32.
        """
        self.check_image_tower(tower)
        tensor = image.float() if isinstance(image, torch.Tensor) else \
            torch.as_tensor(np.asarray(image, dtype=np.float32))
        return self.transforms[tower]({"image": tensor})["image"]

    @torch.no_grad()
    def embed_images(self, tower: str, images: Sequence[torch.Tensor],
                     batch_size: int = 64) -> torch.Tensor:
        """Embed prepared images of any size (tiled and averaged when larger than training).

        Args:
            tower: The image tower to use.
            images: (C, H, W) prepared images.
            batch_size: Tiles per forward pass.

        Returns:
            (N, D) normalised embeddings on the CPU.
        """
        if tower not in self.model.towers:
            raise ValueError(f"{self.folder}: the model has no {tower!r} tower")
        self.model.eval()
        tiles = [tiles_of(image, self.image_size) for image in images]
        owners = torch.cat([torch.full((len(t),), i) for i, t in enumerate(tiles)])  # (T,)
        embedded = torch.zeros(len(images), self.model.embed_dim)  # (N, D) sums
        by_shape: dict[tuple[int, ...], list[int]] = {}  # convolutional models: any size
        flat = [tile for group in tiles for tile in group]
        for position, tile in enumerate(flat):
            by_shape.setdefault(tuple(tile.shape), []).append(position)
        for positions in by_shape.values():
            for start in range(0, len(positions), batch_size):
                chosen = positions[start:start + batch_size]
                batch = torch.stack([flat[p] for p in chosen]).to(self.device)  # (B, C, h, w)
                features = self.model.encode(tower, batch).float().cpu()  # (B, D)
                embedded.index_add_(0, owners[chosen], features)
        return F.normalize(embedded, dim=1)

    @torch.no_grad()
    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """(Q, D) normalised text embeddings on the CPU."""
        self.model.eval()
        return self.model.encode("text", list(texts)).float().cpu()

    @torch.no_grad()
    def embed_location(self, coords: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(N, D) normalised location embeddings of (N, 2) (lon, lat) on the CPU."""
        if not self.has_location:
            raise ValueError(f"{self.folder}: the model has no location tower")
        tensor = torch.as_tensor(np.asarray(coords, dtype=np.float32)).reshape(-1, 2)
        return self.model.encode("location", tensor.to(self.device)).float().cpu()


@torch.no_grad()
def embed_batches(model: ContrastiveModel, batches: Iterable[Mapping[str, Any]],
                  inputs: Mapping[str, str], keep: Sequence[str] = ()) -> dict[str, Any]:
    """Embed every batch of a loader with several towers, keeping chosen fields beside them.

    Args:
        model: The model (put in eval mode).
        batches: Collated sample dicts (a DataLoader).
        inputs: Tower -> the batch field it embeds (e.g. ``{"s2": "image",
            "location": "coords"}``); towers the model lacks are left out.
        keep: Batch fields returned as well (tensors concatenated, lists joined).

    Returns:
        Tower -> (N, D) normalised embeddings on the CPU, and each kept field (empty lists
        when the loader yielded no batch).
    """
    model.eval()
    device = next(model.parameters()).device
    towers = {t: f for t, f in inputs.items() if t in model.towers}
    found: dict[str, list[Any]] = {name: [] for name in (*towers, *keep)}
    for batch in batches:
        for tower, name in towers.items():
            value = batch[name]
            value = value.to(device) if isinstance(value, torch.Tensor) else value
            found[tower].append(model.encode(tower, value).float().cpu())  # (B, D)
        for name in keep:
            found[name].append(batch[name])
    result: dict[str, Any] = {}
    for name, parts in found.items():
        if parts and isinstance(parts[0], torch.Tensor):
            result[name] = torch.cat(parts)
        else:
            result[name] = [item for part in parts for item in part]
    return result
