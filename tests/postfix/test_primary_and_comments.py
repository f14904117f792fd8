"""Mail of the host itself stays on the host, and the Postfix files' comments promise only what Postfix does."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mailinfra_iac import load_spec

from ..conftest import AS_OF
from .role_files import EXAMPLES, context_of, render_role_files


@pytest.fixture(scope='module', params=EXAMPLES, ids=lambda path: path.stem)
def files(request: pytest.FixtureRequest) -> dict[str, str]:
    path: Path = request.param
    spec = load_spec(path, as_of=AS_OF)
    return render_role_files(context_of(spec))


def main_cf(text: str) -> dict[str, str]:
    return {
        name: value
        for line in text.splitlines()
        if line and not line.startswith('#') and ' = ' in line
        for name, _, value in [line.partition(' = ')]
    }


def primaries(files: dict[str, str]) -> dict[str, dict[str, str]]:
    return {path: main_cf(text) for path, text in files.items() if path.endswith('/etc/postfix/main.cf')}


# --- Mail of the host itself -----------------------------------------------------------------------------


def test_the_primary_instance_sends_every_other_domain_to_the_error_transport(files: dict[str, str]) -> None:
    assert primaries(files)
    for path, config in primaries(files).items():
        # Mail to other domains takes the default transport, which the sender-dependent one overrides for
        # every sender (static map): error(8). Local domains and the return-path domains are not affected.
        assert config.get('default_transport', 'smtp') == 'smtp', path
        assert config['sender_dependent_default_transport_maps'].startswith('static:{error:5.7.1 '), path
        assert 'transport_maps' not in config and 'relayhost' not in config, path
        # Nothing is signed for the host's own mail: it does not leave.
        assert 'smtpd_milters' not in config and 'non_smtpd_milters' not in config, path


@pytest.mark.skipif(not shutil.which('postmap'), reason='needs Postfix (script/bootstrap)')
@pytest.mark.parametrize('sender', ['root@mx1.example', 'app@client.example', '<>'])
def test_postfix_resolves_every_sender_to_the_error_transport(
    files: dict[str, str], sender: str, tmp_path: Path
) -> None:
    """Real Postfix reads the map: any sender, the null sender's lookup key ``<>`` included, gets error."""
    (tmp_path / 'main.cf').write_text('')
    for path, config in primaries(files).items():
        table = config['sender_dependent_default_transport_maps']
        found = subprocess.run(
            ['postmap', '-c', str(tmp_path), '-q', sender, table], capture_output=True, text=True, check=False
        )
        assert found.returncode == 0, (path, found.stderr)
        assert found.stdout.strip().startswith('error:5.7.1 this host sends no mail of its own'), path


def test_stream_instances_still_sign_and_send(files: dict[str, str]) -> None:
    streams = {path: main_cf(text) for path, text in files.items() if re.search(r'/etc/postfix-[^/]+/main\.cf$', path)}
    assert streams
    for path, config in streams.items():
        assert (
            'sender_dependent_default_transport_maps' not in config
            or 'error' not in (config['sender_dependent_default_transport_maps'])
        ), path
        assert config['smtpd_milters'].startswith('unix:'), path


# --- Comments that are true ---------------------------------------------------------------------------------

PROMISES = re.compile(r'back-?off|suppress|longer|slow(er)? down', re.I)
"""Words for behaviour a Postfix instance does not have per reply rule: its own back-off, suppression."""


def comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith('#')]


def test_status_filter_comments_promise_nothing_postfix_does_not_do(files: dict[str, str]) -> None:
    filters = {path: text for path, text in files.items() if path.endswith('/delivery_status_filter')}
    assert filters
    for path, text in filters.items():
        for line in comments(text):
            assert not PROMISES.search(line), f'{path}: {line}'


def test_status_filter_states_the_instances_real_retry_schedule(files: dict[str, str]) -> None:
    for path, text in files.items():
        if not path.endswith('/delivery_status_filter'):
            continue
        config = main_cf(files[path.replace('/delivery_status_filter', '/main.cf')])
        header = ' '.join(line.lstrip('# ') for line in comments(text))
        expected = (
            f'at least {config["minimal_backoff_time"]} and at most {config["maximal_backoff_time"]}, '
            f'and the message is returned to the sender after {config["maximal_queue_lifetime"]}.'
        )
        assert expected in header, (path, header)


def test_no_role_template_comment_promises_a_back_off(files: dict[str, str]) -> None:
    """Back-off and suppression are not Postfix or OpenDKIM features: no generated comment may claim them."""
    for path, text in files.items():
        for line in comments(text):
            assert not re.search(r'back-?off|suppress', line, re.I), f'{path}: {line}'
