"""``bench profile``: speed and memory of methods per input size and batch size.

Each configuration (method × input × batch size) is warmed up, then timed over repeated
batches with device synchronisation; peaks are reset before each configuration, so they
belong to that configuration alone.  Running out of memory halves the batch and retries.
Rows are assembled by the ``bench_profile_columns`` hook (the built-in columns below use it
too), written as a versioned table under ``profiles/<machine>/vN/``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.bench import parse_specs
from harness.cli import registry_from
from harness.hookspecs import hookimpl
from harness.profiler import (
    GpuPeaks,
    PeakMemory,
    count_flops,
    halving,
    is_out_of_memory,
    parameter_count,
    percentiles_ms,
    release_memory,
    timed_repeats,
)
from harness.provenance import cpu_model
from harness.types import RunContext

#: The built-in columns, in order.  Their names are stable: a baseline profile CSV is compared
#: column by column, so a rename is a breaking change.  Plugin columns follow these.
COLUMNS = (
    "method", "input", "height", "width", "mode", "device", "status", "note",
    "requested_batch_size", "batch_size", "repeats",
    "latency_batch_p50_ms", "latency_batch_p95_ms", "latency_batch_p99_ms", "latency_batch_mean_ms",
    "latency_image_p50_ms", "latency_image_p95_ms", "latency_image_p99_ms",
    "images_per_s", "megapixels_per_s",
    "peak_rss_mb", "gpu_allocated_mb", "gpu_reserved_mb",
    "threads", "params", "flops_per_image",
)

SHOWN = ("method", "input", "mode", "batch_size", "latency_image_p50_ms", "latency_batch_p95_ms",
         "images_per_s", "megapixels_per_s", "peak_rss_mb", "gpu_allocated_mb", "flops_per_image", "note")


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


@hookimpl(tryfirst=True)
def bench_profile_columns(measurement: Mapping[str, Any]) -> dict[str, Any]:
    """The built-in columns of a profile row."""
    m = measurement
    seconds = list(m.get("seconds") or [])
    batch = m.get("batch_size") or 0
    total = float(sum(seconds))
    images = batch * len(seconds)
    per_image = [s / batch for s in seconds] if batch else []
    tried = list(m.get("oom_batch_sizes") or [])
    note = m.get("note") or ""
    if tried:
        oom = "out of memory at batch " + ", ".join(str(b) for b in tried)
        oom = f"{oom}; ran at {batch}" if batch else f"{oom}; not measured"
        note = "; ".join(n for n in (note, oom) if n)
    row: dict[str, Any] = {k: m.get(k) for k in ("method", "input", "height", "width", "mode", "device",
                                                  "status", "requested_batch_size", "batch_size",
                                                  "threads", "params", "flops_per_image")}
    row["note"] = note
    row["repeats"] = len(seconds)
    row.update({k: _round(v) for k, v in percentiles_ms(seconds, "latency_batch").items()})
    image_stats = percentiles_ms(per_image, "latency_image")
    row.update({k: _round(v) for k, v in image_stats.items() if not k.endswith("_mean_ms")})
    row["images_per_s"] = _round(images / total) if total > 0 else None
    pixels = float(m.get("pixels_per_image") or 0)
    row["megapixels_per_s"] = _round(images * pixels / 1e6 / total) if total > 0 else None
    for key in ("peak_rss_mb", "gpu_allocated_mb", "gpu_reserved_mb"):
        row[key] = _round(m.get(key), 1)
    return row


# ---- measuring ---------------------------------------------------------------------------


def threads_in_use() -> int:
    """Intra-op threads: torch's when torch is loaded, else the OpenMP setting or the CPU count."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.get_num_threads())
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


def measure(
    step: Callable[[int], Callable[[], object]], batch_size: int, *, warmup: int, repeats: int,
    cuda: bool,
) -> dict[str, Any]:
    """Time ``step(b)()`` at batch ``b``, halving ``b`` after each out-of-memory failure.

    ``step(b)`` prepares the inputs of a batch of ``b`` and returns the call to time.  Returns
    ``seconds`` per timed batch, the batch size that ran, those that ran out of memory and
    the configuration's peaks; an error other than running out of memory is recorded."""
    tried: list[int] = []
    for b in halving(batch_size):
        try:
            call = step(b)
            with PeakMemory(interval_s=0.02) as memory, GpuPeaks(enabled=cuda) as gpu:
                seconds = timed_repeats(call, warmup=warmup, repeats=repeats, cuda_sync=cuda)
        except Exception as exc:  # noqa: BLE001 - one configuration fails, the profile goes on
            if not is_out_of_memory(exc):
                return {"status": "error", "note": f"{type(exc).__name__}: {exc}", "batch_size": None,
                        "oom_batch_sizes": tried, "seconds": []}
            tried.append(b)
            del exc
            release_memory()
            continue
        return {"status": "ok", "batch_size": b, "oom_batch_sizes": tried, "seconds": seconds,
                "peak_rss_mb": memory.peak_rss_mb, "gpu_allocated_mb": gpu.allocated_mb,
                "gpu_reserved_mb": gpu.reserved_mb}
    return {"status": "oom", "batch_size": None, "oom_batch_sizes": tried, "seconds": []}


