#!/usr/bin/env python3
"""Generate a tiny radiology folder archive (the generic folder + CSV layout).

Layout (as ``domains.radiology.study_folder`` reads it and the synthetic generator writes)::

    metadata.csv    image, report, study_id, patient_id, split (train/val/test)
    images/*.dcm|png|jpg, reports/*.txt, P003/S104.jpg (a path holding its patient id)
    manifest.json   written last

Seven studies of six patients, patient-level splits (P001-P003 train, P004 val, P005-P006
test); the radiographs are 40 x 32 phantoms in every stored form the reader handles:
DICOM MONOCHROME2 with a window, DICOM MONOCHROME1 RLE-compressed without a window,
DICOM with rescale slope/intercept and window, 8-bit PNG and JPEG. No label columns: the
rule labeller labels the reports.

Run ``python tests/data/radiology/folder/data.py``; files are written next to this script.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from phantoms import dicom_dataset, phantom, write_dicom, write_png_jpeg  # noqa: E402

#: (patient, study, image path, how it is stored, split, opacity, report)
STUDIES = [
    ("P001", "S101", "images/S101.dcm", "mono2-window", "train", False,
     "FINDINGS: Heart size is normal. Lungs are clear.\n"
     "IMPRESSION: No acute cardiopulmonary process."),
    ("P001", "S102", "images/S102.dcm", "mono1-rle", "train", True,
     "IMPRESSION: Right lower lobe opacity concerning for pneumonia. No pleural effusion."),
    ("P002", "S103", "images/S103.png", "png", "train", False,
     "FINDINGS: Moderate cardiomegaly. Small left pleural effusion.\n"
     "IMPRESSION: Cardiomegaly and left effusion."),
    ("P003", "S104", "P003/S104.jpg", "jpg", "train", False,
     "IMPRESSION: Cannot exclude a small right pneumothorax."),
    ("P004", "S105", "images/S105.dcm", "mono2-rescale", "val", False,
     "IMPRESSION: Mild pulmonary edema."),
    ("P005", "S106", "images/S106.jpg", "jpg", "test", False,
     "IMPRESSION: No pneumothorax. Endotracheal tube in standard position."),
    ("P006", "S107", "images/S107.png", "png", "test", True,
     "FINDINGS: Atelectasis at the left base. No effusion.\nIMPRESSION: ___"),
]


def main() -> None:
    for name in ("images", "reports", "P003", "metadata.csv", "manifest.json"):
        target = HERE / name
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    rows = []
    for index, (patient, study, image, kind, split, opacity, report) in enumerate(STUDIES):
        density = phantom(index, opacity=opacity)
        path = HERE / image
        if kind == "mono2-window":
            write_dicom(path, dicom_dataset(density, window=(2048, 4096), uid_seed=index))
        elif kind == "mono1-rle":
            write_dicom(path, dicom_dataset(density, monochrome1=True, uid_seed=index), rle=True)
        elif kind == "mono2-rescale":
            write_dicom(path, dicom_dataset(density, slope=2.0, intercept=-100.0,
                                            window=(3995, 8190), uid_seed=index))
        else:
            write_png_jpeg(path, density)
        (HERE / "reports").mkdir(exist_ok=True)
        (HERE / "reports" / f"{study}.txt").write_text(report + "\n", encoding="utf-8")
        rows.append({"image": image, "report": f"reports/{study}.txt", "study_id": study,
                     "patient_id": patient, "split": split})
    with (HERE / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (HERE / "manifest.json").write_text(json.dumps(
        {"generator": "tests/data/radiology/folder/data.py", "studies": len(rows)}, indent=1)
        + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
