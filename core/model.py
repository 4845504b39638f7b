"""ContrastiveModel: named towers, the pairs they are aligned on, and a temperature."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.towers import build_tower

__all__ = ["ContrastiveModel", "ModelConfig", "build_tower"]

SIGLIP_INIT_TEMPERATURE = 0.1
"""SigLIP's initial temperature: logit scale 10 (Zhai et al. 2023; open_clip)."""
SIGLIP_INIT_LOGIT_BIAS = -10.0
"""SigLIP's initial logit bias, so that the many negatives start with a small loss."""


@dataclass
class ModelConfig:
    """Configuration of a :class:`ContrastiveModel` (what model configs in `configs/` hold).

    Attributes:
        name: The model's registry name.
        towers: Tower name -> ``{"type": <registered tower type>, **tower config}``
            (``image``, ``text``, ``location`` or a type added with ``core.register_tower``).
        pairs: The aligned tower pairs, e.g. ``[["s2", "text"], ["s1", "text"]]``.
        init_temperature: Initial softmax temperature (logit scale = 1 / temperature).
        learn_temperature: Whether the temperature is a trained parameter.
        init_logit_bias: Initial logit bias for the sigmoid loss (``None``: no bias).
        max_logit_scale: Upper bound of the logit scale exp(s); training clamps the
            parameter s to [0, log(max_logit_scale)] after every optimiser step.
        loss: Default loss spec for training (see ``core.losses.PairwiseLoss``). With
            ``{"type": "siglip"}`` and no explicit ``init_logit_bias``, the config takes
            SigLIP's initialisation: temperature 0.1 (scale 10) and bias -10.
        description: One line for ``list_models``.
        extra: Free-form metadata kept with the config (e.g. band names).
    """

    name: str
    towers: dict[str, dict[str, Any]]
    pairs: list[list[str]]
    init_temperature: float = 0.07
    learn_temperature: bool = True
    init_logit_bias: float | None = None
    max_logit_scale: float = 100.0
    loss: dict[str, Any] = field(default_factory=lambda: {"type": "clip"})
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Validate the temperature bounds and apply SigLIP's initialisation."""
        if self.max_logit_scale < 1.0:
            raise ValueError(f"max_logit_scale must be >= 1, got {self.max_logit_scale}")
        if self.init_temperature <= 0:
            raise ValueError(f"init_temperature must be > 0, got {self.init_temperature}")
        if self.loss.get("type") == "siglip" and self.init_logit_bias is None:
            self.init_temperature = SIGLIP_INIT_TEMPERATURE
            self.init_logit_bias = SIGLIP_INIT_LOGIT_BIAS

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
        """The logit scale exp(s) (a 0-d tensor with gradient).

        Not clamped here, so that its gradient never vanishes; training keeps s in
        bounds with :meth:`clamp_logit_scale` after each optimiser step (as open_clip).
        """
        return self.logit_scale.exp()

    @torch.no_grad()
    def clamp_logit_scale(self) -> None:
        """Clamp the parameter s in place to [0, log(max_logit_scale)] (scale in [1, max])."""
        self.logit_scale.clamp_(0.0, math.log(self.config.max_logit_scale))

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
