"""`python -m domains.remote_sensing.synthetic --out DIR --n-s2 N --n-s1 M --seed S [--overwrite]`.

``DIR`` must be missing, empty, or (with ``--overwrite``) an archive written earlier by
this command; any other folder is refused with a one-line error and left untouched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from core.cli import run_cli
from domains.remote_sensing.synthetic.generator import generate_archive


def main(argv: list[str] | None = None) -> None:
    """Generate a synthetic archive from the command line.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Raises:
        UnsafeOutputError: ``--out`` is not missing, empty or (with ``--overwrite``) an
            archive of this generator; nothing in it is changed.
    """
    parser = argparse.ArgumentParser(
        prog="python -m domains.remote_sensing.synthetic",
        description="Generate a synthetic Sentinel-1/2 archive (GeoTIFF + GeoParquet).")
    parser.add_argument("--out", type=Path, required=True,
                        help="archive folder: missing, empty, or an archive of this command "
                             "(replaced only with --overwrite)")
    parser.add_argument("--n-s2", type=int, default=3000, help="unpaired Sentinel-2 scenes")
    parser.add_argument("--n-s1", type=int, default=3000, help="unpaired Sentinel-1 scenes")
    parser.add_argument("--n-paired", type=int, default=300, help="places seen by both sensors")
    parser.add_argument("--size", type=int, default=64, help="scene side in 10 m pixels")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--workers", type=int, default=None, help="processes")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out when it holds an archive written by this command "
                             "(other folders are never replaced)")
    args = parser.parse_args(argv)
    generate_archive(args.out, n_s2=args.n_s2, n_s1=args.n_s1, n_paired=args.n_paired,
                     seed=args.seed, size=args.size, workers=args.workers,
                     overwrite=args.overwrite)


if __name__ == "__main__":
    run_cli(main, Console(soft_wrap=True))  # the error stays on one line, however long
