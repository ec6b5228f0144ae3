"""A trial's record (`pipeline.trial_record`) through its two serialized forms: Optuna's user
attributes in a real SQLite storage, read back by a fresh load of the study, and a trial
run as MLflow returns it. The keys stored are the ones studies have always carried, so the
studies of earlier versions still read."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import report, tracking, trial_record
from pipeline.params import describe_params

optuna.logging.set_verbosity(optuna.logging.ERROR)

# the user attributes a trial and a study have carried since before the record had a type
TRIAL_KEYS = {
    "mlflow_run_id",
    "worker",
    "val_metric",
    "epochs_run",
    "best_epoch",
    "representation",
    "seconds",
}
STUDY_KEYS = {"val_metric", "objectives"}

FIGURE_NAMES = ("final_val_accuracy", "final_val_loss", "test_accuracy", "test_loss", "fold_1")
FIGURES = st.dictionaries(
    st.sampled_from(FIGURE_NAMES), st.floats(allow_nan=False, allow_infinity=False)
)
WORDS = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
REPRESENTATION = st.dictionaries(
    st.sampled_from(["family", "output_mode", "max_tokens", "ngrams"]),
    st.one_of(WORDS, st.integers(0, 10**6)),
)


@pytest.fixture(scope="module")
def storage(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('record') / 'optuna.db'}"


def reloaded(study: optuna.Study, storage: str) -> optuna.Study:
    """The study as a later process reads it: from the storage, not this process's cache."""
    return optuna.load_study(study_name=study.study_name, storage=storage)


@settings(max_examples=30)
@given(
    run_id=WORDS,
    worker=st.integers(0, 64),
    epochs=st.integers(1, 500),
    seconds=st.floats(0, 1e5, allow_nan=False),
    representation=REPRESENTATION,
    figures=FIGURES,
    value=st.floats(0, 1),
    error=st.one_of(st.none(), WORDS),
)
def test_a_trial_record_round_trips_through_optuna_storage(
    storage, run_id, worker, epochs, seconds, representation, figures, value, error
):
    study = optuna.create_study(storage=storage, direction="maximize")
    trial_record.label_study(study, "val_accuracy", ("accuracy",))
    trial = study.ask()
    result = SimpleNamespace(
        val_metric="val_accuracy", epochs_run=epochs, best_epoch=epochs, seconds=seconds
    )
    trial_record.note_start(trial, run_id, worker)
    trial_record.note_result(trial, result, representation, figures)
    if error is not None:
        trial_record.note_error(trial, error)
    study.tell(trial, value)

    again = reloaded(study, storage)
    (frozen,) = again.trials
    record = trial_record.read(frozen, trial_record.value_names(again))
    assert record.number == 0 and record.state == tracking.COMPLETE
    assert (record.run_id, record.worker, record.error) == (run_id, worker, error)
    assert record.val_metric == "val_accuracy" and record.epochs_run == epochs
    assert record.seconds == round(seconds, 2)
    assert record.representation == representation and record.metrics == figures
    assert record.figure("val_accuracy") == value
    assert record.attrs() == frozen.user_attrs  # reads back all it wrote, and only that
    assert TRIAL_KEYS <= set(frozen.user_attrs) <= TRIAL_KEYS | {"error"} | set(FIGURE_NAMES)
    assert set(again.user_attrs) == STUDY_KEYS
    assert trial_record.study_metric(again) == "val_accuracy"
    assert trial_record.study_objectives(again) == ["accuracy"]


def test_a_queued_configuration_keeps_its_source_and_config(storage):
    study = optuna.create_study(storage=storage)
    trial_record.enqueue(study, {}, "defaults", {"units": [8, 8]})
    trial_record.enqueue(study, {}, "warm-start", None)
    first, second = (trial_record.read(t) for t in reloaded(study, storage).trials)
    assert (first.enqueued, first.config) == ("defaults", {"units": [8, 8]})
    assert (second.enqueued, second.config) == ("warm-start", None)
    assert set(first.attrs()) == {tracking.ENQUEUED, "config"}
    live = study.ask()  # Optuna hands the queued trial out first
    assert trial_record.config_of(live) == {"units": [8, 8]}


def test_a_study_of_an_earlier_version_reads(storage):
    """Attributes written by hand, as the code before the record wrote them."""
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"])
    study.set_user_attr("val_metric", "val_accuracy")
    study.set_user_attr("objectives", ["accuracy", "params"])
    trial = study.ask()
    trial.set_user_attr("mlflow_run_id", "abc")
    trial.set_user_attr("worker", 1)
    trial.set_user_attr("test_accuracy", 0.75)
    study.tell(trial, [0.8, 1234.0])
    (record,) = trial_record.study_records(reloaded(study, storage))
    assert trial_record.value_names(study) == ("val_accuracy", "n_params")
    assert record.values == {"val_accuracy": 0.8, "n_params": 1234.0}
    assert (record.run_id, record.worker, record.metrics) == ("abc", 1, {"test_accuracy": 0.75})


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "n_layers": st.integers(1, 3),
                "learning_rate": st.sampled_from([1e-3, 3e-3, 0.01]),
                "emb_dim": st.sampled_from([16, 32]),
            }
        ),
        min_size=1,
        max_size=6,
    ),
    st.data(),
)
def test_optuna_and_mlflow_see_the_same_settings(configs, data):
    """The summary reads a study, the export its runs: the same trials vary in the same
    settings, with units as one "16,32" value on both sides."""
    trials, runs = [], []
    for number, config in enumerate(configs):
        units = data.draw(st.lists(st.sampled_from([8, 16, 32]), min_size=3, max_size=3))
        sampled = config | {f"units_{i}": u for i, u in enumerate(units, 1)}
        params = {k: v for k, v in sampled.items() if not k.startswith("units_")}
        logged = describe_params(params | {"units": units[: config["n_layers"]]})
        trials.append(  # a FrozenTrial's attributes
            SimpleNamespace(
                number=number,
                state=SimpleNamespace(name="COMPLETE"),
                values=[0.5],
                params={k: v for k, v in sampled.items() if _kept(k, config["n_layers"])},
                user_attrs={},
            )
        )
        runs.append(
            {
                "run_id": f"r{number}",
                "status": tracking.FINISHED,
                "params": {k: str(v) for k, v in logged.items()} | {"seed": str(number)},
                "metrics": {},
                "tags": {tracking.TRIAL_NUMBER: str(number), tracking.TRIAL_STATE: "COMPLETE"},
            }
        )
    from_optuna = [trial_record.read(t) for t in trials]
    from_mlflow = [trial_record.from_run(r) for r in runs]
    for a, b in zip(from_optuna, from_mlflow, strict=True):
        assert {k: str(v) for k, v in a.settings.items()} == b.settings
    assert report.varying(from_optuna) == report.varying(from_mlflow)


def _kept(name: str, n_layers: int) -> bool:
    """Optuna holds units_i only for the layers a trial has."""
    return not name.startswith("units_") or int(name[6:]) <= n_layers
