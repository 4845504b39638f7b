"""The command line every domain's training entry point shares: flags, ``--set``, run YAML.

A domain's ``run_config`` module builds its parser from these pieces (adding its own
model flags in between) and resolves the run configuration with
:func:`resolve_run_config`, so the common flags, ``--set KEY=VALUE`` overrides and
``--resume`` handling are written once.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from core.registry import deep_merge
from core.resources import load_yaml, resource_dir


def add_config_flag(parser: argparse.ArgumentParser, default_run: str) -> None:
    """Add ``--config`` (the run config YAML).

    Args:
        parser: The entry point's parser.
        default_run: The default run config, relative to ``configs/``.
    """
    parser.add_argument("--config", type=Path, default=None,
                        help=f"run config YAML (default: configs/{default_run})")


def add_common_flags(parser: argparse.ArgumentParser, *, layouts: Sequence[str],
                     data_help: str, batch_help: str) -> None:
    """Add the flags every training entry point has, ``--data`` to ``--overwrite``.

    Args:
        parser: The entry point's parser.
        layouts: The on-disk layouts ``--layout`` accepts.
        data_help: Help text of ``--data``.
        batch_help: Help text of ``--batch-size``.
    """
    parser.add_argument("--data", type=Path, help=data_help)
    parser.add_argument("--layout", choices=layouts, help="on-disk layout of --data")
    parser.add_argument("--devices", help="Lightning devices (e.g. 1, 4, auto)")
    parser.add_argument("--accelerator", help="Lightning accelerator (cpu, gpu, auto)")
    parser.add_argument("--strategy", help="Lightning strategy (auto, ddp, ...)")
    parser.add_argument("--precision", help="Lightning precision (32-true, bf16-mixed, ...)")
    parser.add_argument("--max-epochs", type=int, help="epochs per model")
    parser.add_argument("--batch-size", type=int, help=batch_help)
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


def add_seeds_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--seeds S [S ...]`` (the whole run once per seed, then mean ± sd; see
    :mod:`core.seeds`)."""
    parser.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                        help="train every model once per seed into OUT/seed-<s>/ and write "
                        "OUT/seeds.json, seeds.md, seeds.png (figures as mean ± sd, claims "
                        "with per-seed gains and a verdict); OUT is --out, else the run "
                        "folder + '-seeds'. Run the same command again to continue")


def seeds_config(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, Any]:
    """The run config of a ``--seeds`` run: ``out`` is the seeds folder.

    ``--out`` names it; without it, the single run's folder with ``-seeds`` appended (so
    the seeds never mix with a single-seed run).

    Raises:
        SystemExit: ``--resume`` was given with ``--seeds`` (the same ``--seeds`` command
            continues instead).
    """
    if args.resume is not None:
        raise SystemExit("--seeds continues by running the same command again; --resume "
                         "takes one run folder (e.g. OUT/seed-1)")
    out = args.out if args.out is not None else f"{config['out']}-seeds"
    return {**config, "out": str(out)}


def add_set_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--set KEY=VALUE`` (any config key, dotted, YAML value; repeatable)."""
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override any config key (dotted, YAML value)")


def parse_override(text: str) -> dict[str, Any]:
    """One ``--set KEY=VALUE`` as ``{KEY: value}``, the value parsed as YAML.

    Raises:
        SystemExit: ``text`` has no ``=``.
    """
    if "=" not in text:
        raise SystemExit(f"--set expects KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    return {key.strip(): yaml.safe_load(raw)}


def common_flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys the common flags set (dotted), ``None`` where a flag is not given."""
    return {
        "seed": args.seed,
        "data.root": str(args.data) if args.data else None, "data.layout": args.layout,
        "data.batch_size": args.batch_size, "trainer.devices": args.devices,
        "trainer.accelerator": args.accelerator, "trainer.strategy": args.strategy,
        "trainer.precision": args.precision, "trainer.max_epochs": args.max_epochs,
        "optimizer.lr": args.lr, "loss.type": args.loss,
    }


