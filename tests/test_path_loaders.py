"""Pathology tile layouts: NCT-CRC-HE class folders, captions CSV, the synthetic set, bad tiles.

Fixtures are written into ``tmp_path`` by ``tests/data/pathology/data.py`` in the
archives' real layouts. Checked: layout detection, the tile sample dict (shapes, dtypes,
one-hot labels in card order, captions, site, slide id), labels from codes / names /
synonyms, seeded class-stratified splits, site- and slide-level split checks, and bad
tiles (truncated PNG, 1-pixel image, CMYK JPEG, grey-scale, not an image) refused with
the file named, skipped and counted, or raised with ``strict=True``.
"""

from __future__ import annotations

import csv
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from core.data import BadSampleLog
from domains.pathology import cards
from domains.pathology.archives import LAYOUTS, detect_layout, open_dataset
from domains.pathology.caption_table import CaptionTable, SyntheticTiles
from domains.pathology.tile_folder import TileFolder
from domains.pathology.tile_io import TileError, read_tile

_SPEC = importlib.util.spec_from_file_location(
    "pathology_fixtures", Path(__file__).parent / "data" / "pathology" / "data.py")
data = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(data)  # type: ignore[union-attr]

CLASSES = cards.tissue_classes()
KEYS = {"image", "label", "label_names", "caption", "path", "id", "site", "slide_id"}


def _all(dataset) -> list[dict]:
    return [dataset[i] for i in range(len(dataset))]


# -- layouts -----------------------------------------------------------------------------------


