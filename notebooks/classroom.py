"""The first code cell of every notebook: `from classroom import setup` then `nb = setup()`.

Jupyter starts a notebook's kernel in the notebook's folder, notebooks/, where this
module is importable. setup() moves the kernel to the repository root (servers/,
scripts/ and sample_site/ are found from there, as in a terminal) and answers the
helpers module, scripts.notebook_helpers. (The teacher edition in var/teacher-edition/
carries a copy of this file, so the repository is the nearest folder above with servers/.)
"""

import sys
from pathlib import Path

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "servers").is_dir())


def setup():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from scripts import notebook_helpers
    notebook_helpers.start_notebook()
    return notebook_helpers
