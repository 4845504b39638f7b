"""The synthetic H&E set: layout, site splits, captions, real pyramidal slides, tumour boxes,
separable classes, a real stain shift between sites, and a writer that never destroys data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import openslide
import pandas as pd
import pytest
from monai.data import WSIReader
from PIL import Image
from skimage.color import rgb2hed

from domains.pathology import cards
from domains.pathology.synthetic import (
    GENERATOR_NAME,
    NORMAL_LABEL,
    TUMOUR_LABEL,
    UnsafeOutputError,
    archive_problem,
    default_archive,
    generate_archive,
    write_pyramidal_tiff,
)
from domains.pathology.synthetic.__main__ import main
from domains.pathology.synthetic.variation import _side_region, paint_tile

REPO = Path(__file__).resolve().parent.parent
SPLITS = {"train": ["site0", "site1"], "test": ["site5", "site6"]}
TINY = {"tiles_per_class": 5, "tile_size": 96, "slides_per_site": {"train": 1, "test": 1},
        "slide_size": (1024, 768), "splits": SPLITS}
ONE = {"tiles_per_class": 1, "tile_size": 48, "slides_per_site": 0,
       "splits": {"train": ["site0"]}}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("path") / "set"
    return generate_archive(root, **TINY, workers=1, progress=False)


def _tiles(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "tiles.csv", keep_default_na=False)


def _slides(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "slides.csv", keep_default_na=False)


def _od(rgb: np.ndarray) -> np.ndarray:
    """Optical density (H, W, 3) of an RGB image against white."""
    return -np.log10(np.clip(rgb.astype(np.float64), 1, 255) / 255.0)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_layout_tables_and_site_splits(archive: Path) -> None:
    tiles, slides = _tiles(archive), _slides(archive)
    assert archive_problem(archive) is None
    assert len(tiles) == 4 * 9 * 5 and len(slides) == 4
    assert list(tiles.columns[:6]) == ["path", "caption", "label", "code", "site", "split"]
    assert set(tiles["label"]) == set(cards.tissue_classes())
    assert all(cards.code_to_class(c) == lab for c, lab in zip(tiles["code"], tiles["label"],
                                                                 strict=True))
    for row in tiles.itertuples():
        assert row.path == f"tiles/{row.code}/{row.site}-{int(row.path[-8:-4]):04d}.png"
        image = Image.open(archive / row.path)
        assert image.mode == "RGB" and image.size == (96, 96)
    # Splits by site: every site in exactly one split, as asked.
    for table in (tiles, slides):
        assert table.groupby("site")["split"].nunique().max() == 1
    assert {s: sorted(g["site"].unique()) for s, g in tiles.groupby("split")} == SPLITS
    manifest = json.loads((archive / "manifest.json").read_text())
    described = json.loads((archive / "dataset.json").read_text())
    assert manifest["generator"] == GENERATOR_NAME and manifest["tiles"] == len(tiles)
    assert described["sites"] == {"train": SPLITS["train"], "val": [], "test": SPLITS["test"]}
    assert described["stains"]["site5"]["h_strength"] != described["stains"]["site0"][
        "h_strength"]


def test_captions_are_varied_text_from_the_card(archive: Path) -> None:
    tiles = _tiles(archive)
    assert tiles["caption"].nunique() >= 0.9 * len(tiles)
    for row in tiles.itertuples():
        words = [row.label, *cards.synonyms(row.label), *cards.descriptions(row.label),
                 *cards.caption_words(row.label)]
        text = row.caption.lower()
        assert text.rstrip(".") != row.label and len(text.split()) >= 4
        assert any(w.lower() in text for w in words), row.caption
    named = tiles.apply(lambda r: any(n.lower() in r.caption.lower() for n in
                                      [r.label, *cards.synonyms(r.label)]), axis=1)
    assert 0.3 < named.mean() < 0.95  # some captions name no class, most do


def test_slides_open_through_openslide_and_monai(archive: Path) -> None:
    slides = _slides(archive)
    assert sorted(slides["label"]) == sorted([TUMOUR_LABEL, TUMOUR_LABEL, NORMAL_LABEL,
                                              NORMAL_LABEL])
    for row in slides.itertuples():
        path = archive / row.path
        slide = openslide.OpenSlide(path)
        assert openslide.OpenSlide.detect_format(path) == "generic-tiff"
        assert slide.dimensions == (1024, 768) and slide.level_count == 2
        assert slide.level_downsamples == (1.0, 2.0)
        assert float(slide.properties["openslide.mpp-x"]) == pytest.approx(0.5)
        slide.close()
    reader = WSIReader(backend="openslide")
    wsi = reader.read(str(archive / slides["path"][0]))
    assert reader.get_level_count(wsi) == 2
    assert reader.get_mpp(wsi, 1) == pytest.approx((1.0, 1.0))
    patch, _ = reader.get_data(wsi, location=(0, 0), size=(64, 64), level=1)
    assert patch.shape == (3, 64, 64)


def test_tumour_boxes_lie_on_tissue_and_hold_tumour(archive: Path) -> None:
    slides = _slides(archive)
    nuclear = {}  # share of tissue pixels rich in haematoxylin (colour deconvolution)
    for row in slides.itertuples():
        boxes = json.loads(row.tumour_boxes)
        rgb = np.asarray(openslide.OpenSlide(archive / row.path).read_region(
            (0, 0), 0, (row.width, row.height)).convert("RGB"))
        od = _od(rgb).sum(-1)  # (H, W)
        tissue = od > 0.25
        haematoxylin = rgb2hed(rgb)[..., 0] > 0.05
        assert not tissue[:32, :32].any()  # the corner is empty glass
        assert 0.3 < tissue.mean() < 0.8
        if row.label == NORMAL_LABEL:
            assert boxes == []
            nuclear[row.slide_id] = haematoxylin[tissue].mean()
            continue
        assert 1 <= len(boxes) <= 2
        for x0, y0, x1, y1 in boxes:
            assert 0 <= x0 < x1 <= row.width and 0 <= y0 < y1 <= row.height
            inside = tissue[y0:y1, x0:x1]
            assert inside.mean() > 0.8, (row.slide_id, inside.mean())
            nuclear[f"{row.slide_id} box"] = haematoxylin[y0:y1, x0:x1][inside].mean()
    # Tumour is nuclei-dense: more haematoxylin in its boxes than on normal slides' tissue.
    assert min(v for k, v in nuclear.items() if "box" in k) > 1.3 * max(
        v for k, v in nuclear.items() if "box" not in k), nuclear


def _features(archive: Path, tiles: pd.DataFrame) -> np.ndarray:
    """Per tile: mean and std of OD per channel, white / dark fractions, edge strength."""
    rows = []
    for path in tiles["path"]:
        od = _od(np.asarray(Image.open(archive / path).convert("RGB")))
        total = od.sum(-1)
        gy, gx = np.gradient(total)
        rows.append(np.r_[od.mean((0, 1)), od.std((0, 1)), (total < 0.2).mean(),
                          (total > 1.2).mean(), np.hypot(gx, gy).mean()])
    return np.stack(rows)


def test_classes_separable_across_sites_and_the_stain_shift_is_real(archive: Path) -> None:
    tiles = _tiles(archive)
    features = _features(archive, tiles)
    codes, train = tiles["code"].to_numpy(), (tiles["split"] == "train").to_numpy()
    mean, std = features[train].mean(0), features[train].std(0) + 1e-9
    z = (features - mean) / std
    names = sorted(set(codes))
    centroids = np.stack([z[train & (codes == c)].mean(0) for c in names])  # (9, F)
    predicted = np.array(names)[np.argmin(((z[:, None] - centroids[None]) ** 2).sum(-1), 1)]
    # Nearest class centroid fitted on the training sites, tested on unseen-stain sites:
    # far above chance (1/9) -> the classes differ in colour and texture statistics; but
    # not trivially (generator v2 gave 0.74-0.85 here, and a trained model 1.000): mixed
    # tiles, intermediate morphology and acquisition variation keep it near 0.5.
    fitted, held_out = (predicted[train] == codes[train]).mean(), (
        predicted[~train] == codes[~train]).mean()
    print(f"nearest centroid: train sites {fitted:.3f}, test sites {held_out:.3f}")
    assert 0.45 <= fitted <= 0.85, fitted
    assert 0.3 <= held_out <= 0.7, held_out
    # Stain shift: a tile's stain signature (OD hue and log amount per channel) with its
    # class mean removed still tells its site (nearest site centroid, leave-one-out) far
    # above chance (1/4).
    od = features[:, :3]
    signature = np.c_[od / od.sum(1, keepdims=True), np.log(od)]  # (N, 6)
    residual = signature - np.stack([signature[codes == c].mean(0) for c in codes])
    residual /= residual.std(0)
    sites = tiles["site"].to_numpy()
    hits = 0
    for i in range(len(tiles)):
        others = np.arange(len(tiles)) != i
        centres = {s: residual[others & (sites == s)].mean(0) for s in set(sites)}
        hits += min(centres, key=lambda s: np.linalg.norm(residual[i] - centres[s])) == sites[i]
    assert hits / len(tiles) >= 0.55, hits / len(tiles)
    # The test sites' stain is none of the training sites' (more than 2 standard errors
    # from the nearest) yet within the range sites span (under 4x the training sites' gap).
    centre = {s: residual[sites == s].mean(0) for s in set(sites)}
    train_gap = np.linalg.norm(centre["site0"] - centre["site1"])
    for test_site in SPLITS["test"]:
        error = np.linalg.norm(residual[sites == test_site].std(0)) / np.sqrt(
            (sites == test_site).sum())
        gaps = [np.linalg.norm(centre[test_site] - centre[s]) for s in SPLITS["train"]]
        assert 2 * error < min(gaps) and max(gaps) < 4 * train_gap, (test_site, gaps, error)


def test_mixed_regions_stay_a_minority_and_tiles_are_reproducible() -> None:
    shape = (96, 80)
    shares = []
    for seed in range(60):
        mask, strip = _side_region(shape, 0.42, np.random.default_rng(seed))
        full = np.zeros(shape, np.float32)
        full[strip] = mask
        assert mask.min() >= 0 and mask.max() <= 1 and mask.shape == full[strip].shape
        shares.append(full.mean())
    # The secondary class never takes the majority, so the label stays the tile's class.
    assert max(shares) < 0.5 and 0.3 < np.mean(shares) < 0.46, (min(shares), max(shares))
    a = paint_tile("TUM", shape, np.random.default_rng(3))
    b = paint_tile("TUM", shape, np.random.default_rng(3))
    assert all(np.array_equal(x, y) for x, y in zip(a[:2], b[:2], strict=True))
    assert a[0].shape == shape and a[0].dtype == np.float32 and a[0].min() >= 0


def test_generation_is_the_same_with_any_number_of_workers(tmp_path: Path) -> None:
    one = generate_archive(tmp_path / "one", **ONE, workers=1, progress=False)
    two = generate_archive(tmp_path / "two", **ONE, workers=2, progress=False)
    strip = ("manifest.json",)
    assert {k: v for k, v in _snapshot(one).items() if k not in strip} == \
        {k: v for k, v in _snapshot(two).items() if k not in strip}


def _user_folder(parent: Path) -> Path:
    folder = parent / "data"
    (folder / "slides").mkdir(parents=True)
    (folder / "slides" / "patient_0001.svs").write_bytes(b"II*\x00 irreplaceable")
    (folder / "notes.txt").write_text("keep me")
    return folder


def test_cli_refuses_a_folder_it_did_not_create(tmp_path: Path) -> None:
    folder = _user_folder(tmp_path)
    before = _snapshot(folder)
    done = subprocess.run(
        [sys.executable, "-m", "domains.pathology.synthetic", "--out", str(folder),
         "--tiles-per-class", "1", "--tile-size", "48", "--slides-per-site", "0",
         "--overwrite"], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 2, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and str(folder) in lines[0]
    assert f"not an archive written by {GENERATOR_NAME}" in lines[0]
    assert "Traceback" not in done.stderr
    assert _snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temporary left


def test_an_archive_is_replaced_only_with_overwrite(tmp_path: Path) -> None:
    ours = generate_archive(tmp_path / "set", **ONE, workers=1, progress=False)
    before = _snapshot(ours)
    with pytest.raises(UnsafeOutputError, match="--overwrite"):
        main(["--out", str(ours), "--tiles-per-class", "1", "--tile-size", "48",
              "--slides-per-site", "0", "--seed", "1"])
    assert _snapshot(ours) == before
    (ours / "my_annotations.csv").write_text("slide,roi\n")  # the user added a file
    with pytest.raises(UnsafeOutputError, match="my_annotations.csv"):
        generate_archive(ours, **ONE, seed=1, workers=1, progress=False, overwrite=True)
    (ours / "my_annotations.csv").unlink()
    generate_archive(ours, **ONE, seed=1, workers=1, progress=False, overwrite=True)
    assert json.loads((ours / "manifest.json").read_text())["seed"] == 1
    assert _snapshot(ours) != before and archive_problem(ours) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_default_archive_is_generated_once_and_reused(tmp_path: Path) -> None:
    first = default_archive(tmp_path, workers=1, progress=False, **ONE)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    assert default_archive(tmp_path, workers=1, progress=False, **ONE) == first
    assert (first / "manifest.json").stat().st_mtime_ns == stamp
    assert archive_problem(first) is None and first.parent == tmp_path


def test_slide_writer_checks_its_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_pyramidal_tiff(tmp_path / "a.tiff", np.zeros((300, 300, 3), np.float32), 0.5)
    with pytest.raises(ValueError, match="microns per pixel"):
        write_pyramidal_tiff(tmp_path / "a.tiff", np.zeros((300, 300, 3), np.uint8), 0.0)
    rgb = np.random.default_rng(0).integers(0, 255, (600, 520, 3), dtype=np.uint8)
    path = write_pyramidal_tiff(tmp_path / "b.tiff", rgb, mpp=0.25, tile=128, levels=4)
    slide = openslide.OpenSlide(path)
    assert slide.level_count == 3  # 520 -> 260 -> 130, the next would be under a tile
    assert float(slide.properties["openslide.mpp-y"]) == pytest.approx(0.25)
    assert np.array_equal(np.asarray(slide.read_region((0, 0), 0, (520, 600)).convert("RGB")),
                          rgb)
