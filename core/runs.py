"""Run folders: training the variants of a run, and the tables of its report and summary.

A domain's ``train`` command trains a main model and the companions its report compares
against (same data, same seed), each into its own folder of one run::

    RUN/                      main model: model.safetensors, config.json, trained.json
    RUN/companions/<name>/    one folder per companion, the same files
    RUN/checkpoints/<name>/   Lightning checkpoints (safetensors, resumable)
    RUN/logs/<name>/          metrics.csv (training curves)

:func:`train_variant` is that loop body for any domain, :func:`train_run` the whole
command around it (run folder, every variant, then rank 0 evaluates); the report helpers
(:func:`metric`, :func:`relative_change`, :func:`markdown_table`, :func:`summary_table`)
render figures and claims the same way in every domain's ``report.md`` and console
summary. What this adds on top of Lightning: the folder layout, resumption from the last
checkpoint, a marker written only once the weights are saved, quiet logs.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from rich.console import Console
from rich.table import Table

from core.atomic import atomic_write_bytes
from core.checkpoint import load_run, save_run, variant_folder
from core.distributed import is_global_zero, shutdown
from core.lightning_io import (
    ResumableCSVLogger,
    SafetensorsCheckpointIO,
    load_checkpoint_file,
)
from core.model import ContrastiveModel, ModelConfig
from core.registry import get_model_config
from core.training import ContrastiveTask

console = Console()
DONE_FILE = "trained.json"
#: What marks a folder as a stand-alone evaluation's (see :func:`evaluation_folder`).
EVALUATION_FILE = "evaluation.yaml"
QUIET_WARNINGS = (".*LeafSpec.*", ".*module\\(s\\) in eval mode.*",  # frozen text tower
                  ".*smaller than the logging interval.*", ".*litlogger.*")


@dataclass
class Variant:
    """One model trained in a run.

    Attributes:
        name: ``main`` or a companion's name.
        config: Its model configuration.
    """

    name: str
    config: ModelConfig


def main_model_config(model_name: str, companions: Sequence[str], known: Sequence[str],
                      overrides: Mapping[str, Any]) -> ModelConfig:
    """The main model's config of a run, once the companions asked for are known ones.

    Args:
        model_name: Registry name of the main model.
        companions: The companions the run asks for.
        known: The companions the domain can train.
        overrides: Model-config overrides (e.g. the loss).

    Returns:
        The main model's configuration.

    Raises:
        ValueError: A companion is not in ``known``.
    """
    unknown = sorted(set(companions) - set(known))
    if unknown:
        raise ValueError(f"unknown companions {unknown}; known: {list(known)}")
    return get_model_config(model_name, **overrides)


def quiet_lightning() -> None:
    """Hide Lightning's tips and known-harmless warnings so the progress bar stays readable."""
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def train_variant(variant: Variant, out: Path, datamodule: L.LightningDataModule, *,
                  trainer: Mapping[str, Any], seed: int, loss: Any, optimizer: Any,
                  input_map: dict[str, dict[str, str]], saved: Mapping[str, Any],
                  title: str = "") -> tuple[Path, ContrastiveModel | None]:
    """Train one variant (resuming from its last checkpoint if any) and save its folder.

    Args:
        variant: What to train.
        out: The run folder.
        datamodule: The variant's training data.
        trainer: Keyword arguments of ``lightning.Trainer`` (devices, max_epochs...).
        seed: Seed of weights, shuffling and augmentation.
        loss: The loss spec (see :class:`core.losses.PairwiseLoss`).
        optimizer: Optimiser settings (see :class:`core.training.OptimizerConfig`).
        input_map: Mini-batch name -> {tower: batch field}.
        saved: Extra entries of the saved ``config.json`` (the run config, data options).
        title: What the progress rule says is being trained.

    Returns:
        The variant's folder and the trained model (``None`` when an earlier, resumed,
        invocation had already trained it, and on ranks other than 0, which save nothing).
    """
    folder = variant_folder(out, variant.name)
    if (folder / DONE_FILE).is_file():
        console.print(f"[green]✓[/] {variant.name}: already trained ({folder}), skipping")
        return folder, None
    L.seed_everything(seed, workers=True, verbose=False)
    model = ContrastiveModel(variant.config)
    task = ContrastiveTask(model, loss=loss, optimizer=optimizer, input_map=input_map)
    checkpoints = out / "checkpoints" / variant.name
    last = checkpoints / "last.ckpt"
    resume_step = int(load_checkpoint_file(last)["global_step"]) if last.is_file() else None
    from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar

    fit = L.Trainer(
        **trainer, default_root_dir=out, enable_model_summary=False,
        logger=ResumableCSVLogger(out / "logs", variant.name, resume_step),
        plugins=[SafetensorsCheckpointIO()],
        callbacks=[RichProgressBar(),
                   ModelCheckpoint(dirpath=checkpoints, save_last=True, save_top_k=0)],
    )
    console.rule(f"[bold]{variant.name}[/]: {title or variant.config.name}")
    started = time.perf_counter()
    fit.fit(task, datamodule, ckpt_path=last if last.is_file() else None)
    seconds = time.perf_counter() - started
    if not fit.is_global_zero:  # DDP: rank 0 holds the same weights and saves them
        return folder, None
    save_run(model, folder, extra={"variant": variant.name, **saved})
    record = {"seconds": round(seconds, 1), "steps": fit.global_step,
              "epochs": fit.current_epoch}
    atomic_write_bytes(folder / DONE_FILE, yaml.safe_dump(record).encode())
    return folder, model


