"""The Optuna side of a plan: storage with heartbeats, sampler, pruner, the study itself."""

from __future__ import annotations

import datetime
import logging
import warnings

import optuna
import sqlalchemy

# private: Optuna has no public query for trials that never beat (tests/test_library_internals.py)
from optuna.storages._rdb import models as rdb_models  # the tables, for BeatingStorage
from optuna.storages._rdb.storage import _create_scoped_session

from pipeline import locks, metrics, outages, params, settings, tracking, trial_record
from pipeline.engine.plan import KnownConfig, Plan, TableTrials
from pipeline.errors import UserError
from pipeline.locks import store_lock

log = logging.getLogger("pipeline")
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
DONE = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
STORAGE_ERRORS = (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError)
# Worker i seeds its sampler with seed + resumes + i * this prime, so no two workers (nor a
# worker and a later resume of the same study) propose the same sequence of trials.
WORKER_SEED_STRIDE = 7919


def open_study(plan: Plan, worker: int = 0) -> optuna.Study:
    """Create the plan's study, or load it to resume; the sampler seed moves on with each
    resume and each worker."""
    on_stale = RetryStale(plan.stores.tracking)
    storage = open_storage(plan.stores.storage, plan.heartbeat, on_stale, plan.stores.wait)
    try:
        existing = len(optuna.load_study(study_name=plan.study, storage=storage).trials)
    except KeyError:
        existing = 0
    wanted = metrics.directions(plan.objectives)
    study = optuna.create_study(
        study_name=plan.study,
        storage=storage,
        load_if_exists=True,
        directions=wanted,
        sampler=make_sampler(plan, existing, worker),
        pruner=make_pruner(plan.pruner, plan.trials.warmup_epochs),
    )
    check_directions(study, plan)
    trial_record.label_study(study, metrics.val_metric(plan.dataset.task), plan.objectives)
    name_objectives(study, plan)
    return study


def finished_study(plan: Plan) -> optuna.Study | None:
    """The plan's study when it exists with `n_trials` finished trials, opened as
    `open_study` opens it; else None (nothing is created)."""
    database = settings.sqlite_path(plan.stores.storage)
    if database is not None and not database.is_file():
        return None  # a new store: created after the data and the tracking store are checked
    storage = open_storage(plan.stores.storage, wait=plan.stores.wait)
    try:
        study = optuna.load_study(study_name=plan.study, storage=storage)
    except KeyError:
        return None
    if finished(study) < plan.n_trials:
        return None
    check_directions(study, plan)
    return study


def check_directions(study: optuna.Study, plan: Plan) -> None:
    """A study found under the plan's name optimizes the plan's objectives, or is refused."""
    if [d.name.lower() for d in study.directions] != metrics.directions(plan.objectives):
        raise UserError(
            f"study {plan.study!r} exists with other objectives or directions; choose --study NAME"
        )


def name_objectives(study: optuna.Study, plan: Plan) -> None:
    """optuna-dashboard labels the objectives by these names, not "Objective 0" (Optuna's
    metric names are experimental: its warning is no news to the user)."""
    names = [metrics.val_metric(plan.dataset.task)]
    names += [metrics.logged_metric(name) for name in plan.objectives[1:]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if study.metric_names != names:
            study.set_metric_names(names)


RECIPE = trial_record.RECIPE


def recipe_trial(trials) -> optuna.trial.FrozenTrial | None:
    """The trial that trained the recipe, among `trials` (an enqueued trial's attribute)."""
    return next((t for t in trials if trial_record.read(t).enqueued == RECIPE), None)


def enqueue(study: optuna.Study, known: tuple[KnownConfig, ...]) -> list[str]:
    """Queue the known configurations before any sampled trial, each once per study (by its
    source: Optuna's skip_if_exists compares only the searched params, and the recipe and a
    table row may differ only in what the space does not search); returns those queued now."""
    done = {trial_record.read(t).enqueued for t in study.get_trials(deepcopy=False)}
    queued = []
    for k in known:
        if k.source in done:
            continue
        trial_record.enqueue(study, k.trial_params, k.source, k.config)
        queued.append(k.source)
    return queued


def best_trials_of(storage_url: str, name: str, count: int) -> list[optuna.trial.FrozenTrial]:
    """The `count` best completed trials of study `name` (`--warm-start study:NAME`)."""
    try:
        other = optuna.load_study(study_name=name, storage=open_storage(storage_url))
    except KeyError:
        raise UserError(
            f"--warm-start study:{name}: no such study in {settings.mask(storage_url)}"
        ) from None
    states = (optuna.trial.TrialState.COMPLETE,)
    done = other.get_trials(deepcopy=False, states=states)
    sign = 1 if other.directions[0] == optuna.study.StudyDirection.MINIMIZE else -1
    return sorted(done, key=lambda t: sign * t.values[0])[:count]


def load_existing(storage_url: str, name: str) -> optuna.Study:
    """Study `name` as it is in the storage; a UserError when there is none (nothing is
    created)."""
    try:
        return optuna.load_study(study_name=name, storage=open_storage(storage_url))
    except KeyError:
        raise UserError(f"no study {name!r} in {settings.mask(storage_url)}") from None


def make_sampler(plan: Plan, done: int = 0, worker: int = 0) -> optuna.samplers.BaseSampler:
    """The plan's sampler, seeded apart per resume (`done` trials so far) and per worker."""
    trials = plan.trials
    if isinstance(trials, TableTrials):
        return optuna.samplers.GridSampler(trials.grid(), seed=worker)
    seed = (trials.seed + done + WORKER_SEED_STRIDE * worker) % 2**32  # what numpy takes
    if trials.sampler == "tpe":
        with warnings.catch_warnings():  # `group` is "experimental" since Optuna 2.8
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                **tpe_arguments(plan.n_trials, plan.workers), seed=seed
            )
    if trials.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if trials.sampler == "grid":
        return optuna.samplers.GridSampler(params.grid(trials.space), seed=seed)
    raise UserError(f"unknown sampler {trials.sampler!r}; use one of {', '.join(SAMPLERS)}")


