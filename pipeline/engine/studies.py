"""The Optuna side of a plan: storage with heartbeats, sampler, pruner, the study itself."""

from __future__ import annotations

import datetime
import logging
import warnings

import optuna
import sqlalchemy
from optuna.storages._rdb import models as rdb_models  # the tables, for BeatingStorage
from optuna.storages._rdb.storage import _create_scoped_session

from pipeline import metrics, params, settings, tracking
from pipeline.engine.plan import Known, Plan, TableTrials
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
    storage = open_storage(plan.stores.storage, plan.heartbeat, RetryStale(plan.stores.tracking))
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
    if [d.name.lower() for d in study.directions] != wanted:
        raise UserError(
            f"study {plan.study!r} exists with other objectives or directions; choose --study NAME"
        )
    study.set_user_attr("val_metric", metrics.val_metric(plan.dataset.task))
    study.set_user_attr("objectives", list(plan.objectives))
    name_objectives(study, plan)
    return study


def name_objectives(study: optuna.Study, plan: Plan) -> None:
    """optuna-dashboard labels the objectives by these names, not "Objective 0" (Optuna's
    metric names are experimental: its warning is no news to the user)."""
    names = [metrics.val_metric(plan.dataset.task)]
    names += [metrics.logged_metric(name) for name in plan.objectives[1:]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if study.metric_names != names:
            study.set_metric_names(names)


RECIPE = "defaults"  # the source of the recipe trial: the space's defaults


def recipe_trial(trials) -> optuna.trial.FrozenTrial | None:
    """The trial that trained the recipe, among `trials` (an enqueued trial's attribute)."""
    return next((t for t in trials if t.user_attrs.get(tracking.ENQUEUED) == RECIPE), None)


def enqueue(study: optuna.Study, known: tuple[Known, ...]) -> list[str]:
    """Queue the known configurations before any sampled trial, each once per study (by its
    source: Optuna's skip_if_exists compares only the searched params, and the recipe and a
    table row may differ only in what the space does not search); returns those queued now."""
    done = {t.user_attrs.get(tracking.ENQUEUED) for t in study.get_trials(deepcopy=False)}
    queued = []
    for k in known:
        if k.source in done:
            continue
        attrs = {tracking.ENQUEUED: k.source} | ({"config": k.config} if k.config else {})
        study.enqueue_trial(k.trial_params, user_attrs=attrs)
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
        run_id = trial.user_attrs.get(tracking.RUN_ID_ATTR)
        if run_id:
            self.tracker = self.tracker or tracking.Tracker(self.tracking_uri)
            self.tracker.fail(run_id, "worker lost: no heartbeat", tracking.KILLED)


def open_storage(
    url: str, heartbeat: int = 0, on_stale: RetryStale | None = None
) -> optuna.storages.BaseStorage:
    """Optuna's RDB storage; with `heartbeat` seconds, trials of dead workers are retried."""
    if (database := settings.sqlite_path(url)) is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    # several local workers share one SQLite file: wait for its lock instead of failing
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
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
            return BeatingStorage(url, engine_kwargs=engine, **beats)
    except Exception as error:  # SQLAlchemy raises many types for bad or unreachable URLs
        first = str(error).strip().splitlines()[0]
        raise UserError(f"cannot open Optuna storage {settings.mask(url)}: {first}") from None


class BeatingStorage(optuna.storages.RDBStorage):
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


def storage_error(error: BaseException | None) -> BaseException | None:
    """The storage error behind `error`, if any (Optuna 5.0 can mask a failed `tell` with an
    UnboundLocalError raised in its own `finally`)."""
    while error is not None:
        if isinstance(error, STORAGE_ERRORS):
            return error
        error = error.__cause__ or error.__context__
    return None
