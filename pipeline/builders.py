"""The user's own model code, carried with the plan: a build function in a file of theirs
(its source, and the helper files a space lists under `code:`), or a function defined in a
notebook cell (pickled by value). Every process that trains the model gets the code from
here, never from a path or a module name to look up; the registered model carries the
files (MLflow's `code_paths`).

The code is the user's own and runs as such: the same trust as `python my_models.py`."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UserError


@dataclass(frozen=True)
class Builder:
    """A `build(params, inputs)` function of the user's, as source text or pickled bytes."""

    name: str  # as the user wrote it: "my_models.py:build", or the notebook function's name
    function: str
    module: str = ""  # the builder file's module name ("my_models"); "" for a notebook's
    sources: tuple[tuple[str, str], ...] = ()  # (file name, text): the builder, then `code:`
    pickled: bytes = b""  # a notebook function, by value (cloudpickle)

    @property
    def modules(self) -> tuple[str, ...]:
        """The modules a process imports before it loads a saved model of this builder
        (their custom layers register themselves with Keras)."""
        return tuple(Path(name).stem for name, _ in self.sources)

    def describe(self) -> str:
        """Its name and a digest of its code: which version of it a study's run trained."""
        digest = hashlib.sha256(repr((self.sources, self.pickled)).encode()).hexdigest()
        return f"{self.name} (sha256 {digest[:12]})"

    def load(self) -> Callable:
        """The function itself, in this process (its files imported once per process)."""
        key = (self.name, self.pickled, self.sources)
        if key not in _LOADED:
            _LOADED[key] = self._unpickle() if self.pickled else self._import()
        return _LOADED[key]

    def files(self) -> list[Path]:
        """The files, written into a folder of this process (for MLflow's `code_paths`)."""
        folder = _materialize(self.sources)
        return [folder / name for name, _ in self.sources]

    def _unpickle(self) -> Callable:
        import cloudpickle

        return cloudpickle.loads(self.pickled)

    def _import(self) -> Callable:
        folder = str(_materialize(self.sources))
        for module in self.modules:  # another builder's file of the same name, imported before
            sys.modules.pop(module, None)
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
        importlib.invalidate_caches()
        try:
            module = importlib.import_module(self.module)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # SystemExit too: a file that parses argv on import
            raise BuilderError(f"{self.name}: failed on import: {one_line(error)}") from None
        function = getattr(module, self.function, None)
        if not callable(function):
            raise BuilderError(
                f"{self.name}: {self.sources[0][0]} has no function {self.function!r}"
            )
        return function


class BuilderError(UserError):
    """The user's builder cannot be imported, found or built: one line naming it."""


_LOADED: dict[tuple, Callable] = {}
_FOLDERS: dict[str, Path] = {}


def _materialize(sources: tuple[tuple[str, str], ...]) -> Path:
    """A folder of this process holding the files (one per distinct set of sources)."""
    digest = hashlib.sha256(repr(sources).encode()).hexdigest()[:16]
    if digest not in _FOLDERS:
        folder = Path(tempfile.mkdtemp(prefix=f"pipeline-code-{digest}-"))
        for name, text in sources:
            (folder / name).write_text(text, encoding="utf-8")
        _FOLDERS[digest] = folder
    return _FOLDERS[digest]


def from_file(reference: str, base: Path, code: list[str], where: str) -> Builder:
    """`builder: FILE:FUNCTION` (FILE relative to `base`, the space's folder) and the `code:`
    files, read now: a missing or unreadable one is one line naming it (`where`)."""
    file, _, function = reference.rpartition(":")
    if not file or not function or not file.endswith(".py"):
        raise UserError(f"{where}: builder: expected FILE.py:FUNCTION, got {reference!r}")
    names, sources = set(), []
    for key, name in [("builder", file)] + [(f"code[{i}]", c) for i, c in enumerate(code, 1)]:
        if not isinstance(name, str) or not name.endswith(".py"):
            raise UserError(f"{where}: {key}: expected a .py file, got {name!r}")
        path = base / name
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            problem = getattr(error, "strerror", None) or "not UTF-8 text"
            raise UserError(f"{where}: {key}: cannot read {path} ({problem})") from None
        if path.name in names:
            raise UserError(f"{where}: {key}: two files named {path.name}")
        _check_name(path, f"{where}: {key}")
        names.add(path.name)
        sources.append((path.name, text))
    return Builder(reference, function, Path(file).stem, tuple(sources))


def from_function(function: Callable) -> Builder:
    """A function of a notebook cell (or any module): pickled by value, so a worker process
    that cannot import the notebook still gets it."""
    import cloudpickle

    module = sys.modules.get(function.__module__)
    by_value = module is not None and function.__module__ != "__main__"
    if by_value:  # a module of the user's (a test, a script): sent along, not imported there
        cloudpickle.register_pickle_by_value(module)
    try:
        pickled = cloudpickle.dumps(function)
    except Exception as error:  # it holds what cannot be sent: a lock, an open file, ...
        raise BuilderError(
            f"builder {getattr(function, '__qualname__', function)!r} cannot be sent to "
            f"worker processes: {one_line(error)}"
        ) from None
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)
    name = getattr(function, "__qualname__", None) or type(function).__qualname__  # a HyperModel's
    return Builder(name, name, pickled=pickled)


def _check_name(path: Path, where: str) -> None:
    """A file imported by its name must not stand in for a module of Python's or of an
    installed package (`copy.py`, `keras.py`): every later import of that name would get
    it. Its own file, found where Python looks (the folder you run in), is fine."""
    name = path.stem
    clash = name in sys.stdlib_module_names or name == "pipeline"
    if not clash:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        clash = spec is not None and not (
            origin and (Path(origin).resolve() == path.resolve() or "pipeline-code-" in origin)
        )
    if clash:
        raise UserError(
            f"{where}: {path.name} has the name of a module of Python or of an "
            "installed package; rename the file"
        )


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
