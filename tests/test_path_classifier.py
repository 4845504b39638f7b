"""TissueClassifier: tile DataFrames for any vocabulary, CONCH ensembles, slide top-K + heat map."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import core
from core.checkpoint import save_run
from domains.pathology import TissueClassifier, cards

sys.path.insert(0, str(Path(__file__).parent / "data" / "pathology"))
from data import he_tile, write_bad_tiles, write_slide  # noqa: E402

TUMOUR = cards.tumour_classes()[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An (untrained) path-micro model saved as a pathology run folder."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("path-clf") / "run"
    save_run(core.create_model("path-micro"), folder, extra={"domain": "pathology"})
    return folder


@pytest.fixture(scope="module")
def classifier(run: Path) -> TissueClassifier:
    return TissueClassifier.from_run(run)


@pytest.fixture(scope="module")
def tiles(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("path-clf-tiles")
    files = write_bad_tiles(folder, size=40)
    return [files["good"], files["rgba"], files["rgb16"]]


def test_predict_any_vocabulary(classifier: TissueClassifier, tiles: list[Path]) -> None:
    table = classifier.predict(tiles, classes=["TUM", "adipose", "signet ring cells"],
                               prompts="single")
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == [TUMOUR, "adipose", "signet ring cells"]  # codes resolved
    assert list(table.index) == [str(p) for p in tiles]
    np.testing.assert_allclose(table.sum(axis=1), 1.0, rtol=1e-5)
    assert ((table.values > 0) & (table.values < 1)).all()
    # arrays: (H, W, 3) uint8 as image libraries give them, (3, H, W) floats in [0, 1]
    arrays = [he_tile(1, 40), torch.rand(3, 50, 60)]
    everything = classifier.predict(arrays, prompts="descriptions")
    assert list(everything.columns) == cards.tissue_classes() and list(everything.index) == [0, 1]
    with pytest.raises(ValueError, match="distinct"):
        classifier.predict(tiles[0], classes=["TUM", "tumour epithelium"])
    with pytest.raises(ValueError, match="RGB"):
        classifier.predict(np.zeros((40, 40)))


def test_probability_is_the_prompt_ensemble_softmax(classifier: TissueClassifier,
                                                   tiles: list[Path]) -> None:
    model = classifier.run.model
    custom = {"adipose": ["fat cells", "adipocytes"], "mucus": ["pools of mucin"]}
    table = classifier.predict(tiles[:2], classes=["adipose", "mucus"], custom_prompts=custom)
    with torch.no_grad():
        image = classifier.embed(tiles[:2])  # (2, D)
        classes = torch.stack([torch.nn.functional.normalize(
            model.encode("text", custom[c]).sum(0), dim=0) for c in custom], 1)  # (D, 2)
        expected = (model.scale() * image @ classes).softmax(1).numpy()
    np.testing.assert_allclose(table.to_numpy(), expected, rtol=1e-4, atol=1e-5)


def test_unreadable_tile_is_named(classifier: TissueClassifier, tmp_path: Path) -> None:
    files = write_bad_tiles(tmp_path / "bad", size=40)
    with pytest.raises(ValueError, match="cmyk"):
        classifier.predict(files["cmyk"])


def test_predict_slide(classifier: TissueClassifier, tmp_path: Path) -> None:
    path = tmp_path / "slide.tiff"
    mask = write_slide(path, mpp=0.5, levels=2, height=384, width=512,
                       discs=((192, 256, 170),))  # (384, 512) level-0 tissue mask
    slide = classifier.predict_slide(path, classes=["TUM", "NORM"], k=4, tile_size=64,
                                     prompts="single")
    assert slide.classes == [TUMOUR, "normal colon mucosa"]
    assert slide.probabilities.sum() == pytest.approx(1.0)
    assert slide.predicted in slide.classes and slide.k == 4
    tiles = slide.tiles
    assert list(tiles.columns) == ["x", "y", *slide.classes] and len(tiles) > 5
    np.testing.assert_allclose(tiles[slide.classes].sum(axis=1), 1.0, rtol=1e-5)
    centres = mask[tiles["y"] + 32, tiles["x"] + 32]
    assert centres.all()  # tissue tiles only: every tile's centre lies on the disc
    grid = slide.heatmap("TUM")
    assert grid.shape == (6, 8)  # 384 x 512 in 64 px cells
    assert np.isfinite(grid).sum() == len(tiles) and np.isnan(grid[0, 0])
    assert grid[tiles["y"].iloc[0] // 64, tiles["x"].iloc[0] // 64] == \
        pytest.approx(tiles[TUMOUR].iloc[0])
    assert slide.save(tmp_path / "heat.png").stat().st_size > 1000
    assert slide.thumbnail.shape[2] == 3 and slide.seconds > 0
    # K = every tile is mean pooling; K = 1 is max pooling: they differ on this slide
    everything = classifier.predict_slide(path, classes=["TUM", "NORM"], k=10_000,
                                          tile_size=64, prompts="single")
    assert not np.allclose(everything.probabilities, slide.probabilities)
    with pytest.raises(ValueError, match="not one of the scored classes"):
        slide.heatmap("adipose")