# -- the run folder: never destroy what is not ours -----------------------------------------------

RUN_CONFIG_FILE = "run.yaml"
#: What a run writes in its folder (besides the domain's figures); ``--overwrite`` removes
#: exactly these, never anything else a user keeps there.
RUN_FILES = (RUN_CONFIG_FILE, "model.safetensors", "config.json", DONE_FILE, "metrics.json",
             "report.md")
RUN_FOLDERS = ("companions", "checkpoints", "logs", "eval")


def flat_keys(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{"a.b.c": value}`` (lists and scalars are leaves)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_keys(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def config_differences(saved: Mapping[str, Any], wanted: Mapping[str, Any],
                       ignore: Sequence[str] = ("out",)) -> list[str]:
    """The dotted keys whose values differ between two run configs (sorted)."""
    a, b = flat_keys(saved), flat_keys(wanted)
    return sorted(k for k in set(a) | set(b)
                  if k.split(".")[0] not in ignore and a.get(k) != b.get(k))


def prepare_run_folder(out: Path, config: Mapping[str, Any], *, resume: bool = False,
                       overwrite: bool = False, figures: Sequence[str] = (),
                       command: str = "train") -> str:
    """Check ``--out`` before anything is written, then claim it with the run config.

    - a missing or empty folder: a new run;
    - a run of ours with the same config, or ``resume``: the run continues (finished
      models are skipped, an interrupted one resumes from its last checkpoint);
    - a run of ours with another config: refused, naming the differing keys, unless
      ``overwrite`` (what the run wrote — :data:`RUN_FILES`, :data:`RUN_FOLDERS`,
      ``figures`` — is removed; nothing else);
    - a non-empty folder that is not a run: refused unless ``overwrite`` (the run is
      written beside what is there; nothing is removed).

    Args:
        out: The run folder.
        config: The run configuration about to be trained.
        resume: ``--resume`` was given.
        overwrite: ``--overwrite`` was given.
        figures: The domain's figure files (removed with the run on ``overwrite``).
        command: The command's name, for messages.

    Returns:
        ``"new"``, ``"continue"`` or ``"overwrite"``.

    Raises:
        ValueError: Naming the folder, the problem and the flag that overrides it.
    """
    out = Path(out)
    saved_path = out / RUN_CONFIG_FILE
    state = "new"
    if saved_path.is_file():
        saved = yaml.safe_load(saved_path.read_text()) or {}
        differing = config_differences(saved, config)
        if resume or not differing:
            state = "continue"
        elif overwrite:
            _remove_run(out, figures)
            state = "overwrite"
        else:
            shown = ", ".join(differing[:8]) + (" ..." if len(differing) > 8 else "")
            raise ValueError(f"{out}: holds a run with another config (differs in {shown}); "
                             f"continue it with --resume {out}, start it over with "
                             f"--overwrite, or pick another --out")
    elif out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"{out}: not empty and not a run folder of {command}; pick "
                             f"another --out, or pass --overwrite to write the run into it "
                             f"(nothing already there is removed)")
        state = "overwrite"
    out.mkdir(parents=True, exist_ok=True)
    if is_global_zero():
        atomic_write_bytes(saved_path, yaml.safe_dump(dict(config), sort_keys=False).encode())
    return state


def _remove_run(out: Path, figures: Sequence[str]) -> None:
    """Remove what a run wrote in ``out`` (and only that)."""
    import shutil

    for name in (*RUN_FILES, *figures):
        (out / name).unlink(missing_ok=True)
    for name in RUN_FOLDERS:
        if (out / name).is_dir():
            shutil.rmtree(out / name)


# -- report and summary tables ------------------------------------------------------------------


def train_run(config: dict[str, Any], *, resume: bool, overwrite: bool, command: str,
              figures: Sequence[str], data_root: Callable[[dict[str, Any]], Path],
              variants: Callable[[dict[str, Any]], Sequence[Any]],
              train: Callable[[Any, dict[str, Any], Path, Path], tuple[Path, Any]],
              evaluate: Callable[..., Any]) -> Path:
    """A domain's training command after its config is resolved: train every variant, evaluate.

    Prepares the run folder (:func:`prepare_run_folder`), trains each variant into it,
    closes the DDP process group, and on rank 0 alone reloads the trained variants and
    evaluates them. The data (``data_root``, perhaps generated) counts as training time.

    Args:
        config: The resolved run configuration (``out`` names the run folder).
        resume: Whether ``--resume`` continues an interrupted run.
        overwrite: Whether ``--overwrite`` may start a run folder over.
        command: The entry point, as the run folder records it.
        figures: The figures evaluation writes into the run folder.
        data_root: The data folder of the run (from the config).
        variants: The variants to train (from the config), main model first.
        train: Trains one variant ``(variant, config, root, out)`` into the run folder;
            returns its folder and model.
        evaluate: ``evaluate(models, variants, config, root, out, training_seconds=...)``,
            with the trained models by variant name.

    Returns:
        The run folder.
    """
    quiet_lightning()
    out = Path(config["out"])
    state = prepare_run_folder(out, config, resume=resume, overwrite=overwrite,
                               figures=figures, command=command)
    if state == "continue":
        console.print(f"continuing the run in {out} (finished models are kept)")
    torch.set_float32_matmul_precision("high")
    started = time.perf_counter()
    root = data_root(config)
    chosen = variants(config)
    folders = {v.name: train(v, config, root, out)[0] for v in chosen}
    training_seconds = time.perf_counter() - started
    zero = is_global_zero()
    shutdown()  # DDP: every rank waits here, then the process group closes
    if not zero:  # the other ranks only train; rank 0 evaluates alone
        return out
    models = {name: load_run(folder) for name, folder in folders.items()}
    evaluate(models, chosen, config, root, out, training_seconds=training_seconds)
    return out


def write_training_curves(out: Path, variants: Sequence[Any], run: Path | None = None) -> None:
    """Plot the variants' training curves (loss, validation loss, temperature) as ``curves.png``.

    Args:
        out: Where the figure goes.
        variants: The run's variants (each with a ``name``); those without a
            ``metrics.csv`` are left out, and nothing is drawn when none has one.
        run: The run folder holding ``logs/`` (default: ``out``).
    """
    from core.plots import plot_training_curves, read_metrics_csv

    logs_dir = (run or out) / "logs"
    logs = {v.name: read_metrics_csv(logs_dir / v.name / "metrics.csv") for v in variants
            if (logs_dir / v.name / "metrics.csv").is_file()}
    if logs:
        plot_training_curves(logs, ["train/loss", "val/loss", "train/temperature"],
                             out / "curves.png")


def evaluation_folder(run: Path, root: Path, out: Path | None) -> Path:
    """Where a stand-alone evaluation writes: ``--out``, else ``RUN/eval/<data folder name>/``.

    Args:
        run: The run folder evaluated.
        root: The data folder evaluated on.
        out: The ``--out`` given, if any.

    Returns:
        The evaluation folder (not created).

    Raises:
        ValueError: ``out`` is the run folder itself, or a non-empty folder that is not an
            earlier evaluation (nothing is written there).
    """
    folder = Path(out) if out is not None else Path(run) / "eval" / Path(root).name
    if folder.resolve() == Path(run).resolve():
        raise ValueError(f"{folder}: is the run folder; evaluation never overwrites the "
                         f"training report (omit --out to write to {run}/eval/)")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / EVALUATION_FILE).is_file():
        raise ValueError(f"{folder}: not empty and not an evaluation folder; pass an empty "
                         f"or new --out")
    return folder


