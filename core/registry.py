"""Model registry: model configs are data (YAML under `configs/`) found by exact name."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from core.model import ContrastiveModel, ModelConfig
from core.resources import load_yaml, resource_dir


def _model_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(resource_dir("configs").rglob("*.yaml")):
        document = load_yaml(path)
        if not isinstance(document, dict) or document.get("kind") != "model":
            continue
        name = document.get("name")
        if not isinstance(name, str):
            raise ValueError(f"{path}: a model config needs a string 'name'")
        if name in files:
            raise ValueError(f"model {name!r} is defined twice: {files[name]} and {path}")
        files[name] = path
    return files


def list_models() -> list[str]:
    """Names of every registered model config, sorted."""
    return sorted(_model_files())


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge ``overrides`` into a copy of ``base``; nested dicts merge key by key.

    Args:
        base: The original mapping.
        overrides: Values to set; a dotted key (``"towers.text.freeze"``) sets a nested value.

    Returns:
        The merged mapping.
    """
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if "." in key:
            head, rest = key.split(".", 1)
            value = {rest: value}
            key = head
            merged[key] = deep_merge(merged.get(key, {}), value)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def get_model_config(name: str, **overrides: Any) -> ModelConfig:
    """Load a registered model config (merged over its ``base``, if any) and apply overrides.

    Args:
        name: Exact registry name.
        **overrides: Values merged into the config (nested dicts merge; dotted keys
            address nested values, e.g. ``**{"towers.text.freeze": False}``).

    Returns:
        The model configuration.

    Raises:
        KeyError: If ``name`` is not registered (the message lists the known names).
    """
    return ModelConfig.from_dict(deep_merge(_resolve_document(name, _model_files(), ()), overrides))


def _resolve_document(name: str, files: dict[str, Path], seen: tuple[str, ...]) -> dict[str, Any]:
    """Load a model document, merging it over the document its ``base`` key names."""
    if name not in files:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(files))}")
    if name in seen:
        raise ValueError(f"model configs inherit in a cycle: {' -> '.join((*seen, name))}")
    document = dict(load_yaml(files[name]))
    base = document.pop("base", None)
    if base is None:
        return document
    parent = _resolve_document(base, files, (*seen, name))
    parent.pop("name", None)
    parent.pop("description", None)
    return deep_merge(parent, document)


def create_model(name: str, **overrides: Any) -> ContrastiveModel:
    """Build a registered model.

    Args:
        name: Exact registry name (see :func:`list_models`).
        **overrides: Config overrides, as in :func:`get_model_config`.

    Returns:
        The model, with freshly initialised trainable weights.
    """
    return ContrastiveModel(get_model_config(name, **overrides))
