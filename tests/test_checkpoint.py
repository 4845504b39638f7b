"""Run folders round-trip to identical outputs and refuse damaged files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core import create_model, load_run, save_run
from core.checkpoint import CONFIG_FILE, WEIGHTS_FILE


def test_run_folder_round_trips_to_identical_embeddings(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("test-tiny-geo").eval()
    folder = save_run(model, tmp_path / "run", extra={"note": "hello"})
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["note"] == "hello" and config["external_towers"] == []
    reloaded = load_run(folder)
    x = torch.randn(2, 4, 48, 48)
    coords = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded.encode("image", x), model.encode("image", x),
                                   rtol=0, atol=0)
        torch.testing.assert_close(reloaded.encode("location", coords),
                                   model.encode("location", coords), rtol=0, atol=0)
        torch.testing.assert_close(reloaded.encode("text", ["water"]),
                                   model.encode("text", ["water"]), rtol=0, atol=0)
    assert not list(folder.glob(".*.tmp"))


def test_frozen_text_encoder_is_external_by_default(tmp_path: Path) -> None:
    model = create_model("test-tiny")
    folder = save_run(model, tmp_path / "run")
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["external_towers"] == ["text"]
    assert (folder / WEIGHTS_FILE).stat().st_size < 5_000_000
    full = save_run(model, tmp_path / "full", include_frozen=True)
    assert (full / WEIGHTS_FILE).stat().st_size > 50_000_000
    reloaded = load_run(folder)
    torch.testing.assert_close(reloaded.encode("text", ["crops"]), model.encode("text", ["crops"]))


def test_damaged_run_folders_are_refused_with_the_file_named(tmp_path: Path) -> None:
    folder = save_run(create_model("test-tiny"), tmp_path / "run")
    weights = folder / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match="model.safetensors"):
        load_run(folder)
    (folder / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="config.json"):
        load_run(folder)
    with pytest.raises(FileNotFoundError, match="run folder"):
        load_run(tmp_path / "missing")
