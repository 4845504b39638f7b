"""Gather features across processes, keeping the gradient (for DDP contrastive losses)."""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """Whether a process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor from every process along dim 0, with gradient flowing back.

    A single process returns the tensor unchanged.

    Args:
        tensor: (B, ...) local tensor; every process must pass the same shape.

    Returns:
        (world_size * B, ...) tensor; this process's rows keep their autograd history.
    """
    if not is_distributed():
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor), dim=0)


def gather_no_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor (labels, ids) from every process along dim 0, without gradient."""
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)
