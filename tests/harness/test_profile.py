"""``bench profile``: statistics, out-of-memory halving, FLOPs, the written table, CLI errors.

Nothing here asserts a duration: timings are only checked for being present and consistent
with each other, statistics are checked on known samples.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from harness import Method, Prediction, hookimpl, profiler
from harness.cli import cli
from harness.commands import profile as prof
from harness.plugins import Registry, Source, build_registry
from tests.conftest import FAKE, FakePlugin

# ---- statistics ----------------------------------------------------------------------------


def test_percentiles_of_known_samples_match_hand_values_and_numpy() -> None:
    seconds = [k / 1000 for k in range(10, 0, -1)]  # 10 ms … 1 ms, unordered on purpose
    out = profiler.percentiles_ms(seconds, "latency_batch")
    # linear interpolation between order statistics of 1..10: 1 + q/100 * 9
    assert out["latency_batch_p50_ms"] == pytest.approx(5.5)
    assert out["latency_batch_p95_ms"] == pytest.approx(9.55)
    assert out["latency_batch_p99_ms"] == pytest.approx(9.91)
    assert out["latency_batch_mean_ms"] == pytest.approx(5.5)
    rng = np.random.default_rng(3)
    sample = rng.exponential(0.01, size=37)
    out = profiler.percentiles_ms(list(sample), "x")
    for q in (50, 95, 99):
        assert out[f"x_p{q}_ms"] == pytest.approx(np.percentile(sample, q) * 1e3)
    assert profiler.percentiles_ms([], "x")["x_p99_ms"] is None


def test_run_latency_summary_leaves_the_warm_up_image_out() -> None:
    out = profiler.latency_summary([0.5, 0.001, 0.002, 0.003])
    assert out["latency_p50_ms"] == pytest.approx(2.0)
    assert out["latency_p95_ms"] == pytest.approx(2.9)  # 2 + 0.95 * (3 - 2)
    assert out["images_per_s"] == pytest.approx(3 / 0.006)
    assert out["n_images"] == 4 and out["n_timed"] == 3
    assert out["predict_s"] == pytest.approx(0.506)
    single = profiler.latency_summary([0.25])  # one image: nothing to leave out
    assert single["latency_p50_ms"] == pytest.approx(250.0) and single["n_timed"] == 1


def test_builtin_columns_per_batch_per_image_and_throughput() -> None:
    row = prof.bench_profile_columns({
        "method": "m", "input": "1000x1000", "batch_size": 4, "requested_batch_size": 4,
        "seconds": [0.2, 0.4], "pixels_per_image": 1e6, "peak_rss_mb": 123.456,
    })
    assert row["latency_batch_p50_ms"] == pytest.approx(300.0)
    assert row["latency_image_p50_ms"] == pytest.approx(75.0)  # 300 ms / 4 images
    assert row["images_per_s"] == pytest.approx(8 / 0.6, abs=1e-3)
    assert row["megapixels_per_s"] == pytest.approx(8 / 0.6, abs=1e-3)
    assert row["repeats"] == 2 and row["peak_rss_mb"] == 123.5 and row["note"] == ""
    assert set(row) == set(prof.COLUMNS)


# ---- out of memory -------------------------------------------------------------------------


def _step_failing_above(limit: int, error: type[BaseException]) -> Any:
    calls: list[int] = []

    def step(b: int) -> Any:
        def call() -> None:
            calls.append(b)
            if b > limit:
                raise error("out of memory: tried to allocate 2.00 GiB")
        return call
    return step, calls


@pytest.mark.parametrize("error", [MemoryError, "cuda"])
def test_out_of_memory_halves_the_batch_and_says_so(error: Any) -> None:
    if error == "cuda":
        torch = pytest.importorskip("torch")
        error = torch.cuda.OutOfMemoryError
    step, calls = _step_failing_above(2, error)
    result = profiler_measure(step, 8)
    assert result["status"] == "ok" and result["batch_size"] == 2
    assert result["oom_batch_sizes"] == [8, 4] and len(result["seconds"]) == 3
    assert calls == [8, 4, 2, 2, 2, 2]  # one failed warm-up each, then warm-up + 3 timed
    row = prof.bench_profile_columns({**result, "requested_batch_size": 8, "pixels_per_image": 1})
    assert row["note"] == "out of memory at batch 8, 4; ran at 2" and row["batch_size"] == 2


def profiler_measure(step: Any, batch: int) -> dict[str, Any]:
    return prof.measure(step, batch, warmup=1, repeats=3, cuda=False)


def test_out_of_memory_at_batch_one_is_a_row_not_a_crash() -> None:
    step, _ = _step_failing_above(0, MemoryError)
    result = profiler_measure(step, 4)
    assert result["status"] == "oom" and result["oom_batch_sizes"] == [4, 2, 1]
    row = prof.bench_profile_columns({**result, "requested_batch_size": 4})
    assert row["latency_batch_p50_ms"] is None and row["note"].endswith("not measured")


def test_other_errors_are_recorded_and_not_retried() -> None:
    step, calls = _step_failing_above(0, ValueError)
    result = profiler_measure(step, 4)
    assert result["status"] == "error" and "ValueError" in result["note"] and calls == [4]
    assert not profiler.is_out_of_memory(RuntimeError("shape mismatch"))
    assert profiler.is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate"))


def test_halving_sequence() -> None:
    assert profiler.halving(8) == [8, 4, 2, 1] and profiler.halving(5) == [5, 2, 1] and profiler.halving(1) == [1]


# ---- GPU paths through a stand-in for torch.cuda ------------------------------------------


class FakeCuda:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def synchronize(self) -> None:
        self.calls.append("sync")

    def reset_peak_memory_stats(self) -> None:
        self.calls.append("reset")

    def max_memory_allocated(self) -> int:
        return 3 * 2**20

    def max_memory_reserved(self) -> int:
        return 8 * 2**20


def test_gpu_peaks_reset_before_and_read_allocated_and_reserved_after(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = SimpleNamespace(cuda=FakeCuda())
    monkeypatch.setattr(profiler, "_torch_cuda", lambda: fake)
    with profiler.GpuPeaks() as gpu:
        fake.cuda.calls.append("body")
    assert fake.cuda.calls == ["sync", "reset", "body", "sync"]
    assert gpu.allocated_mb == 3.0 and gpu.reserved_mb == 8.0
    with profiler.GpuPeaks(enabled=False) as off:
        pass
    assert off.allocated_mb is None
    fake.cuda.calls.clear()
    seconds = profiler.timed_repeats(lambda: fake.cuda.calls.append("call"), warmup=1, repeats=2, cuda_sync=True)
    assert len(seconds) == 2
    assert fake.cuda.calls == ["call", "sync", "call", "sync", "sync", "call", "sync"]


def test_no_gpu_means_no_gpu_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profiler, "_torch_cuda", lambda: None)
    with profiler.GpuPeaks() as gpu:
        pass
    assert gpu.allocated_mb is None and gpu.reserved_mb is None


# ---- FLOPs and parameters of a tiny network ------------------------------------------------


class TinyConv(Method):
    """One 3×3 convolution, 3 → 4 channels, no bias; the foreground is channel 0 > 0."""

    name = "tiny-conv"
    outputs = frozenset({"foreground"})

    def __init__(self) -> None:
        import torch

        self.net = torch.nn.Conv2d(3, 4, kernel_size=3, padding=1, bias=False)

    def predict_batch(self, images):  # type: ignore[no-untyped-def]
        import torch

        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
        with torch.no_grad():
            out = self.net(x)
        return [Prediction(foreground=(o[0] > 0).numpy()) for o in out]

    def predict(self, image: np.ndarray) -> Prediction:
        return self.predict_batch([image])[0]


class TinyTrainable(TinyConv):
    """TinyConv with what a training step needs: a network builder, a loss, patch and batch."""

    name = "tiny-trainable"
    learns = True
    patch_size = 8
    batch_size = 4

    def build(self, num_classes: int):  # type: ignore[no-untyped-def]
        import torch

        return torch.nn.Conv2d(3, num_classes, kernel_size=3, padding=1, bias=False)

    def batch_loss(self, model, patches, device):  # type: ignore[no-untyped-def]
        import torch

        x = torch.from_numpy(np.stack([p.image for p in patches])).permute(0, 3, 1, 2)
        if len(patches) > 2:
            raise MemoryError("training batch too large")
        return model(x.to(device)).square().mean()


def test_training_step_row_halves_on_out_of_memory_and_counts_parameters() -> None:
    pytest.importorskip("torch")
    row = prof.train_row(TinyTrainable(), "tiny", device="cpu", warmup=1, repeats=2)
    assert row["mode"] == "train" and row["status"] == "ok" and row["params"] == 27
    assert row["requested_batch_size"] == 4 and row["batch_size"] == 2 and row["oom_batch_sizes"] == [4]
    assert len(row["seconds"]) == 2 and (row["height"], row["width"]) == (8, 8)
    skipped = prof.train_row(TinyConv(), "tiny", device="cpu", warmup=1, repeats=2)
    assert skipped["status"] == "skipped" and skipped["seconds"] == []


class OomAbove(Method):
    """Predicts nothing useful; batches larger than ``limit`` raise the given out-of-memory error."""

    name = "oom-above"
    outputs = frozenset({"foreground"})

    def __init__(self, limit: int = 2, cuda: bool = False) -> None:
        self.limit = limit
        self.cuda = cuda

    def predict_batch(self, images):  # type: ignore[no-untyped-def]
        if len(images) > self.limit:
            if self.cuda:
                import torch

                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            raise MemoryError
        return [self.predict(image) for image in images]

    def predict(self, image: np.ndarray) -> Prediction:
        return Prediction(foreground=image[..., 0] > 0)


class ExtraColumn:
    """A third-party column: how many batches were timed (``repeats``, recomputed)."""

    @hookimpl
    def bench_profile_columns(self, measurement):  # type: ignore[no-untyped-def]
        return {"timed_batches": len(measurement.get("seconds") or [])}

    @hookimpl
    def bench_register_methods(self, register):  # type: ignore[no-untyped-def]
        register(TinyConv)
        register(OomAbove)


def test_flops_and_parameters_of_a_tiny_conv_net_by_hand() -> None:
    pytest.importorskip("torch")
    method = TinyConv()
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    # each of 8·8 outputs × 4 channels takes 3·3·3 multiply-adds, two operations each
    assert profiler.count_flops(lambda: method.predict_batch([image])) == 2 * 8 * 8 * 4 * 27
    assert profiler.parameter_count(method) == 4 * 3 * 3 * 3
    assert profiler.parameter_count(object()) is None


# ---- the command ---------------------------------------------------------------------------


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BENCH_RUNS", raising=False)
    monkeypatch.delenv("BENCH_PLUGINS", raising=False)
    monkeypatch.delenv("BENCH_DISABLE_PLUGINS", raising=False)
    registry: Registry = build_registry(
        extra_plugins=[(FakePlugin(), FAKE), (ExtraColumn(), Source("tests.columns", "tests", "0"))], warn=False)
    assert registry.pm is not None
    registry.pm.hook.bench_register_commands(cli=cli)

    def run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(cli, list(args), obj=registry, catch_exceptions=False)

    return run


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_profile_writes_versioned_csv_markdown_provenance_with_plugin_column(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    args = ("profile", "--methods", "tiny-conv,decode", "--sizes", "8,16", "--batch-sizes", "1,2",
            "--repeats", "2", "--warmup", "1", "--images", "2", "--machine", "testbox", "--quiet")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "profiles" / "testbox" / "v1"
    rows = _rows(folder / "profile.csv")
    with open(folder / "profile.csv") as fh:
        header = fh.readline().strip().split(",")
    assert header == [*prof.COLUMNS, "timed_batches"]
    assert len(rows) == 2 * 2 * 2
    assert {(r["method"], r["input"], r["batch_size"]) for r in rows} == {
        (m, f"{s}x{s}", b) for m in ("tiny-conv", "decode") for s in (8, 16) for b in ("1", "2")}
    conv16 = next(r for r in rows if r["method"] == "tiny-conv" and r["input"] == "16x16")
    assert int(conv16["flops_per_image"]) == 2 * 16 * 16 * 4 * 27 and conv16["params"] == "108"
    assert all(r["status"] == "ok" and r["timed_batches"] == "2" == r["repeats"] for r in rows)
    decode = next(r for r in rows if r["method"] == "decode")
    assert decode["flops_per_image"] == "" and decode["params"] == "" and decode["note"] == ""
    for r in rows:  # per image = per batch / batch size, throughput = images / total time
        b = int(r["batch_size"])
        assert float(r["latency_image_p50_ms"]) == pytest.approx(float(r["latency_batch_p50_ms"]) / b, rel=1e-2, abs=2e-3)
        px = int(r["height"]) * int(r["width"])
        assert float(r["megapixels_per_s"]) == pytest.approx(float(r["images_per_s"]) * px / 1e6, rel=1e-2, abs=2e-3)
    markdown = (folder / "profile.md").read_text()
    assert "| method | input |" in markdown and "tiny-conv" in markdown and "timed_batches" in markdown
    provenance = json.loads((folder / "provenance.json").read_text())
    env = provenance["environment"]
    assert env["cpu"] and env["threads"] >= 1 and env["torch"] and "cuda" in env and env["gpu"] is None
    assert provenance["settings"]["repeats"] == 2
    assert invoke(*args).exit_code == 0
    assert (tmp_path / "profiles" / "testbox" / "v2" / "profile.csv").is_file()


def test_learning_methods_untrained_fitted_or_from_a_stored_run(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base = ("profile", "--methods", "learned-threshold", "--batch-sizes", "1", "--repeats", "1",
            "--warmup", "0", "--images", "1", "--machine", "box", "--quiet")
    missing = invoke(*base, "--sizes", "8")
    assert missing.exit_code == 2 and "--datasets" in missing.output and "--run" in missing.output
    fitted = invoke(*base, "--datasets", "squares")
    assert fitted.exit_code == 0, fitted.output
    assert _rows(tmp_path / "profiles" / "box" / "v1" / "profile.csv")[0]["note"] == "fitted"
    with pytest.raises(FileNotFoundError, match="start one with 'bench run'"):
        invoke(*base, "--sizes", "8", "--run", "latest")
    assert invoke("run", "--datasets", "squares", "--methods", "learned-threshold", "--quiet").exit_code == 0
    stored = invoke(*base, "--sizes", "8", "--run", "latest")
    assert stored.exit_code == 0, stored.output
    row = _rows(tmp_path / "profiles" / "box" / "v2" / "profile.csv")[0]
    assert row["note"] == "stored state" and row["input"] == "8x8"
    unet = invoke("profile", "--methods", "unet(patch_size=32)", "--sizes", "32", "--batch-sizes", "1", "--repeats", "1",
                  "--warmup", "0", "--images", "1", "--machine", "box", "--quiet")
    assert unet.exit_code == 0, unet.output
    row = _rows(tmp_path / "profiles" / "box" / "v3" / "profile.csv")[0]
    assert row["note"] == "untrained" and int(row["params"]) > 0 and int(row["flops_per_image"]) > 0


@pytest.mark.parametrize(("args", "names"), [
    (("--batch-sizes", "0"), "--batch-sizes"),
    (("--batch-sizes", "a,b"), "--batch-sizes"),
    (("--sizes", "-4"), "--sizes"),
    (("--sizes", "8", "--datasets", "squares"), "--datasets or --sizes"),
    (("--repeats", "0"), "--repeats"),
    (("--warmup", "-1"), "--warmup"),
    (("--device", "tpu"), "--device"),
])
def test_bad_arguments_are_one_clear_error(invoke, args: tuple[str, ...], names: str) -> None:  # type: ignore[no-untyped-def]
    result = invoke("profile", "--methods", "decode", "--quiet", *args)
    assert result.exit_code == 2 and names in result.output


def test_profile_table_records_out_of_memory_halving(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    result = invoke("profile", "--methods", "oom-above,oom-above(cuda=True),oom-above(limit=0)", "--sizes", "8",
                    "--batch-sizes", "1,8", "--repeats", "2", "--warmup", "1", "--machine", "box", "--quiet")
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path / "profiles" / "box" / "v1" / "profile.csv")
    got = [(r["method"], r["requested_batch_size"], r["batch_size"], r["status"], r["note"]) for r in rows]
    assert got == [
        ("oom-above", "1", "1", "ok", ""),
        ("oom-above", "8", "2", "ok", "out of memory at batch 8, 4; ran at 2"),
        ("oom-above(cuda=True)", "1", "1", "ok", ""),
        ("oom-above(cuda=True)", "8", "2", "ok", "out of memory at batch 8, 4; ran at 2"),
        ("oom-above(limit=0)", "1", "", "oom", "out of memory at batch 1; not measured"),
        ("oom-above(limit=0)", "8", "", "oom", "out of memory at batch 8, 4, 2, 1; not measured"),
    ]


def test_unknown_method_names_the_known_ones(invoke) -> None:  # type: ignore[no-untyped-def]
    from harness.types import PluginError

    with pytest.raises(PluginError, match="otsu"):
        invoke("profile", "--methods", "otsuu", "--quiet")


def test_cuda_without_a_gpu_is_refused(invoke) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = invoke("profile", "--methods", "decode", "--device", "cuda", "--quiet")
    assert result.exit_code == 2 and "--device cpu" in result.output


@pytest.mark.skipif("not __import__('torch').cuda.is_available()")
def test_cuda_profile_reports_allocated_and_reserved_peaks(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = invoke("profile", "--methods", "unet", "--sizes", "256", "--batch-sizes", "1,2", "--device", "cuda",
                    "--repeats", "2", "--warmup", "1", "--train", "--machine", "gpu", "--quiet")
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path / "profiles" / "gpu" / "v1" / "profile.csv")
    assert all(float(r["gpu_reserved_mb"]) >= float(r["gpu_allocated_mb"]) > 0 for r in rows if r["status"] == "ok")
    assert [r["mode"] for r in rows] == ["inference", "inference", "train"]


def test_machine_folder_names() -> None:
    assert prof.machine_slug("Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz") == "intel-xeon-e5-2690-v4"
    assert prof.machine_slug("AMD EPYC 7763 64-Core Processor", "NVIDIA H200") == "amd-epyc-7763-64-core-nvidia-h200"
