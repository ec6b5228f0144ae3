"""Run an Optuna study whose trials train Keras models and log everything to MLflow."""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import sqlalchemy

from pipeline import (
    datasets,
    plots,
    report,
    settings,
    spaces,
    stopping,
    tracking,
    workers,
)
from pipeline.errors import UserError
from pipeline.trial import (
    TrainResult,
    configure_devices,
    describe_params,
    metric_name,
    train_and_evaluate,
)

log = logging.getLogger("pipeline")
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
DONE = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
STORAGE_ERRORS = (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError)


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped the study; the message says how to resume."""


@dataclass(frozen=True)
class SearchConfig:
    dataset: str
    space: Path
    n_trials: int = 30
    timeout: float | None = 600
    study_name: str | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    storage: str | None = None
    tracking_uri: str | None = None
    verbose: bool = False
    workers: int = 1
    heartbeat: int = 10  # seconds; a trial silent for 3 beats is failed and retried
    objective: str | None = None  # "accuracy" (or "mae"), or two: "accuracy,params|latency"

    @property
    def name(self) -> str:
        return self.study_name or self.dataset


@dataclass
class Outcome:
    study: optuna.Study
    parent_run_id: str | None
    ran: int
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True)
class Plan:
    """What one invocation runs: how a trial gets its params and seed, and how many trials."""

    dataset: str
    n_trials: int
    timeout: float | None
    params_for: Callable[[optuna.Trial], dict[str, Any]]
    seed_for: Callable[[optuna.Trial], int]
    tags: dict[str, Any]  # for the parent and every child run
    parent_params: dict[str, Any]
    tracking_uri: str | None = None
    verbose: bool = False
    workers: int = 1
    objectives: tuple[str, ...] = ()  # two: a multi-objective study (no pruning)


@dataclass(frozen=True)
class Join:
    """Where a worker logs: the invocation's parent run, and a folder for its best model."""

    experiment_id: str
    parent_id: str
    folder: str
    index: int = 0
    quota: int = 0  # finished trials this worker runs (0: until the study has n_trials)


# --- building blocks -----------------------------------------------------------------------


def make_sampler(name: str, seed: int, space: spaces.Space) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(spaces.grid(space), seed=seed)
    raise UserError(f"unknown sampler {name!r}; use one of {', '.join(SAMPLERS)}")


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UserError(f"unknown pruner {name!r}; use one of {', '.join(PRUNERS)}")


class RetryStale:
    """Called for a trial whose worker stopped beating (killed, machine lost): Optuna marks it
    FAIL and queues a retry with the same params; its MLflow run, which MLflow would leave
    RUNNING forever, is set KILLED."""

    def __init__(self, tracking_uri: str | None, max_retry: int = 3) -> None:
        self.tracking_uri = tracking_uri
        with warnings.catch_warnings():  # "experimental" since Optuna 2.8
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.retry(study, trial)
        log.warning("trial %d lost its worker (no heartbeat): FAIL, queued again", trial.number)
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:
            tracker = tracking.Tracker(settings.tracking_uri(self.tracking_uri))
            tracker.fail(run_id, "worker lost: no heartbeat", tracking.KILLED)


def open_storage(
    url: str, heartbeat: int = 0, on_stale: RetryStale | None = None
) -> optuna.storages.BaseStorage:
    """Optuna's RDB storage; with `heartbeat` seconds, trials of dead workers are retried."""
    if (database := settings.sqlite_path(url)) is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    # several local workers share one SQLite file: wait for its lock instead of failing
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    beats = (
        {
            "heartbeat_interval": heartbeat,
            "grace_period": 3 * heartbeat,
            "heartbeat_stale_trial_callback": on_stale,
        }
        if heartbeat
        else {}
    )
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, **beats)
    except Exception as error:  # SQLAlchemy raises many types for bad or unreachable URLs
        first = str(error).strip().splitlines()[0]
        raise UserError(f"cannot open Optuna storage {settings.mask(url)}: {first}") from None


