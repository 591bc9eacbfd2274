#!/usr/bin/env python3
"""Writes a header block that is not one: a line without a colon."""
import sys

sys.stdout.write("this is not a header line\n\nbody\n")
