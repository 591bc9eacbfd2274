#!/usr/bin/env python3
"""Reads CONTENT_LENGTH bytes of stdin in pieces; answers their count and SHA-256."""
import hashlib
import os
import sys

remaining = int(os.environ.get("CONTENT_LENGTH") or 0)
digest = hashlib.sha256()
count = 0
while remaining:
    piece = sys.stdin.buffer.read(min(remaining, 65536))
    if not piece:
        break
    digest.update(piece)
    count += len(piece)
    remaining -= len(piece)
sys.stdout.write(f"Content-Type: text/plain\n\n{count} {digest.hexdigest()}\n")