def direction(task: str) -> str:
    return "minimize" if task == "regression" else "maximize"


def parse_objectives(task: str, spec: str | None) -> tuple[str, ...]:
    """`--objective`: the task's metric alone, or with `params` or `latency` (minimized)."""
    metric = metric_name(task)
    names = tuple(n.strip() for n in (spec or metric).split(","))
    if (
        names[0] != metric
        or len(names) > 2
        or any(n not in report.SECOND_METRIC for n in names[1:])
    ):
        raise UserError(f"--objective {spec!r}: use {metric}, {metric},params or {metric},latency")
    return names


def directions(task: str, objectives: tuple[str, ...] = ()) -> list[str]:
    return [direction(task)] + ["minimize"] * (len(objectives) - 1)


def is_multi(study: optuna.Study) -> bool:
    return len(study.directions) > 1


def open_study(
    name: str,
    storage_url: str | None,
    task: str,
    sampler: Callable[[int], optuna.samplers.BaseSampler],
    pruner: optuna.pruners.BasePruner,
    heartbeat: int = 10,
    tracking_uri: str | None = None,
    objectives: tuple[str, ...] = (),
) -> optuna.Study:
    """Create the study, or load it to resume; the sampler seed moves on with each resume."""
    url = settings.storage_url(storage_url)
    storage = open_storage(url, heartbeat, RetryStale(tracking_uri))
    try:
        existing = len(optuna.load_study(study_name=name, storage=storage).trials)
    except KeyError:
        existing = 0
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        load_if_exists=True,
        directions=directions(task, objectives),
        sampler=sampler(existing),
        pruner=pruner,
    )
    if [d.name.lower() for d in study.directions] != directions(task, objectives):
        raise UserError(
            f"study {name!r} exists with other objectives or directions; choose --study NAME"
        )
    study.set_user_attr("val_metric", "val_" + metric_name(task))
    study.set_user_attr("objectives", list(objectives or [metric_name(task)]))
    return study


def finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=DONE))


# --- one trial -------------------------------------------------------------------------------


def pruning_hook(trial: optuna.Trial, metric: str):
    def on_epoch(epoch: int, logs: dict[str, float]) -> bool:
        trial.report(logs[metric], step=epoch + 1)
        return trial.should_prune()

    return on_epoch


def final_figures(result: TrainResult) -> dict[str, float]:
    """The last epoch's validation figures, the test figures, and per-fold values."""
    figures = {f"final_{k}": v[-1] for k, v in result.history.items() if k.startswith("val_")}
    if len(result.fold_values) > 1:
        figures |= {f"fold_{i}_{result.val_metric}": v for i, v in enumerate(result.fold_values, 1)}
    return figures | result.test


def log_result(
    tracker: tracking.Tracker,
    run_id: str,
    result: TrainResult,
    class_names: tuple,
    summary: str | None = None,
) -> None:
    """Per-epoch metrics, final figures and the trial's artifacts (`summary`: the model's)."""
    finals = final_figures(result) | {
        "n_params": result.n_params,
        "latency_ms": result.latency_ms,
        "train_seconds": result.seconds,
        "epochs_run": result.epochs_run,
    }
    tracker.log_metrics(run_id, result.history, finals)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        frame = pd.DataFrame(result.history)
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="epoch")
        frame.to_csv(folder / "history.csv")
        plots.learning_curves(
            result.history, result.val_metric.removeprefix("val_"), folder / "learning_curves.png"
        )
        if summary is not None:
            (folder / "model_summary.txt").write_text(summary)
        if result.test_pred is not None and class_names:
            plots.confusion_matrix(
                result.test_true,
                _classes(result.test_pred),
                class_names,
                folder / "confusion_matrix.png",
            )
        tracker.log_artifacts(run_id, folder)


