"""The classroom notebooks: paired with their .py sources, stored clean, leave no server
behind, and run top to bottom.

test_notebook_runs executes each notebook in quick mode twice (what `make notebooks-check`
does too, through scripts.check_notebooks): as the student gets it, where every check
must fail with its hint, and as the teacher edition, where every check must pass. It
is marked slow.
"""

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import jupytext
import nbformat
import pytest

from scripts import check_notebooks, system, teacher_edition
from scripts.launch import REPO
from tests.external import require_program

NOTEBOOKS = sorted(check_notebooks.NOTEBOOKS.glob("*.ipynb"))

# 04_benchmarks shows the results file TOOLKIT_BENCH_RESULTS names, and measures when there is
# none: the student run measures (whatever `make bench` left in results/), and writes its
# results here; the teacher run shows them rather than measuring the same things again.
BENCH_RESULTS = REPO / "var" / "notebooks" / "bench" / "notebook.json"

# A measuring notebook run as a platform without CPU pinning runs it (scripts/system.py's
# fallbacks forced: no affinity calls, no /proc): the student run; its output must say so.
# The teacher run of the same notebook keeps the pinned path.
UNPINNED = {"02_wsgi.ipynb"}

# The Debian programs a notebook starts (skipped locally without them, a failure in CI).
PROGRAMS = {"05_production.ipynb": ["nginx"]}

# What a notebook must print in a run, beyond its checks: results its closing cells state.
PRINTED = {"05_production.ipynb": [
    "A handshake without Origin: refused, 403",
    "2 of 2 chat messages reached both members; nginx's log: 3 connections switched protocols (101).",
    "2. Let nginx serve the static files: ",
]}


def tracked_notebooks():
    listed = subprocess.run(["git", "ls-files", "notebooks/*.ipynb"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    return [REPO / name for name in listed]


def test_the_five_notebooks_are_there():
    names = [p.name for p in NOTEBOOKS]
    for name in ["00_overview.ipynb", "01_cgi.ipynb", "02_wsgi.ipynb", "03_asgi.ipynb", "04_benchmarks.ipynb"]:
        assert name in names


@pytest.mark.parametrize("pair", check_notebooks.pairs(), ids=lambda pair: pair[0].stem)
def test_every_notebook_is_a_pair_in_sync(pair):
    source, notebook = pair
    assert check_notebooks.pair_problems(source, notebook) == []
    assert jupytext.read(source).metadata["jupytext"]["formats"] == "ipynb,py:percent"


def test_the_sync_check_sees_an_edit_to_either_half_and_a_missing_half(tmp_path):
    source, notebook = check_notebooks.pairs()[0]
    copy_py, copy_ipynb = tmp_path / source.name, tmp_path / notebook.name
    copy_py.write_text(source.read_text())
    copy_ipynb.write_text(notebook.read_text())
    assert check_notebooks.pair_problems(copy_py, copy_ipynb) == []

    copy_py.write_text(source.read_text().replace("Learning goals", "Learning aims", 1))
    [problem] = check_notebooks.pair_problems(copy_py, copy_ipynb)
    assert "cell 0 differs" in problem and "jupytext --sync" in problem

    copy_py.write_text(source.read_text() + "\n# %%\nprint('a cell added in an editor')\n")
    assert "cells" in check_notebooks.pair_problems(copy_py, copy_ipynb)[0]

    copy_py.write_text(source.read_text())
    edited = nbformat.read(notebook, as_version=4)
    edited.cells[-1].metadata["tags"] = ["solution"]
    nbformat.write(edited, copy_ipynb)
    assert check_notebooks.pair_problems(copy_py, copy_ipynb), "a tag added in Jupyter only"

    copy_ipynb.unlink()
    assert "missing" in check_notebooks.pair_problems(copy_py, copy_ipynb)[0]


@pytest.mark.parametrize("path", tracked_notebooks(), ids=lambda p: p.name)
def test_notebook_in_git_carries_no_outputs(path):
    committed = subprocess.run(["git", "show", f"HEAD:{path.relative_to(REPO)}"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout
    for text in (committed, path.read_text()):
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} cell {cell.id}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_goals_a_code_exercise_a_prediction_and_solutions(path):
    notebook = nbformat.read(path, as_version=4)
    text = "\n".join(cell.source for cell in notebook.cells)
    assert "Learning goals" in notebook.cells[0].source
    assert "## Exercises" in text
    assert "nb.check_code(" in text, "an exercise where the student writes code"
    recorded = text.index("nb.record_prediction(")
    assert text.index("nb.check_prediction(") > recorded, "a prediction recorded before it is measured"
    checks = [cell for cell in notebook.cells if "check" in cell.metadata.get("tags", [])]
    assert checks and all("nb.check" in cell.source for cell in checks)
    untagged = [cell.source[:60] for cell in notebook.cells
                if cell.cell_type == "code" and "nb.check" in cell.source and cell not in checks]
    assert untagged == [], "every check cell is tagged `check`"
    solutions = [cell for cell in notebook.cells if teacher_edition.is_solution(cell)]
    assert solutions and all(cell.metadata.get("jupyter", {}).get("source_hidden") for cell in solutions)
    teacher = teacher_edition.teacher_notebook(notebook)
    assert [cell.cell_type for cell in teacher.cells if "solution" in cell.metadata.get("tags", [])] == \
        ["code"] * len(solutions)


def test_teacher_edition_refuses_a_solution_without_code():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("**Solution.** just words", metadata={"tags": ["solution"]})]
    with pytest.raises(ValueError, match="one ```python block"):
        teacher_edition.teacher_notebook(notebook)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def execute(cells, *, allow_errors=True):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(textwrap.dedent(source)) for source in cells]
    with check_notebooks.notebook_client(notebook, timeout=60, allow_errors=allow_errors) as client:
        client.execute()
    return notebook


def cell_text(cell):
    return "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")


