"""Names for the tables an agent run binds in the notebook.

The model may propose a name with one extra optional argument, `result_name`, offered
with every tool and taken off before the call. A name is used only when it is a plain
Python identifier that does not hide a builtin, a user's variable, or a table that
another cell's run bound; otherwise the table gets a free variant of it and the user
is told. A table the model does not name gets `result_1`, `result_2`, ... (or the
`--results` prefix): the next free numbers, remembered per cell, so re-running a cell
binds the same names again and a later cell never takes an earlier cell's.
"""

from __future__ import annotations

import builtins
import keyword
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RESULT_NAME = "result_name"
RESULT_NAME_PROPERTY = {
    "type": "string",
    "description": "Notebook variable name for a table result (a short identifier)",
}
NAME_LIMIT = 64


def offer(schema: dict[str, Any]) -> dict[str, Any]:
    """The tool's input schema as offered to the model: with `result_name` added.

    A tool that has its own `result_name` parameter keeps it, and gets no naming.
    """
    properties = schema.get("properties")
    if not isinstance(properties, dict) or RESULT_NAME in properties:
        return schema
    return {**schema, "properties": {**properties, RESULT_NAME: RESULT_NAME_PROPERTY}}


def take(arguments: Any, schema: dict[str, Any]) -> tuple[Any, str | None]:
    """Split the model's arguments into what the tool gets and the proposed name."""
    properties = schema.get("properties")
    if (
        not isinstance(arguments, dict)
        or RESULT_NAME not in arguments
        or (isinstance(properties, dict) and RESULT_NAME in properties)
    ):
        return arguments, None
    rest = {k: v for k, v in arguments.items() if k != RESULT_NAME}
    proposed = arguments[RESULT_NAME]
    return rest, proposed if isinstance(proposed, str) and proposed.strip() else None


def problem(name: str) -> str | None:
    """Why `name` cannot be a notebook variable the agent binds, or None."""
    if not name.isidentifier() or not name.isascii():
        return "is not a Python identifier"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return "is a Python keyword"
    if name.startswith("_"):
        return "starts with `_` (IPython's output history)"
    if hasattr(builtins, name):
        return "is a Python builtin"
    if len(name) > NAME_LIMIT:
        return f"is longer than {NAME_LIMIT} characters"
    return None


def sanitize(name: str) -> str:
    """A usable identifier made from `name`: `2025 targets` → `t_2025_targets`."""
    base = re.sub(r"\W+", "_", name.strip(), flags=re.ASCII).strip("_")[: NAME_LIMIT - 4]
    if not base:
        return "table"
    if base[0].isdigit():
        base = "t_" + base
    if problem(base):
        base += "_df"
    return base


@dataclass
class _Binding:
    cell: str
    run: int
    ref: Any  # a weak reference to the value bound (or the value, if it takes none)

    def holds(self, value: Any) -> bool:
        target = self.ref() if isinstance(self.ref, weakref.ref) else self.ref
        return target is value


class Names:
    """What the agent bound in one notebook, by which cell and run."""

    def __init__(self) -> None:
        self.bindings: dict[str, _Binding] = {}
        self.fallbacks: dict[str, list[str]] = {}  # cell → its unnamed tables' names
        self.reserved: set[str] = set()  # names the run binds to something else (the answer)

    def owned_by(self, name: str, cell: str, namespace: Mapping[str, Any]) -> bool:
        """Whether `name` holds the table that this cell's earlier run bound."""
        binding = self.bindings.get(name)
        return (
            binding is not None
            and binding.cell == cell
            and name in namespace
            and binding.holds(namespace[name])
        )

    def free(self, name: str, cell: str, namespace: Mapping[str, Any], taken: set[str]) -> bool:
        if name in taken or name in self.reserved or problem(name):
            return False
        # A name nobody holds is free (a table the user deleted is not overwritten).
        return name not in namespace or self.owned_by(name, cell, namespace)

    def why_not(self, name: str, cell: str, namespace: Mapping[str, Any], taken: set[str]) -> str:
        if name in taken:
            return "names another table of this run"
        if name in self.reserved:
            return "is where the answer's text goes"
        reason = problem(name)
        if reason:
            return reason
        binding = self.bindings.get(name)
        if binding is not None and binding.cell != cell and binding.holds(namespace.get(name)):
            return f"holds a table from run {binding.run}"
        return "is already a notebook variable"

    def choose(
        self,
        proposed: str | None,
        cell: str,
        namespace: Mapping[str, Any],
        taken: set[str],
        unnamed_index: int,
        prefix: str = "result",
    ) -> tuple[str, str | None]:
        """The name for one table, and a one-line note when it is not the one proposed.

        `unnamed_index` counts this run's tables that came without a proposed name.
        """
        if proposed is not None:
            proposed = proposed.strip()
            if self.free(proposed, cell, namespace, taken):
                return proposed, None
            base = proposed if not problem(proposed) else sanitize(proposed)
            name = base
            counter = 2
            while not self.free(name, cell, namespace, taken):
                name = f"{base}_{counter}"
                counter += 1
            why = self.why_not(proposed, cell, namespace, taken)
            return name, f"`{proposed}` {why}, so the table is in `{name}` instead."
        remembered = self.fallbacks.get(cell, [])
        if unnamed_index < len(remembered):
            name = remembered[unnamed_index]
            if self.free(name, cell, namespace, taken):
                return name, None
        counter = 1
        while not self.free(name := f"{prefix}_{counter}", cell, namespace, taken):
            counter += 1
        return name, None

    def bind(
        self,
        name: str,
        value: Any,
        cell: str,
        run: int,
        namespace: Any,
        unnamed_index: int | None = None,
    ) -> None:
        """Put `value` in the namespace under `name` and remember who bound it."""
        namespace[name] = value
        try:
            ref: Any = weakref.ref(value)
        except TypeError:
            ref = value
        self.bindings[name] = _Binding(cell, run, ref)
        if unnamed_index is not None:
            remembered = self.fallbacks.setdefault(cell, [])
            if unnamed_index < len(remembered):
                remembered[unnamed_index] = name
            else:
                remembered.append(name)
