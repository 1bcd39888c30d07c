"""The MLflow UI over a real sweep's store, looked at in headless Chromium.

A 3-job sweep writes a SQLite store; ``python -m softmax_lab ui`` serves it (the real command, so
``mlflow server`` on 127.0.0.1); Playwright drives Debian's ``/usr/bin/chromium`` (never a
downloaded browser) through the pages a user would read. Screenshots of every step go to
``outputs/ui-check/`` in the repository (git-ignored; CI keeps them as artifacts).
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers.servers import clean_env, free_port, stop_group, wait_until_healthy

from softmax_lab.tracking import reading, run_lookup

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
# As root on a closed network: no sandbox, no GPU, and none of Chromium's own connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "outputs" / "ui-check"
EXPERIMENT = "ui-check"
LRS = ("0.05", "0.2", "0.5")
EPOCHS = 3
WAIT_MS = 60_000  # a cold UI (first bundle load, first query of the store) can be slow on CI
# MLflow 3 opens an experiment on its GenAI pages; the runs table is the "Model training" view.
ML_VIEW = "workflowType=machine_learning"


@dataclass(frozen=True)
class Sweep:
    """What the store holds, read back with the tracking module (not through the UI)."""

    uri: str
    root: Path
    experiment_id: str
    parent_id: str
    jobs: dict[str, str]  # run_id -> optim.lr as logged


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> Sweep:
    """Run a real 3-job sweep (α ∈ LRS, 3 epochs) on the digits into a fresh SQLite store."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    env = clean_env()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "softmax_lab",
            "train",
            "-m",
            "dataset=idx",
            f"dataset.path={digits_dir}",
            f"tracking.uri={uri}",
            f"tracking.experiment={EXPERIMENT}",
            f"hydra.sweep.dir={root / 'multirun'}",
            f"optim.lr={','.join(LRS)}",
            f"optim.epochs={EPOCHS}",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"sweep failed\n{proc.stdout}\n{proc.stderr}"
    runs = reading.runs_frame(uri, EXPERIMENT, include_parents=True)
    parent = runs[runs["tags.sl.role"] == "sweep"]
    jobs = runs[runs["tags.sl.role"] != "sweep"]
    assert len(parent) == 1 and len(jobs) == len(LRS)
    experiment = MlflowClient(uri).get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    return Sweep(
        uri=uri,
        root=root,
        experiment_id=experiment.experiment_id,
        parent_id=parent["run_id"].iloc[0],
        jobs=dict(zip(jobs["run_id"], jobs["params.optim.lr"], strict=True)),
    )


