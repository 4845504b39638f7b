"""Tiles with captions listed in a CSV (ARCH / Quilt-1M style), and the synthetic set.

A captions table has one row per tile. Column names follow the public tile-caption sets
(Quilt-1M's ``image_path``/``caption``, ARCH's image + caption pairs once flattened to a
table, the synthetic set's ``path``/``caption``); the first present of each alias list
is used:

==========  ==========================================  ==========================
role        accepted names                              needed
==========  ==========================================  ==========================
tile        ``path``, ``image``, ``image_path``,        yes (relative to the
            ``file``, ``filename``                      table's folder, or absolute)
caption     ``caption``, ``text``                       yes (may be blank where a
                                                        label is given)
label       ``label``, ``class``, ``tissue``            no (code, card name or synonym)
site        ``site``, ``source``, ``center``            no
split       ``split``, ``subset``                       no (train/val/test; valid,
                                                        validation, dev -> val)
slide       ``slide_id``, ``slide``                     no
==========  ==========================================  ==========================

What the loader adds to reading the CSV: labels mapped to the card's classes (an
unrecognised label leaves the tile unlabelled, counted in ``unknown_labels``); rows
with neither caption nor label dropped and counted as bad samples; a table without a
split column split by :func:`tile_dataset.seeded_split` (stratified by class); and a
leak check — tiles of one slide in two splits are refused.

The synthetic default set (``python -m domains.pathology.synthetic``) writes
``ROOT/tiles.csv`` (``path, caption, label, site, split``) beside ``ROOT/dataset.json``;
:class:`SyntheticTiles` reads it and also checks that its splits are by site (no site in
two splits), which is how the set tests stain shift.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from core.data import BadSampleLog
from domains.pathology.tile_dataset import (
    SPLITS,
    TileDataset,
    class_of,
    seeded_split,
    select_split,
    tile_id,
)
from domains.pathology.tile_io import MIN_SIDE

log = logging.getLogger(__name__)

#: Table names looked for in an archive folder, in order.
TABLE_NAMES = ("tiles.csv", "captions.csv")
#: The synthetic set's description, written beside ``tiles.csv``.
SYNTHETIC_MANIFEST = "dataset.json"
#: Column role -> accepted names, first present wins.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "path": ("path", "image", "image_path", "file", "filename"),
    "caption": ("caption", "text"),
    "label": ("label", "class", "tissue"),
    "site": ("site", "source", "center"),
    "split": ("split", "subset"),
    "slide_id": ("slide_id", "slide"),
}
_SPLIT_ALIASES = {"training": "train", "valid": "val", "validation": "val", "dev": "val",
                  "testing": "test"}


def find_table(root: Path) -> Path | None:
    """The captions table of an archive folder (:data:`TABLE_NAMES`), None when absent."""
    return next((root / name for name in TABLE_NAMES if (root / name).is_file()), None)


def _column(frame: pd.DataFrame, role: str) -> str | None:
    return next((c for c in COLUMN_ALIASES[role] if c in frame.columns), None)


def read_caption_table(path: Path) -> pd.DataFrame:
    """A captions CSV as strings with its columns renamed to their roles.

    Args:
        path: The CSV.

    Returns:
        Columns ``path``, ``caption``, ``label``, ``site``, ``split``, ``slide_id``
        (absent optional columns blank; ``split`` is None-filled when absent) and a
        boolean ``has_split`` attribute in ``frame.attrs``.

    Raises:
        FileNotFoundError: When the table is missing.
        ValueError: Naming the file and the missing columns or unknown split names.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: captions table not found")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            OSError) as error:
        raise ValueError(f"{path}: cannot read the table: {type(error).__name__}") from None
    frame = pd.DataFrame(index=raw.index)
    for role in COLUMN_ALIASES:
        name = _column(raw, role)
        if name is None and role in ("path", "caption"):
            raise ValueError(f"{path}: no {role} column (one of "
                             f"{list(COLUMN_ALIASES[role])}); columns: {list(raw.columns)}")
        frame[role] = raw[name].str.strip() if name is not None else ""
    frame.attrs["has_split"] = _column(raw, "split") is not None
    if frame.attrs["has_split"]:
        frame["split"] = frame["split"].str.lower().replace(_SPLIT_ALIASES)
        unknown = sorted(set(frame["split"]) - set(SPLITS))
        if unknown:
            raise ValueError(f"{path}: unknown split names {unknown}; use {list(SPLITS)}")
    return frame


