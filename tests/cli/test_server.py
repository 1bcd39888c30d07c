"""``softmax-lab server``: a real team store (PostgreSQL run as ``postgres``, ``mlflow server`` with
basic auth and proxied artifacts) started by the real command, and every other command run
against it as real processes: with the admin's credentials, a wrong password, a second user.
"""

from __future__ import annotations

import base64
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli import cli
from helpers.servers import free_port
from helpers.team_store import TeamStore, read_env_file, running_team_store, signed_in, uri_printed
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

PROBE = "/api/2.0/mlflow/experiments/search?max_results=1"


@pytest.fixture(scope="module")
def team() -> Iterator[TeamStore]:
    with running_team_store() as store:
        yield store


def _overrides(work: Path, digits_dir: Path, experiment: str) -> list[str]:
    """A job on the small digits, tracked by the store the environment names."""
    return [
        "dataset=idx",
        f"dataset.path={digits_dir}",
        f"tracking.experiment={experiment}",
        f"hydra.sweep.dir={work / 'multirun'}",
        f"hydra.run.dir={work / 'run'}",
        "optim.epochs=2",
    ]


def _runs(team: TeamStore, experiment: str) -> list[str]:
    """Ids of the job runs of ``experiment``, read as the admin through the server."""
    with signed_in(team.admin):
        client = MlflowClient(team.uri)
        found = client.get_experiment_by_name(experiment)
        assert found is not None
        runs = client.search_runs([found.experiment_id], "tags.`sl.role` = 'job'")
        return [r.info.run_id for r in runs]


