"""Where the notebooks are, and which of them a command line names.

check_notebooks (runs them) and teacher_edition (writes them with the solutions in place)
both need this, and neither needs the other to get it.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"


def notebook_paths(names: list[str]) -> list[Path]:
    everything = sorted(NOTEBOOKS.glob("*.ipynb"))
    if not names:
        return everything
    chosen = [p for p in everything if any(p.stem == n or p.name == n or p.stem.startswith(n) for n in names)]
    if not chosen:
        raise SystemExit(f"no notebook matches {' '.join(names)}")
    return chosen
