#!/usr/bin/env python3
"""The classic first CGI script: no framework, just print.

A CGI script answers on standard output with header lines, a blank line, and
the page (RFC 3875 §6). This one lists the environment the server gave it, so
a student can see the request arrive as plain environment variables.

    python -m servers.cgi_server sample_site/cgi-bin/hello.py --bind 127.0.0.1:8000
"""

import html
import os

print("Content-Type: text/html; charset=utf-8")
print()  # the blank line: the header block ends, the body begins
print("<!doctype html>")
print("<title>Hello from CGI</title>")
print("<h1>Hello from CGI</h1>")
print(f"<p>This page was written by process {os.getpid()}, started for this request alone.</p>")
print("<table>")
for name, value in sorted(os.environ.items()):
    print(f"<tr><th align=left>{html.escape(name)}</th><td><code>{html.escape(value)}</code></td></tr>")
print("</table>")
