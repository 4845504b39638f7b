"""The radiology archive layouts in one table: detect a folder's layout, open a split.

Used by training (the data module), evaluation, the classifier's folder helpers and the
command lines, so a layout is named, detected and opened the same way everywhere:

- ``folder`` — ``metadata.csv`` + images + reports (the synthetic set and users' own);
- ``mimic-cxr`` — MIMIC-CXR / MIMIC-CXR-JPG as PhysioNet distributes them;
- ``chexpert`` — CheXpert (``train.csv`` / ``valid.csv``, no reports).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.data import BadSampleLog, open_layout
from core.data import detect_layout as core_detect_layout
from domains.radiology.chexpert import CheXpert
from domains.radiology.mimic import MimicCXR
from domains.radiology.study_dataset import StudyDataset
from domains.radiology.study_folder import METADATA_NAME, StudyFolder

#: Layout name -> loader class (each takes ``root, split=..., transforms=..., strict=...``).
LAYOUTS: dict[str, type[StudyFolder] | type[MimicCXR] | type[CheXpert]] = {
    "folder": StudyFolder, "mimic-cxr": MimicCXR, "chexpert": CheXpert,
}


def detect_layout(root: str | Path) -> str:
    """The layout of an archive folder, from the files its loader needs.

    Raises:
        FileNotFoundError: Naming the folder when it matches no known layout.
    """
    return core_detect_layout(root, [
        ("folder", lambda folder: (folder / METADATA_NAME).is_file()),
        ("mimic-cxr", MimicCXR.is_archive),
        ("chexpert", lambda folder: CheXpert.find_root(folder) is not None),
    ], f"not a known radiology layout (no {METADATA_NAME}, mimic-cxr-2.0.0-split.csv(.gz) "
       f"or CheXpert train.csv/valid.csv); pass the layout explicitly, one of "
       f"{', '.join(LAYOUTS)}")


def open_dataset(root: str | Path, split: str | None, transforms: Any = None,
                 strict: bool = False, layout: str | None = None,
                 bad_sample_log: BadSampleLog | None = None, **options: Any) -> StudyDataset:
    """Open one split of a radiology archive in any supported layout.

    Args:
        root: Archive folder.
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` for all.
        transforms: Dictionary transform.
        strict: Raise on bad files instead of skipping them.
        layout: One of :data:`LAYOUTS` (default: detected).
        bad_sample_log: Where DataLoader workers record the samples they skip.
        **options: The loader's own options (``uncertainty``, ``preload``, ``views``,
            ``reports_root``...; see each loader).

    Returns:
        A dataset of sample dicts.
    """
    return open_layout(LAYOUTS, layout or detect_layout(root), root, split=split,
                       transforms=transforms, strict=strict, bad_sample_log=bad_sample_log,
                       **options)
