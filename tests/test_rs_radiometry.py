"""Radiometry, masks and input checks of Sentinel-1/2 scenes (issue 13, items 1, 2, 4, 6)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from domains.remote_sensing import band_layout, cards, inputs
from domains.remote_sensing.inputs import SceneError, SensorMismatchError
from domains.remote_sensing.scene_folder import SceneFolder
from domains.remote_sensing.scene_io import (
    read_array_info,
    read_band_files,
    read_scene,
    read_scene_info,
    resample_masked,
)
from domains.remote_sensing.transforms import normaliser


def _s1_power(seed: int = 0, size: int = 32) -> np.ndarray:
    """(2, H, W) linear-power σ0 around VV −12 dB, VH −20 dB, with speckle-like spread."""
    rng = np.random.default_rng(seed)
    db = np.stack([-12 + 3 * rng.standard_normal((size, size)),
                   -20 + 3 * rng.standard_normal((size, size))])
    return (10 ** (db / 10)).astype(np.float32)


# ------------------------------------------------------------------ Sentinel-2 offset/level


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"offset": -500.0, "tags": {"RADIO_ADD_OFFSET": "-1000"}}, -500.0),  # explicit first
    ({"tags": {"BOA_ADD_OFFSET": "-1000"}, "date": "2019-05-01"}, -1000.0),  # metadata next
    ({"tags": {"radiometric_offset": 0.0}, "date": "2023-05-01"}, 0.0),
    ({"baseline": "04.00"}, -1000.0),
    ({"baseline": "N0400"}, -1000.0),
    ({"baseline": "02.09", "date": "2023-01-01"}, 0.0),  # baseline beats date
    ({"tags": {"PROCESSING_BASELINE": "05.10"}}, -1000.0),
    ({"date": "2022-01-25"}, -1000.0),
    ({"date": "2022-01-24"}, 0.0),
    ({"tags": {"date": "2023-07-14T10:20:31Z"}}, -1000.0),
    ({"tags": {"radiometric_offset": float("nan"), "date": "2021-07-01"}}, 0.0),  # NaN column
    ({}, 0.0),
])
def test_s2_offset_order_of_evidence(kwargs: dict, expected: float) -> None:
    assert inputs.s2_offset("scene.tif", **kwargs) == expected


def test_s2_offset_refuses_a_non_numeric_offset() -> None:
    with pytest.raises(SceneError, match="scene.tif.*offset"):
        inputs.s2_offset("scene.tif", tags={"BOA_ADD_OFFSET": "minus a thousand"})


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"level": "Level-2A", "tags": {"PROCESSING_LEVEL": "Level-1C"}}, "L2A"),
    ({"tags": {"PROCESSING_LEVEL": "Level-1C"}}, "L1C"),
    ({"tags": {"PRODUCT_TYPE": "S2MSI2A"}}, "L2A"),
    ({"tags": {"processing_level": "L1C"}}, "L1C"),
    ({"tags": {"PRODUCT_URI": "S2B_MSIL2A_20230714T102031_N0509_R065_T32TQM"}}, "L2A"),
    ({"descriptions": ["B02 (L2A)", "B03 (L2A)"]}, "L2A"),
    ({"descriptions": ["B02 surface reflectance"]}, "L2A"),
    ({"default": "L1C"}, "L1C"),
])
def test_s2_level(kwargs: dict, expected: str) -> None:
    assert inputs.s2_level("scene.tif", **kwargs) == expected


def test_s2_level_unknown_without_default_is_an_error() -> None:
    with pytest.raises(SceneError, match="scene.tif: cannot tell the Sentinel-2 processing level"):
        inputs.s2_level("scene.tif", tags={"AREA_OR_POINT": "Area"}, descriptions=["B02"])


def test_s2_reflectance_applies_the_offset_and_keeps_nan() -> None:
    dn = np.array([[[1000.0, 2500.0, np.nan]]], dtype=np.float32)  # (1, 1, 3)
    out = inputs.s2_reflectance("x", dn, -1000.0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0, :2], [0.0, 0.15], atol=1e-7)
    assert np.isnan(out[0, 0, 2])


def test_check_s2_refuses_negative_dn_and_empty_scenes() -> None:
    with pytest.raises(SceneError, match="x.tif: negative Sentinel-2 digital numbers"):
        inputs.check_s2("x.tif", np.array([[[-3.0, 100.0]]]), nodata=None)
    with pytest.raises(SceneError, match="x.tif: every Sentinel-2 value is 0"):
        inputs.check_s2("x.tif", np.zeros((13, 4, 4)), nodata=None)
    inputs.check_s2("x.tif", np.zeros((13, 4, 4)), nodata=0)  # all nodata: masking's job
    with pytest.warns(inputs.ReflectanceRangeWarning, match="x.tif: 50.0% .* outside"):
        inputs.check_s2("x.tif", np.array([[[1000.0, 65000.0]]]), nodata=0)


# ------------------------------------------------------------------ Sentinel-1 units/order


def test_s1_units_are_recognised() -> None:
    power = _s1_power()
    assert inputs.s1_units("a", power) == "linear power"
    assert inputs.s1_units("a", np.sqrt(power)) == "amplitude"
    assert inputs.s1_units("a", 10 * np.log10(power)) == "dB"
    assert inputs.s1_units("a", (np.sqrt(power) * 800).astype(np.uint16)) == "DN"
    assert inputs.s1_units("a", np.sqrt(power).astype(np.complex64)) == "complex"
    with_nan = power.copy()
    with_nan[:, :4] = np.nan
    assert inputs.s1_units("a", with_nan) == "linear power"


def test_s1_to_db_converts_power_and_amplitude_to_the_same_db() -> None:
    power = _s1_power()
    expected = 10 * np.log10(power)
    from_power, seen_power = inputs.s1_to_db("a", power)
    from_amplitude, seen_amplitude = inputs.s1_to_db("a", np.sqrt(power))
    assert (seen_power, seen_amplitude) == ("linear power", "amplitude")
    np.testing.assert_allclose(from_power, expected, atol=1e-4)
    np.testing.assert_allclose(from_amplitude, expected, atol=1e-4)
    same, seen = inputs.s1_to_db("a", expected)
    assert seen == "dB" and np.array_equal(same, expected.astype(np.float32))


def test_s1_to_db_refuses_slc_and_dn_naming_the_file() -> None:
    power = _s1_power()
    with pytest.raises(SceneError, match=r"slc\.tif: complex-valued .*SLC.*dB"):
        inputs.s1_to_db("slc.tif", np.sqrt(power).astype(np.complex64))
    with pytest.raises(SceneError, match=r"grd\.tif: .*uncalibrated digital numbers.*dB"):
        inputs.s1_to_db("grd.tif", (np.sqrt(power) * 800).astype(np.uint16))


def test_order_s1_channels_from_the_data() -> None:
    db = 10 * np.log10(_s1_power())  # (2, H, W) VV, VH
    np.testing.assert_array_equal(inputs.order_s1_channels("a", db, ["VV", "VH"]), db)
    np.testing.assert_array_equal(inputs.order_s1_channels("a", db[::-1], ["VH", "VV"]), db)
    with pytest.warns(inputs.S1ChannelsSwappedWarning, match="a: channel 0 is darker"):
        swapped = inputs.order_s1_channels("a", db[::-1], None)
    np.testing.assert_array_equal(swapped, db)
    with pytest.raises(SceneError, match="a: channels declared VV, VH but channel 0 is darker"):
        inputs.order_s1_channels("a", db[::-1], ["Sigma0_VV_db", "Sigma0_VH_db"])
    with pytest.raises(SensorMismatchError, match="HH"):
        inputs.order_s1_channels("a", db, ["HH", "HV"])


# ------------------------------------------------------------------ band layouts


@pytest.mark.parametrize(("descriptions", "tags", "count", "found"), [
    (["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"], {}, 7, "SR_B1"),
    ([], {"SPACECRAFT_ID": "LANDSAT_8"}, 13, "LANDSAT_8"),
    (["Red", "Green", "Blue"], {}, 3, "Red, Green, Blue"),
    ([], {}, 1, "single-band"),
])
def test_identify_bands_refuses_other_sensors(descriptions: list[str], tags: dict, count: int,
                                              found: str) -> None:
    with pytest.raises(SensorMismatchError, match=f"other.tif: .*{found}.*expected"):
        band_layout.identify_bands("other.tif", count, descriptions, tags)


def test_identify_bands_by_count_warns_with_the_order_assumed() -> None:
    with pytest.warns(inputs.AssumedBandOrderWarning) as record:
        layout = band_layout.identify_bands("plain.tif", 2, [], {})
    assert layout.sensor == "s1" and layout.assumed and layout.bands == ("VV", "VH")
    warning = record[0].message
    assert (warning.path, warning.sensor, warning.order) == ("plain.tif", "s1", ["VV", "VH"])
    named = band_layout.identify_bands("named.tif", 3,
                                       ["B4, central wavelength 665 nm", "B3", "B2"])
    assert named.bands == ("B04", "B03", "B02") and not named.assumed


# ------------------------------------------------------------------ real-product fixtures

REAL = Path(__file__).parent / "data" / "real_products"
L2A = cards.s2_bands("L2A")


def test_post_2022_and_pre_2022_l2a_read_to_the_same_reflectance() -> None:
    old, old_info = read_scene_info(REAL / "s2_l2a_2021.tif", "s2", L2A)
    new, new_info = read_scene_info(REAL / "s2_l2a_2023.tif", "s2", L2A)
    dated, dated_info = read_scene_info(REAL / "s2_l2a_2023_dated.tif", "s2", L2A)
    assert (old_info.level, old_info.offset) == ("L2A", 0.0)
    assert (new_info.level, new_info.offset) == ("L2A", -1000.0)
    assert (dated_info.level, dated_info.offset) == ("L2A", -1000.0)  # from the date alone
    np.testing.assert_allclose(new, old, atol=1e-6)
    np.testing.assert_allclose(dated, old, atol=1e-6)
    with rasterio.open(REAL / "s2_l2a_2023.tif") as src:
        raw = src.read().astype(np.float32)  # (12, H, W)
    assert np.abs(raw / 10000 - old).min() > 0.0999  # dividing alone: +0.1 on every pixel
    np.testing.assert_allclose(old, (raw - 1000) / 10000, atol=1e-6)
    assert 0.0 < np.nanmin(old) and np.nanmax(old) < 0.5
    forced, _ = read_scene_info(REAL / "s2_l2a_2023.tif", "s2", L2A, offset=0)
    np.testing.assert_allclose(forced - old, 0.1, atol=1e-6)  # the explicit option wins


def test_l1c_and_l2a_have_their_own_normalisation() -> None:
    l1c_mean, l1c_std = cards.normalisation("s2", ["B02", "B04"], level="L1C")
    l2a_mean, _ = cards.normalisation("s2", ["B02", "B04"], level="L2A")
    np.testing.assert_allclose(l1c_mean, [0.13976, 0.13731])  # SSL4EO-S12 L1C / 10000
    np.testing.assert_allclose(l1c_std, [0.08543, 0.11449])
    np.testing.assert_allclose(l2a_mean, [0.08843, 0.12975])  # SSL4EO-S12 L2A / 10000
    norm = normaliser("s2", ["B02", "B04"])
    image = torch.full((2, 2, 2), 0.2)
    as_l2a = norm({"image": image, "level": "L2A"})["image"]
    as_default = norm({"image": image})["image"]  # the card's default level: L1C
    torch.testing.assert_close(as_default[:, 0, 0],
                               torch.from_numpy((0.2 - l1c_mean) / l1c_std).float())
    assert not torch.allclose(as_l2a, as_default)
    with pytest.raises(ValueError, match="unknown Sentinel-2 level 'L3'"):
        norm({"image": image, "level": "L3"})


@pytest.mark.parametrize("invalid", ["B05_nodata0.tif", "B05_nodata65535.tif",
                                     "B05_masked.tif"])
def test_a_nodata_pixel_in_a_20m_band_changes_no_valid_10m_pixel(invalid: str) -> None:
    bands = REAL / "bands"
    clean, _ = read_band_files("scene", [bands / "B02.tif", bands / "B05_valid.tif"], "s2")
    got, _ = read_band_files("scene", [bands / "B02.tif", bands / invalid], "s2")  # (2, 8, 8)
    np.testing.assert_array_equal(got[0], clean[0])  # the 10 m band is untouched
    lost = np.isnan(got[1])
    expected_lost = np.zeros((8, 8), dtype=bool)
    expected_lost[1:5, 1:5] = True  # the 10 m pixels pixel (1, 1) of 20 m contributes to
    np.testing.assert_array_equal(lost, expected_lost)
    np.testing.assert_array_equal(got[1][~lost], clean[1][~lost])
    assert not np.isnan(clean).any()


def test_resample_masked_lets_no_invalid_value_through() -> None:
    band = np.full((4, 4), 0.2, dtype=np.float32)
    invalid = np.zeros((4, 4), dtype=bool)
    band[2, 3], invalid[2, 3] = 1e6, True
    out = resample_masked(band, invalid, 8, 8)
    finite = out[np.isfinite(out)]
    np.testing.assert_allclose(finite, 0.2, rtol=1e-6)
    assert np.isnan(out).sum() == 12  # 4 rows x 3 columns (clamped at the right edge)


def test_s1_files_in_power_and_amplitude_come_back_in_db() -> None:
    reference, info = read_scene_info(REAL / "s1_db.tif", "s1", ["VV", "VH"])
    assert info.units == "dB" and info.notes == []
    for name, units in (("s1_power.tif", "linear power"), ("s1_amplitude.tif", "amplitude")):
        with pytest.warns(inputs.S1UnitsConvertedWarning, match=rf"{name}: .*{units}"):
            data = read_scene(REAL / name, "s1", ["VV", "VH"])
        np.testing.assert_allclose(data, reference, atol=1e-4)
        _, info = read_scene_info(REAL / name, "s1", ["VV", "VH"])
        assert info.units == units and info.notes == [f"S1 {units} converted to dB"]
    with pytest.raises(SceneError, match=r"s1_slc\.tif: complex-valued .*SLC"):
        read_scene(REAL / "s1_slc.tif", "s1", ["VV", "VH"])
    with pytest.warns(inputs.S1ChannelsSwappedWarning, match=r"s1_vh_first\.tif"), \
            pytest.warns(inputs.AssumedBandOrderWarning, match="assumed Sentinel-1 order VV"):
        swapped = read_scene(REAL / "s1_vh_first.tif", "s1", ["VV", "VH"])
    np.testing.assert_array_equal(swapped, reference)


@pytest.mark.parametrize(("name", "found"), [
    ("landsat_sr.tif", r"descriptions \[SR_B1, SR_B2"),
    ("landsat_tagged.tif", "LANDSAT_8"),
    ("landsat_12.tif", "LANDSAT_9"),
    ("rgb_photo.tif", r"descriptions \[Red, Green, Blue\]"),
    ("single_band.tif", "a single-band raster"),
])
@pytest.mark.parametrize("sensor", ["s2", "s1"])
def test_other_sensors_are_refused_naming_the_file(name: str, found: str, sensor: str) -> None:
    bands = cards.s2_bands("L1C") if sensor == "s2" else cards.s1_bands()
    with pytest.raises(SensorMismatchError, match=rf"{name.replace('.', '[.]')}: .*{found}"
                                                  r".*expected"):
        read_scene(REAL / name, sensor, bands)


def test_undescribed_raster_is_accepted_with_the_order_assumed() -> None:
    with pytest.warns(inputs.AssumedBandOrderWarning, match="s2_undescribed.tif: no band "
                      "descriptions .* assumed Sentinel-2 order B01, B02, .*B10, B11, B12"):
        data = read_scene(REAL / "s2_undescribed.tif", "s2", ["B04", "B03", "B02"])
    _, info = read_scene_info(REAL / "s2_undescribed.tif", "s2", ["B04"])
    assert info.assumed_order == tuple(cards.s2_bands("L1C"))
    assert info.notes == [f"band order assumed ({', '.join(cards.s2_bands('L1C'))})"]
    with rasterio.open(REAL / "s2_undescribed.tif") as src:
        np.testing.assert_allclose(data, src.read([4, 3, 2]) / 10000, rtol=1e-6)


def test_scene_folder_refuses_other_sensors_and_counts_assumptions(tmp_path: Path) -> None:
    names = ["s2_l2a_2021.tif", "s2_l2a_2023.tif", "s2_undescribed.tif", "landsat_sr.tif",
             "landsat_12.tif", "rgb_photo.tif"]
    for name in names:
        shutil.copy(REAL / name, tmp_path / name)
    rows = [f"{name},trees,trees,s2,15.0,45.0" for name in names]
    (tmp_path / "metadata.csv").write_text("path,caption,labels,sensor,lon,lat\n"
                                           + "\n".join(rows) + "\n")
    folder = SceneFolder(tmp_path, sensor="s2", split=None)
    assert len(folder) == 3
    problems = {Path(path).name: problem for path, problem in folder.bad_samples}
    assert set(problems) == {"landsat_sr.tif", "landsat_12.tif", "rgb_photo.tif"}
    assert all(f"{name}: " in problem for name, problem in problems.items())
    samples = [folder[i] for i in range(3)]
    assert [s["level"] for s in samples] == ["L2A", "L2A", "L1C"]
    torch.testing.assert_close(samples[0]["image"], samples[1]["image"], equal_nan=True)
    assert samples[2]["input_notes"].startswith("band order assumed (B01")
    assert folder.input_notes == {samples[2]["input_notes"]: 1}


def test_metadata_columns_set_the_level_and_offset(tmp_path: Path) -> None:
    rho = read_scene(REAL / "s2_l2a_2021.tif", "s2", L2A)
    with rasterio.open(REAL / "s2_l2a_2023.tif") as src:
        profile, dn = src.profile, src.read()
    with rasterio.open(tmp_path / "plain.tif", "w", **profile) as dst:
        dst.write(dn)  # the 2023 numbers without descriptions or tags
    (tmp_path / "metadata.csv").write_text(
        "path,caption,sensor,processing_level,processing_baseline,radiometric_offset\n"
        "plain.tif,trees,s2,L2A,05.09,-1000\n")
    folder = SceneFolder(tmp_path, sensor="s2", split=None, bands=L2A)
    sample = folder[0]
    assert folder.level == "L2A" and sample["level"] == "L2A"
    np.testing.assert_allclose(sample["image"].numpy(), rho, atol=1e-6)


def test_in_memory_arrays_are_masked_and_converted_as_files_are() -> None:
    with rasterio.open(REAL / "s2_l2a_2021.tif") as src:
        dn = src.read()  # (12, H, W) uint16, pre-2022
    dn[:, 0, 0] = 0  # nodata, as in the file
    from_array, info = read_array_info("array[0]", dn, "s2", cards.s2_bands("L1C"))
    assert info.level == "L2A" and np.isnan(from_array[:, 0, 0]).all()
    assert np.isnan(from_array[cards.s2_bands("L1C").index("B10")]).all()
    from_file = read_scene(REAL / "s2_l2a_2021.tif", "s2", cards.s2_bands("L1C"))
    keep = np.ones(from_file.shape[1:], dtype=bool)
    keep[0, 0] = False
    np.testing.assert_allclose(from_array[:, keep], from_file[:, keep], atol=1e-6,
                               equal_nan=True)
    reflectance, _ = read_array_info("array[1]", from_file, "s2", cards.s2_bands("L1C"))
    np.testing.assert_allclose(reflectance, from_file, equal_nan=True)  # taken as is
    with pytest.raises(SceneError, match=r"array\[2\]: negative Sentinel-2 digital numbers"):
        read_array_info("array[2]", dn.astype(np.int32) - 5000, "s2", L2A)
    power, _ = read_scene_info(REAL / "s1_power.tif", "s1", ["VV", "VH"])  # in dB
    amplitude = np.sqrt(10 ** (power / 10))
    db, info = read_array_info("array[3]", amplitude, "s1", ["VV", "VH"])
    assert info.units == "amplitude"
    np.testing.assert_allclose(db, power, atol=1e-4)
    with pytest.raises(SceneError, match=r"array\[4\]: complex-valued"):
        read_array_info("array[4]", amplitude.astype(np.complex64), "s1", ["VV", "VH"])


def test_float_reflectance_files_are_taken_as_they_are(tmp_path: Path) -> None:
    rho = read_scene(REAL / "s2_l2a_2021.tif", "s2", L2A)  # (12, H, W)
    with rasterio.open(REAL / "s2_l2a_2021.tif") as src:
        profile = {**src.profile, "dtype": "float32", "nodata": None}
    profile.pop("blockxsize", None), profile.pop("blockysize", None)
    rho[:, 0, 0] -= 0.05  # slightly negative surface reflectance is not negative DN
    with rasterio.open(tmp_path / "float.tif", "w", **profile) as dst:
        dst.write(rho)
        dst.descriptions = tuple(L2A)
    data, info = read_scene_info(tmp_path / "float.tif", "s2", L2A)
    np.testing.assert_array_equal(data, rho)
    assert info.as_reflectance and info.offset is None
    assert info.notes == ["S2 values taken as reflectance (float, all below 3)"]


# ------------------------------------------------------------------ classifier, index, search


def test_classifier_surfaces_what_the_input_check_saw(rs_run: Path) -> None:
    from domains.remote_sensing import LandCoverClassifier

    clf = LandCoverClassifier.from_run(rs_run)
    with pytest.warns(inputs.AssumedBandOrderWarning, match="s2_undescribed.tif: .*assumed "
                      "Sentinel-2 order B01"):
        probs = clf.predict([REAL / "s2_undescribed.tif", REAL / "s1_db.tif"])
    assert list(probs.zero_shot.sensors) == ["s2", "s1"]
    assert probs.zero_shot.input_notes.iloc[0].startswith("band order assumed (B01, B02")
    assert probs.zero_shot.input_notes.iloc[1] == ""
    with pytest.warns(inputs.S1UnitsConvertedWarning, match="s1_amplitude.tif"):
        amplitude = clf.predict(REAL / "s1_amplitude.tif")
    assert amplitude.zero_shot.input_notes.iloc[0] == "S1 amplitude converted to dB"
    np.testing.assert_allclose(amplitude.to_numpy(), probs.iloc[[1]].to_numpy(), atol=1e-4)
    for name in ("landsat_sr.tif", "landsat_12.tif", "rgb_photo.tif", "single_band.tif"):
        with pytest.raises(SensorMismatchError, match=rf"{name.replace('.', '[.]')}: "):
            clf.predict(REAL / name)
    with pytest.raises(SceneError, match=r"s1_slc\.tif: complex-valued"):
        clf.predict(REAL / "s1_slc.tif")
    old, new = clf.predict([REAL / "s2_l2a_2021.tif", REAL / "s2_l2a_2023.tif"]).to_numpy()
    np.testing.assert_allclose(old, new, atol=1e-5)  # same surface, same answer
    with rasterio.open(REAL / "s2_l2a_2023.tif") as src:
        dn = src.read()  # (12, H, W) DN = 10000 rho + 1000: an array carries no metadata
    from_array = clf.predict(dn, offset=-1000).to_numpy()[0]
    np.testing.assert_allclose(from_array, new, atol=1e-5)
    assert not np.allclose(clf.predict(dn).to_numpy()[0], new, atol=1e-3)  # +0.1 everywhere


def test_index_build_and_search_report_the_input_notes(rs_run: Path, tmp_path: Path) -> None:
    from domains.remote_sensing import SceneIndex, index

    archive = tmp_path / "archive"
    archive.mkdir()
    rows = []
    for name, sensor in (("s2_l2a_2021.tif", "s2"), ("s2_undescribed.tif", "s2"),
                         ("landsat_12.tif", "s2"), ("s1_db.tif", "s1"),
                         ("s1_power.tif", "s1"), ("s1_vh_first.tif", "s1")):
        shutil.copy(REAL / name, archive / name)
        rows.append(f"{name},{name[:-4]},trees,{sensor},15.0,45.0")
    (archive / "metadata.csv").write_text("path,id,caption,sensor,lon,lat\n"
                                          + "\n".join(rows) + "\n")
    summary = index.build_index(archive, rs_run, tmp_path / "idx", layout="folder",
                                progress=False)
    assert summary.scenes == {"s2": 2, "s1": 3}
    assert [Path(p).name for p, _ in summary.bad_samples] == ["landsat_12.tif"]
    assert "LANDSAT_9" in summary.bad_samples[0][1]
    assumed = f"band order assumed ({', '.join(cards.s2_bands('L1C'))})"
    assert summary.input_notes == {
        assumed: 1, "S1 linear power converted to dB": 1,
        "S1 channels swapped to VV, VH": 1, "band order assumed (VV, VH)": 1}
    scenes = SceneIndex.load(tmp_path / "idx")
    assert scenes.info["input_notes"] == summary.input_notes
    results = scenes.search("trees", k=5)
    notes = dict(zip(results["id"], results["input_notes"], strict=True))
    assert notes["s2_undescribed"] == assumed and notes["s2_l2a_2021"] == ""
    assert notes["s1_power"] == "S1 linear power converted to dB"
    assert notes["s1_vh_first"] == "S1 channels swapped to VV, VH; band order assumed (VV, VH)"
