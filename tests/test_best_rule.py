"""One rule for "the best trial", wherever one is chosen: the best value first (lower when
the metric is minimized), a tie to the lower trial number (`metrics.ranking_key`). The
summary a search prints, the export, the parent run's best trial (`studies.best_trial`)
and `pipeline studies` must name the same trial, whichever worker finished first."""

from __future__ import annotations

import math

import optuna
import pytest
from hypothesis import given
from hypothesis import strategies as st
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from pipeline import report, summary, tracking
from pipeline.engine import housekeeping, studies
from pipeline.metrics import ranking_key

optuna.logging.set_verbosity(optuna.logging.ERROR)
X = {"x": FloatDistribution(0, 1)}

# --- the rule itself ----------------------------------------------------------------------

# few distinct values, so that ties are frequent; and the odd ones: -0.0, infinities, NaN,
# a missing value (an export's run without the metric)
VALUES = st.one_of(
    st.sampled_from([0.5, 0.8, 0.0, -0.0, math.inf, -math.inf, math.nan, None]),
    st.floats(),
)
TRIALS = st.lists(st.tuples(VALUES, st.integers(0, 10**6)), max_size=12, unique_by=lambda p: p[1])


def known(value) -> bool:
    return value is not None and not math.isnan(value)


@given(TRIALS, st.booleans())
def test_the_chosen_trial_has_the_best_value_and_the_lowest_number_among_ties(trials, minimize):
    if not trials:
        return
    value, number = min(trials, key=lambda t: ranking_key(t[0], t[1], minimize))
    values = [v for v, _ in trials if known(v)]
    if not values:  # nothing known: the lowest number
        assert number == min(n for _, n in trials)
        return
    best = min(values) if minimize else max(values)
    assert known(value) and value == best
    assert number == min(n for v, n in trials if known(v) and v == best)


@given(TRIALS, st.booleans(), st.randoms(use_true_random=False))
def test_the_ranking_is_a_total_order(trials, minimize, rng):
    """Distinct trials never tie, so the ranking does not depend on the order they come in
    (the order of the workers, of MLflow's search, of the files)."""
    key = lambda t: ranking_key(t[0], t[1], minimize)  # noqa: E731
    ranked = sorted(trials, key=key)
    shuffled = list(trials)
    rng.shuffle(shuffled)
    assert [n for _, n in sorted(shuffled, key=key)] == [n for _, n in ranked]
    keys = [key(t) for t in ranked]
    assert all(a < b for a, b in zip(keys, keys[1:], strict=False))  # strictly increasing
    seen = [v for v, _ in ranked if known(v)]
    assert seen == sorted(seen, reverse=not minimize)  # known values best first ...
    assert all(known(v) for v, _ in ranked[: len(seen)])  # ... then the unknown ones


def test_ranking_key_examples():
    assert ranking_key(0.8, 3, minimize=False) < ranking_key(0.8, 4, minimize=False)
    assert ranking_key(0.9, 9, minimize=False) < ranking_key(0.8, 1, minimize=False)
    assert ranking_key(2.4, 9, minimize=True) < ranking_key(2.5, 1, minimize=True)
    assert ranking_key(0.1, 9, minimize=True) < ranking_key(None, 0, minimize=True)
    assert ranking_key(-math.inf, 9, minimize=False) < ranking_key(math.nan, 0, minimize=False)


# --- a tie between two workers' trials ----------------------------------------------------

CASES = [  # metric, direction, the tied best value, a worse one
    ("val_accuracy", "maximize", 0.8, 0.5),
    ("val_mae", "minimize", 2.5, 3.0),
]


def tied_study(metric: str, direction: str, best: float, worse: float) -> optuna.Study:
    """Trials 0 and 1 tie on the best value; trial 1 (another worker's) finished first,
    which is what Optuna's own `best_trial` goes by: it names trial 1."""
    study = optuna.create_study(direction=direction)
    study.set_user_attr("val_metric", metric)
    first, second = study.ask(X), study.ask(X)
    study.tell(second, best)
    study.tell(first, best)
    study.add_trial(
        create_trial(state=TrialState.COMPLETE, value=worse, params={"x": 0.5}, distributions=X)
    )
    assert study.best_trial.number == 1  # Optuna's rule: the first to finish
    return study


@pytest.mark.parametrize(("metric", "direction", "best", "worse"), CASES)
def test_a_study_names_the_lower_number_of_a_tie(metric, direction, best, worse):
    study = tied_study(metric, direction, best, worse)
    assert studies.best_trial(study).number == 0
    assert housekeeping.summarize(study)["best_trial"] == 0  # pipeline studies
    text = summary.summary_text(study)
    assert text.splitlines()[0].startswith(f"best   trial 0    {metric} {best:.4f}")
    assert list(report.trials_frame(study)["trial"]) == [0, 1, 2]