@pytest.fixture(scope="module")
def ui_url(sweep: Sweep) -> Iterator[str]:
    """``softmax-lab ui`` over the sweep's store on a free port; yields its URL once healthy."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = sweep.root / "ui.log"
    cmd = [sys.executable, "-m", "softmax_lab", "ui", "--port", str(port)]
    cmd += ["--tracking-uri", sweep.uri]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            cmd,
            cwd=sweep.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the server and its workers form one group, ended together
        )
        try:
            # four uvicorn workers start in ~15 s here
            wait_until_healthy(url, server, log_path.read_text, timeout=90)
            yield url
        finally:
            stop_group(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright; a missing piece fails (CI has both)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the UI test needs the Python package playwright (pip install -e '.[test]'); "
            "it drives Debian's chromium, so never run 'playwright install'"
        )
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium (scripts/setup.sh does this)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        # Playwright gives each launch a fresh, empty --user-data-dir of its own.
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A new page in a fresh browser context (no state carried between tests)."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@contextmanager
def _screenshot_on_failure(page: Page, name: str) -> Iterator[None]:
    """On failure save ``NAME-FAILED.png`` and add what went wrong on the wire to the error."""
    problems: list[str] = []
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.method} {r.url} {r.failure}"))
    page.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 500 else None,
    )
    try:
        yield
    except BaseException as err:
        shot = SCREENSHOTS / f"{name}-FAILED.png"
        page.screenshot(path=shot, full_page=True)
        err.add_note(f"page {page.url}, screenshot {shot}")
        for problem in problems:
            err.add_note(problem)
        raise


def _png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])  # the IHDR chunk
    return width, height


def test_ui_lists_the_sweeps_runs_nested_under_the_parent(
    page: Page, ui_url: str, sweep: Sweep
) -> None:
    from playwright.sync_api import expect

    with _screenshot_on_failure(page, "01-runs"):
        page.goto(f"{ui_url}/#/experiments/{sweep.experiment_id}/runs?{ML_VIEW}")
        breadcrumb = page.get_by_role("main").get_by_role("link", name=EXPERIMENT, exact=True)
        expect(breadcrumb).to_be_visible()
        # One Run Name cell per visible row (AG Grid splits a row into pinned and centre parts).
        names = page.locator('[role="row"][row-id] [col-id="attributes.`Run Name`"]')
        expect(names).to_have_count(1)  # collapsed: only the sweep's parent run
        parent = names.first
        expect(parent.locator(f'a[href$="/runs/{sweep.parent_id}"]')).to_contain_text("sweep ")
        parent.get_by_role("button").click()  # the expand (+) button of a parent run
        expect(names).to_have_count(1 + len(sweep.jobs))
        page.screenshot(path=SCREENSHOTS / "01-runs-nested.png")

        rows = names.evaluate_all(
            """cells => cells.map(c => ({
                id: c.closest('[role="row"]').getAttribute('row-id'),
                index: Number(c.closest('[role="row"]').getAttribute('row-index')),
                text: c.querySelector('a').innerText,
                left: c.querySelector('a').getBoundingClientRect().left,
            }))"""
        )
    rows.sort(key=lambda r: r["index"])
    assert rows[0]["id"] == sweep.parent_id
    children = rows[1:]  # right below the parent, indented one level
    assert {r["id"] for r in children} == set(sweep.jobs)
    for r in children:
        assert f"optim.lr={sweep.jobs[r['id']]}" in r["text"]
        assert r["left"] > rows[0]["left"], f"child row not indented: {rows}"


def test_ui_shows_each_jobs_data_in_the_dataset_column(
    page: Page, ui_url: str, sweep: Sweep
) -> None:
    from playwright.sync_api import expect

    jobs = reading.runs_frame(sweep.uri, EXPERIMENT)
    (fingerprint,) = set(jobs["tags.sl.dataset_fingerprint"])
    with _screenshot_on_failure(page, "01-datasets"):
        page.goto(f"{ui_url}/#/experiments/{sweep.experiment_id}/runs?{ML_VIEW}")
        names = page.locator('[role="row"][row-id] [col-id="attributes.`Run Name`"]')
        expect(names).to_have_count(1)
        names.first.get_by_role("button").click()  # expand the sweep's parent run
        expect(names).to_have_count(1 + len(sweep.jobs))
        for run_id in sweep.jobs:
            cell = page.locator(f'[role="row"][row-id="{run_id}"] [col-id="attributes.`Dataset`"]')
            # each part as "name (digest)" and its context (shown capitalised by CSS)
            expect(cell).to_contain_text(f"idx/train ({fingerprint[:36]})training")
            expect(cell).to_contain_text(f"idx/test ({fingerprint[:36]})test")
        page.screenshot(path=SCREENSHOTS / "01-runs-datasets.png")


def test_ui_charts_one_test_error_point_per_epoch(page: Page, ui_url: str, sweep: Sweep) -> None:
    from playwright.sync_api import expect

    run_id = next(r for r, lr in sweep.jobs.items() if lr == LRS[-1])
    logged = reading.metric_history(sweep.uri, run_id, "test/error")
    assert [step for step, _ in logged] == list(range(1, EPOCHS + 1))

    with _screenshot_on_failure(page, "02-metrics"):
        with page.expect_response(
            lambda r: "/metrics/get-history" in r.url and "metric_key=test%2Ferror" in r.url
        ) as fetched:
            page.goto(
                f"{ui_url}/#/experiments/{sweep.experiment_id}/runs/{run_id}/model-metrics"
                f"?{ML_VIEW}"
            )
        # What the page fetched for the chart is the run's whole history.
        history = fetched.value.json()["metrics"]
        assert [(m["step"], m["value"]) for m in history] == logged

        card = page.locator(
            '[data-testid="experiment-view-compare-runs-card"]',
            has=page.locator('h4[title="test/error"]'),
        )
        # The rendered Plotly chart: one marker per epoch, at steps 1..EPOCHS.
        expect(card.locator(".js-plotly-plot path.point")).to_have_count(EPOCHS)
        traces = card.locator(".js-plotly-plot").evaluate(
            "gd => gd.data.map(t => ({x: Array.from(t.x), y: Array.from(t.y), mode: t.mode}))"
        )
        page.screenshot(path=SCREENSHOTS / "02-run-metrics.png")
        card.screenshot(path=SCREENSHOTS / "02-test-error-chart.png")
    marked = [t for t in traces if "markers" in t["mode"]]
    assert len(marked) == 1, traces
    assert marked[0]["x"] == [step for step, _ in logged]
    assert marked[0]["y"] == pytest.approx([value for _, value in logged])


def test_ui_shows_the_theta_picture_among_the_artifacts(
    page: Page, ui_url: str, sweep: Sweep
) -> None:
    from playwright.sync_api import expect

    run_id = next(iter(sweep.jobs))
    png = run_lookup.download_artifact(sweep.uri, run_id, "plots/theta.png", sweep.root / "dl")

    with _screenshot_on_failure(page, "03-artifacts"):
        page.goto(f"{ui_url}/#/experiments/{sweep.experiment_id}/runs/{run_id}/artifacts?{ML_VIEW}")
        node = '[data-testid="artifact-tree-node"][artifact-name="{}"]'
        page.locator(node.format("plots")).click()  # open the folder
        theta = page.locator(node.format("theta.png"))
        expect(theta).to_be_visible()
        theta.click()
        picture = page.get_by_role("img", name="plots/theta.png")
        expect(picture).to_be_visible()
        # Decoded, not a broken image: once loaded, the browser's size of it is the PNG's own.
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=picture.element_handle()
        )
        size = picture.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        page.screenshot(path=SCREENSHOTS / "03-artifacts-theta.png")
    assert tuple(size) == _png_size(png)


@pytest.mark.slow
def test_ui_leaves_nothing_behind_after_ctrl_c(tmp_path: Path) -> None:
    """One server process, no job runner: after Ctrl-C no process, no file in its temp dir
    (MLflow's job store leaves ``db_init_lock-*`` there) and no queue directory in /dev/shm."""
    shm = Path("/dev/shm")
    shm_before = set(shm.iterdir()) if shm.is_dir() else set()
    temp = tmp_path / "tmp"
    temp.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "ui.log"
    cmd = [sys.executable, "-m", "softmax_lab", "ui", "--port", str(port)]
    cmd += ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            cmd,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**clean_env(), "TMPDIR": str(temp)},
            start_new_session=True,
        )
        try:
            wait_until_healthy(url, server, log_path.read_text, timeout=90)
            group = os.getpgid(server.pid)
            members = [
                p for p in Path("/proc").iterdir() if p.name.isdigit() and _in_group(p, group)
            ]
            assert len(members) <= 2, f"one server and at most one worker, got {len(members)}"
            server.send_signal(signal.SIGINT)  # Ctrl-C: the ui process is the server (execv)
            server.wait(timeout=60)
        finally:
            stop_group(server)
    assert not any(_in_group(p, group) for p in Path("/proc").iterdir() if p.name.isdigit())
    assert list(temp.iterdir()) == []
    new_in_shm = (
        [
            p
            for p in set(shm.iterdir()) - shm_before
            if (p / "huey").exists() or p.name.startswith("tmp")
        ]
        if shm.is_dir()
        else []
    )
    assert new_in_shm == [], f"left in /dev/shm: {new_in_shm}"


def _in_group(proc: Path, group: int) -> bool:
    """Whether the process /proc/PID belongs to process group ``group`` (gone: no)."""
    try:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return int(fields[2]) == group and fields[0] != "Z"
