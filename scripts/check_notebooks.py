"""Run every classroom notebook headless, top to bottom, the way a student would.

    .venv/bin/python -m scripts.check_notebooks            # all of notebooks/*.ipynb
    .venv/bin/python -m scripts.check_notebooks 01_cgi     # some of them
    .venv/bin/python -m scripts.check_notebooks --full     # without quick mode
    .venv/bin/python -m scripts.check_notebooks --pairs    # only: is each .py/.ipynb pair in sync?
    .venv/bin/python -m scripts.check_notebooks --teacher  # the teacher edition: every check must pass

Each notebook runs in a fresh "python3" kernel (ipykernel of the interpreter
running this script, so the virtualenv's), started in notebooks/ as Jupyter
starts it, with TOOLKIT_QUICK=1 unless --full. Any cell that raises fails the run.
The executed copies, outputs included, are written to var/notebooks/executed/ for
reading; the notebooks in git stay without outputs. Prints the time each notebook
took and how its check cells (tagged `check`) ended, and exits 1 if any failed. The
checks of the student edition wait for answers (❌); with --teacher the notebooks run
from var/teacher-edition/ (scripts.teacher_edition) and every check must pass (✅).

Every notebook is a jupytext pair, NN_name.py (percent format) and NN_name.ipynb
(notebooks/jupytext.toml); before running anything, every pair found is checked
to hold the same cells, and the run stops if one does not.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError
from traitlets.config import Config

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
EXECUTED = REPO / "var" / "notebooks" / "executed"


class NotebookFailed(Exception):
    """A notebook raised in a cell, or ran in a kernel of another Python."""


def is_jupytext_source(path: Path) -> bool:
    """A .py that jupytext wrote (a `# jupyter:` header), not a module such as classroom.py."""
    return path.read_text().startswith("# ---\n# jupyter:")


def pairs() -> list[tuple[Path, Path]]:
    """(NN_name.py, NN_name.ipynb) for every notebook in notebooks/, either half possibly missing."""
    stems = {p.stem for p in NOTEBOOKS.glob("*.ipynb")}
    stems |= {p.stem for p in NOTEBOOKS.glob("*.py") if is_jupytext_source(p)}
    return [(NOTEBOOKS / f"{stem}.py", NOTEBOOKS / f"{stem}.ipynb") for stem in sorted(stems)]


def cell_view(notebook: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    """What a pair must agree on: each cell's type, source and tags, in order."""
    return [(cell.cell_type, cell.source.strip(), sorted(cell.metadata.get("tags", [])))
            for cell in notebook.cells]


def pair_problems(source: Path, notebook: Path) -> list[str]:
    """Why `source` and `notebook` are not a synchronised pair (an empty list when they are)."""
    sync = f"run `.venv/bin/jupytext --sync notebooks/{source.name}`"
    if not source.exists() or not notebook.exists():
        missing = source if not source.exists() else notebook
        return [f"{missing.name} is missing; {sync} (or `jupytext --sync` on the half that exists)"]
    from_py, from_ipynb = cell_view(jupytext.read(source)), cell_view(nbformat.read(notebook, as_version=4))
    problems = []
    if len(from_py) != len(from_ipynb):
        problems.append(f"{source.name} has {len(from_py)} cells, {notebook.name} {len(from_ipynb)}; {sync}")
    for number, (left, right) in enumerate(zip(from_py, from_ipynb)):
        if left != right:
            problems.append(f"cell {number} differs between {source.name} and {notebook.name} "
                            f"(starts {left[1][:50]!r} vs {right[1][:50]!r}); {sync}")
            break
    return problems


