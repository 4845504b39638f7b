"""Shared by the radiology fixture scripts: a tiny chest phantom and its file writers.

The phantom is a frontal-chest cartoon (dense body, two dark lungs, a bright heart and
spine) of ``density`` values in [0, 1], bright = dense; a finding may add a dense patch in
the right lung. Writers store it as 8-bit PNG/JPEG (bright = dense) or as DICOM
(MONOCHROME2 or MONOCHROME1, 12 bits stored, optional rescale, window and compression).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"


def phantom(seed: int, height: int = 40, width: int = 32, opacity: bool = False) -> np.ndarray:
    """(H, W) float64 densities in [0, 1]: body, lungs, heart, spine, a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    image = np.full((height, width), 0.55)
    for cx in (0.3, 0.7):                                     # lungs: dark
        image[((x - cx) / 0.17) ** 2 + ((y - 0.45) / 0.3) ** 2 < 1] = 0.15
    image[((x - 0.55) / 0.14) ** 2 + ((y - 0.62) / 0.14) ** 2 < 1] = 0.8   # heart
    image[np.abs(x - 0.5) < 0.04] = 0.9                       # spine
    if opacity:
        image[((x - 0.3) / 0.08) ** 2 + ((y - 0.55) / 0.08) ** 2 < 1] = 0.7
    return np.clip(image + rng.normal(0, 0.02, image.shape), 0, 1)


def write_png_jpeg(path: Path, density: np.ndarray) -> None:
    """8-bit grey-scale PNG or JPEG (by suffix), bright = dense."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.round(density * 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(path, quality=95) if path.suffix == ".jpg" \
        else Image.fromarray(pixels, mode="L").save(path)


def dicom_dataset(density: np.ndarray, monochrome1: bool = False, slope: float = 1.0,
                  intercept: float = 0.0, window: tuple[float, float] | None = None,
                  uid_seed: int = 1) -> Dataset:
    """A Digital X-Ray (for presentation) dataset holding ``density`` in 12 bits stored.

    MONOCHROME2 stores ``round(density * 4095)``; MONOCHROME1 stores ``4095`` minus that,
    so both mean the same picture. Rescale and window, when given, are written as tags
    (the stored values are chosen so that modality values are ``slope * stored +
    intercept``).
    """
    stored = np.round(density * 4095).astype(np.uint16)
    if monochrome1:
        stored = (4095 - stored).astype(np.uint16)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = DX_FOR_PRESENTATION
    ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{uid_seed}"
    ds.SOPClassUID = DX_FOR_PRESENTATION
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.ViewPosition = "PA"
    ds.Rows, ds.Columns = density.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.PresentationLUTShape = "INVERSE" if monochrome1 else "IDENTITY"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if slope != 1.0 or intercept != 0.0:
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, intercept, "US"
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = stored.tobytes()
    return ds


def write_dicom(path: Path, ds: Dataset, rle: bool = False) -> None:
    """Write ``ds`` (RLE Lossless compressed when ``rle``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if rle:
        ds.compress(RLELossless)
    ds.save_as(path, enforce_file_format=True)