def _summary(model) -> str:
    buffer = io.StringIO()
    model.summary(print_fn=lambda line, **_: buffer.write(line + "\n"))
    return buffer.getvalue()


def _classes(pred: np.ndarray) -> np.ndarray:
    return pred.argmax(axis=1) if pred.shape[1] > 1 else (pred[:, 0] > 0.5).astype(int)


class BestModel:
    """Keeps the best model a worker trained on disk (with its value), for the parent run."""

    def __init__(self, folder: Path, index: int, minimize: bool) -> None:
        self.path = folder / f"best-{index}.keras"
        self.minimize, self.value = minimize, None

    def offer(self, result: TrainResult) -> None:
        if result.model is None:
            return
        better = self.value is None or (
            result.val_value < self.value if self.minimize else result.val_value > self.value
        )
        if better:
            self.value = result.val_value
            result.model.save(self.path)
            self.path.with_suffix(".value").write_text(repr(self.value))

    @staticmethod
    def pick(folder: Path, minimize: bool) -> Path | None:
        """The best of the workers' best models."""
        found = {p: float(p.with_suffix(".value").read_text()) for p in folder.glob("best-*.keras")}
        return (min if minimize else max)(found, key=found.get) if found else None


class Objective:
    """`objective(trial)`: params from the plan, train with pruning, log one child run.

    A finished trial's plots and MLflow logging run on a background thread while the next
    trial trains (about 0.5 s of a 4 s IMDB trial); `flush()` waits for them."""

    def __init__(self, plan: Plan, data, tracker, experiment_id, parent_id, best) -> None:
        self.plan, self.data, self.tracker = plan, data, tracker
        self.experiment_id, self.parent_id, self.best = experiment_id, parent_id, best
        self.logging = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-log")
        self.pending: list[Future] = []
        self.representations: dict[datasets.DataOptions, Any] = {}

    def data_for(self, params: dict[str, Any]):
        """The dataset as the trial's representation params (vocabulary, n-grams, output
        mode, headline) build it: read from the disk cache, and kept for the next trials."""
        options = data_options(params)
        if options == datasets.DataOptions():
            return self.data
        if options not in self.representations:
            if len(self.representations) >= 3:  # a few in memory; the rest stay on disk
                self.representations.pop(next(iter(self.representations)))
            self.representations[options] = datasets.load_dataset(self.plan.dataset, options)
        return self.representations[options]

    def flush(self) -> None:
        """Wait for the background logging; its first error is raised here."""
        pending, self.pending = self.pending, []
        for future in pending:
            future.result()

    def _finish(self, run_id: str, result: TrainResult, summary: str | None, state: str):
        log_result(self.tracker, run_id, result, self.data.class_names, summary)
        self.tracker.set_tags(run_id, {"trial_state": state})
        self.tracker.end_run(run_id, tracking.FINISHED)

    def __call__(self, trial: optuna.Trial) -> float:
        params, seed = self.plan.params_for(trial), self.plan.seed_for(trial)
        tags = self.plan.tags | {
            "trial_number": trial.number,
            "trial_state": "RUNNING",
            "worker_pid": os.getpid(),
        }
        run_id = self.tracker.start_run(
            self.experiment_id, f"trial-{trial.number}", self.parent_id, tags
        )
        trial.set_user_attr("mlflow_run_id", run_id)
        self.tracker.log_params(run_id, describe_params(params) | {"seed": seed})
        result = self._train(trial, params, seed, run_id)
        state = "PRUNED" if result.stopped_by == "pruned" else "COMPLETE"
        summary = _summary(result.model) if result.model is not None else None
        self._remember(trial, result)
        if any(f.done() for f in self.pending):
            self.flush()  # surface a logging error before training on
        detached = replace(result, model=None)  # the thread never touches Keras objects
        self.pending.append(self.logging.submit(self._finish, run_id, detached, summary, state))
        if state == "PRUNED":
            raise optuna.TrialPruned(f"pruned at epoch {result.epochs_run}")
        if len(self.plan.objectives) > 1:
            return result.val_value, getattr(result, report.SECOND_METRIC[self.plan.objectives[1]])
        return result.val_value

    def _train(self, trial, params, seed: int, run_id: str) -> TrainResult:
        hook = pruning_hook(trial, "val_" + metric_name(self.data.task))
        if len(self.plan.objectives) > 1:
            hook = None  # Optuna prunes single-objective studies only
        try:
            data = self.data_for(params)
            return train_and_evaluate(
                params, data, seed=seed, on_epoch=hook, verbose=2 if self.plan.verbose else 0
            )
        except BaseException as error:
            trial.set_user_attr("error", str(error) or type(error).__name__)
            self.tracker.fail(run_id, error)
            raise

    def _remember(self, trial, result: TrainResult) -> None:
        trial.set_user_attr("val_metric", result.val_metric)
        trial.set_user_attr("epochs_run", result.epochs_run)
        trial.set_user_attr("seconds", round(result.seconds, 2))
        for key, value in final_figures(result).items():
            trial.set_user_attr(key, value)
        if result.stopped_by != "pruned":
            self.best.offer(result)