def synthetic_images(size: int, count: int, seed: int = 0) -> list[np.ndarray]:
    """Seeded random H×W×3 uint8 images: speed does not depend on the content for most
    methods, and the same inputs are drawn on every machine."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8) for _ in range(count)]


def _cycle(pool: Sequence[np.ndarray], n: int) -> list[np.ndarray]:
    return [pool[i % len(pool)] for i in range(n)]


def _predict_step(method: Any, pool: Sequence[np.ndarray]) -> Callable[[int], Callable[[], object]]:
    """Batches of ``b`` taken in turn from the pool, so every image is timed even at batch 1."""
    def step(b: int) -> Callable[[], object]:
        batches = [_cycle([*pool[j * b % len(pool):], *pool], b) for j in range(len(pool))]
        turn = itertools.count()
        return lambda: method.predict_batch(batches[next(turn) % len(batches)])
    return step


def prepare(method: Any, *, device: str, state: Mapping[str, np.ndarray] | None = None,
            train: Sequence[Any] = ()) -> str:
    """Ready ``method`` to predict; returns how (``untrained``, ``stored state``, ``fitted``, or
    nothing for a method that does not learn).

    A stored state is loaded when given.  Otherwise a learning method with a network
    (``build(num_classes)``) gets a freshly initialised one, since speed does not depend on the
    weights; another learning method is fitted on ``train``."""
    method.setup(RunContext(device=device))
    if state:
        method.load_state_dict(state)
        return "stored state"
    if not method.learns:
        return ""
    build = getattr(method, "build", None)
    if callable(build):
        getattr(method, "_require", lambda: None)()
        method.num_classes_ = 1
        method.model_ = build(1).eval()
        return "untrained"
    if not train:
        raise click.UsageError(
            f"method {method.name!r} learns and has no untrained form: pass --datasets D to fit it "
            "on D's training split first, or --run R to profile a stored fitted state")
    method.fit(list(train), [])
    return "fitted"


def inference_rows(method: Any, label: str, inputs: Sequence[tuple[str, list[np.ndarray]]],
                   batch_sizes: Sequence[int], *, device: str, warmup: int, repeats: int,
                   advance: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
    """One measurement per input × batch size (before the column hook)."""
    cuda = device.startswith("cuda")
    out = []
    for name, pool in inputs:
        params = parameter_count(method)
        flops = None
        if params is not None:
            flops = count_flops(_predict_step(method, pool[:1])(1))
        heights = [im.shape[0] for im in pool]
        widths = [im.shape[1] for im in pool]
        for batch_size in batch_sizes:
            advance(f"{label} · {name} · batch {batch_size}")
            result = measure(_predict_step(method, pool), batch_size, warmup=warmup, repeats=repeats,
                             cuda=cuda)
            out.append({"method": label, "input": name, "height": int(np.median(heights)),
                        "width": int(np.median(widths)), "mode": "inference", "device": device,
                        "requested_batch_size": batch_size,
                        "pixels_per_image": float(np.mean([h * w for h, w in zip(heights, widths)])),
                        "threads": threads_in_use(), "params": params, "flops_per_image": flops,
                        **result})
    return out


def train_row(method: Any, label: str, *, device: str, warmup: int, repeats: int) -> dict[str, Any]:
    """Step time and peaks of one training step (forward, backward, optimiser) at the method's
    ``patch_size`` and ``batch_size``, on random patches and a freshly built network."""
    needed = ("build", "batch_loss", "patch_size", "batch_size")
    base = {"method": label, "mode": "train", "device": device, "input": "patch"}
    if not all(hasattr(method, n) for n in needed):
        return {**base, "status": "skipped", "note": "no training step (not a deep method)", "seconds": []}
    import torch

    from plugins.methods.deep.augment import Patch
    from plugins.methods.deep.engine import amp_dtype, resolve_device

    dev = resolve_device(device)
    dtype = amp_dtype(dev)
    model = method.build(1).to(dev).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    size = int(method.patch_size)
    rng = np.random.default_rng(0)

    def step(b: int) -> Callable[[], object]:
        patches = [Patch(image=rng.random((size, size, 3), dtype=np.float32),
                         labels=(rng.random((size, size)) > 0.5).astype(np.int64),
                         valid=np.ones((size, size), dtype=bool)) for _ in range(b)]

        def once() -> None:
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                loss = method.batch_loss(model, patches, dev)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return once

    result = measure(step, int(method.batch_size), warmup=warmup, repeats=repeats,
                     cuda=device.startswith("cuda"))
    return {**base, "height": size, "width": size, "requested_batch_size": int(method.batch_size),
            "pixels_per_image": float(size * size), "threads": threads_in_use(),
            "params": sum(p.numel() for p in model.parameters()), "flops_per_image": None, **result}


def columns_of(pm: Any, measurements: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows through the column hook, and the column order (built-in first, then plugins')."""
    rows = []
    order = list(COLUMNS)
    for m in measurements:
        row: dict[str, Any] = {}
        for part in pm.hook.bench_profile_columns(measurement=m):
            for key, value in (part or {}).items():
                row.setdefault(key, value)
                if key not in order:
                    order.append(key)
        rows.append(row)
    return rows, order


