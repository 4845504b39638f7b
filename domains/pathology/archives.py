"""The pathology tile archive layouts in one table: detect a folder's layout, open a split.

Used by training (the data module), evaluation, the classifier's folder helpers and the
command lines, so a layout is named, detected and opened the same way everywhere:

- ``synthetic`` — the embedded default set: ``tiles.csv`` beside ``dataset.json``
  (:class:`caption_table.SyntheticTiles`; splits by site, checked);
- ``captions`` — tiles + captions CSV, ARCH / Quilt-1M style (``tiles.csv`` or
  ``captions.csv``; :class:`caption_table.CaptionTable`);
- ``tiles`` — class folders, the NCT-CRC-HE-100K / CRC-VAL-HE-7K layout
  (:class:`tile_folder.TileFolder`).

Whole slides are not a tile layout: :mod:`domains.pathology.slides` opens them
(``SlideList`` for an archive's ``slides.csv``, ``SlideTiles`` for one slide's tissue
tiles).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.data import BadSampleLog, open_layout
from core.data import detect_layout as core_detect_layout
from domains.pathology.caption_table import (
    TABLE_NAMES,
    CaptionTable,
    SyntheticTiles,
    find_table,
    is_synthetic_archive,
)
from domains.pathology.tile_dataset import TileDataset
from domains.pathology.tile_folder import TileFolder, is_tile_folder

#: Layout name -> loader class (each takes ``root, split=..., transforms=..., strict=...``).
LAYOUTS: dict[str, type[TileDataset]] = {
    "synthetic": SyntheticTiles, "captions": CaptionTable, "tiles": TileFolder,
}


def detect_layout(root: str | Path) -> str:
    """The layout of an archive folder, from the files its loader needs.

    Raises:
        FileNotFoundError: Naming the folder when it matches no known layout.
    """
    return core_detect_layout(root, [
        ("synthetic", is_synthetic_archive),
        ("captions", lambda folder: find_table(folder) is not None),
        ("tiles", is_tile_folder),
    ], f"not a known pathology layout (no {' or '.join(TABLE_NAMES)}, and no class folder "
       f"named ADI, BACK, ... TUM holding tiles); pass the layout explicitly, one of "
       f"{', '.join(LAYOUTS)}")


def open_dataset(root: str | Path, split: str | None, transforms: Any = None,
                 strict: bool = False, layout: str | None = None,
                 bad_sample_log: BadSampleLog | None = None, **options: Any) -> TileDataset:
    """Open one split of a pathology tile archive in any supported layout.

    Args:
        root: Archive folder.
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` for all.
        transforms: Dictionary transform.
        strict: Raise on bad tiles instead of skipping them.
        layout: One of :data:`LAYOUTS` (default: detected).
        bad_sample_log: Where DataLoader workers record the tiles they skip.
        **options: The loader's own options (``preload``, ``min_side``, ``table``,
            ``folder_split``, ``val_fraction``, ``test_fraction``, ``seed``; see each
            loader).

    Returns:
        A dataset of tile sample dicts.
    """
    return open_layout(LAYOUTS, layout or detect_layout(root), root, split=split,
                       transforms=transforms, strict=strict, bad_sample_log=bad_sample_log,
                       **options)
