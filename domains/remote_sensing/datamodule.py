"""LightningDataModule for CLOSP: S1 and S2 mini-batches together in every training step.

``train_dataloader`` yields ``{"s2": batch, "s1": batch}`` (Lightning's CombinedLoader,
``max_size_cycle``); each batch is a TorchGeo-style dict: ``image`` (B, C, H, W)
standardised, ``label`` (B, 12) multi-hot over the 9 Dynamic World classes + 3 crisis
tags, ``caption`` (list of B str), ``coords`` (B, 2) as (lon, lat), ``sensor``, ``path``,
``id``. The module owns normalisation (S2 reflectance, as the readers return it, standardised
with the per-band mean/std of the sample's level, L1C or L2A; S1 dB: VV -12.59/5.26,
VH -20.26/5.91, see :func:`~domains.remote_sensing.transforms.normaliser`,
shared with inference) and augments training scenes: extra speckle on S1 and clouds with
their shadows on S2 (:mod:`domains.remote_sensing.augment`, in physical units before
normalisation; ``speckle_augment`` / ``cloud_augment``), then flips / 90-degree
rotations. It only
assembles datasets and transforms for training: evaluation and inference open datasets
themselves (:mod:`domains.remote_sensing.archives`, :mod:`domains.remote_sensing.embed`).

Training randomness comes from ``(seed, epoch, pass, scene index)`` alone: the training
loaders' :class:`~core.data.EpochSampler` shuffles from ``(seed, epoch)`` and hands the
epoch to the workers with every index, and :class:`~core.data.SeededSamples` reseeds the
flips and caption styles for each scene (a scene's sentence itself is fixed by its id,
see :class:`~domains.remote_sensing.transforms.SceneCaptions`). Two runs with one seed
see the same batches (whatever ``num_workers``), each epoch draws anew, and a run resumed
at epoch e draws what epoch e of an uninterrupted run draws.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset

from core.data import BadSampleLog, EpochSampler, SeededSamples, collect_bad_samples
from core.transforms import Compose, RandomFlipRotate, ResizeImage, derive_seed
from domains.remote_sensing import cards
from domains.remote_sensing.archives import open_dataset
from domains.remote_sensing.augment import RandomClouds, RandomSpeckle
from domains.remote_sensing.transforms import SceneCaptions, normaliser

#: Default training augmentations (``None`` in the config), see docs/remote_sensing.md
#: "Speckle and clouds": 80 % of the S1 scenes get extra speckle of 1-4 looks (from the
#: GRD's 4.4 down to an overall ENL of about 0.7-2.1), chosen over p 0.5 / 1.5-10 looks by
#: the mean of default and single-look S1 zero-shot accuracy on the validation split;
#: 30 % of the S2 scenes get a cloud covering 5-50 % (no effect beyond noise measured on
#: the synthetic archive, a third of whose scenes are cloudy already; kept for archives
#: filtered to clear scenes, where a model would otherwise never see a cloud).
DEFAULT_SPECKLE_AUGMENT = {"p": 0.8, "looks": [1.0, 4.0]}
DEFAULT_CLOUD_AUGMENT = {"p": 0.3, "cover": [0.05, 0.5]}


def caption_transform(options: float | dict[str, Any], seed: int) -> SceneCaptions | None:
    """The training caption transform of ``data.caption_augment`` (``None``: captions as stored).

    Args:
        options: A float (the probability of area-weighted dropping; the captions card's
            styles) or a dict with ``p`` (default 0.5) and ``styles`` (style -> weight,
            default: the card's).
        seed: Seed of the transform.

    Raises:
        ValueError: A dict key other than ``p`` / ``styles``.
    """
    if not isinstance(options, dict):
        p = float(options)
        return SceneCaptions(p, seed=seed) if p > 0 else None
    unknown = set(options) - {"p", "styles"}
    if unknown:
        raise ValueError(f"data.caption_augment: unknown keys {sorted(unknown)}; known: p, styles")
    p, styles = float(options.get("p", 0.5)), options.get("styles")
    if p <= 0 and styles is not None and set(k for k, w in styles.items() if w) <= {"label_list"}:
        return None
    return SceneCaptions(p, styles=styles, seed=seed)


class CLOSPDataModule(L.LightningDataModule):
    """Sentinel-1 and Sentinel-2 scenes for contrastive training.

    Args:
        root: Archive folder (``None``: the default synthetic archive, generated once).
        layout: On-disk layout (see :data:`~domains.remote_sensing.archives.LAYOUTS`).
        sensors: Sensors to load (``("s2",)`` for an S2-only model, ``("s1",)`` for S1 alone).
        s2_bands: Sentinel-2 bands to use (default: all 13; ``["B04", "B03", "B02"]`` for RGB).
        batch_size: Scenes per sensor mini-batch.
        num_workers: DataLoader worker processes.
        augment: Random flips / rotations on training scenes.
        caption_augment: Training captions (see
            :class:`~domains.remote_sensing.transforms.SceneCaptions`): a float is the
            probability of area-weighted dropping, with the caption styles and weights of
            the captions card; a dict may give ``p`` and ``styles`` (style -> weight).
            ``0`` (or ``{"p": 0, "styles": {"label_list": 1}}``) keeps every archive
            caption as it is (CLOSP's label lists).
        speckle_augment: Options of :class:`~domains.remote_sensing.augment.RandomSpeckle`
            on training S1 scenes (``p``, ``looks``; ``None``: the defaults; ``p: 0``
            disables it).
        cloud_augment: Options of :class:`~domains.remote_sensing.augment.RandomClouds` on
            training S2 scenes (``p``, ``cover``, ``corr``, ``shadow_shift``; ``None``: the
            defaults; ``p: 0`` disables it).
        seed: Seed of the shuffling and augmentation of training scenes.
        strict: Raise on bad files instead of skipping them.
        s1_bands: Sentinel-1 bands (default: VV, VH).
            :func:`~domains.remote_sensing.transforms.sensor_bands` reads both band orders
            from a model config.
        image_size: Resize every scene to this side after normalisation (``None``: keep the
            archive's size — real archives differ: BigEarthNet 120, SEN12MS 256 px).
        preload: Read and check every scene when a dataset is opened (``None``: the
            loader's default).
        bad_sample_log: A file where DataLoader workers record the scenes they skip (the
            run folder's, so that :meth:`bad_samples` counts them too).
    """

    def __init__(
        self, root: str | Path | None = None, layout: str = "synthetic",
        sensors: Sequence[str] = ("s2", "s1"), s2_bands: Sequence[str] | None = None,
        batch_size: int = 64, num_workers: int = 0, augment: bool = True, seed: int = 0,
        strict: bool = False, caption_augment: float | dict[str, Any] = 0.5,
        s1_bands: Sequence[str] | None = None, image_size: int | None = None,
        preload: bool | None = None, bad_sample_log: str | Path | None = None,
        speckle_augment: dict[str, Any] | None = None,
        cloud_augment: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.root = Path(root) if root is not None else None
        self.layout = layout
        self.sensors = list(sensors)
        self.bands = {"s2": list(s2_bands or cards.s2_bands("L1C")),
                      "s1": list(s1_bands or cards.s1_bands())}
        self.image_size = image_size
        self.preload = preload
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.augment = augment
        self.caption_augment = caption_augment
        self.speckle_augment = dict(DEFAULT_SPECKLE_AUGMENT if speckle_augment is None
                                    else speckle_augment)
        self.cloud_augment = dict(DEFAULT_CLOUD_AUGMENT if cloud_augment is None
                                  else cloud_augment)
        self.seed = seed
        self.strict = strict
        self.bad_sample_log = BadSampleLog(bad_sample_log) if bad_sample_log else None
        self._datasets: dict[tuple[str, str], Dataset] = {}
        self._transforms: dict[tuple[str, str], Compose] = {}

    def prepare_data(self) -> None:
        """Generate the default synthetic archive if no root was given."""
        if self.root is None:
            from domains.remote_sensing.synthetic import default_archive

            self.root = default_archive()

    def dataset(self, sensor: str, split: str) -> Dataset:
        """The (cached) dataset of one sensor and split, normalised; augmented if training."""
        key = (sensor, split)
        if key not in self._datasets:
            if self.root is None:
                self.prepare_data()
            train = split == "train"
            seed = self._seed(sensor)
            flips = RandomFlipRotate(seed) if train and self.augment else None
            captions = caption_transform(self.caption_augment, seed) if train else None
            resize = ResizeImage(self.image_size) if self.image_size else None
            normalise = normaliser(sensor, self.bands[sensor])
            # Readers give S2 reflectance (scale 1); a normaliser that divides DN says so.
            physical = self._physical_augment(sensor, getattr(normalise, "scale", 1.0)) \
                if train and self.augment else None
            transforms = Compose(physical, normalise, resize, flips, captions)
            self._transforms[key] = transforms
            self._datasets[key] = open_dataset(self.root, self.layout, sensor, split,
                                               self.bands[sensor], transforms, self.strict,
                                               self.preload, self.bad_sample_log)
        return self._datasets[key]

    def _physical_augment(self, sensor: str, scale: float) -> RandomSpeckle | RandomClouds | None:
        """Speckle (S1, dB) or clouds (S2, ``scale`` units per reflectance), or None if off."""
        options = dict(self.speckle_augment if sensor == "s1" else self.cloud_augment)
        if float(options.get("p", 0.0)) <= 0:
            return None
        seed = derive_seed(self._seed(sensor), zlib.crc32(b"physical"))
        if sensor == "s1":
            return RandomSpeckle(seed=seed, **options)
        return RandomClouds(self.bands["s2"], scale=scale, seed=seed, **options)

    def _seed(self, sensor: str) -> int:
        """The run seed mixed with the sensor: S1 and S2 scene k do not share their draws."""
        return derive_seed(self.seed, zlib.crc32(sensor.encode()))

    def _epoch(self) -> int:
        """The epoch the trainer is about to run (0 without one): what it will ``set_epoch``.

        Read when a training loader is built, so that a resumed run's first loader (whose
        workers take keys as soon as Lightning makes its iterator, before ``set_epoch``)
        already starts at the restored epoch.
        """
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0
        return int(trainer.fit_loop.epoch_progress.current.processed)

    def _loader(self, sensor: str, split: str, shuffle: bool) -> DataLoader:
        dataset = self.dataset(sensor, split)
        options = {"batch_size": self.batch_size, "num_workers": self.num_workers,
                   "persistent_workers": self.num_workers > 0}
        if not shuffle:
            return DataLoader(dataset, shuffle=False, **options)
        # Training: keys (index, epoch, pass) from the sampler; draws seeded by the key.
        sampler = EpochSampler(dataset, shuffle=True, seed=self._seed(sensor),
                               epoch=self._epoch())
        return DataLoader(SeededSamples(dataset, self._transforms[(sensor, split)]),
                          sampler=sampler, drop_last=True, **options)

    def train_dataloader(self) -> CombinedLoader:
        """One mini-batch per sensor in every step (the shorter loader cycles)."""
        loaders = {s: self._loader(s, "train", shuffle=True) for s in self.sensors}
        return CombinedLoader(loaders, mode="max_size_cycle")

    def val_dataloader(self) -> CombinedLoader:
        """Validation mini-batches per sensor, combined like training."""
        loaders = {s: self._loader(s, "val", shuffle=False) for s in self.sensors}
        return CombinedLoader(loaders, mode="max_size_cycle")

    def bad_samples(self) -> list[tuple[str, str]]:
        """Every file skipped so far (here and in worker processes), with its problem."""
        return collect_bad_samples(self._datasets.values(), self.bad_sample_log)
