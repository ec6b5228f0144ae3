"""Ray decides where a study's workers run; Optuna (the study, its heartbeats, samplers and
pruners) and MLflow (parent and trial runs) stay as they are. The only module that
imports ray, and only when `--ray` is given.

- `connect`: a private local Ray on 127.0.0.1 (`local`, no dashboard), the cluster this
  machine joined (`auto`), or `HOST:PORT` / `ray://HOST:PORT`. Ray's token
  authentication stays as the cluster has it.
- `check_stores`: a cluster of several nodes needs stores every node reaches.
- `run`: N Ray tasks, each the trial loop on the plan it is handed. A task whose worker
  or node is lost is replaced by the driver with the trials it still owed; the trial it
  was training becomes FAIL by heartbeat and is tried again.
- Data: a `DataServer` actor on the driver's node vectorizes each representation once
  and puts it in Ray's object store; workers fetch it from there, so a node needs
  neither the archives nor the cache.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import replace

import ray

from pipeline import settings
from pipeline.engine.plan import RayOptions
from pipeline.errors import UserError

log = logging.getLogger("pipeline")
LOCAL = "local"
CANCEL_GRACE = 30.0  # seconds a cancelled worker has to end its run KILLED


class RayWorkers:
    """The executor (`engine.executors`) whose workers are Ray tasks."""

    keeps_data = True  # the driver's data server vectorizes and hands it out
    elsewhere = True

    def __init__(self, plan) -> None:
        self.plan = plan

    def open(self) -> None:
        """The cluster reached, and fit for the stores, before a study exists."""
        connect(self.plan.ray, self.plan.workers)
        check_stores(self.plan.stores.storage, self.plan.stores.tracking)

    def run(self, study, slots: list, progress: Callable[[], None], data) -> list[int]:
        from pipeline.engine.trials import finished_by

        return run(self.plan, slots, data, progress, finished_by(study))

    def close(self) -> None:
        """A private Ray stops with its command; a cluster stays."""
        shutdown()


def connect(options: RayOptions, n_workers: int) -> None:
    """Join (or start) the Ray the options name; one line if it cannot be reached or
    cannot hold the workers."""
    if not ray.is_initialized():
        try:
            if options.address == LOCAL:  # private, on the loopback, stopped with us
                _loopback_only(True)
                ray.init(
                    address="local",
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            else:
                ray.init(address=options.address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise UserError(f"cannot reach Ray at {options.address}: {first}") from None
    total = ray.cluster_resources()
    cpus = per_worker_cpus(options, n_workers)
    if cpus * n_workers > total.get("CPU", 0) + 1e-9:
        raise UserError(
            f"{n_workers} Ray workers of {cpus:g} CPUs need {cpus * n_workers:g}; "
            f"the cluster has {total.get('CPU', 0):g}"
        )
    if options.gpus_per_worker * n_workers > total.get("GPU", 0) + 1e-9:
        raise UserError(
            f"{n_workers} Ray workers of {options.gpus_per_worker:g} GPU need "
            f"{options.gpus_per_worker * n_workers:g}; the cluster has {total.get('GPU', 0):g}"
        )


def per_worker_cpus(options: RayOptions, n_workers: int) -> float:
    if options.cpus_per_worker:
        return options.cpus_per_worker
    return max(1.0, float(int(ray.cluster_resources().get("CPU", 1) // n_workers)))


def check_stores(storage: str, tracking_uri: str) -> None:
    """Several nodes write to the stores at once: SQLite files (or a local MLflow folder)
    reach only one of them."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    local = settings.sqlite_path(storage) is not None
    files = tracking_uri.startswith(("sqlite:", "file:", "/")) or "://" not in tracking_uri
    if len(nodes) > 1 and (local or files):
        raise UserError(
            f"a Ray cluster of {len(nodes)} nodes needs stores every node reaches: "
            "--storage postgresql://... for Optuna and MLFLOW_TRACKING_URI=http://... "
            "(an MLflow tracking server), not SQLite"
        )


def shutdown() -> None:
    if ray.is_initialized():
        ray.shutdown()
    _loopback_only(False)


# Ray maps 127.0.0.1 to the machine's outward address and binds its servers on every
# interface, except where it thinks clusters are unsupported (macOS, Windows): there, one
# node on the loopback. Its own switch for that (an environment variable, read when ray is
# imported, and inherited by the processes a local Ray starts) is the only way to keep a
# private Ray off the network; turned back off when it stops.
_LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _loopback_only(on: bool) -> None:
    # private: Ray reads the switch once, at import; no public call sets it (test_library_internals)
    from ray._private import ray_constants

    if on:
        os.environ[_LOOPBACK_SWITCH] = "0"
        ray_constants.ENABLE_RAY_CLUSTER = False
    elif os.environ.get(_LOOPBACK_SWITCH) == "0":
        del os.environ[_LOOPBACK_SWITCH]
        ray_constants.ENABLE_RAY_CLUSTER = True


