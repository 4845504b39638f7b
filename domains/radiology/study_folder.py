"""The generic radiology layout: a folder of radiographs and reports listed in a CSV.

``ROOT/metadata.csv`` has one row per image with the columns ``image`` (path relative to
ROOT: DICOM, PNG or JPEG), ``report`` (relative path of a ``.txt`` report; may be blank
when label columns are given), ``study_id``, ``patient_id`` and ``split``
(``train``/``val``/``test``), and optionally one column per finding under its CheXpert
name with 1/0/-1/blank — when present those are the labels, otherwise the rule labeller
labels the report. ``ROOT/manifest.json``, when present, is written last by the synthetic
generator (its presence tells that the folder is complete). The synthetic default set
(``python -m domains.radiology.synthetic``) writes this layout; users' own folders use it
too.

What the loader adds to reading the CSV: the patient-level split check over the whole
table (one patient in two splits is refused), opaque sample ids, and an opaque ``path``
for rows whose image path contains the patient id.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from core.data import BadSampleLog
from domains.radiology.study_dataset import (
    SPLITS,
    StudyDataset,
    check_patient_splits,
    opaque_key,
)

METADATA_NAME = "metadata.csv"
MANIFEST_NAME = "manifest.json"
REQUIRED_COLUMNS = ("image", "report", "study_id", "patient_id", "split")


def read_folder_table(root: Path) -> pd.DataFrame:
    """``ROOT/metadata.csv`` as strings, checked for its columns and split names.

    Raises:
        FileNotFoundError: When the table is missing.
        ValueError: Naming the file and the missing columns or unknown split names.
    """
    path = root / METADATA_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {METADATA_NAME} (the folder layout's table)")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as error:
        raise ValueError(f"{path}: cannot read the table: {type(error).__name__}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; needed: {list(REQUIRED_COLUMNS)}")
    unknown = sorted(set(frame["split"]) - set(SPLITS))
    if unknown:
        raise ValueError(f"{path}: unknown split names {unknown}; use {list(SPLITS)}")
    return frame


class StudyFolder(StudyDataset):
    """Radiographs and reports of one split from a folder + ``metadata.csv``.

    Args:
        root: The folder.
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` for every row.
        transforms: A dictionary transform applied to each sample.
        strict: Raise on the first bad file instead of skipping it.
        preload: Read and check every sample at construction.
        bad_sample_log: A log shared with DataLoader workers.
        uncertainty: CheXpert uncertainty policy (see :class:`StudyDataset`).
    """

    layout = "folder"

    def __init__(self, root: str | Path, split: str | None = "train",
                 transforms: Callable | None = None, strict: bool = False,
                 preload: bool = False, bad_sample_log: BadSampleLog | None = None,
                 uncertainty: str | None = None) -> None:
        super().__init__(transforms, strict, bad_sample_log, uncertainty)
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: archive folder not found")
        if split is not None and split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
        table = read_folder_table(self.root)
        check_patient_splits(table["patient_id"], table["split"],
                             str(self.root / METADATA_NAME))
        if split is not None:
            table = table[table["split"] == split]
        rows = []
        for record in table.to_dict("records"):
            image, patient = str(record["image"]), str(record["patient_id"])
            key = opaque_key(self.layout, record["study_id"], image)
            shown = image if not patient or patient not in image else \
                f"{self.layout}/{key}{Path(image).suffix}"
            row = {"file": str(self.root / image),
                   "report_file": str(self.root / record["report"]) if record["report"] else "",
                   "path": shown, "id": key, "split": record["split"],
                   "patient_key": opaque_key("patient", patient)}
            row.update({f: record[f] for f in self.findings if f in record})
            rows.append(row)
        self._set_metadata(pd.DataFrame(rows, columns=None if rows else
                                        ["file", "report_file", "path", "id", "split",
                                         "patient_key"]))
        if preload:
            self._preload()
