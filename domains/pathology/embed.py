"""Open a held-out split and embed its tiles, captions and whole slides for evaluation.

Tiles are opened through the layouts table (:func:`domains.pathology.archives.open_dataset`)
with the model's own per-sample transform (:func:`~domains.pathology.transforms.prepare`,
optionally with Macenko normalisation for the stain comparison), never through the
training data module, and embedded with :func:`core.inference.embed_batches`. Slides of
the split (``slides.csv`` beside the tiles, as the synthetic set writes it; read by
:class:`domains.pathology.slides.SlideList`, unreadable slides skipped and counted) are
tiled over their tissue by :class:`domains.pathology.slides.SlideTiles` and embedded tile
by tile, timed from opening the slide to the last embedding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from core.inference import embed_batches
from core.model import ContrastiveModel
from domains.pathology.archives import open_dataset
from domains.pathology.transforms import class_index, prepare


@dataclass
class EmbeddedTiles:
    """One split's tiles embedded by one model.

    Attributes:
        images: (N, D) normalised tile embeddings.
        captions: (N, D) normalised caption embeddings.
        target: (N,) class index in ``cards.tissue_classes()`` order, -1 unknown.
        texts: The captions.
        sites: The site of each tile ("" unknown).
        paths: The tile files.
        bad_samples: ``(path, problem)`` of tiles skipped while reading.
    """

    images: torch.Tensor
    captions: torch.Tensor
    target: np.ndarray
    texts: list[str]
    sites: list[str]
    paths: list[str]
    bad_samples: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class EmbeddedSlide:
    """The tissue tiles of one slide, embedded.

    Attributes:
        slide_id: The slide's id.
        path: The slide file.
        label: Its slide-level class (a card class name).
        features: (T, D) normalised tile embeddings.
        positions: (T, 2) level-0 (x, y) of each tile's corner.
        tile_size: Side of a tile in level-0 pixels.
        dimensions: Level-0 (width, height) of the slide.
        seconds: Wall time from opening the slide to the last embedding.
        thumbnail: (h, w, 3) RGB picture of the whole slide in [0, 1] (not timed).
        boxes: Annotated tumour regions, ``(x0, y0, x1, y1)`` in level-0 pixels.
    """

    slide_id: str
    path: str
    label: str
    features: torch.Tensor
    positions: np.ndarray
    tile_size: int
    dimensions: tuple[int, int]
    seconds: float
    thumbnail: np.ndarray | None = None
    boxes: list[list[float]] = field(default_factory=list)


def open_split(root: Path, split: str, model_extra: dict[str, Any], layout: str | None = None,
               options: dict[str, Any] | None = None, stain: str | None | bool = True) -> Any:
    """A split of a data folder with a model's evaluation transform (``stain``: see
    :func:`~domains.pathology.transforms.prepare`)."""
    return open_dataset(root, split, transforms=prepare(model_extra, stain=stain),
                        layout=layout, **(options or {}))


@torch.no_grad()
def embed_split(model: ContrastiveModel, root: Path, split: str = "test",
                layout: str | None = None, batch_size: int = 64,
                options: dict[str, Any] | None = None, stain: str | None | bool = True
                ) -> EmbeddedTiles:
    """Embed the tiles and captions of one split.

    Args:
        model: The trained model (``image`` and ``text`` towers).
        root: Data folder.
        split: ``train``, ``val`` or ``test``.
        layout: On-disk layout (``None``: detected).
        batch_size: Tiles per forward pass.
        options: Extra keyword arguments of the layout's loader.
        stain: The stain normalisation of the tiles (``True``: the model's own).

    Returns:
        The embedded tiles.
    """
    dataset = open_split(root, split, model.config.extra, layout, options, stain)
    if len(dataset) == 0:
        raise ValueError(f"{root}: the {split} split has no readable tile")
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    found = embed_batches(model, loader, {"image": "image", "text": "caption"},
                          keep=("label", "caption", "site", "path"))
    return EmbeddedTiles(images=found["image"], captions=found["text"],
                         target=class_index(found["label"]), texts=list(found["caption"]),
                         sites=[str(s) for s in found["site"]],
                         paths=[str(p) for p in found["path"]],
                         bad_samples=list(dataset.bad_samples))


@torch.no_grad()
def embed_slide(model: ContrastiveModel, path: str | Path, tile_size: int = 224,
                batch_size: int = 64, stain: str | None | bool = True,
                slide_id: str = "", label: str = "", thumbnail: int = 768,
                **options: Any) -> EmbeddedSlide:
    """Tile a whole slide over its tissue and embed every tile.

    Args:
        model: The trained model.
        path: The slide file (any format OpenSlide or tifffile opens).
        tile_size: Tile side in pixels at the tiling level.
        batch_size: Tiles per forward pass.
        stain: The stain normalisation of the tiles (``True``: the model's own).
        slide_id: The slide's id (default: the file name).
        label: Its slide-level class, if known.
        thumbnail: Longest side of the slide picture kept for heat maps (0: none).
        **options: Further :class:`~domains.pathology.slides.SlideTiles` arguments
            (``mpp``, ``level``, ``tissue_threshold``, ``backend``).

    Returns:
        The embedded slide (no tile: an error naming the slide).
    """
    from domains.pathology.slides import SlideTiles

    started = time.perf_counter()
    tiles = SlideTiles(path, tile_size=tile_size,
                       transforms=prepare(model.config.extra, stain=stain), **options)
    if len(tiles) == 0:
        raise ValueError(f"{path}: no tissue tile found (is the slide blank, or the tissue "
                         f"threshold too high?)")
    loader = DataLoader(tiles, batch_size=batch_size, shuffle=False)
    found = embed_batches(model, loader, {"image": "image"}, keep=("x", "y"))
    seconds = time.perf_counter() - started
    positions = np.stack([np.asarray(found["x"]), np.asarray(found["y"])], 1)  # (T, 2)
    return EmbeddedSlide(slide_id=slide_id or Path(path).stem, path=str(path), label=label,
                         features=found["image"], positions=positions.astype(np.int64),
                         tile_size=int(tiles.tile_size_level0),
                         dimensions=tuple(int(v) for v in tiles.dimensions), seconds=seconds,
                         thumbnail=tiles.thumbnail(thumbnail) if thumbnail else None)


def embed_slides(model: ContrastiveModel, root: Path, split: str = "test",
                 tile_size: int = 224, batch_size: int = 64, stain: str | None | bool = True,
                 **options: Any) -> tuple[list[EmbeddedSlide], list[tuple[str, str]]]:
    """Embed every readable slide of a split listed in ``ROOT/slides.csv``.

    Args:
        model: The trained model.
        root: Data folder.
        split: ``train``, ``val`` or ``test``.
        tile_size: Tile side in pixels at the tiling resolution.
        batch_size: Tiles per forward pass.
        stain: The stain normalisation of the tiles (``True``: the model's own).
        **options: Further :class:`~domains.pathology.slides.SlideTiles` arguments.

    Returns:
        The embedded slides (none when the folder has no ``slides.csv``) and the
        ``(path, problem)`` of slides skipped as unreadable.
    """
    from domains.pathology.slides import SlideList

    try:
        listed = SlideList(root, split, backend=options.get("backend", "openslide"))
    except FileNotFoundError:
        return [], []
    slides = []
    for index in range(len(listed)):
        try:
            entry = listed.read_sample(index)
        except listed.read_errors as error:
            listed.bad_samples.append((str(listed.metadata.iloc[index]["path"]), str(error)))
            continue
        slide = embed_slide(model, entry["file"], tile_size=tile_size, batch_size=batch_size,
                            stain=stain, slide_id=entry["slide_id"], label=entry["label"],
                            site=entry["site"], **options)
        slide.boxes = [list(map(float, box)) for box in entry["tumour_boxes"]]
        slides.append(slide)
    return slides, list(listed.bad_samples)
