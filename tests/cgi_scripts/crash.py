#!/usr/bin/env python3
"""Dies before writing a complete header block."""
import sys

sys.stdout.write("Content-Type: text/pl")
sys.stdout.flush()
sys.stderr.write("crash.py: about to fail\n")
raise SystemExit(3)
