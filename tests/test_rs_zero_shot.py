"""LandCoverClassifier: zero-shot land cover of GeoTIFF paths, arrays and tensors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
import torch.nn.functional as F
from rasterio.transform import from_origin

from core import metrics
from core.metrics import mean_average_precision
from core.zero_shot import build_zero_shot_classifier
from domains.remote_sensing import LandCoverClassifier, cards
from domains.remote_sensing.captions import default_zero_shot
from domains.remote_sensing.classifier import default_synonyms
from domains.remote_sensing.embed import EvalData, embed_scenes
from domains.remote_sensing.evaluation import zero_shot_land_cover
from domains.remote_sensing.inputs import S1UnitsConvertedWarning
from domains.remote_sensing.scene_io import SceneError

BAD = Path(__file__).parent / "data" / "bad_geotiffs"
CLASSES = cards.land_cover_classes()


@pytest.fixture(scope="module")
def clf(rs_run: Path) -> LandCoverClassifier:
    return LandCoverClassifier.from_run(rs_run)


@pytest.fixture(scope="module")
def test_split(rs_archive: Path) -> pd.DataFrame:
    """The archive's test scenes with their file path and dominant class."""
    meta = pd.read_parquet(rs_archive / "metadata.parquet")
    test = meta[meta["split"] == "test"].reset_index(drop=True)
    fractions = test[[f"frac_{c.replace(' ', '_')}" for c in CLASSES]].to_numpy()  # (N, 9)
    test["file"] = [str(rs_archive / p) for p in test["path"]]
    test["dominant"] = np.asarray(CLASSES)[fractions.argmax(axis=1)]
    test["dominant_fraction"] = fractions.max(axis=1)
    return test


@pytest.fixture(scope="module")
def probs(clf: LandCoverClassifier, test_split: pd.DataFrame) -> pd.DataFrame:
    return clf.predict(list(test_split["file"]))


def read_raw(path: str) -> np.ndarray:
    """(C, H, W) values of a GeoTIFF as a user would read them: NaN where nodata, S2 as
    reflectance (DN + RADIO_ADD_OFFSET) / 10000, S1 as stored (dB)."""
    with rasterio.open(path) as src:
        data = src.read().astype(np.float32)
        data = np.where(data == src.nodata, np.nan, data)
        if src.count > 2:
            data = (data + float(src.tags().get("RADIO_ADD_OFFSET", 0))) / 10000
        return data


def confident(test_split: pd.DataFrame, per_sensor: int) -> pd.DataFrame:
    """Scenes with one class covering at least 80 % of the area, a few per sensor."""
    return test_split[test_split["dominant_fraction"] >= 0.8].groupby("sensor").head(per_sensor)


def test_paths_probabilities_and_accuracy(probs: pd.DataFrame, test_split: pd.DataFrame) -> None:
    assert list(probs.columns) == CLASSES
    assert probs.index.name == "scene" and list(probs.index) == list(test_split["file"])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.to_numpy() >= 0).all()
    assert list(probs.zero_shot.sensors) == list(test_split["sensor"])  # detected per file
    assert probs.attrs["sensors"] == list(test_split["sensor"])
    hit = probs.idxmax(axis=1).to_numpy() == test_split["dominant"].to_numpy()
    for sensor in ("s2", "s1"):
        mask = (test_split["sensor"] == sensor).to_numpy()
        accuracy = hit[mask].mean()
        print(f"zero-shot dominant-class accuracy {sensor}: {accuracy:.3f} ({mask.sum()} scenes)")
        assert accuracy > 0.6, sensor


def test_defaults_score_as_the_runs_own_evaluation(clf: LandCoverClassifier, rs_archive: Path,
                                                   probs: pd.DataFrame,
                                                   test_split: pd.DataFrame) -> None:
    """The classifier's defaults agree with the run's zero-shot evaluation within 0.01."""
    classes, templates, synonyms = default_zero_shot()
    assert clf.templates == templates
    assert default_synonyms(classes) == {c: synonyms.get(c, []) for c in classes}
    data = EvalData(rs_archive, "synthetic", clf.run.bands, clf.run.image_size, 64)
    called = probs.idxmax(axis=1).to_numpy()
    for sensor in ("s2", "s1"):
        scenes = embed_scenes(clf.run.model, data, sensor, "test")
        evaluation = zero_shot_land_cover(clf.run.model, scenes)["accuracy"]
        classifier = build_zero_shot_classifier(clf.run.model, classes, templates,
                                                synonyms).cpu()  # (D, 9)
        keep = scenes.dominant >= 0
        own = metrics.accuracy((scenes.features @ classifier)[keep], scenes.dominant[keep])
        assert own == pytest.approx(evaluation, abs=1e-6)  # the evaluation's prompts
        mask = (test_split["sensor"] == sensor).to_numpy()
        assert mask.sum() == int(keep.sum())  # the same scenes
        accuracy = float((called[mask] == test_split["dominant"].to_numpy()[mask]).mean())
        print(f"{sensor}: classifier defaults {accuracy:.3f}, run's evaluation {evaluation:.3f}")
        assert abs(accuracy - evaluation) <= 0.01, sensor


