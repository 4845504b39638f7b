"""MIMIC-CXR and MIMIC-CXR-JPG (PhysioNet) in their own layout.

What PhysioNet distributes (MIMIC-CXR-JPG 2.0/2.1 and MIMIC-CXR 2.0), checked against the
PhysioNet project pages:

- images ``files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg`` (JPG) or ``.dcm`` (MIMIC-CXR), where
  ``XX`` are the first two digits of the subject id;
- reports ``files/pXX/pSUBJECT/sSTUDY.txt`` (MIMIC-CXR's ``mimic-cxr-reports.zip``; with
  the JPG images, point ``reports_root`` at the folder that holds that ``files/``);
- ``mimic-cxr-2.0.0-split.csv(.gz)``: ``dicom_id, study_id, subject_id, split``
  (``train``/``validate``/``test``, patient-disjoint; ``validate`` is our ``val``);
- ``mimic-cxr-2.0.0-metadata.csv(.gz)``: per ``dicom_id`` the ``ViewPosition`` (PA, AP,
  LATERAL, LL...) — frontal PA/AP images only by default;
- ``mimic-cxr-2.0.0-chexpert.csv(.gz)``: per ``subject_id, study_id`` the 14 CheXpert
  labels (1/0/-1/blank), used as labels when present (else the rule labeller on the
  report: ``labels="report"``).

Subject and study ids are in every file path, so samples, errors and the bad-sample log
show ``mimic-cxr/<key>.jpg`` with an opaque key instead.
"""

from __future__ import annotations

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

_CARD = cards.card("mimic_cxr")
TABLE_PREFIX: str = _CARD["table_prefix"]
#: MIMIC's split names -> ours.
SPLIT_NAMES: dict[str, str] = dict(_CARD["split_names"])
FRONTAL_VIEWS: tuple[str, ...] = tuple(_CARD["frontal_views"])