# ---- writing -----------------------------------------------------------------------------


def gpu_name(device: str) -> str | None:
    torch = sys.modules.get("torch")
    if device.startswith("cuda") and torch is not None and torch.cuda.is_available():
        return str(torch.cuda.get_device_name())
    return None


def machine_slug(cpu: str, gpu: str | None = None) -> str:
    """A folder name for a machine: its CPU model, and its GPU when one was used."""
    text = cpu + (f" {gpu}" if gpu else "")
    text = re.sub(r"\((r|tm)\)|\bcpu\b|@.*?ghz|processor", " ", text, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def next_version(folder: Path) -> Path:
    versions = [int(p.name[1:]) for p in folder.glob("v*") if p.is_dir() and p.name[1:].isdigit()]
    return folder / f"v{max(versions, default=0) + 1}"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def to_markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], provenance: Mapping[str, Any]) -> str:
    """The table for people, generated from the same rows as the CSV."""
    env = provenance.get("environment", {})
    lines = [
        "# Speed and memory profile", "",
        f"CPU: {env.get('cpu')} · GPU: {env.get('gpu') or 'none'} · torch {env.get('torch') or '-'}"
        f" · CUDA {env.get('cuda') or '-'} · threads {env.get('threads')} · {provenance.get('date', '')}", "",
        "Generated from `profile.csv`; latencies in milliseconds, memory in MiB.", "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def environment(device: str, threads: int) -> dict[str, Any]:
    torch = sys.modules.get("torch")
    return {
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "gpu": gpu_name(device), "device": device,
        "torch": getattr(torch, "__version__", None) if torch else None,
        "cuda": getattr(getattr(torch, "version", None), "cuda", None) if torch else None,
        "threads": threads, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def write_profile(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], root: Path, machine: str,
                  provenance: Mapping[str, Any]) -> Path:
    """``root/machine/vN/`` with profile.csv, profile.md and provenance.json (N one past the last)."""
    folder = next_version(root / machine)
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    tmp.mkdir(parents=True)
    (tmp / "profile.csv").write_text(to_csv(rows, columns))
    (tmp / "profile.md").write_text(to_markdown(rows, columns, provenance))
    (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2, sort_keys=True, default=str) + "\n")
    os.rename(tmp, folder)
    return folder


# ---- the command -------------------------------------------------------------------------


def _int_list(value: str, option: str) -> list[int]:
    try:
        numbers = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        numbers = []
    if not numbers or any(n < 1 for n in numbers):
        raise click.BadParameter(f"{value!r}: expected comma-separated positive integers, e.g. 1,4,8",
                                 param_hint=option)
    return numbers


def _stored_state(store_path: Path, run_id: str, method: str, dataset: str | None) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    from harness.store import Store

    store = Store(store_path)
    run = store.run(run_id)
    for key in run.get("cells", []):
        record = store.cell(key)
        if record is None or record.method != method or record.status != "done":
            continue
        if dataset and record.dataset != dataset:
            continue
        path = store.cell_file(key, "model.safetensors")
        if path is not None:
            return dict(load_file(path))
    raise click.BadParameter(f"run {run_id!r} in {store_path} has no finished cell of method {method!r} "
                             "with a stored model; profile it untrained (drop --run) or run it first",
                             param_hint="--run")


