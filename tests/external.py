"""Debian programs the tests drive for real: chromium, redis-server, nginx.

A test that needs one calls `require_program`. Where the program is missing it skips
with one line that says how to install it, except in CI (CI=true), where a missing
program fails the test: .ci/run installs all three, so a skip there would hide a
broken feature.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from scripts.launch import free_port

# program -> Debian package that provides it
PACKAGES = {"chromium": "chromium", "redis-server": "redis-server", "nginx": "nginx"}

# Chromium as root in a sandbox with no network: the flags keep it from trying to
# reach Google's hosts at start-up and from refusing to run without a user namespace.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_program(program: str) -> str:
    """The program's path; otherwise skip (locally) or fail (CI) with the install command."""
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path:
        return path
    reason = (f"{program} is not installed: "
              f"sudo apt-get update && sudo apt-get install -y {PACKAGES.get(program, program)}")
    if in_ci():
        pytest.fail(reason + " (CI must have it: .ci/run installs it)", pytrace=False)
    pytest.skip(reason)


@contextmanager
def chromium_browser():
    """Headless Debian chromium driven by Playwright; closed on exit, even on failure."""
    executable = require_program("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def redis_server(tmp_path: Path):
    """A private redis-server on a free loopback port, no persistence; yields its URL."""
    executable = require_program("redis-server")
    port = free_port()
    process = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {process.stdout.read().decode()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer PING within 10 s")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
