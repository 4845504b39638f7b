"""The run configuration of `python -m domains.radiology.train`: YAML + command line.

A run config is a YAML file under `configs/radiology/` (``kind: run``). The command line
overrides any key: the common ones have flags, the rest go through ``--set KEY=VALUE``
with dotted keys (``--set data.uncertain=1``), values parsed as YAML. The merging is
:func:`core.registry.deep_merge`, as in every domain.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from core.registry import deep_merge
from core.resources import load_yaml, resource_dir

DEFAULT_RUN = "radiology/train-default.yaml"
LAYOUT_NAMES = ("folder", "mimic-cxr", "chexpert")


def default_config_path() -> Path:
    """Path of the default run config."""
    return resource_dir("configs") / DEFAULT_RUN


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of the training entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m domains.radiology.train",
        description="Train a chest radiograph <-> report model, evaluate zero-shot findings "
        "and retrieval on the held-out split, and write a run folder with weights, metrics, "
        "report and figures.")
    parser.add_argument("--config", type=Path, default=None,
                        help=f"run config YAML (default: configs/{DEFAULT_RUN})")
    parser.add_argument("--model", help="registry name of the model (cxr-tiny, cxr-small...)")
    parser.add_argument("--text-model", help="text encoder: minilm, a Hugging Face name (e.g. "
                        "a biomedical BERT) or a local folder")
    parser.add_argument("--unfreeze-top", type=int, help="train the top N text-encoder layers")
    parser.add_argument("--data", type=Path, help="data root (default: the synthetic set)")
    parser.add_argument("--layout", choices=LAYOUT_NAMES, help="on-disk layout of --data")
    parser.add_argument("--devices", help="Lightning devices (e.g. 1, 4, auto)")
    parser.add_argument("--accelerator", help="Lightning accelerator (cpu, gpu, auto)")
    parser.add_argument("--strategy", help="Lightning strategy (auto, ddp, ...)")
    parser.add_argument("--precision", help="Lightning precision (32-true, bf16-mixed, ...)")
    parser.add_argument("--max-epochs", type=int, help="epochs per model")
    parser.add_argument("--batch-size", type=int, help="studies per mini-batch")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--loss", choices=("soft_target", "clip", "siglip"), help="loss type")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/<model>)")
    parser.add_argument("--resume", type=Path, help="continue an interrupted run folder (with "
                        "the config saved there)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start --out over when it holds a run with another config "
                        "(removes only what that run wrote), or write into a non-empty "
                        "folder that is not a run")
    parser.add_argument("--fast-dev-run", action="store_true",
                        help="one training and one validation batch per model (a smoke test)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override any config key (dotted, YAML value)")
    return parser


def _parse_override(text: str) -> dict[str, Any]:
    if "=" not in text:
        raise SystemExit(f"--set expects KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    return {key.strip(): yaml.safe_load(raw)}


def resolve_run_config(args: argparse.Namespace) -> dict[str, Any]:
    """Merge the YAML run config with the command-line overrides.

    Args:
        args: Parsed command-line arguments.

    Returns:
        The run configuration as a plain dict.
    """
    if args.resume is not None:
        saved = Path(args.resume) / "run.yaml"
        if not saved.is_file():
            raise SystemExit(f"--resume {args.resume}: no run.yaml there; not a run folder")
        config = load_yaml(saved)
        config["out"] = str(args.resume)
        return config
    config = load_yaml(args.config or default_config_path())
    if not isinstance(config, dict) or config.get("kind") != "run":
        raise SystemExit(f"{args.config}: not a run config (needs 'kind: run')")
    flags: dict[str, Any] = {
        "seed": args.seed, "model": args.model,
        "data.root": str(args.data) if args.data else None, "data.layout": args.layout,
        "data.batch_size": args.batch_size, "trainer.devices": args.devices,
        "trainer.accelerator": args.accelerator, "trainer.strategy": args.strategy,
        "trainer.precision": args.precision, "trainer.max_epochs": args.max_epochs,
        "optimizer.lr": args.lr, "loss.type": args.loss,
        "model_overrides.towers.text.model": args.text_model,
        "model_overrides.towers.text.unfreeze_top": args.unfreeze_top,
        "trainer.fast_dev_run": True if args.fast_dev_run else None,
    }
    for key, value in flags.items():
        if value is not None:
            config = deep_merge(config, {key: value})
    for text in args.overrides:
        config = deep_merge(config, _parse_override(text))
    if args.out is not None:
        config["out"] = str(args.out)
    elif args.model:
        config["out"] = f"runs/{config['model']}"
    if isinstance(config["trainer"].get("devices"), str) and config["trainer"]["devices"].isdigit():
        config["trainer"]["devices"] = int(config["trainer"]["devices"])
    return config
