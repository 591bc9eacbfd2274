#!/usr/bin/env python3
"""Starts a grandchild (in its own process group, which is ours), names it on stderr, never answers."""
import subprocess
import sys
import time

grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
sys.stderr.write(f"hang.py: grandchild {grandchild.pid}\n")
sys.stderr.flush()
time.sleep(120)
