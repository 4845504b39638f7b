"""The towers of a contrastive model: image, text and location encoders, and their registry.

Each built-in tower module registers its type (``image``, ``text``, ``location``)
with :func:`register_tower` when imported; a domain adds its own types the same way.
"""

from core.towers.image import ImageTower, ImageTowerConfig
from core.towers.location import LocationTower, LocationTowerConfig, spherical_harmonics
from core.towers.registry import build_tower, get_tower_type, list_towers, register_tower
from core.towers.text import TextTower, TextTowerConfig

__all__ = [
    "ImageTower",
    "ImageTowerConfig",
    "LocationTower",
    "LocationTowerConfig",
    "TextTower",
    "TextTowerConfig",
    "build_tower",
    "get_tower_type",
    "list_towers",
    "register_tower",
    "spherical_harmonics",
]