class Progress:
    """A bar of the study's finished trials (every worker's), with the best value so far."""

    def __init__(self, study: optuna.Study, n_trials: int) -> None:
        from tqdm.auto import tqdm

        self.study = study
        self.bar = tqdm(
            total=n_trials,
            initial=finished(study),
            unit="trial",
            desc=f"study {study.study_name}",
            dynamic_ncols=True,
        )

    def __call__(self) -> None:
        self.bar.n = finished(self.study)
        self.bar.set_postfix_str(_best_text(self.study), refresh=True)

    def close(self) -> None:
        self.bar.close()


class StopRules:
    """Stop when this worker has finished its quota of trials, when the study has
    `n_trials` finished trials, or after `max_failures` failed trials in a row here."""

    def __init__(self, n_trials: int, quota: int, max_failures: int = 5) -> None:
        self.n_trials, self.quota, self.max_failures = n_trials, quota, max_failures
        self.done = self.failures = 0

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        stopping.check()  # Ctrl-C / SIGTERM between two trials: start no other
        failed = trial.state == optuna.trial.TrialState.FAIL
        self.failures = self.failures + 1 if failed else 0
        self.done += trial.state in DONE
        if failed:
            log.warning("trial %d failed: %s", trial.number, trial.user_attrs.get("error", "?"))
        if (self.quota and self.done >= self.quota) or finished(study) >= self.n_trials:
            study.stop()
        elif self.failures >= self.max_failures:
            log.warning("stopping after %d failed trials in a row", self.failures)
            study.stop()


def _best_text(study: optuna.Study) -> str:
    if is_multi(study):
        return f"{len(study.best_trials)} trials on the Pareto front"
    best = best_trial(study)
    if best is None:
        return "no completed trial yet"
    return f"best {study.user_attrs.get('val_metric')}={best.value:.4f} (trial {best.number})"


# --- the runner ------------------------------------------------------------------------------


