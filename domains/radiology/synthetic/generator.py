"""The synthetic chest-radiograph set: DICOM phantoms, free-text reports, patient-level splits.

Layout (the generic radiology folder layout, read by ``domains.radiology.archives``)::

    ROOT/images/<study>.dcm    one frontal radiograph per study (real DICOM, pydicom-written)
    ROOT/reports/<study>.txt   its free-text report
    ROOT/metadata.csv          image, report, study_id, patient_id, split, one column per
                               CheXpert finding (1 / 0 / -1 uncertain / blank not simulated)
    ROOT/manifest.json         generator name, parameters and counts; written last

What varies, as in real archives: photometric interpretation (MONOCHROME1 for about 40 %,
stored inverted), rescale slope/intercept, bits stored (12 or 16), window centre/width
tags, and the transfer syntax — explicit VR little endian, RLE Lossless (pydicom's native
encoder) and JPEG 2000 Lossless (pydicom's encoder through ``pylibjpeg-openjpeg``; lossy
baseline JPEG has no pydicom encoder here). File names are study ids, never patient ids;
the patient id lives only in ``metadata.csv`` and the DICOM PatientID tag. Splits are by
patient (about 75 / 8 / 17 %), and some patients have several studies.

The output folder is never one we did not create (see :mod:`core.generated`).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)

from core.atomic import atomic_write_bytes
from core.generated import cached_generated, generated_set_problem, write_generated
from core.resources import cache_root
from domains.radiology.synthetic.phantom import (
    DRAWN_FINDINGS,
    SEVERITIES,
    Study,
    draw_radiograph,
    random_anatomy,
)
from domains.radiology.synthetic.wording import write_report

GENERATOR_NAME = "mosaic-vlm radiology synthetic"
GENERATOR_VERSION = 3
#: All 14 CheXpert observations, in CheXpert's order (the metadata columns).
CHEXPERT = ("No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity",
            "Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax",
            "Pleural Effusion", "Pleural Other", "Fracture", "Support Devices")
PREVALENCE = {"Cardiomegaly": 0.3, "Pleural Effusion": 0.3, "Pneumothorax": 0.2,
              "Consolidation": 0.25, "Lung Lesion": 0.2, "Atelectasis": 0.25}
DX_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
_LAYOUT = ("images", "reports", "metadata.csv", "manifest.json")


def _plan(n_studies: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(patient, study-of-patient) pairs: 60 % of patients one study, others two or three."""
    plan: list[tuple[int, int]] = []
    patient = 0
    while len(plan) < n_studies:
        count = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
        plan += [(patient, k) for k in range(min(count, n_studies - len(plan)))]
        patient += 1
    return plan


def _split(patient_seed: int) -> str:
    value = np.random.default_rng(patient_seed).random()
    return "train" if value < 0.75 else "val" if value < 0.83 else "test"


def _findings(rng: np.random.Generator, chronic: dict[str, dict[str, Any]]
              ) -> dict[str, dict[str, Any]]:
    """The findings of one study: none (30 %) or independent draws, keeping chronic ones."""
    if rng.random() < 0.3 and not chronic:
        return {}
    findings = dict(chronic)
    for name, p in PREVALENCE.items():
        if name not in findings and rng.random() < p:
            side = ["right", "left", "both"][int(rng.integers(3))]
            if name in ("Consolidation", "Lung Lesion"):
                side = side if side != "both" else "right"
            findings[name] = {"severity": SEVERITIES[int(rng.integers(3))], "side": side}
    return findings