class MimicCXR(StudyDataset):
    """One split of MIMIC-CXR(-JPG): frontal radiographs, report captions, CheXpert labels.

    Args:
        root: The folder holding ``files/`` and the ``mimic-cxr-2.0.0-*.csv(.gz)`` tables.
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` for all.
        transforms: A dictionary transform applied to each sample.
        strict: Raise on the first bad file instead of skipping it.
        preload: Read and check every sample at construction.
        bad_sample_log: A log shared with DataLoader workers.
        uncertainty: CheXpert uncertainty policy (see :class:`StudyDataset`).
        views: ``ViewPosition`` values to keep (``None``: all images).
        reports_root: Folder whose ``files/`` holds the reports (default: ``root``).
        labels: ``"auto"`` (the CheXpert table when present, else the labeller),
            ``"chexpert"`` or ``"report"``.
        image_format: ``"jpg"``, ``"dcm"`` or ``"auto"`` (whichever the first image is).
    """

    layout = "mimic-cxr"

    def __init__(self, root: str | Path, split: str | None = "train",
                 transforms: Callable | None = None, strict: bool = False,
                 preload: bool = False, bad_sample_log: BadSampleLog | None = None,
                 uncertainty: str | None = None,
                 views: Sequence[str] | None = FRONTAL_VIEWS,
                 reports_root: str | Path | None = None, labels: str = "auto",
                 image_format: str = "auto") -> None:
        super().__init__(transforms, strict, bad_sample_log, uncertainty)
        self.root = Path(root)
        if split is not None and split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
        if labels not in ("auto", "chexpert", "report"):
            raise ValueError(f"labels must be auto, chexpert or report, not {labels!r}")
        table = self._split_table()
        if split is not None:
            table = table[table["split"] == split]
        if views is not None:
            table = self._keep_views(table, views)
        chexpert_table = self.find_table(self.root, _CARD["tables"]["labels"])
        if labels == "chexpert" and chexpert_table is None:
            raise FileNotFoundError(f"{self.root}: no {TABLE_PREFIX}chexpert.csv(.gz)")
        if labels != "report" and chexpert_table is not None:
            found = _read_table(chexpert_table)
            columns = [f for f in self.findings if f in found.columns]
            found = found[["subject_id", "study_id", *columns]].drop_duplicates(
                ["subject_id", "study_id"])
            table = table.merge(found, on=["subject_id", "study_id"], how="left")
        self._set_metadata(self._rows(table, Path(reports_root or self.root), image_format))
        if preload:
            self._preload()

    @classmethod
    def is_archive(cls, root: str | Path) -> bool:
        """Whether ``root`` holds MIMIC's split table (what :func:`detect_layout` asks)."""
        return cls.find_table(root, _CARD["tables"]["split"]) is not None

    @staticmethod
    def find_table(root: str | Path, name: str) -> Path | None:
        """``mimic-cxr-2.0.0-<name>.csv.gz`` or ``.csv`` in ``root`` (None when absent)."""
        for suffix in (".csv.gz", ".csv"):
            path = Path(root) / f"{TABLE_PREFIX}{name}{suffix}"
            if path.is_file():
                return path
        return None

    def _split_table(self) -> pd.DataFrame:
        path = self.find_table(self.root, _CARD["tables"]["split"])
        if path is None:
            raise FileNotFoundError(f"{self.root}: no {TABLE_PREFIX}split.csv(.gz)")
        table = _read_table(path)
        missing = {"dicom_id", "study_id", "subject_id", "split"} - set(table.columns)
        if missing:
            raise ValueError(f"{path.name}: missing columns {sorted(missing)}")
        unknown = sorted(set(table["split"]) - set(SPLIT_NAMES))
        if unknown:
            raise ValueError(f"{path.name}: unknown split names {unknown}")
        table["split"] = table["split"].map(SPLIT_NAMES)
        check_patient_splits(table["subject_id"], table["split"], path.name)
        return table

    def _keep_views(self, table: pd.DataFrame, views: Sequence[str]) -> pd.DataFrame:
        path = self.find_table(self.root, _CARD["tables"]["metadata"])
        if path is None:
            raise FileNotFoundError(f"{self.root}: no {TABLE_PREFIX}metadata.csv(.gz) to "
                                    f"select {list(views)} views (pass views=None for all)")
        meta = _read_table(path)
        if "ViewPosition" not in meta.columns or "dicom_id" not in meta.columns:
            raise ValueError(f"{path.name}: needs dicom_id and ViewPosition columns")
        wanted = {v.upper() for v in views}
        keep = set(meta.loc[meta["ViewPosition"].str.upper().isin(wanted), "dicom_id"])
        return table[table["dicom_id"].isin(keep)]

    def _rows(self, table: pd.DataFrame, reports_root: Path, image_format: str) -> pd.DataFrame:
        if image_format not in ("auto", "jpg", "dcm"):
            raise ValueError(f"image_format must be auto, jpg or dcm, not {image_format!r}")
        rows = []
        for record in table.to_dict("records"):
            subject, study = str(record["subject_id"]), str(record["study_id"])
            folder = Path("files") / f"p{subject[:2]}" / f"p{subject}"
            stem = self.root / folder / f"s{study}" / str(record["dicom_id"])
            if image_format == "auto":
                image_format = "jpg" if stem.with_suffix(".jpg").is_file() or not \
                    stem.with_suffix(".dcm").is_file() else "dcm"
            key = opaque_key(self.layout, study, record["dicom_id"])
            row = {"file": str(stem.with_suffix(f".{image_format}")),
                   "report_file": str(reports_root / folder / f"s{study}.txt"),
                   "path": f"{self.layout}/{key}.{image_format}", "id": key,
                   "split": record["split"], "patient_key": opaque_key("patient", subject)}
            row.update({f: record[f] for f in self.findings if f in record})
            rows.append(row)
        columns = ["file", "report_file", "path", "id", "split", "patient_key"]
        return pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)


def _read_table(path: Path) -> pd.DataFrame:
    """A MIMIC table (plain or gzipped CSV) as strings, blanks kept as ""."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as error:
        raise ValueError(f"{path.name}: cannot read the table: {type(error).__name__}") from None
