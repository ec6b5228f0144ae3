"""`make gpu-kit`: what a call to the lent GPU machine carries, in `.gpu-kit/` (ignored).

That machine has Python 3.12 with JAX, PyTorch, NumPy, pandas, scikit-learn, typer and
more, but no TensorFlow, Keras, Optuna or MLflow, and reaches no registry. So the call
carries:
- wheels for CPython 3.12 on manylinux x86-64 of what it lacks (`WHEELS`, with the
  versions installed here), installed there with `pip install --no-deps --target`;
- IMDB's cached bags of words (the seed recipe's representation), which stand in for the
  archive: vectorizing raw text would need TensorFlow. Re-saved compressed, with 16-bit
  column indices, to fit the 64 MiB a call carries with the working tree.
Prints each part's size and the total, and fails when it would not fit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / ".gpu-kit"
LIMIT = 64 * 2**20  # what one call carries, the working tree included
# What the lent machine's image lacks, of what `pipeline search` imports (its package list
# is in the device tool's KINDS.md): Keras, Optuna and MLflow's client (mlflow-skinny, not
# the server's mlflow) with their own needs.
WHEELS = (
    "keras",
    "namex",
    "optree",
    "optuna",
    "alembic",
    "mako",
    "sqlalchemy",
    "colorlog",
    "mlflow-skinny",
    "mlflow-tracing",
    "cachetools",
    "databricks-sdk",
    "google-auth",
    "pyasn1",
    "pyasn1-modules",
    "fastapi",
    "starlette",
    "annotated-doc",
    "gitpython",
    "gitdb",
    "smmap",
    "importlib-metadata",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-proto",
    "opentelemetry-semantic-conventions",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
    "typing-extensions",
    "python-dotenv",
    "sqlparse",
    "uvicorn",
    "cloudpickle",  # MLflow's pyfunc models; a notebook's builder function
    "cryptography",  # MLflow's registry tables
    "cffi",
    "pycparser",
)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64")
PLATFORMS += ("manylinux2014_x86_64", "manylinux1_x86_64", "manylinux_2_24_x86_64")


def main() -> None:
    shutil.rmtree(KIT, ignore_errors=True)
    wheels = download_wheels(KIT / "wheels")
    cache = pack_imdb_cache(KIT / "data" / "pipeline-cache")
    tree = working_tree_bytes()
    parts = {"wheels": wheels, "IMDB cache": cache, "working tree": tree}
    total = sum(parts.values())
    for name, size in parts.items():
        print(f"{name:>13}: {size / 2**20:6.1f} MiB")
    print(f"{'total':>13}: {total / 2**20:6.1f} MiB of {LIMIT / 2**20:.0f} MiB")
    if total > LIMIT:
        sys.exit("the kit does not fit in one call")


def download_wheels(folder: Path) -> int:
    pins = [f"{name}=={metadata.version(name)}" for name in WHEELS]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    command += ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp"]
    subprocess.run([*command, *platforms, "-d", str(folder), *pins], check=True)
    return sum(f.stat().st_size for f in folder.glob("*.whl"))


def pack_imdb_cache(folder: Path) -> int:
    """IMDB's cache for the recipe's settings, built here if need be, then re-saved
    compressed (its values are all ones, its column indices fit in 16 bits)."""
    import numpy as np

    from pipeline import datasets
    from pipeline.datasets import registry, text

    datasets.load_dataset("imdb")
    data_dir = registry.paths.data_dir()
    spec = datasets.spec_of("imdb")
    where = registry.location(spec, data_dir)
    built = registry.cache_file(spec, where, data_dir, datasets.DataOptions())
    folder.mkdir(parents=True)
    with np.load(built) as npz:
        arrays = {
            k: npz[k].astype("uint16") if k.endswith("_indices") else npz[k] for k in npz.files
        }
    np.savez_compressed(folder / built.name, **arrays)
    shutil.copy(text.fitted_path(built), folder / text.fitted_path(built).name)
    sources = json.loads((text.cache_dir(data_dir) / text.SOURCES).read_text())
    (folder / text.SOURCES).write_text(json.dumps({spec.source.fname: sources[spec.source.fname]}))
    return sum(f.stat().st_size for f in folder.iterdir())


def working_tree_bytes() -> int:
    """What travels besides the kit: tracked files and untracked ones git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    paths = [ROOT / os.fsdecode(p) for p in listed if p]
    return sum(p.stat().st_size for p in paths if p.is_file())


if __name__ == "__main__":
    main()
