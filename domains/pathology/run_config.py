"""The run configuration of `python -m domains.pathology.train`: YAML + command line.

A run config is a YAML file under `configs/pathology/` (``kind: run``). The command line
overrides any key: the common ones have flags, the rest go through ``--set KEY=VALUE``
with dotted keys (``--set data.stain_scale=0``), values parsed as YAML. The merging is
:func:`core.registry.deep_merge`; the parser and flags of an image <-> text domain and
their resolution are :mod:`core.run_args`, as in every domain. Pathology adds
``--stain-normalisation``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core import run_args
from domains.pathology.archives import LAYOUTS

DEFAULT_RUN = "pathology/train-default.yaml"
LAYOUT_NAMES = tuple(LAYOUTS)


def default_config_path() -> Path:
    """Path of the default run config."""
    return run_args.default_config_path(DEFAULT_RUN)


def add_stain_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--stain-normalisation none|macenko``."""
    parser.add_argument("--stain-normalisation", choices=("none", "macenko"),
                        help="Macenko-normalise every tile before the model (training and "
                        "inference)")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of the training entry point."""
    return run_args.image_text_parser(
        prog="python -m domains.pathology.train",
        description="Train an H&E tile <-> caption model, evaluate tile and slide zero-shot "
        "tissue classification and caption <-> tile retrieval on the held-out sites, and "
        "write a run folder with weights, metrics, report and figures.",
        default_run=DEFAULT_RUN,
        model_help="registry name of the model (path-tiny, path-small...)",
        layouts=LAYOUT_NAMES, data_help="data root (default: the synthetic set)",
        batch_help="tiles per mini-batch", model_flags=add_stain_flag)


def resolve_run_config(args: argparse.Namespace) -> dict[str, Any]:
    """Merge the YAML run config with the command-line overrides.

    Args:
        args: Parsed command-line arguments.

    Returns:
        The run configuration as a plain dict.
    """
    stain = args.stain_normalisation
    flags: dict[str, Any] = {
        **run_args.image_text_flag_values(args),
        "model_overrides.extra.stain_normalisation": None if stain in (None, "none")
        else stain,
    }

    def finish(config: dict[str, Any]) -> dict[str, Any]:
        if stain == "none":  # an explicit "none" overrides a config that normalises
            config.setdefault("model_overrides", {}).setdefault("extra", {})[
                "stain_normalisation"] = None
        return config

    return run_args.resolve_run_config(args, default_config_path(), flags,
                                       model_changed=bool(args.model), finish=finish)