def _status(uri: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(uri + PROBE)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


# --- the store itself ---------------------------------------------------------------------------


def test_start_chooses_a_private_admin_password_and_reports_a_running_store(
    team: TeamStore, tmp_path: Path
) -> None:
    assert team.uri == f"http://127.0.0.1:{team.port}"
    password = team.admin["MLFLOW_TRACKING_PASSWORD"]
    assert team.admin["MLFLOW_TRACKING_USERNAME"] == "admin"
    assert len(password) >= 24 and password != "password1234"  # MLflow's old default
    for name in ("admin.env", "auth.ini", "pgpass", "flask-secret"):
        assert stat.S_IMODE((team.root / name).stat().st_mode) == 0o600, name
    pgdata = team.root / "pgdata"
    assert pgdata.stat().st_uid != 0, "PostgreSQL runs as a user of its own, not root"

    again = cli(*team.start_args(), cwd=tmp_path)
    assert "is running already" in again.stdout
    assert uri_printed(again.stdout) == team.uri
    status = cli("server", "status", "--dir", str(team.root), cwd=tmp_path)
    assert f"tracking.uri={team.uri}" in status.stdout
    assert f"port {team.pg_port}" in status.stdout


def test_start_on_a_taken_port_is_one_line_and_exit_2(team: TeamStore, tmp_path: Path) -> None:
    other = tmp_path / "other"
    for option, port in (("--port", team.port), ("--pg-port", team.pg_port)):
        ports = {"--port": str(free_port()), "--pg-port": str(free_port()), option: str(port)}
        args = [x for kv in ports.items() for x in kv]
        proc = cli("server", "start", "--dir", str(other), *args, cwd=tmp_path, check=False)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.count("\n") == 1 and f"Choose another with {option}" in proc.stderr
        assert not (other / "pgdata").exists(), "nothing made before the ports are checked"


def test_anonymous_and_wrong_password_requests_get_401(team: TeamStore) -> None:
    assert _status(team.uri) == 401
    assert _status(team.uri, ("admin", "wrong")) == 401
    assert _status(team.uri, ("admin", team.admin["MLFLOW_TRACKING_PASSWORD"])) == 200


# --- every command against the store --------------------------------------------------------------


def test_every_command_works_against_the_server(
    team: TeamStore, tmp_path: Path, digits_dir: Path
) -> None:
    env = team.env()
    work = tmp_path / "work"
    work.mkdir()
    single = cli("train", *_overrides(work, digits_dir, "single"), cwd=work, env=env)
    assert "FINISHED" in single.stdout
    assert len(_runs(team, "single")) == 1

    grid = ["optim.lr=0.1,0.3", "optim.batch_size=50"]
    fused = cli("train", "-m", *_overrides(work, digits_dir, "team"), *grid, cwd=work, env=env)
    cli(
        "train",
        "-m",
        *_overrides(tmp_path / "basic", digits_dir, "team-basic"),
        *grid,
        "hydra/launcher=basic",
        cwd=work,
        env=env,
    )
    assert len(_runs(team, "team")) == 2 and len(_runs(team, "team-basic")) == 2
    sweep_id = fused.stdout.split("--sweep ", 1)[1].split()[0]

    # compare, with each of its options
    table = cli("compare", "--experiment", "team", cwd=work, env=env).stdout
    assert "2 runs, best first by test/error" in table
    markdown = cli("compare", "--experiment", "team", "--format", "markdown", cwd=work, env=env)
    assert markdown.stdout.startswith("|")
    csv = cli("compare", "--experiment", "team", "--format", "csv", "--top", "1", cwd=work, env=env)
    assert len(csv.stdout.strip().splitlines()) == 2
    where = cli("compare", "--experiment", "team", "--where", "optim.lr>0.2", cwd=work, env=env)
    assert "1 of 2 runs" in where.stdout
    filtered = cli(
        "compare",
        "--experiment",
        "team",
        "--filter",
        "params.`optim.lr` = '0.1'",
        "--sort",
        "test/loss",
        "--sweep",
        sweep_id,
        cwd=work,
        env=env,
    )
    assert "1 runs" in filtered.stdout
    plot = cli("compare", "--experiment", "team", "--plot", str(work / "pics"), cwd=work, env=env)
    assert (work / "pics" / "heatmap.png").is_file(), plot.stdout
    a, b = _runs(team, "team")
    diff = cli("compare", "--experiment", "team", "--diff", a[:8], b[:8], cwd=work, env=env)
    assert "optim.lr" in diff.stdout

    # resume: the sweep again, nothing left to run
    resumed = cli(
        "train",
        "-m",
        *_overrides(work, digits_dir, "team"),
        *grid,
        "resume=true",
        cwd=work,
        env=env,
    )
    assert "resume: 2 of 2 jobs skipped" in resumed.stdout
    assert len(_runs(team, "team")) == 2

    # rerun from another directory with an empty data cache: config and θ come through the
    # server (proxied artifacts: the run's artifact URI is the server's, not a path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    with signed_in(team.admin):
        assert MlflowClient(team.uri).get_run(a).info.artifact_uri.startswith("mlflow-artifacts:")
    rerun = cli("rerun", a, cwd=elsewhere, env={**env, "SOFTMAX_LAB_DATA": str(cache)})
    assert "reproduced exactly" in rerun.stdout
    assert not (elsewhere / "outputs" / "mlflow.db").exists(), "no SQLite store on the side"
    assert list(cache.iterdir()), "the data was read into the empty cache"

    ui = cli("ui", cwd=elsewhere, env=env)
    assert ui.stdout.strip() == (
        f"the store is a tracking server already: open {team.uri} in a browser"
    )


# --- who may do what ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["train"],
        ["train", "-m", "optim.lr=0.1,0.2"],
        ["compare"],
        ["rerun", "0123456789abcdef0123456789abcdef"],
        ["ui"],
    ],
    ids=["train", "train-m", "compare", "rerun", "ui"],
)
def test_a_wrong_password_is_one_line_and_exit_2(
    team: TeamStore, tmp_path: Path, command: list[str]
) -> None:
    began = time.monotonic()
    proc = cli(*command, cwd=tmp_path, env=team.env(password="not-the-password"), check=False)
    seconds = time.monotonic() - began
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "refuses user 'admin'" in proc.stderr and "HTTP 401" in proc.stderr
    assert seconds < 30, "no minutes of retries"
    assert not (tmp_path / "outputs").exists() or command[0] == "train"


