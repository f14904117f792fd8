"""The unsubscribe endpoint in a real browser: Debian's headless Chromium (installed by script/bootstrap), driven
with ``--dump-dom`` and over the DevTools protocol on a pipe (``--remote-debugging-pipe``, JSON messages ending
in NUL), standard library only. The server's certificate is trusted by its key's SPKI hash."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailinfra_agent.suppression import canonical_address
from tests.agent.test_unsubscribe import Endpoint, Pki, stored
from tests.agent.test_unsubscribe import endpoint as endpoint
from tests.agent.test_unsubscribe import pki as pki

TIMEOUT = 60.0


def chromium() -> str:
    path = shutil.which('chromium')
    assert path is not None, 'chromium is missing: run script/bootstrap'
    return path


def spki_hash(certificate: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): what --ignore-certificate-errors-spki-list takes."""
    public = subprocess.run(
        ['openssl', 'x509', '-in', str(certificate), '-pubkey', '-noout'], check=True, capture_output=True
    ).stdout
    der = subprocess.run(
        ['openssl', 'pkey', '-pubin', '-outform', 'der'], input=public, check=True, capture_output=True
    )
    digest = subprocess.run(
        ['openssl', 'dgst', '-sha256', '-binary'], input=der.stdout, check=True, capture_output=True
    )
    return base64.b64encode(digest.stdout).decode('ascii')


def browser_arguments(pki: Pki, profile: Path) -> list[str]:
    return [
        chromium(),
        '--headless',
        '--no-sandbox',  # tests run as root in CI containers
        '--disable-gpu',
        '--no-first-run',
        f'--user-data-dir={profile}',
        f'--ignore-certificate-errors-spki-list={spki_hash(pki.certificate)}',
    ]