def run_study(cfg: SearchConfig, join: Join | None = None) -> Outcome:
    """Check the inputs, open the study, and run it to `n_trials` finished trials
    (`join`: as one worker of another invocation)."""
    quiet_optuna(cfg.verbose)
    if cfg.n_trials < 1:
        raise UserError(f"--n-trials must be at least 1, got {cfg.n_trials}")
    spec = datasets.get_spec(cfg.dataset)
    space = spaces.load(cfg.space, task=spec.task)
    if space.dataset and space.dataset != cfg.dataset:
        raise UserError(f"{cfg.space}: written for dataset {space.dataset!r}, not {cfg.dataset!r}")
    if "embedding" in space.families() and spec.task == "regression":
        raise UserError(f"{cfg.space}: the embedding family needs a text dataset")
    make_sampler(cfg.sampler, cfg.seed, space)  # a bad sampler fails before the study exists
    objectives = parse_objectives(spec.task, cfg.objective)
    pruner = cfg.pruner if len(objectives) == 1 else "none"  # none for two objectives
    url = settings.storage_url(cfg.storage)
    check_workers(url, cfg.workers)
    ready = None if join else preflight(cfg.dataset, cfg.tracking_uri)
    study = open_study(
        cfg.name,
        cfg.storage,
        spec.task,
        lambda done: make_sampler(cfg.sampler, cfg.seed + done + 7919 * worker_index(join), space),
        make_pruner(pruner),
        cfg.heartbeat,
        cfg.tracking_uri,
        objectives,
    )
    plan = Plan(
        cfg.dataset,
        cfg.n_trials,
        cfg.timeout,
        params_for=lambda trial: spaces.suggest(trial, space),
        seed_for=lambda trial: cfg.seed + trial.number,
        tags={
            "study": cfg.name,
            "sampler": cfg.sampler,
            "pruner": pruner,
            "objectives": ",".join(objectives),
        },
        parent_params={
            "dataset": cfg.dataset,
            "space": str(cfg.space),
            "n_trials": cfg.n_trials,
            "timeout": cfg.timeout,
            "seed": cfg.seed,
            "storage": settings.mask(settings.storage_url(cfg.storage)),
        },
        tracking_uri=cfg.tracking_uri,
        verbose=cfg.verbose,
        workers=cfg.workers,
        objectives=objectives,
    )
    return execute(study, plan, "search", join, (__name__, "run_study", (cfg,)), ready)


def worker_index(join: Join | None) -> int:
    """Workers seed their samplers apart, or they would all propose the same trials."""
    return join.index if join else 0


def quiet_optuna(verbose: bool) -> None:
    # failed trials get one line from StopRules; Optuna's own warning carries a traceback
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.ERROR)


def data_options(params: dict[str, Any]) -> datasets.DataOptions:
    """The feature settings a trial's params ask for (the seeds' defaults otherwise): bags of
    words for the mlp family; token ids or, with an encoder, its vectors for embeddings."""
    changes = {k: params[k] for k in spaces.REPRESENTATION if k in params}
    if params.get("family") == "embedding" and params.get("encoder"):
        changes = {"output_mode": "encoder", "encoder": params["encoder"]}
    elif params.get("family") == "embedding":
        changes = {"output_mode": "int", "sequence_length": 200} | changes
    return datasets.with_options(datasets.DataOptions(), **changes)


def preflight(dataset: str, tracking_uri: str | None) -> tuple[Any, tracking.Tracker]:
    """Read the data and reach the tracking store before any study or run exists, so a bad
    archive or an unreachable server leaves nothing half-written."""
    data = datasets.load_dataset(dataset)
    tracker = tracking.Tracker(settings.tracking_uri(tracking_uri))
    tracker.experiment(dataset)
    return data, tracker


def check_workers(storage_url: str, n_workers: int) -> None:
    """SQLite serves a few local processes; on a network filesystem its locks are unsafe."""
    if n_workers < 1:
        raise UserError(f"--workers must be at least 1, got {n_workers}")
    database = settings.sqlite_path(storage_url)
    if n_workers == 1 or database is None:
        return
    folder = database.resolve().parent
    if n_workers > 8 or workers.on_network_filesystem(folder):
        raise UserError(
            f"{n_workers} workers on SQLite in {folder} are not safe (network "
            "filesystem or more than 8 workers); use --storage postgresql://..."
        )


