#!/usr/bin/env python3
"""Answers with its whole environment as JSON, and any request body's length."""
import json
import os
import sys

length = int(os.environ.get("CONTENT_LENGTH") or 0)
body = sys.stdin.buffer.read(length) if length else b""
environment = {key.decode("latin-1"): value.decode("latin-1") for key, value in os.environb.items()}
out = json.dumps({"environ": environment, "body_length": len(body), "pid": os.getpid()}).encode()
sys.stdout.buffer.write(b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(out) + out)
