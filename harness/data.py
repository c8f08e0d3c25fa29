"""Where datasets live on disk, how their files are checked, and how they are fetched safely.

Lookup order of a dataset's folder: an explicit ``root`` (the dataset folder itself), else
``$BENCH_DATA/<name>``, else ``<per-user cache>/datasets/<name>``.  Fetching copies a local
folder, or downloads/copies an archive to a temporary name, verifies its checksum, extracts it
with path-traversal checks into a temporary folder and only then renames it into place, so an
interrupted fetch never leaves something that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import ClassVar

import platformdirs

from harness.types import DataError, Dataset

ENV_VAR = "BENCH_DATA"


def data_root(env: Mapping[str, str] | None = None) -> Path:
    """``$BENCH_DATA`` when set, else the per-user cache folder ``…/segbench/datasets``."""
    env = os.environ if env is None else env
    value = env.get(ENV_VAR, "").strip()
    if value:
        return Path(value).expanduser()
    return platformdirs.user_cache_path("segbench") / "datasets"


def dataset_dir(
    name: str, root: Path | str | None = None, env: Mapping[str, str] | None = None
) -> Path:
    """The folder of dataset ``name``: ``root`` when given, else ``data_root()/name``."""
    if root is not None:
        return Path(root).expanduser()
    return data_root(env) / name


def find_layout(directory: Path, marker: str, max_depth: int = 3) -> Path | None:
    """The folder at or below ``directory`` (breadth first) that contains ``marker``.

    Official archives often unpack with extra nesting levels (``MoNuSeg 2018 Training
    Data/MoNuSeg 2018 Training Data/``); ``__MACOSX`` junk folders are skipped.
    """
    level = [directory]
    for _ in range(max_depth + 1):
        for folder in level:
            if (folder / marker).exists():
                return folder
        level = [
            child
            for folder in level
            if folder.is_dir()
            for child in sorted(folder.iterdir())
            if child.is_dir() and child.name != "__MACOSX" and not child.name.startswith(".")
        ]
    return None


# --------------------------------------------------------------------------------------
# Manifests


@dataclass(frozen=True)
class FileSpec:
    """One expected file, relative to the dataset folder; size/sha256 when the release is fixed."""

    path: str
    size: int | None = None
    sha256: str | None = None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_files(directory: Path, specs: Sequence[FileSpec]) -> list[str]:
    """Problems (missing file, wrong size, wrong checksum) of ``specs`` under ``directory``."""
    problems = []
    for spec in specs:
        path = directory / spec.path
        if not path.is_file():
            problems.append(f"missing {path}")
            continue
        if spec.size is not None and path.stat().st_size != spec.size:
            problems.append(f"{path}: {path.stat().st_size} bytes, expected {spec.size}")
            continue
        if spec.sha256 is not None and sha256_file(path) != spec.sha256:
            problems.append(f"{path}: sha256 differs from the release's ({spec.sha256})")
    return problems


@dataclass(frozen=True)
class Archive:
    """An official download: where from, and its checksum when known."""

    url: str
    sha256: str | None = None
    note: str = ""


class FileDataset(Dataset):
    """A dataset read from files in its official layout under :func:`dataset_dir`.

    Subclasses add ``homepage`` and ``download_help`` (how to obtain the files, quoted in every
    missing-data error), optionally ``archives`` (fetchable official downloads) and
    :meth:`manifest` (expected files), and implement :meth:`check_layout`.
    """

    homepage: ClassVar[str] = ""
    download_help: ClassVar[str] = ""
    archives: ClassVar[tuple[Archive, ...]] = ()

    root: Path | None = None

    @property
    def directory(self) -> Path:
        return dataset_dir(self.name, self.root)

    def fix(self) -> str:
        """The remedy quoted in errors: how to put the data where it is looked for."""
        return (
            f"Put the {self.name} files in their official layout in {self.directory} (an explicit "
            f"root, else ${ENV_VAR}/{self.name}, else the per-user data folder), e.g. with "
            f"'bench data fetch {self.name} --from PATH_OR_URL'. {self.download_help}"
        ).strip()

    def missing(self, what: str, path: Path) -> DataError:
        return DataError(f"{self.name}: {what} not found at {path}. {self.fix()}")

    def manifest(self) -> list[FileSpec]:
        """Files every complete copy has (override where the release is fixed)."""
        return []

    def check_layout(self) -> list[str]:
        """Problems with the layout beyond the manifest (counts, pairing); empty when fine."""
        return []

    def verify(self) -> list[str]:
        """All problems found without decoding every image; empty when the copy is complete."""
        if not self.directory.is_dir():
            return [f"dataset folder {self.directory} does not exist"]
        try:
            return verify_files(self.directory, self.manifest()) + self.check_layout()
        except DataError as exc:
            return [str(exc)]


# --------------------------------------------------------------------------------------
# Fetching


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(source).scheme in ("http", "https", "file", "ftp")


def _local_path(source: str) -> Path | None:
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if not _is_url(source):
        return Path(source).expanduser()
    return None


def download(source: str, destination: Path, sha256: str | None = None) -> Path:
    """Copy ``source`` (URL or path) to ``destination`` via a temporary name, checking sha256."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
    )
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            local = _local_path(source)
            reader = open(local, "rb") if local is not None else urllib.request.urlopen(source)  # noqa: SIM115
            with reader as fh:
                while block := fh.read(1 << 20):
                    digest.update(block)
                    out.write(block)
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise DataError(
                f"checksum mismatch for {source}: sha256 {digest.hexdigest()}, expected {sha256}; "
                "the download is corrupt or not the official file (nothing was kept)"
            )
        os.replace(tmp, destination)
    except OSError as exc:
        raise DataError(f"cannot fetch {source}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return destination


def _safe_member(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (path.parts and ":" in path.parts[0]):
        raise DataError(f"unsafe archive {archive}: member {name!r} has an absolute path")
    if ".." in path.parts:
        raise DataError(f"unsafe archive {archive}: member {name!r} escapes the target with '..'")
    return path


def safe_extract(archive: Path, target: Path) -> None:
    """Extract a zip or tar archive into ``target``, refusing absolute paths, ``..`` and links
    (or special files) that could write or point outside ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _safe_member(info.filename, archive)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise DataError(f"unsafe archive {archive}: member {info.filename!r} is a link")
            zf.extractall(target)
        return
    if not tarfile.is_tarfile(archive):
        raise DataError(
            f"{archive} is neither a zip nor a tar archive; expected one of the official downloads"
        )
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for member in members:
            path = _safe_member(member.name, archive)
            if member.issym() or member.islnk():
                link = PurePosixPath(member.linkname)
                resolved = link if member.islnk() else path.parent / link
                if link.is_absolute() or ".." in PurePosixPath(os.path.normpath(resolved)).parts:
                    raise DataError(
                        f"unsafe archive {archive}: link {member.name!r} -> {member.linkname!r} "
                        "points outside the target"
                    )
            elif not (member.isfile() or member.isdir()):
                raise DataError(
                    f"unsafe archive {archive}: member {member.name!r} is a special file"
                )
        if hasattr(tarfile, "data_filter"):
            tf.extractall(target, members=members, filter="data")
        else:  # pragma: no cover - Python without extraction filters; members checked above
            tf.extractall(target, members=members)


def fetch(
    sources: str | Sequence[str], target: Path, sha256: str | Sequence[str | None] | None = None
) -> Path:
    """Install a dataset into ``target`` from folders, archive files or archive URLs.

    Every source is copied or extracted into one staging folder next to ``target``, which is
    renamed to ``target`` only when all succeeded.  ``target`` must not exist yet (or be empty).
    ``sha256`` gives one checksum per source (None: not checked; folders are never checked).
    """
    sources = [sources] if isinstance(sources, str) else list(sources)
    sums: list[str | None] = (
        [sha256] * len(sources) if sha256 is None or isinstance(sha256, str) else list(sha256)
    )
    if len(sums) != len(sources):
        raise ValueError("give one sha256 per source")
    if target.exists() and any(target.iterdir()):
        raise DataError(f"{target} already exists and is not empty; remove it or verify it instead")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    )
    try:
        for source, checksum in zip(sources, sums):
            _install(source, staging, checksum)
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _install(source: str, staging: Path, sha256: str | None) -> None:
    local = _local_path(source)
    if local is not None and local.is_dir():
        shutil.copytree(local, staging, dirs_exist_ok=True, symlinks=False)
        return
    if local is not None and not local.exists():
        raise DataError(f"cannot fetch {source}: no such file or folder")
    name = PurePosixPath(urllib.parse.urlparse(source).path).name or "download"
    archive = download(source, staging.parent / f".{staging.name}.{name}", sha256)
    try:
        safe_extract(archive, staging)
    finally:
        archive.unlink(missing_ok=True)
