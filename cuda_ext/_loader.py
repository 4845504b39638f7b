"""Loads the compiled libraries once per process (building them first when stale).

The CPU library carries the operator schemas and is built on first use when it is
missing or older than its sources (a cached build is reused, see :mod:`cuda_ext.build`).
The CUDA library is loaded when it is up to date, and built on first use only where a
GPU is visible (``make test``/``make demo`` build it wherever a toolkit exists).
Set ``MOSAIC_CUDA_EXT_NO_BUILD=1`` to never compile at run time.

Whatever goes wrong is recorded, never raised: :func:`status` says why an op is missing
and :func:`cuda_ext.ops.spectral_patch_embed` then warns once and uses the reference.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field

import torch

from cuda_ext import build

_LOCK = threading.Lock()


@dataclass
class LoadState:
    """What was loaded into this process.

    Attributes:
        attempted: True once :func:`ensure_loaded` ran.
        libraries: Device type ("cpu", "cuda") -> path of the loaded library.
        errors: Device type -> why its library is unavailable.
    """

    attempted: bool = False
    libraries: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


STATE = LoadState()


def _may_build() -> bool:
    return os.environ.get("MOSAIC_CUDA_EXT_NO_BUILD", "") in ("", "0")


def _load_cpu() -> None:
    lib = build.cpu_library_if_fresh()
    if lib is None:
        if not _may_build():
            STATE.errors["cpu"] = "not built and MOSAIC_CUDA_EXT_NO_BUILD is set"
            return
        print("cuda_ext: compiling the CPU op (once; cached in "
              f"{build.cpu_library_path().parent})", file=sys.stderr)
        try:
            lib = build.build_cpu().path
        except build.BuildError as err:
            STATE.errors["cpu"] = str(err)
            return
    try:
        torch.ops.load_library(str(lib))
    except OSError as err:
        STATE.errors["cpu"] = f"loading {lib} failed: {err}"
        return
    STATE.libraries["cpu"] = str(lib)


def _load_cuda() -> None:
    if torch.version.cuda is None:
        STATE.errors["cuda"] = "torch is a CPU-only build"
        return
    try:
        lib = build.cuda_library_if_fresh()
        if lib is None:
            if not torch.cuda.is_available():
                STATE.errors["cuda"] = "not built (run `python -m cuda_ext.build`)"
                return
            if not _may_build():
                STATE.errors["cuda"] = "not built and MOSAIC_CUDA_EXT_NO_BUILD is set"
                return
            print("cuda_ext: compiling the CUDA op (once)", file=sys.stderr)
            result = build.build_cuda()
            if result.path is None:
                STATE.errors["cuda"] = result.note
                return
            lib = result.path
        torch.ops.load_library(str(lib))
    except (build.BuildError, OSError, RuntimeError) as err:
        STATE.errors["cuda"] = str(err)
        return
    STATE.libraries["cuda"] = str(lib)


def ensure_loaded() -> LoadState:
    """Loads (building if needed) the compiled libraries; safe to call repeatedly.

    Returns:
        The process-wide :class:`LoadState`.
    """
    if STATE.attempted:
        return STATE
    with _LOCK:
        if STATE.attempted:
            return STATE
        _load_cpu()
        if "cpu" in STATE.libraries:  # the CUDA kernels need the schemas of the CPU library
            _load_cuda()
            from cuda_ext import ops

            ops.register_python_parts()
        else:
            STATE.errors["cuda"] = "the CPU library (operator schemas) is unavailable"
        STATE.attempted = True
    return STATE


def status() -> dict[str, str]:
    """Device type -> "loaded from <path>" or the reason the op is unavailable there."""
    state = ensure_loaded()
    out = {dev: f"loaded from {path}" for dev, path in state.libraries.items()}
    out.update({dev: f"unavailable: {why}" for dev, why in state.errors.items()})
    return out
