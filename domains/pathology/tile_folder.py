"""Tiles in class folders: the NCT-CRC-HE-100K / CRC-VAL-HE-7K layout (Kather et al. 2019).

As Zenodo distributes them (record 1214456), each archive unpacks to one folder per
tissue class named by its code, holding 224 x 224 px RGB ``.tif`` tiles at 0.5 um/px::

    NCT-CRC-HE-100K/ADI/ADI-AAAFLCLY.tif   ...  NCT-CRC-HE-100K/TUM/TUM-YYYWYLHA.tif
    CRC-VAL-HE-7K/ADI/ADI-TCGA-AAICEQFN.tif ...

with the codes ADI, BACK, DEB, LYM, MUC, MUS, NORM, STR, TUM (the card's
:func:`cards.class_codes`; folder names are matched case-insensitively, and a folder
named by a card class name or synonym is accepted too). The same layout serves a user's
own tile collection sorted by class. Folders naming no class (``__MACOSX``...) are left
out and listed in ``ignored_folders``. NCT-CRC-HE-100K-NONORM (the un-normalised
release) has the same layout.

The layout has no split. The usual protocol (Kather et al.; CONCH, PLIP, UNI) trains on
NCT-CRC-HE-100K and tests on CRC-VAL-HE-7K, which comes from other patients: open the
first with a seeded validation share (the default, ``val_fraction=0.1``: ``train`` and
``val`` splits stratified by class, :func:`tile_dataset.seeded_split`) and the second
with ``folder_split="test"`` (every tile is ``test``). The file names of NCT-CRC-HE-100K
do not say which patient a tile comes from, so a split within it is tile-level, not
patient-level: use it for model selection, and CRC-VAL-HE-7K for the figures.

Tiles carry no caption; the sample's caption is the class name (:class:`TileDataset`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from core.data import BadSampleLog
from domains.pathology import cards
from domains.pathology.tile_dataset import (
    SPLITS,
    TileDataset,
    seeded_split,
    select_split,
    tile_id,
)
from domains.pathology.tile_io import MIN_SIDE, TILE_SUFFIXES

log = logging.getLogger(__name__)


def class_folders(root: Path) -> dict[Path, str]:
    """The sub-folders of ``root`` that name a tissue class (code, name or synonym).

    Args:
        root: The archive folder.

    Returns:
        Folder -> card class name, sorted by folder name.
    """
    found = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        cls = cards.code_to_class(folder.name)
        if cls is not None:
            found[folder] = cls
    return found


def is_tile_folder(root: Path) -> bool:
    """Whether ``root`` has at least one class folder holding a tile file."""
    return any(any(f.suffix.lower() in TILE_SUFFIXES for f in folder.iterdir())
               for folder in class_folders(root))


class TileFolder(TileDataset):
    """H&E tiles of one split from class folders (NCT-CRC-HE-100K / CRC-VAL-HE-7K).

    Args:
        root: The folder holding the class folders.
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` for every tile.
        transforms: A dictionary transform applied to each sample.
        strict: Raise on the first bad tile instead of skipping it.
        preload: Read and check every tile at construction.
        bad_sample_log: A log shared with DataLoader workers.
        folder_split: The split every tile of this folder belongs to (``"test"`` for
            CRC-VAL-HE-7K); when given the fractions are not used.
        val_fraction: Share of each class for ``val`` in the seeded split.
        test_fraction: Share of each class for ``test`` in the seeded split.
        seed: The split seed.
        min_side: Smallest accepted tile side in pixels.

    Attributes:
        ignored_folders: Sub-folders that name no class (left out).

    Raises:
        FileNotFoundError: When ``root`` is missing or has no class folder.
        ValueError: For an unknown split, or a split the folder cannot give (``test``
            with ``test_fraction=0`` and no ``folder_split``).
    """

    layout = "tiles"

    def __init__(self, root: str | Path, split: str | None = "train",
                 transforms: Callable | None = None, strict: bool = False,
                 preload: bool = False, bad_sample_log: BadSampleLog | None = None,
                 folder_split: str | None = None, val_fraction: float = 0.1,
                 test_fraction: float = 0.0, seed: int = 0,
                 min_side: int = MIN_SIDE) -> None:
        super().__init__(transforms, strict, bad_sample_log, min_side)
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: tile folder not found")
        if folder_split is not None and folder_split not in SPLITS:
            raise ValueError(f"unknown folder_split {folder_split!r}; known: {', '.join(SPLITS)}")
        folders = class_folders(self.root)
        if not folders:
            raise FileNotFoundError(
                f"{self.root}: no class folder (named by a code such as "
                f"{', '.join(cards.class_codes())}) in this folder")
        self.ignored_folders = sorted(p.name for p in self.root.iterdir()
                                      if p.is_dir() and p not in folders)
        if self.ignored_folders:
            log.warning("%s: folders naming no tissue class left out: %s", self.root,
                        ", ".join(self.ignored_folders))
        rows = []
        for folder, cls in folders.items():
            for file in sorted(folder.iterdir()):
                if file.is_file() and file.suffix.lower() in TILE_SUFFIXES:
                    relative = file.relative_to(self.root).as_posix()
                    rows.append({"file": str(file), "path": relative,
                                 "id": tile_id(self.layout, relative), "label": cls,
                                 "caption": "", "site": "", "slide_id": ""})
        frame = pd.DataFrame(rows, columns=["file", "path", "id", "label", "caption", "site",
                                            "slide_id"])
        if folder_split is not None:
            frame["split"] = folder_split
        else:
            frame["split"] = seeded_split(list(frame["path"]), list(frame["label"]),
                                          val_fraction, test_fraction, seed)
        if folder_split is not None and split not in (None, folder_split):
            raise ValueError(f"{self.root}: this folder holds only the {folder_split!r} split "
                             f"(folder_split); {split!r} was asked for")
        if split == "test" and folder_split is None and test_fraction == 0:
            raise ValueError(
                f"{self.root}: class folders have no test split; pass folder_split='test' "
                f"(a held-out folder such as CRC-VAL-HE-7K) or test_fraction > 0")
        self._set_metadata(select_split(frame, split, str(self.root)))
        if preload:
            self._preload()
