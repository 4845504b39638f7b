"""CheXpert (Irvin et al. 2019) in its own layout: label CSVs and JPG radiographs, no reports.

CheXpert-v1.0 (and its ``-small`` copy) holds ``train.csv`` and ``valid.csv`` (and, from
the CheXlocalize release, ``test.csv`` for the expert-labelled test set) with the columns
``Path`` (e.g. ``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg``, relative
to the folder *above* the dataset folder), ``Sex``, ``Age``, ``Frontal/Lateral``, ``AP/PA``
and the 14 observations with 1 (positive), 0 (negative), -1 (uncertain) or blank (not
mentioned). Splits: ``train`` = train.csv, ``val`` = valid.csv, ``test`` = test.csv
(patient-disjoint by construction; checked). The layout facts are data:
``datasets/radiology/chexpert.yaml``. The uncertainty policies of the CheXpert
paper are the ``uncertainty`` option: ``U-Ones``, ``U-Zeros``, ``U-Ignore``.

CheXpert has no report text, so a sample's caption is written from its labels
(:func:`domains.radiology.study_dataset.label_caption`) — useful for evaluation, not for
training a text tower. Patient ids are in every path, so samples, errors and the
bad-sample log show ``chexpert/<key>.jpg`` instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from core.data import BadSampleLog
from domains.radiology import cards
from domains.radiology.study_dataset import (
    SPLITS,
    StudyDataset,
    check_patient_splits,
    opaque_key,
)

_CARD = cards.card("chexpert")
#: Our split -> CheXpert's table.
SPLIT_FILES: dict[str, str] = dict(_CARD["split_files"])
_PATIENT = re.compile(_CARD["patient_pattern"])


class CheXpert(StudyDataset):
    """One split of CheXpert: frontal radiographs with the 14 observation labels.

    Args:
        root: The dataset folder (holding train.csv) or the folder above it.
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` for every table present.
        transforms: A dictionary transform applied to each sample.
        strict: Raise on the first bad file instead of skipping it.
        preload: Read and check every sample at construction.
        bad_sample_log: A log shared with DataLoader workers.
        uncertainty: ``None`` (keep -1), ``"U-Ones"``, ``"U-Zeros"`` or ``"U-Ignore"``.
        views: ``AP/PA`` values of frontal images to keep (default PA and AP); ``None``
            keeps every image, lateral ones too.
    """

    layout = "chexpert"

    def __init__(self, root: str | Path, split: str | None = "train",
                 transforms: Callable | None = None, strict: bool = False,
                 preload: bool = False, bad_sample_log: BadSampleLog | None = None,
                 uncertainty: str | None = None,
                 views: Sequence[str] | None = tuple(_CARD["frontal_views"])) -> None:
        super().__init__(transforms, strict, bad_sample_log, uncertainty)
        found = self.find_root(root)
        if found is None:
            raise FileNotFoundError(f"{root}: no CheXpert train.csv or valid.csv here or in a "
                                    f"CheXpert* folder below")
        self.root = found
        if split is not None and split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
        tables = {name: self.root / file for name, file in SPLIT_FILES.items()
                  if (self.root / file).is_file()}
        if split is not None and split not in tables:
            hint = " (the expert-labelled test set; use split='val' for valid.csv)" \
                if split == "test" else ""
            raise FileNotFoundError(f"{self.root / SPLIT_FILES[split]}: not found{hint}")
        frames = [_read(path).assign(split=name) for name, path in tables.items()]
        table = pd.concat(frames, ignore_index=True)
        table["patient"] = [_patient(p) for p in table["Path"]]
        check_patient_splits(table["patient"], table["split"], str(self.root))
        if split is not None:
            table = table[table["split"] == split]
        if views is not None:
            table = _frontal(table, views)
        self._set_metadata(self._rows(table))
        if preload:
            self._preload()

    @staticmethod
    def find_root(root: str | Path) -> Path | None:
        """The CheXpert folder: ``root`` itself, or one ``CheXpert*`` folder below it."""
        root = Path(root)
        tables = (SPLIT_FILES["train"], SPLIT_FILES["val"])
        if any((root / f).is_file() for f in tables):
            return root
        below = [d for d in sorted(root.glob(_CARD["folder_glob"])) if d.is_dir() and
                 any((d / f).is_file() for f in tables)]
        return below[0] if below else None

    def _file(self, relative: str) -> Path:
        """The image of a ``Path`` cell: it starts with the dataset folder's name (whatever
        the copy is called now, e.g. ``CheXpert-v1.0`` in a ``-small`` folder), or not."""
        parts = Path(relative).parts
        if parts and (parts[0] == self.root.name or parts[0].lower().startswith("chexpert")):
            return self.root.joinpath(*parts[1:])
        return self.root / relative

    def _rows(self, table: pd.DataFrame) -> pd.DataFrame:
        columns = ["file", "report_file", "path", "id", "split", "patient_key"]
        if table.empty:
            return pd.DataFrame(columns=columns)
        rows = []
        for record in table.to_dict("records"):
            relative = str(record["Path"])
            key = opaque_key(self.layout, relative)
            row = {"file": str(self._file(relative)), "report_file": "",
                   "path": f"{self.layout}/{key}{Path(relative).suffix}", "id": key,
                   "split": record["split"],
                   "patient_key": opaque_key("patient", record["patient"])}
            row.update({f: record[f] for f in self.findings if f in record})
            rows.append(row)
        return pd.DataFrame(rows)


def _read(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as error:
        raise ValueError(f"{path.name}: cannot read the table: {type(error).__name__}") from None
    if "Path" not in table.columns:
        raise ValueError(f"{path.name}: no Path column")
    return table


def _patient(path: str) -> str:
    """The patient of a CheXpert path (``patient00001``), or the path's study folder."""
    match = _PATIENT.search(path)
    return match.group(0) if match else str(Path(path).parent.parent)


def _frontal(table: pd.DataFrame, views: Sequence[str]) -> pd.DataFrame:
    """Frontal images whose ``AP/PA`` is one of ``views`` (by file name without columns)."""
    wanted = {v.upper() for v in views}
    view, position = _CARD["view_column"], _CARD["position_column"]
    if view in table.columns:
        keep = table[view].str.lower() == "frontal"
        if position in table.columns:
            keep &= table[position].str.upper().isin(wanted) | (table[position] == "")
        return table[keep]
    return table[table["Path"].str.contains("frontal", case=False)]
