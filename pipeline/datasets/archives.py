"""Where a dataset's data comes from (an archive to download, a file bundled with a package,
or a function that writes it), and reading archives safely."""

from __future__ import annotations

import importlib.resources
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UserError


@dataclass(frozen=True)
class Archive:
    """An archive to download: its file name, its official URL, and unpacked forms."""

    fname: str
    origin: str
    unpacked: tuple[str, ...] = ()  # glob patterns accepted instead of the archive

    def local(self, data_dir: Path) -> Path | None:
        """The archive or unpacked copy in `data_dir`, if there is one."""
        archive = data_dir / self.fname
        if archive.is_file():
            return archive
        for pattern in self.unpacked:
            if any(data_dir.glob(pattern)):
                return data_dir
        return None

    def obtain(self, data_dir: Path) -> Path:
        return fetch(self, data_dir)

    def describe(self, data_dir: Path) -> str:
        found = self.local(data_dir)
        if found is None:
            return f"will download from {self.origin}"
        return f"archive found at {found}"

    def record(self) -> tuple[str, str]:
        """(MLflow dataset source type, source) of the data a run read."""
        return "http", self.origin


@dataclass(frozen=True)
class Bundled:
    """A file (or folder) shipped inside an installed package, such as a plugin's."""

    package: str
    resource: str  # a path inside the package

    @property
    def fname(self) -> str:
        return Path(self.resource).name

    def local(self, data_dir: Path) -> Path | None:
        path = Path(str(importlib.resources.files(self.package).joinpath(self.resource)))
        return path if path.exists() else None

    def obtain(self, data_dir: Path) -> Path:
        found = self.local(data_dir)
        if found is None:
            raise UserError(f"{self.resource} is missing from the package {self.package}")
        return found

    def describe(self, data_dir: Path) -> str:
        return f"bundled with {self.package}"

    def record(self) -> tuple[str, str]:
        return "local", str(self.local(Path()) or self.resource)


@dataclass(frozen=True)
class Generated:
    """A file that a function writes into the data folder the first time it is needed."""

    fname: str
    make: Callable[[Path], None]  # make(path): write the file (a module-level function)

    def local(self, data_dir: Path) -> Path | None:
        path = data_dir / self.fname
        return path if path.exists() else None

    def obtain(self, data_dir: Path) -> Path:
        path = data_dir / self.fname
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")  # never half a file under its name
            self.make(partial)
            partial.replace(path)
        return path

    def describe(self, data_dir: Path) -> str:
        found = self.local(data_dir)
        if found is None:
            return f"made by {self.make.__module__}.{self.make.__qualname__} when first used"
        return f"made at {found}"

    def record(self) -> tuple[str, str]:
        return "code", f"{self.make.__module__}.{self.make.__qualname__}"


Source = Archive | Bundled | Generated


def fetch(source: Archive, data_dir: Path) -> Path:
    """The local copy of `source`, downloading the archive into `data_dir` when it is absent."""
    found = source.local(data_dir)
    if found is not None:
        return found
    import keras  # deferred: importing Keras costs seconds

    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        path = keras.utils.get_file(
            fname=source.fname, origin=source.origin, cache_dir=str(data_dir), cache_subdir=""
        )
    except Exception as error:  # get_file raises bare Exceptions with the URL in the message
        raise UserError(
            f"could not download {source.origin} into {data_dir}: {error}. "
            f"Put {source.fname} there by hand or set PIPELINE_DATA_DIR."
        ) from None
    return Path(path)


def _check_safe(path: Path, member: tarfile.TarInfo) -> None:
    """Links, devices, absolute paths and `..` could write or read outside the data folder."""
    name = member.name
    escapes = name.startswith(("/", "\\")) or ".." in Path(name).parts
    if escapes or not (member.isfile() or member.isdir()):
        raise UserError(
            f"{path}: archive member {name!r} is a link or leaves the archive's "
            "folder; refusing to read this archive"
        )


def read_tar(
    path: Path, wanted: Callable[[str], bool], expected: str
) -> Iterator[tuple[str, bytes]]:
    """Yield (member name, bytes) of the regular files that `wanted` accepts, read in place.

    An archive with links, absolute paths or `..` in a member is refused; a corrupt or
    truncated one raises a UserError naming the file and what was `expected`.
    """
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                _check_safe(path, member)
                if member.isfile() and wanted(member.name):
                    yield member.name, tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        reason = "not a readable tar archive" if "could not be opened" in str(error) else error
        raise UserError(
            f"{path}: corrupt or truncated archive ({reason}); expected {expected}. "
            "Delete it to download it again."
        ) from None
