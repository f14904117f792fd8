"""A loopback HTTP server that plays PowerMTA's management API from the SYNTHETIC files in data/powermta/."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DATA = Path(__file__).parent / 'data' / 'powermta'


@dataclass
class Route:
    """What one path answers: a data file with a status, or a delay first (to trip the client's timeout)."""

    file: str | None
    status: int = 200
    delay: float = 0.0


@dataclass
class FakePowerMta:
    routes: dict[str, Route] = field(
        default_factory=lambda: {'/status': Route('status.xml'), '/queues': Route('queues.xml')}
    )
    requests: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.port}'


@contextmanager
def fake_powermta() -> Iterator[FakePowerMta]:
    fake = FakePowerMta()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests.append(self.path)
            path, _, query = self.path.partition('?')
            route = fake.routes.get(path)
            if route is None or query != 'format=xml':
                self.send_error(404)
                return
            if route.delay:
                time.sleep(route.delay)
            body = (DATA / route.file).read_bytes() if route.file else b'Internal Server Error'
            try:
                self.send_response(route.status)
                self.send_header('Content-Type', 'text/xml')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    server.daemon_threads = True
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
