"""The towers of a contrastive model: image, text and location encoders."""

from core.towers.image import ImageTower, ImageTowerConfig
from core.towers.location import LocationTower, LocationTowerConfig, spherical_harmonics
from core.towers.text import TextTower, TextTowerConfig

__all__ = [
    "ImageTower",
    "ImageTowerConfig",
    "LocationTower",
    "LocationTowerConfig",
    "TextTower",
    "TextTowerConfig",
    "spherical_harmonics",
]