def execute(
    study: optuna.Study,
    plan: Plan,
    kind: str,
    join: Join | None = None,
    work: workers.Work | None = None,
    ready: tuple[Any, tracking.Tracker] | None = None,
) -> Outcome:
    """Open a parent run, run the missing trials as its children (here, or in `plan.workers`
    processes that each call `work(join=...)`), then log the summary to the parent.
    `ready`: the data and tracker from `preflight`."""
    if join is not None:  # a worker process of another invocation
        _work(study, plan, join)
        return Outcome(study, join.parent_id, 0)
    remaining = plan.n_trials - finished(study)
    if remaining <= 0:
        log.info("study %r already has %d finished trials", study.study_name, finished(study))
        return Outcome(study, None, 0, report.trials_frame(study, top=10))
    data, tracker = ready or preflight(plan.dataset, plan.tracking_uri)
    experiment_id = tracker.experiment(plan.dataset)
    tags = plan.tags | {"kind": kind, "workers": plan.workers}
    parent_id = tracker.start_run(experiment_id, f"{study.study_name}-{kind}", tags=tags)
    tracker.log_params(parent_id, plan.parent_params)
    before = len(study.trials)
    with tempfile.TemporaryDirectory() as tmp:
        join = Join(experiment_id, parent_id, tmp, quota=remaining)
        progress = Progress(study, plan.n_trials)
        try:
            if plan.workers > 1:
                workers.run(work, join, plan.workers, remaining, progress)
                _top_up(study, plan, join, progress, data)
            else:
                _work(study, plan, join, progress, data)
        except KeyboardInterrupt:
            tracker.end_run(parent_id, tracking.KILLED)
            raise Interrupted(
                f"interrupted; run the same command again to resume study {study.study_name!r} "
                f"({finished(study)}/{plan.n_trials} trials done)"
            ) from None
        except BaseException as error:
            tracker.end_run(parent_id, tracking.FAILED)
            lost = storage_error(error)
            if lost is None:
                raise
            raise UserError(
                f"lost the Optuna storage ({str(lost).strip().splitlines()[0][:200]}); finished "
                "trials are saved: run the same command again once it is back"
            ) from None
        finally:
            progress.close()
        sweep(study, tracker, plan.dataset)
        table = report.trials_frame(study, top=10)
        _log_parent(tracker, parent_id, study, table, Path(tmp))
    tracker.end_run(parent_id, tracking.FINISHED)
    return Outcome(study, parent_id, len(study.trials) - before, table)


def storage_error(error: BaseException | None) -> BaseException | None:
    """The storage error behind `error`, if any (Optuna 5.0 can mask a failed `tell` with an
    UnboundLocalError raised in its own `finally`)."""
    while error is not None:
        if isinstance(error, STORAGE_ERRORS):
            return error
        error = error.__cause__ or error.__context__
    return None


def _top_up(study: optuna.Study, plan: Plan, join: Join, progress: Progress, data) -> None:
    """A worker died (its quota unmet): run the missing trials here, so the study ends
    with exactly `n_trials` finished ones."""
    missing = plan.n_trials - finished(study)
    if missing > 0:
        log.warning("workers left %d trials unfinished; running them here", missing)
        _work(study, plan, replace(join, index=plan.workers, quota=missing), progress, data)


def sweep(study: optuna.Study, tracker: tracking.Tracker, experiment: str) -> None:
    """Trials whose worker died past the grace period become FAIL (and are retried); MLflow
    runs left RUNNING by a trial Optuna no longer runs are set KILLED."""
    with warnings.catch_warnings():  # "experimental" since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    running = {
        t.number
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    }
    where = f"tags.study = '{study.study_name}' and attributes.status = 'RUNNING'"
    for run in tracker.runs(experiment, where):
        number = run["tags"].get("trial_number")
        if number is not None and int(number) not in running:
            tracker.fail(run["run_id"], "worker lost", tracking.KILLED)


