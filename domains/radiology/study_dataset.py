"""The base of every radiology loader: a radiograph, its report caption and CheXpert labels.

Built on :class:`core.data.SampleDataset`, which owns the bad-input policy (skip and
count, substitute the next readable sample, ``strict=True`` raises, records from DataLoader
workers). A loader (folder + CSV, MIMIC-CXR, CheXpert) fills ``self.metadata`` with one
row per image — columns ``file`` (the image on disk), ``report_file`` (its report or
""), ``path`` (the name samples and logs show), ``id`` (an opaque key), ``split``,
``patient_key`` (an opaque hash of the patient, for split checks) and, when the archive
has them, one column per finding (1/0/-1/NaN) — and this module does the rest:

- the sample dict: ``image`` (1, H, W) float32 in [0, 1] (bright = dense, see
  :mod:`domains.radiology.image_io`), ``caption`` (:func:`reports.report_caption`, or a
  caption written from the labels when an archive has no reports, as CheXpert),
  ``label`` (F,) over :func:`cards.findings` with 1/0/-1/NaN, ``label_names``,
  ``id``, ``path``;
- labels from the archive's columns when present, else from the rule labeller on the
  report (:func:`reports.label_report`), with CheXpert's uncertainty policies
  (``U-Ones``, ``U-Zeros``, ``U-Ignore``; default: keep -1);
- what must not leak: patient identifiers and report text never reach a sample field
  other than ``caption``, an error message, a log line or the bad-sample log. Archives
  whose file paths hold patient ids (MIMIC-CXR ``files/p10/p10000032/...``, CheXpert
  ``patient00001/...``) show an opaque ``path``; errors are re-worded with that name;
  ``id`` is a keyed hash, never a patient or study number.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from core.data import BadSampleLog, SampleDataset
from domains.radiology import cards
from domains.radiology.image_io import RadiographError, read_radiograph
from domains.radiology.reports import label_report, report_caption

log = logging.getLogger(__name__)

#: CheXpert's uncertainty policies (Irvin et al. 2019): what an uncertain (-1) label becomes.
UNCERTAINTY_POLICIES: dict[str | None, float | None] = {
    None: None, "U-Ones": 1.0, "U-Zeros": 0.0, "U-Ignore": math.nan,
}
#: Split names every layout answers to.
SPLITS = ("train", "val", "test")
_KEY = b"mosaic-vlm/radiology/v1"


def opaque_key(*parts: object) -> str:
    """A stable 16-hex-digit key for identifiers that must not be shown (keyed BLAKE2b).

    Args:
        *parts: What identifies the item (layout, study id, image name...).

    Returns:
        The key; the parts cannot be read back from it.
    """
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return hashlib.blake2b(text, key=_KEY, digest_size=8).hexdigest()


def check_patient_splits(patient_keys: Sequence[str], splits: Sequence[str],
                         source: str) -> None:
    """Refuse a table in which one patient appears in two splits (a leak between them).

    Args:
        patient_keys: The patient (or its opaque key) of each row.
        splits: The split of each row.
        source: The table's name for the error.

    Raises:
        ValueError: Counting the patients in several splits (never naming them). Rows
            without a patient (blank) are not checked.
    """
    frame = pd.DataFrame({"patient": list(patient_keys), "split": list(splits)})
    frame = frame[frame["patient"].notna() & (frame["patient"].astype(str).str.strip() != "")]
    counts = frame.groupby("patient")["split"].nunique()
    shared = int((counts > 1).sum())
    if shared:
        raise ValueError(f"{source}: {shared} patient(s) appear in more than one split; "
                         f"splits must be patient-level (no patient in two splits)")


def label_caption(labels: Sequence[float] | np.ndarray) -> str:
    """A caption written from CheXpert labels, for archives without report text.

    Args:
        labels: (F,) over :func:`cards.findings`, 1/0/-1/NaN.

    Returns:
        E.g. "Cardiomegaly. Possible pleural effusion. No pneumothorax."; "No finding." when
        nothing is positive or uncertain.
    """
    named = [(f, float(v)) for f, v in zip(cards.findings(), labels, strict=True)
             if f != "No Finding"]
    parts = []
    for finding, value in named:
        name = cards.prompt_name(finding)
        if value == 1.0:
            parts.append(f"{name[0].upper()}{name[1:]}.")
        elif value == -1.0:
            parts.append(f"Possible {name}.")
    no_finding = dict(zip(cards.findings(), labels, strict=True)).get("No Finding") == 1.0
    if no_finding or not parts:
        parts.insert(0, "No finding.")
    negatives = [cards.prompt_name(f) for f, v in named if v == 0.0]
    if negatives:
        parts.append("No " + ", ".join(negatives) + ".")
    return " ".join(parts)


class StudyDataset(SampleDataset):
    """Radiographs with captions and CheXpert labels; loaders fill ``self.metadata``.

    Args:
        transforms: A dictionary transform applied to each sample.
        strict: Raise on the first bad file instead of skipping it.
        bad_sample_log: A log shared with DataLoader workers (see :mod:`core.data`).
        uncertainty: CheXpert's policy for uncertain labels: ``None`` (keep -1),
            ``"U-Ones"``, ``"U-Zeros"`` or ``"U-Ignore"`` (NaN, left out of the loss).

    Attributes:
        bad_samples: ``(path, problem)`` of every skipped sample (opaque names).
        metadata: One row per image (see the module docstring).
        label_columns: The finding columns the archive gives (empty: the labeller labels).
    """

    read_errors = (RadiographError,)
    layout = "study"

    def __init__(self, transforms: Callable | None = None, strict: bool = False,
                 bad_sample_log: BadSampleLog | None = None,
                 uncertainty: str | None = None) -> None:
        super().__init__(transforms, strict, bad_sample_log)
        if uncertainty not in UNCERTAINTY_POLICIES:
            known = ", ".join(str(k) for k in UNCERTAINTY_POLICIES)
            raise ValueError(f"unknown uncertainty policy {uncertainty!r}; known: {known}")
        self.uncertainty = uncertainty
        self.findings = cards.findings()
        self.label_columns: list[str] = []

    # -- what loaders call ---------------------------------------------------------------------

    def _set_metadata(self, frame: pd.DataFrame) -> None:
        """Install the loader's table (checked columns, a clean index)."""
        missing = {"file", "report_file", "path", "id", "split", "patient_key"} - set(frame)
        if missing:
            raise ValueError(f"{type(self).__name__}: metadata lacks {sorted(missing)}")
        self.label_columns = [f for f in self.findings if f in frame.columns]
        self.metadata = frame.reset_index(drop=True)

    # -- reading -------------------------------------------------------------------------------

    def real_path(self, index: int) -> Path:
        """The image file of row ``index`` on disk (for the user's own use; never logged)."""
        return Path(str(self.metadata.iloc[index]["file"]))

    def _read(self, index: int) -> dict[str, Any]:
        row = self.metadata.iloc[index]
        name = str(row["path"])
        try:
            image = read_radiograph(row["file"])                    # (H, W)
        except RadiographError as error:  # re-worded: the real path may hold a patient id
            raise RadiographError(name, error.reason) from None
        text = self._report_text(row, name)
        # a row the label table does not hold (a merge left it NaN, not blank) is labelled
        # from its report, as are archives without label columns
        listed = [row.get(f) for f in self.label_columns]
        if listed and not all(isinstance(v, float) and math.isnan(v) for v in listed):
            labels = np.array([_label_value(row.get(f)) for f in self.findings],
                              dtype=np.float32)
        elif text is not None:
            labels = np.array(list(label_report(text).values()), dtype=np.float32)
        else:
            raise RadiographError(name, "no report text and no labels")
        if text is None and np.isnan(labels).all():
            raise RadiographError(name, "no report text and every label blank")
        caption = report_caption(text) if text is not None else label_caption(labels)
        if not caption:
            raise RadiographError(name, "empty or header-only report (no findings or "
                                  "impression text)")
        return {"image": image, "caption": caption, "labels": self._policy(labels)}

    def _report_text(self, row: pd.Series, name: str) -> str | None:
        """The report of a row (None when the archive has no reports)."""
        report = str(row["report_file"] or "")
        if not report or report == "nan":
            return None
        try:
            return Path(report).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise RadiographError(name, "report file missing") from None
        except OSError as error:
            raise RadiographError(name, f"cannot read the report ({error.strerror})") from None

    def _policy(self, labels: np.ndarray) -> np.ndarray:
        replacement = UNCERTAINTY_POLICIES[self.uncertainty]
        if replacement is not None:
            labels = np.where(labels == -1.0, np.float32(replacement), labels)
        return labels.astype(np.float32)

    def _sample(self, index: int, read: dict[str, Any]) -> dict[str, Any]:
        """The sample dict: image (1, H, W), caption, label (F,), label_names, id, path."""
        row = self.metadata.iloc[index]
        labels = read["labels"]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(read["image"]))[None],  # (1, H, W)
            "caption": read["caption"],
            "label": torch.from_numpy(labels.copy()),                             # (F,)
            "label_names": "; ".join(f for f, v in zip(self.findings, labels, strict=True)
                                     if v == 1.0),
            "id": str(row["id"]),
            "path": str(row["path"]),
        }

    def sample_ids(self) -> list[str]:
        """The ``id`` of each row's sample, in row order."""
        return [str(v) for v in self.metadata["id"]]

    def plot(self, sample: dict[str, Any], suptitle: str | None = None) -> Any:
        """Show a sample: the radiograph (bright = dense) with its positive findings."""
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(4, 4.4))
        axis.imshow(sample["image"][0].numpy(), cmap="gray", vmin=0.0, vmax=1.0)
        axis.set_title(sample.get("label_names") or "no positive finding", fontsize=8)
        axis.axis("off")
        if suptitle:
            figure.suptitle(suptitle)
        return figure


def _label_value(value: Any) -> float:
    """A label cell (1/0/-1, "1.0", blank) as a float, NaN when blank or unreadable."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if number in (1.0, 0.0, -1.0) else math.nan
