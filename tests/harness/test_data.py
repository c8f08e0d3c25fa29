from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import platformdirs
import pytest

from harness import DataError
from harness.data import (
    FileSpec,
    data_root,
    dataset_dir,
    download,
    fetch,
    find_layout,
    safe_extract,
    verify_files,
)


def test_data_root_and_dataset_dir_precedence(tmp_path: Path) -> None:
    assert data_root({"BENCH_DATA": str(tmp_path)}) == tmp_path
    assert data_root({}) == platformdirs.user_cache_path("segbench") / "datasets"
    assert dataset_dir("glas", env={"BENCH_DATA": str(tmp_path)}) == tmp_path / "glas"
    assert (
        dataset_dir("glas", root=tmp_path / "x", env={"BENCH_DATA": "/elsewhere"}) == tmp_path / "x"
    )
    assert (
        dataset_dir("glas", env={})
        == platformdirs.user_cache_path("segbench") / "datasets" / "glas"
    )


def test_find_layout_descends_nesting_and_skips_macosx(tmp_path: Path) -> None:
    (tmp_path / "__MACOSX" / "A").mkdir(parents=True)
    (tmp_path / "__MACOSX" / "A" / "Grade.csv").write_text("junk")
    (tmp_path / "A" / "A").mkdir(parents=True)
    (tmp_path / "A" / "A" / "Grade.csv").write_text("x")
    assert find_layout(tmp_path, "Grade.csv") == tmp_path / "A" / "A"
    assert find_layout(tmp_path, "Grade.csv", max_depth=1) is None


def test_verify_files(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"abc")
    good = hashlib.sha256(b"abc").hexdigest()
    assert verify_files(tmp_path, [FileSpec("a.txt", 3, good)]) == []
    problems = verify_files(
        tmp_path, [FileSpec("b.txt"), FileSpec("a.txt", 4), FileSpec("a.txt", 3, "0" * 64)]
    )
    assert len(problems) == 3
    assert problems[0] == f"missing {tmp_path / 'b.txt'}"
    assert problems[1] == f"{tmp_path / 'a.txt'}: 3 bytes, expected 4"
    assert problems[2].startswith(f"{tmp_path / 'a.txt'}: sha256 differs")


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def test_download_checks_sha256_and_leaves_nothing_on_mismatch(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"payload")
    good = hashlib.sha256(b"payload").hexdigest()
    out = download(source.as_uri(), tmp_path / "dl" / "file.bin", good)
    assert out.read_bytes() == b"payload"
    with pytest.raises(DataError, match="checksum mismatch"):
        download(source.as_uri(), tmp_path / "dl" / "other.bin", "1" * 64)
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["file.bin"]


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt"])
def test_zip_traversal_is_refused(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "bad.zip"
    archive.write_bytes(zip_bytes({"ok.txt": b"1", name: b"2"}))
    with pytest.raises(DataError, match="unsafe archive"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "out" / "ok.txt").exists()  # checked before anything is written


def tar_with(tmp_path: Path, member: tarfile.TarInfo) -> Path:
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.addfile(member)
    return archive


@pytest.mark.parametrize(
    ("kind", "link"),
    [
        (tarfile.SYMTYPE, "/etc/passwd"),
        (tarfile.SYMTYPE, "../../outside"),
        (tarfile.LNKTYPE, "../x"),
        (tarfile.SYMTYPE, "a.txt"),  # even a link that stays inside: no release needs one
        (tarfile.LNKTYPE, "data/a.txt"),
    ],
)
def test_tar_links_are_refused(tmp_path: Path, kind: bytes, link: str) -> None:
    member = tarfile.TarInfo("data/link")
    member.type = kind
    member.linkname = link
    with pytest.raises(DataError, match="link"):
        safe_extract(tar_with(tmp_path, member), tmp_path / "out")
    assert not (tmp_path / "out" / "data").exists()  # refused before anything was written


def test_tar_files_extract(tmp_path: Path) -> None:
    archive = tmp_path / "good.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        data = b"hello"
        info = tarfile.TarInfo("d/a.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "a.txt").read_text() == "hello"


def test_fetch_from_folder_zip_path_and_file_url(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "sub").mkdir(parents=True)
    (mirror / "sub" / "x.txt").write_text("x")
    assert (fetch(str(mirror), tmp_path / "root" / "a") / "sub" / "x.txt").read_text() == "x"
    payload = zip_bytes({"Fold 1/images/a.txt": b"a"})
    archive = tmp_path / "fold_1.zip"
    archive.write_bytes(payload)
    fetch(str(archive), tmp_path / "root" / "b")
    assert (tmp_path / "root" / "b" / "Fold 1" / "images" / "a.txt").read_bytes() == b"a"
    fetch(archive.as_uri(), tmp_path / "root" / "c", hashlib.sha256(payload).hexdigest())
    assert (tmp_path / "root" / "c" / "Fold 1").is_dir()
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["a", "b", "c"]  # no leftovers


def test_failed_fetch_leaves_no_partial_dataset(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes({"a.txt": b"a"}))
    target = tmp_path / "root" / "ds"
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch(archive.as_uri(), target, "2" * 64)
    with pytest.raises(DataError, match="no such file"):
        fetch([str(archive), str(tmp_path / "missing.zip")], target)
    assert list((tmp_path / "root").iterdir()) == []
    target.mkdir()
    (target / "keep").write_text("1")
    with pytest.raises(DataError, match="not empty"):
        fetch(str(archive), target)
