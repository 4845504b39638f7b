"""Run folders: weights as safetensors + config as JSON, rebuilt without unpickling.

A run folder holds ``model.safetensors`` and ``config.json`` (the model config,
which towers' weights are external, and any extra run information). Weights of
frozen pretrained towers (the bundled text encoder) are not copied by default:
they are reloaded from their source named in the config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from core.atomic import atomic_write_bytes
from core.model import ContrastiveModel, ModelConfig

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def _frozen_towers(model: ContrastiveModel) -> list[str]:
    return [name for name, tower in model.towers.items()
            if not any(p.requires_grad for p in tower.parameters())]


def save_run(
    model: ContrastiveModel,
    folder: str | Path,
    extra: dict[str, Any] | None = None,
    include_frozen: bool = False,
) -> Path:
    """Write a model's weights and config into a run folder, each file atomically.

    Args:
        model: The model to save.
        folder: The run folder (created if needed).
        extra: Additional JSON-serialisable information stored in ``config.json``.
        include_frozen: Also store the weights of frozen towers.

    Returns:
        The run folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    external = [] if include_frozen else _frozen_towers(model)
    prefixes = tuple(f"towers.{name}." for name in external)
    tensors = {k: v.detach().cpu().clone().contiguous()
               for k, v in model.state_dict().items() if not k.startswith(prefixes)}
    config = {"format_version": FORMAT_VERSION, "model": model.config.to_dict(),
              "external_towers": external, **(extra or {})}
    atomic_write_bytes(folder / WEIGHTS_FILE, save(tensors))
    atomic_write_bytes(folder / CONFIG_FILE, json.dumps(config, indent=2).encode("utf-8"))
    return folder


def read_run_config(folder: str | Path) -> dict[str, Any]:
    """Read ``config.json`` of a run folder, naming the file in any error."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no config.json; is {folder} a run folder?")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON: {error}") from error
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported format_version {config.get('format_version')!r}")
    return config


def load_run(folder: str | Path, device: str | torch.device = "cpu") -> ContrastiveModel:
    """Rebuild a model from a run folder (safetensors only, nothing is unpickled).

    Args:
        folder: The run folder written by :func:`save_run`.
        device: Where to put the model.

    Returns:
        The model in eval mode.
    """
    folder = Path(folder)
    config = read_run_config(folder)
    model = ContrastiveModel(ModelConfig.from_dict(config["model"]))
    weights_path = folder / WEIGHTS_FILE
    try:
        tensors = load_file(str(weights_path))
    except (FileNotFoundError, SafetensorError, OSError) as error:
        raise ValueError(f"{weights_path}: cannot read weights: {error}") from error
    result = model.load_state_dict(tensors, strict=False)
    external = tuple(f"towers.{name}." for name in config.get("external_towers", []))
    missing = [k for k in result.missing_keys if not k.startswith(external)]
    if missing or result.unexpected_keys:
        raise ValueError(f"{weights_path}: weights do not match the config: "
                         f"missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}")
    return model.to(device).eval()


def variant_folder(run: str | Path, name: str) -> Path:
    """Where a run's variant lives: the run folder for ``main``, ``companions/<name>`` else."""
    return Path(run) if name == "main" else Path(run) / "companions" / name
