"""Hostile and careless inputs to ``bench data fetch``: every archive here is built by the test."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from harness import DataError
from harness.data import clean_stale, fetch, safe_extract


def add_file(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def add_link(tf: tarfile.TarFile, name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tf.addfile(info)


def deep_link_escape(path: Path) -> Path:
    """The pattern that defeats the ``data`` filter on unpatched interpreters: a chain of
    links through long folder names, each of which looks like it stays inside, whose resolved
    path passes the system's length limit, ending in a link that climbs out."""
    steps = "abcdefghijklmnop"
    long_name = "d" * 247
    with tarfile.open(path, "w") as tf:
        chain = ""
        for step in steps:
            tf.addfile(_dir(f"{chain}{long_name}"))
            add_link(tf, f"{chain}{step}", long_name)
            chain += f"{step}/"
        add_link(tf, f"{chain}l", "../" * len(steps))
        add_link(tf, "escape", f"{chain}l/../../../../outside", tarfile.SYMTYPE)
        add_file(tf, "escape/written.txt", b"should never exist")
    return path


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def test_deep_link_escape_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    archive = deep_link_escape(tmp_path / "evil.tar")
    target = tmp_path / "root" / "ds"
    with pytest.raises(DataError, match="symbolic link"):
        fetch(str(archive), target)
    assert not (tmp_path / "outside").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar", "root"]
    assert list((tmp_path / "root").iterdir()) == []  # no target, no work folder


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.FIFOTYPE, tarfile.BLKTYPE])
def test_tar_special_files_are_refused(tmp_path: Path, kind: bytes) -> None:
    archive = tmp_path / "special.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("dev")
        info.type = kind
        tf.addfile(info)
    with pytest.raises(DataError, match="special file"):
        safe_extract(archive, tmp_path / "out")


def test_zip_links_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("data/link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "a.txt")
    with pytest.raises(DataError, match="is a link"):
        safe_extract(archive, tmp_path / "out")


ZEROS = 8 * 1024 * 1024  # compresses about a thousandfold


def test_zip_bomb_is_refused_by_ratio_before_writing(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(ZEROS))
    assert archive.stat().st_size * 200 < ZEROS  # the premise: far beyond the default ratio cap
    with pytest.raises(DataError, match=r"--max-ratio") as caught:
        safe_extract(archive, tmp_path / "out")
    assert "bomb.zip" in str(caught.value)
    assert list((tmp_path / "out").iterdir()) == []
    safe_extract(archive, tmp_path / "ok", max_ratio=None)  # raising the cap lets it through
    assert (tmp_path / "ok" / "zeros.bin").stat().st_size == ZEROS


def test_tar_gz_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "big.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        add_file(tf, "a.bin", bytes(1000))
        add_file(tf, "b.bin", bytes(1001))
    with pytest.raises(DataError, match=r"--max-size"):
        safe_extract(archive, tmp_path / "out", max_bytes=2000, max_ratio=None)
    safe_extract(archive, tmp_path / "out", max_bytes=2001, max_ratio=None)
    assert (tmp_path / "out" / "b.bin").stat().st_size == 1001


def test_garbage_archive_names_the_source(tmp_path: Path) -> None:
    archive = tmp_path / "truncated.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        add_file(tf, "a.bin", os.urandom(50_000))
    archive.write_bytes(buffer.getvalue()[:20_000])
    with pytest.raises(DataError, match="truncated.tar.gz"):
        fetch(str(archive), tmp_path / "root" / "ds")
    assert list((tmp_path / "root").iterdir()) == []


def test_installed_folders_follow_the_umask(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tf:
        add_file(tf, "sub/a.txt", b"a")
    old = os.umask(0o022)
    try:
        target = fetch(str(archive), tmp_path / "root" / "ds")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755  # not mkdtemp's owner-only 0o700
    assert (target / "sub" / "a.txt").read_text() == "a"


def test_interrupted_fetch_leaves_nothing_and_stale_work_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tf:
        add_file(tf, "a.txt", b"a")
    root = tmp_path / "root"

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("harness.data.safe_extract", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch(str(archive), root / "ds")
    assert list(root.iterdir()) == []
    monkeypatch.undo()
    # work left by a killed fetch (its process is gone) goes; that of a live process stays
    dead = root / ".ds.999999999.0badc0de.partial"
    (dead / "tree").mkdir(parents=True)
    (dead / "download.a.zip").write_bytes(b"x" * 100)
    alive = root / f".ds.{os.getppid()}.0badc0de.partial"
    alive.mkdir()
    other = root / ".other.999999999.0badc0de.partial"
    other.mkdir()
    fetch(str(archive), root / "ds")
    assert sorted(p.name for p in root.iterdir()) == sorted([alive.name, other.name, "ds"])
    assert clean_stale(root / "ds") == []


def test_from_folder_with_a_link_loop_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "a" / "b").mkdir(parents=True)
    (source / "a" / "b" / "x.txt").write_text("x")
    (source / "a" / "b" / "up").symlink_to("../..")
    with pytest.raises(DataError, match="link loop"):
        fetch(str(source), tmp_path / "root" / "ds")
    assert list((tmp_path / "root").iterdir()) == []
    (source / "a" / "b" / "up").unlink()
    (source / "a" / "one").symlink_to("two")  # two links that loop only together
    (source / "a" / "two").symlink_to("one")
    with pytest.raises(DataError, match="broken link|link loop"):
        fetch(str(source), tmp_path / "root" / "ds")


def test_from_folder_links_leaving_the_source_are_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a")
    (source / "alias.txt").symlink_to("a.txt")  # inside: copied as a file
    fetch(str(source), tmp_path / "root" / "ok")
    alias = tmp_path / "root" / "ok" / "alias.txt"
    assert alias.read_text() == "a" and not alias.is_symlink()
    (source / "leak.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(DataError, match="outside the source"):
        fetch(str(source), tmp_path / "root" / "bad")
    assert not (tmp_path / "root" / "bad").exists()


def test_staging_is_checked_before_installing(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tf:
        add_file(tf, "unrelated.txt", b"a")

    def check(staging: Path) -> list[str]:
        return [] if (staging / "images").is_dir() else ["missing images", "missing labels"]

    with pytest.raises(DataError, match=r"2 problem\(s\), first: missing images.*--force"):
        fetch(str(archive), tmp_path / "root" / "ds", check=check)
    assert list((tmp_path / "root").iterdir()) == []
    fetch(str(archive), tmp_path / "root" / "ds", check=check, force=True)
    assert (tmp_path / "root" / "ds" / "unrelated.txt").is_file()
