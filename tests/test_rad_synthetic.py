"""The synthetic chest-radiograph set: valid DICOMs, varied encodings, reports, patient splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from domains.radiology.image_io import read_radiograph
from domains.radiology.synthetic import (
    CHEXPERT,
    DRAWN_FINDINGS,
    UnsafeOutputError,
    dataset_problem,
    default_dataset,
    generate_dataset,
)
from domains.radiology.synthetic.phantom import Anatomy, Study, draw_radiograph


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rad") / "set"
    return generate_dataset(root, n_studies=150, size=64, workers=1, progress=False)


def _table(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "metadata.csv", keep_default_na=False)


def test_layout_and_manifest(dataset: Path) -> None:
    table = _table(dataset)
    assert len(table) == 150
    assert {"image", "report", "study_id", "patient_id", "split", *CHEXPERT} <= set(table)
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["studies"] == 150 and manifest["generator"].endswith("synthetic")
    assert dataset_problem(dataset) is None
    for row in table.itertuples():
        assert (dataset / row.image).is_file() and (dataset / row.report).is_file()
        assert row.patient_id not in row.image and row.patient_id not in row.report


def test_dicoms_are_valid_and_varied(dataset: Path) -> None:
    table = _table(dataset)
    photometric, syntaxes, slopes = set(), set(), set()
    for row in table.itertuples():
        ds = pydicom.dcmread(dataset / row.image)
        assert ds.file_meta.TransferSyntaxUID == row.transfer_syntax
        assert ds.Modality == "DX" and ds.PatientID == row.patient_id
        pixels = ds.pixel_array  # decodes compressed syntaxes too
        assert pixels.shape == (64, 64) and pixels.dtype == np.uint16
        assert pixels.max() < 2 ** ds.BitsStored
        assert float(ds.WindowWidth) > 0
        photometric.add(ds.PhotometricInterpretation)
        syntaxes.add(ds.file_meta.TransferSyntaxUID)
        slopes.add(float(ds.RescaleSlope))
    assert photometric == {"MONOCHROME1", "MONOCHROME2"}
    assert {ExplicitVRLittleEndian, RLELossless, JPEG2000Lossless} <= syntaxes
    assert len(slopes) > 1


def test_bright_is_dense_whatever_the_encoding(dataset: Path) -> None:
    """Read through the DICOM pipeline, lungs are dark and the spine bright in every file."""
    table = _table(dataset)
    for photometric in ("MONOCHROME1", "MONOCHROME2"):
        rows = table[table["photometric"] == photometric].head(15)
        lung, spine = [], []
        for row in rows.itertuples():
            image = read_radiograph(dataset / row.image)  # (H, W) in [0, 1]
            assert image.shape == (64, 64) and 0 <= image.min() and image.max() <= 1
            lung.append(image[20:30, 14:22].mean())
            spine.append(image[20:30, 30:34].mean())
        assert np.mean(spine) > np.mean(lung) + 0.3, photometric


def test_patient_level_splits(dataset: Path) -> None:
    table = _table(dataset)
    splits_per_patient = table.groupby("patient_id")["split"].nunique()
    assert (splits_per_patient == 1).all()
    assert (table.groupby("patient_id").size() > 1).any()  # some patients come back
    assert set(table["split"]) == {"train", "val", "test"}


def test_reports_and_labels(dataset: Path) -> None:
    table = _table(dataset)
    reports = {row.study_id: (dataset / row.report).read_text() for row in table.itertuples()}
    text = "\n".join(reports.values()).lower()
    assert "no pleural effusion" in text or "no effusion" in text
    assert "no pneumothorax" in text
    assert "cannot exclude" in text or "possible" in text
    assert "___" in text
    for finding in DRAWN_FINDINGS:
        values = set(table[finding].astype(str))
        assert {"0", "1"} <= values, finding
    assert (table[list(DRAWN_FINDINGS)].astype(str) == "-1").any().any()
    normal = table[table["No Finding"].astype(str) == "1"]
    assert len(normal) and (normal[list(DRAWN_FINDINGS)].astype(str) == "0").all().all()
    assert (table["Edema"] == "").all()  # not simulated: blank, not negative


def test_phantom_findings_change_the_image() -> None:
    anatomy = Anatomy(size=1.0, lung_height=0.54, ctr=0.42, dome=0.07, seed=3)
    quiet = Study(noise=0.0, blur=0.5)

    def draw(findings: dict) -> np.ndarray:
        return draw_radiograph(anatomy, Study(findings=findings, noise=0.0, blur=0.5), 96,
                               np.random.default_rng(0))

    normal = draw_radiograph(anatomy, quiet, 96, np.random.default_rng(0))
    heart_row = normal[60]  # across the heart
    big = draw({"Cardiomegaly": {"severity": "severe", "side": "both"}})[60]
    assert (big > 0.45).sum() > (heart_row > 0.45).sum() + 8  # a wider dense silhouette
    effusion = draw({"Pleural Effusion": {"severity": "severe", "side": "right"}})
    base = slice(50, 64), slice(18, 30)  # the right lower zone (image left)
    assert effusion[base].mean() > normal[base].mean() + 0.1
    assert abs(effusion[:, 70:].mean() - normal[:, 70:].mean()) < 0.01  # left untouched


def test_never_overwrites_foreign_data(tmp_path: Path, dataset: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(UnsafeOutputError, match="not a data set written by"):
        generate_dataset(foreign, n_studies=4, size=32, workers=1, progress=False)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    ours = generate_dataset(tmp_path / "ours", n_studies=4, size=32, workers=1, progress=False)
    with pytest.raises(UnsafeOutputError, match="--overwrite"):
        generate_dataset(ours, n_studies=4, size=32, workers=1, progress=False)
    (ours / "images" / "extra.png").write_bytes(b"x")  # now holds something not ours
    with pytest.raises(UnsafeOutputError):
        generate_dataset(ours, n_studies=4, size=32, workers=1, progress=False, overwrite=True)
    (ours / "images" / "extra.png").unlink()
    generate_dataset(ours, n_studies=6, size=32, workers=1, progress=False, overwrite=True)
    assert len(_table(ours)) == 6
    assert not list(tmp_path.glob(".*partial*"))


def test_default_dataset_is_cached(tmp_path: Path) -> None:
    first = default_dataset(tmp_path, workers=1, progress=False, n_studies=5, size=32)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    again = default_dataset(tmp_path, workers=1, progress=False, n_studies=5, size=32)
    assert again == first and (first / "manifest.json").stat().st_mtime_ns == stamp
    assert first.parent == tmp_path and "n_studies5" in first.name