def metric(tree: Mapping[str, Any], *path: str) -> float | None:
    """The number at ``path`` in nested metrics, or ``None`` when absent."""
    node: Any = tree
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, float | int) and not isinstance(node, bool) else None


def relative_change(value: float | None, baseline: float | None) -> float | None:
    """``value / baseline - 1``, or ``None`` when either is missing or the baseline is 0."""
    if value is None or baseline is None or baseline == 0:
        return None
    return value / baseline - 1


def fmt(value: Any) -> str:
    """A figure for a table: 3 decimals, yes/no, — for missing."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return "—" if value is None else str(value)


def pct(value: float | None) -> str:
    """A relative change as a signed percentage (— for missing)."""
    return "—" if value is None else f"{value:+.1%}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Lines of a markdown table; cells are formatted with :func:`fmt`."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows]
    return lines


def claim_figures(claim: Mapping[str, Any]) -> str:
    """A claim's figures on one line (relative changes as percentages)."""
    return "; ".join(f"{k} {pct(v) if 'relative' in k else fmt(v)}"
                     for k, v in claim.items() if k != "holds")


def claim_gain(claim: Mapping[str, Any]) -> float | None:
    """The first relative change a claim records (its headline gain)."""
    return next((v for k, v in claim.items() if "relative" in k), None)


def summary_table(title: str, figures: Mapping[str, Any], claims: Mapping[str, Any],
                  targets: Mapping[str, float]) -> Table:
    """The console summary: headline figures beside their targets, claims held or not."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    for key, value in figures.items():
        table.add_row(key, fmt(value), fmt(targets.get(key)))
    for name, claim in claims.items():
        table.add_row(name, pct(claim_gain(claim)),
                      "holds" if claim["holds"] else "does not hold")
    return table


def print_bad_samples(bad: Sequence[tuple[str, str]], shown: int = 3) -> None:
    """Say how many samples a run skipped, and the first few with their problems."""
    if not bad:
        return
    console.print(f"[yellow]{len(bad)} bad sample(s) skipped[/] (listed in metrics.json):")
    for path, problem in bad[:shown]:
        console.print(f"  {path}: {problem}" if not problem.startswith(path) else f"  {problem}")
