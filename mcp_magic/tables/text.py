"""Plain-text tables: file listings (``[FILE] a.txt``), Markdown tables, CSV/TSV.

Most specific first; text that is not clearly one of them is not a table.
"""

from __future__ import annotations

import csv
import io
import re

import pandas as pd

from . import LISTING_STARTS
from .dtypes import infer_columns

__all__ = ["text_table"]


def text_table(text: str) -> pd.DataFrame | None:
    for parse in (_listing_table, _markdown_table, _delimited_table):
        table = parse(text)
        if table is not None:
            return table
    return None


# --------------------------------------------------------------------------- listings

_LISTING_LINE = re.compile(r"\[(FILE|DIR)\] (.*)")
_LISTING_SIZE = re.compile(r"(.*?)(\s+)(\d+(?:\.\d+)?) (B|KB|MB|GB|TB)")
_LISTING_TOTAL = re.compile(r"Total: \d+ files?, \d+ director(?:y|ies)")
_LISTING_COMBINED = re.compile(r"Combined size: \d+(?:\.\d+)? (?:B|KB|MB|GB|TB)")
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _listing_table(text: str) -> pd.DataFrame | None:
    """``[FILE] a.txt`` / ``[DIR] sub`` lines (the npm filesystem server's listings).

    ``list_directory_with_sizes`` appends sizes such as ``1.20 KB``; they become an
    approximate byte count in ``size``. Its summary lines are skipped.
    """
    if not text.lstrip().startswith(LISTING_STARTS):
        return None
    entries: list[tuple[str, str]] = []
    has_summary = False
    for line in text.splitlines():
        line = line.rstrip()
        if not line.strip():
            continue
        m = _LISTING_LINE.fullmatch(line)
        if m:
            entries.append((m.group(2), "file" if m.group(1) == "FILE" else "dir"))
        elif _LISTING_TOTAL.fullmatch(line) or _LISTING_COMBINED.fullmatch(line):
            has_summary = True
        else:
            return None
    if not entries and not has_summary:
        return None
    return _listing_frame(entries, has_summary)


def _listing_frame(entries: list[tuple[str, str]], has_summary: bool) -> pd.DataFrame:
    files = [_LISTING_SIZE.fullmatch(rest) for rest, kind in entries if kind == "file"]
    sized = has_summary or (
        bool(files) and all(m is not None and len(m.group(2)) >= 2 for m in files)
    )
    if not sized or not all(files):
        return pd.DataFrame(entries, columns=["name", "type"])
    names: list[str] = []
    sizes: list[int | None] = []
    for rest, kind in entries:
        m = _LISTING_SIZE.fullmatch(rest) if kind == "file" else None
        names.append(m.group(1) if m else rest)
        sizes.append(round(float(m.group(3)) * _SIZE_UNITS[m.group(4)]) if m else None)
    return pd.DataFrame(
        {
            "name": names,
            "type": [kind for _, kind in entries],
            "size": pd.array(sizes, dtype="Int64"),
        }
    )


# --------------------------------------------------------------------------- markdown

_MD_SEPARATOR_CELL = re.compile(r":?-+:?")
_MD_SPLIT = re.compile(r"(?<!\\)\|")


def _markdown_table(text: str) -> pd.DataFrame | None:
    """A whole-text Markdown (GFM) table: header row, ``|---|:--:|`` row, body rows."""
    head = text.lstrip()[:4096].split("\n", 2)
    if len(head) < 2 or "|" not in head[0] or "|" not in head[1]:
        return None  # decided on the first two lines, before splitting a large text
    lines = [line.strip() for line in text.strip().splitlines()]
    if not all("|" in line for line in lines if line):
        return None  # prose after the table: not a pure table
    header = _md_cells(lines[0])
    separator = _md_cells(lines[1])
    if len(separator) != len(header) or not all(
        _MD_SEPARATOR_CELL.fullmatch(c) for c in separator
    ):
        return None
    body: list[list[str]] = []
    for line in lines[2:]:
        if not line:
            continue
        if "|" not in line:
            return None  # prose after the table: not a pure table
        cells = _md_cells(line)
        body.append((cells + [""] * len(header))[: len(header)])
    columns = [_infer_column([row[i] for row in body]) for i in range(len(header))]
    df = pd.DataFrame(dict(enumerate(columns)))
    df.columns = header
    return df


