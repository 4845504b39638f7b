"""LightningDataModule for radiograph <-> report training.

Each batch is a dict: ``image`` (B, 1, S, S) standardised, ``caption`` (B reports:
impression + findings, :func:`~domains.radiology.reports.report_caption`), ``label``
(B, F) soft targets over the CheXpert findings (1 positive, ``uncertain`` for -1, 0
otherwise; :class:`~domains.radiology.transforms.TrainingTargets`), ``label_names``,
``id``, ``path``. Training studies get exposure jitter and sentence-subset reports. The
module only assembles datasets (:func:`domains.radiology.archives.open_dataset`) and
transforms for training (splits, seeded loaders and bad-sample collection are
:class:`core.datamodules.SplitDataModule`'s): evaluation and inference open datasets
themselves.

Training randomness comes from ``(seed, epoch, pass, study index)`` alone
(:class:`~core.data.EpochSampler` + :class:`~core.data.SeededSamples`), as in every domain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from core.datamodules import SplitDataModule
from core.transforms import Compose
from domains.radiology.archives import open_dataset
from domains.radiology.transforms import (
    RandomExposure,
    ReportSentences,
    TrainingTargets,
    prepare,
)


def default_root() -> Path:
    """The synthetic set (generated once, cached)."""
    from domains.radiology.synthetic import default_dataset

    return Path(default_dataset())


class StudyDataModule(SplitDataModule):
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
        super().__init__(root, default_root, batch_size=batch_size, num_workers=num_workers,
                         seed=seed, strict=strict, options=options,
                         bad_sample_log=bad_sample_log, noun="studies")
        self.model_extra = dict(model_extra)
        self.layout = layout
        self.augment = augment
        self.caption_augment = caption_augment
        self.uncertain = uncertain
        self.preload = preload

    def transforms(self, split: str) -> Compose:
        """The transform of a split: (training: jitter) -> resize + standardise -> targets
        (-> training: sentence subsets)."""
        train = split == "train"
        exposure = RandomExposure(seed=self.seed) if train and self.augment else None
        sentences = ReportSentences(self.caption_augment, seed=self.seed + 1) \
            if train and self.caption_augment > 0 else None
        return Compose(exposure, prepare(self.model_extra), TrainingTargets(self.uncertain),
                       sentences)

    def open_split(self, split: str, transforms: Compose) -> Dataset:
        """One split through :func:`domains.radiology.archives.open_dataset`."""
        return open_dataset(self.root, split, transforms=transforms, strict=self.strict,
                            layout=self.layout, preload=self.preload,
                            bad_sample_log=self.bad_sample_log, **self.options)
