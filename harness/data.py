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
import re
import secrets
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
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


#: Default caps on what one archive may unpack to (raise with ``bench data fetch --max-size`` /
#: ``--max-ratio``): the largest supported release unpacks to a few GB, and image archives
#: compress by well under 100×, so anything beyond these is a damaged file or an archive bomb.
MAX_EXTRACT_BYTES = 64 * 1024**3
MAX_EXTRACT_RATIO = 200.0


def _safe_member(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (path.parts and ":" in path.parts[0]):
        raise DataError(f"unsafe archive {archive}: member {name!r} has an absolute path")
    if ".." in path.parts:
        raise DataError(f"unsafe archive {archive}: member {name!r} escapes the target with '..'")
    return path


def _check_size(
    archive: Path, total: int, max_bytes: int | None, max_ratio: float | None
) -> None:
    """Refuse an archive whose members add up to more than the caps, before writing anything."""
    packed = max(archive.stat().st_size, 1)
    if max_bytes is not None and total > max_bytes:
        raise DataError(
            f"archive {archive} would unpack to {total / 1e9:.2f} GB, over the "
            f"{max_bytes / 1e9:.2f} GB cap; if the release really is that large, raise the cap "
            "with 'bench data fetch --max-size GB'"
        )
    if max_ratio is not None and total > max_ratio * packed:
        raise DataError(
            f"archive {archive} would unpack to {total / packed:.0f}× its size "
            f"({total} bytes from {packed}), over the {max_ratio:g}× cap; if that is expected, "
            "raise the cap with 'bench data fetch --max-ratio N'"
        )


def safe_extract(
    archive: Path,
    target: Path,
    max_bytes: int | None = MAX_EXTRACT_BYTES,
    max_ratio: float | None = MAX_EXTRACT_RATIO,
) -> None:
    """Extract a zip or tar archive into ``target``.

    Every member is checked before anything is written: absolute paths, ``..``, symbolic and
    hard links and special files are refused (no official release needs them, and links are
    how archives escape a target), and the declared sizes must stay within ``max_bytes`` in
    total and ``max_ratio`` times the archive's own size (None: no cap).  Tar archives are then
    also extracted with the interpreter's ``data`` filter where it has one, as a second guard.
    """
    target.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _safe_member(info.filename, archive)
                kind = (info.external_attr >> 16) & 0o170000
                if kind == 0o120000:
                    raise DataError(f"unsafe archive {archive}: member {info.filename!r} is a link")
                if kind not in (0, 0o100000, 0o040000):
                    raise DataError(
                        f"unsafe archive {archive}: member {info.filename!r} is a special file"
                    )
            # zipfile never yields more than a member's declared file_size, so this bounds output
            _check_size(archive, sum(info.file_size for info in infos), max_bytes, max_ratio)
            zf.extractall(target)
        return
    if not tarfile.is_tarfile(archive):
        raise DataError(
            f"{archive} is neither a zip nor a tar archive; expected one of the official downloads"
        )
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for member in members:
            _safe_member(member.name, archive)
            if member.issym() or member.islnk():
                raise DataError(
                    f"unsafe archive {archive}: member {member.name!r} is a "
                    f"{'symbolic' if member.issym() else 'hard'} link (to {member.linkname!r}); "
                    "links are refused in dataset archives"
                )
            if not (member.isfile() or member.isdir()):
                raise DataError(
                    f"unsafe archive {archive}: member {member.name!r} is a special file"
                )
        _check_size(
            archive, sum(m.size for m in members if m.isfile()), max_bytes, max_ratio
        )
        if hasattr(tarfile, "data_filter"):
            tf.extractall(target, members=members, filter="data")
        else:  # pragma: no cover - Python without extraction filters; members checked above
            tf.extractall(target, members=members)


def _copy_folder(source: Path, destination: Path) -> None:
    """Copy the folder ``source`` into ``destination``, following links that stay inside it.

    A link that resolves outside ``source``, a broken link, a link loop or a special file is
    refused before anything of that entry is copied.
    """
    root = Path(os.path.realpath(source))

    def walk(folder: Path, out: Path, chain: frozenset[str]) -> None:
        out.mkdir(exist_ok=True)
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            path = Path(entry.path)
            real = os.path.realpath(path)
            if entry.is_symlink():
                if not os.path.exists(real):
                    raise DataError(f"cannot fetch {source}: {path} is a broken link")
                if os.path.commonpath([real, root]) != str(root):
                    raise DataError(
                        f"cannot fetch {source}: {path} links to {real}, outside the source "
                        "folder; copy the files themselves into the folder"
                    )
            if os.path.isdir(real):
                if real in chain:
                    raise DataError(
                        f"cannot fetch {source}: {path} links back to {real} (a link loop)"
                    )
                walk(path, out / entry.name, chain | {real})
            elif os.path.isfile(real):
                shutil.copy2(real, out / entry.name)
            else:
                raise DataError(f"cannot fetch {source}: {path} is not a regular file or folder")

    try:
        walk(source, destination, frozenset({str(root)}))
    except OSError as exc:
        raise DataError(f"cannot fetch {source}: {exc}") from exc


_WORK_SUFFIX = ".partial"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def clean_stale(target: Path) -> list[Path]:
    """Remove the work folders of fetches of ``target`` whose process is gone (killed, power
    loss); returns what was removed.  A fetch still running elsewhere is left alone."""
    removed: list[Path] = []
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.[0-9a-f]+{_WORK_SUFFIX}$")
    if not target.parent.is_dir():
        return removed
    for entry in target.parent.iterdir():
        match = pattern.match(entry.name)
        if match and not _pid_alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def fetch(
    sources: str | Sequence[str],
    target: Path,
    sha256: str | Sequence[str | None] | None = None,
    check: Callable[[Path], list[str]] | None = None,
    force: bool = False,
    max_bytes: int | None = MAX_EXTRACT_BYTES,
    max_ratio: float | None = MAX_EXTRACT_RATIO,
) -> Path:
    """Install a dataset into ``target`` from folders, archive files or archive URLs.

    Every source is copied or extracted into one staging folder in a work folder next to
    ``target`` (named after this process, so work left by a killed fetch is removed by the next
    one), which is renamed to ``target`` only when all succeeded and, when ``check`` is given,
    ``check(staging)`` reports no problem (``force``: install anyway).  ``target`` must not
    exist yet (or be empty).  ``sha256`` gives one checksum per source (None: not checked;
    folders are never checked).  Installed folders get the usual permissions (umask).
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
    clean_stale(target)
    work = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{_WORK_SUFFIX}"
    work.mkdir()  # plain mkdir: the umask's permissions, unlike mkdtemp's owner-only ones
    staging = work / "tree"
    staging.mkdir()
    try:
        for source, checksum in zip(sources, sums):
            _install(source, staging, work, checksum, max_bytes, max_ratio)
        problems = check(staging) if check is not None else []
        if problems and not force:
            raise DataError(
                f"{', '.join(sources)} does not hold a complete copy ({len(problems)} "
                f"problem(s), first: {problems[0]}); nothing was installed. Check the source, "
                "or install it anyway with --force"
            )
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _install(
    source: str,
    staging: Path,
    work: Path,
    sha256: str | None,
    max_bytes: int | None,
    max_ratio: float | None,
) -> None:
    local = _local_path(source)
    if local is not None and local.is_dir():
        _copy_folder(local, staging)
        return
    if local is not None and not local.exists():
        raise DataError(f"cannot fetch {source}: no such file or folder")
    name = PurePosixPath(urllib.parse.urlparse(source).path).name or "download"
    archive = download(source, work / f"download.{name}", sha256)
    try:
        safe_extract(archive, staging, max_bytes, max_ratio)
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"cannot extract {source}: {exc}") from exc
    finally:
        archive.unlink(missing_ok=True)
