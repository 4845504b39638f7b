"""mosaic-vlm's domain-free contrastive core.

Towers, the contrastive model and its registry, losses, zero-shot classifiers,
metrics, the retrieval index, the Lightning training task and run-folder io.
It imports no domain package, nor torchgeo or monai.
"""

from core.checkpoint import load_run, save_run
from core.losses import PairwiseLoss, clip_loss, siglip_loss, soft_target_loss
from core.model import ContrastiveModel, ModelConfig
from core.registry import create_model, get_model_config, list_models
from core.towers import (
    ImageTower,
    ImageTowerConfig,
    LocationTower,
    LocationTowerConfig,
    TextTower,
    TextTowerConfig,
    list_towers,
    register_tower,
)
from core.zero_shot import build_zero_shot_classifier, positive_negative_scores

__all__ = [
    "ContrastiveModel",
    "ImageTower",
    "ImageTowerConfig",
    "LocationTower",
    "LocationTowerConfig",
    "ModelConfig",
    "PairwiseLoss",
    "TextTower",
    "TextTowerConfig",
    "build_zero_shot_classifier",
    "clip_loss",
    "create_model",
    "get_model_config",
    "list_models",
    "list_towers",
    "load_run",
    "positive_negative_scores",
    "register_tower",
    "save_run",
    "siglip_loss",
    "soft_target_loss",
]
