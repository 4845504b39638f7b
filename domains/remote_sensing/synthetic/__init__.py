"""The physically grounded synthetic Sentinel-1/2 archive."""

from domains.remote_sensing.synthetic.generator import (
    GENERATOR_NAME,
    UnsafeOutputError,
    archive_problem,
    default_archive,
    default_cache_dir,
    generate_archive,
    simulate_surface,
)

__all__ = ["GENERATOR_NAME", "UnsafeOutputError", "archive_problem", "default_archive",
           "default_cache_dir", "generate_archive", "simulate_surface"]
