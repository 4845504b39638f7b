"""The dataset base of every domain: sample dicts and the bad-sample policy.

A domain's loader (a scene archive, a DICOM study folder, a slide-tile table) lists its
samples in ``self.metadata`` (a DataFrame, one row per sample, with at least ``path``
and ``id``) and implements two hooks: :meth:`SampleDataset._read` (open the file, check
it, return what it holds) and :meth:`SampleDataset._sample` (turn that into a sample
dict). Samples are TorchGeo-style dicts; the keys every domain uses are ``image``
(C, H, W) float32, ``label`` (C,) multi-hot, ``label_names`` ("; "-joined), ``caption``,
``path`` and ``id``, plus domain keys (``coords``, ``sensor``, ``fractions``...).

What this module adds on top of ``torch.utils.data.Dataset`` — the bad-input policy,
written once for every domain:

- with ``preload`` (small archives) every sample is read and checked when the dataset is
  built, bad ones are dropped and counted in ``bad_samples`` (file named, problem
  stated);
- otherwise a sample found bad when read is counted the same way, logged, and replaced
  by the next readable sample, so an epoch never dies for one file;
- ``strict=True`` raises instead;
- a sample skipped inside a DataLoader worker (or another DDP rank) lives in that
  process's copy of the dataset, so it is also appended to a :class:`BadSampleLog`
  file that the training run reads back (:func:`collect_bad_samples`) for its
  ``metrics.json`` and summary.
"""

from __future__ import annotations

import abc
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

log = logging.getLogger(__name__)


class SampleError(ValueError):
    """A sample file that cannot be used; the message names the file and the problem."""


class BadSampleLog:
    """An append-only JSON-lines file of skipped samples, shared by processes.

    Each record is one ``write`` of one line to a file opened with ``O_APPEND``, so the
    lines of DataLoader workers and DDP ranks writing at once never interleave.

    Args:
        path: The log file (created on the first record).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def record(self, path: str, problem: str) -> None:
        """Append one skipped sample."""
        line = json.dumps({"path": path, "problem": problem}) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    def read(self) -> list[tuple[str, str]]:
        """Every record so far, in order (a torn last line is ignored)."""
        if not self.path.is_file():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                found.append((str(record["path"]), str(record["problem"])))
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        return found


def collect_bad_samples(datasets: Iterable[Any],
                        log_file: BadSampleLog | None = None) -> list[tuple[str, str]]:
    """Every skipped sample, once: the datasets' own lists plus a shared log's records.

    Args:
        datasets: Datasets of this process (their ``bad_samples``).
        log_file: The log that worker processes and other ranks appended to.

    Returns:
        ``(path, problem)`` pairs, first occurrence order, without repeats.
    """
    found: dict[tuple[str, str], None] = {}
    for dataset in datasets:
        found.update(dict.fromkeys(getattr(dataset, "bad_samples", [])))
    if log_file is not None:
        found.update(dict.fromkeys(log_file.read()))
    return list(found)


class SampleDataset(Dataset, abc.ABC):
    """Samples listed in ``self.metadata``; subclasses implement ``_read`` and ``_sample``.

    Args:
        transforms: A dictionary transform applied to each sample.
        strict: Raise on the first bad file instead of skipping it.
        bad_sample_log: A log shared with worker processes (see :class:`BadSampleLog`).

    Attributes:
        bad_samples: ``(path, problem)`` of every file this process skipped.
        metadata: One row per sample.
        read_errors: Exception types that make one sample bad (never the whole dataset).
    """

    read_errors: ClassVar[tuple[type[BaseException], ...]] = (SampleError,)

    def __init__(self, transforms: Callable | None = None, strict: bool = False,
                 bad_sample_log: BadSampleLog | None = None) -> None:
        self.transforms = transforms
        self.strict = strict
        self.bad_sample_log = bad_sample_log
        self.bad_samples: list[tuple[str, str]] = []
        self.metadata = pd.DataFrame()
        self._images: list[Any] | None = None
        self._broken: set[int] = set()

    # -- what a subclass provides ------------------------------------------------------------

    @abc.abstractmethod
    def _read(self, index: int) -> Any:
        """Read and check the file(s) of sample ``index``; raise one of ``read_errors``."""

    @abc.abstractmethod
    def _sample(self, index: int, read: Any) -> dict[str, Any]:
        """The sample dict of row ``index`` from what :meth:`_read` returned."""

    # -- the bad-input policy ----------------------------------------------------------------

    def _bad(self, path: str, problem: str) -> None:
        if self.strict:
            error_type = next((e for e in self.read_errors if issubclass(e, SampleError)),
                              SampleError)
            raise error_type(problem if problem.startswith(path) else f"{path}: {problem}")
        self.bad_samples.append((path, problem))
        if self.bad_sample_log is not None:
            self.bad_sample_log.record(path, problem)

    def _path(self, index: int) -> str:
        return str(self.metadata.iloc[index]["path"])

    def _preload(self) -> None:
        """Read and check every sample now; drop (and count) the bad ones."""
        images, keep = [], []
        for index in range(len(self.metadata)):
            try:
                images.append(self._read(index))
                keep.append(index)
            except self.read_errors as error:
                self._bad(self._path(index), str(error))
        self.metadata = self.metadata.iloc[keep].reset_index(drop=True)
        self._images = images

    def _drop_rows(self, keep: Sequence[bool], problem: str) -> None:
        """Drop (and count, with ``problem``) the rows where ``keep`` is false."""
        for index in np.flatnonzero(~np.asarray(keep, dtype=bool)):
            self._bad(self._path(int(index)), problem)
        self.metadata = self.metadata[np.asarray(keep, dtype=bool)].reset_index(drop=True)

    # -- samples ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.metadata)

    def read_sample(self, index: int) -> dict[str, Any]:
        """Sample ``index`` exactly, never a substitute (for indexing every sample once).

        Raises:
            One of :attr:`read_errors` if the sample cannot be read; it is not counted in
            ``bad_samples`` here — the caller decides.
        """
        read = self._images[index] if self._images is not None else self._read(index)
        sample = self._sample(index, read)
        return self.transforms(sample) if self.transforms is not None else sample

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Sample ``index``, or the next readable one when it is bad (counted, logged)."""
        if self._images is not None:
            return self.read_sample(index)
        for step in range(len(self)):
            current = (index + step) % len(self)
            if current in self._broken:
                continue
            try:
                return self.read_sample(current)
            except self.read_errors as error:
                self._bad(self._path(current), str(error))
                self._broken.add(current)
                log.warning("skipping bad sample: %s", error)
        raise SampleError(f"no readable sample left in {type(self).__name__}")


def labels_of(value: Any) -> list[str]:
    """A label list from a list/array, a "; "-joined string, or nothing (None/NaN)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(";") if v.strip()]
    return [str(v) for v in value]


def float_or_nan(value: Any) -> float:
    """``float(value)``, or NaN for None/NA."""
    return float(value) if value is not None and pd.notna(value) else float("nan")


def multi_hot(labels: Sequence[str], vocabulary: Sequence[str]) -> torch.Tensor:
    """(C,) multi-hot vector of ``labels`` over ``vocabulary`` (unknown labels ignored)."""
    vector = torch.zeros(len(vocabulary))
    for label in labels:
        if label in vocabulary:
            vector[list(vocabulary).index(label)] = 1.0
    return vector
