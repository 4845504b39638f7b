"""Radiographs read right: the DICOM grey-scale pipeline, PNG/JPEG, and every refusal.

pydicom's own test files (uncompressed little/big endian, implicit VR, deflated, RLE,
JPEG extended, JPEG-LS, JPEG 2000, multi-window, signed) must load with intensities in
the order of their modality values and in [0, 1], or be refused with a reason that names
the problem (the transfer syntax when it cannot be decoded). Phantoms written here check
what pydicom's files do not hold: MONOCHROME1 against MONOCHROME2, rescale before window,
VOI LUT sequences, BitsStored with junk high bits, multi-frame and colour refusals.
"""

from __future__ import annotations

import logging
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut
from pydicom.uid import ExplicitVRLittleEndian

from domains.radiology.image_io import RadiographError, read_radiograph
from domains.radiology.study_folder import StudyFolder

DATA = Path(__file__).parent / "data" / "radiology"
sys.path.insert(0, str(DATA))
from phantoms import dicom_dataset, phantom, write_dicom, write_png_jpeg  # noqa: E402

#: pydicom test files that are grey-scale images and must load.
LOADS = [
    "CT_small.dcm",                     # CT, signed 16-bit, no window
    "MR_small.dcm",                     # MR, window 600/1600
    "MR_small_bigendian.dcm",           # Explicit VR Big Endian
    "MR_small_expb.dcm",                # Explicit VR Big Endian
    "MR_small_implicit.dcm",            # Implicit VR Little Endian
    "MR_small_padded.dcm",              # pixel data with trailing padding
    "MR_small_RLE.dcm",                 # RLE Lossless
    "MR_small_jp2klossless.dcm",        # JPEG 2000 lossless
    "MR_small_jpeg_ls_lossless.dcm",    # JPEG-LS lossless
    "JPEG2000.dcm",                     # JPEG 2000
    "JPGExtended.dcm",                  # JPEG Extended, 12 bits
    "JPEGLSNearLossless_16.dcm",        # JPEG-LS near-lossless, 16 bits
    "693_J2KI.dcm",                     # JPEG 2000 lossy CT, signed, 14 bits stored
    "J2K_pixelrep_mismatch.dcm",        # J2K whose codestream sign disagrees with the tags
    "image_dfl.dcm",                    # Deflated Explicit VR Little Endian
    "examples_overlay.dcm",             # two windows: the first is used
]
#: pydicom test files that must be refused, with a word of the reason.
REFUSED = [
    ("JPEG-lossy.dcm", "JPEG Extended"),     # a damaged 12-bit JPEG: no plug-in decodes it
    ("JPEG2000-embedded-sequence-delimiter.dcm", "JPEG 2000"),
    ("MR_truncated.dcm", "truncated"),
    ("rtplan.dcm", "SOP class RT Plan Storage"),
    ("rtdose_1frame.dcm", "SOP class RT Dose Storage"),
    ("reportsi.dcm", "SOP class Basic Text SR Storage"),
    ("waveform_ecg.dcm", "Waveform"),
    ("liver_1frame.dcm", "Segmentation Storage"),
    ("SC_rgb_rle.dcm", "colour image (PhotometricInterpretation RGB"),
    ("SC_ybr_full_422_uncompressed.dcm", "YBR_FULL_422"),
    ("examples_palette.dcm", "PALETTE COLOR"),
    ("examples_ybr_color.dcm", "colour"),
    ("no_meta.dcm", "not a DICOM file"),
    ("UN_sequence.dcm", "no Pixel Data"),
]
MR_COPIES = [f for f in LOADS if f.startswith("MR_small")]


def _modality(name: str) -> tuple[Dataset, np.ndarray]:
    ds = pydicom.dcmread(get_testdata_file(name))
    return ds, np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float64)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", LOADS)
def test_pydicom_files_load_in_modality_order(name: str) -> None:
    image = read_radiograph(get_testdata_file(name))
    ds, modality = _modality(name)
    assert image.dtype == np.float32 and image.shape == (ds.Rows, ds.Columns)
    assert image.min() >= 0.0 and image.max() <= 1.0 and image.max() > image.min()
    # MONOCHROME2: a larger modality value is never shown darker
    order = np.argsort(modality, axis=None, kind="stable")
    assert (np.diff(image.ravel()[order]) >= -1e-6).all()
    if "WindowCenter" not in ds and "VOILUTSequence" not in ds:
        assert image.min() == 0.0 and image.max() == 1.0   # the image's own range


