"""Run a notebook top to bottom in a fresh kernel and print what each cell shows."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def show(cell: nbformat.NotebookNode) -> None:
    print(f"\n\x1b[1mIn: {cell.source}\x1b[0m")
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            print(output.text, end="")
        elif output.output_type in ("execute_result", "display_data"):
            print(output.get("data", {}).get("text/plain", ""))
        elif output.output_type == "error":
            print(f"{output.ename}: {output.evalue}")


def main(path: str) -> int:
    notebook_path = Path(path).resolve()
    notebook = nbformat.read(notebook_path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook_path.parent)}},
    )
    client.execute()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            show(cell)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "notebooks/quickstart.ipynb"))