def test_two_objectives_the_pareto_trial_best_on_the_first_with_the_lower_number():
    study = optuna.create_study(directions=["maximize", "minimize"])
    for values in ([0.7, 100.0], [0.9, 300.0], [0.9, 300.0], [0.8, 200.0]):
        study.add_trial(
            create_trial(state=TrialState.COMPLETE, values=values, params={}, distributions={})
        )
    assert studies.best_trial(study).number == 1
    assert housekeeping.summarize(study)["best_trial"] == 1


def run(number: int, metrics: dict, objectives: str = "accuracy") -> dict:
    """A trial run, as `tracking.Tracker.trial_runs` returns it."""
    return {
        "run_id": f"run-{number}",
        "status": tracking.FINISHED,
        "params": {"units": str(8 + number)},
        "metrics": metrics,
        "tags": {
            tracking.TRIAL_NUMBER: str(number),
            tracking.TRIAL_STATE: "COMPLETE",
            tracking.OBJECTIVES: objectives,
        },
    }


@pytest.mark.parametrize(("metric", "direction", "best", "worse"), CASES)
def test_the_export_ranks_a_tie_by_trial_number(metric, direction, best, worse):
    """MLflow returns the newest runs first: trial 2 before trial 0, tied."""
    name = f"final_{metric}"
    runs = [run(3, {}), run(2, {name: best}), run(1, {name: worse}), run(0, {name: best})]
    frame, _, _ = report.export_frame(runs)
    assert list(frame["run_id"]) == ["run-0", "run-2", "run-1", "run-3"]  # no metric: last
    assert list(frame["rank"]) == [1, 2, 3, 4]


def test_the_export_of_two_objectives_ranks_the_front_by_the_rule():
    runs = [
        run(n, {"final_val_accuracy": acc, "n_params": size}, "accuracy,params")
        for n, acc, size in ((3, 0.9, 300.0), (2, 0.8, 100.0), (1, 0.9, 300.0), (0, 0.7, 50.0))
    ]
    frame, heading, _ = report.export_frame(runs)
    assert heading.startswith("Pareto front: 4 of 4 completed trials")
    assert list(frame["run_id"]) == ["run-1", "run-3", "run-2", "run-0"]


@pytest.mark.parametrize(("metric", "direction", "best", "worse"), CASES)
def test_summary_export_and_best_trial_agree(metric, direction, best, worse):
    """The same trials, read from Optuna and from their MLflow runs (newest first)."""
    study = tied_study(metric, direction, best, worse)
    runs = [
        run(t.number, {f"final_{metric}": t.value})
        for t in sorted(study.trials, key=lambda t: t.datetime_complete, reverse=True)
    ]
    frame, _, _ = report.export_frame(runs)
    chosen = {
        "best_trial": studies.best_trial(study).number,
        "summary": int(summary.summary_text(study).split()[2]),
        "export": int(frame["run_id"].iloc[0].removeprefix("run-")),
        "trials_frame": int(report.trials_frame(study)["trial"].iloc[0]),
    }
    assert set(chosen.values()) == {0}, chosen


def many_settings_study(n_keys: int) -> optuna.Study:
    """Four trials whose params all differ in `n_keys` keys of a custom builder's."""
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("val_metric", "val_accuracy")
    names = [f"builder_key_{i}" for i in range(n_keys)]
    dists = {n: FloatDistribution(0, 1) for n in names}
    for number in range(4):
        values = {n: round(0.1 * number + 0.01 * i, 3) for i, n in enumerate(names)}
        attrs = {"run_id": f"r{number}", "test_accuracy": 0.5, "epochs_run": 2, "best_epoch": 2}
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE,
                value=0.5 + number / 10,
                params=values,
                distributions=dists,
                user_attrs=attrs,
            )
        )
    return study


@pytest.mark.parametrize("n_keys", [1, 12, 30])
def test_the_summary_shows_every_setting_that_varies_within_its_width(n_keys):
    text = summary.summary_text(many_settings_study(n_keys))
    assert all(f" builder_key_{i} " in text for i in range(n_keys))
    assert max(len(line) for line in text.splitlines()) <= summary.WIDTH
    tables = text.count("| trial |") + text.count("|   trial |")
    assert tables == (1 if n_keys == 1 else 1 + text.count("More settings of the same trials:"))
    assert (tables > 1) == (n_keys > 1)
    assert text.count("\n|       3 |") == tables  # each table lists the same trials


def test_the_export_names_each_ensemble_members_picks():
    runs = [run(0, {"final_val_accuracy": 0.9}), run(1, {"final_val_accuracy": 0.8})]
    text = report.export_text(runs, ensemble={0: 1, 1: 3})
    assert "Ensemble: trial 0 (1 pick), trial 1 (3 picks); ensemble_weight" in text
    frame, _, _ = report.export_frame(runs, ensemble={0: 1, 1: 3})
    assert list(frame["ensemble_weight"]) == [0.25, 0.75]
