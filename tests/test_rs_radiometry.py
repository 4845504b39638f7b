"""Radiometry, masks and input checks of Sentinel-1/2 scenes (issue 13, items 1, 2, 4, 6)."""

from __future__ import annotations

import numpy as np
import pytest

from domains.remote_sensing import inputs
from domains.remote_sensing.inputs import SceneError, SensorMismatchError


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
        inputs.identify_bands("other.tif", count, descriptions, tags)


def test_identify_bands_by_count_warns_with_the_order_assumed() -> None:
    with pytest.warns(inputs.AssumedBandOrderWarning) as record:
        layout = inputs.identify_bands("plain.tif", 2, [], {})
    assert layout.sensor == "s1" and layout.assumed and layout.bands == ("VV", "VH")
    warning = record[0].message
    assert (warning.path, warning.sensor, warning.order) == ("plain.tif", "s1", ["VV", "VH"])
    named = inputs.identify_bands("named.tif", 3, ["B4, central wavelength 665 nm", "B3", "B2"])
    assert named.bands == ("B04", "B03", "B02") and not named.assumed
