"""The synthetic chest-radiograph set (DICOM phantoms + reports), the radiology default."""

from core.generated import UnsafeOutputError
from domains.radiology.synthetic.generator import (
    CHEXPERT,
    GENERATOR_NAME,
    dataset_problem,
    default_dataset,
    generate_dataset,
)
from domains.radiology.synthetic.phantom import DRAWN_FINDINGS

__all__ = ["CHEXPERT", "DRAWN_FINDINGS", "GENERATOR_NAME", "UnsafeOutputError",
           "dataset_problem", "default_dataset", "generate_dataset"]
