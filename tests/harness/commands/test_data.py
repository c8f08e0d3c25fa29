from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from harness import DataError, Sample, hookimpl
from harness.commands.data import COMMANDS, data
from harness.data import FileDataset
from harness.plugins import Source, build_registry

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "datasets"


def tiny_dsb(folder: Path) -> None:
    """Two stage1_train images in the official layout (RGBA image, one 0/255 PNG per nucleus)."""
    for k, image_id in enumerate(("a" * 64, "b" * 64)):
        (folder / "stage1_train" / image_id / "images").mkdir(parents=True)
        (folder / "stage1_train" / image_id / "masks").mkdir()
        Image.fromarray(np.full((8, 8, 4), 40 + k, np.uint8), "RGBA").save(
            folder / "stage1_train" / image_id / "images" / f"{image_id}.png"
        )
        mask = np.zeros((8, 8), np.uint8)
        mask[2:4, 2:5] = 255
        Image.fromarray(mask, "L").save(
            folder / "stage1_train" / image_id / "masks" / f"{'c' * 64}.png"
        )


def run(args: list[str], tmp_path: Path) -> object:
    return CliRunner().invoke(
        data, args, env={"BENCH_DATA": str(tmp_path / "data")}, catch_exceptions=False
    )


def test_exported() -> None:
    assert COMMANDS == [data] and data.name == "data"


def test_list_shows_data_root_and_presence(tmp_path: Path) -> None:
    tiny_dsb(tmp_path / "data" / "dsb2018")
    result = run(["list", "--json"], tmp_path)
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert listing["data_root"] == str(tmp_path / "data")
    rows = {row["name"]: row for row in listing["datasets"]}
    assert rows["dsb2018"]["present"] and rows["dsb2018"]["location"] == str(
        tmp_path / "data" / "dsb2018"
    )
    assert not rows["glas"]["present"]
    assert run(["list"], tmp_path).exit_code == 0


def test_info_and_verify(tmp_path: Path) -> None:
    tiny_dsb(tmp_path / "data" / "dsb2018")
    result = run(["info", "dsb2018", "--json"], tmp_path)
    details = json.loads(result.output)
    assert details["counts"] == {"train": 2, "validation": 0, "test": 0}  # under 3 per type
    assert details["license"].startswith("CC0") and "Caicedo" in details["citation"]
    assert run(["verify", "dsb2018", "--deep"], tmp_path).output.startswith("dsb2018: ok")
    missing = run(["verify", "glas"], tmp_path)
    assert missing.exit_code == 1 and "does not exist" in missing.output
    unknown = run(["info", "glass"], tmp_path)
    assert unknown.exit_code == 1 and "did you mean 'glas'" in unknown.output


@pytest.mark.skipif(not (SHARED / "glas" / "Grade.csv").is_file(), reason="no shared GlaS copy")
def test_info_and_verify_on_the_real_glas_copy(tmp_path: Path) -> None:
    details = json.loads(
        run(["info", "glas", "--root", str(SHARED / "glas"), "--json"], tmp_path).output
    )
    assert details["counts"] == {"train": 85, "testA": 60, "testB": 20}
    assert details["primary_metrics"] == ["object_f1", "object_dice", "object_hausdorff"]
    assert run(["verify", "glas", "--root", str(SHARED / "glas")], tmp_path).exit_code == 0


