"""Write the teacher edition of the notebooks: the same notebooks with their solutions in place.

    .venv/bin/python -m scripts.teacher_edition            # every notebook
    .venv/bin/python -m scripts.teacher_edition 01_cgi     # some of them

In notebooks/ (the student edition) each solution is a Markdown cell tagged
`solution`, collapsed in Jupyter and never run, holding one ```python block. Here
each becomes a code cell in the same place, so running the teacher edition top to
bottom answers every exercise and every check passes. The result goes to
var/teacher-edition/ (git ignores var/), with notebooks/classroom.py beside it so
the setup cell works there too; open it with `make notebooks` or any Jupyter.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import nbformat

from scripts.check_notebooks import NOTEBOOKS, REPO, notebook_paths

TEACHER = REPO / "var" / "teacher-edition"
SOLUTION = "solution"
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def solution_code(cell: nbformat.NotebookNode) -> str:
    """The code of a solution cell: its one ```python block."""
    blocks = FENCE.findall(cell.source)
    if len(blocks) != 1:
        raise ValueError(f"a cell tagged {SOLUTION!r} holds one ```python block, found {len(blocks)}: "
                         f"{cell.source[:80]!r}")
    return blocks[0].rstrip("\n")


def is_solution(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "markdown" and SOLUTION in cell.metadata.get("tags", [])


def teacher_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of `notebook` whose solution cells are runnable code cells, tagged `solution`."""
    teacher = nbformat.from_dict(notebook)
    for number, cell in enumerate(teacher.cells):
        if is_solution(cell):
            code = nbformat.v4.new_code_cell(solution_code(cell), metadata={"tags": [SOLUTION]})
            code.id = cell.id
            teacher.cells[number] = code
    # The copy is not a jupytext pair: saving it in Jupyter must not write a .py next to it.
    teacher.metadata.pop("jupytext", None)
    return teacher


def write_teacher_edition(paths: list[Path], folder: Path = TEACHER) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(NOTEBOOKS / "classroom.py", folder / "classroom.py")
    written = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        if not any(is_solution(cell) for cell in notebook.cells):
            raise ValueError(f"{path.name} has no cell tagged {SOLUTION!r}")
        target = folder / path.name
        nbformat.write(teacher_notebook(notebook), target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names (00_overview, 01_cgi, ...); default all")
    args = parser.parse_args(argv)
    try:
        for target in write_teacher_edition(notebook_paths(args.names)):
            print(target.relative_to(REPO))
    except ValueError as error:
        print(f"teacher_edition: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
