"""Lightning io without surprises: checkpoints without pickle, training curves kept on resume.

``SafetensorsCheckpointIO`` is a Lightning ``CheckpointIO`` plugin. A checkpoint
(model and optimiser state, loop counters, callback state) is split into its
tensors, stored as safetensors, and a JSON skeleton of everything else, stored
in the safetensors header metadata. Loading never unpickles; files are written
atomically, so an interrupted save leaves the previous checkpoint intact.

``ResumableCSVLogger`` is Lightning's ``CSVLogger`` without its habit of deleting an
existing ``metrics.csv``: a resumed run appends to the curve of the interrupted one
(rows after the checkpoint it resumes from are dropped), so the file stays one
continuous curve.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from safetensors import safe_open
from safetensors.torch import save

from core.atomic import atomic_write_bytes
from core.distributed import is_global_zero

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


class _KeepingWriter(ExperimentWriter):
    """Lightning's CSV writer, appending to an existing ``metrics.csv`` instead of deleting it."""

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if path.is_file():
            with path.open(newline="") as handle:
                self.metrics_keys = list(csv.DictReader(handle).fieldnames or [])


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` whose ``metrics.csv`` survives a resume as one continuous curve.

    Args:
        save_dir: Folder of the logs.
        name: Sub-folder (one per model of a run).
        resume_step: The global step of the checkpoint training resumes from: rows the
            interrupted run logged after it are dropped (they are trained again).
            ``None``: a fresh run — an old ``metrics.csv`` is replaced.
    """

    def __init__(self, save_dir: str | Path, name: str, resume_step: int | None) -> None:
        super().__init__(save_dir, name=name, version="")
        path = Path(self.log_dir) / ExperimentWriter.NAME_METRICS_FILE
        if path.is_file() and is_global_zero():
            rows: list[dict[str, str]] = []
            fields: list[str] = []
            if resume_step is not None:
                with path.open(newline="") as handle:
                    reader = csv.DictReader(handle)
                    fields = list(reader.fieldnames or [])
                    rows = [r for r in reader if _step(r) is not None
                            and _step(r) <= resume_step]  # type: ignore[operator]
            text = _csv_text(fields, rows) if rows else ""
            if text:
                atomic_write_bytes(path, text.encode())
            else:
                path.unlink()

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        """The writer (created on first use, keeping the existing curve)."""
        if self._experiment is None:
            Path(self.log_dir).mkdir(parents=True, exist_ok=True)
            self._experiment = _KeepingWriter(log_dir=self.log_dir)
        return self._experiment


def _step(row: dict[str, str]) -> int | None:
    try:
        return int(float(row.get("step") or ""))
    except ValueError:
        return None


def _csv_text(fields: list[str], rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