def dump_dom(pki: Pki, profile: Path, url: str) -> str:
    done = subprocess.run(
        [*browser_arguments(pki, profile), '--dump-dom', url],
        check=True,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return done.stdout


class DevTools:
    """Chromium with the DevTools protocol on fds 3 (its input) and 4 (its output)."""

    def __init__(self, arguments: list[str]) -> None:
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()

        def child() -> None:
            # move both ends above 4 first: dup2 onto 3 must not close the other end
            high_in = fcntl.fcntl(to_browser, fcntl.F_DUPFD, 10)
            high_out = fcntl.fcntl(from_browser, fcntl.F_DUPFD, 10)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self.process = subprocess.Popen(
            [*arguments, '--remote-debugging-pipe', 'about:blank'],
            pass_fds=(3, 4),
            preexec_fn=child,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b''
        self._id = 0
        self.events: list[dict[str, Any]] = []
        try:
            target = self.call('Target.createTarget', {'url': 'about:blank'})['targetId']
            self.session = self.call('Target.attachToTarget', {'targetId': target, 'flatten': True})['sessionId']
            for domain in ('Page', 'Runtime', 'Log', 'Network'):
                self.call(f'{domain}.enable', session=self.session)
        except BaseException:
            self.close()  # the fixture's own close never runs when this fails: no Chromium left behind
            raise

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {'id': self._id, 'method': method, 'params': params or {}}
        if session is not None:
            message['sessionId'] = session
        os.write(self._write, json.dumps(message).encode('utf-8') + b'\0')
        while True:
            answer = self._next(time.monotonic() + TIMEOUT)
            if answer.get('id') == self._id:
                assert 'error' not in answer, answer
                return dict(answer['result'])
            self.events.append(answer)

    def page(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.call(method, params, self.session)

    def evaluate(self, expression: str) -> Any:
        return self.page('Runtime.evaluate', {'expression': expression, 'returnByValue': True})['result'].get('value')

    def wait(self, method: str) -> dict[str, Any]:
        for index, event in enumerate(self.events):
            if event.get('method') == method:
                return self.events.pop(index)
        end = time.monotonic() + TIMEOUT
        while True:
            event = self._next(end)
            if event.get('method') == method:
                return event
            self.events.append(event)

    def load(self, url: str) -> None:
        self.page('Page.navigate', {'url': url})
        self.wait('Page.loadEventFired')

    def _next(self, end: float) -> dict[str, Any]:
        while b'\0' not in self._buffer:
            ready, _, _ = select.select([self._read], [], [], max(0.0, end - time.monotonic()))
            assert ready, 'chromium did not answer'
            chunk = os.read(self._read, 1 << 20)
            assert chunk, 'chromium closed the DevTools pipe'
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b'\0')
        return dict(json.loads(message))

    def close(self) -> None:
        try:
            os.write(self._write, json.dumps({'id': 0, 'method': 'Browser.close'}).encode('utf-8') + b'\0')
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self._write)
            os.close(self._read)


@pytest.fixture
def browser(endpoint: Endpoint, tmp_path: Path) -> Iterator[DevTools]:
    devtools = DevTools(browser_arguments(endpoint.pki, tmp_path / 'profile'))
    try:
        yield devtools
    finally:
        devtools.close()


def url(endpoint: Endpoint, token: str) -> str:
    return f'https://127.0.0.1:{endpoint.port}/u/{token}'


HOSTILE = '"<img src=x onerror=alert(1)><script>alert(2)</script>"@example.net'
"""A recipient (signed into the token by an application) that would run script if the page did not escape it."""


def test_chromium_renders_the_confirmation_page_and_get_never_unsubscribes(endpoint: Endpoint, tmp_path: Path) -> None:
    token = endpoint.token(HOSTILE)
    dom = dump_dom(endpoint.pki, tmp_path / 'profile', url(endpoint, token))
    assert f'<form method="post" action="/u/{token}">' in dom
    assert '<button type="submit">Unsubscribe</button>' in dom
    assert '&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;' in dom
    assert '<img' not in dom and '<script' not in dom
    assert stored(endpoint) == ([], [])
    assert endpoint.server.counts['confirm'] == 1


def test_a_prefetching_browser_does_not_unsubscribe(endpoint: Endpoint, tmp_path: Path) -> None:
    """A page that prefetches and prerenders the link, as link scanners and browsers do: only GETs arrive."""
    link = url(endpoint, endpoint.token('prefetched@example.net'))
    page = tmp_path / 'mail.html'
    rules = json.dumps(
        {'prefetch': [{'source': 'list', 'urls': [link]}], 'prerender': [{'source': 'list', 'urls': [link]}]}
    )
    page.write_text(
        f'<!DOCTYPE html><html><head><link rel="prefetch" href="{link}"><link rel="prerender" href="{link}">'
        f'<script type="speculationrules">{rules}</script></head>'
        f'<body><a href="{link}">Unsubscribe</a><iframe src="{link}"></iframe></body></html>',
        encoding='utf-8',
    )
    dump_dom(endpoint.pki, tmp_path / 'profile', page.as_uri())
    assert endpoint.server.counts['confirm'] >= 1  # the browser did fetch the link
    assert stored(endpoint) == ([], [])
    assert endpoint.server.counts['accepted'] == 0


def test_the_page_button_unsubscribes_from_chromium_under_the_csp(endpoint: Endpoint, browser: DevTools) -> None:
    token = endpoint.token(HOSTILE)
    browser.load(url(endpoint, token))
    assert browser.evaluate('document.title') == 'Unsubscribe'
    assert browser.evaluate('document.images.length + document.scripts.length') == 0
    assert HOSTILE in browser.evaluate('document.body.innerText')
    # the hashed style applies (a CSP that blocked it would leave the browser's default font)
    assert browser.evaluate('getComputedStyle(document.body).fontFamily') == 'sans-serif'
    assert stored(endpoint) == ([], [])
    browser.evaluate("document.querySelector('form button').click()")
    browser.wait('Page.loadEventFired')
    assert browser.evaluate('document.title') == 'Unsubscribed'
    found, _ = stored(endpoint)
    assert [(e.recipient, e.stream) for e in found] == [(canonical_address(HOSTILE), 'marketing')]
    posted = [
        event['params']['request']
        for event in browser.events
        if event.get('method') == 'Network.requestWillBeSent' and event['params']['request']['method'] == 'POST'
    ]
    assert [(request['postData'], request['headers']['Content-Type']) for request in posted] == [
        ('List-Unsubscribe=One-Click', 'application/x-www-form-urlencoded')
    ]
    # nothing the browser reported: no CSP violation, no script error
    reported = [
        event['params']
        for event in browser.events
        if event.get('method') in ('Log.entryAdded', 'Runtime.exceptionThrown', 'Runtime.consoleAPICalled')
    ]
    assert reported == []
    # a reload re-posts the form: the same success, nothing new
    browser.page('Page.reload')
    browser.wait('Page.loadEventFired')
    assert browser.evaluate('document.title') == 'Unsubscribed'
    assert stored(endpoint)[0] == found


def test_chromium_multipart_form_data_is_a_one_click_post(endpoint: Endpoint, browser: DevTools) -> None:
    """RFC 8058 §3.1 allows multipart/form-data: the body as Chromium writes it (WebKitFormBoundary) is accepted."""
    browser.load(url(endpoint, endpoint.token('multipart@example.net')))
    browser.evaluate("document.forms[0].enctype = 'multipart/form-data'; document.querySelector('button').click()")
    browser.wait('Page.loadEventFired')
    assert browser.evaluate('document.title') == 'Unsubscribed'
    posted = [
        event['params']['request']['headers']['Content-Type']
        for event in browser.events
        if event.get('method') == 'Network.requestWillBeSent' and event['params']['request']['method'] == 'POST'
    ]
    assert len(posted) == 1 and posted[0].startswith('multipart/form-data; boundary=----WebKitFormBoundary')
    assert [e.recipient for e in stored(endpoint)[0]] == ['multipart@example.net']
