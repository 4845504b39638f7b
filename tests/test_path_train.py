"""Pathology training: a fast_dev_run writes a complete run folder; flags, variants, transforms."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from core.checkpoint import load_run
from domains.pathology.run_config import build_parser, resolve_run_config
from domains.pathology.transforms import prepare, training_augment
from domains.pathology.variants import build_variants

sys.path.insert(0, str(Path(__file__).parent / "data" / "pathology"))
from data import write_slide, write_synthetic_like  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Nine classes x three sites (one split each) x four 48 px tiles; two test slides."""
    root = write_synthetic_like(tmp_path_factory.mktemp("path-train") / "set", per_site=4,
                                size=48)
    rows = ["slide_id,path,label,site,split,tumour_boxes"]
    for name, label, site, split in (("tumour", "TUM", "siteC", "test"),
                                     ("normal", "NORM", "siteC", "test"),
                                     ("val-tumour", "TUM", "siteB", "val"),
                                     ("val-normal", "NORM", "siteB", "val")):
        write_slide(root / "slides" / f"{name}.tiff", mpp=0.5, levels=2, height=256, width=384,
                    discs=((128, 192, 120),))
        boxes = '"[[128, 64, 256, 192]]"' if label == "TUM" else '"[]"'
        rows.append(f"{name},slides/{name}.tiff,{label},{site},{split},{boxes}")
    (root / "slides.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from domains.pathology.train import main

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("path-run") / "run"
    return main(["--model", "path-micro", "--data", str(data), "--out", str(out),
                 "--fast-dev-run", "--batch-size", "8", "--set", "evaluation.max_templates=2",
                 "--set", "evaluation.slide_tile_size=64",
                 "--set", "evaluation.top_k_candidates=[1,3]"])


def test_run_folder(run: Path) -> None:
    for name in ("model.safetensors", "config.json", "trained.json", "metrics.json",
                 "report.md", "run.yaml", "confusion_matrix.png", "slide_heatmap.png"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["domain"] == "pathology" and config["model"]["name"] == "path-micro"
    assert config["model"]["extra"]["domain"] == "pathology"
    metrics = json.loads((run / "metrics.json").read_text())
    summary = metrics["summary"]
    assert {"tile_balanced_accuracy", "slide_balanced_accuracy"} <= set(summary)
    assert 0 <= summary["tile_balanced_accuracy"] <= 1
    assert summary["tile_balanced_accuracy_chance"] == pytest.approx(1 / 9)
    tiles = metrics["variants"]["main"]["tile_zero_shot"]
    assert tiles["tiles"] == 9 * 4 and tiles["own_stain"] == "none"
    for stain in ("none", "macenko"):
        assert set(tiles[stain]) == {"single", "ensemble", "descriptions"}
        for entry in tiles[stain].values():
            assert sum(map(sum, entry["confusion"])) == 36
            assert len(entry["per_class_f1"]) == 9
    assert metrics["variants"]["main"]["retrieval"]["random_recall@1"] == pytest.approx(4 / 36)
    slides = metrics["variants"]["main"]["slide_zero_shot"]
    assert slides["samples"] == 2 and slides["tile_size"] == 64
    assert slides["k_source"] == "validation" and slides["k"] in (1, 3)  # chosen on val
    assert set(slides["validation_balanced_accuracy_by_k"]) == {"1", "3"}
    assert slides["balanced_accuracy_by_k"][str(slides["k"])] == slides["balanced_accuracy"]
    assert slides["classes"] == ["normal colon mucosa", "colorectal adenocarcinoma epithelium"]
    assert slides["chance"]["balanced_accuracy"] == 0.5
    assert slides["tiles"] >= 6 and slides["seconds_per_1000_tiles"] > 0
    for entry in slides["per_slide"]:
        assert sum(entry["probabilities"].values()) == pytest.approx(1.0)
    assert summary["slide_balanced_accuracy"] == slides["balanced_accuracy"]
    report = (run / "report.md").read_text()
    assert "ensemble" in report and "descriptions" in report and "Recall@10" in report
    assert set(load_run(run).towers) == {"image", "text"}


def test_run_config_flags(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--text-model", "some/biomedical-bert", "--unfreeze-top",
                                      "2", "--stain-normalisation", "macenko", "--set",
                                      "data.stain_scale=0.2", "--out", str(tmp_path)])
    config = resolve_run_config(args)
    overrides = config["model_overrides"]
    assert overrides["towers"]["text"] == {"model": "some/biomedical-bert", "unfreeze_top": 2}
    assert overrides["extra"]["stain_normalisation"] == "macenko"
    assert config["data"]["stain_scale"] == 0.2 and config["model"] == "path-tiny"
    variants = build_variants("path-micro", ["clip"], {"loss": {"type": "soft_target"},
                                                       **overrides})
    assert [v.name for v in variants] == ["main", "clip"]
    assert variants[1].config.loss == {"type": "clip"} and variants[0].image_size == 48
    assert variants[0].config.extra["stain_normalisation"] == "macenko"
    with pytest.raises(ValueError, match="unknown companions"):
        build_variants("path-micro", ["rgb"])
    with pytest.raises(ValueError, match="in_chans: 3"):
        build_variants("cxr-micro", [])


def test_training_transforms() -> None:
    tile = {"image": torch.rand(3, 80, 70), "caption": "Sheets of adipocytes."}
    prepared = prepare({"input_size": 48})(tile)["image"]
    assert prepared.shape == (3, 48, 48)
    augment = prepare({"input_size": 48}, augment=training_augment(seed=3))
    first = [augment(tile)["image"] for _ in range(4)]
    again = prepare({"input_size": 48}, augment=training_augment(seed=3))
    assert all(torch.equal(a, again(tile)["image"]) for a in first)  # seeded
    assert not torch.equal(first[0], first[1])  # draws differ from tile to tile
    assert not torch.allclose(first[0], prepared)
    with pytest.raises(ValueError, match="stain_normalisation"):
        prepare({"input_size": 48, "stain_normalisation": "reinhard"})
