#!/usr/bin/env python3
"""Redirects by PATH_INFO: /local (RFC 3875 §6.2.2), /client (§6.2.3), /loop (local, to itself)."""
import os

where = os.environ.get("PATH_INFO", "")
if where == "/local":
    print("Location: /cgi-bin/env.py/after-redirect?from=redirect")
elif where == "/loop":
    print("Location: /cgi-bin/redirect.py/loop")
else:
    print("Location: http://example.org/elsewhere")
print()