def _work(
    study: optuna.Study, plan: Plan, join: Join, progress: Progress | None = None, data=None
) -> None:
    """One worker: load the data, then run trials until its quota or the study is done."""
    if data is None:
        log.info("loading %s", plan.dataset)
        data = datasets.load_dataset(plan.dataset)
    tracker = tracking.Tracker(settings.tracking_uri(plan.tracking_uri))
    device = configure_devices()
    plan = replace(plan, tags=plan.tags | {"device": device})
    best = BestModel(Path(join.folder), join.index, data.task == "regression")
    objective = Objective(plan, data, tracker, join.experiment_id, join.parent_id, best)
    rules = StopRules(plan.n_trials, join.quota)
    callbacks = [rules] if progress is None else [rules, lambda study, trial: progress()]
    try:
        study.optimize(
            objective,
            timeout=plan.timeout,
            catch=(Exception,),
            callbacks=callbacks,
            gc_after_trial=True,
        )
    finally:
        objective.flush()


def _log_parent(
    tracker, parent_id: str, study: optuna.Study, table: pd.DataFrame, workdir: Path
) -> None:
    """Best params and value (two objectives: the Pareto front's trials and the best of the
    first objective among them), study plots, the top-trials table and the best model."""
    trial = best_trial(study)
    if trial is None:  # no completed trial
        return
    if is_multi(study):
        front = sorted(t.number for t in study.best_trials)
        tracker.set_tags(parent_id, {"pareto_trials": ",".join(map(str, front))})
        tracker.log_metrics(parent_id, values={"pareto_size": len(front)})
    tracker.log_params(parent_id, {f"best_{k}": v for k, v in trial.params.items()})
    tracker.log_metrics(
        parent_id, values={"best_value": trial.values[0], "best_trial": trial.number}
    )
    tracker.set_tags(parent_id, {"best_run_id": trial.user_attrs.get("mlflow_run_id", "")})
    folder = workdir / "parent"
    folder.mkdir()
    plots.study_plots(study, folder)
    (folder / "top_trials.md").write_text(report.to_text(table) + "\n")
    minimize = study.directions[0] == optuna.study.StudyDirection.MINIMIZE
    best = BestModel.pick(workdir, minimize)
    if best is not None:
        shutil.copy(best, folder / "best_model.keras")
    tracker.log_artifacts(parent_id, folder)


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best trial; with two objectives, the Pareto trial best on the first one."""
    if not is_multi(study):
        try:
            return study.best_trial
        except ValueError:
            return None
    front = study.best_trials
    if not front:
        return None
    sign = 1 if study.directions[0] == optuna.study.StudyDirection.MINIMIZE else -1
    return min(front, key=lambda t: sign * t.values[0])


# --- fixed configurations ------------------------------------------------------------------


def train_once(
    dataset: str,
    overrides: dict[str, Any],
    space_path: Path,
    seed: int = 0,
    tracking_uri: str | None = None,
    verbose: bool = False,
) -> tuple[str, TrainResult]:
    """Train one fixed configuration (the space's defaults + overrides) as one MLflow run."""
    spec = datasets.get_spec(dataset)
    base = spaces.load(space_path, task=spec.task)
    merged = {**base.defaults, **overrides}
    params = spaces.for_family(
        dict(spaces.parse({"defaults": merged}, "arguments", spec.task).defaults)
    )
    data = datasets.load_dataset(dataset, data_options(params))
    tracker = tracking.Tracker(settings.tracking_uri(tracking_uri))
    run_id = tracker.start_run(
        tracker.experiment(dataset), "train", tags={"kind": "train", "device": configure_devices()}
    )
    tracker.log_params(run_id, describe_params(params) | {"seed": seed})
    try:
        result = train_and_evaluate(params, data, seed=seed, verbose=2 if verbose else 0)
    except BaseException as error:
        tracker.fail(run_id, error)
        raise
    log_result(tracker, run_id, result, data.class_names, _summary(result.model))
    with tempfile.TemporaryDirectory() as tmp:
        result.model.save(Path(tmp) / "model.keras")
        tracker.log_artifacts(run_id, Path(tmp))
    tracker.end_run(run_id, tracking.FINISHED)
    return run_id, result
