"""Tiny archives in the original formats, temp stores, and the real-data switch."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from hypothesis import HealthCheck, settings
from mlflow.tracking import MlflowClient

# --- hypothesis: "ci" is deterministic and short (make test); "fuzz" is long and random -----

_SLOW_EXAMPLES = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
settings.register_profile(
    "ci",
    max_examples=150,
    derandomize=True,  # the same examples on every run: CI is deterministic
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SLOW_EXAMPLES,
)
settings.register_profile(
    "fuzz",
    max_examples=2_500,
    derandomize=False,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SLOW_EXAMPLES,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# --- helpers the test modules share ------------------------------------------------------

TINY_SPACE = {
    "defaults": {
        "units": 8,
        "loss": "binary_crossentropy",
        "epochs": 1,
        "batch_size": 16,
        "optimizer": "rmsprop",
        "learning_rate": 0.01,
    },
    "search": {
        "n_layers": {"type": "int", "low": 1, "high": 2},
        "units": {"type": "int", "low": 4, "high": 16, "per_layer": True},
        "activation": {"type": "categorical", "choices": ["relu", "tanh"]},
    },
}


def space_file(tmp_path: Path, raw: dict = TINY_SPACE) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def runs_of(uri: str, experiment: str) -> tuple[list, list]:
    """The experiment's parent runs, and its trial runs (their children)."""
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    trials = [r for r in children if "trial_number" in r.data.tags]  # not an ensemble's run
    return parents, trials


def artifacts(client: MlflowClient, run_id: str) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id)}


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


def check_best_everywhere(study: optuna.Study, stores) -> None:
    """The registered model, the summary and the export name one best trial: the best
    value, and the lowest number among its ties (tiny IMDB's validation accuracies are
    multiples of 1/20, so ties are common)."""
    from pipeline import report, summary, tracking

    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    best = min(done, key=lambda t: (-t.value, t.number))
    client = MlflowClient(tracking_uri=stores["tracking"])
    champion = client.get_model_version_by_alias(study.study_name, "champion")
    assert champion.run_id == best.user_attrs["mlflow_run_id"]
    assert f"best   trial {best.number} " in summary.summary_text(study)
    runs = tracking.Tracker(stores["tracking"]).trial_runs("imdb", study.study_name)
    frame, _, _ = report.export_frame(runs)
    assert frame.iloc[0]["run_id"] == best.user_attrs["mlflow_run_id"]


# --- tiny archives ------------------------------------------------------------------------

REAL_DATA = Path(os.environ.get("PIPELINE_DATA_DIR", "../shared/data")).resolve()
REAL_FILES = ("aclImdb_v1.tar.gz", "reuters21578.tar.gz", "housing.data")

POSITIVE = ["great", "wonderful", "superb", "moving", "brilliant"]
NEGATIVE = ["awful", "terrible", "boring", "dull", "waste"]
FILLER = ["the", "a", "movie", "film", "plot", "actor", "scene", "story", "it", "was", "and", "of"]


def review(rng: np.random.RandomState, positive: bool) -> str:
    words = list(rng.choice(FILLER, 12)) + list(rng.choice(POSITIVE if positive else NEGATIVE, 3))
    rng.shuffle(words)
    return " ".join(words) + "<br /><br />The end."


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_imdb(folder: Path, per_class: int = 25) -> Path:
    """aclImdb_v1.tar.gz with `per_class` reviews in each of train/test x pos/neg."""
    rng = np.random.RandomState(0)
    path = folder / "aclImdb_v1.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "test"):
            for polarity in ("pos", "neg"):
                for i in range(per_class):
                    text = review(rng, polarity == "pos").encode()
                    add_file(
                        tar,
                        f"aclImdb/{split}/{polarity}/{i}_{7 if polarity == 'pos' else 2}.txt",
                        text,
                    )
        add_file(tar, "aclImdb/README", b"not a review")
    return path


# Topic of each generated newswire: Keras topics, one outside the 46, and none at all.
REUTERS_TOPICS = ["earn", "acq", "crude", "earn", "acq", "soybean", "", "crude", "earn", "grain"]


def newswire(newid: int, topic: str) -> str:
    topics = f"<D>{topic}</D><D>usa</D>" if topic else ""
    words = {
        "earn": "profit net shr",
        "acq": "acquire stake merger",
        "crude": "oil barrel opec",
        "grain": "wheat corn tonnes",
        "soybean": "soy beans",
    }.get(topic, "misc news")
    return (
        f'<REUTERS TOPICS="YES" LEWISSPLIT="TRAIN" OLDID="1" NEWID="{newid}">\n'
        f"<DATE>26-FEB-1987</DATE>\n<TOPICS>{topics}</TOPICS>\n<TEXT>&#2;\n"
        f"<TITLE>HEADLINE{newid} {topic.upper()}</TITLE>\n"
        f"<BODY>Company said {words} {words} &lt;quoted&gt; today.\n Reuter\n&#3;</BODY></TEXT>\n"
        "</REUTERS>\n"
    )


