"""A trial's record as named fields (`TrialRecord`), and a study's own two: the one module
that reads and writes Optuna's user attributes, the record's serialized form in the Optuna
storage, and that reads a trial run's tags, params and metrics back from MLflow, its other
form. The keys are the ones studies have always carried, so older studies read as they are.

Optuna's trials and studies are read by their attributes (`number`, `state`, `params`,
`values`, `user_attrs`, `directions`), not imported: Optuna stays in the engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline import tracking
from pipeline.metrics import SECOND_OBJECTIVES
from pipeline.params import layer_units
from pipeline.spaces import CUSTOM

RECIPE = "defaults"  # `enqueued` of the recipe trial: the space's defaults

# A field of the record -> its Optuna user attribute. Every other attribute of a trial is
# one of its figures (`final_val_*`, `test_*`, `fold_*`: `TrialRecord.metrics`).
_KEYS = {
    "run_id": tracking.RUN_ID_ATTR,
    "worker": "worker",
    "error": "error",
    "val_metric": "val_metric",
    "epochs_run": "epochs_run",
    "best_epoch": "best_epoch",
    "representation": "representation",
    "seconds": "seconds",
    "enqueued": tracking.ENQUEUED,
    "config": "config",
}
_STUDY_METRIC, _STUDY_OBJECTIVES = "val_metric", "objectives"  # a study's attributes
_STUDY_ENSEMBLE = "ensemble"  # the ensemble chosen last: its members, figures and model
STARTED = (tracking.COMPLETE, tracking.PRUNED, tracking.FAIL, tracking.RUNNING)
_NOT_COMPARED = {"seed", "timeout"}  # logged with a run's params; never a setting that varies


@dataclass(frozen=True)
class TrialRecord:
    """What one trial left behind, read from Optuna (`read`) or from its MLflow run
    (`from_run`). Fields a source does not hold are None (a run has no worker; a trial
    that failed early has no figures)."""

    number: int | None
    state: str  # tracking.COMPLETE, PRUNED, FAIL, RUNNING (a run not finished: its status)
    params: dict[str, Any]  # Optuna's sampled values, or the run's logged params (strings)
    metrics: dict[str, Any]  # final_val_*, test_*, fold_*; a run: each single-valued metric
    values: dict[str, float] | None = None  # Optuna's objective values, by the study's names
    run_id: str | None = None
    worker: int | None = None  # the slot index of the worker that ran it
    error: str | None = None  # why it failed
    val_metric: str | None = None
    epochs_run: int | float | None = None
    best_epoch: int | float | None = None
    seconds: float | None = None  # of training
    representation: dict[str, Any] | None = None  # the params that decide its features
    enqueued: str | None = None  # the source of a known configuration queued before sampling
    config: dict[str, Any] | None = None  # that configuration, trained as it is
    objectives: tuple[str, ...] = ()  # a run's study's objectives (its tag)

    def figure(self, name: str) -> float | None:
        """An objective's value or a metric, by name; None when the record lacks it."""
        return (self.values or {}).get(name, self.metrics.get(name))

    @property
    def settings(self) -> dict[str, Any]:
        """Its params as a person compares them: units as one "16,32" value (not `units_1`,
        `units_2`, ...), without what is logged but never compared (the seed)."""
        params = {k: v for k, v in self.params.items() if k not in _NOT_COMPARED}
        family = params.get("family") or (self.representation or {}).get("family")
        if family == CUSTOM:  # the user's own names, as the builder asked
            return params
        layers = sorted((k for k in params if _is_layer(k)), key=lambda k: int(k[6:]))
        units = [params.pop(k) for k in layers]
        if isinstance(params.get("units"), str):  # as logged: "16,32" beside units_1, ...
            return params
        if "units" in params:  # one value for every layer
            params["units"] = ",".join(map(str, layer_units(params)))
        elif units:  # one value a layer, for the layers it has
            params["units"] = ",".join(map(str, units[: params.get("n_layers", len(units))]))
        return params

    def attrs(self) -> dict[str, Any]:
        """The record as Optuna's user attributes (what `read` reads back)."""
        named = {_KEYS[name]: getattr(self, name) for name in _KEYS}
        return {k: v for k, v in named.items() if v is not None} | self.metrics


def _is_layer(name: str) -> bool:
    return name.startswith("units_") and name[6:].isdigit()


def read(trial, names: tuple[str, ...] = ()) -> TrialRecord:
    """The record of an Optuna trial (a finished one; a running one's attributes too), its
    objective values named `names` (`value_names`)."""
    attrs = dict(trial.user_attrs)
    named = {name: attrs.pop(key) for name, key in _KEYS.items() if key in attrs}
    state = getattr(trial, "state", None)
    values = getattr(trial, "values", None)
    return TrialRecord(
        number=trial.number,
        state=tracking.RUNNING if state is None else state.name,
        params=dict(trial.params),
        metrics=attrs,
        values=None if values is None else dict(zip(names, values, strict=False)),
        **named,
    )


