"""The base of every pathology tile loader: a tile, its caption and its tissue class.

Built on :class:`core.data.SampleDataset`, which owns the bad-input policy (skip and count,
substitute the next readable tile, ``strict=True`` raises, records from DataLoader
workers). A loader (class folders, a captions table, the synthetic set) fills
``self.metadata`` with one row per tile — columns ``file`` (the tile on disk), ``path``
(the name samples and logs show), ``id``, ``label`` (a card class name, or "" when
unknown), ``caption`` ("" when the archive has none), ``site``, ``slide_id`` and
``split`` — and this module does the rest:

- the sample dict every pathology consumer reads: ``image`` (3, H, W) float32 RGB in
  [0, 1] (:func:`domains.pathology.tile_io.read_tile`), ``label`` (9,) float32 one-hot
  over :func:`cards.tissue_classes` (all zero when the class is unknown),
  ``label_names`` (the class name or ""), ``caption`` (the archive's caption; for a
  class-folder archive without captions, the class name), ``path``, ``id``, ``site``
  ("" unknown) and ``slide_id`` ("" for loose tiles);
- class names from codes, names or synonyms (:func:`cards.code_to_class`), so
  ``TUM``, ``tumor epithelium`` and the card name all label the same class;
- :func:`seeded_split`, for layouts that carry no split (NCT-CRC-HE class folders, a
  captions table without a ``split`` column): a deterministic split stratified by class,
  from a seed and fractions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from core.data import BadSampleLog, SampleDataset
from domains.pathology import cards
from domains.pathology.tile_io import MIN_SIDE, TileError, read_tile

#: Split names every layout answers to.
SPLITS = ("train", "val", "test")
#: The columns a loader's metadata must have.
METADATA_COLUMNS = ("file", "path", "id", "label", "caption", "site", "slide_id", "split")


def tile_id(*parts: object) -> str:
    """A stable 16-hex-digit id of a tile from what identifies it (layout, relative path).

    Args:
        *parts: The identifying parts.

    Returns:
        The id (BLAKE2b), the same on every machine.
    """
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return hashlib.blake2b(text, digest_size=8).hexdigest()


def seeded_split(keys: Sequence[str], strata: Sequence[str], val_fraction: float,
                 test_fraction: float, seed: int) -> list[str]:
    """Assign rows to train/val/test deterministically, stratified by ``strata``.

    Within each stratum (class) the rows are ordered by a seeded hash of their key and the
    first ``round(val_fraction * n)`` go to ``val``, the next ``round(test_fraction * n)``
    to ``test``, the rest to ``train``. The assignment depends only on the keys, the seed
    and the fractions (not on listing order), and a tile keeps its split when others are
    added unless its stratum's counts move a boundary past it.

    Args:
        keys: A stable key per row (the tile's relative path).
        strata: The stratum of each row (its class; "" for unknown).
        val_fraction: Share of each stratum for ``val``.
        test_fraction: Share of each stratum for ``test``.
        seed: The split seed.

    Returns:
        The split of each row, in row order.

    Raises:
        ValueError: When the fractions are negative or leave nothing for ``train``.
    """
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ValueError(f"split fractions val={val_fraction}, test={test_fraction}: each "
                         f"must be >= 0 and together < 1")
    splits = ["train"] * len(keys)
    by_stratum: dict[str, list[int]] = {}
    for row, stratum in enumerate(strata):
        by_stratum.setdefault(str(stratum), []).append(row)
    for rows in by_stratum.values():
        order = sorted(rows, key=lambda r: tile_id("split", seed, keys[r]))
        n_val = int(round(val_fraction * len(order)))
        n_test = int(round(test_fraction * len(order)))
        for rank, row in enumerate(order):
            if rank < n_val:
                splits[row] = "val"
            elif rank < n_val + n_test:
                splits[row] = "test"
    return splits


def class_of(text: object) -> str:
    """The card class a label cell names (code, name or synonym), "" when none or blank."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    return cards.code_to_class(str(text)) or ""


class TileDataset(SampleDataset):
    """H&E tiles with captions and tissue classes; loaders fill ``self.metadata``.

    Args:
        transforms: A dictionary transform applied to each sample.
        strict: Raise on the first bad tile instead of skipping it.
        bad_sample_log: A log shared with DataLoader workers (see :mod:`core.data`).
        min_side: Smallest accepted tile side in pixels.

    Attributes:
        bad_samples: ``(path, problem)`` of every skipped tile.
        metadata: One row per tile (see the module docstring).
        classes: The card's class names (the order of ``label``).
    """

    read_errors = (TileError,)
    layout = "tiles"

    def __init__(self, transforms: Callable | None = None, strict: bool = False,
                 bad_sample_log: BadSampleLog | None = None, min_side: int = MIN_SIDE) -> None:
        super().__init__(transforms, strict, bad_sample_log)
        self.min_side = int(min_side)
        self.classes = cards.tissue_classes()

    def _set_metadata(self, frame: pd.DataFrame) -> None:
        """Install the loader's table (checked columns, a clean index)."""
        missing = set(METADATA_COLUMNS) - set(frame.columns)
        if missing:
            raise ValueError(f"{type(self).__name__}: metadata lacks {sorted(missing)}")
        self.metadata = frame.reset_index(drop=True)

    def real_path(self, index: int) -> Path:
        """The tile file of row ``index`` on disk."""
        return Path(str(self.metadata.iloc[index]["file"]))

    def _read(self, index: int) -> np.ndarray:
        file = str(self.metadata.iloc[index]["file"])
        try:
            return read_tile(file, self.min_side)                     # (3, H, W)
        except TileError as error:  # shown under the sample's name, not the full disk path
            name = self._path(index)
            raise TileError(str(error).replace(file, name, 1)) from None

    def one_hot(self, label: str) -> torch.Tensor:
        """(9,) float32 one-hot of a card class name; all zero for "" or an unknown name."""
        vector = torch.zeros(len(self.classes), dtype=torch.float32)
        if label in self.classes:
            vector[self.classes.index(label)] = 1.0
        return vector

    def _sample(self, index: int, read: np.ndarray) -> dict[str, Any]:
        """The tile sample dict (see the module docstring)."""
        row = self.metadata.iloc[index]
        label = str(row["label"] or "")
        caption = str(row["caption"] or "") or label
        return {
            "image": torch.from_numpy(np.ascontiguousarray(read)),   # (3, H, W)
            "label": self.one_hot(label),                             # (9,)
            "label_names": label,
            "caption": caption,
            "path": str(row["path"]),
            "id": str(row["id"]),
            "site": str(row["site"] or ""),
            "slide_id": str(row["slide_id"] or ""),
        }

    def sample_ids(self) -> list[str]:
        """The ``id`` of each row's sample, in row order."""
        return [str(v) for v in self.metadata["id"]]

    def labels(self) -> list[str]:
        """The class name of each row ("" unknown), in row order (no tile is read)."""
        return [str(v or "") for v in self.metadata["label"]]

    def plot(self, sample: dict[str, Any], suptitle: str | None = None) -> Any:
        """Show a tile with its class and caption."""
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(4, 4.4))
        axis.imshow(sample["image"].permute(1, 2, 0).clamp(0, 1).numpy())
        title = sample.get("label_names") or "unknown class"
        caption = sample.get("caption", "")
        axis.set_title(f"{title}\n{caption[:80]}" if caption != title else title, fontsize=8)
        axis.axis("off")
        if suptitle:
            figure.suptitle(suptitle)
        return figure


def select_split(frame: pd.DataFrame, split: str | None, source: str) -> pd.DataFrame:
    """The rows of ``split`` (all for None), the split name checked.

    Raises:
        ValueError: For an unknown split name, naming ``source``.
    """
    if split is None:
        return frame
    if split not in SPLITS:
        raise ValueError(f"{source}: unknown split {split!r}; known: {', '.join(SPLITS)}")
    return frame[frame["split"] == split]
