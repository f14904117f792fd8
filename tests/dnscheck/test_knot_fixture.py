"""The Knot fixture itself: without Knot the run fails (it never skips), and reloads are confirmed."""

from __future__ import annotations

import pytest

from ..dnsserver import knot as knot_module
from ..dnsserver.knot import KnotServer, zone_serial
from .conftest import Served, start_knot


def test_without_knot_the_fixture_fails_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(knot_module.shutil, 'which', lambda *args, **kwargs: None)
    with pytest.raises(pytest.fail.Exception) as failure:
        start_knot({'example.com': ''})
    assert str(failure.value) == (
        'Knot DNS (knotd, knotc) is not installed: install it with `apt-get install knot knot-dnsutils` '
        '(script/bootstrap does). The DNS check tests need a real authoritative server.'
    )


def test_a_reload_serves_the_new_serial(served: Served) -> None:
    zone = 'dailybrief.example'
    before = served.knot.soa_serial(zone)
    assert before == zone_serial(served.knot.zones[zone])
    served.change({(f'extra.{zone}', 'TXT'): ('x',)})
    after = served.knot.soa_serial(zone)
    assert after == zone_serial(served.knot.zones[zone]) != before


def test_the_server_is_ours(served: Served) -> None:
    server: KnotServer = served.knot
    assert server.address == '127.0.0.1' and 20000 <= server.port <= 60999
    assert server.process is not None and server.process.poll() is None
    config = server.config_path.read_text()
    assert f'listen: 127.0.0.1@{server.port}' in config
    assert str(server.root) in config and '"/var/lib/knot"' not in config and '"/run/knot"' not in config
    assert 'user:' not in config  # no privilege change, no system user
