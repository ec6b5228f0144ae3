"""Several worker processes on one study: each gets its share of trials, threads and GPUs.

A worker is spawned with a picklable function and its arguments (the runner passes its own
`work_in_process` with the plan and the worker's slot); nothing is looked up by name."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline import backends, stopping


def run(
    target: Callable,
    argument_lists: Sequence[tuple],
    progress: Callable[[], None],
    backend: str = "tensorflow",
    quiet: bool = True,
) -> list[int]:
    """Call `target(*arguments)` in one process per argument list (spawned, never forked:
    TensorFlow state does not fork); wait for them while calling `progress()`, and stop them
    all on a signal (SIGINT, SIGTERM, SIGHUP). Returns their exit codes."""
    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // len(argument_lists))
    gpus = visible_gpus()
    procs = [
        context.Process(
            target=_entry,
            args=(target, arguments, threads, gpus[i % len(gpus)] if gpus else None, backend),
            name=f"pipeline-worker-{i}",
        )
        for i, arguments in enumerate(argument_lists)
    ]
    with _children_quiet(quiet):
        for proc in procs:
            proc.start()
    try:
        while any(proc.is_alive() for proc in procs):
            progress()
            time.sleep(1.0)
            stopping.check()
    except KeyboardInterrupt:
        _stop(procs)
        raise
    progress()
    return [proc.exitcode for proc in procs]


@contextlib.contextmanager
def _children_quiet(quiet: bool):
    """TensorFlow's C++ start-up notes (oneDNN, CUDA drivers) kept out of the workers'
    stderr, whatever imports TensorFlow there first (a script's own `import keras`, run
    again as the spawned child's main module): the setting they inherit, not the caller's."""
    key, before = "TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    if quiet and before is None:
        os.environ[key] = "3"
    try:
        yield
    finally:
        if quiet and before is None:
            os.environ.pop(key, None)


def _entry(target: Callable, arguments: tuple, threads: int, gpu: str | None, backend: str) -> None:
    """A worker process: pin its GPU, its Keras backend and its threads before Keras
    starts, then work."""
    stopping.install(second_stops_now=False)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    backends.start(backend, threads)
    try:
        target(*arguments)
    except KeyboardInterrupt:
        sys.exit(130)


def _stop(procs, grace: float = 60.0) -> None:
    """SIGTERM each worker (its trial ends FAIL, its run KILLED), then wait, then kill; a
    second signal kills them at once (the runner then closes what they left open)."""
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + grace
    try:
        for proc in procs:
            while proc.is_alive() and time.monotonic() < deadline and not stopping.hurried():
                proc.join(0.2)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(5)


def quotas(remaining: int, workers: int) -> list[int]:
    """Split `remaining` finished trials over `workers` as evenly as possible."""
    return [remaining // workers + (1 if i < remaining % workers else 0) for i in range(workers)]


NETWORK_FILESYSTEMS = {
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "sshfs",
    "fuse.sshfs",
    "9p",
    "lustre",
    "gpfs",
    "ceph",
    "glusterfs",
    "fuse.glusterfs",
}


def on_network_filesystem(folder: Path) -> bool:
    """Is `folder` on a network filesystem (from /proc/mounts; False where unknown)?"""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return False
    best = max(
        (m for m in mounts if len(m) > 2 and folder.is_relative_to(m[1])),
        key=lambda m: len(m[1]),
        default=None,
    )
    return best is not None and best[2] in NETWORK_FILESYSTEMS


def visible_gpus() -> list[str]:
    """GPU ids for CUDA_VISIBLE_DEVICES, without importing TensorFlow in this process."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [g for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    return [str(i) for i, line in enumerate(listing.stdout.splitlines()) if line.startswith("GPU")]
