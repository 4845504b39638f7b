"""ContrastiveModel: named towers, the pairs they are aligned on, and a temperature."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.towers import (
    ImageTower,
    ImageTowerConfig,
    LocationTower,
    LocationTowerConfig,
    TextTower,
    TextTowerConfig,
)

TOWER_TYPES: dict[str, tuple[type, type]] = {
    "image": (ImageTower, ImageTowerConfig),
    "text": (TextTower, TextTowerConfig),
    "location": (LocationTower, LocationTowerConfig),
}


@dataclass
class ModelConfig:
    """Configuration of a :class:`ContrastiveModel` (what model configs in `configs/` hold).

    Attributes:
        name: The model's registry name.
        towers: Tower name -> ``{"type": "image"|"text"|"location", **tower config}``.
        pairs: The aligned tower pairs, e.g. ``[["s2", "text"], ["s1", "text"]]``.
        init_temperature: Initial softmax temperature (logit scale = 1 / temperature).
        learn_temperature: Whether the temperature is a trained parameter.
        init_logit_bias: Initial logit bias for the sigmoid loss (``None``: no bias).
        loss: Default loss spec for training (see ``core.losses.PairwiseLoss``).
        description: One line for ``list_models``.
        extra: Free-form metadata kept with the config (e.g. band names).
    """

    name: str
    towers: dict[str, dict[str, Any]]
    pairs: list[list[str]]
    init_temperature: float = 0.07
    learn_temperature: bool = True
    init_logit_bias: float | None = None
    loss: dict[str, Any] = field(default_factory=lambda: {"type": "clip"})
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build a config from a plain dict, rejecting unknown keys with a clear error."""
        data = {k: v for k, v in data.items() if k != "kind"}
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"model config has unknown keys {unknown}; known: {sorted(known)}")
        return cls(**copy.deepcopy(data))

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-serialisable dict."""
        return asdict(self)


def build_tower(name: str, spec: dict[str, Any]) -> nn.Module:
    """Build one tower from ``{"type": ..., **config}``.

    Args:
        name: The tower's name (for error messages).
        spec: The tower spec.

    Returns:
        The tower module.
    """
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in TOWER_TYPES:
        raise ValueError(f"tower {name!r}: type must be one of {sorted(TOWER_TYPES)}, got {kind!r}")
    tower_cls, config_cls = TOWER_TYPES[kind]
    known = set(config_cls.__dataclass_fields__)
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"tower {name!r} ({kind}): unknown keys {unknown}; known: {sorted(known)}")
    return tower_cls(config_cls(**spec))


class ContrastiveModel(nn.Module):
    """A dict of named towers aligned pairwise in one embedding space.

    Args:
        config: The model configuration.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.towers = nn.ModuleDict({n: build_tower(n, s) for n, s in config.towers.items()})
        self.pairs: list[tuple[str, str]] = [tuple(p) for p in config.pairs]  # type: ignore[misc]
        for a, b in self.pairs:
            for tower in (a, b):
                if tower not in self.towers:
                    raise ValueError(f"pair ({a}, {b}) names unknown tower {tower!r}; "
                                     f"towers: {sorted(self.towers)}")
            dim_a, dim_b = self.towers[a].output_dim, self.towers[b].output_dim
            if dim_a != dim_b:
                raise ValueError(f"pair ({a}, {b}) has mismatched widths {dim_a} vs {dim_b}")
        scale = torch.tensor(math.log(1.0 / config.init_temperature))
        self.logit_scale = nn.Parameter(scale, requires_grad=config.learn_temperature)
        self.logit_bias: nn.Parameter | None = None
        if config.init_logit_bias is not None:
            self.logit_bias = nn.Parameter(torch.tensor(float(config.init_logit_bias)))

    @property
    def modalities(self) -> list[str]:
        """Names of the towers."""
        return list(self.towers)

    @property
    def embed_dim(self) -> int:
        """Width of the shared embedding space."""
        return next(iter(self.towers.values())).output_dim

    def scale(self) -> torch.Tensor:
        """The logit scale exp(s), clamped to at most 100 as in CLIP."""
        return self.logit_scale.exp().clamp(max=100.0)

    def encode(self, modality: str, x: Any, normalize: bool = True) -> torch.Tensor:
        """Embed inputs of one modality.

        Args:
            modality: A tower name.
            x: The tower's input (image tensor, list of strings, (N, 2) coordinates).
            normalize: L2-normalise the embeddings.

        Returns:
            (B, D) embeddings.
        """
        if modality not in self.towers:
            raise KeyError(f"unknown modality {modality!r}; towers: {sorted(self.towers)}")
        features = self.towers[modality](x)  # (B, D)
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Embed (normalised) every modality present in ``inputs``."""
        return {name: self.encode(name, x) for name, x in inputs.items() if name in self.towers}