def _to_dicom(density: np.ndarray, rng: np.random.Generator, patient_id: str,
              study_id: str, view: str) -> tuple[Dataset, str]:
    """Wrap a density map as a DX DICOM with varied encoding; returns (dataset, syntax)."""
    bits = int(rng.choice([12, 16]))
    slope = float(rng.choice([1.0, 0.5, 2.0]))
    intercept = float(rng.choice([0.0, -1024.0, 100.0]))
    top = 2**bits - 1
    stored = np.round(density * top * rng.uniform(0.85, 1.0)).astype(np.uint16)  # (H, W)
    monochrome1 = rng.random() < 0.4
    if monochrome1:
        stored = (top - stored).astype(np.uint16)  # MONOCHROME1: high values are dark
    values = stored.astype(np.float64) * slope + intercept
    low, high = np.percentile(values, [0.5, 99.5])
    ds = Dataset()
    ds.SOPClassUID = DX_IMAGE_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = "SYNTHETIC^PHANTOM"
    ds.StudyID = study_id[-8:]
    ds.Modality = "DX"
    ds.ViewPosition = view
    ds.BodyPartExamined = "CHEST"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits, bits - 1
    ds.PixelRepresentation = 0
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, intercept, "US"
    ds.WindowCenter = round(float(low + high) / 2, 2)
    ds.WindowWidth = round(float(high - low), 2)
    ds.PresentationLUTShape = "INVERSE" if monochrome1 else "IDENTITY"  # as the DX IOD asks
    ds.PixelData = stored.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    choice = rng.random()
    if choice < 0.25:
        ds.compress(JPEG2000Lossless)
    elif choice < 0.4:
        ds.compress(RLELossless)
    return ds, str(ds.file_meta.TransferSyntaxUID)


def _make_study(job: tuple[int, int, int, str, Any, int]) -> dict[str, Any]:
    """Draw, encode and write one study; returns its metadata row."""
    index, patient, visit, root, seed, size = job
    rng = np.random.default_rng(seed)
    patient_rng = np.random.default_rng(np.random.SeedSequence([7919, patient]))
    anatomy = random_anatomy(patient_rng)
    chronic = {}
    if patient_rng.random() < 0.25:  # a patient's enlarged heart stays enlarged
        chronic["Cardiomegaly"] = {"severity": SEVERITIES[int(patient_rng.integers(3))],
                                   "side": "both"}
    findings = _findings(rng, chronic)
    study = Study(findings=findings, rotation=float(rng.uniform(-5, 5)),
                  contrast=float(rng.uniform(0.85, 1.15)), gamma=float(rng.uniform(0.8, 1.25)),
                  noise=float(rng.uniform(0.005, 0.03)), blur=float(rng.uniform(0.4, 1.0)))
    density = draw_radiograph(anatomy, study, size, rng)
    uncertain = {name for name, f in findings.items()
                 if f["severity"] == "mild" and rng.random() < 0.35}
    report = write_report(findings, uncertain, rng)
    study_id = f"s{5000_0000 + index * 7 + visit:08d}"
    patient_id = f"SYNP{10_000 + patient:06d}"
    view = "PA" if rng.random() < 0.7 else "AP"
    ds, syntax = _to_dicom(density, rng, patient_id, study_id, view)
    ds.save_as(Path(root) / "images" / f"{study_id}.dcm", enforce_file_format=True)
    (Path(root) / "reports" / f"{study_id}.txt").write_text(report, encoding="utf-8")
    labels: dict[str, Any] = {name: "" for name in CHEXPERT}
    for name in DRAWN_FINDINGS:
        labels[name] = -1 if name in uncertain else 1 if name in findings else 0
    labels["No Finding"] = 1 if not findings else 0
    return {"image": f"images/{study_id}.dcm", "report": f"reports/{study_id}.txt",
            "study_id": study_id, "patient_id": patient_id,
            "split": _split(int(np.random.SeedSequence([104729, patient]).generate_state(1)[0])),
            "view": view, "photometric": str(ds.PhotometricInterpretation),
            "transfer_syntax": syntax, **labels, "_index": index}


def stray_entries(folder: Path) -> list[str]:
    """Entries of ``folder`` outside the generator's layout (relative names, sorted)."""
    stray = []
    suffix = {"images": ".dcm", "reports": ".txt"}
    for entry in os.scandir(folder):
        if entry.name in suffix and entry.is_dir(follow_symlinks=False):
            stray += [f"{entry.name}/{f.name}" for f in os.scandir(entry.path)
                      if not f.is_file(follow_symlinks=False)
                      or not f.name.endswith(suffix[entry.name])]
        elif not (entry.is_file(follow_symlinks=False) and (
                entry.name in _LAYOUT or entry.name.startswith((".manifest.json.",
                                                                ".metadata.csv.")))):
            stray.append(entry.name)
    return sorted(stray)


