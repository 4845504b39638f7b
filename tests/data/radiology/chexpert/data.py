#!/usr/bin/env python3
"""Generate a tiny CheXpert archive in its real layout.

Layout (CheXpert-v1.0-small as Stanford distributes it)::

    CheXpert-v1.0-small/train.csv, valid.csv
        Path, Sex, Age, Frontal/Lateral, AP/PA, then the 14 observations (1.0 / 0.0 /
        -1.0 uncertain / blank); Path is relative to the folder above CheXpert-v1.0-small
    CheXpert-v1.0-small/{train,valid}/patientNNNNN/studyN/viewN_{frontal,lateral}.jpg

Train: patients 00001-00003 (one with a lateral view too); valid: patients 64541-64542.
Every observation value kind occurs (1, 0, -1, blank). Images are 40 x 32 8-bit JPEGs.

Run ``python tests/data/radiology/chexpert/data.py``; files are written next to this script.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from phantoms import phantom, write_png_jpeg  # noqa: E402

NAME = "CheXpert-v1.0-small"
OBSERVATIONS = ["No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity",
                "Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis",
                "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
                "Support Devices"]
#: table, patient, study, view file, Frontal/Lateral, AP/PA, labels
IMAGES = [
    ("train", "patient00001", "study1", "view1_frontal.jpg", "Frontal", "AP",
     {"No Finding": "1.0", "Support Devices": "1.0"}),
    ("train", "patient00002", "study2", "view1_frontal.jpg", "Frontal", "AP",
     {"Lung Opacity": "1.0", "Pneumonia": "-1.0", "Pleural Effusion": "0.0"}),
    ("train", "patient00002", "study2", "view2_lateral.jpg", "Lateral", "",
     {"Lung Opacity": "1.0", "Pneumonia": "-1.0", "Pleural Effusion": "0.0"}),
    ("train", "patient00003", "study1", "view1_frontal.jpg", "Frontal", "PA",
     {"Cardiomegaly": "1.0", "Edema": "-1.0", "Atelectasis": "-1.0"}),
    ("valid", "patient64541", "study1", "view1_frontal.jpg", "Frontal", "PA",
     {"Cardiomegaly": "1.0", "Lung Opacity": "0.0", "Pleural Effusion": "1.0"}),
    ("valid", "patient64542", "study1", "view1_frontal.jpg", "Frontal", "AP",
     {"No Finding": "1.0", "Pneumothorax": "0.0"}),
]


def main() -> None:
    shutil.rmtree(HERE / NAME, ignore_errors=True)
    tables: dict[str, list[dict[str, object]]] = {"train": [], "valid": []}
    for seed, (table, patient, study, view, frontal, appa, labels) in enumerate(IMAGES):
        relative = f"{NAME}/{table}/{patient}/{study}/{view}"
        write_png_jpeg(HERE / relative, phantom(seed, opacity="Lung Opacity" in labels))
        tables[table].append({"Path": relative, "Sex": "Female", "Age": 60 + seed,
                              "Frontal/Lateral": frontal, "AP/PA": appa,
                              **{name: labels.get(name, "") for name in OBSERVATIONS}})
    for table, rows in tables.items():
        pd.DataFrame(rows).to_csv(HERE / NAME / f"{table}.csv", index=False)


if __name__ == "__main__":
    main()
