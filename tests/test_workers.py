"""Several worker processes on one study: exact trial counts, one run per trial."""

from __future__ import annotations

import optuna
import pytest
from mlflow.tracking import MlflowClient

from pipeline import study as studies
from pipeline import workers
from tests.test_study import runs_of, space_file


def test_quotas_split_evenly():
    assert workers.quotas(10, 4) == [3, 3, 2, 2]
    assert workers.quotas(1, 2) == [1, 0]
    assert sum(workers.quotas(40, 4)) == 40


def check_one_run_per_trial(stores, experiment: str, study: optuna.Study, n: int) -> None:
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == n
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    parents, children = runs_of(stores["tracking"], experiment)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    finished = [c for c in children if c.info.status == "FINISHED"]
    by_number = {}
    for run in finished:
        by_number.setdefault(int(run.data.tags["trial_number"]), []).append(run)
    assert sorted(by_number) == sorted(t.number for t in complete)
    assert all(len(runs) == 1 for runs in by_number.values())
    for t in complete:
        assert by_number[t.number][0].info.run_id == t.user_attrs["mlflow_run_id"]
    assert not [c for c in children if c.info.status == "RUNNING"]


@pytest.mark.slow
def test_two_workers_on_sqlite_finish_exactly_n_trials(tiny_data, stores, tmp_path):
    cfg = studies.SearchConfig("imdb", space_file(tmp_path), n_trials=6, pruner="none", workers=2)
    outcome = studies.run_study(cfg)
    check_one_run_per_trial(stores, "imdb", outcome.study, 6)
    client = MlflowClient(tracking_uri=stores["tracking"])
    parent = runs_of(stores["tracking"], "imdb")[0][0]
    assert "best_model.keras" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    _, children = runs_of(stores["tracking"], "imdb")
    first_params = {c.data.params["units_1"] + c.data.params["activation"] for c in children}
    assert len(first_params) > 2  # the workers' samplers are seeded apart
