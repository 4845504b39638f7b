"""Lightning task that trains a ContrastiveModel on one or several named mini-batches per step.

A step's batch is either one mini-batch (a dict of fields) or a dict of named
mini-batches, e.g. ``{"s2": {...}, "s1": {...}}`` for unpaired sensors (CLOSP).
``input_map`` says which field of a mini-batch feeds which tower; the loss is
summed over the model's pairs present in each mini-batch and averaged over
mini-batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer

from core.losses import PairwiseLoss
from core.model import ContrastiveModel


@dataclass
class OptimizerConfig:
    """AdamW with linear warm-up and cosine decay.

    Attributes:
        lr: Peak learning rate.
        weight_decay: Decoupled weight decay (not applied to biases, norms, scales).
        betas: AdamW betas.
        warmup_steps: Linear warm-up length in optimiser steps.
        min_lr_ratio: Final learning rate as a fraction of ``lr``.
    """

    lr: float = 5e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05


def is_named_minibatches(batch: dict[str, Any]) -> bool:
    """Whether a batch is a dict of named mini-batches (every value a dict)."""
    return bool(batch) and all(isinstance(v, dict) for v in batch.values())


class ContrastiveTask(L.LightningModule):
    """Train a contrastive model with a pairwise loss.

    Args:
        model: The model to train.
        loss: A :class:`PairwiseLoss` or its spec (default: the model config's ``loss``).
        optimizer: Optimiser settings (an :class:`OptimizerConfig` or a dict of its fields).
        input_map: Mini-batch name -> {tower name: field name}. A mini-batch absent
            from the map feeds each tower from the field of the same name.
        label_key: Field holding (B, C) multi-hot labels for the soft-target loss.
    """

    def __init__(
        self,
        model: ContrastiveModel,
        loss: PairwiseLoss | dict[str, Any] | None = None,
        optimizer: OptimizerConfig | dict[str, Any] | None = None,
        input_map: dict[str, dict[str, str]] | None = None,
        label_key: str = "label",
    ) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = PairwiseLoss.from_spec(loss if loss is not None else model.config.loss)
        if self.loss_fn.kind == "siglip" and model.logit_bias is None:
            raise ValueError("the siglip loss needs a model with a logit bias: build it from "
                             "a config whose loss is {'type': 'siglip'} (SigLIP's "
                             "initialisation) or that sets init_logit_bias")
        if isinstance(optimizer, dict):
            optimizer = OptimizerConfig(**optimizer)
        self.optim_config = optimizer or OptimizerConfig()
        self.input_map = input_map or {}
        self.label_key = label_key

    def _inputs(self, name: str, minibatch: dict[str, Any]) -> dict[str, Any]:
        mapping = self.input_map.get(name, {m: m for m in self.model.modalities})
        return {tower: minibatch[field] for tower, field in mapping.items() if field in minibatch}

    def compute_loss(
        self, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, int]]:
        """Loss of one step, averaged over its named mini-batches.

        Args:
            batch: One mini-batch or a dict of named mini-batches.

        Returns:
            The loss, the loss of each (mini-batch, pair) keyed ``"name/a-b"``, and
            the size of each mini-batch.
        """
        minibatches = batch if is_named_minibatches(batch) else {"batch": batch}
        totals, parts_by_name, sizes = [], {}, {}
        for name, minibatch in minibatches.items():
            features = self.model(self._inputs(name, minibatch))
            labels = minibatch.get(self.label_key)
            total, parts = self.loss_fn(features, self.model.pairs, self.model.scale(),
                                        self.model.logit_bias, labels)
            sizes[name] = len(next(iter(features.values())))
            parts_by_name.update({f"{name}/{pair}": value for pair, value in parts.items()})
            totals.append(total)
        return torch.stack(totals).mean(), parts_by_name, sizes

    def shared_step(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        """Compute and log the loss of one step for ``stage`` (``"train"`` or ``"val"``)."""
        loss, parts, sizes = self.compute_loss(batch)
        for key, value in parts.items():
            self.log(f"{stage}/loss/{key}", value, batch_size=sizes[key.split("/")[0]],
                     add_dataloader_idx=False)
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=sum(sizes.values()),
                 add_dataloader_idx=False)
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """One optimisation step; also logs the temperature."""
        loss = self.shared_step(batch, "train")
        self.log("train/temperature", 1.0 / self.model.scale().detach(), prog_bar=True)
        return loss

    def optimizer_step(
        self,
        epoch: int,
        batch_idx: int,
        optimizer: torch.optim.Optimizer | LightningOptimizer,
        optimizer_closure: Callable[[], Any] | None = None,
    ) -> None:
        """Step the optimiser, then clamp the logit scale parameter (as open_clip).

        Lightning calls this once per optimiser step (after ``accumulate_grad_batches``
        micro-batches), so s stays in [0, log(max_logit_scale)] while ``scale()`` keeps
        its gradient everywhere.
        """
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        self.model.clamp_logit_scale()

    def validation_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> torch.Tensor:
        """Validation loss of one batch."""
        return self.shared_step(batch, "val")

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW (no decay on 1-d parameters) with warm-up + cosine schedule."""
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for param in self.model.parameters():
            if param.requires_grad:
                (decay if param.ndim >= 2 else no_decay).append(param)
        cfg = self.optim_config
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr, betas=tuple(cfg.betas),
        )
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = min(cfg.warmup_steps, max(total // 10, 1))

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min((step - warmup) / max(total - warmup, 1), 1.0)
            cosine = 0.5 * (1 + math.cos(math.pi * progress))
            return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
