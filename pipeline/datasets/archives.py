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


def _is_safe(member: tarfile.TarInfo) -> bool:
    name = member.name
    return member.isfile() and not name.startswith(("/", "\\")) and ".." not in Path(name).parts


def read_tar(
    path: Path, wanted: Callable[[str], bool], expected: str
) -> Iterator[tuple[str, bytes]]:
    """Yield (member name, bytes) of the regular files that `wanted` accepts, read in place.

    Links, absolute paths and paths with `..` are never read. A corrupt or truncated
    archive raises a UserError naming the file and what was `expected`.
    """
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                if _is_safe(member) and wanted(member.name):
                    yield member.name, tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise UserError(
            f"{path}: corrupt or truncated archive ({error}); expected {expected}. "
            "Delete it to download it again."
        ) from None
