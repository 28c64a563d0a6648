"""list_files and read_csv: files under the root directory, never outside it."""

import csv
import datetime as dt
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from .common import ToolFailure
from .tables import Table, make_table

# --------------------------------------------------------------------------- files under the root


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class Jail:
    """Resolves user paths inside a root directory; refuses anything that leaves it."""

    def __init__(self, root: Path) -> None:
        self.given = Path(os.path.abspath(root))
        self.root = root.resolve()

    def resolve(self, path: str) -> Path:
        """The path to use for `path` (lexically normalized, under the root)."""
        if "\x00" in path:
            raise ToolFailure("path contains a NUL byte")
        raw = Path(path or ".")
        if raw.is_absolute():
            absolute = Path(os.path.normpath(raw))
            for base in (self.root, self.given):
                if _within(absolute, base):
                    candidate = self.root / absolute.relative_to(base)
                    break
            else:
                raise ToolFailure(f"{path!r} is outside the root directory {self.root}; "
                                  "use a path relative to the root")
        else:
            candidate = Path(os.path.normpath(self.root / raw))
            if not _within(candidate, self.root):
                raise ToolFailure(f"{path!r} escapes the root directory: '..' may not go above "
                                  f"{self.root}")
        self._check_symlinks(path, candidate)
        if not os.path.lexists(candidate):
            raise ToolFailure(f"{path!r} does not exist under the root directory {self.root}")
        return candidate

    def _check_symlinks(self, path: str, candidate: Path) -> None:
        current = self.root
        for part in candidate.relative_to(self.root).parts:
            current = current / part
            if current.is_symlink() and not _within(current.resolve(), self.root):
                link = self.name(current)
                raise ToolFailure(f"{path!r} goes through the symlink {link!r}, which points "
                                  "outside the root directory")

    def name(self, path: Path) -> str:
        """The name of `path` relative to the root, with POSIX separators."""
        return path.relative_to(self.root).as_posix()


def _entry_row(jail: Jail, path: Path) -> list[Any]:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        kind = "symlink"
    elif stat.S_ISDIR(st.st_mode):
        kind = "dir"
    else:
        kind = "file" if stat.S_ISREG(st.st_mode) else "other"
    size = st.st_size if kind != "dir" else None
    modified = dt.datetime.fromtimestamp(st.st_mtime, tz=dt.timezone.utc)
    return [jail.name(path), kind, size, modified.isoformat(timespec="seconds")]


def _walk(top: Path, recursive: bool) -> Iterable[Path]:
    """Entries under `top`, sorted per directory; symlinked directories are not entered."""
    if not recursive:
        with os.scandir(top) as entries:
            yield from sorted((Path(e.path) for e in entries), key=lambda p: p.name)
        return
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        base = Path(dirpath)
        yield from (base / name for name in sorted(dirnames + filenames))


def list_files_table(jail: Jail, path: str, pattern: str | None, recursive: bool,
                     limit: int) -> Table:
    target = jail.resolve(path)
    rows: list[list[Any]] = []
    truncated = False
    try:
        entries = _walk(target, recursive) if target.is_dir() else [target]
        for entry in entries:
            name = jail.name(entry)
            if pattern and not PurePosixPath(name).match(pattern):
                continue
            if len(rows) == limit:
                truncated = True
                break
            rows.append(_entry_row(jail, entry))
    except OSError as exc:
        raise ToolFailure(f"cannot list {path!r}: {exc.strerror or exc}") from None
    rows.sort(key=lambda row: row[0])
    return make_table(["name", "type", "size", "modified"],
                      ["TEXT", "TEXT", "INTEGER", "TIMESTAMP"], rows, truncated)


_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_REAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def _parse_column(values: list[str]) -> tuple[str, list[Any]]:
    """Convert one CSV column: INTEGER if all ints, REAL if all numbers, else TEXT.

    Empty cells are null; no NaN/inf, so the table stays valid JSON.
    """
    distinct = {v for v in values if v != ""}
    if not distinct:
        return "NULL", [None] * len(values)
    for kind, pattern, convert in (("INTEGER", _INTEGER, int), ("REAL", _REAL, float)):
        if all(pattern.fullmatch(v) for v in distinct):
            converted: dict[str, Any] = {v: convert(v) for v in distinct}
            converted[""] = None
            return kind, [converted[v] for v in values]
    return "TEXT", [v if v != "" else None for v in values]


def _unique_names(header: list[str]) -> list[str]:
    names: list[str] = []
    for i, raw in enumerate(header):
        name = raw.strip() or f"column_{i + 1}"
        base, n = name, 1
        while name in names:
            name, n = f"{base}.{n}", n + 1
        names.append(name)
    return names


def _dialect(sample: str, suffix: str) -> type[csv.Dialect] | csv.Dialect:
    if suffix in (".tsv", ".tab"):
        return csv.excel_tab
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def read_csv_table(jail: Jail, path: str, limit: int) -> Table:
    target = jail.resolve(path)
    if target.is_dir():
        raise ToolFailure(f"{path!r} is a directory; list_files shows what it contains")
    try:
        with open(target, newline="", encoding="utf-8-sig", errors="replace") as f:
            dialect = _dialect(f.read(64 * 1024), target.suffix.lower())
            f.seek(0)
            reader = csv.reader(f, dialect)
            header = next(reader, [])
            raw_rows = []
            for record in reader:
                if not record:
                    continue
                raw_rows.append(record)
                if len(raw_rows) > limit:
                    break
    except (OSError, csv.Error) as exc:
        raise ToolFailure(f"cannot read {path!r} as CSV: {exc}") from None
    truncated = len(raw_rows) > limit
    del raw_rows[limit:]
    names = _unique_names(header)
    width = len(names)
    padded = [(r + [""] * width)[:width] for r in raw_rows]
    columns = list(zip(*padded, strict=True)) if padded else [()] * width
    types, converted = [], []
    for values in columns:
        kind, cells = _parse_column(list(values))
        types.append(kind)
        converted.append(cells)
    rows = [list(row) for row in zip(*converted, strict=True)] if padded else []
    return make_table(names, types, rows, truncated)


