"""The physically grounded synthetic Sentinel-1/2 archive."""

from domains.remote_sensing.synthetic.generator import (
    default_archive,
    default_cache_dir,
    generate_archive,
    simulate_surface,
)

__all__ = ["default_archive", "default_cache_dir", "generate_archive", "simulate_surface"]