def dataset_problem(folder: str | Path) -> str | None:
    """Why ``folder`` is not a complete set written by this generator (None when it is)."""
    return generated_set_problem(folder, stray_entries, _LAYOUT, GENERATOR_NAME)


def _build(root: Path, params: dict[str, Any], workers: int | None, progress: bool) -> None:
    """Write every study, then metadata.csv, then (last) the manifest into ``root``."""
    started = time.perf_counter()
    (root / "images").mkdir()
    (root / "reports").mkdir()
    rng = np.random.default_rng(params["seed"])
    plan = _plan(params["n_studies"], rng)
    seeds = np.random.SeedSequence(params["seed"]).spawn(len(plan))
    jobs = [(i, p, v, str(root), seeds[i], params["size"]) for i, (p, v) in enumerate(plan)]
    workers = workers or min(os.cpu_count() or 1, 4)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            rows = list(pool.map(_make_study, jobs, chunksize=32))
    else:
        rows = [_make_study(job) for job in jobs]
    frame = pd.DataFrame(rows).sort_values("_index").drop(columns="_index")
    atomic_write_bytes(root / "metadata.csv", frame.to_csv(index=False).encode())
    seconds = time.perf_counter() - started
    manifest = {"generator": GENERATOR_NAME, **params, "studies": len(frame),
                "patients": int(frame["patient_id"].nunique()),
                "splits": frame["split"].value_counts().to_dict(),
                "transfer_syntaxes": frame["transfer_syntax"].value_counts().to_dict(),
                "seconds": round(seconds, 1),
                "created": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write_bytes(root / "manifest.json", json.dumps(manifest, indent=2).encode())
    if progress:
        from rich.console import Console

        Console().print(f"[bold]Synthetic chest radiographs[/]: {len(frame)} studies of "
                        f"{manifest['patients']} patients in {seconds:.0f} s; splits "
                        f"{manifest['splits']}")


def generate_dataset(out: str | Path, n_studies: int = 2400, seed: int = 0, size: int = 160,
                     workers: int | None = None, progress: bool = True,
                     overwrite: bool = False) -> Path:
    """Generate the synthetic set (deterministic for a seed, except DICOM UIDs).

    Args:
        out: Folder: missing, empty, or (with ``overwrite``) a set of this generator.
        n_studies: Number of studies (one frontal radiograph and one report each).
        seed: Random seed.
        size: Stored image side in pixels.
        workers: Processes (default: the machine's cores, at most 4).
        progress: Print a summary.
        overwrite: Replace ``out`` when it already holds a set of this generator.

    Returns:
        ``out``.

    Raises:
        core.generated.UnsafeOutputError: ``out`` holds data this generator did not write,
            or a set of ours without ``overwrite``; nothing in it is changed.
    """
    if n_studies < 1 or size < 32:
        raise ValueError(f"need n_studies >= 1 and size >= 32, got {n_studies}, {size}")
    params = {"n_studies": n_studies, "seed": seed, "size": size,
              "version": GENERATOR_VERSION}
    return write_generated(out, lambda root: _build(root, params, workers, progress),
                           dataset_problem, GENERATOR_NAME, overwrite)


def default_dataset(cache_dir: str | Path | None = None, *, workers: int | None = None,
                    progress: bool = True, **params: Any) -> Path:
    """The default synthetic set under ``$MOSAIC_VLM_CACHE/synthetic``, generated once.

    Args:
        cache_dir: Parent folder (default: ``core.resources.cache_root() / "synthetic"``).
        workers: Processes used when the set has to be generated.
        progress: Print a summary when generating.
        **params: Generator parameters overriding the defaults (``n_studies``, ``seed``,
            ``size``).

    Returns:
        The set's folder.
    """
    settings = {"n_studies": 2400, "seed": 0, "size": 160, **params}
    name = "radiology-" + "-".join(f"{k}{v}" for k, v in sorted(settings.items()))
    folder = Path(cache_dir or cache_root() / "synthetic") / name
    return cached_generated(
        folder, {"generator": GENERATOR_NAME, "version": GENERATOR_VERSION, **settings},
        lambda target: generate_dataset(target, **settings, workers=workers,
                                        progress=progress, overwrite=True),
        dataset_problem, stray_entries, GENERATOR_NAME)
