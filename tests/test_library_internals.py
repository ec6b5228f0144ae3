"""The private names the code takes from its libraries, where they have no public way: each
test imports exactly what the code imports and checks what it relies on, so that an upgrade
that moves or changes one fails here, by name, not in a search."""

from __future__ import annotations

import importlib.util
import inspect
from types import SimpleNamespace

import pytest


def test_optuna_rdb_tables_and_session_for_heartbeats(tmp_path):
    """`engine/studies.py` (`_NeverBeatIsStale`) and `engine/housekeeping.py`
    (`_running_trials`): RUNNING trials with their heartbeats, queried in Optuna's tables."""
    import optuna
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    trial, beat = models.TrialModel, models.TrialHeartbeatModel
    for column in ("trial_id", "number", "study_id", "state", "_datetime_start_utc"):
        assert hasattr(trial, column), f"optuna TrialModel.{column}"
    for column in ("trial_heartbeat_id", "heartbeat", "trial_id"):
        assert hasattr(beat, column), f"optuna TrialHeartbeatModel.{column}"
    assert beat.trial_id.property.columns[0].foreign_keys  # what `outerjoin(beat)` joins on
    assert list(inspect.signature(_create_scoped_session).parameters)[:1] == ["scoped_session"]
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    for attribute in ("scoped_session", "grace_period", "heartbeat_interval"):
        assert hasattr(storage, attribute), f"optuna RDBStorage.{attribute}"
    with _create_scoped_session(storage.scoped_session) as session:  # as the code queries
        rows = session.query(trial.number, beat.heartbeat, trial._datetime_start_utc)
        assert rows.outerjoin(beat).filter(trial.study_id == 0).all() == []


def test_optuna_rdb_storage_methods_beating_storage_overrides():
    """`engine/studies.py`: the stale-trial query `_NeverBeatIsStale` extends, and every
    method `BeatingStorage` wraps (`_CALLS`, some private) still on `RDBStorage`."""
    import optuna

    from pipeline.engine import studies

    storage = optuna.storages.RDBStorage
    stale = inspect.signature(storage._get_stale_trial_ids)
    assert list(stale.parameters) == ["self", "study_id"]
    missing = [name for name in studies._CALLS if not callable(getattr(storage, name, None))]
    assert missing == []


def test_keras_tensorflow_lazy_module():
    """`backends._keep_tensorflow_out` and `backends.import_tensorflow`: Keras' cached
    answer to "is TensorFlow installed?", the one its saving code asks."""
    from keras.src.saving import serialization_lib
    from keras.src.utils import module_utils

    lazy = module_utils.tensorflow
    assert serialization_lib.tf is lazy  # saving asks this object
    before = lazy._available
    try:
        lazy._available = False
        assert lazy.available is False  # the answer kept is the answer given
        lazy._available = None
        assert lazy.available is True  # asked again: TensorFlow is installed here
    finally:
        lazy._available = before


def test_keras_global_seed_state(monkeypatch):
    """`backends.set_seed` on JAX and PyTorch: the global state that
    `keras.utils.set_random_seed` resets, written there without its TensorFlow step."""
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    written = []
    monkeypatch.setattr(global_state, "set_global_attribute", lambda *a: written.append(a))
    monkeypatch.setattr(rng_utils, "tf", SimpleNamespace(available=False))
    monkeypatch.setattr(rng_utils.random, "seed", lambda seed: None)
    monkeypatch.setattr(rng_utils.np.random, "seed", lambda seed: None)
    rng_utils.set_random_seed(7)
    assert written == [("global_random_seed", 7), (seed_generator.GLOBAL_SEED_GENERATOR, None)]


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray (pipeline[ray])")
def test_ray_cluster_switch():
    """`engine/executors/ray_workers._loopback_only`: Ray's switch for a node on the
    loopback, read from the environment at import and then from this constant."""
    from ray._private import ray_constants, services

    from pipeline.engine.executors import ray_workers

    assert ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR == ray_workers._LOOPBACK_SWITCH
    assert isinstance(ray_constants.ENABLE_RAY_CLUSTER, bool)
    # read when Ray picks its address, not copied at import: setting the constant counts
    assert "ray_constants.ENABLE_RAY_CLUSTER" in inspect.getsource(services.get_node_ip_address)
