"""`python -m domains.radiology.synthetic --out DIR [--n-studies N] [--seed S] [--overwrite]`.

``DIR`` must be missing, empty, or (with ``--overwrite``) a set written earlier by this
command; any other folder is refused with a one-line error and left untouched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from core.cli import run_cli
from domains.radiology.synthetic.generator import generate_dataset


def main(argv: list[str] | None = None) -> Path:
    """Generate the synthetic chest-radiograph set from the command line.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The output folder.
    """
    parser = argparse.ArgumentParser(
        prog="python -m domains.radiology.synthetic",
        description="Generate synthetic chest radiographs (DICOM) with free-text reports and "
        "patient-level splits.")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder: missing, empty, or a set of this command "
                             "(replaced only with --overwrite)")
    parser.add_argument("--n-studies", type=int, default=2400, help="studies to generate")
    parser.add_argument("--size", type=int, default=160, help="stored image side in pixels")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--workers", type=int, default=None, help="processes")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out when it holds a set written by this command")
    args = parser.parse_args(argv)
    return generate_dataset(args.out, n_studies=args.n_studies, seed=args.seed, size=args.size,
                            workers=args.workers, overwrite=args.overwrite)


if __name__ == "__main__":
    run_cli(main, Console(soft_wrap=True))
