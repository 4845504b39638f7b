"""Augmentation randomness per sample, worker and epoch; repeatable runs; resumed runs.

Random transforms draw from streams keyed by (seed, epoch, pass, sample index): the
training loader's :class:`~core.data.EpochSampler` yields those keys and
:class:`~core.data.SeededSamples` reseeds the transforms from them in whichever worker
loads the sample. Before, every DataLoader worker held a copy of one generator (worker
0's k-th sample drew what worker 1's k-th sample drew), and a resumed run restarted the
sequence (its epoch e drew what epoch 0 had drawn).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, get_worker_info

from core.data import EpochSampler, SampleKey, SeededSamples
from core.transforms import Compose, RandomFlipRotate, derive_seed
from domains.remote_sensing.datamodule import CLOSPDataModule
from domains.remote_sensing.transforms import AreaWeightedCaptions

#: A 4 x 4 image whose eight flips / quarter turns all differ.
PATTERN = torch.arange(16.0).reshape(1, 4, 4)  # (1, 4, 4)


def _dihedral(image: torch.Tensor) -> list[torch.Tensor]:
    """The eight images RandomFlipRotate can make of ``image`` (C, H, W), by (flip, turns)."""
    return [torch.rot90(image.flip(-1) if flip else image, turns, dims=(-2, -1))
            for flip in (0, 1) for turns in range(4)]


def _which(original: torch.Tensor, augmented: torch.Tensor) -> int:
    """Which of the eight symmetries (0-7) turns ``original`` into ``augmented``."""
    matches = [k for k, view in enumerate(_dihedral(original)) if torch.equal(view, augmented)]
    assert len(matches) == 1, "augmented image is no single symmetry of the original"
    return matches[0]


class _Tiles(Dataset):
    """``n`` copies of :data:`PATTERN` through ``transforms``; each sample names its worker."""

    def __init__(self, n: int, transforms: Any) -> None:
        self.n, self.transforms = n, transforms

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        info = get_worker_info()
        sample = {"image": PATTERN.clone(), "id": index, "worker": info.id if info else -1}
        return self.transforms(sample)


def _loader(seed: int = 0, num_workers: int = 0, n: int = 16, batch_size: int = 1,
            shuffle: bool = False, epoch: int = 0) -> DataLoader:
    """A training loader as a data module builds it: keys from EpochSampler, reseeded draws."""
    tiles = _Tiles(n, Compose(RandomFlipRotate(seed)))
    sampler = EpochSampler(tiles, shuffle=shuffle, seed=seed, epoch=epoch)
    return DataLoader(SeededSamples(tiles), sampler=sampler, batch_size=batch_size,
                      num_workers=num_workers, persistent_workers=num_workers > 0)


def _draws(loader: DataLoader, epoch: int | None = None) -> list[tuple[int, int, int]]:
    """(sample id, symmetry, worker) of every sample of one pass, after Lightning's set_epoch."""
    if epoch is not None:
        _set_sampler_epoch(loader, epoch)  # what Lightning's fit loop does before an epoch
    return [(int(i), _which(PATTERN, image), int(w)) for batch in loader
            for i, image, w in zip(batch["id"], batch["image"], batch["worker"], strict=True)]


