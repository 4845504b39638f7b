"""Distributed losses: two gloo processes with half a batch each equal one process with all of it.

Each rank embeds its half of a batch with a tiny model (two linear towers, a logit scale
and a logit bias), computes ``PairwiseLoss`` (features gathered with gradient), runs
backward and averages the parameter gradients over ranks as DDP does. The loss (for
``local_loss``: the mean of the ranks' losses) and every averaged gradient must equal those
of one process computing the loss on the concatenated batch, in float64.
"""

from __future__ import annotations

import itertools
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from core.distributed import is_global_zero, shutdown
from core.lightning_io import load_checkpoint_file, save_checkpoint_file
from core.losses import PairwiseLoss

WORLD_SIZE = 2
BATCH = 8  # global batch; 4 samples per rank
KINDS = ("clip", "siglip", "soft_target")
CASES = list(itertools.product(KINDS, (False, True)))  # (loss type, local_loss)
PAIRS = [("x", "y"), ("z", "y")]


class TinyModel(nn.Module):
    """Three linear towers (x: 6 -> 5, y: 4 -> 5, z: 3 -> 5), a logit scale and a bias."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.x = nn.Linear(6, 5, dtype=torch.float64)
        self.y = nn.Linear(4, 5, dtype=torch.float64)
        self.z = nn.Linear(3, 5, dtype=torch.float64)
        with torch.no_grad():
            for param in self.parameters():
                param.copy_(torch.randn(param.shape, generator=generator, dtype=torch.float64))
        self.logit_scale = nn.Parameter(torch.tensor(1.5, dtype=torch.float64))
        self.logit_bias = nn.Parameter(torch.tensor(-2.0, dtype=torch.float64))

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Normalised (B, 5) features of every tower."""
        return {name: F.normalize(getattr(self, name)(x), dim=1) for name, x in inputs.items()}


def _batch() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    inputs = {name: torch.randn(BATCH, width, generator=generator, dtype=torch.float64)
              for name, width in (("x", 6), ("y", 4), ("z", 3))}
    # Multi-hot labels with shared and empty rows, so soft targets differ from the identity.
    labels = torch.tensor([[1, 0, 1], [1, 0, 1], [0, 1, 0], [0, 0, 0],
                           [0, 1, 1], [1, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=torch.float64)
    return inputs, labels


def _loss_and_grads(
    kind: str, local_loss: bool, inputs: dict[str, torch.Tensor], labels: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model = TinyModel()
    loss_fn = PairwiseLoss(kind, weights={"z-y": 0.5}, local_loss=local_loss)
    total, _ = loss_fn(model(inputs), PAIRS, model.logit_scale.exp(), model.logit_bias, labels)
    total.backward()
    grads = {n: torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
             for n, p in model.named_parameters()}
    return total.detach(), grads


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["RANK"] = str(rank)  # as torchrun sets it (read once the group is gone)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD_SIZE)
    try:
        inputs, labels = _batch()
        share = BATCH // WORLD_SIZE
        rows = slice(rank * share, (rank + 1) * share)
        mine = {name: x[rows] for name, x in inputs.items()}  # (4, width) each
        results = {}
        for kind, local_loss in CASES:
            loss, grads = _loss_and_grads(kind, local_loss, mine, labels[rows])
            losses = [torch.zeros_like(loss) for _ in range(WORLD_SIZE)]
            dist.all_gather(losses, loss)
            for grad in grads.values():  # what DDP does: average gradients over ranks
                dist.all_reduce(grad)
                grad /= WORLD_SIZE
            results[_key(kind, local_loss)] = {"losses": torch.stack(losses), "grads": grads}
        results["is_global_zero"] = is_global_zero()
        shutdown()  # barrier, then leave the group
        results["after_shutdown"] = (dist.is_initialized(), is_global_zero())
        save_checkpoint_file(results, Path(out) / f"rank{rank}.safetensors")  # no pickle
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _key(kind: str, local_loss: bool) -> str:
    return f"{kind}/{'local' if local_loss else 'global'}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Results of both ranks for every case (one spawn of two gloo processes)."""
    out = tmp_path_factory.mktemp("ddp")
    # fork: the children inherit the imported torch and core (spawn re-imports them, which
    # takes 10-40 s on a busy 2-core machine); they use one thread each.
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_worker, args=(_free_port(), str(out)), nprocs=WORLD_SIZE, join=True,
                       start_method=method)
    return [load_checkpoint_file(out / f"rank{r}.safetensors") for r in range(WORLD_SIZE)]


@pytest.mark.parametrize(("kind", "local_loss"), CASES)
def test_two_ranks_match_one_process(ranks: list[dict], kind: str, local_loss: bool) -> None:
    inputs, labels = _batch()
    expected_loss, expected_grads = _loss_and_grads(kind, local_loss, inputs, labels)
    losses = [r[_key(kind, local_loss)]["losses"] for r in ranks]
    torch.testing.assert_close(losses[0], losses[1], rtol=0, atol=0)  # both saw the same
    if local_loss:  # each rank has its own rows' loss; their mean is the full loss
        assert not torch.allclose(losses[0][0], losses[0][1])
        torch.testing.assert_close(losses[0].mean(), expected_loss, rtol=0, atol=1e-12)
    else:  # every rank computes the full loss on the gathered features
        torch.testing.assert_close(losses[0], expected_loss.expand(2), rtol=0, atol=1e-12)
    assert set(expected_grads) == {"x.weight", "x.bias", "y.weight", "y.bias", "z.weight",
                                   "z.bias", "logit_scale", "logit_bias"}
    for name, expected in expected_grads.items():
        if kind != "siglip" and name == "logit_bias":
            assert not expected.any()  # unused by clip and soft_target: zero everywhere
        else:
            assert expected.abs().max() > 1e-3, name
        for rank in ranks:
            got = rank[_key(kind, local_loss)]["grads"][name]
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-12, msg=name)


def test_rank_checks_and_shutdown_in_the_process_group(ranks: list[dict]) -> None:
    assert [r["is_global_zero"] for r in ranks] == [True, False]
    assert [tuple(r["after_shutdown"]) for r in ranks] == [(False, True), (False, False)]


def test_single_process_local_loss_is_the_full_loss() -> None:
    inputs, labels = _batch()
    for kind in KINDS:
        full, full_grads = _loss_and_grads(kind, False, inputs, labels)
        local, local_grads = _loss_and_grads(kind, True, inputs, labels)
        torch.testing.assert_close(local, full, rtol=0, atol=1e-12)
        for name, grad in full_grads.items():
            torch.testing.assert_close(local_grads[name], grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("env", "expected"), [
    ({}, True),  # a plain single process
    ({"RANK": "0", "LOCAL_RANK": "0"}, True),  # torchrun
    ({"RANK": "3", "LOCAL_RANK": "1"}, False),
    ({"LOCAL_RANK": "0", "NODE_RANK": "0", "WORLD_SIZE": "2"}, True),  # Lightning's launcher
    ({"LOCAL_RANK": "1", "NODE_RANK": "0", "WORLD_SIZE": "2"}, False),
    ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False),
    ({"LOCAL_RANK": "1", "SLURM_PROCID": "0"}, False),  # a child launched inside a SLURM job
    ({"SLURM_PROCID": "2"}, False),  # srun
])
def test_is_global_zero_reads_the_launcher_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool
) -> None:
    for key in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert not dist.is_initialized()
    assert is_global_zero() is expected
    shutdown()  # no process group: a no-op
