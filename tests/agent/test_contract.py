"""The contract: the controller's rendered agent.json of every example loads on the host, strictly."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailinfra_agent.cli import main
from mailinfra_agent.contract import (
    CONTRACT_VERSION,
    DEFAULT_ISP,
    Contract,
    ContractError,
    SecretFileError,
    Store,
    dump_contract,
    dump_contract_json,
    load_contract,
    read_secret_file,
)
from tests.conftest import ROOT
from tests.golden_files import EXAMPLES, rendered

CONTRACT_FILE = re.compile(r'^mta/(?P<host>[^/]+)/etc/mailinfra/agent\.json$')
KEY_MATERIAL = re.compile(r'BEGIN [A-Z ]*PRIVATE KEY|PRIVATE KEY-----|"p=[A-Za-z0-9+/]{40,}|password\s*[=:]', re.I)


@cache
def contracts() -> dict[str, bytes]:
    """Every rendered contract, by "<example>/<host>"."""
    found = {}
    for example in EXAMPLES:
        for path, content in rendered(example).items():
            if match := CONTRACT_FILE.match(path):
                found[f'{example.stem}/{match["host"]}'] = content
    return found


def with_streams() -> str:
    """The name of the first rendered contract of a host with streams and IPs."""
    return next(name for name in sorted(contracts()) if json.loads(contracts()[name])['ips'])


def minimal() -> dict[str, Any]:
    """A valid contract with streams, as JSON data."""
    return json.loads(contracts()[with_streams()])


def problems_of(data: Any) -> list[str]:
    with pytest.raises(ContractError) as raised:
        load_contract(data)
    return raised.value.problems


def test_every_example_host_gets_a_contract() -> None:
    for example in EXAMPLES:
        hosts = yaml.safe_load(example.read_text(encoding='utf-8'))['hosts']
        assert {name for name in contracts() if name.startswith(f'{example.stem}/')} == {
            f'{example.stem}/{host}' for host in hosts
        }


@pytest.mark.parametrize('name', sorted(contracts()))
def test_rendered_contract_round_trips(name: str) -> None:
    text = contracts()[name].decode()
    contract = load_contract(text)
    assert isinstance(contract, Contract)
    assert contract.version == CONTRACT_VERSION
    assert contract.host.name == name.split('/')[1]
    # Rendered exactly as the agent writes it (Ansible's to_nice_json), plus the template's newline.
    assert dump_contract_json(contract) + '\n' == text
    assert load_contract(dump_contract(contract)) == contract


@pytest.mark.parametrize('name', sorted(contracts()))
def test_rendered_contract_holds_no_secret(name: str) -> None:
    text = contracts()[name].decode()
    assert not KEY_MATERIAL.search(text), name
    store = load_contract(text).store
    if store.backend == 'sqlite':
        assert store.path == '/var/lib/mailinfra/agent.db'
    else:
        assert store.password_file == '/etc/mailinfra/secrets/store-password'


def test_a_secret_in_a_contract_is_detected_by_the_scan() -> None:
    # The scan above can fail: a DKIM private key or a password in the text matches.
    assert KEY_MATERIAL.search('{"key": "-----BEGIN PRIVATE KEY-----"}')
    assert KEY_MATERIAL.search('{"dsn": "host=db password=hunter2"}')


def test_every_stream_has_limits_for_every_provider_once() -> None:
    contract = load_contract(contracts()[with_streams()].decode())
    known = {isp.name for isp in contract.isps}
    assert DEFAULT_ISP in known
    for stream in contract.streams:
        names = [isp.isp for isp in stream.isps]
        assert DEFAULT_ISP in names and len(names) == len(set(names)) and set(names) <= known
    assert {ip.stream for ip in contract.ips} <= {stream.name for stream in contract.streams}


def test_newer_version_is_refused_with_a_clear_message() -> None:
    data = minimal()
    data['version'] = CONTRACT_VERSION + 2
    data['unknown_section'] = {}  # not reported: the version decides first
    assert problems_of(data) == [
        f'contract version {CONTRACT_VERSION + 2} is newer than this agent understands '
        f'(1, 2, 3, 4, 5, {CONTRACT_VERSION}); '
        'upgrade mailinfra-agent to the version of the controller that rendered it'
    ]


def test_version_1_still_loads_its_missing_keys_take_their_defaults() -> None:
    data = minimal()
    data['version'] = 1
    for key in ('exporter', 'dns_expectations', 'bounce_rules'):
        data.pop(key, None)
    contract = load_contract(data)
    assert contract.version == 1 and contract.exporter.port == 9745 and contract.dns_expectations == ()


def test_version_2_still_loads_without_the_feedback_keys() -> None:
    data = minimal()
    data['version'] = 2
    for key in ('logs', 'feedback_maildirs', 'retention', 'unsubscribe', 'webhook'):
        data.pop(key, None)
    contract = load_contract(data)
    assert contract.version == 2 and contract.logs == () and contract.unsubscribe.enabled is False


def test_older_version_is_refused() -> None:
    data = minimal()
    data['version'] = 0
    assert 'is older than this agent understands' in problems_of(data)[0]


def test_version_of_the_wrong_type_is_a_problem() -> None:
    data = minimal()
    data['version'] = '1'
    assert '$.version: expected an integer, got a string ("1")' in problems_of(data)


def test_unknown_keys_are_refused() -> None:
    data = minimal()
    data['streams'][0]['injection']['tls'] = True
    data['extra'] = 1
    problems = problems_of(data)
    assert any(problem.startswith('$.extra: unknown key') for problem in problems)
    assert any(problem.startswith('$.streams[0].injection.tls: unknown key') for problem in problems)


def test_wrong_types_are_all_reported_at_once() -> None:
    data = minimal()
    data['streams'][0]['injection']['port'] = '25'
    data['ips'][0]['ptr'] = 7
    data['streams'][0]['isps'][0]['limits']['require_tls'] = 1
    data['streams'][0]['isps'][1]['limits']['max_connections'] = True
    data['thresholds']['queue']['age_warning'] = 1.5
    data['blocklists']['zones'][0]['decoder'] = 'regex'
    del data['host']['fqdn']
    assert sorted(problems_of(data)) == sorted(
        [
            '$.streams[0].injection.port: expected an integer, got a string ("25")',
            '$.ips[0].ptr: expected a string, got an integer (7)',
            '$.streams[0].isps[0].limits.require_tls: expected a boolean, got an integer (1)',
            '$.streams[0].isps[1].limits.max_connections: expected an integer, got a boolean',
            '$.thresholds.queue.age_warning: expected an integer, got a number (1.5)',
            '$.blocklists.zones[0].decoder: expected one of "codes", "bitmask", "score", got a string ("regex")',
            '$.host.fqdn: missing (expected a string)',
        ]
    )


def test_references_between_sections_are_checked() -> None:
    data = minimal()
    data['streams'][0]['isps'][1]['isp'] = 'altavista'
    data['isps'].append(copy.deepcopy(data['isps'][0]))
    data['ips'][0]['stream'] = 'ghost'
    data['streams'].append(copy.deepcopy(data['streams'][0]))
    problems = problems_of(data)
    assert '$.streams[0].isps[1].isp: unknown ISP "altavista"' in problems
    assert any(p.startswith(f'$.isps[{len(data["isps"]) - 1}]: ') and p.endswith('appears twice') for p in problems)
    assert '$.ips[0].stream: unknown stream "ghost"' in problems
    assert any(p.startswith(f'$.streams[{len(data["streams"]) - 1}]: ') for p in problems)


def test_store_rules() -> None:
    data = minimal()
    data['store'] = {'backend': 'postgresql', 'dsn': 'host=db user=agent password=x', 'password_file': 'pw'}
    problems = problems_of(data)
    assert '$.store.dsn: holds a password; put it in the file named by "password_file"' in problems
    assert '$.store.password_file: (the value is not shown) is not an absolute path' in problems
    for dsn in ('postgresql://agent:secret@db/mailinfra', 'postgresql://agent@db/mailinfra?password=secret'):
        data['store'] = {'backend': 'postgresql', 'dsn': dsn}
        assert '$.store.dsn: holds a password; put it in the file named by "password_file"' in problems_of(data)
    data['store'] = {'backend': 'postgresql', 'dsn': 'postgresql://agent@db/mailinfra?passfile=/x'}
    assert load_contract(data).store.dsn == 'postgresql://agent@db/mailinfra?passfile=/x'
    data['store'] = {'backend': 'sqlite', 'path': '/var/lib/x.db', 'dsn': 'host=db'}
    assert problems_of(data) == ['$.store: the sqlite backend takes "path" only']
    data['store'] = {
        'backend': 'postgresql',
        'dsn': 'host=db dbname=mailinfra user=agent',
        'password_file': '/etc/mailinfra/secrets/store-password',
    }
    assert load_contract(data).store == Store(
        'postgresql', dsn='host=db dbname=mailinfra user=agent', password_file='/etc/mailinfra/secrets/store-password'
    )


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ContractError) as missing:
        load_contract(tmp_path / 'absent.json')
    assert missing.value.unreadable
    assert missing.value.problems == ['cannot read the contract: No such file or directory']
    broken = tmp_path / 'broken.json'
    broken.write_text('{"version": 1,', encoding='utf-8')
    with pytest.raises(ContractError) as invalid:
        load_contract(broken)
    assert not invalid.value.unreadable
    assert invalid.value.problems[0].startswith('not valid JSON:')
    broken.write_text('[1, 2]', encoding='utf-8')
    with pytest.raises(ContractError, match=r'\$: expected a JSON object, got an array'):
        load_contract(broken)


@pytest.mark.parametrize(
    ('text', 'problem'),
    [
        ('{"version": ' + '9' * 5000 + '}', 'not usable JSON: Exceeds the limit (4300 digits)'),  # was ValueError
        ('{"a": ' + '[' * 100_000 + ']' * 100_000 + '}', 'not usable JSON: arrays or objects nested too deeply'),
        ('{"version": 4, "host": {"name": "a", "name": "b"}}', 'the key "name" appears twice in one object'),
    ],
)
def test_json_the_parser_cannot_use_is_one_clear_problem(tmp_path: Path, text: str, problem: str) -> None:
    """A huge integer raised ValueError and deep nesting RecursionError (tracebacks); a duplicate key was dropped."""
    path = tmp_path / 'agent.json'
    path.write_text(text, encoding='utf-8')
    with pytest.raises(ContractError) as raised:
        load_contract(path)
    (found,) = raised.value.problems
    assert problem in found


@pytest.mark.parametrize('value', ['NaN', 'Infinity', '-Infinity', '1e999', '1.5'])
def test_a_number_that_is_not_an_integer_is_a_problem_at_its_field(value: str) -> None:
    data = minimal()
    text = json.dumps(data).replace(f'"version": {data["version"]}', f'"version": {value}', 1)
    assert any(p.startswith('$.version: expected an integer, got a number') for p in problems_of(json.loads(text)))


@pytest.mark.parametrize('port', [0, -5, 65536, 10**30])
def test_an_unsubscribe_port_out_of_range_is_a_problem(port: int) -> None:
    """``unsubscribe serve`` died in bind() with OverflowError (a traceback)."""
    data = minimal()
    data['unsubscribe']['port'] = port
    assert problems_of(data) == [f'$.unsubscribe.port: {port} is not a TCP port']


@pytest.mark.parametrize('port', [0, 65536, 99999])
def test_an_exporter_port_out_of_range_is_a_problem(port: int) -> None:
    """``exporter`` refused it with its own exit 64; every command reports it like the other ports now."""
    data = minimal()
    data.setdefault('exporter', {})['port'] = port
    assert problems_of(data) == [f'$.exporter.port: {port} is not a TCP port']


def test_a_bad_contract_is_one_message_and_exit_2_for_every_command(tmp_path: Path) -> None:
    path = tmp_path / 'agent.json'
    path.write_text('{"version": 4, "version": 4}', encoding='utf-8')
    for command in (['store', 'status'], ['suppression', 'list'], ['ingest', 'run', '--once'], ['shaping', 'status']):
        result = subprocess.run(
            [sys.executable, '-m', 'mailinfra_agent', command[0], '--contract', str(path), *command[1:]],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr == f'{path}: not a usable JSON object: the key "version" appears twice in one object\n'
    piped = subprocess.run(
        [sys.executable, '-m', 'mailinfra_agent', 'ingest', '--contract', str(path), 'message'],
        input='Subject: x\n\nx\n',
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert piped.returncode == 75 and 'Traceback' not in piped.stderr


def test_dump_is_deterministic() -> None:
    text = contracts()[with_streams()].decode()
    contract = load_contract(text)
    assert dump_contract_json(contract) == dump_contract_json(load_contract(dump_contract_json(contract)))
    keys = list(dump_contract(contract))
    assert keys == sorted(keys)


def test_secret_files_must_be_private(tmp_path: Path) -> None:
    secret = tmp_path / 'store-password'
    secret.write_text('s3cret\n', encoding='utf-8')
    os.chmod(secret, 0o600)
    assert read_secret_file(secret) == 's3cret'
    os.chmod(secret, 0o640)
    with pytest.raises(SecretFileError, match='mode 0640 lets group or others read a secret'):
        read_secret_file(secret)
    empty = tmp_path / 'empty'
    empty.write_text('\n', encoding='utf-8')
    os.chmod(empty, 0o600)
    with pytest.raises(SecretFileError, match='is empty'):
        read_secret_file(empty)
    with pytest.raises(SecretFileError, match='cannot read'):
        read_secret_file(tmp_path / 'absent')
    with pytest.raises(SecretFileError, match='not a regular file'):
        read_secret_file(tmp_path)  # a directory
    fifo = tmp_path / 'fifo'
    os.mkfifo(fifo, 0o600)
    with pytest.raises(SecretFileError, match='not a regular file'):
        read_secret_file(fifo)  # blocked in open() until something wrote to it
    large = tmp_path / 'large'
    large.write_bytes(b'x' * (64 * 1024 + 1))
    os.chmod(large, 0o600)
    with pytest.raises(SecretFileError, match='larger than 65536 bytes'):
        read_secret_file(large)


def test_contract_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / 'agent.json'
    good.write_bytes(contracts()[with_streams()])
    assert main(['contract', 'check', str(good)]) == 0
    out = capsys.readouterr().out
    assert f'{good}: valid' in out and f'contract version {CONTRACT_VERSION} for pmta1 ' in out
    assert 'store: postgresql host=' in out
    data = minimal()
    data['ips'][0]['ptr'] = 7
    data['host']['name'] = None
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(data), encoding='utf-8')
    assert main(['contract', 'check', str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert f'{bad}: $.ips[0].ptr: expected a string, got an integer (7)' in err
    assert f'{bad}: $.host.name: expected a string, got null' in err
    assert main(['contract', 'check', str(tmp_path / 'absent.json')]) == 2


def test_every_top_level_key_is_documented() -> None:
    doc = (ROOT / 'docs' / 'agent-contract.md').read_text(encoding='utf-8')
    rows = set(re.findall(r'^\| `([a-z_]+)` \|', doc, re.MULTILINE))
    assert rows == {field.name for field in dataclasses.fields(Contract)}
    assert f'## Schema (version {CONTRACT_VERSION})' in doc


@pytest.mark.parametrize('name', sorted(contracts()))
def test_dump_with_a_memo_is_the_same_data_and_shares_sections(name: str) -> None:
    contract = load_contract(contracts()[name].decode())
    memo: dict[int, tuple[Any, Any]] = {}
    first = dump_contract(contract, memo)
    assert first == dump_contract(contract)
    again = dump_contract(dataclasses.replace(contract, host=dataclasses.replace(contract.host, name='other')), memo)
    assert again['host']['name'] == 'other' and first['host']['name'] == contract.host.name
    assert all(again[key] is first[key] for key in ('bounce_rules', 'streams') if first[key] != [])
    assert again['host'] is not first['host']


def test_dump_with_a_memo_gives_each_empty_field_its_own_list() -> None:
    """The empty tuple is one object: memoised, every empty field of every host would be one list."""
    memo: dict[int, tuple[Any, Any]] = {}
    dumped = [dump_contract(load_contract(content.decode()), memo) for content in contracts().values()]
    empty = [plain[key] for plain in dumped for key in plain if plain[key] == []]
    assert len(empty) > 1, 'no two empty list fields to compare'
    assert len({id(value) for value in empty}) == len(empty)


def test_a_secret_given_for_its_file_is_not_shown() -> None:
    # the contract names secret files; a value that is no absolute path may be the secret itself
    data = minimal()
    data['blocklists']['dqs_key_file'] = 'Dqs-S3cret-0123456789abcdef'
    data['store'] = {'backend': 'sqlite', 'path': 'relative.db'}
    problems = problems_of(data)
    assert '$.blocklists.dqs_key_file: (the value is not shown) is not an absolute path' in problems
    assert '$.store.path: "relative.db" is not an absolute path' in problems  # no secret: shown
    assert 'S3cret' not in ' '.join(problems)


def shared_store_contract() -> dict[str, Any]:
    """pmta1 of a deployment with a database host: a PostgreSQL store and the deployment's shared labels."""
    data = json.loads(contracts()['high-volume-powermta/pmta1'])
    assert data['store']['backend'] == 'postgresql' and data['exporter']['shared_labels']
    return data