def resolve_run_config(args: argparse.Namespace, default_path: Path,
                       flags: Mapping[str, Any], *, model_changed: bool,
                       finish: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                       ) -> dict[str, Any]:
    """Merge the YAML run config with the command-line flags and ``--set`` overrides.

    With ``--resume`` the config saved in that run folder is returned as it is (``out``
    set to the folder). Otherwise: the flags that are given, then each ``--set``, merged
    over ``--config`` (or ``default_path``); ``finish`` adjusts the result (a domain's own
    flags); ``out`` becomes ``--out``, or ``runs/<model>`` when the model was changed on
    the command line; a digit string ``trainer.devices`` becomes an int.

    Args:
        args: Parsed command-line arguments (with the common flags and ``--set``).
        default_path: The run config used without ``--config``.
        flags: Dotted config keys and values from the flags (``None``: not given).
        model_changed: Whether the command line chose another model.
        finish: Applied to the merged config before ``out`` is set.

    Returns:
        The run configuration as a plain dict.

    Raises:
        SystemExit: ``--resume`` names no run folder, the YAML is not ``kind: run``, or a
            ``--set`` has no ``=``.
    """
    if args.resume is not None:
        saved = Path(args.resume) / "run.yaml"
        if not saved.is_file():
            raise SystemExit(f"--resume {args.resume}: no run.yaml there; not a run folder")
        config = load_yaml(saved)
        config["out"] = str(args.resume)
        return config
    config = load_yaml(args.config or default_path)
    if not isinstance(config, dict) or config.get("kind") != "run":
        raise SystemExit(f"{args.config}: not a run config (needs 'kind: run')")
    for key, value in flags.items():
        if value is not None:
            config = deep_merge(config, {key: value})
    for text in args.overrides:
        config = deep_merge(config, parse_override(text))
    if finish is not None:
        config = finish(config)
    if args.out is not None:
        config["out"] = str(args.out)
    elif model_changed:
        config["out"] = f"runs/{config['model']}"
    if isinstance(config["trainer"].get("devices"), str) and config["trainer"]["devices"].isdigit():
        config["trainer"]["devices"] = int(config["trainer"]["devices"])
    return config


# -- the image <-> text domains (radiology, pathology): one parser, one set of model flags ---------

def default_config_path(default_run: str) -> Path:
    """Path of a domain's default run config (``default_run`` relative to ``configs/``)."""
    return resource_dir("configs") / default_run


def image_text_parser(*, prog: str, description: str, default_run: str, model_help: str,
                      layouts: Sequence[str], data_help: str, batch_help: str,
                      model_flags: Callable[[argparse.ArgumentParser], None] | None = None,
                      ) -> argparse.ArgumentParser:
    """The ``train`` parser of an image <-> text domain (one image and one text tower).

    ``--config``, ``--model``, ``--text-model``, ``--unfreeze-top``, the domain's own model
    flags (``model_flags``), the common flags, ``--fast-dev-run`` and ``--set``; read
    them back with :func:`image_text_flag_values`.

    Args:
        prog: The entry point (``python -m domains.<d>.train``).
        description: What it does.
        default_run: The default run config, relative to ``configs/``.
        model_help: Help text of ``--model``.
        layouts: The on-disk layouts ``--layout`` accepts.
        data_help: Help text of ``--data``.
        batch_help: Help text of ``--batch-size``.
        model_flags: Adds the domain's own model flags.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_config_flag(parser, default_run)
    parser.add_argument("--model", help=model_help)
    parser.add_argument("--text-model", help="text encoder: minilm, a Hugging Face name (e.g. "
                        "a biomedical BERT) or a local folder")
    parser.add_argument("--unfreeze-top", type=int, help="train the top N text-encoder layers")
    if model_flags is not None:
        model_flags(parser)
    add_common_flags(parser, layouts=layouts, data_help=data_help, batch_help=batch_help)
    parser.add_argument("--fast-dev-run", action="store_true",
                        help="one training and one validation batch per model (a smoke test)")
    add_set_flag(parser)
    return parser


def image_text_flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys the flags of :func:`image_text_parser` set (dotted; ``None``: not given)."""
    return {
        "model": args.model, **common_flag_values(args),
        "model_overrides.towers.text.model": args.text_model,
        "model_overrides.towers.text.unfreeze_top": args.unfreeze_top,
        "trainer.fast_dev_run": True if args.fast_dev_run else None,
    }
