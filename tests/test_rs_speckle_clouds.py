"""Speckle and clouds: the synthetic physics, the post-2022 offset, augmentations, subsets."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch

from domains.remote_sensing import cards, train
from domains.remote_sensing.augment import (
    RandomClouds,
    RandomSpeckle,
    SpeckleToLooks,
    added_looks,
)
from domains.remote_sensing.datamodule import CLOSPDataModule
from domains.remote_sensing.synthetic import generate_archive
from domains.remote_sensing.synthetic.clouds import (
    SCL_CLOUD_CODES,
    SCL_CLOUD_SHADOW,
    shadow_shift,
    sun_angles,
)
from domains.remote_sensing.synthetic.generator import _write_s2
from domains.remote_sensing.synthetic.physics import Physics, render_s1, render_s2
from domains.remote_sensing.synthetic.writer import s2_product

CLASSES = cards.land_cover_classes()


def _physics(**changes: object) -> Physics:
    card = copy.deepcopy(cards.card("synthetic"))
    card.update(changes)
    return Physics.from_card(card, CLASSES, cards.crisis_tags())


def _enl(linear: np.ndarray) -> float:
    """Equivalent number of looks of a homogeneous patch: mean^2 / variance (linear power)."""
    return float(linear.mean() ** 2 / linear.var())


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_archive(tmp_path_factory.mktemp("clouds") / "a", n_s2=240, n_s1=10,
                            n_paired=10, seed=5, size=48, workers=2, progress=False)


@pytest.mark.parametrize("looks", [None, 1.0, 10.0])
def test_synthetic_speckle_has_the_configured_enl(looks: float | None) -> None:
    configured = looks or cards.card("synthetic")["s1_equivalent_number_of_looks"]
    assert looks is not None or configured == pytest.approx(4.4)
    # A homogeneous field (one class, no texture): what varies is the speckle alone.
    physics = _physics(s1_within_class_db=0.0, s1_equivalent_number_of_looks=configured)
    surface = np.full((256, 256), CLASSES.index("grass"))
    db = render_s1(np.random.default_rng(0), surface, physics)  # (2, 256, 256)
    for band in db:
        linear = 10 ** (band.astype(np.float64) / 10)
        assert _enl(linear) == pytest.approx(configured, rel=0.06)
    # The card's texture adds variance on top: the archive's scenes are not cleaner.
    textured = render_s1(np.random.default_rng(0), surface,
                         _physics(s1_equivalent_number_of_looks=configured))
    assert _enl(10 ** (textured[0].astype(np.float64) / 10)) < 0.9 * configured


def test_cloudy_scenes_have_cloud_fraction_matching_their_scl(archive: Path) -> None:
    frame = gpd.read_parquet(archive / "metadata.parquet")
    s2 = frame[frame["sensor"] == "s2"]
    assert {"cloud_fraction", "cloud_shadow_fraction", "scl_path"} <= set(s2.columns)
    for row in s2.itertuples():
        with rasterio.open(archive / row.scl_path) as src:
            assert src.count == 1 and src.dtypes[0] == "uint8"
            scl = src.read(1)
        with rasterio.open(archive / row.path) as scene:
            assert scene.transform == src.transform and scene.crs == src.crs
        assert row.cloud_fraction == pytest.approx(np.isin(scl, SCL_CLOUD_CODES).mean())
        assert row.cloud_shadow_fraction == pytest.approx((scl == SCL_CLOUD_SHADOW).mean())
    # A realistic share: most scenes clear, a minority cloudy, few heavily.
    clear, cloudy = (s2["cloud_fraction"] == 0).mean(), (s2["cloud_fraction"] >= 0.1).mean()
    heavy = (s2["cloud_fraction"] >= 0.35).mean()
    print(f"S2 scenes: clear {clear:.2f}, cloudy (>= 0.1) {cloudy:.2f}, heavy {heavy:.2f}")
    assert 0.5 < clear < 0.8 and 0.1 < cloudy < 0.35 and 0.01 < heavy < 0.15
    assert (frame.loc[frame["sensor"] == "s1", "cloud_fraction"] == 0).all()  # SAR sees through
    # Labels stay the surface truth: the fractions of a cloudy scene still sum to 1.
    fractions = s2[[f"frac_{c.replace(' ', '_')}" for c in CLASSES]].sum(axis=1)
    np.testing.assert_allclose(fractions, 1.0, atol=1e-6)


def test_clouds_are_bright_and_flat_shadows_dark_cirrus_raises_b10() -> None:
    clouds = copy.deepcopy(cards.card("synthetic")["clouds"])
    clouds["regimes"] = {"heavy": {"share": 1.0, "cover": [0.4, 0.4]}}
    clouds["cirrus_probability"] = 1.0
    physics = _physics(clouds=clouds)
    surface = np.full((64, 64), CLASSES.index("trees"))
    reflectance, scl, sky = render_s2(np.random.default_rng(1), surface, physics, 45.0,
                                      dt.date(2023, 6, 1))
    cloud, shadow, clear = np.isin(scl, (8, 9)), scl == SCL_CLOUD_SHADOW, scl == 4
    cirrus = scl == 10
    assert cloud.mean() == pytest.approx(0.4, abs=0.01)
    assert shadow.any() and clear.any() and cirrus.any()
    visible = [cards.s2_bands("L1C").index(b) for b in ("B02", "B03", "B04")]
    high = scl == 9
    # Opaque cloud: bright in the visible and spectrally flat there; shadow darker than sun.
    assert reflectance[visible][:, high].mean() > 0.45
    assert np.ptp(reflectance[visible][:, high].mean(axis=1)) < 0.05
    nir = cards.s2_bands("L1C").index("B08")
    assert reflectance[nir][shadow].mean() < 0.7 * reflectance[nir][clear].mean()
    b10 = cards.s2_bands("L1C").index("B10")
    assert reflectance[b10][cirrus].mean() > reflectance[b10][clear].mean() + 0.01


def test_shadow_falls_away_from_the_sun() -> None:
    zenith, azimuth = sun_angles(45.0, dt.date(2023, 6, 21), 10.5)
    assert 20 < zenith < 35 and 100 < azimuth < 180  # mid-morning in summer: sun in the SE
    rows, cols = shadow_shift(1000.0, zenith, azimuth)
    assert rows < 0 and cols < 0  # shadow to the north-west (rows grow southward)
    assert np.hypot(rows, cols) == pytest.approx(1000 * np.tan(np.radians(zenith)) / 10, abs=1)
    winter, _ = sun_angles(45.0, dt.date(2023, 12, 21), 10.5)
    assert winter > zenith + 40  # low winter sun: long shadows


def test_post_2022_products_carry_the_offset_and_read_1000_higher(tmp_path: Path) -> None:
    card = cards.card("synthetic")
    assert s2_product("2022-01-24", card).offset == 0
    assert s2_product("2022-01-25", card).baseline == "04.00"
    assert s2_product("2022-01-25", card).offset == -1000
    physics = _physics()
    surface = np.random.default_rng(0).integers(0, len(CLASSES), (32, 32))
    (tmp_path / "s2").mkdir()
    written = {}
    # Same day of the year (same sun), same random stream: the same surface, two baselines.
    for scene_id, date in (("pre", "2021-06-01"), ("post", "2023-06-01")):
        meta = {"lon": 10.0, "lat": 50.0, "date": date}
        _, _, columns = _write_s2(np.random.default_rng(7), surface, meta, physics, tmp_path,
                                  scene_id)
        with rasterio.open(tmp_path / "s2" / f"{scene_id}.tif") as src:
            written[scene_id] = (src.read().astype(np.int64), src.tags(), columns)
    (pre, pre_tags, pre_cols), (post, post_tags, post_cols) = written["pre"], written["post"]
    assert pre_tags["PROCESSING_LEVEL"] == post_tags["PROCESSING_LEVEL"] == "L1C"
    assert pre_tags["PROCESSING_BASELINE"] == "03.00" and "RADIO_ADD_OFFSET" not in pre_tags
    assert post_tags["PROCESSING_BASELINE"] == "05.09"
    assert post_tags["RADIO_ADD_OFFSET"] == "-1000"
    assert (pre_cols["radiometric_offset"], post_cols["radiometric_offset"]) == (0, -1000)
    unclipped = pre > 1
    assert unclipped.mean() > 0.99
    np.testing.assert_array_equal(post[unclipped] - pre[unclipped], 1000)


def test_archive_straddles_2022_and_declares_its_offsets(archive: Path) -> None:
    frame = gpd.read_parquet(archive / "metadata.parquet")
    s2 = frame[frame["sensor"] == "s2"]
    post = s2["date"] >= "2022-01-25"
    assert 0.35 < post.mean() < 0.75
    assert (s2.loc[post, "radiometric_offset"] == -1000).all()
    assert (s2.loc[~post, "radiometric_offset"] == 0).all()
    assert (s2["processing_level"] == "L1C").all()
    assert (s2.loc[post, "processing_baseline"] >= "04.00").all()
    assert (s2.loc[~post, "processing_baseline"] < "04.00").all()
    for row in s2.iloc[:20].itertuples():
        with rasterio.open(archive / row.path) as src:
            tags = src.tags()
        assert tags["PROCESSING_LEVEL"] == "L1C"
        assert tags["PROCESSING_BASELINE"] == row.processing_baseline
        assert int(tags.get("RADIO_ADD_OFFSET", 0)) == row.radiometric_offset


def _s1_sample(seed: int = 0) -> dict:
    image = torch.full((2, 32, 32), -12.0)
    image[1] = -19.0
    image[0, 0, 0] = float("nan")
    return {"image": image, "id": f"s1_{seed}", "label": torch.zeros(12)}


def test_random_speckle_is_deterministic_under_reseeding_and_has_its_looks() -> None:
    speckle = RandomSpeckle(p=1.0, looks=(3.0, 3.0), seed=4)
    speckle.reseed(0, 0, 5)
    first = speckle(_s1_sample())["image"]
    speckle.reseed(1, 0, 6)
    other = speckle(_s1_sample())["image"]
    speckle.reseed(0, 0, 5)
    again = speckle(_s1_sample())["image"]
    torch.testing.assert_close(first, again, equal_nan=True)
    assert not torch.allclose(first[:, 1:], other[:, 1:])
    assert torch.isnan(first[0, 0, 0]) and torch.isfinite(first.flatten()[1:]).all()
    linear = 10 ** (first[1].double() / 10)
    assert _enl(linear.numpy()) == pytest.approx(3.0, rel=0.2)  # 1024 pixels
    assert linear.mean() == pytest.approx(10 ** -1.9, rel=0.1)  # unit-mean speckle
    untouched = RandomSpeckle(p=0.0)(_s1_sample())["image"]
    torch.testing.assert_close(untouched, _s1_sample()["image"], equal_nan=True)


def test_random_clouds_are_deterministic_change_pixels_and_keep_labels() -> None:
    bands = ["B04", "B03", "B02", "B08"]
    sample = {"image": torch.full((4, 48, 48), 0.05), "label": torch.ones(12), "id": "x"}
    sample["image"][3] = 0.3
    sample["image"][:, 0, 0] = float("nan")
    clouds = RandomClouds(bands, p=1.0, cover=(0.3, 0.3), seed=1)
    clouds.reseed(2, 0, 9)
    first = clouds(sample)
    clouds.reseed(2, 0, 9)
    torch.testing.assert_close(first["image"], clouds(sample)["image"], equal_nan=True)
    clouds.reseed(3, 0, 9)
    assert not torch.allclose(first["image"][:, 1:], clouds(sample)["image"][:, 1:])
    image = first["image"]  # (4, 48, 48)
    assert torch.isnan(image[:, 0, 0]).all()
    bright = image[0] > 0.3  # cloud over the dark red band
    assert 0.2 < bright.float().mean() < 0.4
    assert (image[3] < 0.25).any()  # shadow darkens the bright NIR
    torch.testing.assert_close(first["label"], sample["label"])
    in_dn = RandomClouds(bands, p=1.0, cover=(0.3, 0.3), scale=10000.0, seed=1)
    in_dn.reseed(2, 0, 9)
    scaled = in_dn({**sample, "image": sample["image"] * 10000})["image"]
    torch.testing.assert_close(scaled / 10000, image, equal_nan=True)


def test_speckle_to_one_look_is_seeded_by_scene_id() -> None:
    assert added_looks(1.0, float("inf")) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="below"):
        added_looks(5.0, 4.4)
    rng = np.random.default_rng(0)
    grd = 10 * np.log10(0.05 * rng.gamma(4.4, 1 / 4.4, (2, 128, 128)))  # 4.4-look scene
    sample = {"image": torch.from_numpy(grd.astype(np.float32)), "id": "s1_00001"}
    degrade = SpeckleToLooks(1.0, 4.4, seed=0)
    once, twice = degrade(sample)["image"], degrade(sample)["image"]
    torch.testing.assert_close(once, twice)
    assert not torch.equal(once, degrade({**sample, "id": "s1_00002"})["image"])
    assert _enl(10 ** (once[0].double().numpy() / 10)) == pytest.approx(1.0, rel=0.1)


def test_training_transforms_carry_the_configured_augmentations(archive: Path) -> None:
    module = CLOSPDataModule(archive, batch_size=4)
    module.dataset("s1", "train")
    module.dataset("s2", "train")
    module.dataset("s2", "val")
    kinds = {key: [type(t).__name__ for t in c.transforms]
             for key, c in module._transforms.items()}
    assert kinds[("s1", "train")][0] == "RandomSpeckle"
    assert kinds[("s2", "train")][0] == "RandomClouds"
    assert not {"RandomSpeckle", "RandomClouds"} & set(kinds[("s2", "val")])
    off = CLOSPDataModule(archive, batch_size=4, speckle_augment={"p": 0},
                          cloud_augment={"p": 0.0})
    off.dataset("s1", "train")
    off.dataset("s2", "train")
    assert not any(type(t).__name__ in ("RandomSpeckle", "RandomClouds")
                   for c in off._transforms.values() for t in c.transforms)


def test_evaluation_writes_the_cloud_and_speckle_subsets(
        rs_small_archive: Path, tmp_path: Path, rs_train_args: Callable) -> None:
    out = train.main(rs_train_args(rs_small_archive, tmp_path / "run", "--no-companions",
                                   "--set", "trainer.fast_dev_run=true"))
    metrics = json.loads((out / "metrics.json").read_text())
    figures = metrics["summary"]["figures"]
    for key in ("s2_zero_shot_accuracy_clear", "s2_zero_shot_accuracy_cloudy",
                "s1_zero_shot_accuracy_enl1"):
        assert 0.0 <= figures[key] <= 1.0, key
    subsets = metrics["summary"]["zero_shot_subsets"]
    assert subsets["s2_clear"]["n"] + subsets["s2_cloudy"]["n"] == subsets["s2_all"]["n"]
    assert subsets["s2_cloudy"]["n"] > 0
    assert subsets["s1_enl1"]["n"] == subsets["s1_default"]["n"] > 0
    for figures_ in subsets.values():
        assert figures_["chance_accuracy"] == pytest.approx(1 / len(CLASSES))
        assert figures_["chance_accuracy"] <= figures_["majority_accuracy"] <= 1.0
    report = (out / "report.md").read_text()
    assert "## Zero-shot under clouds and speckle" in report and "s1_enl1" in report
