"""`Tracker`: a study's runs in MLflow, written (experiments, parent and trial runs, params,
metrics, tags, datasets, artifacts, system metrics) and read back, and a study's runs
deleted. Every call names its run, and is waited through an outage of a store it reached."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pipeline import outages
from pipeline.errors import UserError
from pipeline.locks import damaged, is_busy, sqlite_cause, store_lock
from pipeline.metrics import lower_is_better
from pipeline.settings import check_tracking_uri, mask, sqlite_path, store_wait
from pipeline.tracking import _names as names
from pipeline.tracking._connection import bound_http, store_trouble

_BATCH = 500  # MLflow accepts at most 1000 metrics and 100 params per log_batch call


def _artifact_root(uri: str) -> Path | None:
    """Local SQLite stores keep artifacts beside the database, under `artifacts/`."""
    database = sqlite_path(uri)
    return None if database is None else database.parent / "artifacts"


class Tracker:
    """A thin service over `MlflowClient`; every call names its run explicitly."""

    def __init__(self, uri: str, wait: float | None = None) -> None:
        """`wait`: seconds a store that went away is waited for (None: `settings`')."""
        import mlflow  # deferred: importing MLflow costs a second
        import sqlalchemy
        from mlflow.tracking import MlflowClient

        self.uri = check_tracking_uri(uri)
        self.wait = store_wait() if wait is None else wait
        bound_http(uri)  # a tracking server: bounded requests, and one that answers
        root = _artifact_root(uri)
        if uri.startswith("sqlite:") and "?" not in uri:
            uri += "?timeout=60"  # several local workers share the file: wait for its lock
        self._root = root
        self._mlflow = mlflow
        self._store_uri = uri
        try:  # a new store is created and migrated by one process at a time (its folder too)
            with store_lock(uri):
                self.client = MlflowClient(tracking_uri=uri)  # (MLflow builds its store here)
        except (mlflow.exceptions.MlflowException, sqlalchemy.exc.SQLAlchemyError) as error:
            raise UserError(store_trouble(self.uri, error)) from None

    def experiment(self, name: str) -> str:
        """The id of experiment `name`, created when missing."""
        found = self._call(self.client.get_experiment_by_name, name)
        if found is not None:
            if found.tags.get(names.EXPERIMENT_KIND[0]) is None:  # made before the tag was set
                self._call(
                    self.client.set_experiment_tag, found.experiment_id, *names.EXPERIMENT_KIND
                )
            return found.experiment_id
        location = (self._root / name).resolve().as_uri() if self._root else None
        tags = dict([names.EXPERIMENT_KIND])
        return self._call(
            self.client.create_experiment, name, artifact_location=location, tags=tags
        )

    def show_trials(
        self, experiment_id: str, *, metric: str, test_metric: str, params: list[str]
    ) -> None:
        """The experiment's saved runs-table view (`names.TRIALS_VIEW`): every run in one
        flat list, best `metric` first, with its test figure, trial state and `params` as
        columns (the first 3: the state stays in sight on a laptop's screen)."""
        columns = [f"metrics.`{m}`" for m in (metric, test_metric)]
        columns += [f"tags.`{names.TRIAL_STATE}`", *(f"params.`{p}`" for p in params[:3])]
        state = {
            "orderByKey": f"metrics.`{metric}`",
            "orderByAsc": lower_is_better(metric),
            "selectedColumns": columns,
        }
        now = int(time.time() * 1000)
        view = {"name": "Trials, best first", "createdAt": now, "updatedAt": now}
        value = json.dumps(view | {"state": json.dumps(state)})
        key = f"mlflow.sharedViewState.{names.TRIALS_VIEW}"
        self._call(self.client.set_experiment_tag, experiment_id, key, value)

    def log_datasets(self, run_id: str, datasets: list[dict[str, str]]) -> None:
        """Each split a run read, as an MLflow dataset input: name, digest, source,
        source_type, profile (JSON) and context (train, validation, test)."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        inputs = [
            DatasetInput(
                Dataset(
                    name=d["name"],
                    digest=d["digest"],
                    source_type=d["source_type"],
                    source=d["source"],
                    profile=d["profile"],
                ),
                [InputTag("mlflow.data.context", d["context"])],
            )
            for d in datasets
        ]
        try:
            self.client.log_inputs(run_id, datasets=inputs)
        except self._mlflow.exceptions.MlflowException:
            # two workers adding the same new dataset at once: one of them loses the race
            # on its unique key (SQLite's IntegrityError); the dataset exists now, so again
            self._call(self.client.log_inputs, run_id, datasets=inputs)

    def watch_system(self, run_id: str):
        """MLflow's own sampler of CPU, memory, disk, network (and GPU) metrics for a run,
        started; call `.finish()` on it. None where psutil is missing."""
        try:
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
        except ImportError:
            return None
        monitor = SystemMetricsMonitor(run_id, sampling_interval=5, tracking_uri=self._store_uri)
        monitor.start()
        return monitor

    def start_run(
        self,
        experiment_id: str,
        name: str,
        parent_id: str | None = None,
        tags: dict[str, Any] | None = None,
    ) -> str:
        tags = {k: str(v)[:5000] for k, v in (tags or {}).items()}
        if parent_id:
            tags[names.PARENT_RUN_ID] = parent_id
        run = self._call(self.client.create_run, experiment_id, run_name=name, tags=tags)
        return run.info.run_id

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self._call(self.client.log_batch, run_id, params=items[i : i + 100])

    def log_metrics(
        self,
        run_id: str,
        history: dict[str, list[float]] | None = None,
        values: dict[str, float] | None = None,
    ) -> None:
        """Per-epoch `history` (step = epoch, from 1) and single `values`, in few calls."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(k, float(v), now, step)
            for k, series in (history or {}).items()
            for step, v in enumerate(series, start=1)
        ]
        items += [Metric(k, float(v), now, 0) for k, v in (values or {}).items()]
        for i in range(0, len(items), _BATCH):
            self._call(self.client.log_batch, run_id, metrics=items[i : i + _BATCH])

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        """The run's tags, in one request (values cut to MLflow's 5,000 characters)."""
        from mlflow.entities import RunTag

        if tags:
            found = [RunTag(key, str(value)[:5000]) for key, value in tags.items()]
            self._call(self.client.log_batch, run_id, tags=found)

    def log_artifacts(self, run_id: str, folder: Path, artifact_path: str | None = None) -> None:
        self._call(self.client.log_artifacts, run_id, str(folder), artifact_path)

    def download_artifacts(self, run_id: str, path: str, folder: Path) -> Path:
        """Copy a run's artifact file or folder into `folder`; returns its local path."""
        return Path(self._call(self.client.download_artifacts, run_id, path, str(folder)))

    def delete_artifacts(self, run_id: str, path: str) -> None:
        """Remove a run's artifact folder `path` (MLflow's client has no call for it: its
        artifact repositories do, for the local and the tracking server's stores)."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        run = self._call(self.client.get_run, run_id)
        repository = get_artifact_repository(run.info.artifact_uri)
        self._call(repository.delete_artifacts, path)

    def experiment_of(self, run_id: str) -> str:
        """The name of the experiment a run belongs to."""
        run = self._call(self.client.get_run, run_id)
        return self._call(self.client.get_experiment, run.info.experiment_id).name

    def tags(self, run_id: str) -> dict[str, str]:
        return dict(self._call(self.client.get_run, run_id).data.tags)

    def fail(self, run_id: str, error: BaseException | str, status: str | None = None) -> None:
        """End a run that did not finish: FAILED for an error, KILLED for an interruption
        (or `status`), with the reason as its `error` tag."""
        if status is None:
            status = names.FAILED if isinstance(error, Exception | str) else names.KILLED
        message = error if isinstance(error, str) else (str(error) or type(error).__name__)
        self.set_tags(run_id, {names.TRIAL_STATE: names.FAIL, names.ERROR: message})
        self.end_run(run_id, status)

    def end_run(self, run_id: str, status: str = names.FINISHED) -> None:
        self._call(self.client.set_terminated, run_id, status)

    _reached = False  # a store never reached is not waited for: a wrong URI is one line

    def _call(self, fn, *args, **kwargs):
        """`fn(...)`, waited through an outage of a store already reached (`outages`); an
        MLflow error is one line for the user."""
        try:
            if not self._reached:
                result = fn(*args, **kwargs)
                self._reached = True
                return result
            call = lambda: fn(*args, **kwargs)  # noqa: E731
            return outages.patiently(call, wait=self.wait, what=f"MLflow at {mask(self.uri)}")
        except self._mlflow.exceptions.MlflowException as error:
            database, cause = sqlite_path(self.uri), sqlite_cause(error)
            if database is not None and cause is not None and not is_busy(cause):
                raise UserError(damaged(database, cause)) from None
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise UserError(f"MLflow at {mask(self.uri)}: {first}") from None

    # --- reading ------------------------------------------------------------------------

    def trial_runs(
        self, experiment: str, study: str | None = None, running: bool = False
    ) -> list[dict[str, Any]]:
        """The trial runs of `study` (of every study when None); only RUNNING ones if asked."""
        runs = self._study_runs(experiment, study, running)
        return [r for r in runs if names.TRIAL_NUMBER in r["tags"]]

    def parent_runs(self, experiment: str, study: str, running: bool = False) -> list[dict]:
        """The runs of `study`'s invocations (search, reproduce), not their trials."""
        runs = self._study_runs(experiment, study, running)
        return [r for r in runs if names.TRIAL_NUMBER not in r["tags"] and names.KIND in r["tags"]]

    def ensemble_members(self, experiment: str, study: str) -> dict[int, int]:
        """The members of `study`'s latest logged ensemble: trial number -> picks (none
        when no ensemble was logged)."""
        kind = f"tags.{names.KIND} = '{names.ENSEMBLE}'"
        where = f"{kind} and attributes.status = '{names.FINISHED}'"
        runs = [r for r in self.runs(experiment, where) if r["tags"].get(names.STUDY) == study]
        if not runs:
            return {}
        latest = max(runs, key=lambda r: r["start_time"] or 0)
        listed = latest["tags"].get(names.ENSEMBLE_MEMBERS, "")
        pairs = (item.split(":") for item in listed.split(",") if item)
        return {int(trial): int(picks) for trial, picks in pairs}

    def _study_runs(self, experiment: str, study: str | None, running: bool) -> list[dict]:
        where = [f"attributes.status = '{names.RUNNING}'"] if running else []
        literal = None if study is None else _literal(study)
        if literal is not None:
            where.append(f"tags.{names.STUDY} = {literal}")
        runs = self.runs(experiment, " and ".join(where))
        return [r for r in runs if study is None or r["tags"].get(names.STUDY) == study]

    def runs(self, experiment: str, filter_string: str = "") -> list[dict[str, Any]]:
        """All runs of an experiment matching `filter_string` (MLflow's search syntax),
        as plain dicts: run_id, status, params, metrics, tags."""
        exp = self._call(self.client.get_experiment_by_name, experiment)
        if exp is None:
            return []
        runs, token = [], None
        while True:
            page = self._call(
                self.client.search_runs,
                [exp.experiment_id],
                filter_string,
                max_results=1000,
                page_token=token,
            )
            runs += [
                {
                    "run_id": r.info.run_id,
                    "status": r.info.status,
                    "params": dict(r.data.params),
                    "metrics": dict(r.data.metrics),
                    "tags": dict(r.data.tags),
                    "start_time": r.info.start_time,
                }
                for r in page
            ]
            token = page.token
            if not token:
                return runs

    # --- housekeeping -------------------------------------------------------------------

    def experiment_names(self) -> list[str]:
        """The names of every active experiment of the store."""
        return [e.name for e in self._pages(self.client.search_experiments)]

    def study_run_ids(self, study: str) -> list[str]:
        """The ids of `study`'s active runs, its invocations and their trials (the runs
        tagged with it), in every experiment: only its name is known, not its dataset."""
        from mlflow.entities import ViewType

        experiments = [
            e.experiment_id
            for e in self._pages(self.client.search_experiments, view_type=ViewType.ACTIVE_ONLY)
        ]
        literal = _literal(study)
        where = "" if literal is None else f"tags.{names.STUDY} = {literal}"
        ids = []
        for i in range(0, len(experiments), 100):  # a bounded request to a tracking server
            page = self._pages(
                self.client.search_runs,
                experiments[i : i + 100],
                where,
                run_view_type=ViewType.ACTIVE_ONLY,
            )
            ids += [r.info.run_id for r in page if r.data.tags.get(names.STUDY) == study]
        return ids

    def delete_study_runs(self, study: str) -> int:
        """Mark every run of `study` deleted, with MLflow's soft delete (`mlflow gc`
        purges them, artifacts too); returns how many."""
        ids = self.study_run_ids(study)
        for run_id in ids:
            self._call(self.client.delete_run, run_id)
        return len(ids)

    def _pages(self, search, *args, **kwargs) -> list:
        """Every page of an MLflow search, together."""
        found, token = [], None
        while True:
            page = self._call(search, *args, max_results=1000, page_token=token, **kwargs)
            found += list(page)
            token = page.token
            if not token:
                return found


def _literal(value: str) -> str | None:
    """`value` quoted for MLflow's filter syntax, or None when it holds both kinds of quote
    (the caller then filters in Python: the syntax has no escapes)."""
    for quote in ("'", '"'):
        if quote not in value:
            return f"{quote}{value}{quote}"
    return None
