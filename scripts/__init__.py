"""The harness: launcher, load generator, benchmark, plots, notebook and docs helpers.

Like the servers it starts, it needs POSIX processes and signals: on native Windows
every `python -m scripts.X` stops here with the one line servers/__init__.py prints.
"""

from servers import refuse_native_windows

refuse_native_windows()
