"""CLOSP / GeoCLOSP training entry point: fast_dev_run, reproducible evaluation, reloads."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from core.checkpoint import load_run
from domains.remote_sensing import evaluate, train
from domains.remote_sensing.embed import EvalData
from domains.remote_sensing.run_config import build_parser, resolve_run_config
from domains.remote_sensing.variants import build_variants


@pytest.fixture()
def archive(rs_small_archive: Path) -> Path:
    return rs_small_archive


@pytest.mark.parametrize("model", ["closp", "geoclosp"])
def test_fast_dev_run_trains_evaluates_and_writes_the_run_folder(
        archive: Path, tmp_path: Path, model: str, rs_train_args: Callable) -> None:
    out = train.main(rs_train_args(archive, tmp_path / model, "--model", model, "--no-companions",
                           "--set", "trainer.fast_dev_run=true"))
    for name in ("model.safetensors", "config.json", "metrics.json", "report.md", "run.yaml",
                 "confusion_s2.png", "confusion_s1.png", "gallery.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    zero_shot = metrics["variants"]["main"]["zero_shot"]
    assert 0.0 <= zero_shot["s2"]["accuracy"] <= 1.0 and zero_shot["s1"]["n"] > 0
    assert "mixed" in metrics["variants"]["main"]["retrieval"]
    assert ("crisis_fused" in metrics["variants"]["main"]) == (model == "geoclosp")


def test_evaluation_is_reproducible_and_run_folder_reloads_identically(
        archive: Path, tmp_path: Path, rs_train_args: Callable) -> None:
    args = build_parser().parse_args(rs_train_args(archive, tmp_path / "run", "--max-epochs",
                                                   "1", "--set", "companions=[s1_alone]"))
    config = resolve_run_config(args)
    out = Path(config["out"])
    out.mkdir(parents=True)
    (out / "run.yaml").write_text(json.dumps(config))
    variants = build_variants(config["model"], config["companions"],
                              overrides={"loss": config["loss"]})
    trained = {}
    for variant in variants:
        folder, model = train.train_variant(variant, config, archive, out)
        assert model is not None
        reloaded = load_run(folder)
        batch = next(iter(EvalData(archive, "synthetic", variant.bands, batch_size=8)
                          .loader(variant.sensors[0], "test")))
        sensor = variant.sensors[0]
        model.eval()
        with torch.no_grad():
            torch.testing.assert_close(reloaded.encode(sensor, batch["image"]),
                                       model.encode(sensor, batch["image"]), rtol=0, atol=0)
            torch.testing.assert_close(reloaded.encode("text", batch["caption"]),
                                       model.encode("text", batch["caption"]), rtol=0, atol=0)
        trained[variant.name] = reloaded
    first = evaluate.main([str(out)])
    second = evaluate.main([str(out)])
    # Same seed, same figures (compared as JSON so NaN equals NaN).
    assert json.dumps(first["variants"], sort_keys=True) == json.dumps(second["variants"],
                                                                       sort_keys=True)
    assert first["summary"]["claims"]["unified_lifts_s1"]["s1-alone ndcg@10"] is not None
    # A finished variant is skipped on resume.
    folder, model = train.train_variant(variants[0], config, archive, out)
    assert model is None and folder == out


def test_infonce_companion_and_idf_loss_of_each_variant(archive: Path) -> None:
    idf = {"type": "soft_target", "label_weighting": "idf", "hard_mix": 0.0}
    variants = {v.name: v for v in build_variants("closp-tiny", ["infonce", "s1_alone"],
                                                  overrides={"loss": idf})}
    main, infonce = variants["main"], variants["infonce"]
    assert infonce.config.loss == {"type": "clip"} and main.config.loss == idf
    assert infonce.config.towers == main.config.towers and infonce.sensors == ["s2", "s1"]
    config = resolve_run_config(build_parser().parse_args(["--data", str(archive)]))
    datamodule = train.datamodule_for(main, config, archive)
    labels = train.training_labels(datamodule, ["s2", "s1"])
    tables = [datamodule.dataset(s, "train").metadata for s in ("s2", "s1")]
    assert labels.shape == (sum(len(t) for t in tables), 12)
    first = tables[0]["labels"].iloc[0]
    names = first.split(";") if isinstance(first, str) else list(first)
    vocabulary = datamodule.dataset("s2", "train").vocabulary
    assert {vocabulary[i] for i in labels[0].nonzero().flatten().tolist()} == \
        {n.strip() for n in names}
    spec = train.loss_spec(main, datamodule)  # the training split's frequencies
    expected = ((labels != 0).sum(0) + 1) / (len(labels) + 1)
    assert spec["label_frequencies"] == pytest.approx(expected.tolist())
    assert train.loss_spec(infonce, datamodule) == {"type": "clip"}
    plain = build_variants("closp-tiny", [], overrides={"loss": {"type": "soft_target"}})[0]
    assert train.loss_spec(plain, datamodule) == {"type": "soft_target"}
