"""Runs that repeat and never destroy data: --out checks, evaluation's own folder, resumed
curves, evaluation joined by scene id."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch

import core
from domains.remote_sensing import cards, evaluate, train
from domains.remote_sensing.embed import EvalData, embed_scenes


@pytest.fixture(scope="module")
def run(rs_small_archive: Path, rs_train_args: Callable[..., list[str]],
        tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch run of the main model with its report."""
    out = tmp_path_factory.mktemp("safe") / "run"
    return train.main(rs_train_args(rs_small_archive, out, "--no-companions",
                                    "--max-epochs", "1"))


def _bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes()
            for name in ("report.md", "metrics.json", "run.yaml", "trained.json")}


def test_evaluate_writes_its_own_folder_and_leaves_the_training_report(
        run: Path, rs_small_archive: Path, tmp_path: Path) -> None:
    before = _bytes(run)
    result = evaluate.main([str(run)])
    assert _bytes(run) == before
    own = run / "eval" / rs_small_archive.name
    assert (own / "metrics.json").is_file() and (own / "report.md").is_file()
    assert "training time: see the run's report" in (own / "report.md").read_text()
    assert result["variants"]["main"]["zero_shot"]["s2"]["n"] > 0
    other = tmp_path / "other-archive"
    shutil.copytree(rs_small_archive, other)
    evaluate.main([str(run), "--data", str(other), "--layout", "synthetic"])
    assert _bytes(run) == before and (run / "eval" / "other-archive" / "report.md").is_file()
    with pytest.raises(ValueError, match="never overwrites the training report"):
        evaluate.main([str(run), "--out", str(run)])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not an evaluation folder"):
        evaluate.main([str(run), "--out", str(mine)])
    assert (mine / "notes.txt").read_text() == "keep me"


def test_train_onto_a_run_with_another_config_is_refused_resumed_or_overwritten(
        rs_small_archive: Path, rs_train_args: Callable[..., list[str]],
        tmp_path: Path) -> None:
    out = tmp_path / "run"
    base = ("--no-companions", "--max-epochs", "1", "--set", "trainer.fast_dev_run=true")
    train.main(rs_train_args(rs_small_archive, out, *base))
    (out / "mine.txt").write_text("a user's file")
    before = _bytes(out)
    with pytest.raises(ValueError, match=r"optimizer\.lr") as refused:
        train.main(rs_train_args(rs_small_archive, out, *base, "--lr", "0.01"))
    assert "--resume" in str(refused.value) and "--overwrite" in str(refused.value)
    assert _bytes(out) == before  # nothing rewritten before the check
    train.main(["--resume", str(out)])  # continues with the saved config: all trained
    assert _bytes(out)["trained.json"] == before["trained.json"]
    train.main(rs_train_args(rs_small_archive, out, *base, "--lr", "0.01", "--overwrite"))
    assert "0.01" in (out / "run.yaml").read_text()
    assert (out / "mine.txt").read_text() == "a user's file"  # only the run's files went
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "data.csv").write_text("1,2")
    with pytest.raises(ValueError, match="not a run folder.*--overwrite"):
        train.main(rs_train_args(rs_small_archive, stranger, *base))
    assert sorted(p.name for p in stranger.iterdir()) == ["data.csv"]


def test_interrupted_and_resumed_run_has_one_continuous_curve(
        rs_small_archive: Path, rs_train_args: Callable[..., list[str]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    args = rs_train_args(rs_small_archive, out, "--no-companions", "--max-epochs", "3")

    def crash(self, *_: object) -> None:
        if self.current_epoch == 2:
            raise RuntimeError("simulated crash at the start of epoch 2")

    monkeypatch.setattr(core.training.ContrastiveTask, "on_train_epoch_start", crash,
                        raising=False)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train.main(args)
    interrupted = pd.read_csv(out / "logs" / "main" / "metrics.csv")
    assert set(interrupted["epoch"].dropna().astype(int)) == {0, 1}
    monkeypatch.undo()
    train.main(["--resume", str(out)])
    curve = pd.read_csv(out / "logs" / "main" / "metrics.csv")
    steps = curve.dropna(subset=["train/loss"])["step"].tolist()
    assert set(curve["epoch"].dropna().astype(int)) == {0, 1, 2}
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # continuous, no repeats
    assert len(curve) > len(interrupted)
    first_rows = curve.head(len(interrupted.dropna(subset=["train/loss"])))
    assert first_rows["step"].min() == interrupted["step"].min()  # the old rows are kept


def test_evaluation_scores_every_readable_scene_once_with_its_own_label(
        rs_small_archive: Path, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    shutil.copytree(rs_small_archive, archive)
    table = pd.read_parquet(archive / "metadata.parquet")
    test_s2 = table[(table["sensor"] == "s2") & (table["split"] == "test")]
    broken = test_s2.iloc[1]
    (archive / broken["path"]).write_bytes(b"not a GeoTIFF")
    model = core.create_model("closp-tiny")
    size = model.config.towers["s2"]["img_size"]
    data = EvalData(archive, "synthetic", {"s2": cards.s2_bands("L1C")}, size, batch_size=4,
                    preload=False)
    scenes = embed_scenes(model, data, "s2")
    assert len(scenes.ids) == len(set(scenes.ids)) == len(test_s2) - 1
    assert str(broken["id"]) not in scenes.ids
    rows = test_s2.set_index(test_s2["id"].astype(str))
    vocabulary = cards.label_vocabulary()
    fractions = rows[cards.fraction_columns()]
    for i, scene in enumerate(scenes.ids):
        own = {vocabulary[j] for j in torch.nonzero(scenes.labels[i]).flatten().tolist()}
        assert own == set(rows.loc[scene, "labels"])
        assert int(scenes.dominant[i]) == int(fractions.loc[scene].to_numpy().argmax())
    assert [p for p, _ in data.bad_samples()] == [str(archive / broken["path"])]