def test_layout_detection(tmp_path: Path) -> None:
    assert list(LAYOUTS) == ["synthetic", "captions", "tiles"]
    assert detect_layout(data.write_nct_folder(tmp_path / "nct", per_class=1)) == "tiles"
    data.write_caption_table(tmp_path / "captions")
    assert detect_layout(tmp_path / "captions") == "captions"
    assert detect_layout(data.write_synthetic_like(tmp_path / "synthetic")) == "synthetic"
    (tmp_path / "empty" / "notes").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="empty: not a known pathology layout"):
        detect_layout(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="missing: archive folder not found"):
        detect_layout(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown layout 'nope'"):
        open_dataset(tmp_path / "nct", "train", layout="nope")


# -- NCT-CRC-HE class folders --------------------------------------------------------------------


def test_nct_folder_samples_and_labels(tmp_path: Path) -> None:
    root = data.write_nct_folder(tmp_path / "NCT-CRC-HE-100K", per_class=2)
    (root / "__MACOSX").mkdir()
    dataset = open_dataset(root, None)
    assert isinstance(dataset, TileFolder) and len(dataset) == 18
    assert dataset.ignored_folders == ["__MACOSX"]
    samples = _all(dataset)
    for sample in samples:
        assert set(sample) == KEYS
        assert sample["image"].shape == (3, 32, 32) and sample["image"].dtype == torch.float32
        assert 0.0 <= float(sample["image"].min()) and float(sample["image"].max()) <= 1.0
        assert sample["label"].shape == (9,) and sample["label"].dtype == torch.float32
        assert float(sample["label"].sum()) == 1.0
        assert CLASSES[int(sample["label"].argmax())] == sample["label_names"]
        assert sample["caption"] == sample["label_names"]      # no captions: the class name
        assert sample["site"] == "" and sample["slide_id"] == ""
    by_path = {s["path"]: s for s in samples}
    assert by_path["TUM/TUM-0001.tif"]["label_names"] == "colorectal adenocarcinoma epithelium"
    assert int(by_path["ADI/ADI-0000.tif"]["label"].argmax()) == 0
    assert int(by_path["TUM/TUM-0000.tif"]["label"].argmax()) == 8
    # pixels as written: the tile is the fixture's uint8 array / 255
    expected = data.he_tile(100 * 8 + 1, 32, nuclei=3 + 3 * 8).transpose(2, 0, 1) / 255.0
    np.testing.assert_allclose(by_path["TUM/TUM-0001.tif"]["image"].numpy(), expected, atol=1e-6)
    assert len({s["id"] for s in samples}) == 18


def test_nct_seeded_split_and_folder_split(tmp_path: Path) -> None:
    root = data.write_nct_folder(tmp_path / "nct", per_class=4)
    train = TileFolder(root, "train", val_fraction=0.25, seed=3)
    val = TileFolder(root, "val", val_fraction=0.25, seed=3)
    assert (len(train), len(val)) == (27, 9)                     # 3 + 1 per class
    assert sorted(val.labels()) == sorted(CLASSES)                 # stratified by class
    assert not set(train.metadata["path"]) & set(val.metadata["path"])
    again = TileFolder(root, "val", val_fraction=0.25, seed=3)
    assert list(again.metadata["path"]) == list(val.metadata["path"])   # deterministic
    others = [set(TileFolder(root, "val", val_fraction=0.25, seed=s).metadata["path"])
              for s in range(4, 9)]
    assert any(o != set(val.metadata["path"]) for o in others)   # the seed matters
    with pytest.raises(ValueError, match="no test split; pass folder_split='test'"):
        TileFolder(root, "test")
    test = TileFolder(root, "test", folder_split="test")           # CRC-VAL-HE-7K usage
    assert len(test) == 36 and set(test.metadata["split"]) == {"test"}
    with pytest.raises(ValueError, match="holds only the 'test' split"):
        TileFolder(root, "train", folder_split="test")
    with pytest.raises(FileNotFoundError, match="no class folder"):
        TileFolder(tmp_path / "nct" / "ADI", None)


# -- captions CSV --------------------------------------------------------------------------------


def test_caption_table_quilt_columns(tmp_path: Path) -> None:
    data.write_caption_table(tmp_path / "quilt")
    everything = CaptionTable(tmp_path / "quilt", None)
    assert len(everything) == 5 and len(everything.bad_samples) == 1
    assert everything.bad_samples[0][0] == "img/f.png"
    assert "neither caption nor label" in everything.bad_samples[0][1]
    assert dict(everything.unknown_labels) == {"granuloma": 1}
    samples = {s["path"]: s for s in _all(everything)}
    assert samples["img/a.png"]["label_names"] == "adipose"          # code
    assert samples["img/b.png"]["label_names"] == CLASSES[8]          # synonym
    assert samples["img/e.png"]["label_names"] == ""                  # unknown: unlabelled
    assert float(samples["img/e.png"]["label"].sum()) == 0.0
    assert samples["img/b.png"]["caption"] == "Glands lined by atypical columnar cells."
    assert samples["img/c.png"]["site"] == "s2" and samples["img/c.png"]["slide_id"] == "sl2"
    val = open_dataset(tmp_path / "quilt", "val")                       # "valid" -> val
    assert [s["path"] for s in _all(val)] == ["img/c.png"]
    assert len(open_dataset(tmp_path / "quilt", "test")) == 2           # f dropped
    with pytest.raises(TileError, match="img/f.png: no tile path, or neither caption"):
        CaptionTable(tmp_path / "quilt", "test", strict=True)


def test_caption_table_checks(tmp_path: Path) -> None:
    table = data.write_caption_table(tmp_path / "quilt")
    rows = list(csv.reader(table.open()))
    rows[3][4] = "train"                                   # slide sl2 now ...
    rows.append(["img/c.png", "Lymphocytes again.", "LYM", "s2", "test", "sl2"])  # ... also test
    with table.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(ValueError, match=r"captions.csv: 1 slide\(s\) have tiles in more than one"):
        CaptionTable(tmp_path / "quilt", None)
    with table.open("w", newline="") as handle:
        csv.writer(handle).writerows([["file", "words"], ["img/a.png", "x"]])
    with pytest.raises(ValueError, match="captions.csv: no caption column"):
        CaptionTable(tmp_path / "quilt", None)
    with table.open("w", newline="") as handle:
        csv.writer(handle).writerows([["path", "caption", "split"], ["img/a.png", "x", "holdout"]])
    with pytest.raises(ValueError, match=r"unknown split names \['holdout'\]"):
        CaptionTable(tmp_path / "quilt", None)
    with table.open("w", newline="") as handle:   # no split column: seeded 50/50 by class
        csv.writer(handle).writerows([["path", "caption", "label"]] + [
            [f"img/{c}.png", "a tile", "ADI"] for c in "abcd"])
    assert (len(CaptionTable(tmp_path / "quilt", "train", val_fraction=0.5)),
            len(CaptionTable(tmp_path / "quilt", "val", val_fraction=0.5))) == (2, 2)


def test_synthetic_layout_site_splits(tmp_path: Path) -> None:
    root = data.write_synthetic_like(tmp_path / "synthetic")
    test = open_dataset(root, "test")
    assert isinstance(test, SyntheticTiles) and len(test) == 9
    assert {s["site"] for s in _all(test)} == {"siteC"}
    assert sorted(test.labels()) == sorted(CLASSES)
    shutil.rmtree(root)
    data.write_synthetic_like(root, sites={"siteA": "train", "siteB": "val", "siteC": "test"},
                              per_site=2)
    rows = list(csv.DictReader((root / "tiles.csv").open()))
    rows[1]["split"] = "val"                                # siteA tile 1 of ADI now in val
    with (root / "tiles.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ValueError, match=r"1 site\(s\) have tiles in more than one split "
                                         r"\(siteA\)"):
        open_dataset(root, "train")
    assert len(open_dataset(root, "train", layout="captions")) == 17   # general table: allowed


# -- bad tiles -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, problem", [
    ("truncated", "truncated or damaged image file"),
    ("one_pixel", "image of 1 x 1 pixels; a tile needs sides of at least 16"),
    ("cmyk", "CMYK image (a print/publishing export), not an RGB H&E tile"),
    ("grey", "grey-scale image (mode L)"),
    ("not_an_image", "not a readable image"),
])
def test_bad_tile_refused_naming_file(tmp_path: Path, name: str, problem: str) -> None:
    files = data.write_bad_tiles(tmp_path / "bad")
    with pytest.raises(TileError) as error:
        read_tile(files[name])
    assert str(error.value).startswith(f"{files[name]}: ")
    assert problem in str(error.value)