def _md_cells(line: str) -> list[str]:
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _MD_SPLIT.split(line)]


def _infer_column(values: list[str]) -> pd.Series:
    """Numbers and booleans from text cells; empty cells are missing."""
    cleaned = [v if v != "" else None for v in values]
    present = [v for v in cleaned if v is not None]
    if present and all(v.lower() in ("true", "false") for v in present):
        return pd.Series([None if v is None else v.lower() == "true" for v in cleaned])
    try:
        return pd.to_numeric(pd.Series(cleaned, dtype=object))
    except (ValueError, TypeError):
        return pd.Series(cleaned) if cleaned else pd.Series([], dtype=object)


# --------------------------------------------------------------------------- csv / tsv

_DELIMITERS = ("\t", ",", ";")
_SAMPLE_CHARS = 64 * 1024
_HEADER_CELL = re.compile(r"[\w$%#&()/.+\-' ]{1,64}")
_SENTENCE_END = re.compile(r"[^\W\d_][.!?]$")
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")


def _delimited_table(text: str) -> pd.DataFrame | None:
    """CSV/TSV, only when it clearly is one.

    A header row of name-like cells and at least one data row, every row with the same
    number of fields, and not reading like sentences (prose has commas too).
    """
    stripped = text.lstrip() if text[:1].isspace() else text  # no copy of a large text
    first_line = stripped.split("\n", 1)[0]
    # The shape is judged on the first lines; pandas then reads all (and refuses rows
    # with more fields than the header).
    sample = stripped if len(stripped) <= _SAMPLE_CHARS else stripped[:_SAMPLE_CHARS]
    if len(sample) < len(stripped):
        sample = sample[: sample.rfind("\n")] if "\n" in sample else sample
    for delim in _DELIMITERS:
        if delim not in first_line:
            continue
        try:
            rows = [r for r in csv.reader(io.StringIO(sample), delimiter=delim) if r]
        except csv.Error:
            continue
        width = len(rows[0])
        if len(rows) < 2 or width < 2 or any(len(r) != width for r in rows):
            continue
        if not _is_header(rows[0]) or _reads_like_prose(sample):
            continue
        try:
            df = pd.read_csv(io.StringIO(stripped), sep=delim,
                             skipinitialspace=delim + " " in sample)
        except (ValueError, csv.Error):
            continue
        df.columns = [str(c).strip() for c in df.columns]
        infer_columns(df)
        return df
    return None


def _is_header(cells: list[str]) -> bool:
    names = [c.strip() for c in cells]
    if len(set(names)) != len(names) or all(_NUMBER.fullmatch(n) for n in names):
        return False
    return all(_is_header_name(n) for n in names)


def _is_header_name(name: str) -> bool:
    if not _HEADER_CELL.fullmatch(name) or name[-1] in ".!?":
        return False
    words = name.split()
    lowercase_words = sum(w[0].islower() for w in words[1:])
    # "date" or "First Name" are names; "violets are blue" is a phrase
    return len(words) <= 4 and not (len(words) >= 3 and lowercase_words >= 2)


def _reads_like_prose(text: str) -> bool:
    lines = [line for line in map(str.strip, text.splitlines()) if line]
    # only a line ending in . ! or ? can end a sentence: the regex runs on those alone
    sentences = sum(
        1 for line in lines if line[-1] in ".!?" and _SENTENCE_END.search(line[-2:])
    )
    return sentences * 2 >= len(lines)
