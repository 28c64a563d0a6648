"""list_files and read_csv: files under the root directory, never outside it."""

import csv
import datetime as dt
import errno
import io
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from .common import Deadline, ToolFailure, shorten
from .tables import AnswerBudget, Table, make_table

# --------------------------------------------------------------------------- files under the root

_CAUSES = {
    errno.ELOOP: "it runs into a symlink loop",
    errno.ENAMETOOLONG: "a name in it is too long for the file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of it is not a directory",
    errno.ENOENT: "it does not exist",
}
_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
}


def os_failure(tool: str, path: str, exc: OSError) -> ToolFailure:
    """One line naming why the file system refused `path`."""
    cause = _CAUSES.get(exc.errno or 0) or (exc.strerror or type(exc).__name__).lower()
    return ToolFailure(f"{tool} cannot use {shorten(path)}: {cause}")


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _limit(root: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(root, name)
    except (OSError, ValueError):
        return default


def display_name(name: str) -> str:
    """A file name as valid text: bytes that are not UTF-8 become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class Jail:
    """Resolves user paths inside a root directory; refuses anything that leaves it."""

    def __init__(self, root: Path) -> None:
        self.given = Path(os.path.abspath(root))
        self.root = root.resolve()
        self.name_max = _limit(self.root, "PC_NAME_MAX", 255)
        self.path_max = _limit(self.root, "PC_PATH_MAX", 4096)

    def resolve(self, path: str, tool: str = "list_files") -> Path:
        """The path to use for `path` (lexically normalized, under the root)."""
        if "\x00" in path:
            raise ToolFailure("path contains a NUL byte")
        self._check_lengths(path)
        raw = Path(path or ".")
        if raw.is_absolute():
            absolute = Path(os.path.normpath(raw))
            for base in (self.root, self.given):
                if _within(absolute, base):
                    candidate = self.root / absolute.relative_to(base)
                    break
            else:
                raise ToolFailure(f"{shorten(path)} is outside the root directory {self.root}; "
                                  "use a path relative to the root")
        else:
            candidate = Path(os.path.normpath(self.root / raw))
            if not _within(candidate, self.root):
                raise ToolFailure(f"{shorten(path)} escapes the root directory: '..' may not go "
                                  f"above {self.root}")
        try:
            self._check_symlinks(path, candidate)
            os.lstat(candidate)
        except FileNotFoundError:
            raise ToolFailure(f"{shorten(path)} does not exist under the root directory "
                              f"{self.root}") from None
        except OSError as exc:
            raise os_failure(tool, path, exc) from None
        return candidate

    def _check_lengths(self, path: str) -> None:
        encoded = os.fsencode(path)
        if len(encoded) + len(os.fsencode(str(self.root))) >= self.path_max:
            raise ToolFailure(f"the path {shorten(path)} is too long: paths may have at most "
                              f"{self.path_max:,} bytes")
        longest = max(encoded.split(b"/"), key=len)
        if len(longest) > self.name_max:
            raise ToolFailure(f"a name in the path {shorten(path)} is {len(longest):,} bytes "
                              f"long: names may have at most {self.name_max} bytes")

    def _check_symlinks(self, path: str, candidate: Path) -> None:
        current = self.root
        for part in candidate.relative_to(self.root).parts:
            current = current / part
            if not current.is_symlink():
                continue
            link = self.name(current)
            try:
                target = current.resolve(strict=True)
            except FileNotFoundError:
                raise ToolFailure(f"{shorten(path)} goes through the symlink {link!r}, which "
                                  "points to nothing") from None
            except (RuntimeError, OSError) as exc:  # RuntimeError: a loop, before Python 3.13
                if isinstance(exc, OSError) and exc.errno != errno.ELOOP:
                    raise
                raise ToolFailure(f"{shorten(path)} goes through the symlink {link!r}, which "
                                  "loops (it leads back to itself)") from None
            if not _within(target, self.root):
                raise ToolFailure(f"{shorten(path)} goes through the symlink {link!r}, which "
                                  "points outside the root directory")

    def name(self, path: Path) -> str:
        """The name of `path` relative to the root, with POSIX separators."""
        return display_name(path.relative_to(self.root).as_posix())


def file_kind(mode: int) -> str | None:
    """None for a regular file or a directory, else what it is ('a FIFO (named pipe)', ...)."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _entry_row(jail: Jail, path: Path) -> list[Any] | None:
    try:
        st = path.lstat()
    except FileNotFoundError:  # gone since it was listed
        return None
    if stat.S_ISLNK(st.st_mode):
        kind = "symlink"
    elif stat.S_ISDIR(st.st_mode):
        kind = "dir"
    else:
        kind = "file" if stat.S_ISREG(st.st_mode) else "other"
    size = st.st_size if kind != "dir" else None
    modified = dt.datetime.fromtimestamp(st.st_mtime, tz=dt.timezone.utc)
    return [jail.name(path), kind, size, modified.isoformat(timespec="seconds")]


def _walk(top: Path, recursive: bool, deadline: Deadline) -> Iterator[Path]:
    """Entries under `top`, sorted per directory; symlinked directories are not entered.

    Iterative (no recursion limit on deep trees) and checked against the deadline at
    every entry. Subdirectories that cannot be read are skipped, as `os.walk` does.
    """
    pending = [top]
    while pending:
        directory = pending.pop()
        entries: list[os.DirEntry[str]] = []
        try:
            with os.scandir(directory) as scan:
                for entry in scan:
                    deadline.check()
                    entries.append(entry)
        except OSError:
            if directory == top:
                raise
            continue
        entries.sort(key=lambda e: e.name)
        subdirs = []
        for entry in entries:
            deadline.check()
            yield Path(entry.path)
            if recursive and entry.is_dir(follow_symlinks=False):
                subdirs.append(Path(entry.path))
        pending.extend(reversed(subdirs))


def list_files_table(jail: Jail, path: str, pattern: str | None, recursive: bool,
                     limit: int, deadline: Deadline, max_bytes: int) -> Table:
    deadline.check()
    target = jail.resolve(path, "list_files")
    budget = AnswerBudget(max_bytes)
    rows: list[list[Any]] = []
    truncated = False
    if pattern and not pattern.strip("/"):
        raise ToolFailure(f"pattern {shorten(pattern)} matches nothing: give a glob such as "
                          "'*.csv'")
    try:
        mode = os.stat(target).st_mode
        kind = file_kind(mode)
        if kind:
            raise ToolFailure(f"{shorten(path)} is {kind}: list_files lists only directories "
                              "and regular files")
        entries = _walk(target, recursive, deadline) if stat.S_ISDIR(mode) else iter([target])
        for entry in entries:
            name = jail.name(entry)
            if pattern and not PurePosixPath(name).match(pattern):
                continue
            if len(rows) == limit:
                truncated = True
                break
            row = _entry_row(jail, entry)
            if row is None:
                continue
            if not budget.admits(row):
                break
            rows.append(row)
    except OSError as exc:
        raise os_failure("list_files", path, exc) from None
    rows.sort(key=lambda row: row[0])
    return make_table(["name", "type", "size", "modified"],
                      ["TEXT", "TEXT", "INTEGER", "TIMESTAMP"], rows, truncated,
                      budget.note(len(rows)))


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


def open_regular(target: Path, path: str, tool: str) -> io.TextIOWrapper:
    """Open a regular file as text without ever blocking on a FIFO or a device.

    `stat` first (which never blocks), then open with O_NONBLOCK and check again on the
    open file, in case the path was swapped in between.
    """
    kind = file_kind(os.stat(target).st_mode)
    if kind is None and target.is_dir():
        raise ToolFailure(f"{shorten(path)} is a directory; list_files shows what it contains")
    if kind:
        raise ToolFailure(f"{shorten(path)} is {kind}: {tool} reads only regular files")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(target, flags)
    try:
        kind = file_kind(os.fstat(fd).st_mode) or (
            "a directory" if stat.S_ISDIR(os.fstat(fd).st_mode) else None)
        if kind:
            raise ToolFailure(f"{shorten(path)} is {kind}: {tool} reads only regular files")
        return open(fd, newline="", encoding="utf-8-sig", errors="replace")  # noqa: SIM115
    except BaseException:
        os.close(fd)
        raise


def _lines(f: io.TextIOWrapper, path: str, max_line: int, deadline: Deadline) -> Iterator[str]:
    """The file's lines, each at most `max_line` characters, checking the deadline as it goes."""
    number = 0
    while True:
        if number % 1000 == 0:
            deadline.check()
        line = f.readline(max_line + 1)
        if not line:
            return
        number += 1
        if len(line) > max_line:
            raise ToolFailure(f"line {number:,} of {shorten(path)} is longer than "
                              f"{max_line:,} characters, the server's limit per value "
                              "(--max-value-bytes)")
        yield line


def read_csv_table(jail: Jail, path: str, limit: int, deadline: Deadline,
                   max_line: int, max_bytes: int) -> Table:
    deadline.check()
    target = jail.resolve(path, "read_csv")
    budget = AnswerBudget(max_bytes)
    note = None
    try:
        with open_regular(target, path, "read_csv") as f:
            dialect = _dialect(f.read(64 * 1024), target.suffix.lower())
            f.seek(0)
            reader = csv.reader(_lines(f, path, max_line, deadline), dialect)
            header = next(reader, [])
            raw_rows = []
            for record in reader:
                if not record:
                    continue
                if len(raw_rows) < limit and not budget.admits(record):
                    note = budget.note(len(raw_rows))
                    break
                raw_rows.append(record)
                if len(raw_rows) > limit:
                    break
    except csv.Error as exc:
        raise ToolFailure(f"cannot read {shorten(path)} as CSV: {exc}") from None
    except OSError as exc:
        raise os_failure("read_csv", path, exc) from None
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
    return make_table(names, types, rows, truncated, note)


