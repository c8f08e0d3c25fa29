"""The Ray executor on a real cluster: a head and a worker node started with ``ray start`` on
this machine, joined through their address (workers import this checkout via ``PYTHONPATH``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the ray executor tests need Ray: pip install 'segbench[ray]'")

from harness.executors.ray import RayExecutor  # noqa: E402
from harness.plugins import build_registry  # noqa: E402
from harness.runner import plan  # noqa: E402
from harness.store import Store  # noqa: E402
from tests.harness.test_executor_ray import OBJECT_STORE, REPO, SYNTH, assert_same_as_local, wait_until  # noqa: E402


@pytest.fixture(autouse=True)
def _workers_import_this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a loopback test cluster needs no token


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ray_start(*args: str) -> subprocess.Popen[bytes]:
    cli = Path(sys.executable).with_name("ray")
    return subprocess.Popen([str(cli), "start", "--block", "--disable-usage-stats",
                             f"--object-store-memory={OBJECT_STORE}", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))


@pytest.fixture
def started_cluster(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A head node with no CPUs and one worker node with one, started like a user would."""
    if ray.is_initialized():  # an earlier test's in-process cluster: this driver joins a new one
        ray.shutdown()
    port = _free_port()
    address = f"127.0.0.1:{port}"
    head = _ray_start("--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false",
                      "--node-ip-address=127.0.0.1")
    procs = [head]
    try:
        deadline = time.monotonic() + 60
        while True:  # the head takes a few seconds to come up
            try:
                ray.init(address=address, log_to_driver=False, logging_level="WARNING")
                break
            except ConnectionError:
                if time.monotonic() > deadline or head.poll() is not None:
                    raise
                time.sleep(1)
        worker_node = _ray_start(f"--address={address}", "--num-cpus=1", "--node-ip-address=127.0.0.1")
        procs.append(worker_node)
        wait_until(lambda: sum(1 for n in ray.nodes() if n["Alive"]) == 2, "the worker node to join", 60)
        node = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU"))
        ray.shutdown()
        yield address, node
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for proc in reversed(procs):  # ``ray start --block`` stops its node's processes on SIGTERM
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        marker = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"  # written by 'ray start --head'
        if marker.is_file() and marker.read_text().strip().endswith(f":{port}"):
            marker.unlink()


@pytest.mark.slow
def test_cluster_started_with_ray_start_joined_by_address(started_cluster: tuple[str, str], tmp_path: Path) -> None:
    address, worker_node = started_cluster
    registry = build_registry(warn=False)
    methods = [("otsu", {}), ("otsu", {"min_size": 30})]
    store = Store(tmp_path / "ray")
    cells = plan(registry, [SYNTH], methods, [0], metrics=["dice", "iou"])
    executor = RayExecutor(store.root, registry=registry, options={"address": address})
    for cell in cells:
        executor.submit(cell)
    results = list(executor.as_completed())
    assert not ray.is_initialized()  # the executor disconnects from a cluster it joined
    assert sorted(r["status"] for _, r in results) == ["done", "done"]
    # the head has no CPUs, so every cell ran on the worker node; the driver stored them
    assert {node for node, _ in executor.placements.values()} == {worker_node}
    assert_same_as_local(registry, tmp_path, store, [SYNTH], methods, [0])
    # one CPU in the whole cluster: one cell at a time, so the timings are isolated
    assert [(r["timing"], r["concurrent_workers"]) for _, r in results] == [("isolated", 1)] * 2
