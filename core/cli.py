"""Command-line entry points that end bad input with one line, not a traceback.

Every domain's ``python -m`` commands (train, evaluate, index, search) wrap their
``main`` with :func:`run_cli`: an error about the input (a missing or malformed file, a
refused setting) prints ``error: <message naming the file and the problem>`` and exits
with status 2; a bug still shows its traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console

from core.data import SampleError
from core.retrieval import IndexLoadError

#: Errors that mean "the input is wrong", reported in one line.
INPUT_ERRORS: tuple[type[BaseException], ...] = (IndexLoadError, SampleError,
                                                 FileNotFoundError, ValueError)


def run_cli(entry: Callable[[], Any], console: Console | None = None) -> None:
    """Run a ``python -m`` entry point: bad input ends with a one-line error (exit 2).

    Args:
        entry: The command's ``main``, reading ``sys.argv``.
        console: Where the error goes (default: a new rich console on stdout).
    """
    try:
        entry()
    except INPUT_ERRORS as error:
        (console or Console()).print(f"[red]error:[/] {error}")
        raise SystemExit(2) from None
