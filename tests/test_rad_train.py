"""Radiology training: a fast_dev_run writes a complete run folder that never holds a patient id."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from core.checkpoint import load_run
from domains.radiology.run_config import build_parser, resolve_run_config
from domains.radiology.synthetic import generate_dataset
from domains.radiology.transforms import ReportSentences, TrainingTargets, prepare
from domains.radiology.variants import build_variants


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rad-train") / "set"
    return generate_dataset(root, n_studies=90, size=64, workers=1, progress=False)


@pytest.fixture(scope="module")
def run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from domains.radiology.train import main

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("rad-run") / "run"
    return main(["--model", "cxr-micro", "--data", str(data), "--out", str(out),
                 "--fast-dev-run", "--batch-size", "8", "--set", "evaluation.bootstrap=20",
                 "--set", "evaluation.min_cases=1", "--set", "companions=[clip]"])


def test_run_folder(run: Path) -> None:
    for name in ("model.safetensors", "config.json", "trained.json", "metrics.json",
                 "report.md", "run.yaml", "roc_curves.png", "retrieval_example.png",
                 "companions/clip/model.safetensors"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["domain"] == "radiology" and config["model"]["name"] == "cxr-micro"
    metrics = json.loads((run / "metrics.json").read_text())
    summary = metrics["summary"]
    assert 0 <= summary["mean_auroc"] <= 1 and 0 <= summary["mean_auroc_descriptions"] <= 1
    assert 0 <= summary["report_to_image_recall@10"] <= 1
    assert summary["mean_auroc_label_prior"] == pytest.approx(0.5)
    main = metrics["variants"]["main"]
    assert set(main["zero_shot"]) == {"names", "descriptions", "random", "label_prior"}
    for entry in main["zero_shot"]["names"]["per_finding"].values():
        assert entry["low"] <= entry["auroc"] <= entry["high"]
    assert "clip" in metrics["variants"]
    report = (run / "report.md").read_text()
    assert "names" in report and "descriptions" in report and "Recall@10" in report
    model = load_run(run)
    assert set(model.towers) == {"image", "text"}


def test_no_patient_id_in_any_file(run: Path, data: Path) -> None:
    patients = set(pd.read_csv(data / "metadata.csv")["patient_id"].astype(str))
    assert len(patients) > 10
    files = [p for p in run.rglob("*") if p.is_file()]
    assert len(files) > 8
    for path in files:
        content = path.read_bytes()
        for patient in patients:
            assert patient.encode() not in content, f"{patient} found in {path}"


def test_run_config_flags(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--text-model", "some/biomedical-bert", "--unfreeze-top",
                                      "2", "--set", "data.uncertain=1", "--out",
                                      str(tmp_path)])
    config = resolve_run_config(args)
    assert config["model_overrides"]["towers"]["text"] == {"model": "some/biomedical-bert",
                                                           "unfreeze_top": 2}
    assert config["data"]["uncertain"] == 1 and config["model"] == "cxr-tiny"
    variants = build_variants("cxr-micro", ["clip"], {"loss": {"type": "soft_target"}})
    assert [v.name for v in variants] == ["main", "clip"]
    assert variants[1].config.loss == {"type": "clip"} and variants[0].image_size == 48
    with pytest.raises(ValueError, match="unknown companions"):
        build_variants("cxr-micro", ["rgb"])


def test_training_transforms() -> None:
    label = torch.tensor([1.0, 0.0, -1.0, float("nan")])
    target = TrainingTargets(0.5)({"label": label})["label"]
    assert target.tolist() == [1.0, 0.0, 0.5, 0.0]
    sample = {"image": torch.rand(1, 80, 60), "caption": "A one. B two. C three. D four."}
    prepared = prepare({"input_size": 48})(sample)["image"]
    assert prepared.shape == (1, 48, 48)
    rewrite = ReportSentences(p=1.0, seed=3)
    shortened = {rewrite(sample)["caption"] for _ in range(20)}
    assert len(shortened) > 3
    for caption in shortened:
        kept = [s for s in caption.split(". ") if s]
        assert 1 <= len(kept) <= 4 and all(s.rstrip(".") in sample["caption"] for s in kept)
    assert ReportSentences(p=0.0)(sample)["caption"] == sample["caption"]