def kernel_python(notebook: nbformat.NotebookNode) -> str | None:
    """The interpreter the setup cell reported (`Python     : /path/to/python`)."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines():
                if line.startswith("Python") and ":" in line:
                    return line.split(":", 1)[1].strip()
    return None


@contextlib.contextmanager
def notebook_client(notebook: nbformat.NotebookNode, *, folder: Path = NOTEBOOKS, **options):
    """An nbclient NotebookClient for `notebook`, its kernel started in `folder`.

    The "python3" kernel is ipykernel under the interpreter running this (the
    virtualenv's). It talks to us over Unix sockets in a private folder rather
    than TCP ports on the machine.
    """
    with tempfile.TemporaryDirectory(prefix="kernel-") as sockets:
        config = Config()
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = os.path.join(sockets, "kernel")
        yield NotebookClient(notebook, kernel_name="python3", config=config,
                             resources={"metadata": {"path": str(folder)}}, **options)


def run_notebook(path: Path, *, quick: bool = True, cell_timeout: int | None = None,
                 executed: Path = EXECUTED, env: dict[str, str] | None = None) -> float:
    """Execute one notebook in its folder; answer the seconds it took. Raises NotebookFailed.

    The executed copy, outputs included, is written into `executed`. `env` adds
    variables to the kernel's environment.

    A cell may run for 5 minutes in quick mode; in full mode a benchmark cell
    measures for many minutes, so it gets an hour.
    """
    cell_timeout = cell_timeout or (300 if quick else 3600)
    notebook = nbformat.read(path, as_version=4)
    started = time.monotonic()
    with notebook_client(notebook, folder=path.parent, timeout=cell_timeout) as client:
        try:
            # Quick mode reaches the notebook through the kernel's environment.
            client.execute(env={**os.environ, "TOOLKIT_QUICK": "1" if quick else "0", **(env or {})})
        except CellExecutionError as error:
            raise NotebookFailed(f"{path.name}: a cell failed:\n{error}") from None
        except CellTimeoutError as error:
            raise NotebookFailed(f"{path.name}: a cell ran longer than {cell_timeout} s:\n{error}") from None
        finally:
            executed.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, executed / path.name)
    seconds = time.monotonic() - started
    python = kernel_python(notebook)
    if python is not None and Path(python).absolute() != Path(sys.executable).absolute():
        raise NotebookFailed(f"{path.name} ran under {python}, not {sys.executable}: "
                             f"a 'python3' kernelspec installed elsewhere is shadowing the virtualenv's")
    return seconds


def check_outcomes(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """For each executed cell tagged `check`: ("pass", line), ("fail", line) or ("error", why)."""
    outcomes = []
    for cell in notebook.cells:
        if "check" not in cell.metadata.get("tags", []):
            continue
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")
        errors = [f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.output_type == "error"]
        verdicts = [line for line in text.splitlines() if line.startswith(("✅", "❌"))]
        if errors or len(verdicts) != 1:
            outcomes.append(("error", "; ".join(errors) or f"{len(verdicts)} verdict lines in {cell.source[:60]!r}"))
        else:
            outcomes.append(("pass" if verdicts[0].startswith("✅") else "fail", verdicts[0]))
    return outcomes


def notebook_paths(names: list[str]) -> list[Path]:
    everything = sorted(NOTEBOOKS.glob("*.ipynb"))
    if not names:
        return everything
    chosen = [p for p in everything if any(p.stem == n or p.name == n or p.stem.startswith(n) for n in names)]
    if not chosen:
        raise SystemExit(f"no notebook matches {' '.join(names)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names (00_overview, 01_cgi, ...); default all")
    parser.add_argument("--full", action="store_true", help="full measurements instead of TOOLKIT_QUICK=1")
    parser.add_argument("--pairs", action="store_true", help="only check that each .py/.ipynb pair is in sync")
    parser.add_argument("--teacher", action="store_true",
                        help="run the teacher edition (solutions in place: every check must pass)")
    args = parser.parse_args(argv)
    unsynced = [problem for source, notebook in pairs() for problem in pair_problems(source, notebook)]
    for problem in unsynced:
        print(f"out of sync: {problem}", file=sys.stderr)
    if unsynced or args.pairs:
        print(f"{len(pairs())} notebook pairs, {len(unsynced)} out of sync")
        return 1 if unsynced else 0
    paths, executed = notebook_paths(args.names), EXECUTED
    if args.teacher:
        from scripts import teacher_edition
        paths, executed = teacher_edition.write_teacher_edition(paths), EXECUTED.with_name("executed-teacher")
    failed, total = [], 0.0
    for path in paths:
        print(f"{path.name:24} ", end="", flush=True)
        try:
            seconds = run_notebook(path, quick=not args.full, executed=executed)
        except NotebookFailed as error:
            failed.append(path.name)
            print("FAILED")
            print(error, file=sys.stderr)
            continue
        total += seconds
        outcomes = [verdict for verdict, _ in check_outcomes(nbformat.read(executed / path.name, as_version=4))]
        # In the student edition the checks fail until answered; in the teacher edition all pass.
        if args.teacher and set(outcomes) - {"pass"}:
            failed.append(path.name)
        print(f"ok  {seconds:6.1f} s  checks: {outcomes.count('pass')} passed, {outcomes.count('fail')} "
              f"waiting for an answer, {outcomes.count('error')} broken", flush=True)
    print(f"{'all':24} {'FAILED: ' + ', '.join(failed) if failed else 'ok'}  {total:6.1f} s"
          f"  (executed copies in {executed.relative_to(REPO)}/)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