def test_a_user_without_permission_cannot_read_the_runs_of_an_experiment(
    team: TeamStore, tmp_path: Path, digits_dir: Path
) -> None:
    from mlflow.server.auth.client import AuthServiceClient

    env = team.env()
    cli("train", *_overrides(tmp_path, digits_dir, "private"), cwd=tmp_path, env=env)
    (run_id,) = _runs(team, "private")
    with signed_in(team.admin):
        AuthServiceClient(team.uri).create_user("bob", "bob-password-1")

    bob = team.env(user="bob", password="bob-password-1")
    compare = cli("compare", "--experiment", "private", cwd=tmp_path, env=bob, check=False)
    assert compare.returncode == 2, compare.stdout + compare.stderr
    assert compare.stderr.strip() == (
        f"softmax-lab compare: user 'bob' has no permission to read experiment 'private' in "
        f"{team.uri}; ask the store's admin to grant READ on its experiment"
    )
    rerun = cli("rerun", run_id, cwd=tmp_path, env=bob, check=False)
    assert rerun.returncode == 2 and "has no permission to read run" in rerun.stderr
    assert "Traceback" not in compare.stderr + rerun.stderr
    # bob lists no experiment of admin's, and finds no run in it
    everything = cli("compare", cwd=tmp_path, env=bob, check=False)
    assert run_id[:8] not in everything.stdout

    # granted READ, he sees the run
    with signed_in(team.admin):
        experiment = MlflowClient(team.uri).get_experiment_by_name("private")
        assert experiment is not None
        AuthServiceClient(team.uri).grant_user_permission(
            "bob", "experiment", experiment.experiment_id, "READ"
        )
    granted = cli("compare", "--experiment", "private", cwd=tmp_path, env=bob)
    assert run_id[:8] in granted.stdout

    # READ is not EDIT: training into the experiment is one line, exit 2, nothing recorded
    for command in (["train"], ["train", "-m", "optim.lr=0.1,0.2"]):
        args = [*command, *_overrides(tmp_path, digits_dir, "private")]
        proc = cli(*args, cwd=tmp_path, env=bob, check=False)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
        assert (
            proc.stderr.strip()
            .splitlines()[-1]
            .endswith(
                "user 'bob' may not write there (the server denied it); ask the store's admin to "
                "grant EDIT on the experiment; nothing was run"
            )
        ), proc.stderr
    assert _runs(team, "private") == [run_id]


# --- stop and start again (last: it restarts the module's store) ---------------------------------


def test_stop_ends_what_start_started_and_the_data_survives(
    team: TeamStore, tmp_path: Path, digits_dir: Path
) -> None:
    env = team.env()
    cli("train", *_overrides(tmp_path, digits_dir, "kept"), cwd=tmp_path, env=env)
    (run_id,) = _runs(team, "kept")
    pids = [int((team.root / "mlflow.pid").read_text())]
    pids.append(int((team.root / "pgdata" / "postmaster.pid").read_text().split()[0]))

    stopped = cli("server", "stop", "--dir", str(team.root), cwd=tmp_path)
    assert "stopped mlflow server and PostgreSQL" in stopped.stdout
    assert not [pid for pid in pids if _alive(pid)]
    status = cli("server", "status", "--dir", str(team.root), cwd=tmp_path, check=False)
    assert status.returncode == 3
    assert _status_or_refused(team.uri) == "refused"
    again = cli("server", "stop", "--dir", str(team.root), cwd=tmp_path)
    assert "nothing running" in again.stdout

    restarted = cli(*team.start_args(), cwd=tmp_path)
    assert uri_printed(restarted.stdout) == team.uri
    assert _runs(team, "kept") == [run_id], "runs survive a stop and start"
    assert read_env_file(team.root / "admin.env") == team.admin, "the admin's password is kept"


def _status_or_refused(uri: str) -> str:
    try:
        return str(_status(uri))
    except urllib.error.URLError:
        return "refused"


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a living process (a zombie, waiting to be collected, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_search_keeps_its_study_in_the_team_stores_postgresql(
    team: TeamStore, tmp_path: Path, digits_dir: Path
) -> None:
    import optuna

    url_file = team.root / "study-storage.url"
    assert stat.S_IMODE(url_file.stat().st_mode) == 0o600
    storage = url_file.read_text().strip()
    assert (
        storage.startswith("postgresql+psycopg://optuna:") and f":{team.pg_port}/optuna" in storage
    )
    env = team.env()
    work = tmp_path / "search"
    work.mkdir()
    search = [
        *_overrides(work, digits_dir, "team-search"),
        "hydra/sweeper=optuna",
        "dataset.val_size=200",
        "hydra.sweeper.sampler.seed=0",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.study_name=team-study",
        "optim.lr=tag(log,interval(0.01,1.0))",
        "optim.epochs=int(interval(2,4))",
    ]
    # without a study database the search names the key and makes nothing
    refused = cli("train", "-m", *search, cwd=work, env=env, check=False)
    assert refused.returncode == 2 and "hydra.sweeper.storage" in refused.stderr
    assert refused.stderr.count("\n") == 1
    out = cli("train", "-m", *search, f"hydra.sweeper.storage={storage}", cwd=work, env=env)
    assert "4 trials" in out.stdout
    rdb = optuna.storages.RDBStorage(storage)
    try:
        study = optuna.load_study(study_name="team-study", storage=rdb)
        assert len(study.trials) == 4
        runs = _runs(team, "team-search")
        assert sorted(t.user_attrs["sl.run_id"] for t in study.trials) == sorted(runs)
    finally:  # its pooled connections, closed now: not when the garbage collector finds them
        rdb.engine.dispose()
    assert "***" in out.stdout and storage.split("@")[0] not in out.stdout  # password redacted