# --- the workers --------------------------------------------------------------------------


def run(
    plan,
    slots: list,
    data,
    progress: Callable[[], None],
    finished_by: Callable[[int], int],
) -> list[int]:
    """One Ray task per slot, each running `work` on the plan; a lost one is replaced by
    a task with the trials it still owed (`finished_by(index)`: trials it finished).
    Returns each slot's exit code (0 done, 1 gave up). The models a worker keeps go to
    MLflow as it trains (`engine.kept`), not through the driver."""
    options = plan.ray
    cpus = per_worker_cpus(options, len(slots))
    server = _data_server(plan, data)
    task = _work.options(
        num_cpus=cpus,
        num_gpus=options.gpus_per_worker,
        max_retries=0,  # the driver replaces a lost worker with what it still owed
        runtime_env={"env_vars": _passed_env()},
    )
    running = {task.remote(plan, s, server, cpus): s for s in slots}
    shares = {s.index: s.quota for s in slots}  # a replacement owes the rest of its share
    codes = {s.index: 0 for s in slots}
    try:
        while running:
            done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            progress()
            for ref in done:
                slot = running.pop(ref)
                lost, replacement = _collect(ref, slot, shares[slot.index], finished_by, plan)
                if replacement is not None:
                    running[task.remote(plan, replacement, server, cpus)] = replacement
                elif lost:
                    codes[slot.index] = 1
    except KeyboardInterrupt:
        _cancel(list(running))
        raise
    return [codes[s.index] for s in slots]


def _collect(ref, slot, share: int, finished_by, plan):
    """(lost, replacement): a lost task gets a replacement slot (None when it owed nothing
    more or the deadline has passed).
    `share`: the trials the slot's index owes in all, whoever of its workers finished them."""
    try:
        ray.get(ref)
    except ray.exceptions.RayError as error:
        owed = share - finished_by(slot.index) if share else 0
        first = str(error).strip().splitlines()[0][:200]
        log.warning("Ray worker %d lost (%s); %d trials owed", slot.index, first, max(owed, 0))
        if (share and owed <= 0) or plan.seconds_left() == 0:
            return True, None
        return True, replace(slot, quota=max(owed, 0))
    return False, None


def _cancel(refs: list) -> None:
    """Ctrl-C or SIGTERM: each worker is interrupted (its run ends KILLED, its trial FAIL),
    then killed if it has not stopped after CANCEL_GRACE seconds."""
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=False)
    deadline = time.monotonic() + CANCEL_GRACE
    pending = refs
    while pending and time.monotonic() < deadline:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
    for ref in pending:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)


def _passed_env() -> dict[str, str]:
    """What a worker process takes from the driver's environment: quiet logs, the stores'
    credentials (MLflow's), never the data folders (data comes through Ray)."""
    keep = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    return env | {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}


@ray.remote
def _work(plan, slot, server, cpus: float) -> None:
    """A Ray worker: the trial loop on the plan, data from the server."""
    from pipeline import backends
    from pipeline.engine import studies, trials

    threads = max(1, int(cpus))
    backends.start(plan.backend, threads=threads, quiet=not plan.verbose)
    node = ray.get_runtime_context().get_node_id()
    where = {
        "ray_node": node,
        "host": socket.gethostname(),
        "ray_gpu_ids": ",".join(map(str, ray.get_gpu_ids())) or "none",
        "ray_node_ip": next(n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node),
    }
    studies.quiet_optuna(plan.verbose)
    study = studies.open_study(plan, worker=slot.index)
    trials.work(study, plan, slot, loader=_loader(server), fitter=_fitter(server), tags=where)


def _loader(server) -> Callable:
    def load(options):
        return ray.get(ray.get(server.load.remote(options)))

    return load


def _fitter(server) -> Callable:
    def fitted(options):
        return ray.get(server.fitted.remote(options))

    return fitted


# --- the data -----------------------------------------------------------------------------


@ray.remote(num_cpus=0)
class DataServer:
    """On the driver's node, where the archives are: each representation a worker asks
    for, loaded (vectorized, cached on disk) once and put in Ray's object store."""

    def __init__(self, spec, default_options, default_ref) -> None:
        self.spec = spec
        self.refs = {default_options: default_ref[0]}

    def load(self, options):
        if options not in self.refs:
            from pipeline import datasets

            self.refs[options] = ray.put(datasets.load_dataset(self.spec, options))
        return self.refs[options]

    def fitted(self, options):
        """What the representation's features were fitted with (a kept trial's bundle)."""
        from pipeline import datasets

        return datasets.fitted_for(self.spec, options)


def _data_server(plan, data):
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from pipeline import datasets

    here = ray.get_runtime_context().get_node_id()
    env = {k: v for k, v in os.environ.items() if k.startswith("PIPELINE_")}
    server = DataServer.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
        runtime_env={"env_vars": env},
    ).remote(plan.dataset, datasets.DataOptions(), [ray.put(data)])
    return server
