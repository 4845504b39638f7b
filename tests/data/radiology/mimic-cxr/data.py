#!/usr/bin/env python3
"""Generate a tiny MIMIC-CXR-JPG archive in PhysioNet's layout (with MIMIC-CXR's reports).

Layout (MIMIC-CXR-JPG 2.x and MIMIC-CXR 2.0 as PhysioNet distributes them)::

    files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg      XX = first two digits of the subject id
    files/pXX/pSUBJECT/sSTUDY.txt               the free-text report of the study
    mimic-cxr-2.0.0-split.csv.gz                dicom_id, study_id, subject_id, split
    mimic-cxr-2.0.0-metadata.csv.gz             dicom_id, subject_id, study_id, ..., ViewPosition
    mimic-cxr-2.0.0-chexpert.csv.gz             subject_id, study_id, 14 labels (alphabetical)

Five subjects (made-up ids in the real formats), seven studies, ten images (frontal PA/AP
and lateral). Split: train (10000032, 10000764, 10000935), validate (10001217), test
(11000183). Broken on purpose: study s56699142 of subject 10000764 has no report file.
Images are 40 x 32 8-bit grey-scale JPEGs.

Run ``python tests/data/radiology/mimic-cxr/data.py``; files are written next to this script.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from phantoms import phantom, write_png_jpeg  # noqa: E402

LABELS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum",
          "Fracture", "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion",
          "Pleural Other", "Pneumonia", "Pneumothorax", "Support Devices"]

REPORT = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___F with cough  // eval for pneumonia

 COMPARISON:  ___

 FINDINGS:

 {findings}

 IMPRESSION:

 {impression}
"""

#: subject, study, split, report (findings, impression) or None, CheXpert labels,
#: [(dicom_id, ViewPosition)]
STUDIES = [
    ("10000032", "50414267", "train",
     ("There is no focal consolidation, pleural effusion or pneumothorax.",
      "No acute cardiopulmonary process."), {"No Finding": "1.0"},
     [("02aa804e-bde0afdd-112c0b34-7bc16630-4e384014", "PA"),
      ("174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962", "LATERAL")]),
    ("10000032", "53189527", "train",
     ("Small right pleural effusion. Heart size is mildly enlarged.",
      "Small right effusion, possible mild cardiomegaly."),
     {"Pleural Effusion": "1.0", "Cardiomegaly": "-1.0"},
     [("2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab", "AP")]),
    ("10000764", "57375967", "train",
     ("Patchy opacity in the left lower lobe.", "Left lower lobe pneumonia."),
     {"Lung Opacity": "1.0", "Pneumonia": "1.0", "Pleural Effusion": "0.0"},
     [("096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4", "PA"),
      ("b79e55c3-735ce5ac-64412506-cdc9ea79-f1af521f", "LL")]),
    ("10000764", "56699142", "train", None, {"Edema": "1.0"},
     [("68b5c4b1-227d0485-9cc38c3f-7b84ab51-4b472714", "PA")]),
    ("10000935", "50578979", "train",
     ("Endotracheal tube 4 cm above the carina. No pneumothorax.", "Tubes in place."),
     {"Support Devices": "1.0", "Pneumothorax": "0.0", "No Finding": "1.0"},
     [("d0b71acc-b5a62046-bbb5f6b8-7b173b85-65cdf738", "AP")]),
    ("10001217", "58913004", "validate",
     ("Mild pulmonary edema.", "Mild edema."), {"Edema": "1.0"},
     [("5e54fc9c-37c49834-9ac3b915-55811712-9d959d26", "AP")]),
    ("11000183", "51967845", "test",
     ("Left basal atelectasis.", "Atelectasis, no pneumonia."),
     {"Atelectasis": "1.0", "Pneumonia": "0.0"},
     [("3b8f3d4e-5b2a0a9a-1f0e6a55-6f1b2c3d-4e5f6a7b", "PA"),
      ("7c6d5e4f-3a2b1c0d-9e8f7a6b-5c4d3e2f-1a0b9c8d", "LATERAL")]),
]


def main() -> None:
    shutil.rmtree(HERE / "files", ignore_errors=True)
    split_rows, meta_rows, label_rows = [], [], []
    seed = 0
    for subject, study, split, report, labels, images in STUDIES:
        folder = HERE / "files" / f"p{subject[:2]}" / f"p{subject}"
        for dicom_id, view in images:
            write_png_jpeg(folder / f"s{study}" / f"{dicom_id}.jpg",
                           phantom(seed, opacity="Lung Opacity" in labels))
            seed += 1
            split_rows.append({"dicom_id": dicom_id, "study_id": study,
                               "subject_id": subject, "split": split})
            meta_rows.append({"dicom_id": dicom_id, "subject_id": subject, "study_id": study,
                              "PerformedProcedureStepDescription": "CHEST (PA AND LAT)",
                              "ViewPosition": view, "Rows": 40, "Columns": 32,
                              "StudyDate": 21800506, "StudyTime": 213014.531})
        if report is not None:
            (folder / f"s{study}.txt").write_text(
                REPORT.format(findings=report[0], impression=report[1]), encoding="utf-8")
        label_rows.append({"subject_id": subject, "study_id": study,
                           **{name: labels.get(name, "") for name in LABELS}})
    gzip = {"method": "gzip", "mtime": 0}
    pd.DataFrame(split_rows).to_csv(HERE / "mimic-cxr-2.0.0-split.csv.gz", index=False,
                                    compression=gzip)
    pd.DataFrame(meta_rows).to_csv(HERE / "mimic-cxr-2.0.0-metadata.csv.gz", index=False,
                                   compression=gzip)
    pd.DataFrame(label_rows).to_csv(HERE / "mimic-cxr-2.0.0-chexpert.csv.gz", index=False,
                                    compression=gzip)


if __name__ == "__main__":
    main()
