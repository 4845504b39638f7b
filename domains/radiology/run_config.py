"""The run configuration of `python -m domains.radiology.train`: YAML + command line.

A run config is a YAML file under `configs/radiology/` (``kind: run``). The command line
overrides any key: the common ones have flags, the rest go through ``--set KEY=VALUE``
with dotted keys (``--set data.uncertain=1``), values parsed as YAML. The merging is
:func:`core.registry.deep_merge`; the parser and flags of an image <-> text domain and
their resolution are :mod:`core.run_args`, as in every domain.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core import run_args

DEFAULT_RUN = "radiology/train-default.yaml"
LAYOUT_NAMES = ("folder", "mimic-cxr", "chexpert")


def default_config_path() -> Path:
    """Path of the default run config."""
    return run_args.default_config_path(DEFAULT_RUN)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of the training entry point."""
    return run_args.image_text_parser(
        prog="python -m domains.radiology.train",
        description="Train a chest radiograph <-> report model, evaluate zero-shot findings "
        "and retrieval on the held-out split, and write a run folder with weights, metrics, "
        "report and figures.", default_run=DEFAULT_RUN,
        model_help="registry name of the model (cxr-tiny, cxr-small...)",
        layouts=LAYOUT_NAMES, data_help="data root (default: the synthetic set)",
        batch_help="studies per mini-batch")


def resolve_run_config(args: argparse.Namespace) -> dict[str, Any]:
    """Merge the YAML run config with the command-line overrides.

    Args:
        args: Parsed command-line arguments.

    Returns:
        The run configuration as a plain dict.
    """
    return run_args.resolve_run_config(args, default_config_path(),
                                       run_args.image_text_flag_values(args),
                                       model_changed=bool(args.model))
