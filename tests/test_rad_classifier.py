"""ChestXrayClassifier and the radiology metrics: DataFrames out, AUROC/bootstrap, Recall@k."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import core
from core.checkpoint import save_run
from domains.radiology import ChestXrayClassifier, cards
from domains.radiology.evaluation import (
    auroc_table,
    bootstrap_auroc,
    finding_prompts,
    random_recall,
    retrieval_metrics,
    same_finding_set,
    scored_findings,
)
from domains.radiology.synthetic import generate_dataset

NAN = float("nan")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An (untrained) cxr-micro model saved as a radiology run folder."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("rad-clf") / "run"
    save_run(core.create_model("cxr-micro"), folder, extra={"domain": "radiology"})
    return folder


@pytest.fixture(scope="module")
def dicoms(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = generate_dataset(tmp_path_factory.mktemp("rad-clf-data") / "set", n_studies=4,
                            size=64, workers=1, progress=False)
    return sorted((root / "images").glob("*.dcm"))


def test_predict_returns_requested_findings(run: Path, dicoms: list[Path]) -> None:
    classifier = ChestXrayClassifier.from_run(run)
    findings = ["Pleural Effusion", "Cardiomegaly", "pleural thickening"]  # any vocabulary
    table = classifier.predict(dicoms, findings=findings)
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == findings
    assert list(table.index) == [str(p) for p in dicoms]
    assert ((table.values > 0) & (table.values < 1)).all()
    arrays = [np.random.default_rng(i).random((90, 70)) for i in range(2)]
    described = classifier.predict(arrays, findings=["Pneumothorax"], prompts="descriptions")
    assert described.shape == (2, 1) and list(described.index) == [0, 1]
    everything = classifier.predict(dicoms[0])
    assert list(everything.columns) == cards.findings() and len(everything) == 1


def test_probability_is_chexzero_softmax(run: Path, dicoms: list[Path]) -> None:
    classifier = ChestXrayClassifier.from_run(run)
    model = classifier.run.model
    custom = {"Pneumothorax": {"positive": ["collapsed lung", "pneumothorax"],
                               "negative": ["no pneumothorax"]}}
    table = classifier.predict(dicoms[:2], findings=["Pneumothorax"], custom_prompts=custom)
    with torch.no_grad():
        image = classifier.embed(dicoms[:2])  # (2, D)
        positive = torch.nn.functional.normalize(
            model.encode("text", custom["Pneumothorax"]["positive"]).sum(0), dim=0)
        negative = model.encode("text", custom["Pneumothorax"]["negative"])[0]
        logits = model.scale() * torch.stack([image @ positive, image @ negative], 1)
    expected = logits.softmax(1)[:, 0].numpy()
    np.testing.assert_allclose(table["Pneumothorax"].to_numpy(), expected, rtol=1e-4,
                               atol=1e-5)


def test_prompts_come_from_the_card() -> None:
    assert finding_prompts("Pleural Effusion") == {"positive": ["pleural effusion"],
                                                   "negative": ["no pleural effusion"]}
    described = finding_prompts("Cardiomegaly", "descriptions")
    assert described["positive"] and described["negative"]
    assert described["positive"] != ["cardiomegaly"]
    assert finding_prompts("Pleural Thickening", "descriptions")["negative"] == \
        ["no pleural thickening"]
    with pytest.raises(ValueError, match="prompt kind"):
        finding_prompts("Cardiomegaly", "poems")


def test_auroc_and_bootstrap_on_a_hand_built_case() -> None:
    # scikit-learn's roc_auc_score example: AUROC 0.75; uncertain and unmentioned left out.
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.9, 0.2])
    labels = np.array([0, 0, 1, 1, -1, NAN])
    result = bootstrap_auroc(scores, labels, resamples=500, seed=1)
    assert result["auroc"] == pytest.approx(0.75)
    assert (result["positives"], result["negatives"]) == (2, 2)
    assert 0.0 <= result["low"] <= 0.75 <= result["high"] <= 1.0
    assert result["low"] < result["high"]
    perfect = bootstrap_auroc(np.arange(10.0), np.array([0] * 5 + [1] * 5), resamples=200)
    assert perfect["auroc"] == perfect["low"] == perfect["high"] == 1.0
    assert np.isnan(bootstrap_auroc(scores[:2], np.array([0, 0]))["auroc"])
    probabilities = np.stack([scores, 1 - scores], 1)
    table_labels = np.stack([labels, np.array([1, 1, 0, 0, 0, 1])], 1)
    table = auroc_table(probabilities, table_labels, ["A", "B"], ["A", "B"], resamples=50)
    assert table["per_finding"]["B"]["auroc"] == pytest.approx(8 / 9)  # 8 of 9 pairs ordered
    assert table["mean_auroc"] == pytest.approx((0.75 + 8 / 9) / 2)
    assert scored_findings(table_labels, ["A", "B"], min_cases=3) == ["B"]


def test_retrieval_hits_are_same_finding_sets() -> None:
    labels = np.array([[1, 0, NAN], [-1, 0, 0], [0, 1, NAN], [0, 0, 0]], dtype=float)
    same = same_finding_set(labels, labels)
    assert same[0, 1] and not same[0, 2] and same[3, 3] and not same[2, 3]
    assert random_recall(np.eye(4, dtype=bool), 1) == pytest.approx(0.25)
    assert random_recall(np.eye(4, dtype=bool), 4) == pytest.approx(1.0)
    features = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    perfect = retrieval_metrics(features, features, labels)
    assert perfect["report_to_image_recall@1"] == 1.0
    assert perfect["image_to_report_recall@1"] == 1.0
    assert perfect["finding_sets"] == 3 and perfect["studies"] == 4
    assert perfect["random_recall@10"] == 1.0  # k >= N: every ranking hits
