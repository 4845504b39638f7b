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

And the randomness of a training loader: :class:`EpochSampler` yields
:class:`SampleKey` (index, epoch, pass) and :class:`SeededSamples` reseeds the random
transforms from that key before loading the sample, so augmentation differs per sample
and per epoch, never repeats across DataLoader workers, does not depend on the number
of workers, and continues where it was when a run resumes.
"""

from __future__ import annotations

import abc
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler

from core.transforms import derive_seed

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


# -- randomness per sample and epoch ---------------------------------------------------------


class SampleKey(NamedTuple):
    """What a training loader asks :class:`SeededSamples` for: a sample and its draws."""

    index: int
    epoch: int
    repeat: int = 0  # pass over the data within the epoch (a shorter loader cycling)


class EpochSampler(DistributedSampler):
    """The :class:`SampleKey` of one epoch: shuffled from ``(seed, epoch)``, a shard per rank.

    Lightning calls ``set_epoch(epoch)`` on a training loader's sampler before every epoch,
    in the main process, with the restored epoch when a run resumes. The sampler puts the
    epoch into every key it yields, so worker processes receive it with the index and
    nothing else has to reach them. ``epoch`` at construction is the epoch the loader is
    built for (a data module passes Lightning's counter): a multi-worker loader starts
    taking keys when its iterator is made, which Lightning does before its first
    ``set_epoch`` call. Iterating again within one epoch (a shorter loader cycling in
    Lightning's ``max_size_cycle`` mode, or a loop that never calls ``set_epoch``)
    counts a pass, ``key.repeat`` = 0, 1, 2...; a new epoch starts again at pass 0.

    Being a ``DistributedSampler`` keeps Lightning from swapping in its own (which yields
    bare indices): with a process group initialised when the sampler is built each rank
    gets its own shard, padded to equal length as ``DistributedSampler`` does.

    Args:
        dataset: The dataset (only its length is used).
        shuffle: A new permutation every epoch and pass, from ``(seed, epoch, pass)``.
        seed: The run seed.
        epoch: The first epoch.
        num_replicas: Shards (default: the process group's size, 1 without one).
        rank: This process's shard (default: its rank in the process group, else 0).
        drop_last: Drop the tail instead of padding when shards would differ in length.
    """

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: int = 0, epoch: int = 0,
                 num_replicas: int | None = None, rank: int | None = None,
                 drop_last: bool = False) -> None:
        distributed = dist.is_available() and dist.is_initialized()
        if num_replicas is None:
            num_replicas = dist.get_world_size() if distributed else 1
        if rank is None:
            rank = dist.get_rank() if distributed else 0
        super().__init__(dataset, num_replicas=num_replicas, rank=rank,  # type: ignore[arg-type]
                         shuffle=shuffle, seed=seed, drop_last=drop_last)
        self.epoch = int(epoch)
        self.repeat = 0

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` at pass 0 (the same epoch again keeps counting passes)."""
        if int(epoch) != self.epoch:
            self.epoch, self.repeat = int(epoch), 0

    def __iter__(self) -> Iterator[SampleKey]:  # type: ignore[override]
        """This rank's keys of the current epoch and pass; the next call is the next pass."""
        epoch, repeat = self.epoch, self.repeat
        self.repeat += 1
        size = len(self.dataset)  # type: ignore[arg-type]
        if self.shuffle:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch, repeat))
            indices = torch.randperm(size, generator=generator).tolist()
        else:
            indices = list(range(size))
        if self.drop_last:
            indices = indices[:self.total_size]
        elif size:
            padding = self.total_size - size  # repeat the head, as DistributedSampler does
            indices += (indices * -(-padding // size))[:padding]
        shard = indices[self.rank:self.total_size:self.num_replicas]
        return iter([SampleKey(index, epoch, repeat) for index in shard])


class SeededSamples(Dataset):
    """A dataset read by :class:`SampleKey`: reseeds the random transforms, then loads.

    Before sample ``key.index`` is loaded, ``transforms.reseed(epoch, pass, index)`` gives
    every random transform the stream of that key (see
    :meth:`core.transforms.RandomTransform.reseed`), whichever worker process runs it. A
    plain integer index (a loader with another sampler) draws as epoch 0, pass 0.

    Args:
        dataset: A dataset indexed by integers that applies ``transforms``.
        transforms: The dataset's transform, with a ``reseed(*keys)`` method
            (:class:`~core.transforms.Compose`); default: ``dataset.transforms``.
    """

    def __init__(self, dataset: Dataset, transforms: Any = None) -> None:
        self.dataset = dataset
        self.transforms = transforms if transforms is not None else getattr(
            dataset, "transforms", None)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: SampleKey | tuple[int, ...] | int) -> dict[str, Any]:
        """The sample of ``key.index`` with the random draws of ``key``."""
        key = SampleKey(*key) if isinstance(key, tuple) else SampleKey(int(key), 0)
        reseed = getattr(self.transforms, "reseed", None)
        if callable(reseed):
            reseed(key.epoch, key.repeat, key.index)
        return self.dataset[key.index]


def detect_layout(root: str | Path, checks: Sequence[tuple[str, Callable[[Path], bool]]],
                  unknown: str) -> str:
    """The on-disk layout of an archive folder: the first of ``checks`` that accepts it.

    Args:
        root: The archive folder.
        checks: ``(layout name, test of the folder)`` pairs, tried in order.
        unknown: The message (after ``"<root>: "``) when no layout matches.

    Raises:
        FileNotFoundError: Naming the folder when it is missing or matches no layout.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: archive folder not found")
    for name, matches in checks:
        if matches(root):
            return name
    raise FileNotFoundError(f"{root}: {unknown}")


def attach_bad_sample_log(dataset: Any, bad_sample_log: BadSampleLog | None) -> Any:
    """Give an opened dataset its worker-side :class:`BadSampleLog` and record in it what
    opening already skipped (e.g. while preloading, before the log was set).

    Args:
        dataset: A dataset with ``bad_sample_log`` and ``bad_samples`` attributes.
        bad_sample_log: The log (``None``: none).

    Returns:
        ``dataset``.
    """
    dataset.bad_sample_log = bad_sample_log
    if bad_sample_log is not None:
        for path, problem in dataset.bad_samples:
            bad_sample_log.record(path, problem)
    return dataset


def open_layout(layouts: Mapping[str, Callable[..., Any]], layout: str, root: str | Path, *,
                bad_sample_log: BadSampleLog | None = None, **kwargs: Any) -> Any:
    """Open an archive with the loader of a named layout (a domain's ``open_dataset``).

    Args:
        layouts: Layout name -> loader class (``loader(root, split=..., transforms=...,
            strict=..., **options)``).
        layout: The layout's name.
        root: The archive folder.
        bad_sample_log: Where DataLoader workers record the samples they skip.
        **kwargs: The loader's arguments (``split``, ``transforms``, ``strict``, options).

    Returns:
        The dataset, with its bad-sample log attached (:func:`attach_bad_sample_log`).

    Raises:
        ValueError: ``layout`` is not one of ``layouts``.
    """
    if layout not in layouts:
        raise ValueError(f"unknown layout {layout!r}; known: {', '.join(layouts)}")
    return attach_bad_sample_log(layouts[layout](root, **kwargs), bad_sample_log)