def tpe_arguments(n_trials: int, n_workers: int) -> dict:
    """Every TPE argument Optuna 5 still supports set here, so a study samples the same way
    whatever the defaults become (Optuna 5 turned multivariate and constant liar on; it
    deprecates the prior and endpoint switches, left at their defaults). Random start-up
    trials: a sixth of the budget, 4 to 10 (30 trials spend 5, not Optuna's 10)."""
    return {
        "n_startup_trials": max(4, min(10, n_trials // 6)),
        "n_ei_candidates": 24,
        "multivariate": True,  # learns how params go together (layers and their units)
        "group": True,  # conditional params (units_3 only with 3 layers) sampled jointly
        "constant_liar": n_workers > 1,  # workers avoid proposing what others are running
    }


def make_pruner(name: str, warmup: int = 1) -> optuna.pruners.BasePruner:
    """`warmup`: epochs no trial is pruned in (a quarter of the shortest budget, at least 1:
    Boston's 100-epoch runs are not judged on their first noisy epochs)."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UserError(f"unknown pruner {name!r}; use one of {', '.join(PRUNERS)}")


class RetryStale:
    """Called for a trial whose worker stopped beating (killed, machine lost): Optuna marks it
    FAIL and queues a retry with the same params; its MLflow run, which MLflow would leave
    RUNNING forever, is set KILLED."""

    def __init__(self, tracking_uri: str, max_retry: int = 3) -> None:
        self.tracking_uri, self.tracker = tracking_uri, None
        with warnings.catch_warnings():  # "experimental" since Optuna 2.8
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.retry(study, trial)
        log.warning("trial %d lost its worker (no heartbeat): FAIL, queued again", trial.number)
        run_id = trial_record.read(trial).run_id
        if run_id:
            self.tracker = self.tracker or tracking.Tracker(self.tracking_uri)
            self.tracker.fail(run_id, "worker lost: no heartbeat", tracking.KILLED)


def open_storage(
    url: str, heartbeat: int = 0, on_stale: RetryStale | None = None, wait: float = 60.0
) -> optuna.storages.BaseStorage:
    """Optuna's RDB storage; with `heartbeat` seconds, trials of dead workers are retried;
    once reached, a storage that goes away is waited for `wait` seconds (`outages`)."""
    # several local workers share one SQLite file: wait for its lock instead of failing;
    # a server's pooled connections are tested before use (dead ones after a restart)
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    if not url.startswith("sqlite"):
        engine = {"pool_pre_ping": True}
    beats = {}
    if heartbeat:
        beats = {
            "heartbeat_interval": heartbeat,
            "grace_period": 3 * heartbeat,
            "heartbeat_stale_trial_callback": on_stale,
        }
    try:
        with warnings.catch_warnings(), store_lock(url):  # one process creates a new file
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = BeatingStorage(url, engine_kwargs=engine, **beats)
    except UserError as error:  # a file that is no store, or cannot be created
        raise UserError(f"cannot open Optuna storage {settings.mask(url)}: {error}") from None
    except Exception as error:  # SQLAlchemy raises many types for bad or unreachable URLs
        raise UserError(storage_trouble(url, error)) from None
    storage.wait = wait
    return storage


class _NeverBeatIsStale(optuna.storages.RDBStorage):
    """Optuna's RDB storage, whose stale trials also include RUNNING trials that never beat
    and started more than the grace period ago. A live trial records its first heartbeat
    as it starts (Optuna's heartbeat thread beats at once), so such a trial's process was
    killed between Optuna creating it and its first beat; Optuna's own check skips trials
    without a heartbeat, and would leave it RUNNING forever. Optuna's `fail_stale_trials`
    (at every trial's start, and the runner's sweep) then fails and retries it as usual."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        grace = datetime.timedelta(seconds=self.grace_period or 2 * self.heartbeat_interval)
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)  # as Optuna 5 writes
        with _create_scoped_session(self.scoped_session) as session:
            never_beat = (
                session.query(rdb_models.TrialModel.trial_id)
                .outerjoin(rdb_models.TrialHeartbeatModel)
                .filter(rdb_models.TrialModel.study_id == study_id)
                .filter(rdb_models.TrialModel.state == optuna.trial.TrialState.RUNNING)
                .filter(rdb_models.TrialHeartbeatModel.trial_heartbeat_id.is_(None))
                .filter(rdb_models.TrialModel._datetime_start_utc < now - grace)
            )
            return stale + [trial_id for (trial_id,) in never_beat if trial_id not in stale]


# What Optuna (its cached storage, studies, trials, heartbeat thread) calls on the storage.
_CALLS = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
    "get_study_user_attrs", "get_study_system_attrs", "get_all_studies", "create_new_trial",
    "_create_new_trial", "set_trial_param", "_set_trial_param", "get_trial_param",
    "set_trial_state_values", "set_trial_intermediate_value", "set_trial_user_attr",
    "set_trial_system_attr", "get_trial_id_from_study_id_trial_number", "get_trial",
    "get_all_trials", "_get_trials", "get_best_trial", "_get_best_trial_id",
)  # fmt: skip


class BeatingStorage(_NeverBeatIsStale):
    """The storage a study uses: stale trials as above, and every call waited through an
    outage of the database once it was reached (a restart, a failover: `outages`).
    A call retried after a connection dropped mid-commit may repeat a write; the one that
    matters, a new trial, then leaves a RUNNING trial that never beats, failed as above."""

    wait = 60.0  # seconds a lost database is waited for
    _reached = False

    def record_heartbeat(self, trial_id: int) -> None:
        """A beat that cannot be written is skipped, not fatal: Optuna's heartbeat thread
        ends at its first error, and its trial, alive, would then be taken for dead."""
        try:
            self._waiting("record_heartbeat", trial_id)
        except Exception as error:
            log.warning("a heartbeat of trial id %d was not written: %s", trial_id, error)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """No trial is stale while the database is away or for a grace period after it
        came back: heartbeats missed then are the database's fault, not deaths."""
        grace = self.grace_period or 2 * (self.heartbeat_interval or 0)
        if outages.recent_outage(within=grace):
            return []
        return self._waiting("_get_stale_trial_ids", study_id)

    def _waiting(self, name: str, *args, **kwargs):
        method = getattr(_NeverBeatIsStale, name)
        if not self._reached:  # a storage never reached is not waited for
            result = method(self, *args, **kwargs)
            self._reached = True
            return result
        call = lambda: method(self, *args, **kwargs)  # noqa: E731
        return outages.patiently(call, wait=self.wait, what="the Optuna storage")


def _waiting_call(name: str):
    def call(self, *args, **kwargs):
        return self._waiting(name, *args, **kwargs)

    call.__name__ = name
    return call


for _name in _CALLS:
    setattr(BeatingStorage, _name, _waiting_call(_name))


def fail_stale_trials(study: optuna.Study) -> set[int]:
    """Trials whose worker died past the grace period become FAIL (and are retried); returns
    the numbers of the trials still running."""
    with warnings.catch_warnings():  # "experimental" since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    states = (optuna.trial.TrialState.RUNNING,)
    return {t.number for t in study.get_trials(deepcopy=False, states=states)}


def quiet_optuna(verbose: bool) -> None:
    # failed trials get one line from StopRules; Optuna's own warning carries a traceback
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.ERROR)


def finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=DONE))


def completed(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Completed trials in the order they finished."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return sorted(done, key=lambda t: t.datetime_complete)


def is_multi(study: optuna.Study) -> bool:
    return len(study.directions) > 1


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best trial by the one rule (`metrics.ranking_key`: the best value, a tie to the
    lower trial number; not Optuna's `best_trial`, whose tie is not ours); with two
    objectives, the Pareto trial best on the first one, by the same rule."""
    if is_multi(study):
        candidates = study.best_trials
    else:
        states = (optuna.trial.TrialState.COMPLETE,)
        candidates = study.get_trials(deepcopy=False, states=states)
    if not candidates:
        return None
    minimize = study.directions[0] == optuna.study.StudyDirection.MINIMIZE
    return min(candidates, key=lambda t: metrics.ranking_key(t.values[0], t.number, minimize))


def storage_trouble(url: str, error: BaseException) -> str:
    """One line for an Optuna storage that cannot be used: a damaged SQLite file named
    with its remedy, else the first line of the error."""
    database, cause = settings.sqlite_path(url), locks.sqlite_cause(error)
    if database is not None and cause is not None and not locks.is_busy(cause):
        return f"cannot open Optuna storage {url}: {locks.damaged(database, cause)}"
    first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    return f"cannot open Optuna storage {settings.mask(url)}: {first}"


def storage_error(error: BaseException | None) -> BaseException | None:
    """The storage error behind `error`, if any (Optuna 5.0 can mask a failed `tell` with an
    UnboundLocalError raised in its own `finally`)."""
    while error is not None:
        if isinstance(error, STORAGE_ERRORS):
            return error
        error = error.__cause__ or error.__context__
    return None
