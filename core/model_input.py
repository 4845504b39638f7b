"""What a model config's ``extra`` says about its image input, read and checked once.

The image side of a model is sized by ``extra.input_size`` (radiographs, H&E tiles);
every domain that resizes to it reads it here, so a missing or impossible size is the
same clear error everywhere. Kept free of Lightning so inference transforms import it
cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def input_size(model_extra: Mapping[str, Any]) -> int:
    """The side images are resized to, from a model config's ``extra``.

    Args:
        model_extra: The model config's ``extra``.

    Returns:
        ``extra.input_size``.

    Raises:
        ValueError: It is missing, not an integer, or below 16.
    """
    size = model_extra.get("input_size")
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"model config extra.input_size must be an integer >= 16, got {size!r}")
    return size
