"""Time limits and workers: no worker outlives its driver, a worker stops its own cell past the
limit, and the in-process limit also strikes inside image loading and metrics."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from harness import Dataset, MetricSpec, Sample, hookimpl
from harness.bench import run_benchmark
from harness.executors.process import TIMEOUT_EXIT, _worker
from harness.plugins import Source, build_registry
from harness.runner import CellSpec, spec_to_dict
from harness.store import Store
from tests.harness.test_faults_plugins import ROOT, install

HANG = textwrap.dedent('''
    import os, time
    import numpy as np
    from harness import Method, Prediction, hookimpl

    class Hang(Method):
        """Writes its process id where BENCH_TEST_PIDFILE says, then never returns."""
        name = "hang"
        outputs = frozenset({"foreground"})

        def __init__(self) -> None:
            pass

        def predict(self, image):
            path = os.environ["BENCH_TEST_PIDFILE"]
            with open(path + ".tmp", "w") as fh:
                fh.write(str(os.getpid()))
            os.replace(path + ".tmp", path)
            while True:
                time.sleep(0.05)

    @hookimpl
    def bench_register_methods(register):
        register(Hang)
''')
TINY = "synthetic(n_train=0,n_validation=0,n_test=1,height=32,width=32,n_objects=2)"
TINY_PARAMS = {"n_train": 0, "n_validation": 0, "n_test": 1, "height": 32, "width": 32, "n_objects": 2}


@pytest.fixture(scope="module")
def hang_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("hang-site")
    install(site, "acme-hang", "acme_hang", HANG)
    return site


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(predicate, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_the_driver_ends_its_hung_worker(hang_site: Path, tmp_path: Path, signum: int) -> None:
    pidfile = tmp_path / "worker.pid"
    env = {**os.environ, "PYTHONPATH": f"{hang_site}{os.pathsep}{ROOT}", "BENCH_TEST_PIDFILE": str(pidfile)}
    env.pop("BENCH_PLUGINS", None)
    driver = subprocess.Popen(
        [sys.executable, "-c", "from harness.cli import main; main()", "run", "--executor", "process",
         "--jobs", "1", "--methods", "hang", "--datasets", TINY, "--metrics", "dice", "--quiet",
         "--store", str(tmp_path / "runs")],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    worker = None
    try:
        assert _wait_for(lambda: pidfile.is_file() or driver.poll() is not None, 120), "the worker never started"
        assert driver.poll() is None, driver.stderr.read().decode() if driver.stderr else ""
        worker = int(pidfile.read_text())
        assert worker != driver.pid and _alive(worker)
        driver.send_signal(signum)
        driver.wait(timeout=30)
        assert _wait_for(lambda: not _alive(worker), 10), f"worker {worker} outlived its driver"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        if worker is not None and _alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_a_worker_stops_its_own_cell_past_the_limit(hang_site: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver (this test) stays alive and never kills: the worker ends itself."""
    monkeypatch.syspath_prepend(str(hang_site))  # a spawned worker starts with this sys.path
    monkeypatch.setenv("BENCH_TEST_PIDFILE", str(tmp_path / "worker.pid"))
    monkeypatch.delenv("BENCH_PLUGINS", raising=False)
    spec = CellSpec(dataset="synthetic", dataset_params=TINY_PARAMS, method="hang", method_params={}, seed=0,
                    budget="quick", device="cpu", metrics=("dice",), eval_splits=("test",), key="0" * 24)
    ctx = mp.get_context("spawn")
    conn, child = ctx.Pipe()
    proc = ctx.Process(target=_worker, args=(child, str(tmp_path / "runs"), os.getpid(), 0.5))
    proc.start()
    child.close()
    try:
        conn.send(spec_to_dict(spec))
        proc.join(timeout=120)
        assert conn.recv() == ("started", spec.key) and (tmp_path / "worker.pid").is_file()
        assert proc.exitcode == TIMEOUT_EXIT
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()


class SlowLoad(Dataset):
    """One test image whose loading sleeps far past any limit used here."""

    name = "slow-load"
    splits = ("train", "test")

    def __init__(self, stall: str = "load") -> None:
        self.stall = stall

    def sample_ids(self, split: str) -> list[str]:
        return ["a"]

    def load(self, split: str, sample_id: str) -> Sample:
        if self.stall == "load":
            time.sleep(60)
        labels = np.zeros((8, 8), dtype=np.int32)
        labels[2:5, 2:5] = 1
        image = np.zeros((8, 8, 3), dtype=np.uint8)
        image[..., 0] = labels
        return Sample(id=sample_id, image=image, instances=labels)


def _slow_statistics(pair):  # type: ignore[no-untyped-def]
    time.sleep(60)
    return {"value": 1.0}


SLOW_METRIC = MetricSpec(name="slow-metric", higher_is_better=True, statistics=_slow_statistics)


class _Plugin:
    @hookimpl
    def bench_register_datasets(self, register):  # type: ignore[no-untyped-def]
        register(SlowLoad)

    @hookimpl
    def bench_register_metrics(self, register):  # type: ignore[no-untyped-def]
        register(SLOW_METRIC)


@pytest.mark.parametrize(("stall", "metric"), [("load", "dice"), ("none", "slow-metric")])
def test_in_process_limit_strikes_in_loading_and_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         stall: str, metric: str) -> None:
    from tests.conftest import FAKE, FakePlugin

    monkeypatch.delenv("BENCH_PLUGINS", raising=False)
    monkeypatch.delenv("BENCH_DISABLE_PLUGINS", raising=False)
    registry = build_registry(extra_plugins=[(FakePlugin(), FAKE), (_Plugin(), Source("t.slow", "t-slow", "0"))],
                              warn=False)
    store = Store(tmp_path / "runs")
    began = time.monotonic()
    result = run_benchmark(registry, [("slow-load", {"stall": stall})], [("decode", {})], [0], metrics=[metric],
                           store=store, executor="local", cell_timeout=0.5)
    assert time.monotonic() - began < 30  # the 60 s sleep was cut short
    [cell] = result.cells
    record = store.cell(cell.key)
    assert record["status"] == "error" and record["error"] == "timeout: cell exceeded 0.5 s"
    assert store.images(cell.key) == []  # the image was never scored as a per-image failure
