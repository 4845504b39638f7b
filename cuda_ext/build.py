"""Build the compiled spectral patch-embedding op (``python -m cuda_ext.build``).

Two shared libraries are built into a cache folder (``cuda_ext/_build/`` unless
``MOSAIC_CUDA_EXT_BUILD_DIR`` says otherwise):

* ``cpu/mosaic_vlm_cpu.so`` -- the operator schemas (``TORCH_LIBRARY``) and the CPU
  kernels, always built, with :func:`torch.utils.cpp_extension.load` (ninja).
* ``cuda/mosaic_vlm_cuda.so`` -- the CUDA kernels (``TORCH_LIBRARY_IMPL(..., CUDA)``),
  built whenever a CUDA toolkit is found (``CUDA_HOME``/``CUDA_PATH``,
  ``/usr/local/cuda`` or ``nvcc`` on ``PATH``) and torch is a CUDA build, even on a
  machine without a GPU. It is compiled with one direct ``nvcc`` call rather than
  ``cpp_extension.load``: torch refuses any toolkit whose CUDA major version differs
  from ``torch.version.cuda`` (``_check_cuda_version`` raises, with no override), and
  picks GPU architectures from the visible GPU. Here the architectures are explicit
  (``sm_80``, ``sm_90`` + ``compute_90`` PTX; ``MOSAIC_CUDA_ARCHS="80;90"`` overrides)
  and a major mismatch links the CUDA runtime statically into the library (as NCCL
  does), so its kernels run next to torch's own runtime on torch's streams.

Each library is rebuilt only when its fingerprint (sources, flags, torch and compiler
versions) changes; ``stamp.json`` records it. A failed build raises
:class:`BuildError` with the compiler's own message.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CSRC = PACKAGE_DIR / "csrc"
HEADERS = [CSRC / "spectral.h"]
CPU_SOURCES = [CSRC / "schema.cpp", CSRC / "cpu" / "spectral_cpu.cpp"]
CUDA_SOURCES = [CSRC / "cuda" / "spectral_cuda.cu"]
CPU_NAME = "mosaic_vlm_cpu"
CUDA_NAME = "mosaic_vlm_cuda"
CPU_CFLAGS = ["-O3", "-fopenmp"]
DEFAULT_CUDA_ARCHS = ("80", "90")


class BuildError(RuntimeError):
    """A library could not be built; the message says why."""


@dataclass
class BuildResult:
    """Outcome of building one library.

    Attributes:
        name: Library name.
        path: The shared library, or None when it was not built.
        seconds: Wall time spent (0 when it was up to date).
        cached: True when an up-to-date build was reused.
        note: What was built, or why nothing was.
    """

    name: str
    path: Path | None
    seconds: float
    cached: bool
    note: str


def build_root() -> Path:
    """Returns the cache folder of the compiled libraries.

    ``$MOSAIC_CUDA_EXT_BUILD_DIR`` if set; else ``cuda_ext/_build`` next to the sources
    when that is writable (a checkout or an editable install); else a per-user cache
    (``$XDG_CACHE_HOME/mosaic-vlm/cuda_ext``) for read-only installs.
    """
    env = os.environ.get("MOSAIC_CUDA_EXT_BUILD_DIR")
    if env:
        return Path(env)
    local = PACKAGE_DIR / "_build"
    if local.exists() or os.access(PACKAGE_DIR, os.W_OK):
        return local
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "mosaic-vlm" / "cuda_ext"


def _torch():  # imported lazily: `python -m cuda_ext.build --help` should be instant
    import torch

    return torch


def _cpp_extension():
    """Imports torch.utils.cpp_extension with CUDA_HOME pointing at the real toolkit.

    torch guesses CUDA_HOME from `which nvcc`, which is wrong when nvcc on PATH is a
    wrapper script (here /usr/local/bin/nvcc -> CUDA_HOME=/usr/local), and logs a
    warning on machines without a GPU; neither matters for this build.
    """
    if "CUDA_HOME" not in os.environ and "CUDA_PATH" not in os.environ:
        nvcc = find_nvcc()
        if nvcc is not None and (nvcc.parent.parent / "include" / "cuda_runtime.h").exists():
            os.environ["CUDA_HOME"] = str(nvcc.parent.parent)
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension
    finally:
        logger.setLevel(level)
    return cpp_extension


def _hash(parts: list[str], files: list[Path]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _lock(folder: Path) -> Iterator[None]:
    """Holds an exclusive file lock so concurrent processes build once."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as fh:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - non-POSIX
            pass
        yield


def _stamp_ok(folder: Path, lib: Path, fingerprint: str) -> bool:
    stamp = folder / "stamp.json"
    if not (lib.exists() and stamp.exists()):
        return False
    try:
        return json.loads(stamp.read_text()).get("fingerprint") == fingerprint
    except (OSError, ValueError):
        return False