def test_pydicom_file_count() -> None:
    assert len(LOADS) + len(REFUSED) >= 12


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("name", "reason"), REFUSED)
def test_pydicom_files_refused_with_reason(name: str, reason: str) -> None:
    path = get_testdata_file(name)
    with pytest.raises(RadiographError) as caught:
        read_radiograph(path)
    assert str(path) in str(caught.value)
    assert reason in caught.value.reason


def test_missing_plugin_names_the_syntax(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the decoder plug-ins (a bare pydicom) the error says which syntax and why."""
    from types import SimpleNamespace

    import domains.radiology.image_io as image_io

    bare = SimpleNamespace(is_available=False, missing_dependencies=["pylibjpeg-openjpeg"])
    monkeypatch.setattr(image_io, "get_decoder", lambda syntax: bare)
    path = get_testdata_file("MR_small_jp2klossless.dcm")
    with pytest.raises(RadiographError) as caught:
        read_radiograph(path)
    assert caught.value.reason == (
        "cannot decode transfer syntax JPEG 2000 Image Compression (Lossless Only) "
        "(1.2.840.10008.1.2.4.90): no installed plug-in (pylibjpeg-openjpeg)")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", MR_COPIES)
def test_mr_copies_read_identical(name: str) -> None:
    np.testing.assert_array_equal(read_radiograph(get_testdata_file(name)),
                                  read_radiograph(get_testdata_file("MR_small.dcm")))


def _window(x: np.ndarray, centre: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 linear window onto [0, 1], written out independently."""
    low, high = centre - 0.5 - (width - 1) / 2, centre - 0.5 + (width - 1) / 2
    inside = (x - (centre - 0.5)) / (width - 1) + 0.5
    return np.where(x <= low, 0.0, np.where(x > high, 1.0, inside))


@pytest.mark.parametrize("name", ["MR_small.dcm", "examples_overlay.dcm", "693_J2KI.dcm"])
def test_window_is_the_first_one_of_the_standard(name: str) -> None:
    ds, modality = _modality(name)
    centres, widths = ds.WindowCenter, ds.WindowWidth
    first = lambda v: float(v[0]) if isinstance(v, pydicom.multival.MultiValue) else float(v)  # noqa: E731
    expected = _window(modality, first(centres), first(widths))
    np.testing.assert_allclose(read_radiograph(get_testdata_file(name)), expected, atol=1e-6)


# -- phantoms: MONOCHROME1 vs MONOCHROME2, rescale, VOI LUT, bits -------------------------------


@pytest.fixture(scope="module")
def density() -> np.ndarray:
    return phantom(7, height=48, width=40, opacity=True)


def _read(ds: Dataset, folder: Path, name: str, rle: bool = False) -> np.ndarray:
    write_dicom(folder / name, ds, rle=rle)
    return read_radiograph(folder / name)


def test_monochrome1_and_monochrome2_read_identical(density: np.ndarray, tmp_path: Path) -> None:
    mono2 = _read(dicom_dataset(density), tmp_path, "m2.dcm")
    mono1 = _read(dicom_dataset(density, monochrome1=True), tmp_path, "m1.dcm")
    mono1_rle = _read(dicom_dataset(density, monochrome1=True), tmp_path, "m1r.dcm", rle=True)
    np.testing.assert_allclose(mono1, mono2, atol=1e-6)
    np.testing.assert_array_equal(mono1_rle, mono1)
    # bright = dense: the read image follows the phantom's density, for both
    assert np.corrcoef(mono1.ravel(), density.ravel())[0, 1] > 0.999
    stored = pydicom.dcmread(tmp_path / "m1.dcm").pixel_array
    assert np.corrcoef(stored.ravel(), mono1.ravel())[0, 1] < -0.999   # inversion did work


def test_presentation_lut_shape_inverse_on_monochrome2(density: np.ndarray,
                                                      tmp_path: Path) -> None:
    plain = _read(dicom_dataset(density), tmp_path, "identity.dcm")
    inverse = dicom_dataset(density)
    inverse.PresentationLUTShape = "INVERSE"
    np.testing.assert_allclose(_read(inverse, tmp_path, "inverse.dcm"), 1.0 - plain, atol=1e-6)


@pytest.mark.parametrize(("slope", "intercept", "window"),
                         [(1.0, 0.0, (1800.0, 2000.0)), (2.0, -100.0, (3000.0, 4001.0))])
def test_monochrome1_and_2_identical_with_rescale_and_window(
        density: np.ndarray, tmp_path: Path, slope: float, intercept: float,
        window: tuple[float, float]) -> None:
    centre, width = window
    # the MONOCHROME1 copy stores 4095 - p: its modality value m' = slope * 4095 + 2 b - m,
    # so the same picture needs the window centre mirrored (c' = slope * 4095 + 2 b + 1 - c)
    mirrored = (slope * 4095 + 2 * intercept + 1 - centre, width)
    mono2 = _read(dicom_dataset(density, slope=slope, intercept=intercept, window=window),
                  tmp_path, "m2.dcm")
    mono1 = _read(dicom_dataset(density, monochrome1=True, slope=slope, intercept=intercept,
                                window=mirrored), tmp_path, "m1.dcm")
    np.testing.assert_allclose(mono1, mono2, atol=1e-6)
    assert 0.0 < mono2.mean() < 1.0


def test_rescale_is_applied_before_the_window(density: np.ndarray, tmp_path: Path) -> None:
    centre, width = 1500.0, 1801.0
    plain = _read(dicom_dataset(density, window=(centre, width)), tmp_path, "a.dcm")
    # modality = 2 p - 1024: the same window in modality units is (2C - 1024 - 1/2, 2W - 1)
    rescaled = _read(dicom_dataset(density, slope=2.0, intercept=-1024.0,
                                   window=(2 * centre - 1024.5, 2 * width - 1)),
                     tmp_path, "b.dcm")
    np.testing.assert_allclose(rescaled, plain, atol=1e-6)
    ignored = _read(dicom_dataset(density, window=(2 * centre - 1024.5, 2 * width - 1)),
                    tmp_path, "c.dcm")
    assert np.abs(ignored - plain).max() > 0.1   # without the rescale it would differ


def test_voi_lut_sequence(density: np.ndarray, tmp_path: Path) -> None:
    ds = dicom_dataset(density, window=(100.0, 50.0))   # the LUT is preferred to the window
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.add_new("LUTData", "US", [int(v) for v in np.sqrt(np.arange(4096) / 4095) * 65535])
    ds.VOILUTSequence = [item]
    image = _read(ds, tmp_path, "lut.dcm")
    stored = np.round(density * 4095).astype(int)
    np.testing.assert_allclose(image, np.asarray(item.LUTData)[stored] / 65535, atol=1e-6)


def test_bits_stored_and_pixel_representation(density: np.ndarray, tmp_path: Path) -> None:
    clean = dicom_dataset(density)
    junk = dicom_dataset(density)
    stored = np.frombuffer(junk.PixelData, dtype=np.uint16)
    junk.PixelData = (stored | np.uint16(0xA000)).tobytes()  # overlay bits above BitsStored
    np.testing.assert_array_equal(_read(junk, tmp_path, "junk.dcm"),
                                  _read(clean, tmp_path, "clean.dcm"))
    # signed 12 bits in a 16-bit word (high bits zero) == the same values as full int16
    values = (np.round(density * 4095) - 2048).astype(np.int16)
    signed12 = dicom_dataset(density)
    signed12.PixelRepresentation = 1
    signed12.PixelData = (values.view(np.uint16) & np.uint16(0x0FFF)).tobytes()
    signed16 = dicom_dataset(density)
    signed16.PixelRepresentation, signed16.BitsStored, signed16.HighBit = 1, 16, 15
    signed16.PixelData = values.tobytes()
    twelve = _read(signed12, tmp_path, "s12.dcm")
    np.testing.assert_allclose(twelve, _read(signed16, tmp_path, "s16.dcm"), atol=1e-6)
    assert np.corrcoef(twelve.ravel(), density.ravel())[0, 1] > 0.999


def test_monai_reader_does_not_do_this(density: np.ndarray, tmp_path: Path) -> None:
    """Why image_io does not use MONAI's PydicomReader (its module docstring)."""
    from monai.data import PydicomReader

    write_dicom(tmp_path / "m1.dcm", dicom_dataset(density, monochrome1=True,
                                                   window=(2048.0, 4096.0)))
    reader = PydicomReader()
    with pytest.warns(UserWarning):
        array, _ = reader.get_data(reader.read(str(tmp_path / "m1.dcm")))
    array = np.asarray(array, dtype=np.float64)
    assert array.shape == density.shape[::-1]                       # axes swapped
    assert array.max() > 1.0                                        # stored values, no window
    assert np.corrcoef(array.T.ravel(), density.ravel())[0, 1] < -0.99   # not inverted
    ours = read_radiograph(tmp_path / "m1.dcm")
    assert np.corrcoef(ours.ravel(), density.ravel())[0, 1] > 0.999


# -- refusals of written files ---------------------------------------------------------------


def _reason(path: Path) -> str:
    with pytest.raises(RadiographError) as caught:
        read_radiograph(path)
    assert str(caught.value).startswith(str(path))       # names the file
    return caught.value.reason


def test_multi_frame_refused(density: np.ndarray, tmp_path: Path) -> None:
    ds = dicom_dataset(density)
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    ds.save_as(tmp_path / "two.dcm", enforce_file_format=True)
    assert "multi-frame" in _reason(tmp_path / "two.dcm")


def test_no_pixel_data_refused(density: np.ndarray, tmp_path: Path) -> None:
    ds = dicom_dataset(density)
    del ds.PixelData
    ds.save_as(tmp_path / "empty.dcm", enforce_file_format=True)
    assert "no Pixel Data" in _reason(tmp_path / "empty.dcm")


def test_non_image_sop_class_refused(density: np.ndarray, tmp_path: Path) -> None:
    ds = dicom_dataset(density)                  # pixel data present, but a report's class
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    assert "not an image: SOP class Basic Text SR Storage" in _reason(tmp_path / "sr.dcm")


@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_truncated_dicom_refused(density: np.ndarray, tmp_path: Path, keep: float) -> None:
    write_dicom(tmp_path / "whole.dcm", dicom_dataset(density))
    data = (tmp_path / "whole.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:int(len(data) * keep)])
    assert "truncated" in _reason(tmp_path / "cut.dcm")


def test_png_and_jpeg_read_bright_dense(density: np.ndarray, tmp_path: Path) -> None:
    for name in ("x.png", "x.jpg"):
        write_png_jpeg(tmp_path / name, density)
        image = read_radiograph(tmp_path / name)
        assert image.dtype == np.float32 and image.shape == density.shape
        tolerance = 0.5 / 255 + 1e-6 if name.endswith(".png") else 0.05
        np.testing.assert_allclose(image, density, atol=tolerance)
    grey_rgb = np.repeat(np.round(density * 255).astype(np.uint8)[..., None], 3, axis=-1)
    Image.fromarray(grey_rgb, mode="RGB").save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_radiograph(tmp_path / "rgb.png"),
                                  read_radiograph(tmp_path / "x.png"))


def test_bad_png_jpeg_refused(density: np.ndarray, tmp_path: Path) -> None:
    Image.fromarray((density * 65535).astype(np.uint16)).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    assert "16-bit" in _reason(tmp_path / "deep.png")
    colour = np.zeros((*density.shape, 3), dtype=np.uint8)
    colour[..., 0] = 200
    Image.fromarray(colour, mode="RGB").save(tmp_path / "red.png")
    assert "colour" in _reason(tmp_path / "red.png")
    write_png_jpeg(tmp_path / "whole.jpg", density)
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "whole.jpg").read_bytes()[:300])
    assert "truncated" in _reason(tmp_path / "cut.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    assert "not a DICOM, PNG or JPEG" in _reason(tmp_path / "notes.txt")
    assert "cannot open" in _reason(tmp_path / "missing.png")


# -- through a dataset: skipped and counted, or raised with strict=True ----------------------------


@pytest.fixture()
def broken_folder(tmp_path: Path) -> Path:
    """The folder fixture with a truncated DICOM, a 16-bit PNG, a header-only report, a DICOM
    without pixel data (val) and a structured report's SOP class (test)."""
    root = tmp_path / "archive"
    shutil.copytree(DATA / "folder", root)
    data = (root / "images" / "S102.dcm").read_bytes()
    (root / "images" / "S102.dcm").write_bytes(data[:len(data) // 2])
    Image.fromarray(np.full((40, 32), 30000, dtype=np.uint16)).save(root / "images" / "S103.png")
    (root / "reports" / "S104.txt").write_text("FINDINGS:\n\nIMPRESSION:\n")
    empty = dicom_dataset(phantom(5))
    del empty.PixelData
    empty.save_as(root / "images" / "S105.dcm", enforce_file_format=True)
    report = dicom_dataset(phantom(6))   # a DICOM file behind a .jpg name: read by its preamble
    report.SOPClassUID = report.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    report.save_as(root / "images" / "S106.jpg", enforce_file_format=True)
    return root


def test_dataset_skips_and_counts_bad_samples(broken_folder: Path) -> None:
    dataset = StudyFolder(broken_folder, split=None)
    assert len(dataset) == 7
    samples = [dataset[i] for i in range(len(dataset))]
    assert {s["path"] for s in samples} == {"images/S101.dcm", "images/S107.png"}  # good ones
    problems = dict(dataset.bad_samples)
    assert len(problems) == 5
    assert "truncated" in problems["images/S102.dcm"]
    assert "16-bit" in problems["images/S103.png"]
    assert "no Pixel Data" in problems["images/S105.dcm"]
    assert "SOP class Comprehensive SR Storage" in problems["images/S106.jpg"]
    opaque = next(p for p in problems if p.startswith("folder/"))   # P003/S104.jpg
    assert "empty or header-only report" in problems[opaque]
    assert all("P003" not in p and "P003" not in m for p, m in problems.items())
    assert all(m.startswith(p + ": ") for p, m in problems.items())   # each names its file


def test_dataset_preload_drops_bad_samples(broken_folder: Path) -> None:
    dataset = StudyFolder(broken_folder, split="train", preload=True)
    assert len(dataset) == 1 and len(dataset.bad_samples) == 3
    assert not math.isnan(float(dataset[0]["label"][0]))            # No Finding labelled


def test_dataset_strict_raises(broken_folder: Path) -> None:
    dataset = StudyFolder(broken_folder, split="train", strict=True)
    dataset[0]
    with pytest.raises(RadiographError, match=r"images/S102\.dcm: truncated"):
        dataset[1]
    with pytest.raises(RadiographError, match=r"images/S102\.dcm: truncated"):
        StudyFolder(broken_folder, split="train", strict=True, preload=True)
    (broken_folder / "images" / "S102.dcm").unlink()
    with pytest.raises(RadiographError, match=r"images/S102\.dcm: cannot open"):
        StudyFolder(broken_folder, split="train", strict=True, preload=True)


def test_pydicom_log_records_carry_no_element_values(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="pydicom"):
        read_radiograph(get_testdata_file("CT_small.dcm"))     # debug records name the file
        logging.getLogger("pydicom").warning("Invalid value for VR PN: 'Doe^Jane'")
    assert "Invalid value for VR PN" in caplog.text and "Doe" not in caplog.text
    assert "CT_small" not in caplog.text


def test_radiograph_error_pickles_and_takes_one_message() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(RadiographError("a/b.dcm", "truncated file")))
    assert (error.path, error.reason, str(error)) == ("a/b.dcm", "truncated file",
                                                      "a/b.dcm: truncated file")
    whole = RadiographError("a/b.dcm: truncated file")       # how core.data re-raises
    assert (whole.path, whole.reason) == ("a/b.dcm", "truncated file")


def test_written_dicom_has_explicit_little_endian(tmp_path: Path, density: np.ndarray) -> None:
    write_dicom(tmp_path / "x.dcm", dicom_dataset(density))
    assert pydicom.dcmread(tmp_path / "x.dcm").file_meta.TransferSyntaxUID == \
        ExplicitVRLittleEndian
