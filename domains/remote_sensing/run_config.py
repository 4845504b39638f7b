"""The run configuration of `python -m domains.remote_sensing.train`: YAML + command line.

A run config is a YAML file under `configs/remote_sensing/` (``kind: run``). The
command line overrides any key: the common ones have flags, the rest go through
``--set KEY=VALUE`` with dotted keys (``--set data.batch_size=32``), values parsed
as YAML. The shared flags and their resolution are :mod:`core.run_args`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core import run_args
from domains.remote_sensing.archives import LAYOUTS

DEFAULT_RUN = "remote_sensing/train-default.yaml"
MODEL_FAMILIES = ("closp", "geoclosp")


def default_config_path() -> Path:
    """Path of the default run config."""
    return run_args.default_config_path(DEFAULT_RUN)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of the training entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m domains.remote_sensing.train",
        description="Train CLOSP / GeoCLOSP (and the report's baselines), evaluate on the "
        "held-out split, and write a run folder with weights, metrics, report and figures.",
    )
    run_args.add_config_flag(parser, DEFAULT_RUN)
    parser.add_argument("--model", help="closp | geoclosp (sized by --size) or a registry name "
                        "such as closp-small")
    parser.add_argument("--size", choices=("tiny", "small", "base"), help="model size")
    run_args.add_common_flags(parser, layouts=LAYOUTS,
                              data_help="archive root (default: the synthetic archive)",
                              batch_help="scenes per sensor mini-batch")
    parser.add_argument("--no-companions", action="store_true",
                        help="train only the main model (no RGB / S1-alone / Geo comparison)")
    run_args.add_seeds_flag(parser)
    run_args.add_set_flag(parser)
    return parser


def resolve_run_config(args: argparse.Namespace) -> dict[str, Any]:
    """Merge the YAML run config with the command-line overrides.

    Args:
        args: Parsed command-line arguments.

    Returns:
        The run configuration as a plain dict.
    """
    def finish(config: dict[str, Any]) -> dict[str, Any]:
        if args.model or args.size:
            family = args.model or config["model"].rsplit("-", 1)[0]
            config["model"] = f"{family}-{config['size']}" if family in MODEL_FAMILIES \
                else family
        if args.no_companions:
            config["companions"] = []
        return config

    flags = {"size": args.size, **run_args.common_flag_values(args)}
    return run_args.resolve_run_config(args, default_config_path(), flags,
                                       model_changed=bool(args.model or args.size),
                                       finish=finish)
