"""`python -m domains.remote_sensing.train`: train CLOSP / GeoCLOSP, evaluate, write a run folder.

With no arguments: generate (or reuse) the default synthetic archive, train CLOSP-tiny
and its comparison companions (RGB-only, S1 alone, GeoCLOSP) on the CPU, evaluate them
on the held-out split and write ``runs/closp-tiny/`` (weights, config, metrics, report,
figures). ``--help`` lists every option.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger
from rich.console import Console

from core.atomic import atomic_write_bytes
from core.checkpoint import load_run, save_run
from core.lightning_io import SafetensorsCheckpointIO
from core.model import ContrastiveModel
from core.training import ContrastiveTask
from domains.remote_sensing.datamodule import CLOSPDataModule, sensor_bands
from domains.remote_sensing.run_config import build_parser, resolve_run_config
from domains.remote_sensing.variants import Variant, build_variants

console = Console()
DONE_FILE = "trained.json"
QUIET_WARNINGS = (".*LeafSpec.*", ".*module\\(s\\) in eval mode.*",  # frozen text tower
                  ".*smaller than the logging interval.*", ".*litlogger.*")


def quiet_lightning() -> None:
    """Hide Lightning's tips and known-harmless warnings so the progress bar stays readable."""
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def variant_folder(out: Path, variant: Variant) -> Path:
    """Where a variant's weights go: the run folder for ``main``, ``companions/<name>`` else."""
    return out if variant.name == "main" else out / "companions" / variant.name


def datamodule_for(variant: Variant, config: dict[str, Any], root: Path) -> CLOSPDataModule:
    """The data a variant trains and is evaluated on (its sensors and bands)."""
    data = config["data"]
    bands = sensor_bands(variant.config.extra)
    sizes = {variant.config.towers[s].get("img_size") for s in variant.sensors}
    if len(sizes) > 1:
        raise ValueError(f"{variant.config.name}: sensor towers differ in img_size {sizes}")
    return CLOSPDataModule(root, layout=data["layout"], sensors=variant.sensors,
                           s2_bands=variant.s2_bands or bands["s2"], s1_bands=bands["s1"],
                           batch_size=data["batch_size"], num_workers=data["num_workers"],
                           seed=config["seed"], caption_augment=data.get("caption_augment", 0.5),
                           image_size=sizes.pop())


def input_map(model: ContrastiveModel, sensors: list[str]) -> dict[str, dict[str, str]]:
    """Which batch field feeds which tower, per sensor mini-batch."""
    fields = {"text": "caption", "location": "coords"}
    return {s: {s: "image", **{t: f for t, f in fields.items() if t in model.towers}}
            for s in sensors}


def train_variant(variant: Variant, config: dict[str, Any], root: Path,
                  out: Path) -> tuple[Path, ContrastiveModel | None]:
    """Train one variant (resuming from its last checkpoint if any) and save its run folder.

    Args:
        variant: What to train.
        config: The run configuration.
        root: Archive folder.
        out: The run folder.

    Returns:
        The variant's folder (weights + config) and the trained model (``None`` when the
        variant was already trained by an earlier, resumed, invocation).
    """
    folder = variant_folder(out, variant)
    if (folder / DONE_FILE).is_file():
        console.print(f"[green]✓[/] {variant.name}: already trained ({folder}), skipping")
        return folder, None
    L.seed_everything(config["seed"], workers=True, verbose=False)
    model = ContrastiveModel(variant.config)
    task = ContrastiveTask(model, loss=config["loss"], optimizer=config["optimizer"],
                           input_map=input_map(model, variant.sensors))
    checkpoints = out / "checkpoints" / variant.name
    last = checkpoints / "last.ckpt"
    trainer = L.Trainer(
        **config["trainer"], default_root_dir=out, enable_model_summary=False,
        logger=CSVLogger(out / "logs", name=variant.name, version=""),
        plugins=[SafetensorsCheckpointIO()],
        callbacks=[RichProgressBar(),
                   ModelCheckpoint(dirpath=checkpoints, save_last=True, save_top_k=0)],
    )
    sensors = "+".join(variant.sensors)
    console.rule(f"[bold]{variant.name}[/]: {variant.config.name} on {sensors}")
    started = time.perf_counter()
    trainer.fit(task, datamodule_for(variant, config, root),
                ckpt_path=last if last.is_file() else None)
    seconds = time.perf_counter() - started
    save_run(model, folder, extra={"variant": variant.name, "sensors": variant.sensors,
                                   "s2_bands": variant.s2_bands, "run": config})
    record = {"seconds": round(seconds, 1), "steps": trainer.global_step,
              "epochs": trainer.current_epoch}
    atomic_write_bytes(folder / DONE_FILE, yaml.safe_dump(record).encode())
    return folder, model


def main(argv: list[str] | None = None) -> Path:
    """Run the training entry point; return the run folder."""
    args = build_parser().parse_args(argv)
    config = resolve_run_config(args)
    quiet_lightning()
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "run.yaml", yaml.safe_dump(config, sort_keys=False).encode())
    torch.set_float32_matmul_precision("high")
    started = time.perf_counter()
    root = Path(config["data"]["root"]) if config["data"].get("root") else None
    if root is None:
        from domains.remote_sensing.synthetic import default_archive

        root = default_archive()
    variants = build_variants(config["model"], config["companions"],
                              overrides={"loss": config["loss"]})
    folders = {v.name: train_variant(v, config, root, out)[0] for v in variants}
    training_seconds = time.perf_counter() - started
    from domains.remote_sensing.evaluate import evaluate_variants

    models = {name: load_run(folder) for name, folder in folders.items()}
    evaluate_variants(models, variants, config, root, out, training_seconds=training_seconds)
    return out


if __name__ == "__main__":
    main()
