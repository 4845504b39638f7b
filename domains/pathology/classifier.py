"""Zero-shot tissue classes for H&E tiles and whole slides from Python: ``TissueClassifier``.

::

    from domains.pathology import TissueClassifier

    clf = TissueClassifier.from_run("runs/path-tiny")
    table = clf.predict(["tile1.png", "tile2.tif"], classes=["adipose", "TUM", "stroma"])
    slide = clf.predict_slide("slide.svs", classes=["tumour epithelium", "normal colon mucosa"],
                              k=10)
    slide.probabilities          # pandas Series: slide-level probability per class
    slide.tiles                  # DataFrame: x, y and per-class probability of every tile
    slide.save("heatmap.png")    # the first class's tile probabilities over the thumbnail

Built on :class:`core.zero_shot.PromptClassifier` (prompt embeddings cached per
vocabulary) and :class:`core.inference.LoadedRun` (through
:class:`~domains.pathology.run_model.TissueRun`: tiles read, checked and prepared as in
training). What it adds: CONCH prompt ensembles from the knowledge card for any class
vocabulary (codes, names or synonyms resolve to the card's classes; other names are
prompted as they are), and MI-Zero's top-K pooling for whole slides tiled over their
tissue (:func:`domains.pathology.embed.embed_slide`), with a heat map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from core.image_text_inference import ImageTextClassifier
from core.plots import plot_tile_heatmap, tile_grid
from domains.pathology import cards
from domains.pathology.embed import embed_slide
from domains.pathology.evaluation import slide_scores, zero_shot_logits
from domains.pathology.run_model import Tile, TissueRun


def resolve_classes(classes: Sequence[str] | None) -> list[str]:
    """Class names to score: card classes by code / name / synonym, others as given.

    Args:
        classes: The vocabulary (default: the card's nine tissue classes).

    Returns:
        Distinct names (card names where the card knows them).
    """
    if classes is None:
        return cards.tissue_classes()
    names = [cards.code_to_class(c) or c.strip() for c in classes]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"classes must name distinct classes, at least one; got {list(classes)}"
                         f" (resolved to {names})")
    return names


@dataclass
class SlidePrediction:
    """Zero-shot classes of one whole slide (MI-Zero top-K pooling).

    Attributes:
        path: The slide file.
        classes: The scored classes.
        probabilities: Slide-level probability per class (sums to one).
        tiles: One row per tissue tile: ``x``, ``y`` (level-0 corner) and the tile's
            probability of each class.
        k: Tiles pooled per class.
        tile_size: Tile side in level-0 pixels.
        dimensions: Level-0 (width, height) of the slide.
        thumbnail: (h, w, 3) RGB picture of the slide in [0, 1].
        seconds: Wall time of opening, tiling, reading and embedding the slide.
    """

    path: str
    classes: list[str]
    probabilities: pd.Series
    tiles: pd.DataFrame
    k: int
    tile_size: int
    dimensions: tuple[int, int]
    thumbnail: np.ndarray | None
    seconds: float

    @property
    def predicted(self) -> str:
        """The most probable slide class."""
        return str(self.probabilities.idxmax())

    def heatmap(self, cls: str | None = None) -> np.ndarray:
        """(rows, columns) tile probabilities of ``cls`` (default: the first class) on the
        slide's tile grid, NaN where no tissue tile was taken."""
        column = self._column(cls)
        return tile_grid(self.tiles[column].to_numpy(), self.tiles[["x", "y"]].to_numpy(),
                         self.tile_size, self.dimensions)

    def save(self, path: str | Path, cls: str | None = None) -> Path:
        """Write the heat map of ``cls`` (default: the first class) over the thumbnail.

        Args:
            path: The PNG to write.
            cls: The class whose tile probabilities are shown.

        Returns:
            The PNG path.
        """
        column = self._column(cls)
        background = self.thumbnail if self.thumbnail is not None else np.ones((8, 8, 3))
        return plot_tile_heatmap(background, self.tiles[column].to_numpy(),
                                 self.tiles[["x", "y"]].to_numpy(), self.tile_size,
                                 self.dimensions, path,
                                 title=f"{Path(self.path).name}: P({column}); slide "
                                 f"{self.probabilities[column]:.2f} (top-{self.k})",
                                 label=f"P({column})")

    def _column(self, cls: str | None) -> str:
        column = self.classes[0] if cls is None else (cards.code_to_class(cls) or cls)
        if column not in self.classes:
            raise ValueError(f"{cls!r} is not one of the scored classes {self.classes}")
        return column


class TissueClassifier(ImageTextClassifier):
    """Tissue-class probabilities for H&E tiles and whole slides, any class vocabulary.

    Args:
        run: A loaded run (see :meth:`from_run`).
    """

    run_class = TissueRun
    run: TissueRun

    def embed(self, tiles: Sequence[Tile], batch_size: int = 64) -> torch.Tensor:
        """(N, D) normalised embeddings of tiles (paths or arrays)."""
        return self.run.embed_tiles(list(tiles), batch_size=batch_size)

    def probabilities(self, features: torch.Tensor, classes: Sequence[str],
                      prompts: str = "ensemble",
                      custom_prompts: dict[str, list[str]] | None = None) -> torch.Tensor:
        """(N, C) class probabilities of embedded tiles (softmax over ``classes``)."""
        return zero_shot_logits(self.prompts, features, classes, prompts,
                                custom_prompts).softmax(dim=1)

    def predict(self, tiles: Tile | Sequence[Tile], classes: Sequence[str] | None = None,
                prompts: str = "ensemble", custom_prompts: dict[str, list[str]] | None = None,
                batch_size: int = 64) -> pd.DataFrame:
        """Probability of each class for each tile.

        Args:
            tiles: PNG / JPEG / TIFF paths or arrays (one or a list).
            classes: Classes to score (default: the nine tissue classes); codes (``TUM``),
                names or synonyms of the card, or any other name.
            prompts: ``"ensemble"`` (CONCH: names x synonyms x templates), ``"single"`` or
                ``"descriptions"`` (the card's morphology descriptions).
            custom_prompts: Explicit prompts per class (the resolved name as key).
            batch_size: Tiles per forward pass.

        Returns:
            One row per tile (indexed by its path or position), one column per class,
            probabilities summing to one per row.
        """
        if isinstance(tiles, str | Path | np.ndarray | torch.Tensor):
            tiles = [tiles]
        names = resolve_classes(classes)
        probabilities = self.probabilities(self.embed(tiles, batch_size), names, prompts,
                                           custom_prompts)  # (N, C)
        index = [str(t) if isinstance(t, str | Path) else i for i, t in enumerate(tiles)]
        return pd.DataFrame(probabilities.numpy(), index=index, columns=names)

    def predict_slide(self, path: str | Path, classes: Sequence[str] | None = None,
                      k: int = 10, prompts: str = "ensemble", tile_size: int = 224,
                      batch_size: int = 64, **options: Any) -> SlidePrediction:
        """Slide-level class probabilities by top-K pooling of its tissue tiles (MI-Zero).

        Every tissue tile is scored against each class's prompts; a class's slide logit is
        the mean of its ``k`` highest tile logits, and the slide probabilities are their
        softmax over ``classes``. Per tile, the table holds the softmax over ``classes``.

        Args:
            path: A whole-slide image (SVS, pyramidal TIFF, anything OpenSlide or tifffile
                reads).
            classes: Classes to score (default: the nine tissue classes).
            k: Tiles pooled per class.
            prompts: Prompt kind (see :meth:`predict`).
            tile_size: Tile side in pixels at the tiling resolution.
            batch_size: Tiles per forward pass.
            **options: Further :class:`~domains.pathology.slides.SlideTiles` arguments
                (``mpp``, ``level``, ``tissue_threshold``, ``backend``).

        Returns:
            The slide prediction (probabilities, per-tile scores, heat map).
        """
        names = resolve_classes(classes)
        slide = embed_slide(self.run.model, path, tile_size=tile_size, batch_size=batch_size,
                            **options)
        logits = zero_shot_logits(self.prompts, slide.features, names, prompts)  # (T, C)
        pooled = slide_scores(logits.numpy(), names, names, k)  # (C,)
        table = pd.DataFrame(logits.softmax(1).numpy(), columns=names)
        table.insert(0, "y", slide.positions[:, 1])
        table.insert(0, "x", slide.positions[:, 0])
        return SlidePrediction(path=str(path), classes=names,
                               probabilities=pd.Series(pooled, index=names), tiles=table, k=k,
                               tile_size=slide.tile_size, dimensions=slide.dimensions,
                               thumbnail=slide.thumbnail, seconds=slide.seconds)