def from_run(run: dict) -> TrialRecord:
    """The record of a trial run, as `tracking.Tracker.trial_runs` returns it: its state tag
    (a run that did not finish: its status), number, params and metrics."""
    tags, status, logged = run["tags"], run["status"], run["metrics"]
    state = tags.get(tracking.TRIAL_STATE, status)
    if state == tracking.COMPLETE and status != tracking.FINISHED:
        state = status  # its trial completed, its run did not: not a completed record
    number = tags.get(tracking.TRIAL_NUMBER)
    objectives = tags.get(tracking.OBJECTIVES, "")
    figures = {name: float(tags[name]) for name in tracking.FIGURES if name in tags}
    metrics = {**logged, **figures}  # runs logged before the figures became tags: metrics
    return TrialRecord(
        number=int(number) if number is not None and number.isdigit() else None,
        state=state,
        params=dict(run["params"]),
        metrics=metrics,
        run_id=run["run_id"],
        epochs_run=metrics.get("epochs_run"),
        best_epoch=metrics.get("best_epoch"),
        seconds=metrics.get("train_seconds"),
        objectives=tuple(objectives.split(",")) if objectives else (),
    )


# --- writing a trial's record, as it runs -------------------------------------------------


def _write(trial, **named: Any) -> None:
    for name, value in named.items():
        trial.set_user_attr(_KEYS[name], value)


def note_start(trial, run_id: str, worker: int) -> None:
    """A trial's MLflow run and the worker running it, as it starts."""
    _write(trial, run_id=run_id, worker=worker)


def note_error(trial, error: str) -> None:
    _write(trial, error=error)


def note_result(trial, result, representation: dict[str, Any], figures: dict[str, Any]) -> None:
    """A trained trial's figures (`figures`: final_val_*, test_*, fold_*), from `result`
    (`training.TrialResult`) its metric, epochs and seconds (to the hundredth)."""
    _write(
        trial,
        val_metric=result.val_metric,
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        representation=representation,
        seconds=round(result.seconds, 2),
    )
    for key, value in figures.items():
        trial.set_user_attr(key, value)


def enqueue(study, params: dict[str, Any], source: str, config: dict[str, Any] | None) -> None:
    """Queue a known configuration before sampling: `params` as Optuna's, `source` where it
    comes from (one queued per study and source), `config` what it trains when that is
    more than its params."""
    attrs = {_KEYS["enqueued"]: source} | ({_KEYS["config"]: config} if config else {})
    study.enqueue_trial(params, user_attrs=attrs)


def config_of(trial) -> dict[str, Any] | None:
    """The known configuration a queued trial trains (None for a sampled one)."""
    return trial.user_attrs.get(_KEYS["config"])


# --- a study's own record -----------------------------------------------------------------


def label_study(study, val_metric: str, objectives: tuple[str, ...]) -> None:
    """What a study is judged by: its validation metric and its objectives."""
    study.set_user_attr(_STUDY_METRIC, val_metric)
    study.set_user_attr(_STUDY_OBJECTIVES, list(objectives))


def study_metric(study) -> str:
    """The validation metric the study's (first) objective is ("value" for a bare study)."""
    return study.user_attrs.get(_STUDY_METRIC, "value")


def study_objectives(study) -> list[str]:
    """`--objective` as the study was created with: ["accuracy", "params"], say."""
    return list(study.user_attrs.get(_STUDY_OBJECTIVES, []))


def value_names(study) -> tuple[str, ...]:
    """The names of the study's objective values: its validation metric, then the second
    objective's logged metric (`n_params`, `latency_ms`) when it has one."""
    objectives = study_objectives(study)
    second = (SECOND_OBJECTIVES[objectives[1]],) if len(objectives) > 1 else ()
    return (study_metric(study), *second)


def note_ensemble(study, ensemble: dict[str, Any]) -> None:
    """The ensemble chosen last from the study's trials (`engine.ensemble.Ensemble`'s
    fields: members by trial number, figures, the model registered, if any)."""
    study.set_user_attr(_STUDY_ENSEMBLE, ensemble)


def ensemble_of(study) -> dict[str, Any] | None:
    """What `note_ensemble` wrote (trial numbers as strings, as JSON keeps them)."""
    return study.user_attrs.get(_STUDY_ENSEMBLE)


def minimizes(study) -> bool:
    """Is the study's (first) objective minimized?"""
    return study.directions[0].name == "MINIMIZE"


def study_records(study, states: tuple[str, ...] = STARTED) -> list[TrialRecord]:
    """The records of the study's trials in `states` (every trial that started), in the
    order of their numbers."""
    names = value_names(study)
    trials = study.get_trials(deepcopy=False)
    return [read(t, names) for t in trials if t.state.name in states]
