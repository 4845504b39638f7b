"""The synthetic H&E set (captioned tiles of nine tissue classes, pyramidal slides), the
pathology default. ``python -m domains.pathology.synthetic --out DIR`` writes one;
:func:`default_archive` returns the cached default set (generated once)."""

from core.generated import UnsafeOutputError
from domains.pathology.synthetic.generator import (
    GENERATOR_NAME,
    NORMAL_LABEL,
    TUMOUR_LABEL,
    archive_problem,
    default_archive,
    default_settings,
    generate_archive,
)
from domains.pathology.synthetic.slide_writer import write_pyramidal_tiff

__all__ = ["GENERATOR_NAME", "NORMAL_LABEL", "TUMOUR_LABEL", "UnsafeOutputError",
           "archive_problem", "default_archive", "default_settings", "generate_archive",
           "write_pyramidal_tiff"]
