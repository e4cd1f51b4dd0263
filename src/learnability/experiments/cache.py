"""On-disk cache of experiment results, keyed by the experiment's name, its config and the package source.

An edit anywhere in ``src/learnability`` changes the key, so results never go stale silently. Writes are atomic
(temporary file + ``os.replace``); an unreadable entry (partial, corrupted, from another version) is recomputed.
A long sweep can also cache each of its pieces on its own (:func:`cached_piece`), so an interrupted run resumes
where it stopped. The folder is ``$LEARNABILITY_CACHE`` or ``~/.cache/learnability``. Every computation of a whole
result also records its wall time in ``timings.json`` there, keyed by (name, config) without the source hash, so
``learnability list`` and the reproducibility appendix can show how long a run took on this machine.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import pickle
import tempfile
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

R = TypeVar("R")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def source_hash() -> str:
    """SHA-256 over the package's .py and data files (path and content), in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in PACKAGE_ROOT.rglob("*") if p.suffix in (".py", ".json") and p.is_file()):
        digest.update(str(path.relative_to(PACKAGE_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get("LEARNABILITY_CACHE", Path.home() / ".cache" / "learnability"))


def cache_key(name: str, config: object) -> str:
    """Key of (experiment name, config, package source); ``config`` must be a dataclass instance."""
    return hashlib.sha256(f"{config_key(name, config)}|{source_hash()}".encode()).hexdigest()[:20]


def config_key(name: str, config: object) -> str:
    """Key of (experiment name, config) alone: the same run under any package source."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise ValueError(f"config must be a dataclass instance; got {type(config).__name__}")
    return hashlib.sha256(f"{name}|{dataclasses.asdict(config)!r}".encode()).hexdigest()[:20]


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def run_times() -> dict[str, dict]:
    """The recorded wall times: {config_key: {"name", "seconds", "finished", "source"}}; {} when none (or the file is
    unreadable)."""
    try:
        return json.loads((cache_dir() / "timings.json").read_text())
    except (OSError, ValueError):
        return {}


def record_run_time(name: str, config: object, seconds: float) -> None:
    """Store ``seconds`` for (name, config) in ``timings.json`` (atomic rewrite; the latest measurement wins)."""
    table = run_times()
    table[config_key(name, config)] = {
        "name": name,
        "seconds": round(float(seconds), 2),
        "source": source_hash()[:12],
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    _write_atomic(cache_dir() / "timings.json", json.dumps(table, indent=1, sort_keys=True).encode())


def _load(path: Path) -> tuple[bool, object]:
    """(True, the pickled object at ``path``), or (False, None) when the file is absent or unreadable (partial,
    corrupted, from another version): such an entry is recomputed and overwritten by the caller."""
    if not path.is_file():
        return False, None
    try:
        with path.open("rb") as fh:
            return True, pickle.load(fh)
    except Exception:
        return False, None


def _load_or_compute(path: Path, compute: Callable[[], R], force: bool) -> tuple[R, float | None]:
    """(the entry at ``path``, None) when it loads and ``force`` is off; else (``compute()``, its wall time in
    seconds), the result written to ``path`` atomically."""
    if not force:
        found, value = _load(path)
        if found:
            return value, None
    start = time.perf_counter()
    result = compute()
    seconds = time.perf_counter() - start
    _write_atomic(path, pickle.dumps(result))
    return result, seconds


def cached(name: str, config: object, compute: Callable[[object], R], *, force: bool = False) -> R:
    """``compute(config)``, or its stored result for the same (name, config, source); ``force`` recomputes."""
    path = cache_dir() / name / f"{cache_key(name, config)}.pkl"
    result, seconds = _load_or_compute(path, lambda: compute(config), force)
    if seconds is not None:
        record_run_time(name, config, seconds)
    return result


def _is_plain(piece: object) -> bool:
    """Whether ``piece`` is built of str, int, float, bool, None and tuples alone, whose repr is stable."""
    return isinstance(piece, (str, int, float, bool, type(None))) or (
        isinstance(piece, tuple) and all(_is_plain(p) for p in piece)
    )


def piece_path(name: str, config: object, piece: object) -> Path:
    """Where :func:`cached_piece` stores ``piece``: ``<cache>/<name>/pieces/<cache_key(name, config)>/<hash>.pkl``,
    the hash over ``repr(piece)``; one folder per (name, config, source), so a run's pieces can be counted."""
    if not _is_plain(piece):
        raise ValueError(
            f"piece must be a str, int, float, bool, None or a tuple of these (a stable repr); got {piece!r}"
        )
    digest = hashlib.sha256(repr(piece).encode()).hexdigest()[:20]
    return cache_dir() / name / "pieces" / cache_key(name, config) / f"{digest}.pkl"


def cached_piece(name: str, config: object, piece: object, compute: Callable[[], R], *, force: bool = False) -> R:
    """``compute()`` for one piece of the experiment ``name`` at ``config`` (e.g. one run of a sweep), or its stored
    result, keyed by (name, config, package source, ``repr(piece)``) under :func:`piece_path`; ``force`` recomputes.

    Each piece is written atomically as soon as it is computed, so parallel workers may store their pieces at the
    same time and an interrupted sweep that caches its pieces this way recomputes only the missing ones. An
    unreadable entry is recomputed. Pieces record no wall time (``timings.json`` holds whole runs only)."""
    return _load_or_compute(piece_path(name, config, piece), compute, force)[0]
