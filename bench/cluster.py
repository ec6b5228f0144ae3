"""`make cluster`: a rehearsal of a many-host Ray study, on this machine (needs root).

Three hosts in Linux network namespaces joined by a bridge, with private addresses inside
those namespaces only:

- host A (10.77.0.1): PostgreSQL (Optuna's storage) and `mlflow server` (its own
  PostgreSQL database, artifacts proxied by the server);
- host B (10.77.0.2): the Ray head and the driver, `pipeline search imdb --ray ...`;
- host C (10.77.0.3): a Ray worker node in its own mount namespace, where the dataset
  archives and the cache are empty folders: its trials' data can only come through Ray.

Each host has its own HOME. Ray's token authentication stays on: the head writes its
token, the rehearsal hands it to host C as a file (as `scp` would), and first shows that
a node started without it is refused. Mid-study, host C's Ray node is killed by its
processes' ids (`ip netns pids`; `ray stop` would end every Ray on the machine) and
started again. The report (bench/results/cluster.md) gives the trials run on each host,
the node loss, runs and trials by status and the wall time; it checks exactly N_TRIALS
finished trials and nothing RUNNING. Everything it made is removed at the end.

Usage: `make cluster` (or `python bench/cluster.py` as root, from the project folder).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
N_TRIALS, N_WORKERS, CPUS_PER_HOST = 40, 4, 2
KILL_AFTER = 10  # finished trials before host C's node is killed
DOWN_FOR = 20.0  # seconds host C stays down
NET = "10.77.0"
HOSTS = {"A": f"{NET}.1", "B": f"{NET}.2", "C": f"{NET}.3"}
BRIDGE = "plc-br"
PASSWORD = "rehearsal-pw-7f3a"  # PostgreSQL's; the report counts it in Ray's logs
RAY_PORT = 6379


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("make cluster makes network namespaces: run it as root")
    data_dir = Path(os.environ.get("PIPELINE_DATA_DIR") or Path.home() / ".keras" / "datasets")
    data_dir = data_dir.resolve()
    work = Path(tempfile.mkdtemp(prefix="plc-", dir="/tmp"))
    work.chmod(0o755)  # the postgres user reaches its data folder inside
    hosts = {name: work / name.lower() for name in HOSTS}
    for folder in hosts.values():
        (folder / ".ray").mkdir(parents=True)
    started = time.monotonic()
    try:
        network_up()
        say("network: 3 namespaces on bridge", BRIDGE)
        database = start_postgres(work / "pg")
        tracking = start_tracking(work / "mlflow", database)
        token = start_head(hosts["B"], work)
        refusal = node_without_token(hosts["C"], work)
        say("a node without the token:", refusal)
        give_token(token, hosts["C"])
        cache = work / "cache"
        cache.mkdir()
        hidden = [data_dir, cache, Path.home() / ".keras"]
        worker_node = start_worker_node(hosts["C"], work, hidden)
        seen = listing_on_c(worker_node, data_dir)
        say(f"host C sees {len(seen)} files in {data_dir}")
        result = drive(hosts, work, data_dir, cache, database, tracking, hidden)
        result |= {"refusal": refusal, "seen_on_c": seen, "hidden": hidden}
        result["password_in_ray_logs"] = count_password(work)
        result["wall_total"] = time.monotonic() - started
        report = write_report(result, database, tracking)
    finally:
        tear_down(work)
    print(report["text"])
    sys.exit(0 if report["ok"] else 1)


def say(*parts) -> None:
    print("[cluster]", *parts, flush=True)


# --- the hosts ----------------------------------------------------------------------------


def ns(name: str) -> str:
    return f"plc-{name.lower()}"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True)


def network_up() -> None:
    """A bridge in the root namespace (no address) and one veth per host; each host's end
    and its address live only inside its namespace."""
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "link", "set", BRIDGE, "up")
    for name, address in HOSTS.items():
        sh("ip", "netns", "add", ns(name))
        outside = f"plc-v{name.lower()}"
        sh("ip", "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", ns(name))
        sh("ip", "link", "set", outside, "master", BRIDGE, "up")
        sh("ip", "-n", ns(name), "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", ns(name), "link", "set", "eth0", "up")
        sh("ip", "-n", ns(name), "link", "set", "lo", "up")


def on(host: str, command: list[str], env: dict[str, str], **popen) -> subprocess.Popen:
    """Start a command on a host: in its network namespace, with its own HOME."""
    full = ["ip", "netns", "exec", ns(host), "env", "-i", *[f"{k}={v}" for k, v in env.items()]]
    return subprocess.Popen([*full, *command], **popen)


def base_env(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "LANG": "C.UTF-8",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def tear_down(work: Path) -> None:
    for name in HOSTS:
        pids = sh("ip", "netns", "pids", ns(name), check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    time.sleep(1)
    for name in HOSTS:
        sh("ip", "netns", "del", ns(name), check=False)
        sh("ip", "link", "del", f"plc-v{name.lower()}", check=False)
    sh("ip", "link", "del", BRIDGE, check=False)
    shutil.rmtree(work, ignore_errors=True)
    say("removed the namespaces, the bridge and", work)


# --- host A: the stores -------------------------------------------------------------------


class Database:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.host = HOSTS["A"]

    def url(self, name: str) -> str:
        return f"postgresql://postgres:{PASSWORD}@{self.host}:5432/{name}"


def start_postgres(folder: Path) -> Database:
    bindir = Path(
        shutil.which("initdb") or sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))[-1]
    ).parent
    folder.mkdir()
    shutil.chown(folder, "postgres")
    (folder / "pw").write_text(PASSWORD)
    shutil.chown(folder / "pw", "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    sh(*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "md5",
       f"--pwfile={folder / 'pw'}")  # fmt: skip
    with open(data / "pg_hba.conf", "a") as hba:
        hba.write(f"host all all {NET}.0/24 md5\n")
    options = f"-h {HOSTS['A']} -p 5432 -k {folder} -c max_connections=200"
    ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"), "-o", options]
    sh("ip", "netns", "exec", ns("A"), *as_postgres, *ctl, "start")
    database = Database(folder)
    for name in ("optuna", "mlflow"):
        sh("ip", "netns", "exec", ns("A"), "env", f"PGPASSWORD={PASSWORD}", "psql", "-h",
           HOSTS["A"], "-U", "postgres", "-c", f"CREATE DATABASE {name}")  # fmt: skip
    say("host A: PostgreSQL on", f"{HOSTS['A']}:5432")
    return database


def start_tracking(folder: Path, database: Database) -> str:
    folder.mkdir()
    url = f"http://{HOSTS['A']}:5000"
    command = [str(BIN / "mlflow"), "server", "--host", HOSTS["A"], "--port", "5000"]
    command += ["--workers", "2", "--backend-store-uri", database.url("mlflow")]
    command += ["--artifacts-destination", str(folder / "artifacts")]
    log = open(folder / "server.log", "w")  # noqa: SIM115
    on("A", command, base_env(folder), stdout=log, stderr=log)
    deadline = time.monotonic() + 180
    probe = ["python", "-c", f"import urllib.request; urllib.request.urlopen('{url}/health')"]
    while on("A", probe, base_env(folder), stderr=subprocess.DEVNULL).wait() != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"mlflow server did not start: {(folder / 'server.log').read_text()[-2000:]}"
            )
        time.sleep(1)
    say("host A: mlflow server on", url)
    return url


# --- hosts B and C: Ray -------------------------------------------------------------------


def start_head(home: Path, work: Path) -> Path:
    """The head on B with token authentication on: its operator generates the token
    (`ray get-auth-token --generate`, into B's HOME) and starts the head with
    RAY_AUTH_MODE=token (a plain `ray start --head` printed "Token authentication is
    disabled" here)."""
    env = base_env(home) | {"RAY_AUTH_MODE": "token"}
    token = home / ".ray" / "auth_token"
    run(on("B", ["ray", "get-auth-token", "--generate"], env, **PIPES), "the token")
    if not token.exists():
        raise RuntimeError(f"`ray get-auth-token --generate` wrote no {token}")
    command = ["ray", "start", "--head", f"--node-ip-address={HOSTS['B']}", f"--port={RAY_PORT}"]
    command += [f"--num-cpus={CPUS_PER_HOST}", "--include-dashboard=false"]
    command += ["--disable-usage-stats", f"--temp-dir={work / 'ray-b'}"]
    output = run(on("B", command, env, **PIPES), "the Ray head")
    if "authentication is disabled" in output.lower():
        raise RuntimeError(f"the head started without token authentication:\n{output[-2000:]}")
    say("host B: Ray head on", f"{HOSTS['B']}:{RAY_PORT}, token in", token)
    return token


PIPES = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}


def run(proc: subprocess.Popen, what: str) -> str:
    output = proc.communicate(timeout=120)[0]
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{output[-3000:]}")
    return output


def node_without_token(home: Path, work: Path) -> str:
    """A node that has no token (C's HOME holds none yet) is refused by the head."""
    command = [
        "ray",
        "start",
        f"--address={HOSTS['B']}:{RAY_PORT}",
        f"--node-ip-address={HOSTS['C']}",
    ]
    command += ["--num-cpus=1", "--disable-usage-stats"]
    proc = on(
        "C", command, base_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output = proc.communicate(timeout=120)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        output = proc.communicate()[0] + "\n(no answer in 120 s)"
    nodes = ray_nodes(work)
    kill_host("C")  # whatever it left behind
    if proc.returncode == 0 or len(nodes) != 1:
        raise RuntimeError(
            f"a node without the token joined ({len(nodes)} nodes):\n{output[-2000:]}"
        )
    lines = [line.strip() for line in output.splitlines() if re.search(r"(?i)token|auth", line)]
    return f"exit {proc.returncode}: " + (lines[-1][:240] if lines else output.strip()[-240:])


def give_token(token: Path, home: Path) -> None:
    """As an operator would copy it (scp), readable by its owner only."""
    target = home / ".ray" / "auth_token"
    shutil.copyfile(token, target)
    target.chmod(0o600)


def start_worker_node(home: Path, work: Path, hidden: list[Path]) -> int:
    """Host C's Ray node in a mount namespace of its own, where the data folders are empty
    tmpfs mounts; returns the pid of its raylet (for a look inside that namespace)."""
    mounts = " && ".join(f"mkdir -p {p} && mount -t tmpfs -o size=1m none {p}" for p in hidden)
    start = f"ray start --address={HOSTS['B']}:{RAY_PORT} --node-ip-address={HOSTS['C']}"
    start += f" --num-cpus={CPUS_PER_HOST} --disable-usage-stats"
    script = f"{mounts} && exec {start}"
    env = base_env(home) | {"RAY_AUTH_MODE": "token"}
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
    proc = on("C", command, env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.communicate(timeout=120)[0]
    if proc.returncode != 0:
        raise RuntimeError(f"host C's Ray node did not start:\n{output[-3000:]}")
    deadline = time.monotonic() + 60
    while len(ray_nodes(work)) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError("host C's node did not join the cluster")
        time.sleep(1)
    for pid in sh("ip", "netns", "pids", ns("C")).stdout.split():
        if "raylet" in Path(f"/proc/{pid}/comm").read_text():
            say("host C: Ray node joined, raylet pid", pid)
            return int(pid)
    raise RuntimeError("no raylet on host C")


def listing_on_c(raylet: int, data_dir: Path) -> list[str]:
    """What host C's Ray processes see in the data folder."""
    return sh("nsenter", f"--mount=/proc/{raylet}/ns/mnt", "ls", "-A", str(data_dir)).stdout.split()


def kill_host(host: str) -> list[int]:
    pids = [int(p) for p in sh("ip", "netns", "pids", ns(host), check=False).stdout.split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def ray_nodes(work: Path) -> list[dict]:
    """The cluster's live nodes, asked from host B (with B's token)."""
    code = (
        f"import json, ray; ray.init(address='{HOSTS['B']}:{RAY_PORT}', log_to_driver=False);"
        "print(json.dumps([n['NodeManagerAddress'] for n in ray.nodes() if n['Alive']]))"
    )
    env = base_env(work / "b") | {"RAY_AUTH_MODE": "token"}
    proc = on(
        "B",
        ["python", "-c", code],
        env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    out = proc.communicate(timeout=120)[0].strip().splitlines()
    return json.loads(out[-1]) if out else []


# --- the study ----------------------------------------------------------------------------


def drive(hosts, work: Path, data_dir: Path, cache: Path, database, tracking: str, hidden) -> dict:
    """`pipeline search` on B; host C's node killed after KILL_AFTER finished trials and
    started again DOWN_FOR seconds later."""
    storage = database.url("optuna")
    env = base_env(hosts["B"]) | {
        "RAY_AUTH_MODE": "token",
        "PIPELINE_DATA_DIR": str(data_dir),
        "PIPELINE_CACHE_DIR": str(cache),
        "MLFLOW_TRACKING_URI": tracking,
        "PYTHONPATH": str(ROOT),
    }
    command = ["pipeline", "search", "imdb", "--ray", f"{HOSTS['B']}:{RAY_PORT}"]
    command += ["--workers", str(N_WORKERS), "--n-trials", str(N_TRIALS), "--study", "cluster"]
    command += ["--storage", storage, "--heartbeat", "5", "--timeout", "3000"]
    log = open(work / "driver.log", "w")  # noqa: SIM115
    started = time.monotonic()
    driver = on("B", command, env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    say("host B: driver started:", " ".join(command).replace(PASSWORD, "***"))
    events: list[str] = []
    while finished_trials(env, storage) < KILL_AFTER:
        if driver.poll() is not None:
            raise RuntimeError(
                f"the driver ended early:\n{(work / 'driver.log').read_text()[-3000:]}"
            )
        time.sleep(3)
    at = time.monotonic() - started
    pids = kill_host("C")
    events.append(
        f"{at:.0f} s: host C's Ray node killed ({len(pids)} processes, SIGKILL by `ip netns pids`)"
    )
    say(events[-1])
    time.sleep(DOWN_FOR)
    start_worker_node(hosts["C"], work, hidden)
    events.append(f"{time.monotonic() - started:.0f} s: host C's Ray node started again and joined")
    say(events[-1])
    code = driver.wait(timeout=3000)
    wall = time.monotonic() - started
    output = (work / "driver.log").read_text()
    say(f"driver exited {code} after {wall:.0f} s")
    return {"code": code, "wall": wall, "events": events, "driver_output": output, "env": env}


def finished_trials(env: dict, storage: str) -> int:
    code = (
        "import optuna, sys; optuna.logging.set_verbosity(optuna.logging.ERROR)\n"
        "try:\n s = optuna.load_study(study_name='cluster', storage=sys.argv[1])\n"
        "except KeyError:\n print(0); raise SystemExit\n"
        "print(sum(t.state.name in ('COMPLETE', 'PRUNED') for t in s.get_trials(deepcopy=False)))"
    )
    proc = on(
        "B",
        ["python", "-c", code, storage],
        env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    out = proc.communicate(timeout=120)[0].strip()
    return int(out) if out.isdigit() else 0


def count_password(work: Path) -> int:
    count = 0
    for root in (work / "ray-b", Path("/tmp/ray")):
        for path in root.rglob("*"):
            if path.is_file() and path.stat().st_size < 50_000_000:
                count += path.read_bytes().count(PASSWORD.encode())
    return count


# --- the report ---------------------------------------------------------------------------

SUMMARY = r"""
import json, sys, optuna
from collections import Counter
from mlflow.tracking import MlflowClient
optuna.logging.set_verbosity(optuna.logging.ERROR)
storage, tracking = sys.argv[1], sys.argv[2]
study = optuna.load_study(study_name="cluster", storage=storage)
client = MlflowClient(tracking)
experiment = client.get_experiment_by_name("imdb")
runs = client.search_runs([experiment.experiment_id], max_results=5000)
children = [r for r in runs if "trial_number" in r.data.tags]
print(json.dumps({
    "trials": dict(Counter(t.state.name for t in study.trials)),
    "retried": sum(1 for t in study.trials if t.system_attrs.get("failed_trial") is not None),
    "runs": dict(Counter(r.info.status for r in runs)),
    "parents": sum(1 for r in runs if "trial_number" not in r.data.tags),
    "by_ip": dict(Counter(f"{r.data.tags.get('ray_node_ip', '?')}|{r.info.status}"
                          for r in children)),
    "nodes": dict(Counter(
        f"{r.data.tags.get('ray_node_ip', '?')}|{r.data.tags.get('ray_node', '?')[:8]}"
        for r in children)),
    "best": study.best_value,
    "ensemble": study.user_attrs.get("ensemble"),
    "complete_runs": sum(1 for r in children if r.data.tags.get("trial_state") == "COMPLETE"),
    "with_predictions": sum(
        1 for r in children if r.data.tags.get("trial_state") == "COMPLETE"
        and "predictions" in {a.path for a in client.list_artifacts(r.info.run_id)}),
    "member_ips": sorted({r.data.tags.get("ray_node_ip", "?") for r in children
        if str(r.data.tags.get("trial_number")) in
        (study.user_attrs.get("ensemble") or {}).get("members", {})}),
}))
"""


def write_report(result: dict, database: Database, tracking: str) -> dict:
    env = result["env"]
    proc = on("B", ["python", "-c", SUMMARY, database.url("optuna"), tracking], env,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    out, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"could not read the stores:\n{err[-3000:]}")
    s = json.loads(out.strip().splitlines()[-1])
    name_of = {address: name for name, address in HOSTS.items()}
    finished = s["trials"].get("COMPLETE", 0) + s["trials"].get("PRUNED", 0)
    running = s["runs"].get("RUNNING", 0) + s["trials"].get("RUNNING", 0)
    lost = re.findall(r"Ray worker \d+ lost[^\n]*", result["driver_output"])
    checks = {
        f"exactly {N_TRIALS} finished trials": finished == N_TRIALS,
        "no run and no trial RUNNING": running == 0,
        "the driver exited 0": result["code"] == 0,
        "host C ran trials with no archive in sight": not result["seen_on_c"]
        and any(k.startswith(HOSTS["C"]) for k in s["by_ip"]),
        "a node without the token was refused": result["refusal"].startswith("exit"),
        "the node loss was seen and replaced": bool(lost),
        "the storage password is not in Ray's logs": result["password_in_ray_logs"] == 0,
        "every completed trial's predictions reached the tracking server": s["complete_runs"]
        == s["with_predictions"]
        > 0,
        "an ensemble was chosen from the kept trials": bool(s["ensemble"])
        and s["ensemble"]["candidates"] >= 2,
    }
    per_host = Counter()
    for key, count in s["by_ip"].items():
        ip, status = key.split("|")
        per_host[(name_of.get(ip, ip), status)] += count
    lines = [
        "# `make cluster`: a three-host Ray rehearsal",
        "",
        f"Written by `bench/cluster.py` on {time.strftime('%Y-%m-%d')}, on one 2-core machine "
        "(hosts are Linux network namespaces joined by a bridge; each Ray node declares "
        f"{CPUS_PER_HOST} CPUs, so 4 workers share 2 real cores).",
        "",
        f"`pipeline search imdb --ray {HOSTS['B']}:{RAY_PORT} --workers {N_WORKERS} "
        f"--n-trials {N_TRIALS} --storage postgresql://postgres:***@{HOSTS['A']}:5432/optuna` "
        f"on host B, `MLFLOW_TRACKING_URI=http://{HOSTS['A']}:5000`; the default IMDB space.",
        "",
        "| host | address | role |",
        "|---|---|---|",
        f"| A | {HOSTS['A']} | PostgreSQL (Optuna's storage, MLflow's backend), `mlflow server` |",
        f"| B | {HOSTS['B']} | Ray head ({CPUS_PER_HOST} CPUs), the driver, the data server |",
        f"| C | {HOSTS['C']} | Ray worker node ({CPUS_PER_HOST} CPUs); archives and cache hidden |",
        "",
        "## Checks",
        "",
        *[f"- [{'x' if ok else ' '}] {name}" for name, ok in checks.items()],
        "",
        "## What happened",
        "",
        f"- Wall time of the search: {result['wall']:.0f} s "
        f"(the whole rehearsal: {result['wall_total']:.0f} s).",
        f"- A node started on host C without the token: {result['refusal']}",
        f"- Host C's Ray processes see `{', '.join(map(str, result['hidden']))}` as empty "
        f"tmpfs mounts ({len(result['seen_on_c'])} files in the data folder).",
        *[f"- {event}" for event in result["events"]],
        *[f"- driver: `{line.strip()}`" for line in lost],
        f"- The storage password found {result['password_in_ray_logs']} times in Ray's logs.",
        f"- Best val_accuracy: {s['best']:.4f}.",
        *_ensemble_lines(s),
        "",
        "## Trials and runs",
        "",
        "| Optuna trials by state | count |",
        "|---|---|",
        *[f"| {state} | {count} |" for state, count in sorted(s["trials"].items())],
        f"| retried (a FAIL's parameters tried again) | {s['retried']} |",
        "",
        "| MLflow runs by status | count |",
        "|---|---|",
        *[f"| {status} | {count} |" for status, count in sorted(s["runs"].items())],
        f"| of which parent runs | {s['parents']} |",
        "",
        "| host | trial runs FINISHED | KILLED | other |",
        "|---|---|---|---|",
    ]
    for host in ("A", "B", "C"):
        done = per_host.get((host, "FINISHED"), 0)
        killed = per_host.get((host, "KILLED"), 0)
        other = sum(c for (h, st), c in per_host.items() if h == host) - done - killed
        lines.append(f"| {host} | {done} | {killed} | {other} |")
    lines += ["", "Ray nodes (address, id) that trials ran on: " + ", ".join(
        f"{k.replace('|', ' ')} ({v})" for k, v in sorted(s["nodes"].items())) + "."]  # fmt: skip
    text = "\n".join(lines) + "\n"
    (ROOT / "bench" / "results" / "cluster.md").write_text(text)
    return {"text": text, "ok": all(checks.values())}


def _ensemble_lines(s: dict) -> list[str]:
    ens = s["ensemble"]
    if not ens:
        return ["- No ensemble was chosen."]
    name_of = {address: name for name, address in HOSTS.items()}
    hosts = ", ".join(name_of.get(ip, ip) for ip in s["member_ips"])
    return [
        f"- Ensemble of {len(ens['members'])} of the {ens['candidates']} kept trials "
        f"(members trained on hosts {hosts}): held-out val_accuracy {ens['held_out']:.4f} "
        f"against the best trial's {ens['best_held_out']:.4f}; test_accuracy "
        f"{ens['test']:.4f} against {ens['best_test']:.4f}; "
        + (f"registered as {ens['model_uri']}." if ens.get("model_uri") else "not registered.")
    ]


if __name__ == "__main__":
    main()