def _symmetries(draws: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    return [(i, op) for i, op, _ in draws]


# -- the loader pieces ------------------------------------------------------------------------


def test_two_workers_draw_different_flips() -> None:
    draws = _draws(_loader(num_workers=2), epoch=0)
    by_worker = {w: [op for _, op, worker in draws if worker == w] for w in (0, 1)}
    assert len(by_worker[0]) == len(by_worker[1]) == 8
    # One generator copied into both workers made these lists equal.
    assert by_worker[0] != by_worker[1]
    assert len(set(by_worker[0])) > 2 and len(set(by_worker[1])) > 2
    # A sample's draw does not depend on the worker that loads it, nor on how many there are.
    assert _symmetries(draws) == _symmetries(_draws(_loader(num_workers=0), epoch=0))


def test_a_fixed_seed_repeats_the_run() -> None:
    def run(seed: int, num_workers: int) -> list[list[tuple[int, int]]]:
        loader = _loader(seed, num_workers, batch_size=4, shuffle=True)
        return [_symmetries(_draws(loader, epoch)) for epoch in (0, 1)]

    first = run(3, num_workers=2)
    assert run(3, num_workers=2) == first
    assert run(3, num_workers=0) == first  # and the number of workers does not matter
    assert first[0] != first[1]  # a new shuffle and new draws every epoch
    assert sorted(first[0]) != sorted(first[1])
    assert run(4, num_workers=0) != first


def test_a_resumed_run_continues_the_sequence() -> None:
    straight = _loader(5, num_workers=2, batch_size=4, shuffle=True)
    epochs = [_symmetries(_draws(straight, epoch)) for epoch in (0, 1, 2)]
    # Resumed at epoch 1: the data module builds the sampler at the restored epoch, and
    # Lightning makes the (prefetching) iterator before calling set_epoch(1).
    resumed = _loader(5, num_workers=2, batch_size=4, shuffle=True, epoch=1)
    iterator = iter(resumed)
    _set_sampler_epoch(resumed, 1)
    first = [(int(i), _which(PATTERN, image)) for batch in iterator
             for i, image in zip(batch["id"], batch["image"], strict=True)]
    assert first == epochs[1] != epochs[0]
    assert _symmetries(_draws(resumed, 2)) == epochs[2]


def test_another_pass_in_one_epoch_draws_anew() -> None:
    loader = _loader(1, batch_size=4, shuffle=True)
    once, again = _symmetries(_draws(loader, 0)), _symmetries(_draws(loader, 0))
    assert once != again  # a shorter loader cycling within an epoch is not replayed
    assert loader.sampler.repeat == 2
    assert _symmetries(_draws(loader, 1)) == _symmetries(_draws(_loader(1, batch_size=4,
                                                                        shuffle=True), 1))
    assert loader.sampler.repeat == 1


def test_each_rank_gets_its_own_shard_with_the_epoch() -> None:
    data = range(10)
    shards = [list(EpochSampler(data, seed=2, epoch=3, num_replicas=2, rank=r))
              for r in (0, 1)]
    assert all(isinstance(key, SampleKey) and key.epoch == 3 for s in shards for key in s)
    assert len(shards[0]) == len(shards[1]) == 5
    assert sorted(k.index for s in shards for k in s) == list(range(10))
    # Lightning only swaps in its own DistributedSampler when the loader has none.
    assert isinstance(EpochSampler(data), DistributedSampler)
    assert EpochSampler(data).num_replicas == 1  # no process group: one shard, everything


def test_transforms_reseed_from_their_seed_and_the_key() -> None:
    def flips(transform: RandomFlipRotate, *keys: int) -> list[int]:
        transform.reseed(*keys)
        return [_which(PATTERN, transform({"image": PATTERN})["image"]) for _ in range(12)]

    assert flips(RandomFlipRotate(0), 0, 0, 7) == flips(RandomFlipRotate(0), 0, 0, 7)
    assert flips(RandomFlipRotate(0), 0, 0, 7) != flips(RandomFlipRotate(0), 0, 0, 8)
    assert flips(RandomFlipRotate(0), 0, 0, 7) != flips(RandomFlipRotate(1), 0, 0, 7)
    assert len({derive_seed(0, e, 0, i) for e in range(4) for i in range(64)}) == 256
    # Two transforms built with one run seed draw independently of each other.
    captions, flipper = AreaWeightedCaptions(seed=0), RandomFlipRotate(0)
    captions.reseed(0, 0, 7)
    flipper.reseed(0, 0, 7)
    assert not torch.equal(torch.rand(4, generator=captions.generator),
                           torch.rand(4, generator=flipper.generator))


# -- through the remote-sensing data module -------------------------------------------------


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """11 + 13 training scenes (S2, S1) of 16 px."""
    from domains.remote_sensing.synthetic import generate_archive

    return generate_archive(tmp_path_factory.mktemp("augment") / "archive", n_s2=16, n_s1=16,
                            n_paired=4, seed=0, size=16, workers=1, progress=False)


def _module(archive: Path, num_workers: int, batch_size: int = 2,
            **options: Any) -> CLOSPDataModule:
    return CLOSPDataModule(archive, sensors=("s2", "s1"), batch_size=batch_size, seed=0,
                           num_workers=num_workers, **options)


def test_data_module_workers_draw_different_flips(archive: Path) -> None:
    plain = _module(archive, 0, augment=False, caption_augment=0)
    originals = {s["id"]: s["image"] for s in (plain.dataset("s2", "train")[i]
                                               for i in range(len(plain.dataset("s2", "train"))))}

    def symmetries(num_workers: int) -> list[tuple[str, int]]:
        # clouds off: this test names the flip each worker drew, clouds would hide it
        module = _module(archive, num_workers, batch_size=1, cloud_augment={"p": 0.0})
        loader = module.train_dataloader().iterables["s2"]
        _set_sampler_epoch(loader, 0)
        return [(i, _which(originals[i], image)) for batch in loader
                for i, image in zip(batch["id"], batch["image"], strict=True)]

    with_workers = symmetries(2)  # batches alternate between worker 0 and worker 1
    ops = [op for _, op in with_workers]
    pairs = min(len(ops[0::2]), len(ops[1::2]))
    assert pairs >= 5 and ops[0::2][:pairs] != ops[1::2][:pairs]
    assert sorted(with_workers) == sorted(symmetries(0))


class _Recorder(L.LightningModule):
    """Keeps every training batch it is given: (epoch, sensor, ids, captions, images)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[tuple[int, str, tuple, tuple, torch.Tensor]] = []

    def training_step(self, batch: dict[str, dict], batch_idx: int) -> torch.Tensor:
        for sensor in sorted(batch):
            part = batch[sensor]
            self.seen.append((self.current_epoch, sensor, tuple(part["id"]),
                              tuple(part["caption"]), part["image"].clone()))
        return self.weight.sum() * 0.0

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(archive: Path, root: Path, epochs: int, num_workers: int,
         ckpt: Path | None = None, save: Path | None = None) -> dict[int, list]:
    """Train a recorder (seeded as a run is); its batches by epoch."""
    L.seed_everything(0, workers=True, verbose=False)
    recorder = _Recorder()
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                        enable_progress_bar=False, enable_checkpointing=False,
                        enable_model_summary=False, default_root_dir=root)
    trainer.fit(recorder, datamodule=_module(archive, num_workers), ckpt_path=ckpt)
    if save is not None:
        trainer.save_checkpoint(save)
    by_epoch: dict[int, list] = {}
    for epoch, *rest in recorder.seen:
        by_epoch.setdefault(epoch, []).append(rest)
    return by_epoch


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        x[:3] == y[:3] and torch.equal(x[3], y[3]) for x, y in zip(a, b, strict=True))


def test_data_module_runs_repeat_and_resume_where_they_stopped(archive: Path,
                                                               tmp_path: Path) -> None:
    straight = _fit(archive, tmp_path / "a", epochs=2, num_workers=2)
    assert sorted(straight) == [0, 1] and len(straight[0]) == 2 * 6  # S1: 6 batches, S2 cycles
    assert not _same(straight[0], straight[1])  # each epoch draws anew
    assert [r[2] for r in straight[0]] != [r[2] for r in straight[1]]  # captions too
    # The same seed repeats the run (here with another number of workers) ...
    first = _fit(archive, tmp_path / "b", epochs=1, num_workers=0,
                 save=tmp_path / "b" / "last.ckpt")
    assert sorted(first) == [0] and _same(first[0], straight[0])
    # ... and a run resumed after epoch 0 goes on with epoch 1's draws, not epoch 0's.
    resumed = _fit(archive, tmp_path / "b", epochs=2, num_workers=2,
                   ckpt=tmp_path / "b" / "last.ckpt")
    assert sorted(resumed) == [1] and _same(resumed[1], straight[1])