def test_shared_labels_are_not_checked_on_a_sqlite_store() -> None:
    """Tests move rendered contracts onto SQLite; the exporter ignores the labels there (bounds_for)."""
    data = shared_store_contract()
    data['exporter']['shared_labels']['streams'] = []
    assert problems_of(data) == [
        '$.exporter.shared_labels.streams: lacks the host\'s stream "marketing"',
        '$.exporter.shared_labels.streams: lacks the host\'s stream "transactional"',
    ]
    data['store'] = {'backend': 'sqlite', 'path': '/var/lib/mailinfra/feedback.db'}
    assert load_contract(data).exporter.shared_labels is not None


def test_shared_labels_are_unique_and_hold_the_hosts_own() -> None:
    data = shared_store_contract()
    shared = data['exporter']['shared_labels']
    own_ip = data['ips'][0]
    stream = data['streams'][0]['name']
    shared['streams'] = [name for name in shared['streams'] if name != stream] + ['marketing']
    shared['isps'].append(shared['isps'][0])
    shared['ips'] = [ip for ip in shared['ips'] if ip['id'] != own_ip['id']] + [shared['ips'][-1]]
    problems = problems_of(data)
    assert f'$.exporter.shared_labels.streams[{len(shared["streams"]) - 1}]: "marketing" appears twice' in problems
    assert f'$.exporter.shared_labels.isps[{len(shared["isps"]) - 1}]: "*" appears twice' in problems
    assert any(p.startswith(f'$.exporter.shared_labels.ips[{len(shared["ips"]) - 1}]: ') for p in problems)
    assert f'$.exporter.shared_labels.streams: lacks the host\'s stream "{stream}"' in problems
    assert f'$.exporter.shared_labels.ips: lacks the host\'s IP "{own_ip["id"]}" ($.ips[0])' in problems


def test_shared_labels_give_the_hosts_ips_their_addresses() -> None:
    data = shared_store_contract()
    for ip in data['exporter']['shared_labels']['ips']:
        if ip['id'] == data['ips'][0]['id']:
            ip['address'] = '192.0.2.1'
    assert problems_of(data) == [
        f'$.exporter.shared_labels.ips: IP "{data["ips"][0]["id"]}" has another address than $.ips[0]'
    ]
