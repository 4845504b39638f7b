"""LightningDataModule for radiograph <-> report training.

Each batch is a dict: ``image`` (B, 1, S, S) standardised, ``caption`` (B reports:
impression + findings, :func:`~domains.radiology.reports.report_caption`), ``label``
(B, F) soft targets over the CheXpert findings (1 positive, ``uncertain`` for -1, 0
otherwise; :class:`~domains.radiology.transforms.TrainingTargets`), ``label_names``,
``id``, ``path``. Training studies get exposure jitter and sentence-subset reports. The
module only assembles datasets (:func:`domains.radiology.archives.open_dataset`) and
transforms for training: evaluation and inference open datasets themselves.

Training randomness comes from ``(seed, epoch, pass, study index)`` alone
(:class:`~core.data.EpochSampler` + :class:`~core.data.SeededSamples`), as in every domain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from core.data import BadSampleLog, EpochSampler, SeededSamples, collect_bad_samples
from core.transforms import Compose
from domains.radiology.archives import open_dataset
from domains.radiology.transforms import (
    RandomExposure,
    ReportSentences,
    TrainingTargets,
    prepare,
)


class StudyDataModule(L.LightningDataModule):
    """Chest radiographs with their reports for contrastive training.

    Args:
        root: Data folder (``None``: the synthetic set, generated once).
        model_extra: The model config's ``extra`` (input side, normalisation).
        layout: On-disk layout (``None``: detected).
        batch_size: Studies per mini-batch.
        num_workers: DataLoader worker processes.
        augment: Exposure jitter and shifts on training radiographs.
        caption_augment: Chance a training report keeps a random subset of its sentences.
        uncertain: Training target of an uncertain finding.
        seed: Seed of shuffling and augmentation.
        strict: Raise on bad files instead of skipping them.
        preload: Decode every radiograph when a split is opened.
        options: Extra keyword arguments of the layout's loader.
        bad_sample_log: A file where worker processes record the studies they skip.
    """

    def __init__(self, root: str | Path | None, model_extra: dict[str, Any],
                 layout: str | None = None, batch_size: int = 64, num_workers: int = 0,
                 augment: bool = True, caption_augment: float = 0.5, uncertain: float = 0.5,
                 seed: int = 0, strict: bool = False, preload: bool = False,
                 options: dict[str, Any] | None = None,
                 bad_sample_log: str | Path | None = None) -> None:
        super().__init__()
        self.root = Path(root) if root is not None else None
        self.model_extra = dict(model_extra)
        self.layout = layout
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.augment = augment
        self.caption_augment = caption_augment
        self.uncertain = uncertain
        self.seed = seed
        self.strict = strict
        self.preload = preload
        self.options = dict(options or {})
        self.bad_sample_log = BadSampleLog(bad_sample_log) if bad_sample_log else None
        self._datasets: dict[str, Dataset] = {}
        self._transforms: dict[str, Compose] = {}

    def prepare_data(self) -> None:
        """Generate the synthetic set if no root was given."""
        if self.root is None:
            from domains.radiology.synthetic import default_dataset

            self.root = default_dataset()

    def transforms(self, split: str) -> Compose:
        """The transform of a split: (training: jitter) -> resize + standardise -> targets
        (-> training: sentence subsets)."""
        train = split == "train"
        exposure = RandomExposure(seed=self.seed) if train and self.augment else None
        sentences = ReportSentences(self.caption_augment, seed=self.seed + 1) \
            if train and self.caption_augment > 0 else None
        return Compose(exposure, prepare(self.model_extra), TrainingTargets(self.uncertain),
                       sentences)

    def dataset(self, split: str) -> Dataset:
        """The (cached) dataset of one split with its transforms."""
        if split not in self._datasets:
            if self.root is None:
                self.prepare_data()
            transforms = self.transforms(split)
            self._transforms[split] = transforms
            self._datasets[split] = open_dataset(
                self.root, split, transforms=transforms, strict=self.strict,
                layout=self.layout, preload=self.preload, bad_sample_log=self.bad_sample_log,
                **self.options)
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
        """Shuffled training studies; draws seeded by (seed, epoch, pass, index)."""
        dataset = self.dataset("train")
        if len(dataset) < self.batch_size:
            raise ValueError(f"{self.root}: the train split has {len(dataset)} readable "
                             f"studies, fewer than one batch of {self.batch_size}")
        sampler = EpochSampler(dataset, shuffle=True, seed=self.seed, epoch=self._epoch())
        return DataLoader(SeededSamples(dataset, self._transforms["train"]), sampler=sampler,
                          drop_last=True, **self._options())

    def val_dataloader(self) -> DataLoader:
        """Validation studies in order."""
        return DataLoader(self.dataset("val"), shuffle=False, **self._options())

    def bad_samples(self) -> list[tuple[str, str]]:
        """Every study skipped so far (here and in worker processes), with its problem."""
        return collect_bad_samples(self._datasets.values(), self.bad_sample_log)
