"""Read a radiograph (DICOM, PNG or JPEG) as a float32 image in [0, 1], bright = dense.

DICOM pixel data are stored values, not an image to show: the DICOM standard's grey-scale
pipeline turns them into display values in a fixed order, and a model trained on one
archive and applied to another only sees the same thing when every reader runs it. This
module runs it with pydicom's own helpers (``pydicom.pixels``):

1. decode — ``Dataset.pixel_array``, which respects ``BitsStored`` (high bits masked) and
   ``PixelRepresentation`` (sign extension); compressed transfer syntaxes go through
   pydicom's plug-ins (pylibjpeg with libjpeg, OpenJPEG and RLE: JPEG baseline, extended
   and lossless, JPEG-LS, JPEG 2000, RLE); a syntax no installed plug-in decodes, or data
   a plug-in cannot decode, is refused naming the syntax;
2. modality LUT — ``apply_modality_lut`` (Rescale Slope/Intercept or the Modality LUT
   Sequence): stored values -> modality units;
3. VOI LUT — ``apply_voi_lut`` (the VOI LUT Sequence, else Window Center/Width with the
   VOI LUT Function; the first window when several are given), scaled from its output
   range to [0, 1]; with neither, the image's own minimum and maximum (after step 2)
   become 0 and 1;
4. presentation — MONOCHROME1 (minimum = white) is inverted so that bright means dense
   everywhere, as MONOCHROME2 shows it. ``apply_presentation_lut`` is not used: the
   Digital X-Ray IOD requires Presentation LUT Shape INVERSE on MONOCHROME1 images, which
   restates the photometric interpretation, so applying both would invert twice. A
   MONOCHROME2 image whose shape is INVERSE is inverted.

Element values in pydicom's own log records (validation warnings quote them, and they can
be patient names) are blanked by a filter on the ``pydicom`` logger, so no log file of a
run holds them.

Refused with :class:`RadiographError` (naming the file and the reason): files that are not
DICOM/PNG/JPEG, truncated or damaged files, objects that are not images (no Pixel Data,
or a SOP class such as a structured report, RT plan/dose, waveform or segmentation),
colour images (``SamplesPerPixel`` 3, RGB, YBR_*, PALETTE COLOR), multi-frame objects,
constant images, and 16-bit PNGs (their values carry no window; export 8-bit, as
MIMIC-CXR-JPG does, or read the DICOM).

Why not MONAI's ``PydicomReader`` / ``LoadImage``: checked on MONAI 1.6, it applies
Rescale Slope/Intercept only — not the Modality LUT Sequence, no VOI LUT or window, no
MONOCHROME1 inversion — and swaps the row/column axes (``swap_ij``) for its affine; so a
MONOCHROME1 radiograph comes out as a negative and a windowed one with raw stored
contrast (``tests/test_rad_dicom.py`` shows it). MONAI's dictionary transforms still
apply downstream on the (1, H, W) tensors this module's arrays become.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image, UnidentifiedImageError
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut, get_decoder
from pydicom.uid import UID

from core.data import SampleError


class _RedactValues(logging.Filter):
    """Blank quoted element values in pydicom's log records ("Invalid value for VR PN: '...'").

    pydicom logs every validation warning with the offending value, which may be a patient
    name or id; run folders keep log files, so the values are replaced before any handler
    sees them (the warning text itself stays).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _QUOTED.sub("'<value>'", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")
if not any(isinstance(f, _RedactValues) for f in logging.getLogger("pydicom").filters):
    logging.getLogger("pydicom").addFilter(_RedactValues())

#: Photometric interpretations of a grey-scale radiograph.
MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
#: File suffixes read as DICOM when the file has no "DICM" preamble to tell.
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")


class RadiographError(SampleError):
    """A radiograph that cannot be used; the message names the file and the reason.

    Args:
        path: The file (or an opaque name standing for it); or, alone, a whole message
            "path: reason" (how :class:`core.data.SampleDataset` raises under ``strict``).
        reason: What is wrong, without the path.

    Attributes:
        path: As given.
        reason: As given (datasets re-word errors with an opaque name from it).
    """

    def __init__(self, path: str | Path, reason: str | None = None) -> None:
        if reason is None:  # one finished message ("path: reason"), as core.data raises it
            text = str(path)
            path, _, reason = text.partition(": ") if ": " in text else ("", "", text)
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # picklable across workers
        return type(self), (self.path, self.reason)


def read_radiograph(path: str | Path) -> np.ndarray:
    """Read a DICOM, PNG or JPEG radiograph for a model.

    Args:
        path: The file. DICOM is recognised by its "DICM" preamble or suffix, PNG and
            JPEG by their signatures.

    Returns:
        (H, W) float32 in [0, 1], bright = dense.

    Raises:
        RadiographError: Naming the file and why it cannot be used.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError as error:
        raise RadiographError(path, f"cannot open: {error.strerror or error}") from None
    if head[128:132] == b"DICM" or path.suffix.lower() in DICOM_SUFFIXES:
        return read_dicom(path)
    if head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8"):
        return read_png_jpeg(path)
    raise RadiographError(path, "not a DICOM, PNG or JPEG file")


# -- DICOM ---------------------------------------------------------------------------------


def read_dicom(path: str | Path) -> np.ndarray:
    """Read a DICOM radiograph through the standard's grey-scale pipeline.

    Args:
        path: The DICOM file.

    Returns:
        (H, W) float32 in [0, 1], bright = dense.

    Raises:
        RadiographError: Naming the file and why it cannot be used.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
    except InvalidDicomError:
        raise RadiographError(path, "not a DICOM file (no DICM preamble and file meta "
                              "information)") from None
    except (EOFError, OSError, ValueError, KeyError, TypeError) as error:
        raise RadiographError(path, f"truncated or damaged DICOM file "
                              f"({type(error).__name__})") from None
    short = _truncated_element(ds)
    if short is None and "PixelData" not in ds and _pixel_tag_in_file(path):
        short = "PixelData"  # an encapsulated (compressed) Pixel Data cut short is dropped
    if short:
        raise RadiographError(path, f"truncated file: the {short} element ends past the end "
                              f"of the file")
    return dicom_to_image(ds, path)


def _pixel_tag_in_file(path: str | Path) -> bool:
    """Whether the file's bytes hold the Pixel Data tag (7FE0,0010), either byte order."""
    data = Path(path).read_bytes()
    return b"\xe0\x7f\x10\x00" in data or b"\x7f\xe0\x00\x10" in data


def _truncated_element(ds: Dataset) -> str | None:
    """The keyword of an element whose value the file cuts short (pydicom reads on silently).

    Right after ``dcmread`` the elements are still raw: a value shorter than its declared
    length means the file ended inside it.
    """
    for tag, element in ds._dict.items():
        length, value = getattr(element, "length", None), getattr(element, "value", None)
        if isinstance(value, bytes) and length is not None and length != 0xFFFFFFFF \
                and len(value) < length:
            return pydicom.datadict.keyword_for_tag(tag) or str(tag)
    return None


def _sop_class_problem(ds: Dataset) -> str | None:
    """Why the object is not an image by its SOP class (None when it is, or unknown)."""
    uid = ds.get("SOPClassUID")
    if uid is None:
        return None
    name = UID(str(uid)).name
    if name == str(uid):  # a private or unknown SOP class: judge by the pixel data alone
        return None
    if "Image Storage" in name:
        return None
    return f"not an image: SOP class {name} ({uid})"


def check_radiograph_dataset(ds: Dataset) -> str | None:
    """Why a DICOM dataset is not a single-frame grey-scale image, or None when it is.

    Args:
        ds: A dataset read by pydicom.

    Returns:
        The reason for refusing it, or None.
    """
    problem = _sop_class_problem(ds)
    if problem:
        return problem
    if "PixelData" not in ds:
        kind = "float pixel data" if ("FloatPixelData" in ds or "DoubleFloatPixelData" in ds) \
            else "no Pixel Data element"
        return f"not an image: {kind}"
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    interpretation = str(ds.get("PhotometricInterpretation", "")).strip()
    if not interpretation:
        return "missing Photometric Interpretation element"
    if samples != 1 or interpretation not in MONOCHROME:
        return (f"colour image (PhotometricInterpretation {interpretation}, "
                f"{samples} sample(s) per pixel); a radiograph must be MONOCHROME1/2")
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        return "damaged Number of Frames element"
    if frames != 1:
        return f"multi-frame object ({frames} frames); one radiograph per file is expected"
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation"):
        if keyword not in ds:
            return f"missing {keyword} element"
    return None


def _transfer_syntax(ds: Dataset) -> UID | None:
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    return UID(str(uid)) if uid is not None else None


def _decode(ds: Dataset, path: str | Path) -> np.ndarray:
    """Stored values as an array (H, W): the decoding step, errors named by syntax."""
    syntax = _transfer_syntax(ds)
    if syntax is None:
        raise RadiographError(path, "no Transfer Syntax UID in the file meta information")
    label = f"{syntax.name} ({syntax})" if syntax.name != str(syntax) else str(syntax)
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise RadiographError(path, f"transfer syntax {label} is not supported by "
                              f"pydicom") from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "a decoder plug-in"
        raise RadiographError(path, f"cannot decode transfer syntax {label}: no installed "
                              f"plug-in ({missing})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(ds.pixel_array)
    except (ValueError, EOFError) as error:
        if "less than expected" in str(error) or isinstance(error, EOFError):
            raise RadiographError(path, "truncated pixel data (fewer bytes than Rows x "
                                  "Columns x Bits Allocated)") from None
        raise RadiographError(path, f"cannot decode the pixel data ({label}): "
                              f"{_first_line(error)}") from None
    except (RuntimeError, NotImplementedError, AttributeError, TypeError, KeyError) as error:
        raise RadiographError(path, f"cannot decode transfer syntax {label}: "
                              f"{_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " / ".join(lines[:3])[:300] or type(error).__name__


def _voi_output_range(ds: Dataset) -> tuple[float, float] | None:
    """The output range of the VOI step pydicom applies (None when there is no VOI)."""
    if ds.get("VOILUTSequence"):
        descriptor = ds.VOILUTSequence[0].LUTDescriptor
        return 0.0, float(2 ** int(descriptor[2]) - 1)
    if "WindowCenter" not in ds or "WindowWidth" not in ds:
        return None
    # pydicom's apply_windowing maps the window onto the range of the modality output:
    # the stored range (or the modality LUT's), through Rescale Slope/Intercept.
    if ds.get("ModalityLUTSequence"):
        bits = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])
        low, high = 0.0, float(2 ** bits - 1)
    elif int(ds.PixelRepresentation) == 0:
        low, high = 0.0, float(2 ** int(ds.BitsStored) - 1)
    else:
        half = 2 ** (int(ds.BitsStored) - 1)
        low, high = float(-half), float(half - 1)
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is not None and intercept is not None and not ds.get("ModalityLUTSequence"):
        low, high = low * float(slope) + float(intercept), high * float(slope) + float(intercept)
    return low, high


def dicom_to_image(ds: Dataset, path: str | Path = "<dataset>") -> np.ndarray:
    """Run the grey-scale pipeline on a DICOM dataset already read.

    Args:
        ds: The dataset (with its pixel data).
        path: How to name it in errors.

    Returns:
        (H, W) float32 in [0, 1], bright = dense.

    Raises:
        RadiographError: Naming ``path`` and why the dataset cannot be used.
    """
    problem = check_radiograph_dataset(ds)
    if problem:
        raise RadiographError(path, problem)
    stored = _decode(ds, path)                                   # (H, W) int
    if stored.ndim != 2:
        raise RadiographError(path, f"pixel data of shape {stored.shape}; one grey-scale "
                              f"frame (rows, columns) is expected")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            modality = np.asarray(apply_modality_lut(stored, ds))
            if modality.dtype.kind == "f" and np.array_equal(modality, np.round(modality)):
                modality = modality.astype(np.int64)  # a VOI LUT indexes by integer value
            output_range = _voi_output_range(ds)
            if output_range is None:
                low, high = float(modality.min()), float(modality.max())
                shown = modality.astype(np.float64)
            else:
                shown = np.asarray(apply_voi_lut(modality, ds, index=0), dtype=np.float64)
                low, high = output_range
    except (ValueError, TypeError, IndexError, AttributeError, KeyError) as error:
        raise RadiographError(path, f"invalid modality/VOI LUT or window elements: "
                              f"{_first_line(error)}") from None
    if not np.isfinite(shown).all():
        raise RadiographError(path, "non-finite values after the modality/VOI LUT")
    if high == low:
        raise RadiographError(path, f"constant image (every pixel {low:g})")
    image = np.clip((shown - low) / (high - low), 0.0, 1.0)     # (H, W)
    interpretation = str(ds.PhotometricInterpretation).strip()
    shape = str(ds.get("PresentationLUTShape", "")).strip().upper()
    if interpretation == "MONOCHROME1" or shape == "INVERSE":
        image = 1.0 - image
    return image.astype(np.float32)


# -- PNG / JPEG ----------------------------------------------------------------------------


def read_png_jpeg(path: str | Path) -> np.ndarray:
    """Read an 8-bit grey-scale PNG or JPEG radiograph (MIMIC-CXR-JPG, CheXpert).

    Args:
        path: The file.

    Returns:
        (H, W) float32 in [0, 1] (value / 255); such exports are already bright = dense.

    Raises:
        RadiographError: For 16-bit or colour images and unreadable or truncated files.
    """
    try:
        with Image.open(path) as image:
            image.load()
            mode, kind = image.mode, image.format
            array = np.asarray(image)
    except (UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise RadiographError(path, f"not a readable image ({type(error).__name__})") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise RadiographError(path, f"truncated or damaged image file: "
                              f"{_first_line(error)}") from None
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        raise RadiographError(path, f"{kind} with {mode} (16-bit or wider) pixels: its "
                              f"values carry no window; export 8-bit grey-scale (as "
                              f"MIMIC-CXR-JPG) or read the DICOM")
    if mode == "RGB" and array.ndim == 3 and (array == array[..., :1]).all():
        array = array[..., 0]                                    # grey stored as RGB
    elif mode != "L":
        raise RadiographError(path, f"colour or non-grey-scale {kind} (mode {mode}); a "
                              f"radiograph must be 8-bit grey-scale")
    if array.ndim != 2 or array.size == 0:
        raise RadiographError(path, f"image of shape {array.shape}; (H, W) expected")
    return (array.astype(np.float32) / 255.0)