def make_reuters(folder: Path, n: int = 80) -> Path:
    """reuters21578.tar.gz with two .sgm files of `n` newswires in all."""
    path = folder / "reuters21578.tar.gz"
    docs = [newswire(i, REUTERS_TOPICS[(i - 1) % len(REUTERS_TOPICS)]) for i in range(1, n + 1)]
    half = n // 2
    with tarfile.open(path, "w:gz") as tar:
        for k, part in enumerate((docs[:half], docs[half:])):
            body = '<!DOCTYPE lewis SYSTEM "lewis.dtd">\n' + "".join(part)
            add_file(tar, f"reut2-{k:03d}.sgm", body.encode("latin-1"))
        add_file(tar, "lewis.dtd", b"<!-- dtd -->")
    return path


def make_housing(folder: Path, n: int = 60) -> Path:
    rng = np.random.RandomState(1)
    x = rng.uniform(0, 10, size=(n, 13))
    y = 5 + 2 * x[:, 5] - 0.5 * x[:, 12] + rng.normal(0, 0.5, n)
    path = folder / "housing.data"
    np.savetxt(path, np.column_stack([x, y]), fmt="%.4f")
    return path


@pytest.fixture(scope="session")
def tiny_archives(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-data")
    make_imdb(folder)
    make_reuters(folder)
    make_housing(folder)
    return folder


@pytest.fixture
def tiny_data(tiny_archives, tmp_path, monkeypatch) -> Path:
    """A data folder holding the tiny archives, with its own fresh cache folder."""
    folder = tmp_path / "data"
    shutil.copytree(tiny_archives, folder)
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(folder))
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    return folder


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    """One migrated MLflow SQLite store per session (creating one costs about 2 s)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def stores(mlflow_template, tmp_path, monkeypatch) -> dict[str, str]:
    """Fresh MLflow and Optuna stores under tmp_path/mlruns, set as the defaults."""
    root = tmp_path / "mlruns"
    root.mkdir()
    shutil.copy(mlflow_template, root / "mlflow.db")
    uris = {
        "tracking": f"sqlite:///{root / 'mlflow.db'}",
        "storage": f"sqlite:///{root / 'optuna.db'}",
    }
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uris["tracking"])
    monkeypatch.setenv("PIPELINE_STORAGE", uris["storage"])
    return uris


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory) -> Path:
    """Vectorized real data is cached once per session (or where CI points)."""
    return Path(os.environ.get("PIPELINE_CACHE_DIR") or tmp_path_factory.mktemp("real-cache"))


@pytest.fixture
def real_data(monkeypatch, real_cache) -> Path:
    missing = [f for f in REAL_FILES if not (REAL_DATA / f).exists()]
    if missing:
        pytest.skip(f"real archives absent from {REAL_DATA}: {', '.join(missing)}")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(REAL_DATA))
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(real_cache))
    return REAL_DATA


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (as the postgres user when root)."""

    def __init__(self, bindir: Path) -> None:
        import tempfile

        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.folder = Path(tempfile.mkdtemp(prefix="pipeline-pg-"))
        self.password, self.port = "s3cret-pw", _free_port()
        (self.folder / "pw").write_text(self.password)
        if self.as_user:
            shutil.chown(self.folder, "postgres")
            shutil.chown(self.folder / "pw", "postgres")
        data = self.folder / "data"
        self._run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "md5",
            f"--pwfile={self.folder / 'pw'}",
        )
        self.ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(self.folder / "log")]
        self.start()

    def _run(self, *args: str) -> None:
        import subprocess

        subprocess.run([*self.as_user, *args], check=True, capture_output=True)

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c max_connections=200"
        self._run(*self.ctl, "-o", options, "start")

    def stop(self) -> None:
        self._run(*self.ctl, "-m", "immediate", "stop")

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_bindir() -> Path:
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL is not installed (apt-get install postgresql): "
            "the PostgreSQL tests are SKIPPED"
        )
    return bindir


@pytest.fixture(scope="session")
def postgres_url(pg_bindir):
    """A real PostgreSQL on 127.0.0.1 for this session: PIPELINE_TEST_POSTGRES, or a server
    started from Debian's `postgresql` package (.ci/run installs it)."""
    if os.environ.get("PIPELINE_TEST_POSTGRES"):
        yield os.environ["PIPELINE_TEST_POSTGRES"]
        return
    server = PostgresServer(pg_bindir)
    try:
        yield server.url
    finally:
        server.remove()


@pytest.fixture
def pg_storage(postgres_url, monkeypatch) -> str:
    """A fresh database on the session's server, set as PIPELINE_STORAGE."""
    import uuid

    import sqlalchemy

    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    monkeypatch.setenv("PIPELINE_STORAGE", url)
    return url