def _write_stamp(folder: Path, fingerprint: str, seconds: float, note: str) -> None:
    data = {"fingerprint": fingerprint, "seconds": round(seconds, 1), "note": note}
    (folder / "stamp.json").write_text(json.dumps(data, indent=2))


# ----------------------------------------------------------------------------- CPU


def cpu_fingerprint() -> str:
    """Fingerprint of the CPU library's inputs."""
    torch = _torch()
    parts = [torch.__version__, os.environ.get("CXX", "c++"), *CPU_CFLAGS]
    return _hash(parts, HEADERS + CPU_SOURCES)


def cpu_library_path() -> Path:
    """Where the CPU library is (or will be) built."""
    return build_root() / "cpu" / f"{CPU_NAME}.so"


def cpu_library_if_fresh() -> Path | None:
    """Returns the CPU library if it is built from the current sources, else None."""
    lib = cpu_library_path()
    return lib if _stamp_ok(lib.parent, lib, cpu_fingerprint()) else None


def build_cpu(force: bool = False, verbose: bool = False) -> BuildResult:
    """Builds the schema + CPU kernels library (and loads it into this process).

    Raises:
        BuildError: The compiler failed; the message has its output.
    """
    cpp_extension = _cpp_extension()
    lib = cpu_library_path()
    folder = lib.parent
    fingerprint = cpu_fingerprint()
    with _lock(folder):
        if not force and _stamp_ok(folder, lib, fingerprint):
            return BuildResult(CPU_NAME, lib, 0.0, True, "up to date")
        start = time.perf_counter()
        try:
            cpp_extension.load(
                name=CPU_NAME,
                sources=[str(s) for s in CPU_SOURCES],
                extra_cflags=CPU_CFLAGS,
                build_directory=str(folder),
                is_python_module=False,
                verbose=verbose,
            )
        except Exception as err:  # cpp_extension raises RuntimeError/OSError/CalledProcessError
            raise BuildError(f"building the CPU op failed: {err}") from err
        seconds = time.perf_counter() - start
        note = f"CPU op ({', '.join(s.name for s in CPU_SOURCES)}), -O3 -fopenmp"
        _write_stamp(folder, fingerprint, seconds, note)
    return BuildResult(CPU_NAME, lib, seconds, False, note)


# ---------------------------------------------------------------------------- CUDA


def find_nvcc() -> Path | None:
    """Locates nvcc: $CUDA_HOME/$CUDA_PATH, /usr/local/cuda, then PATH."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    for home in candidates:
        if home and (Path(home) / "bin" / "nvcc").exists():
            return Path(home) / "bin" / "nvcc"
    found = shutil.which("nvcc")
    return Path(found) if found else None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(v) for v in version.split("."))


def nvcc_version(nvcc: Path) -> str:
    """Returns nvcc's release, e.g. "13.0"."""
    out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"release (\d+\.\d+)", out.stdout)
    if match is None:
        raise BuildError(f"cannot read the CUDA release from `{nvcc} --version`:\n{out.stdout}")
    return match.group(1)


def cuda_archs() -> list[str]:
    """GPU architectures to compile for (compute capability without the dot)."""
    env = os.environ.get("MOSAIC_CUDA_ARCHS")
    archs = [a.strip().replace(".", "") for a in env.split(";")] if env else []
    archs = [a for a in archs if a] or list(DEFAULT_CUDA_ARCHS)
    torch = _torch()
    if torch.cuda.is_available():  # make sure the local GPU is covered
        major, minor = torch.cuda.get_device_capability()
        if f"{major}{minor}" not in archs:
            archs.append(f"{major}{minor}")
    return sorted(set(archs), key=int)


def _nvcc_command(nvcc: Path, out: Path, archs: list[str], static_runtime: bool) -> list[str]:
    torch = _torch()
    cpp_extension = _cpp_extension()
    abi = int(getattr(torch._C, "_GLIBCXX_USE_CXX11_ABI", True))
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    gencode.append(f"-gencode=arch=compute_{archs[-1]},code=compute_{archs[-1]}")  # PTX
    includes = [f"-isystem={p}" for p in cpp_extension.include_paths("cuda")]
    torch_lib = cpp_extension.library_paths("cpu")[0]
    # The toolkit's libraries: lib64 in most layouts, lib in some (e.g. CUDA 13 images).
    toolkit_libs = [f"-L{d}" for d in (nvcc.parent.parent / "lib64", nvcc.parent.parent / "lib")
                    if d.is_dir()]
    return [
        str(nvcc),
        "-O3",
        "-std=c++20",
        "--shared",
        "-Xcompiler=-fPIC",
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
        *cpp_extension.COMMON_NVCC_FLAGS,
        "--threads=0",
        *gencode,
        *includes,
        *(str(s) for s in CUDA_SOURCES),
        "-o",
        str(out),
        f"-L{torch_lib}",
        *toolkit_libs,
        f"-Xlinker=-rpath={torch_lib}",
        "-lc10",
        "-lc10_cuda",
        "-ltorch_cpu",
        "-ltorch_cuda",
        f"-cudart={'static' if static_runtime else 'shared'}",
    ]


