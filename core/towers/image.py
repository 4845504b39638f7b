"""Image tower: a timm backbone with any number of input bands and a linear projection."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import timm
import torch
from torch import nn

from core.towers.registry import register_tower


@dataclass
class ImageTowerConfig:
    """Configuration of an :class:`ImageTower`.

    Attributes:
        backbone: timm model name (e.g. ``"vit_small_patch16_224"``, ``"resnet50"``).
        in_chans: Number of input bands (13 for Sentinel-2, 2 for Sentinel-1).
        embed_dim: Width of the projected output embedding.
        img_size: Input size for ViT-like backbones (``None`` for CNNs).
        patch_size: Patch size for ViT-like backbones (``None`` keeps timm's).
        pretrained: Load timm's pretrained weights (needs the network; off by default).
        patch_embed: ``"timm"`` (the backbone's own) or ``"spectral"`` (the fused
            multispectral/SAR op from ``cuda_ext``; ViTs only).
        spectral: Keyword arguments of ``cuda_ext.SpectralPatchEmbed`` (``mean``,
            ``std``, ``log_bands``, ``nodata``, ``impl``: ``"op"`` or ``"reference"``).
        backbone_kwargs: Extra keyword arguments for ``timm.create_model``
            (e.g. ``depth``, ``embed_dim`` of a ViT).
    """

    backbone: str = "vit_tiny_patch16_224"
    in_chans: int = 3
    embed_dim: int = 512
    img_size: int | None = 224
    patch_size: int | None = None
    pretrained: bool = False
    patch_embed: str = "timm"
    spectral: dict[str, Any] = field(default_factory=dict)
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)


class ImageTower(nn.Module):
    """A timm backbone split into features, pooling and a projection head.

    Args:
        config: The tower's configuration.
    """

    def __init__(self, config: ImageTowerConfig) -> None:
        super().__init__()
        if config.patch_embed not in ("timm", "spectral"):
            raise ValueError(
                f"patch_embed must be 'timm' or 'spectral', got {config.patch_embed!r}"
            )
        self.config = config
        kwargs: dict[str, Any] = dict(config.backbone_kwargs)
        if config.img_size is not None:
            kwargs["img_size"] = config.img_size
        if config.patch_size is not None:
            kwargs["patch_size"] = config.patch_size
        if config.patch_embed == "spectral":
            from cuda_ext import SpectralPatchEmbed

            kwargs["embed_layer"] = functools.partial(SpectralPatchEmbed, **config.spectral)
        self.backbone = timm.create_model(
            config.backbone,
            pretrained=config.pretrained,
            in_chans=config.in_chans,
            num_classes=0,
            **kwargs,
        )
        self.proj = nn.Linear(self.backbone.num_features, config.embed_dim, bias=False)

    @property
    def output_dim(self) -> int:
        """Width of the embedding this tower returns."""
        return self.config.embed_dim

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.config.in_chans:
            raise ValueError(
                f"ImageTower({self.config.backbone}) expects (B, {self.config.in_chans}, H, W) "
                f"input, got shape {tuple(x.shape)}"
            )
        size = self.config.img_size
        if size is not None and tuple(x.shape[-2:]) != (size, size):
            raise ValueError(
                f"ImageTower({self.config.backbone}) was built for {size}x{size} images, "
                f"got {x.shape[-2]}x{x.shape[-1]}"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Run the backbone without pooling: (B, C, H, W) -> backbone feature map/tokens."""
        self._check_input(x)
        return self.backbone.forward_features(x)

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """Pool backbone features into one vector per image: (B, F)."""
        return self.backbone.forward_head(features, pre_logits=True)

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        """Project pooled features into the shared space: (B, F) -> (B, D)."""
        return self.proj(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed a batch of images: (B, C, H, W) -> (B, D), not normalised."""
        return self.forward_head(self.pool(self.forward_features(x)))


register_tower("image", ImageTowerConfig, ImageTower)
