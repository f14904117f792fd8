"""Open an HTML file in Debian's Chromium, headless: the DOM after scripts ran, and the console messages."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

FLAGS = (
    '--headless=new',
    '--no-sandbox',  # we run as root
    '--disable-gpu',
    '--disable-background-networking',
    '--enable-logging=stderr',
    '--v=0',
)
# Chromium logs every console message on stderr: [pid:tid:time:INFO:CONSOLE:line] "text", source: url (line)
_CONSOLE = re.compile(r':CONSOLE(?::\d+|\(\d+\))\] (.*)$', re.MULTILINE)


def chromium() -> str:
    path = shutil.which('chromium')
    if path is None:
        pytest.fail('chromium is not installed: run script/bootstrap (apt-get install chromium)')
    return path


@dataclass(frozen=True)
class Page:
    dom: str
    console: list[str]
    """Console messages of any level (the report logs none)."""
    attributes: dict[str, dict[str, str]]
    """id or tag name (html, body) -> attributes, of the elements of interest after scripts ran."""


class _Attributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, dict[str, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or '' for name, value in attrs}
        if tag in ('html', 'body'):
            self.found[tag] = values
        elif tag == 'figure' and 'id' in values:
            self.found[values['id']] = values


def open_page(path: Path, width: int = 1280, height: int = 1000) -> Page:
    result = subprocess.run(
        [chromium(), *FLAGS, f'--window-size={width},{height}', '--dump-dom', path.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    parser = _Attributes()
    parser.feed(result.stdout)
    return Page(result.stdout, _CONSOLE.findall(result.stderr), parser.found)


def screenshot(path: Path, png: Path, width: int = 1280, height: int = 1000) -> None:
    result = subprocess.run(
        [chromium(), *FLAGS, f'--window-size={width},{height}', f'--screenshot={png}', path.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and png.is_file(), result.stderr[-2000:]