def cuda_library_path() -> Path:
    """Where the CUDA library is (or will be) built."""
    return build_root() / "cuda" / f"{CUDA_NAME}.so"


def _cuda_plan() -> tuple[Path | None, str, list[str], bool, str]:
    """Returns (nvcc, fingerprint, archs, static_runtime, reason-if-no-nvcc)."""
    torch = _torch()
    nvcc = find_nvcc()
    if torch.version.cuda is None:
        return None, "", [], False, "torch is a CPU-only build"
    if nvcc is None:
        return None, "", [], False, "no CUDA toolkit (set CUDA_HOME or put nvcc on PATH)"
    release = nvcc_version(nvcc)
    static_runtime = release.split(".")[0] != torch.version.cuda.split(".")[0]
    archs = cuda_archs()
    command = _nvcc_command(nvcc, Path("out.so"), archs, static_runtime)
    parts = [torch.__version__, release, *command]
    return nvcc, _hash(parts, HEADERS + CUDA_SOURCES), archs, static_runtime, ""


def cuda_library_if_fresh() -> Path | None:
    """Returns the CUDA library if it is built from the current sources, else None."""
    lib = cuda_library_path()
    if not lib.exists():
        return None
    nvcc, fingerprint, *_ = _cuda_plan()
    return lib if nvcc is not None and _stamp_ok(lib.parent, lib, fingerprint) else None


def build_cuda(force: bool = False, verbose: bool = False) -> BuildResult:
    """Builds the CUDA kernels library when a CUDA toolkit is present.

    Returns:
        The result; ``path`` is None (with the reason in ``note``) when no toolkit or a
        CPU-only torch makes a CUDA build impossible.

    Raises:
        BuildError: A toolkit exists but nvcc failed; the message has its output.
    """
    torch = _torch()
    nvcc, fingerprint, archs, static_runtime, reason = _cuda_plan()
    if nvcc is None:
        return BuildResult(CUDA_NAME, None, 0.0, False, f"skipped: {reason}")
    lib = cuda_library_path()
    folder = lib.parent
    release = nvcc_version(nvcc)
    note = (
        f"CUDA op for {', '.join('sm_' + a for a in archs)} (nvcc {release}, torch CUDA "
        f"{torch.version.cuda}, {'static' if static_runtime else 'shared'} cudart)"
    )
    with _lock(folder):
        if not force and _stamp_ok(folder, lib, fingerprint):
            return BuildResult(CUDA_NAME, lib, 0.0, True, "up to date")
        if static_runtime:
            print(
                f"cuda_ext: nvcc {release} and torch's CUDA {torch.version.cuda} differ in "
                "major version; linking the CUDA runtime statically (the driver must support "
                f"CUDA {max(release, torch.version.cuda, key=_version_key)})",
                file=sys.stderr,
            )
        cmd = _nvcc_command(nvcc, lib.with_suffix(".tmp.so"), archs, static_runtime)
        if verbose:
            print(" ".join(cmd), file=sys.stderr)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            log = (proc.stdout + proc.stderr).strip()
            raise BuildError(
                f"building the CUDA op failed (nvcc exit {proc.returncode}):\n{log[-6000:]}"
            )
        lib.with_suffix(".tmp.so").replace(lib)  # atomic: never a half-written library
        _write_stamp(folder, fingerprint, seconds, note)
    return BuildResult(CUDA_NAME, lib, seconds, False, note)


# ---------------------------------------------------------------------------- main


def _report(result: BuildResult) -> None:
    where = result.path.relative_to(Path.cwd()) if result.path and result.path.is_relative_to(
        Path.cwd()) else result.path
    if result.path is None:
        print(f"cuda_ext: {result.name}: {result.note}")
    elif result.cached:
        print(f"cuda_ext: {result.name}: up to date ({where})")
    else:
        print(f"cuda_ext: {result.name}: built in {result.seconds:.1f} s -> {where}: {result.note}")


def main(argv: list[str] | None = None) -> int:
    """Builds the CPU op, then the CUDA op when a toolkit exists; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--cpu-only", action="store_true", help="do not build the CUDA op")
    parser.add_argument("--verbose", action="store_true", help="show compiler commands")
    args = parser.parse_args(argv)
    status = 0
    steps = [build_cpu] if args.cpu_only else [build_cpu, build_cuda]
    for step in steps:
        try:
            _report(step(force=args.force, verbose=args.verbose))
        except BuildError as err:
            print(f"cuda_ext: ERROR: {err}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
