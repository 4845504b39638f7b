"""Whole slides: a pyramidal TIFF through MONAI's WSIReader (OpenSlide and tifffile), tissue tiles.

The slide (``tests/data/pathology/data.py``, written by the synthetic set's
``write_pyramidal_tiff``) is 1536 x 1024 px at 0.25 um/px with three levels and two
tissue discs of known area on glass. Checked: level and mpp read back, level choice for
mpp / magnification (with downscaling, never upsampling), tiles only over tissue (count
against the tissue area, every tile mostly tissue, every tissue cell tiled), sample
positions, both backends giving the same pixels, the thumbnail, and unreadable slides
(garbage bytes named .tiff, a truncated TIFF) refused naming the file, skipped and
counted in a slide list or raised with ``strict=True``; a missing backend names what to
install.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.color import rgb2hsv
from skimage.filters import threshold_otsu

from domains.pathology import slides
from domains.pathology.slides import (
    SlideError,
    SlideList,
    SlideTiles,
    choose_level,
    make_reader,
    read_slide_info,
    tissue_mask,
)

_SPEC = importlib.util.spec_from_file_location(
    "pathology_fixtures", Path(__file__).parent / "data" / "pathology" / "data.py")
data = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(data)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def slide(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("slides") / "slide-01.tiff"
    return path, data.write_slide(path)


def test_slide_opens_through_openslide(slide) -> None:
    path, _ = slide
    info = read_slide_info(path, backend="openslide")
    assert info.backend == "openslide" and info.dimensions == (1536, 1024)
    assert info.level_dimensions == ((1536, 1024), (768, 512), (384, 256))
    assert info.level_downsamples == (1.0, 2.0, 4.0)
    assert info.mpp == pytest.approx(0.25) and info.level_mpp(2) == pytest.approx(1.0)
    assert read_slide_info(path, backend="tifffile").level_dimensions == info.level_dimensions


def test_level_choice(slide) -> None:
    info = read_slide_info(slide[0])
    assert choose_level(info, mpp=0.5) == (1, 1.0)
    assert choose_level(info, mpp=1.0) == (2, 1.0)
    assert choose_level(info, magnification=20) == (1, 1.0)        # 10 / 20 = 0.5 um/px
    level, scale = choose_level(info, mpp=0.7)                      # read level 1, shrink
    assert level == 1 and scale == pytest.approx(1.4)
    assert choose_level(info, level=0) == (0, 1.0)
    with pytest.raises(SlideError, match="slide-01.tiff: finest level is 0.25 um/px"):
        choose_level(info, mpp=0.1)
    with pytest.raises(ValueError, match="exactly one of mpp, level, magnification"):
        choose_level(info, mpp=0.5, level=1)


def test_tiles_cover_tissue_only(slide) -> None:
    path, mask = slide
    tiles = SlideTiles(path, tile_size=64, mpp=0.5, tissue_threshold=0.5)
    assert (tiles.level, tiles.tile_size_level0, tiles.grid_shape) == (1, 128, (8, 12))
    # the true tissue share of every grid cell, from the level-0 mask the slide was made of
    cells = mask[:1024, :1536].reshape(8, 128, 12, 128).mean(axis=(1, 3))    # (8, 12)
    kept = np.zeros((8, 12), dtype=bool)
    kept[tiles.metadata["row"], tiles.metadata["col"]] = True
    assert kept[cells >= 0.75].all()                 # mostly-tissue cells are all tiled
    assert not kept[cells <= 0.25].any()             # mostly-glass cells never are
    tissue_tiles = mask.sum() / 128**2               # tissue area in tile units: 20.6
    assert abs(len(tiles) - tissue_tiles) <= 4, (len(tiles), tissue_tiles)
    assert tiles.tissue_fraction == pytest.approx(mask.mean(), abs=0.02)
    sample = tiles[0]
    assert sample["image"].shape == (3, 64, 64) and sample["image"].dtype == torch.float32
    assert sample["slide_id"] == "slide-01" and sample["level"] == 1
    assert (sample["x"], sample["y"]) == (int(tiles.metadata["x"][0]), int(tiles.metadata["y"][0]))
    assert sample["x"] % 128 == 0 and sample["label"].shape == (9,)
    assert float(sample["label"].sum()) == 0.0 and sample["label_names"] == ""
    assert tiles.dimensions == (1536, 1024)


def test_tissue_mask_keeps_pale_tissue() -> None:
    """A pale and a strongly stained disc on tinted glass: Otsu on log saturation keeps both."""
    height, width = 256, 384
    y, x = np.mgrid[0:height, 0:width]
    pale = (y - 128) ** 2 + (x - 100) ** 2 < 70**2
    strong = (y - 128) ** 2 + (x - 280) ** 2 < 70**2
    rng = np.random.default_rng(0)
    conc = np.stack([0.6 * rng.random((height, width)) ** 4 * 3,
                     0.5 + 0.3 * rng.random((height, width))])
    glass = np.clip(rng.normal([236, 232, 240], 1.5, (height, width, 3)), 0, 255)
    rgb = np.where(pale[..., None], data.mix(conc * 0.25),
                   np.where(strong[..., None], data.mix(conc * 1.5), glass.astype(np.uint8)))
    mask, _ = tissue_mask(rgb)
    truth = pale | strong
    assert (mask == truth).mean() > 0.98 and mask[pale].mean() > 0.9   # measured 0.993, 0.957
    saturation = rgb2hsv(rgb)[..., 1]
    plain = saturation > threshold_otsu(saturation)                    # the baseline
    assert plain[pale].mean() < 0.05 and (plain == truth).mean() < 0.9  # 0.001, 0.844


def test_backends_agree_and_downscale(slide) -> None:
    path, _ = slide
    opened = SlideTiles(path, tile_size=64, mpp=0.5, backend="openslide")
    fallback = SlideTiles(path, tile_size=64, mpp=0.5, backend="tifffile")
    assert list(opened.metadata["id"]) == list(fallback.metadata["id"])
    for index in (0, len(opened) // 2, len(opened) - 1):
        assert torch.equal(opened[index]["image"], fallback[index]["image"])
    shrunk = SlideTiles(path, tile_size=64, mpp=0.7)                  # level 1, 90 px -> 64
    assert (shrunk.level, shrunk.read_side) == (1, 90)
    assert shrunk[0]["image"].shape == (3, 64, 64)
    copy = pickle.loads(pickle.dumps(opened))                          # for worker processes
    assert torch.equal(copy[1]["image"], opened[1]["image"])


def test_thumbnail_and_blank_slide(slide, tmp_path: Path) -> None:
    tiles = SlideTiles(slide[0], tile_size=64)
    thumb = tiles.thumbnail(256)
    assert thumb.shape == (171, 256, 3) and thumb.dtype == np.float32
    assert 0.0 <= thumb.min() and thumb.max() <= 1.0
    assert thumb[:8, :8].mean() > 0.9                                  # glass corner
    blank = tmp_path / "blank.tiff"
    data.write_slide(blank, height=512, width=512, discs=())
    assert len(SlideTiles(blank, tile_size=64)) == 0


def test_unreadable_slides_named(tmp_path: Path) -> None:
    bad = data.write_bad_slides(tmp_path / "bad")
    for backend in ("openslide", "tifffile"):
        for name, path in bad.items():
            with pytest.raises(SlideError) as error:
                read_slide_info(path, backend=backend)
            assert str(error.value).startswith(f"{path}: "), (backend, name, str(error.value))
    with pytest.raises(SlideError, match="garbage.tiff: not a readable slide"):
        SlideTiles(bad["garbage"])
    with pytest.raises(SlideError, match="missing.svs: slide file not found"):
        read_slide_info(tmp_path / "missing.svs")


def test_slide_list_skips_and_counts(slide, tmp_path: Path) -> None:
    data.write_bad_slides(tmp_path / "slides")
    good = tmp_path / "slides" / "good.tiff"
    good.write_bytes(slide[0].read_bytes())
    with (tmp_path / "slides.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["slide_id", "path", "label", "site", "split", "tumour_boxes"])
        writer.writerow(["g", "slides/good.tiff", "tumour", "s1", "test", "[[0, 0, 10, 10]]"])
        writer.writerow(["x", "slides/garbage.tiff", "normal", "s1", "test", ""])
        writer.writerow(["t", "slides/truncated.tiff", "normal", "s2", "test", ""])
        writer.writerow(["m", "slides/missing.tiff", "normal", "s2", "test", ""])
        writer.writerow(["v", "slides/good.tiff", "normal", "s3", "val", ""])
    listed = SlideList(tmp_path, "test")
    assert len(listed) == 4
    samples = [listed[i] for i in range(4)]
    assert {s["slide_id"] for s in samples} == {"g"}                   # substitutes
    assert samples[0]["tumour_boxes"] == [[0, 0, 10, 10]]
    assert samples[0]["info"]["dimensions"] == (1536, 1024)
    assert sorted(p for p, _ in listed.bad_samples) == [
        "slides/garbage.tiff", "slides/missing.tiff", "slides/truncated.tiff"]
    assert all(str(tmp_path / p) in problem for p, problem in listed.bad_samples)
    assert len(SlideList(tmp_path, "test", preload=True)) == 1
    with pytest.raises(SlideError, match="garbage.tiff: not a readable slide"):
        [SlideList(tmp_path, "test", strict=True)[i] for i in range(4)]


def test_missing_backend_names_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def no_openslide(name: str, *args, **kwargs):
        if name == "openslide":
            raise ImportError("No module named 'openslide'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(slides.importlib, "import_module", no_openslide)
    with pytest.raises(ModuleNotFoundError, match="pip install openslide-python openslide-bin "
                                                  r"\(or pass backend='tifffile'\)"):
        make_reader("openslide")
    with pytest.raises(ValueError, match="unknown slide backend 'cucim'"):
        make_reader("cucim")