@click.command("profile")
@click.option("--methods", required=True, help="Comma-separated methods, or NAME(key=value,…).")
@click.option("--datasets", default=None, help="Profile on this dataset's evaluation images instead of --sizes.")
@click.option("--sizes", default=None, help="Square random inputs of these sides [default: 256,512].")
@click.option("--batch-sizes", default="1,4", show_default=True, help="Comma-separated batch sizes.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--train", "with_train", is_flag=True, help="Also time one training step (deep methods).")
@click.option("--repeats", type=click.IntRange(min=1), default=10, show_default=True, help="Timed batches per configuration.")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True, help="Untimed batches first.")
@click.option("--images", type=click.IntRange(min=1), default=4, show_default=True, help="Distinct images per input.")
@click.option("--run", "run_id", default=None, help="Profile the fitted state stored by this run.")
@click.option("--store", "store_path", type=click.Path(path_type=Path), envvar="BENCH_RUNS", default="runs", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default="profiles", show_default=True)
@click.option("--machine", default=None, help="Folder name under --out [default: from the CPU (and GPU) model].")
@click.option("--quiet", is_flag=True, help="No progress bar or table.")
@click.pass_context
def profile_cmd(ctx: click.Context, methods: str, datasets: str | None, sizes: str | None, batch_sizes: str,
                device: str, with_train: bool, repeats: int, warmup: int, images: int, run_id: str | None,
                store_path: Path, out: Path, machine: str | None, quiet: bool) -> None:
    """Latency, throughput, memory, parameters and FLOPs per input size and batch size."""
    registry = registry_from(ctx)
    if datasets and sizes:
        raise click.UsageError("give --datasets or --sizes, not both")
    batches = _int_list(batch_sizes, "--batch-sizes")
    side_list = _int_list(sizes or "256,512", "--sizes")
    method_specs = parse_specs(methods, registry.methods, "method")
    dataset = None
    if datasets:
        chosen = parse_specs(datasets, registry.datasets, "dataset")
        if len(chosen) != 1:
            raise click.BadParameter("profile on one dataset at a time", param_hint="--datasets")
        dataset = registry.dataset(chosen[0][0], **chosen[0][1])
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise click.BadParameter("no CUDA device is available here; use --device cpu", param_hint="--device")
    if dataset is not None:
        split = dataset.eval_splits[0]
        pool = [dataset.load(split, sid).image for sid in dataset.sample_ids(split)[:images]]
        inputs = [(dataset.name, pool)]
    else:
        inputs = [(f"{s}x{s}", synthetic_images(s, images, seed=s)) for s in side_list]
    console = Console(stderr=True, soft_wrap=True)  # an error or path is never cut into lines
    measurements: list[dict[str, Any]] = []
    total = len(method_specs) * (len(inputs) * len(batches) + int(with_train))
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=quiet) as progress:
        task = progress.add_task("profile", total=total)
        started = [False]

        def advance(description: str) -> None:
            if started[0]:
                progress.advance(task)
            started[0] = True
            progress.update(task, description=description)

        for name, params in method_specs:
            method = registry.method(name, **params)
            label = name if not params else f"{name}({','.join(f'{k}={v}' for k, v in params.items())})"
            state = _stored_state(store_path, run_id, name, dataset.name if dataset else None) if run_id else None
            train: list[Any] = []
            if method.learns and not state and not callable(getattr(method, "build", None)) and dataset is not None:
                if dataset.train_split is None:
                    raise click.UsageError(f"method {name!r} learns and dataset {dataset.name!r} has no training split")
                train = list(dataset.samples(dataset.train_split))
            how = prepare(method, device=device, state=state, train=train)
            rows = inference_rows(method, label, inputs, batches, device=device, warmup=warmup,
                                  repeats=repeats, advance=advance)
            if with_train:
                advance(f"{label} · train step")
                rows.append(train_row(method, label, device=device, warmup=warmup, repeats=repeats))
            for row in rows:
                row["note"] = "; ".join(n for n in (how, row.get("note") or "") if n)
            measurements += rows
        progress.update(task, completed=total)
    assert registry.pm is not None
    rows, columns = columns_of(registry.pm, measurements)
    threads = threads_in_use()
    env = environment(device, threads)
    from harness.provenance import provenance

    prov = provenance(registry, environment=env,
                      settings={"warmup": warmup, "repeats": repeats, "images": images, "batch_sizes": batches,
                                "inputs": [n for n, _ in inputs], "run": run_id})
    folder = write_profile(rows, columns, out, machine or machine_slug(env["cpu"], env["gpu"]), prov)
    if not quiet:
        table = Table(title=f"profile · {env['cpu']} · {env['gpu'] or 'no GPU'} · {threads} threads")
        for column in SHOWN:
            table.add_column(column.replace("_", " "), justify="left" if column in ("method", "input", "note") else "right")
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in SHOWN))
        Console().print(table)
    console.print(f"profile written to {folder}")


COMMANDS = [profile_cmd]