def test_arrays_and_tensors_match_paths(clf: LandCoverClassifier, test_split: pd.DataFrame,
                                        probs: pd.DataFrame) -> None:
    files = list(test_split.groupby("sensor").head(3)["file"])
    s2 = [f for f in files if "/s2/" in f]
    s1 = [f for f in files if "/s1/" in f]
    mixed = [s1[0], read_raw(s2[0]), torch.from_numpy(read_raw(s1[1])), s2[1],
             np.stack([read_raw(f) for f in s2])]  # the last: an (N, C, H, W) batch
    got = clf.predict(mixed)
    order = [s1[0], s2[0], s1[1], s2[1], *s2]
    assert list(got.index) == [s1[0], "array[1]", "array[2]", s2[1],
                               "array[4]", "array[5]", "array[6]"]
    assert list(got.zero_shot.sensors) == ["s1", "s2", "s1", "s2", "s2", "s2", "s2"]
    np.testing.assert_allclose(got.to_numpy(), probs.loc[order].to_numpy(), atol=1e-5)
    single = clf.predict(Path(s2[0]))  # one path, not a list
    assert list(single.index) == [s2[0]]
    explicit = clf.predict(read_raw(s1[0]), sensor="s1")
    np.testing.assert_allclose(explicit.to_numpy(), probs.loc[[s1[0]]].to_numpy(), atol=1e-5)


def test_custom_vocabulary(clf: LandCoverClassifier, test_split: pd.DataFrame) -> None:
    # A vocabulary class's prompts are default_zero_shot's (vocabulary name + its synonyms);
    # held-out names ("woodland") are never rewritten into training labels.
    extra = default_zero_shot()[2]
    assert default_synonyms(["forest", "snow", "wheat field", "woodland", "water"]) == {
        "forest": ["trees", *extra.get("trees", [])],
        "snow": ["snow and ice", *[n for n in extra.get("snow and ice", []) if n != "snow"]],
        "wheat field": [], "woodland": [], "water": extra.get("water", [])}
    assert default_synonyms(["forest"], {"forest": ["jungle"]}) == {"forest": ["jungle"]}
    wanted = {"water": "water", "trees": "forest", "snow and ice": "snow"}
    scenes = test_split[test_split["dominant"].isin(wanted)].groupby(["sensor", "dominant"]).head(8)
    got = clf.predict(list(scenes["file"]), classes=["water", "forest", "snow"])
    assert list(got.columns) == ["water", "forest", "snow"]
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    called = got.idxmax(axis=1).to_numpy()
    expected = scenes["dominant"].map(wanted).to_numpy()
    is_water = expected == "water"
    assert (called[is_water] == "water").mean() >= 0.8
    assert (called == expected).mean() >= 0.8
    first = clf.class_embeddings(["water", "forest", "snow"])
    assert clf.class_embeddings(["water", "forest", "snow"]) is first  # cached
    own = clf.class_embeddings(["water", "forest", "snow"], templates=["{}"],
                               synonyms={"forest": []})
    assert own.shape == first.shape and not torch.allclose(own, first)


def test_multi_label_scores_are_cosines(clf: LandCoverClassifier, test_split: pd.DataFrame,
                                        probs: pd.DataFrame) -> None:
    scenes = test_split.groupby("sensor").head(48)
    scores = clf.predict(list(scenes["file"]), multi_label=True)
    assert scores.zero_shot.multi_label and not probs.zero_shot.multi_label
    values = scores.to_numpy()  # (N, 9) cosine similarities
    assert (np.abs(values) <= 1 + 1e-6).all()
    assert not np.allclose(values.sum(axis=1), 1.0)
    # Softmax is monotone per row: the top score is the top probability.
    assert (scores.idxmax(axis=1) == probs.loc[scores.index].idxmax(axis=1)).all()
    targets = np.array([[c in set(labels) for c in CLASSES] for labels in scenes["labels"]],
                       dtype=np.float32)  # (N, 9) multi-hot
    chance = targets.mean(axis=0)[targets.any(axis=0)].mean()  # mAP of uninformative scores
    for sensor in ("s2", "s1"):
        mask = (scenes["sensor"] == sensor).to_numpy()
        average_precision = mean_average_precision(values[mask], targets[mask])
        print(f"multi-label mAP {sensor}: {average_precision:.3f} (chance ~{chance:.2f})")
        assert average_precision > chance + 0.2, sensor


