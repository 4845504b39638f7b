"""The image <-> text run pieces in core: evaluation CLI, variants, training curves, input size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core.image_text_runs import build_variants, evaluate_run, evaluation_parser, run_variants
from core.model_input import input_size
from core.runs import EVALUATION_FILE, write_training_curves
from domains.pathology.evaluate import main as path_evaluate


def saved_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    config = {"kind": "run", "model": "path-micro", "data": {"root": str(tmp_path / "orig"),
              "layout": "synthetic", "options": {"a": 1}}}
    (run / "run.yaml").write_text(yaml.safe_dump(config))
    return run


def test_evaluate_run_replaces_data_sets_split_and_marks_the_folder(tmp_path: Path) -> None:
    run, seen = saved_run(tmp_path), {}

    def evaluate(models: dict, variants: list, config: dict, root: Path, out: Path,
                 run: Path) -> dict[str, Any]:
        seen.update(models=models, config=config, root=root, out=out, run=run)
        return {"ok": 1}

    parser = evaluation_parser(prog="p", description="d", set_example="x=1")
    args = parser.parse_args([str(run), "--data", str(tmp_path / "other"), "--layout", "folder",
                              "--set", "folder_split=test", "--set", "n=[1, 2]",
                              "--split", "val"])
    result = evaluate_run(args, data_root=lambda c: Path(c["data"]["root"]),
                          variants=lambda c: [], evaluate=evaluate)
    assert result == {"ok": 1} and seen["models"] == {}
    data = seen["config"]["data"]
    assert data == {"root": str(tmp_path / "other"), "layout": "folder",
                    "options": {"folder_split": "test", "n": [1, 2]}}  # old options reset
    assert seen["config"]["evaluation"]["split"] == "val"
    assert seen["out"] == run / "eval" / "other" and seen["run"] == run
    marker = yaml.safe_load((seen["out"] / EVALUATION_FILE).read_text())
    assert marker == {"run": str(run.resolve()), "data": str((tmp_path / "other").resolve()),
                      "layout": "folder", "split": "val"}


def test_evaluate_run_refuses_the_run_folder_itself(tmp_path: Path) -> None:
    run = saved_run(tmp_path)
    args = evaluation_parser(prog="p", description="d", set_example="x=1").parse_args(
        [str(run), "--out", str(run)])
    with pytest.raises(ValueError, match="is the run folder"):
        evaluate_run(args, data_root=lambda c: Path(c["data"]["root"]),
                     variants=lambda c: [], evaluate=lambda *a, **k: None)


def test_pathology_top_k_flag_reaches_the_config(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    run, seen = saved_run(tmp_path), {}
    import domains.pathology.evaluate as module

    monkeypatch.setattr(module, "evaluate_variants",
                        lambda models, variants, config, root, out, run: seen.update(config))
    monkeypatch.setattr(module, "variants_for", lambda config: [])
    path_evaluate([str(run), "--top-k", "5"])
    assert seen["evaluation"] == {"split": "test", "top_k": 5}
    assert seen["data"]["options"] == {"a": 1}  # kept without --data
    path_evaluate([str(run), "--top-k", "validation"])
    assert seen["evaluation"]["top_k"] == "validation"


def test_variants_main_first_with_clip_companion() -> None:
    config = {"model": "path-micro", "companions": ["clip"], "loss": {"type": "soft_target"},
              "model_overrides": {"extra": {"input_size": 48}}}
    variants = run_variants(config, build_variants)
    assert [v.name for v in variants] == ["main", "clip"]
    assert variants[0].loss is None and variants[1].loss == {"type": "clip"}
    assert variants[1].config.name == "path-micro-clip"
    assert variants[0].image_size == 48 == variants[1].image_size
    with pytest.raises(ValueError, match="unknown companions"):
        build_variants("path-micro", ["rgb"])
    with pytest.raises(ValueError, match="refused"):
        build_variants("path-micro", [], check=lambda c: (_ for _ in ()).throw(
            ValueError("refused")))


def test_input_size_checked() -> None:
    assert input_size({"input_size": 96}) == 96
    for bad in ({}, {"input_size": 8}, {"input_size": "96"}):
        with pytest.raises(ValueError, match="extra.input_size"):
            input_size(bad)


def test_training_curves_only_when_logged(tmp_path: Path) -> None:
    class V:
        def __init__(self, name: str) -> None:
            self.name = name

    write_training_curves(tmp_path, [V("main")])
    assert not (tmp_path / "curves.png").exists()
    logs = tmp_path / "logs" / "main"
    logs.mkdir(parents=True)
    (logs / "metrics.csv").write_text("step,epoch,train/loss,val/loss\n0,0,2.0,\n1,0,1.5,1.8\n")
    write_training_curves(tmp_path, [V("main"), V("clip")])
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_run_classes_refuse_another_domain(tmp_path: Path) -> None:
    from core.checkpoint import save_run
    from core.model import ContrastiveModel
    from core.registry import get_model_config
    from domains.pathology.classifier import TissueClassifier
    from domains.pathology.run_model import TissueRun
    from domains.radiology.run_model import ChestXrayRun

    model = ContrastiveModel(get_model_config("path-micro"))
    save_run(model, tmp_path / "run", extra={"variant": "main", "domain": "radiology"})
    with pytest.raises(ValueError, match="a radiology run, not a pathology one"):
        TissueRun.load(tmp_path / "run")
    loaded = ChestXrayRun.load(tmp_path / "run")  # radiology checks towers, not the domain
    assert isinstance(loaded, ChestXrayRun) and set(loaded.transforms) == {"image"}
    save_run(model, tmp_path / "path", extra={"variant": "main", "domain": "pathology"})
    classifier = TissueClassifier.from_run(tmp_path / "path")
    assert isinstance(classifier.run, TissueRun)
    assert classifier.prompts.model is classifier.run.model