def test_fetch_from_folder_and_zip_url_with_checksum(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    tiny_dsb(mirror)
    result = run(["fetch", "dsb2018", "--from", str(mirror)], tmp_path)
    assert result.exit_code == 0, result.output
    assert run(["verify", "dsb2018"], tmp_path).exit_code == 0
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(mirror.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(mirror).as_posix())
    archive = tmp_path / "stage1_train.zip"
    archive.write_bytes(buffer.getvalue())
    target = tmp_path / "elsewhere"
    bad = run(
        [
            "fetch",
            "dsb2018",
            "--root",
            str(target),
            "--from",
            archive.as_uri(),
            "--sha256",
            "0" * 64,
        ],
        tmp_path,
    )
    assert bad.exit_code == 1 and "checksum mismatch" in bad.output and not target.exists()
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    good = run(
        ["fetch", "dsb2018", "--root", str(target), "--from", archive.as_uri(), "--sha256", digest],
        tmp_path,
    )
    assert good.exit_code == 0, good.output
    assert len(list((target / "stage1_train").iterdir())) == 2
    again = run(["fetch", "dsb2018", "--root", str(target), "--from", str(mirror)], tmp_path)
    assert again.exit_code == 1 and "not empty" in again.output


def test_fetch_without_source_explains_how(tmp_path: Path) -> None:
    result = run(["fetch", "glas"], tmp_path)
    assert (
        result.exit_code == 1
        and "no automatic download" in result.output
        and "--from" in result.output
    )
    assert "nothing to fetch" in run(["fetch", "synthetic"], tmp_path).output


def test_fetch_multi_part_release(tmp_path: Path) -> None:
    parts = []
    for k in (1, 2):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr(f"Fold {k}/images/fold{k}/note.txt", f"part {k}")
        parts.append(tmp_path / f"fold_{k}.zip")
        parts[-1].write_bytes(buffer.getvalue())
    sums = [hashlib.sha256(p.read_bytes()).hexdigest() for p in parts]
    mismatched = run(
        ["fetch", "pannuke", "--from", str(parts[0]), "--from", str(parts[1]), "--sha256", sums[0]],
        tmp_path,
    )
    assert mismatched.exit_code == 1 and "one --sha256 per --from" in mismatched.output
    args = ["fetch", "pannuke", "--from", parts[0].as_uri(), "--from", str(parts[1])]
    refused = run([*args, "--sha256", sums[0], "--sha256", sums[1]], tmp_path)
    target = tmp_path / "data" / "pannuke"
    # the parts hold no images.npy: checked in staging, refused in one line, nothing installed
    assert refused.exit_code == 1 and "nothing was installed" in refused.output
    assert "images.npy" in refused.output and "--force" in refused.output
    assert len(refused.output.strip().splitlines()) == 1 and not target.exists()
    result = run([*args, "--sha256", sums[0], "--sha256", sums[1], "--force"], tmp_path)
    assert result.exit_code == 0, result.output
    assert (target / "Fold 2" / "images" / "fold2" / "note.txt").read_text() == "part 2"
    assert "warning:" in result.output and "images.npy" in result.output
    assert ".partial" not in result.output  # problems name the installed folder, not staging


class Tiny(FileDataset):
    """Three PNGs a, b, c per split, each decoded on load; the quick check counts them."""

    name = "tiny"
    splits = ("train", "test")

    def __init__(self, root: Path | None = None) -> None:
        self.root = root

    def sample_ids(self, split: str) -> list[str]:
        return sorted(p.stem for p in (self.directory / split).glob("*.png"))

    def load(self, split: str, sample_id: str) -> Sample:
        path = self.directory / split / f"{sample_id}.png"
        try:
            image = np.asarray(Image.open(path).convert("RGB"))
        except OSError as exc:
            raise DataError(f"tiny: cannot read {path}: {exc}") from exc
        return Sample(id=sample_id, image=image, instances=np.zeros(image.shape[:2], np.int32))

    def check_layout(self) -> list[str]:
        return [
            f"missing image {self.directory / split / name}.png"
            for split in self.splits
            for name in "abc"
            if not (self.directory / split / f"{name}.png").is_file()
        ]


class TinyPlugin:
    @hookimpl
    def bench_register_datasets(self, register):  # type: ignore[no-untyped-def]
        register(Tiny)


def test_incomplete_copy_is_not_present_and_deep_verify_lists_every_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "harness.commands.data._registry",
        lambda: build_registry(
            warn=False, extra_plugins=[(TinyPlugin(), Source("tiny", "tiny", "1"))]
        ),
    )
    folder = tmp_path / "data" / "tiny"
    for split in Tiny.splits:
        (folder / split).mkdir(parents=True)
        for name in "abc":
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / split / f"{name}.png")
    rows = {r["name"]: r for r in json.loads(run(["list", "--json"], tmp_path).output)["datasets"]}
    assert rows["tiny"]["present"] and rows["tiny"]["status"] == "yes"
    (folder / "train" / "c.png").unlink()  # the quick check finds this
    (folder / "train" / "a.png").write_bytes(b"not a png")  # only decoding finds these two
    (folder / "test" / "b.png").write_bytes(b"\x89PNG truncated")
    rows = {r["name"]: r for r in json.loads(run(["list", "--json"], tmp_path).output)["datasets"]}
    assert not rows["tiny"]["present"]
    assert rows["tiny"]["status"] == f"incomplete: missing image {folder / 'train' / 'c'}.png"
    details = json.loads(run(["info", "tiny", "--json"], tmp_path).output)
    assert not details["present"] and details["counts"] == {"train": 2, "test": 3}
    quick = run(["verify", "tiny"], tmp_path)
    assert quick.exit_code == 1 and "1 problem(s)" in quick.output and "a.png" not in quick.output
    deep = run(["verify", "tiny", "--deep"], tmp_path)
    assert deep.exit_code == 1 and "3 problem(s)" in deep.output
    problems = [line for line in deep.output.splitlines() if line.startswith("problem:")]
    assert len(problems) == 3
    assert "train/a: tiny: cannot read" in problems[1] and "test/b:" in problems[2]