def test_server_helper_leaves_no_process_when_a_cell_raises_or_the_kernel_ends():
    notebook = execute([
        """
        import os
        from classroom import setup
        nb = setup()
        """,
        # A cell that fails inside the `with` block: the block stops the server.
        """
        with nb.server("gunicorn", app="scripts.hello_apps:wsgi_app") as srv:
            print("first", srv.pid, flush=True)
            raise RuntimeError("a failing cell")
        """,
        """
        print("after the failing cell, its server group is", "alive" if os.path.exists(f"/proc/{srv.pid}") else "gone")
        """,
        # A server started without `with` and never stopped: the kernel's exit stops it.
        """
        left = nb.server("gunicorn", app="scripts.hello_apps:wsgi_app").start()
        print("second", left.pid, flush=True)
        """,
        """
        import sys
        print("kernel", sys.executable)
        """,
    ])
    failing, after, second, kernel = notebook.cells[1:]
    assert any(o.output_type == "error" and o.ename == "RuntimeError" for o in failing.outputs)
    first_pid = int(cell_text(failing).split()[1])
    assert "server group is gone" in cell_text(after)
    assert not group_alive(first_pid)
    second_pid = int(cell_text(second).split()[1])
    # The kernel has shut down when execute() returns; launch.py's atexit handler stopped the server.
    deadline = time.monotonic() + 10
    while group_alive(second_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not group_alive(second_pid)
    assert cell_text(kernel).split()[1] == sys.executable


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_quick_mode_and_every_check_waits_for_an_answer(path):
    for program in PROGRAMS.get(path.name, []):
        require_program(program)
    if path.name == "04_benchmarks.ipynb":
        # Measure here (the teacher run then shows these results); other notebooks leave them.
        BENCH_RESULTS.unlink(missing_ok=True)
    env = {"TOOLKIT_BENCH_RESULTS": str(BENCH_RESULTS)}
    if path.name in UNPINNED:
        env[system.FORCE_FALLBACKS] = "1"
    seconds = check_notebooks.run_notebook(path, quick=True, env=env)
    print(f"{path.name}: {seconds:.1f} s")
    executed = nbformat.read(check_notebooks.EXECUTED / path.name, as_version=4)
    outcomes = check_notebooks.check_outcomes(executed)
    assert outcomes
    for verdict, line in outcomes:
        assert verdict == "fail", line
        assert line.split("Hint:", 1)[1].strip(), f"a failing check shows a hint: {line}"
    printed = "".join(output.get("text", "") for cell in executed.cells for output in cell.get("outputs", []))
    for claim in PRINTED.get(path.name, []):
        assert claim in printed, claim
    if path.name in UNPINNED:
        assert f"unpinned: {system.FORCE_FALLBACKS} is set" in printed
        assert "shared with the load generator (unpinned)" in printed
        assert "server pinned to cores" not in printed


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_teacher_edition_runs_in_quick_mode_and_every_check_passes(path):
    for program in PROGRAMS.get(path.name, []):
        require_program(program)
    # Inside the repository, where the edition's copy of classroom.py finds it.
    (REPO / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=REPO / "var", prefix="test-teacher-") as folder:
        [teacher] = teacher_edition.write_teacher_edition([path], Path(folder) / "teacher")
        seconds = check_notebooks.run_notebook(teacher, quick=True, executed=Path(folder) / "executed",
                                               env={"TOOLKIT_BENCH_RESULTS": str(BENCH_RESULTS)})
        executed = nbformat.read(Path(folder) / "executed" / path.name, as_version=4)
    print(f"{path.name}, teacher edition: {seconds:.1f} s")
    outcomes = check_notebooks.check_outcomes(executed)
    assert outcomes and all(verdict == "pass" for verdict, _ in outcomes), outcomes


def test_a_check_fails_with_its_hint_until_the_answer_is_right(capsys):
    from scripts import notebook_helpers as nb
    assert not nb.check(..., 4, hint="count them")
    assert not nb.check({"a": 1, "b": ...}, {"a": 1, "b": 2}, hint="count them")
    assert not nb.check(5, 4, hint="count them")
    assert nb.check(4.1, 4, tolerance=0.05, hint="count them")
    lines = capsys.readouterr().out.splitlines()
    assert [line[0] for line in lines] == ["❌", "❌", "❌", "✅"]
    assert all(line.endswith("Hint: count them") for line in lines[:3])
    with pytest.raises(ValueError, match="hint"):
        nb.check(1, 1, hint=" ")


def test_a_prediction_counts_only_as_recorded_when_the_measurement_started(capsys):
    from scripts import notebook_helpers as nb
    nb.record_prediction("test-order", ...)
    assert not nb.check_prediction("test-order", 3, hint="h")
    nb.record_prediction("test-order", 3)
    assert nb.check_prediction("test-order", 3, hint="h")
    assert not nb.check_prediction("test-order", 4, hint="h")
    assert not nb.check_prediction("never-recorded", 4, hint="h")
    assert "No prediction was recorded" in capsys.readouterr().out


def test_check_code_shows_what_went_wrong_on_one_line(capsys):
    from scripts import notebook_helpers as nb

    def failing():
        raise AssertionError("first line\nsecond line")

    assert not nb.check_code(failing, hint="try again")
    assert nb.check_code(lambda: "it works", hint="try again")
    failed, passed = capsys.readouterr().out.splitlines()
    assert failed == "❌ Not yet: AssertionError: first line second line Hint: try again"
    assert passed == "✅ Right: it works"
