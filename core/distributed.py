"""Distributed helpers: gather features with gradient (contrastive losses under DDP), rank checks.

Training scripts that use Lightning's ``strategy="ddp"`` are run once per process:
Lightning re-executes the script (``sys.argv``) for ranks 1..N-1 when the first
``trainer.fit`` starts, and later fits reuse those processes and the process group.
Work that must happen once (writing run folders, evaluating) is guarded with
:func:`is_global_zero`; every process calls :func:`shutdown` after its last fit, before
any rank-0-only work. See "Distributed training" in ``docs/core.md``.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """Whether a process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_global_zero() -> bool:
    """Whether this process is global rank 0 — also before the process group exists.

    With an active process group its rank decides. Before that (e.g. ahead of the first
    ``trainer.fit``) the launcher's environment does: ``RANK`` (torchrun), else
    ``LOCAL_RANK`` with ``NODE_RANK``/``GROUP_RANK`` (Lightning's subprocess launcher sets
    these for the processes it starts; the launching process has neither and is rank 0),
    else ``SLURM_PROCID`` (srun). A plain single-process run is rank 0.

    Returns:
        True on global rank 0.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    env = os.environ
    if "RANK" in env:
        return int(env["RANK"]) == 0
    if "LOCAL_RANK" in env:
        node = int(env.get("NODE_RANK", env.get("GROUP_RANK", "0")))
        return int(env["LOCAL_RANK"]) == 0 and node == 0
    if "SLURM_PROCID" in env:
        return int(env["SLURM_PROCID"]) == 0
    return True


def barrier() -> None:
    """Wait for every process (no-op without an active multi-process group)."""
    if is_distributed():
        dist.barrier()


def shutdown(wait: bool = True) -> None:
    """Leave and destroy the default process group, if any (every rank, after its last fit).

    Call it on every rank right after the last distributed ``trainer.fit``, before any
    rank-0-only work: while a group is active, ``PairwiseLoss`` gathers across processes,
    so single-process work (a validation loss, a ``devices=1`` Trainer) would wait on
    ranks that have exited. Rank checks keep working afterwards (:func:`is_global_zero`
    falls back to the launcher's environment).

    Args:
        wait: Pass a barrier first, so no process leaves while another is still in a
            collective (every rank must then call this).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if wait and dist.get_world_size() > 1:
        dist.barrier()
    dist.destroy_process_group()


class _AllGatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums each process's gradient for our rows over processes.

    Same gradient as ``torch.distributed.nn.functional.all_gather`` (deprecated in recent
    torch), with an ``all_reduce`` backward that every backend (gloo, NCCL) supports.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        world, rank = dist.get_world_size(), dist.get_rank()
        tensor = tensor.contiguous()  # (B, ...)
        parts = [torch.empty_like(tensor) for _ in range(world)]
        dist.all_gather(parts, tensor)
        ctx.rows = (rank * tensor.shape[0], (rank + 1) * tensor.shape[0])
        return torch.cat(parts, dim=0)  # (world * B, ...)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()  # (world * B, ...): this process's dLoss/dgathered
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)  # sum of every process's dLoss_r/dgathered
        start, stop = ctx.rows
        return grad[start:stop]  # (B, ...)


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor from every process along dim 0, with gradient flowing back.

    The backward pass gives each process the sum over processes of the gradient of their
    losses with respect to its rows. After DDP averages parameter gradients over the W
    processes, a loss that every process computes in full on the gathered batch (or whose
    per-process parts average to it) thus gets exactly the single-process gradient.
    A single process returns the tensor unchanged.

    Args:
        tensor: (B, ...) local tensor; every process must pass the same shape.

    Returns:
        (world_size * B, ...) tensor, in rank order.
    """
    if not is_distributed():
        return tensor
    return _AllGatherWithGrad.apply(tensor)


def gather_no_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor (labels, ids) from every process along dim 0, without gradient."""
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)
