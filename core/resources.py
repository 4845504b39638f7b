"""Locate the project's data folders (`configs/`, `datasets/`) on disk.

The folders live at the repository root. They are data, not Python packages (a
package named `datasets` would shadow Hugging Face's), so they are found by
path: the `MOSAIC_VLM_HOME` environment variable if set, else the checkout that
holds this file (editable installs and source trees), else the copy a wheel
installs under `<prefix>/share/mosaic-vlm/`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

_DATA_FOLDERS = ("configs", "datasets")


def _candidate_roots() -> list[Path]:
    roots: list[Path] = []
    if env := os.environ.get("MOSAIC_VLM_HOME"):
        roots.append(Path(env))
    roots.append(Path(__file__).resolve().parent.parent)
    roots.append(Path(sys.prefix) / "share" / "mosaic-vlm")
    return roots


def resource_dir(name: str) -> Path:
    """Return the folder holding one of the project's data trees.

    Args:
        name: ``"configs"`` or ``"datasets"``.

    Returns:
        The first existing folder of that name among the known roots.

    Raises:
        ValueError: If ``name`` is not a known data folder.
        FileNotFoundError: If no root holds the folder.
    """
    if name not in _DATA_FOLDERS:
        raise ValueError(f"unknown data folder {name!r}; known: {', '.join(_DATA_FOLDERS)}")
    roots = _candidate_roots()
    for root in roots:
        folder = root / name
        if folder.is_dir():
            return folder
    tried = ", ".join(str(r / name) for r in roots)
    raise FileNotFoundError(f"data folder {name!r} not found; looked in: {tried}")


def cache_root() -> Path:
    """The project's one cache folder: ``$MOSAIC_VLM_CACHE`` or ``~/.cache/mosaic-vlm``.

    Generated archives (``synthetic/``) and text-embedding caches (``text/``) live under it.
    """
    return Path(os.environ.get("MOSAIC_VLM_CACHE", Path.home() / ".cache" / "mosaic-vlm"))


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file, naming the file in any error.

    Args:
        path: The YAML file.

    Returns:
        The parsed document.
    """
    path = Path(path)
    try:
        with path.open("r", encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from error


def dataset_card(name: str) -> dict[str, Any]:
    """Load a dataset card from `datasets/` by its relative name.

    Args:
        name: Card path relative to `datasets/`, with or without ``.yaml``
            (e.g. ``"remote_sensing/sentinel2"``).

    Returns:
        The card as a dict.
    """
    rel = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
    path = resource_dir("datasets") / rel
    if not path.is_file():
        known = sorted(
            str(p.relative_to(resource_dir("datasets")).with_suffix(""))
            for p in resource_dir("datasets").rglob("*.yaml")
        )
        raise FileNotFoundError(f"dataset card {name!r} not found at {path}; known: {known}")
    return load_yaml(path)
