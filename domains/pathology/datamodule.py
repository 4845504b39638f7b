"""LightningDataModule for tile <-> caption training.

Each batch is a dict: ``image`` (B, 3, S, S) standardised RGB, ``caption`` (B captions),
``label`` (B, 9) one-hot over the card's tissue classes (all zero when a tile's class is
unknown: it then only matches its own caption in the soft-target loss), ``label_names``,
``id``, ``path``, ``site``, ``slide_id``. Training tiles are stain-perturbed in HED space
and turned by a random dihedral symmetry (:func:`~domains.pathology.transforms.training_augment`).
The module only says which transforms and which loader
(:func:`domains.pathology.archives.open_dataset`); splits, seeded loaders and bad-sample
collection are :class:`core.datamodules.SplitDataModule`'s. Evaluation and inference open
datasets themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from core.datamodules import SplitDataModule
from core.transforms import Compose
from domains.pathology.archives import open_dataset
from domains.pathology.transforms import prepare, training_augment

#: The fields of a tile sample a training batch needs (slide tiles add level / x / y).
BATCH_KEYS = ("image", "caption", "label", "label_names", "id", "path", "site", "slide_id")


def default_root() -> Path:
    """The synthetic set (generated once, cached)."""
    from domains.pathology.synthetic import default_archive

    return Path(default_archive())


class TrainingFields:
    """Keep only :data:`BATCH_KEYS` of a sample (so tiles of any layout collate together)."""

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample restricted to the batch fields."""
        return {key: sample[key] for key in BATCH_KEYS if key in sample}


class TileDataModule(SplitDataModule):
    """H&E tiles with their captions for contrastive training.

    Args:
        root: Data folder (``None``: the synthetic set, generated once).
        model_extra: The model config's ``extra`` (input side, statistics, stain).
        layout: On-disk layout (``None``: detected).
        batch_size: Tiles per mini-batch.
        num_workers: DataLoader worker processes.
        augment: Flips and quarter turns of training tiles.
        stain_scale: HED scale jitter of training tiles (``alpha``; 0: none).
        stain_shift: HED shift jitter of training tiles (``beta``; 0: none).
        seed: Seed of shuffling and augmentation.
        strict: Raise on bad files instead of skipping them.
        options: Extra keyword arguments of the layout's loader.
        bad_sample_log: A file where worker processes record the tiles they skip.
    """

    def __init__(self, root: str | Path | None, model_extra: dict[str, Any],
                 layout: str | None = None, batch_size: int = 64, num_workers: int = 0,
                 augment: bool = True, stain_scale: float = 0.05, stain_shift: float = 0.01,
                 seed: int = 0,
                 strict: bool = False, options: dict[str, Any] | None = None,
                 bad_sample_log: str | Path | None = None) -> None:
        super().__init__(root, default_root, batch_size=batch_size, num_workers=num_workers,
                         seed=seed, strict=strict, options=options,
                         bad_sample_log=bad_sample_log, noun="tiles")
        self.model_extra = dict(model_extra)
        self.layout = layout
        self.augment = augment
        self.stain_scale, self.stain_shift = float(stain_scale), float(stain_shift)

    def transforms(self, split: str) -> Compose:
        """The transform of a split: resize -> (stain) -> (training: HED, dihedral) ->
        standardise."""
        augment = None
        if split == "train":
            augment = training_augment(self.seed, self.stain_scale, self.stain_shift,
                                       self.augment)
        return Compose(prepare(self.model_extra, augment=augment), TrainingFields())

    def val_dataloader(self) -> DataLoader:
        """Validation tiles in one fixed, seeded order.

        Tile tables list tiles class by class; in table order a validation batch would
        hold one or two classes and its contrastive loss would not be comparable with the
        training loss. The order is drawn once from the run seed, so it is the same for
        every epoch and every resumption.
        """
        dataset = self.dataset("val")
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(
            self.seed)).tolist()
        return DataLoader(Subset(dataset, order), shuffle=False, **self._options())

    def open_split(self, split: str, transforms: Compose) -> Dataset:
        """One split through the layouts table."""
        return open_dataset(self.root, split, transforms=transforms, strict=self.strict,
                            layout=self.layout, bad_sample_log=self.bad_sample_log,
                            **self.options)