def test_large_scenes_are_tiled(clf: LandCoverClassifier, test_split: pd.DataFrame) -> None:
    scenes = [read_raw(f) for f in confident(test_split, 12)["file"]]
    assert clf.run.image_size == scenes[0].shape[-1] == 64
    small = clf.predict(scenes)
    few = scenes[:3] + scenes[-3:]  # both sensors
    repeated = clf.predict([np.tile(s, (1, 3, 3)) for s in few])  # 192 px: nine copies each
    np.testing.assert_allclose(repeated.to_numpy(), small.iloc[[0, 1, 2, -3, -2, -1]].to_numpy(),
                               atol=1e-4)
    upsampled = clf.predict([F.interpolate(torch.from_numpy(s)[None], scale_factor=2,
                                           mode="bilinear", align_corners=False)[0]  # 128 px
                             for s in scenes])
    agree = (upsampled.idxmax(axis=1).to_numpy() == small.idxmax(axis=1).to_numpy()).mean()
    assert agree >= 0.7


def test_bad_files(clf: LandCoverClassifier, tmp_path: Path) -> None:
    five = tmp_path / "five_bands.tif"
    profile = {"driver": "GTiff", "dtype": "uint16", "count": 5, "height": 32, "width": 32,
               "crs": "EPSG:32633", "transform": from_origin(500000, 5000000, 10, 10)}
    with rasterio.open(five, "w", **profile) as dst:
        dst.write(np.full((5, 32, 32), 1000, dtype=np.uint16))
    with pytest.raises(SceneError, match=r"five_bands\.tif.* 5 bands.*expected 2 .*13"):
        clf.predict([five])
    with pytest.raises(SceneError, match=r"five_bands\.tif: 5 bands .*expected 13 bands"):
        clf.predict(five, sensor="s2")
    for name in ("truncated.tif", "not_a_tiff.tif"):
        with pytest.raises(SceneError, match=rf"{name.replace('.', '[.]')}: unreadable GeoTIFF"):
            clf.predict(BAD / name)
    with pytest.raises(SceneError, match=r"missing\.tif: unreadable"):
        clf.predict(tmp_path / "missing.tif")


def test_bad_arrays(clf: LandCoverClassifier, test_split: pd.DataFrame) -> None:
    s1 = read_raw(test_split.loc[test_split["sensor"] == "s1", "file"].iloc[0])  # dB
    s2 = read_raw(test_split.loc[test_split["sensor"] == "s2", "file"].iloc[0])
    with pytest.raises(SceneError, match=r"array\[1\]: 4 bands .*expected 2 .*13"):
        clf.predict([s2, s2[:4]])
    with pytest.raises(SceneError, match=r"array\[0\]: 4 channels for s2; this model takes 13"):
        clf.predict(torch.from_numpy(s2[:4]), sensor="s2")
    with pytest.raises(SceneError, match=r"array\[0\]: shape \(64, 64\)"):
        clf.predict(s2[0])
    with pytest.warns(S1UnitsConvertedWarning, match=r"array\[0\]: .*linear power.* dB"):
        converted = clf.predict(10 ** (s1 / 10))  # the shared input check converts it
    assert converted.zero_shot.input_notes.iloc[0] == "S1 linear power converted to dB"
    np.testing.assert_allclose(converted.to_numpy(), clf.predict(s1).to_numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="unknown sensor 's3'"):
        clf.predict(s2, sensor="s3")


def test_sensor_without_tower(clf: LandCoverClassifier, test_split: pd.DataFrame,
                              rs_run: Path) -> None:
    s2_only = LandCoverClassifier(dataclasses.replace(clf.run, bands={"s2": clf.run.bands["s2"]}))
    s1_file = test_split.loc[test_split["sensor"] == "s1", "file"].iloc[0]
    with pytest.raises(SceneError, match=rf"{s1_file}: a Sentinel-1 \(s1\) scene, but .* "
                                         "embeds only s2"):
        s2_only.predict(s1_file)
    with pytest.raises(SceneError, match=r"array\[0\]: a Sentinel-1 .*embeds only s2"):
        s2_only.predict(read_raw(s1_file))
    with pytest.raises(FileNotFoundError, match="companions/rgb: no trained model"):
        LandCoverClassifier.from_run(rs_run, variant="rgb")
