"""Cell keys cover the method's source and the dataset's content, not its location."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import Sample, hookimpl
from harness.data import FileDataset
from harness.plugins import Registry, Source, build_registry
from harness.runner import plan
from harness.store import Store

SOURCE = Source(entry_point="tests.keys", distribution="tests", version="0")

METHOD_CODE = '''
from harness import Method, Prediction


class Echo(Method):
    name = "echo"
    outputs = frozenset({"foreground", "instances"})

    def __init__(self) -> None:
        pass

    def predict(self, image):
        return Prediction(instances=image[..., 0].astype("int32"))
'''


class Tiles(FileDataset):
    """Label maps stored as ``<root>/<id>.npy``; the image is the label map itself."""

    name = "tiles"
    license = "CC0-1.0"
    citation = "test fixture"
    splits = ("test",)
    eval_splits = ("test",)

    def __init__(self, root: Path | None = None) -> None:
        self.root = root

    def sample_ids(self, split: str) -> list[str]:
        self._check_split(split)
        return sorted(p.stem for p in self.directory.glob("*.npy"))

    def load(self, split: str, sample_id: str) -> Sample:
        labels = np.load(self.directory / f"{sample_id}.npy")
        return Sample(id=sample_id, image=np.stack([labels] * 3, axis=-1), instances=labels)


def _registry(tmp_path: Path, method_file: Path) -> Registry:
    name = f"keys_plugin_{abs(hash(method_file))}"
    spec = importlib.util.spec_from_file_location(name, method_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)

    class Plugin:
        @hookimpl
        def bench_register_datasets(self, register):  # type: ignore[no-untyped-def]
            register(Tiles)

        @hookimpl
        def bench_register_methods(self, register):  # type: ignore[no-untyped-def]
            register(module.Echo)

    return build_registry(extra_plugins=[(Plugin(), SOURCE)], warn=False)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Registry, Path, Path]:
    monkeypatch.delenv("BENCH_PLUGINS", raising=False)
    monkeypatch.delenv("BENCH_DISABLE_PLUGINS", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        labels = np.zeros((6, 6), dtype=np.int32)
        labels[i : i + 2, 1:3] = i + 1
        np.save(data / f"s{i}.npy", labels)
    (data / ".hidden").write_text("not read")
    method_file = tmp_path / "echo_plugin.py"
    method_file.write_text(METHOD_CODE)
    return _registry(tmp_path, method_file), data, method_file


def _key(registry: Registry, data: Path, store: Store) -> str:
    return plan(registry, [("tiles", {"root": data})], [("echo", {})], [0], metrics=["dice"],
                store=store)[0].key


def test_editing_the_method_source_changes_the_key(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, data, method_file = setup
    store = Store(tmp_path / "runs")
    before = _key(registry, data, store)
    assert _key(registry, data, store) == before
    method_file.write_text(METHOD_CODE.replace('astype("int32")', 'astype("int32") * 0'))
    after = _key(registry, data, store)
    assert after != before
    spec = plan(registry, [("tiles", {"root": data})], [("echo", {})], [0], metrics=["dice"])[0]
    assert spec.provenance["method_source"]["files"] == ["echo_plugin.py"]


def test_same_data_in_another_folder_keeps_the_key(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, data, _ = setup
    store = Store(tmp_path / "runs")
    before = _key(registry, data, store)
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(data, moved)
    (moved / ".DS_Store").write_text("hidden files are not data")
    assert _key(registry, moved, store) == before
    spec = plan(registry, [("tiles", {"root": moved})], [("echo", {})], [0], metrics=["dice"])[0]
    assert spec.provenance["dataset_content"]["n_files"] == 3


def test_one_changed_byte_changes_the_key(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry, data, _ = setup
    store = Store(tmp_path / "runs")
    before = _key(registry, data, store)
    path = data / "s1.npy"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1  # one byte of the pixel data; same size
    path.write_bytes(bytes(raw))
    assert _key(registry, data, store) != before
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    assert _key(registry, data, store) == before


def test_dataset_without_files_falls_back_and_says_so(tmp_path: Path) -> None:
    from tests.conftest import FAKE, FakePlugin

    registry = build_registry(extra_plugins=[(FakePlugin(), FAKE)], warn=False)
    spec = plan(registry, [("squares", {})], [("decode", {})], [0], metrics=["dice"])[0]
    assert spec.provenance["dataset_content"]["sha256"] is None
    assert "lists no files" in spec.provenance["dataset_content"]["note"]


DATASET_CODE = '''
import numpy as np

from harness import Sample
from harness.data import FileDataset


class Tiles2(FileDataset):
    name = "tiles2"
    license = "CC0-1.0"
    citation = "test fixture"
    splits = ("test",)
    eval_splits = ("test",)

    def __init__(self, root=None):
        self.root = root

    def sample_ids(self, split):
        return sorted(p.stem for p in self.directory.glob("*.npy"))

    def load(self, split, sample_id):
        labels = np.load(self.directory / f"{sample_id}.npy")
        return Sample(id=sample_id, image=np.stack([labels] * 3, axis=-1), instances=labels)
'''

METRIC_CODE = '''
def area(pair):
    return {"value": float(pair.prediction.instances.astype(bool).sum())}
'''


def _code_registry(tmp_path: Path, files: dict[str, Path], method_file: Path) -> Registry:
    from harness.types import MetricSpec

    modules = {}
    for what, path in [*files.items(), ("method", method_file)]:
        name = f"keys_{what}_{abs(hash((path, path.read_text())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        modules[what] = importlib.util.module_from_spec(spec)
        sys.modules[name] = modules[what]
        spec.loader.exec_module(modules[what])

    class Plugin:
        @hookimpl
        def bench_register_datasets(self, register):  # type: ignore[no-untyped-def]
            register(modules["dataset"].Tiles2)

        @hookimpl
        def bench_register_methods(self, register):  # type: ignore[no-untyped-def]
            register(modules["method"].Echo)

        @hookimpl
        def bench_register_metrics(self, register):  # type: ignore[no-untyped-def]
            register(MetricSpec("area", True, modules["metric"].area, requires=frozenset({"instances"}),
                                reference_requires=frozenset({"instances"}), range=(0.0, 1e9)))

    return build_registry(extra_plugins=[(Plugin(), SOURCE)], warn=False)


def test_editing_the_dataset_or_metric_code_changes_the_right_key(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, data, method_file = setup
    files = {"dataset": tmp_path / "tiles_plugin.py", "metric": tmp_path / "area_plugin.py"}
    files["dataset"].write_text(DATASET_CODE)
    files["metric"].write_text(METRIC_CODE)

    def keys() -> tuple[str, str]:
        registry = _code_registry(tmp_path, files, method_file)
        (spec,) = plan(registry, [("tiles2", {"root": data})], [("echo", {})], [0], metrics=["area"])
        return spec.predict_key, spec.key

    predict, cell = keys()
    assert keys() == (predict, cell)
    # a loader edit changes what the reference is: both stages are new
    files["dataset"].write_text(DATASET_CODE.replace("labels = np.load", "labels = 1 + np.load"))
    predict2, cell2 = keys()
    assert predict2 != predict and cell2 != cell
    # a metric edit (no version bump) rescores the saved predictions: same predict stage, new cell
    files["metric"].write_text(METRIC_CODE.replace(".sum()", ".sum() * 2"))
    predict3, cell3 = keys()
    assert predict3 == predict2 and cell3 != cell2