def check_group_splits(groups: pd.Series, splits: pd.Series, what: str, source: str) -> None:
    """Refuse a table in which one ``what`` (slide, site) has tiles in two splits.

    Raises:
        ValueError: Naming ``source``, the count and up to five of the groups.
    """
    frame = pd.DataFrame({"group": groups, "split": splits})
    frame = frame[frame["group"].astype(str).str.strip() != ""]
    counts = frame.groupby("group")["split"].nunique()
    shared = sorted(counts[counts > 1].index)
    if shared:
        raise ValueError(f"{source}: {len(shared)} {what}(s) have tiles in more than one "
                         f"split ({', '.join(map(str, shared[:5]))}); splits must be "
                         f"{what}-level")


class CaptionTable(TileDataset):
    """Tiles and captions of one split from a CSV (see the module docstring).

    Args:
        root: The archive folder (or the CSV itself).
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` for every row.
        transforms: A dictionary transform applied to each sample.
        strict: Raise on the first bad tile instead of skipping it.
        preload: Read and check every tile at construction.
        bad_sample_log: A log shared with DataLoader workers.
        table: The CSV, relative to ``root`` or absolute (default: the first of
            :data:`TABLE_NAMES` in ``root``).
        val_fraction: For a table without a split column: share of each class for ``val``.
        test_fraction: Likewise for ``test``.
        seed: The split seed.
        min_side: Smallest accepted tile side in pixels.

    Attributes:
        table_path: The CSV read.
        unknown_labels: Label texts naming no card class, with their counts.
    """

    layout = "captions"

    def __init__(self, root: str | Path, split: str | None = "train",
                 transforms: Callable | None = None, strict: bool = False,
                 preload: bool = False, bad_sample_log: BadSampleLog | None = None,
                 table: str | Path | None = None, val_fraction: float = 0.1,
                 test_fraction: float = 0.0, seed: int = 0,
                 min_side: int = MIN_SIDE) -> None:
        super().__init__(transforms, strict, bad_sample_log, min_side)
        root = Path(root)
        if root.is_file() and table is None:
            root, table = root.parent, root.name
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: archive folder not found")
        self.root = root
        found = root / table if table is not None else find_table(root)
        if found is None:
            raise FileNotFoundError(f"{root}: no captions table ({' or '.join(TABLE_NAMES)})")
        self.table_path = found
        frame = read_caption_table(found)
        labels = [class_of(v) for v in frame["label"]]
        self.unknown_labels = Counter(v for v, c in zip(frame["label"], labels, strict=True)
                                      if v and not c)
        if self.unknown_labels:
            log.warning("%s: %d tile(s) with labels naming no tissue class (unlabelled): %s",
                        found, sum(self.unknown_labels.values()),
                        ", ".join(sorted(self.unknown_labels)[:5]))
        frame["label"] = labels
        if not frame.attrs["has_split"]:
            frame["split"] = seeded_split(list(frame["path"]), labels, val_fraction,
                                          test_fraction, seed)
        self._check_splits(frame, str(found))
        base = found.parent
        frame["file"] = [str(p if Path(p).is_absolute() else base / p) for p in frame["path"]]
        frame["id"] = [tile_id(self.layout, p) for p in frame["path"]]
        if split == "test" and not frame.attrs["has_split"] and test_fraction == 0:
            raise ValueError(f"{found}: the table has no split column and test_fraction is 0; "
                             f"there is no test split")
        self._set_metadata(select_split(frame, split, str(found)))
        usable = ((self.metadata["path"] != "")
                  & ((self.metadata["caption"] != "") | (self.metadata["label"] != "")))
        self._drop_rows(usable.to_numpy(), "no tile path, or neither caption nor label")
        if preload:
            self._preload()

    def _check_splits(self, frame: pd.DataFrame, source: str) -> None:
        """Refuse tiles of one slide in two splits."""
        check_group_splits(frame["slide_id"], frame["split"], "slide", source)


class SyntheticTiles(CaptionTable):
    """The synthetic default set's tiles (``ROOT/tiles.csv``), splits checked to be by site.

    Takes the arguments of :class:`CaptionTable` (``table`` defaults to ``tiles.csv``).
    """

    layout = "synthetic"

    def _check_splits(self, frame: pd.DataFrame, source: str) -> None:
        """Refuse tiles of one slide, or of one site, in two splits."""
        super()._check_splits(frame, source)
        check_group_splits(frame["site"], frame["split"], "site", source)


def is_synthetic_archive(root: Path) -> bool:
    """Whether ``root`` holds the synthetic set (``tiles.csv`` beside ``dataset.json``)."""
    return (root / "tiles.csv").is_file() and (root / SYNTHETIC_MANIFEST).is_file()
