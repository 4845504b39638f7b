"""Lightning checkpoints without pickle: a safetensors file whose header holds the rest as JSON.

``SafetensorsCheckpointIO`` is a Lightning ``CheckpointIO`` plugin. A checkpoint
(model and optimiser state, loop counters, callback state) is split into its
tensors, stored as safetensors, and a JSON skeleton of everything else, stored
in the safetensors header metadata. Loading never unpickles; files are written
atomically, so an interrupted save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from safetensors import safe_open
from safetensors.torch import save

from core.atomic import atomic_write_bytes

SKELETON_KEY = "mosaic_vlm_checkpoint"


def _encode(value: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if isinstance(value, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = value.detach().cpu().contiguous()
        return {"__tensor__": name}
    if isinstance(value, np.ndarray):
        return _encode(torch.from_numpy(value), tensors, where)
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise TypeError(f"checkpoint key {where}/{key!r}: only str/int keys are stored")
            items.append([key, _encode(item, tensors, f"{where}/{key}")])
        return {"__dict__": items}
    if isinstance(value, tuple | torch.Size):
        return {"__tuple__": [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(value)]
    kind = type(value).__name__
    raise TypeError(f"checkpoint entry {where}: cannot store a {kind} without pickle")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__tuple__" in value:
            return tuple(_decode(v, tensors) for v in value["__tuple__"])
        return {key: _decode(item, tensors) for key, item in value["__dict__"]}
    return value


def save_checkpoint_file(checkpoint: dict[str, Any], path: str | Path) -> Path:
    """Write a nested checkpoint dict as one safetensors file, atomically.

    Args:
        checkpoint: Nested dicts/lists/tuples of tensors, numbers, strings, None.
        path: Destination file.

    Returns:
        The destination path.
    """
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _encode(checkpoint, tensors, "")
    payload = save(tensors, metadata={SKELETON_KEY: json.dumps(skeleton)})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, payload)


def load_checkpoint_file(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint_file` (no unpickling).

    Args:
        path: The checkpoint file.
        device: Where to put the tensors.

    Returns:
        The nested checkpoint dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except Exception as error:  # safetensors raises several error types for damaged files
        raise ValueError(f"{path}: not a readable safetensors checkpoint: {error}") from error
    if SKELETON_KEY not in metadata:
        raise ValueError(f"{path}: safetensors file is not a mosaic-vlm training checkpoint")
    return _decode(json.loads(metadata[SKELETON_KEY]), tensors)


class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning ``CheckpointIO`` that stores checkpoints as safetensors + JSON, never pickle."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        """Save a Lightning checkpoint dict to ``path`` atomically."""
        save_checkpoint_file(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """Load a checkpoint saved by :meth:`save_checkpoint` onto the CPU."""
        return load_checkpoint_file(path)

    def remove_checkpoint(self, path: Any) -> None:
        """Delete a checkpoint file if it exists."""
        Path(path).unlink(missing_ok=True)
