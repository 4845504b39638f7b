"""The training data module every single-batch domain shares: splits, seeded loaders, bad samples.

A domain that trains on one kind of pair (radiograph <-> report, tile <-> caption)
subclasses :class:`SplitDataModule` and says two things: the transform of a split
(:meth:`SplitDataModule.transforms`) and how a split is opened
(:meth:`SplitDataModule.open_split`, usually the domain's ``archives.open_dataset``).
What this adds on top of ``lightning.LightningDataModule``, written once: the synthetic
default set generated on first use, split datasets cached with their transforms, a
training loader whose draws come from ``(seed, epoch, pass, index)`` alone
(:class:`~core.data.EpochSampler` + :class:`~core.data.SeededSamples`), and every bad
sample collected — also those skipped inside DataLoader workers, through a
:class:`~core.data.BadSampleLog`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from core.data import BadSampleLog, EpochSampler, SeededSamples, collect_bad_samples
from core.transforms import Compose


class SplitDataModule(L.LightningDataModule, abc.ABC):
    """Datasets of a data folder's ``train`` / ``val`` splits as Lightning loaders.

    Args:
        root: Data folder (``None``: ``default_root()`` once, e.g. a synthetic set).
        default_root: Returns the default data folder (generating it if needed).
        batch_size: Samples per mini-batch.
        num_workers: DataLoader worker processes.
        seed: Seed of shuffling and augmentation.
        strict: Raise on bad files instead of skipping them.
        options: Extra keyword arguments of the layout's loader.
        bad_sample_log: A file where worker processes record the samples they skip.
        noun: What one sample is, for messages (``"studies"``, ``"tiles"``).
    """

    def __init__(self, root: str | Path | None, default_root: Callable[[], Path],
                 batch_size: int = 64, num_workers: int = 0, seed: int = 0,
                 strict: bool = False, options: dict[str, Any] | None = None,
                 bad_sample_log: str | Path | None = None, noun: str = "samples") -> None:
        super().__init__()
        self.root = Path(root) if root is not None else None
        self.default_root = default_root
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.strict = strict
        self.options = dict(options or {})
        self.bad_sample_log = BadSampleLog(bad_sample_log) if bad_sample_log else None
        self.noun = noun
        self._datasets: dict[str, Dataset] = {}
        self._transforms: dict[str, Compose] = {}

    @abc.abstractmethod
    def transforms(self, split: str) -> Compose:
        """The per-sample transform of a split (training adds the random ones)."""

    @abc.abstractmethod
    def open_split(self, split: str, transforms: Compose) -> Dataset:
        """Open one split of :attr:`root` with ``transforms`` (and the module's options)."""

    def prepare_data(self) -> None:
        """Generate (or find) the default data folder if no root was given."""
        if self.root is None:
            self.root = Path(self.default_root())

    def dataset(self, split: str) -> Dataset:
        """The (cached) dataset of one split with its transforms."""
        if split not in self._datasets:
            if self.root is None:
                self.prepare_data()
            transforms = self.transforms(split)
            self._transforms[split] = transforms
            self._datasets[split] = self.open_split(split, transforms)
        return self._datasets[split]

    def _epoch(self) -> int:
        """The epoch the trainer is about to run (0 without one)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0
        return int(trainer.fit_loop.epoch_progress.current.processed)

    def _options(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "num_workers": self.num_workers,
                "persistent_workers": self.num_workers > 0}

    def train_dataloader(self) -> DataLoader:
        """Shuffled training samples; draws seeded by (seed, epoch, pass, index)."""
        dataset = self.dataset("train")
        if len(dataset) < self.batch_size:
            raise ValueError(f"{self.root}: the train split has {len(dataset)} readable "
                             f"{self.noun}, fewer than one batch of {self.batch_size}")
        sampler = EpochSampler(dataset, shuffle=True, seed=self.seed, epoch=self._epoch())
        return DataLoader(SeededSamples(dataset, self._transforms["train"]), sampler=sampler,
                          drop_last=True, **self._options())

    def val_dataloader(self) -> DataLoader:
        """Validation samples in order."""
        return DataLoader(self.dataset("val"), shuffle=False, **self._options())

    def bad_samples(self) -> list[tuple[str, str]]:
        """Every sample skipped so far (here and in worker processes), with its problem."""
        return collect_bad_samples(self._datasets.values(), self.bad_sample_log)
