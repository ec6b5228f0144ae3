"""Find a dataset's original archive in the data folder, or download it, and read it safely."""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UserError


@dataclass(frozen=True)
class Source:
    """Where a dataset comes from: an archive file name, its official URL, and unpacked forms."""

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

    def describe(self, data_dir: Path) -> str:
        found = self.local(data_dir)
        if found is None:
            return f"will download from {self.origin}"
        return f"archive found at {found}"


def fetch(source: Source, data_dir: Path) -> Path:
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