def test_odd_tiles_accepted(tmp_path: Path) -> None:
    files = data.write_bad_tiles(tmp_path / "bad")
    good = read_tile(files["good"])
    assert good.shape == (3, 32, 32) and good.dtype == np.float32
    np.testing.assert_allclose(read_tile(files["rgba"]), good, atol=1e-6)   # alpha dropped
    np.testing.assert_allclose(read_tile(files["rgb16"]), good, atol=1e-6)  # 16 -> 8 bit
    with pytest.raises(TileError, match="sides of at least 64"):
        read_tile(files["good"], min_side=64)
    with pytest.raises(TileError, match="missing.png: file not found"):
        read_tile(tmp_path / "missing.png")


def test_bad_tiles_skipped_counted_or_raised(tmp_path: Path) -> None:
    files = data.write_bad_tiles(tmp_path / "archive" / "tiles")
    with (tmp_path / "archive" / "tiles.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "caption", "label", "split"])
        for name, file in files.items():
            writer.writerow([f"tiles/{file.name}", f"tile {name}", "TUM", "train"])
    log = BadSampleLog(tmp_path / "bad.jsonl")
    dataset = open_dataset(tmp_path / "archive", "train", bad_sample_log=log)
    assert len(dataset) == 8
    seen = [dataset[i]["path"] for i in range(len(dataset))]
    bad = {Path(p).stem for p, _ in dataset.bad_samples}
    assert bad == {"truncated", "one_pixel", "cmyk", "grey", "not_an_image"}
    assert {Path(p).stem for p in seen} == {"good", "rgba", "rgb16"}   # substitutes
    assert len(log.read()) == 5
    problems = dict(dataset.bad_samples)
    assert problems["tiles/cmyk.jpg"].startswith("tiles/cmyk.jpg: CMYK image")
    preloaded = open_dataset(tmp_path / "archive", "train", preload=True)
    assert len(preloaded) == 3 and len(preloaded.bad_samples) == 5
    strict = open_dataset(tmp_path / "archive", "train", strict=True)
    with pytest.raises(TileError, match="tiles/truncated.png: truncated or damaged"):
        _all(strict)
