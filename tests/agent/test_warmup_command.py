"""``mailinfra-agent warmup powermta-apply`` end to end: files, checks, atomic replace, reload only on change."""

from __future__ import annotations

import dataclasses
import json
import stat
from pathlib import Path

import pytest

from mailinfra_agent import bounded
from mailinfra_agent.cli import main
from mailinfra_agent.contract import Store, dump_contract
from mailinfra_agent.store import connect_sqlite, migrate
from tests.agent.test_shaping_powermta_warmup import BASELINE, START, contract, rates
from tests.agent.test_shaping_warmup import day_of, store

DAY_ONE = '2026-03-05T12:00:00+00:00'


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A host directory: contract, baseline, live file (the rendering, as before the first apply), reload log."""
    spec = dataclasses.replace(contract(), store=Store('sqlite', path=str(tmp_path / 'agent.db')))
    (tmp_path / 'agent.json').write_text(json.dumps(dump_contract(spec)), encoding='utf-8')
    (tmp_path / 'config.rendered').write_text(BASELINE, encoding='utf-8')
    (tmp_path / 'config').write_text(BASELINE, encoding='utf-8')
    (tmp_path / 'config').chmod(0o640)
    reload = tmp_path / 'reload'
    reload.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/reloads\nexit "${{RELOAD_EXIT:-0}}"\n', encoding='utf-8')
    reload.chmod(0o755)
    return tmp_path


def _arguments(host: Path, now: str = DAY_ONE) -> list[str]:
    files = ['--baseline', str(host / 'config.rendered'), '--config', str(host / 'config')]
    return ['--contract', str(host / 'agent.json'), *files, '--now', now]


def apply(host: Path, *extra: str, now: str = DAY_ONE) -> int:
    reload = ['--reload-command', f'{host / "reload"} reload']
    return main(['warmup', 'powermta-apply', *_arguments(host, now), *reload, *extra])


def reloads(host: Path) -> list[str]:
    path = host / 'reloads'
    return path.read_text(encoding='utf-8').splitlines() if path.exists() else []


def test_writes_the_caps_reloads_once_and_then_changes_nothing(host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert apply(host) == 0
    out = capsys.readouterr().out
    assert out.startswith('changed: ') and 'PowerMTA reloaded' in out
    live = host / 'config'
    assert rates(live.read_text(encoding='utf-8'))['gmail.queue'] == ('17/d', '17/d')
    assert stat.S_IMODE(live.stat().st_mode) == 0o640
    assert reloads(host) == ['reload']
    before = live.stat()
    assert apply(host) == 0
    assert capsys.readouterr().out.startswith('unchanged: ')
    after = live.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert reloads(host) == ['reload']
    assert sorted(path.name for path in host.iterdir() if path.name.startswith('.')) == []


def test_next_day_moves_to_the_next_step(host: Path) -> None:
    assert apply(host) == 0
    assert apply(host, now='2026-03-06T00:00:30+00:00') == 0
    assert rates((host / 'config').read_text(encoding='utf-8'))['gmail.queue'][0] == '35/d'
    assert reloads(host) == ['reload', 'reload']


def test_first_install_takes_the_baselines_owner_and_mode(host: Path) -> None:
    (host / 'config').unlink()
    (host / 'config.rendered').chmod(0o640)
    assert apply(host, '--no-reload') == 0
    assert stat.S_IMODE((host / 'config').stat().st_mode) == 0o640
    assert reloads(host) == []


def test_a_configuration_the_checker_refuses_keeps_the_old_file(host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (host / 'config.rendered').write_text(BASELINE + 'max-smtp-out-per-ip 5\n', encoding='utf-8')
    assert apply(host) == 1
    assert 'max-smtp-out-per-ip' in capsys.readouterr().err
    assert (host / 'config').read_text(encoding='utf-8') == BASELINE
    assert reloads(host) == []


def test_a_failing_validate_command_keeps_the_old_file(host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check = host / 'check'
    check.write_text('#!/bin/sh\necho "refused $1"\nexit 1\n', encoding='utf-8')
    check.chmod(0o755)
    assert apply(host, '--validate', f'{check} %s') == 1
    assert 'refused ' in capsys.readouterr().err
    assert (host / 'config').read_text(encoding='utf-8') == BASELINE
    ok = host / 'ok'
    ok.write_text('#!/bin/sh\ntest -s "$1"\n', encoding='utf-8')
    ok.chmod(0o755)
    assert apply(host, '--validate', f'{ok} %s') == 0


def test_a_failed_reload_puts_the_old_file_back_so_the_next_run_tries_again(
    host: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv('RELOAD_EXIT', '1')
    assert apply(host) == 1
    assert 'the previous' in capsys.readouterr().err
    assert (host / 'config').read_text(encoding='utf-8') == BASELINE
    monkeypatch.setenv('RELOAD_EXIT', '0')
    assert apply(host) == 0
    assert reloads(host) == ['reload', 'reload']


def test_a_hung_or_missing_command_is_a_failure_that_keeps_the_old_file(
    host: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bounded, 'TIMEOUT', 0.5)
    hung = host / 'hung'
    hung.write_text('#!/bin/sh\nsleep 60\n', encoding='utf-8')
    hung.chmod(0o755)
    for command in (f'{hung} reload', f'{host / "absent"} reload'):
        assert main(['warmup', 'powermta-apply', *_arguments(host), '--reload-command', command]) == 1
        assert 'the previous' in capsys.readouterr().err
        assert (host / 'config').read_text(encoding='utf-8') == BASELINE
    for command in (f'{hung} %s', f'{host / "absent"} %s'):
        assert apply(host, '--validate', command) == 1
        assert 'stays as it is' in capsys.readouterr().err
        assert (host / 'config').read_text(encoding='utf-8') == BASELINE
    assert reloads(host) == []


def test_a_held_day_in_the_store_holds_the_step(host: Path) -> None:
    # day 1 with 100 deliveries and 10 hard bounces (9 %, above 2 %): day 2 stays on step 1 (17/d for gmail)
    db = connect_sqlite(host / 'agent.db')
    migrate(db)
    store(db, day_of(str(START), 100, hard=10, sending_ip='203.0.113.10', stream='transactional'))
    db.close()
    assert apply(host, now='2026-03-06T12:00:00+00:00') == 0
    text = (host / 'config').read_text(encoding='utf-8')
    assert rates(text)['gmail.queue'][0] == '17/d'
    assert 'day 2, step 1 (1 day(s) not advanced' in text


@pytest.mark.parametrize(
    ('change', 'code', 'message'),
    [
        (lambda host: (host / 'config.rendered').unlink(), 2, 'cannot read'),
        (lambda host: (host / 'agent.json').write_text('{}', encoding='utf-8'), 2, ''),
    ],
)
def test_what_cannot_be_used_exits_2_and_writes_nothing(
    host: Path, capsys: pytest.CaptureFixture[str], change: object, code: int, message: str
) -> None:
    change(host)  # type: ignore[operator]
    assert apply(host) == code
    assert message in capsys.readouterr().err
    assert (host / 'config').read_text(encoding='utf-8') == BASELINE


def test_now_without_offset_is_a_usage_error(host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert apply(host, now='2026-03-05T12:00:00') == 64
    assert 'no UTC offset' in capsys.readouterr().err
