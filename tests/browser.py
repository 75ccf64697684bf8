"""A real browser for the HTML pages: headless Chromium over a loopback server that logs requests.

The fixtures ``chromium`` and ``serve`` live in conftest.py; :func:`dump_dom` opens a page and
returns the DOM Chromium built, and :func:`assert_self_contained` checks a page points nowhere.
"""

from __future__ import annotations

import re
import subprocess
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any


class LoggingHandler(SimpleHTTPRequestHandler):
    """Serves files and records every path asked for in ``requests``."""

    requests: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        type(self).requests.append(self.path)


def dump_dom(chromium: str, url: str, profile: Path) -> str:
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def assert_self_contained(text: str) -> None:
    """Nothing in the page points outside it: no script, no import, only inline data links."""
    for marker in ("<script", "@import", "url(", "<iframe", "<object", "<embed"):
        assert marker not in text, marker
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", text)
    assert all(link.startswith(("data:", "#")) for link in links), links
