"""``mailinfra_agent.postfix.parameters``: typed validation of Postfix values (issue 11).

The corpus below holds values that a daemon refuses at start (qmgr: "bad time value", "bad numerical
configuration", "bad boolean configuration", an unknown TLS level, a table it cannot open, a milter it cannot
reach), each with the reason the check must give, and values of every type that must pass. The types come
from a ``postconf -d`` excerpt here; the last tests derive them from the installed Postfix.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailinfra_agent.postfix.parameters import (
    Types,
    kind_of,
    milter_problems,
    reach,
    split_list,
    value_problems,
)
from mailinfra_agent.postfix.staged_check import typed_problems

# Lines as ``postconf -d`` prints them (Postfix 3.7), including a per-transport parameter of a master.cf service.
DEFAULTS = {
    'maximal_queue_lifetime': '5d',
    'minimal_backoff_time': '300s',
    'queue_run_delay': '300s',
    'smtp_connect_timeout': '30s',
    'default_destination_concurrency_limit': '20',
    'out_1_destination_concurrency_limit': '$default_destination_concurrency_limit',
    'postscreen_dnsbl_threshold': '1',
    'message_size_limit': '10240000',
    'queue_minfree': '0',
    'smtp_bind_address_enforce': 'no',
    'smtputf8_enable': '${{$compatibility_level} <level {1} ? {no} : {yes}}',
    'relay_domains': '${{$compatibility_level} <level {2} ? {$mydestination} : {}}',
    'compatibility_level': '0',
    'default_destination_concurrency_negative_feedback': '1',
    'smtp_tls_security_level': '',
    'smtpd_tls_security_level': '',
    'milter_default_action': 'tempfail',
    'inet_protocols': 'all',
    'transport_maps': '',
    'smtpd_sender_restrictions': '',
    'mydestination': '$myhostname, localhost.$mydomain, localhost',
    'smtp_tls_session_cache_database': '',
    'myhostname': 'host.example',
    'smtpd_milters': '',
    'non_smtpd_milters': '',
}
TABLE_TYPES = frozenset({'btree', 'cidr', 'hash', 'inline', 'pcre', 'pipemap', 'proxy', 'randmap', 'static',
                         'texthash', 'unix', 'unionmap'})  # fmt: skip
TYPES = Types(defaults=DEFAULTS, table_types=TABLE_TYPES)


def refused(name: str, value: str) -> list[str]:
    return value_problems(name, value, TYPES)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A hash table with its .db, a texthash and a pcre table, and a source without its .db."""
    (tmp_path / 'transport').write_text('example.com smtp:\n')
    (tmp_path / 'transport.db').write_bytes(b'')
    (tmp_path / 'senders').write_text('a@example.com OK\n')
    (tmp_path / 'checks.pcre').write_text('/x/ REJECT\n')
    (tmp_path / 'unbuilt').write_text('example.com smtp:\n')
    return tmp_path


# --- the types, derived from the defaults -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ('name', 'kind'),
    [
        ('maximal_queue_lifetime', 'time:d'),
        ('minimal_backoff_time', 'time:s'),
        ('default_destination_concurrency_limit', 'integer'),
        ('out_1_destination_concurrency_limit', 'integer'),  # $default_... of a master.cf service
        ('message_size_limit', 'size'),
        ('queue_minfree', 'size'),
        ('smtp_bind_address_enforce', 'boolean'),
        ('smtputf8_enable', 'boolean'),  # ${{...} ? {no} : {yes}}
        ('relay_domains', 'text'),
        ('compatibility_level', 'text'),  # numeric default, but "3.6" is a level
        ('default_destination_concurrency_negative_feedback', 'text'),  # "1/concurrency"
        ('smtp_tls_security_level', 'enum'),
        ('inet_protocols', 'list-enum'),
        ('transport_maps', 'table'),
        ('smtpd_sender_restrictions', 'table'),
        ('smtpd_milters', 'milter'),
        ('myhostname', 'text'),
        ('not_a_parameter', 'text'),
    ],
)
def test_kind_of(name: str, kind: str) -> None:
    assert kind_of(name, DEFAULTS) == kind


def test_a_reference_cycle_is_text() -> None:
    assert kind_of('a', {'a': '$b', 'b': '$a'}) == 'text'


def test_split_list_keeps_groups() -> None:
    assert split_list('pipemap:{pcre:/a, texthash:/b}, hash:/c  inline:{ a=b }') == [
        'pipemap:{pcre:/a, texthash:/b}',
        'hash:/c',
        'inline:{ a=b }',
    ]


# --- the corpus of bad values -----------------------------------------------------------------------------------

TIME = 'not a Postfix time'
INTEGER = 'not an integer'
SIZE = 'not a size'
BOOLEAN = 'not a boolean: yes or no'
SMTP_LEVELS = 'must be one of: (empty), none, may, encrypt, dane, dane-only, fingerprint, verify, secure'
SMTPD_LEVELS = 'must be one of: (empty), none, may, encrypt'
BAD_VALUES = [
    # time (conv_time: a number and at most one of s m h d w)
    ('maximal_queue_lifetime', '5 days', TIME),
    ('maximal_queue_lifetime', '5days', TIME),
    ('maximal_queue_lifetime', '1.5h', TIME),
    ('maximal_queue_lifetime', '-1d', TIME),
    ('maximal_queue_lifetime', '5x', TIME),
    ('maximal_queue_lifetime', '5D', TIME),  # conv_time() knows the lower-case letters only
    ('maximal_queue_lifetime', '', TIME),
    ('minimal_backoff_time', '1h30m', TIME),
    ('maximal_queue_lifetime', '4000w', 'time too large'),
    # integer (mail_conf_int: a whole number that fits an int)
    ('default_destination_concurrency_limit', 'twenty', INTEGER),
    ('default_destination_concurrency_limit', '2.5', INTEGER),
    ('default_destination_concurrency_limit', '1e3', INTEGER),
    ('default_destination_concurrency_limit', '', INTEGER),
    ('out_1_destination_concurrency_limit', 'lots', INTEGER),
    ('default_destination_concurrency_limit', '3000000000', 'integer too large'),
    # size (mail_conf_long: bytes, no unit)
    ('message_size_limit', '10MB', SIZE),
    ('message_size_limit', '-1', SIZE),
    ('queue_minfree', '1 000', SIZE),
    # boolean (mail_conf_bool: yes or no)
    ('smtp_bind_address_enforce', 'maybe', BOOLEAN),
    ('smtp_bind_address_enforce', 'true', BOOLEAN),
    ('smtp_bind_address_enforce', '1', BOOLEAN),
    ('smtputf8_enable', 'on', BOOLEAN),
    # enumerations (postconf(5))
    ('smtp_tls_security_level', 'always', SMTP_LEVELS),
    ('smtp_tls_security_level', 'mandatory', SMTP_LEVELS),
    ('smtpd_tls_security_level', 'mandatory', SMTPD_LEVELS),
    ('smtpd_tls_security_level', 'dane', SMTPD_LEVELS),
    ('smtpd_tls_security_level', 'verify', SMTPD_LEVELS),
    ('milter_default_action', 'defer', 'must be one of: accept, reject, tempfail, quarantine'),
    ('inet_protocols', 'ipv5', 'must be a list of: all, ipv4, ipv6'),
    ('inet_protocols', '', 'must be a list of: all, ipv4, ipv6'),
]


@pytest.mark.parametrize(('name', 'value', 'reason'), BAD_VALUES)
def test_a_bad_value_is_refused_with_its_reason(name: str, value: str, reason: str) -> None:
    problems = refused(name, value)
    assert len(problems) == 1
    assert reason in problems[0]


@pytest.mark.parametrize(
    ('name', 'value', 'reason'),
    [
        ('transport_maps', 'hash:{d}/missing', 'hash:{d}/missing: the table does not exist ({d}/missing.db)'),
        ('transport_maps', 'hash:{d}/unbuilt', 'hash:{d}/unbuilt: the table does not exist ({d}/unbuilt.db)'),
        ('transport_maps', 'btree:{d}/missing', 'btree:{d}/missing: the table does not exist ({d}/missing.db)'),
        ('transport_maps', 'texthash:{d}/missing', 'the table does not exist ({d}/missing)'),
        ('transport_maps', 'proxy:hash:{d}/missing', 'the table does not exist ({d}/missing.db)'),
        (
            'transport_maps',
            'pipemap:{{pcre:{d}/checks.pcre, texthash:{d}/gone}}',
            'the table does not exist ({d}/gone)',
        ),
        ('transport_maps', 'lmdb:{d}/transport', 'unsupported lookup table type "lmdb"'),
        ('transport_maps', 'nosuch:{d}/transport', 'unsupported lookup table type "nosuch" (postconf -m: btree,'),
        ('transport_maps', '{d}/transport', 'not a lookup table: type:name'),
        ('smtpd_sender_restrictions', 'check_sender_access bogus:{d}/senders', 'unsupported lookup table type'),
        ('smtpd_sender_restrictions', 'check_sender_access texthash:{d}/none', 'the table does not exist'),
        ('mydestination', 'localhost, hash:{d}/missing', 'the table does not exist'),
    ],
)
def test_a_table_that_cannot_be_opened_is_refused(files: Path, name: str, value: str, reason: str) -> None:
    problems = refused(name, value.format(d=files))
    assert len(problems) == 1
    assert reason.format(d=files) in problems[0]


def unreachable(family: str, address: str) -> str | None:
    return f'cannot connect to {family}:{address} (Connection refused)'


@pytest.mark.parametrize(
    ('value', 'reason'),
    [
        ('bogus', 'bogus: not a milter address: unix:/path/to/socket or inet:host:port'),
        ('inet:127.0.0.1', 'inet:127.0.0.1: not a milter address'),
        ('inet:127.0.0.1:99999', 'inet:127.0.0.1:99999: not a milter address'),
        ('inet:127.0.0.1:0', 'inet:127.0.0.1:0: not a milter address'),
        ('tcp:127.0.0.1:8891', 'tcp:127.0.0.1:8891: not a milter address'),
        ('unix:', 'unix:: not a milter address'),
        ('{ inet:127.0.0.1:8891, frobnicate=1 }', 'unknown milter setting "frobnicate=1"'),
        ('{ inet:127.0.0.1:8891', 'unbalanced braces'),
        ('{ }', 'a milter group without an address'),
    ],
)
def test_a_malformed_milter_is_refused(value: str, reason: str) -> None:
    problems = milter_problems(value)
    assert len(problems) == 1
    assert reason in problems[0]
    assert value_problems('smtpd_milters', value, TYPES) == problems


def test_an_unreachable_milter_is_refused() -> None:
    assert milter_problems('inet:127.0.0.1:8891, unix:/run/x.sock', connector=unreachable) == [
        'inet:127.0.0.1:8891: cannot connect to inet:127.0.0.1:8891 (Connection refused)',
        'unix:/run/x.sock: cannot connect to unix:/run/x.sock (Connection refused)',
    ]


# --- the good values --------------------------------------------------------------------------------------------

GOOD_VALUES = [
    *(('maximal_queue_lifetime', value) for value in ('5d', '300s', '10m', '2h', '1w', '5', '0')),
    ('minimal_backoff_time', '300'),
    ('default_destination_concurrency_limit', '20'),
    ('out_1_destination_concurrency_limit', '4'),
    ('postscreen_dnsbl_threshold', '-1'),
    ('message_size_limit', '26214400'),
    ('message_size_limit', '0'),
    ('smtp_bind_address_enforce', 'yes'),
    ('smtp_bind_address_enforce', 'NO'),
    ('smtputf8_enable', 'no'),
    *(('smtp_tls_security_level', level) for level in ('', 'none', 'may', 'encrypt', 'dane', 'dane-only')),
    *(('smtp_tls_security_level', level) for level in ('fingerprint', 'verify', 'secure')),
    *(('smtpd_tls_security_level', level) for level in ('', 'none', 'may', 'encrypt')),
    ('milter_default_action', 'tempfail'),
    ('inet_protocols', 'ipv4, ipv6'),
    ('compatibility_level', '3.6'),
    ('default_destination_concurrency_negative_feedback', '1/concurrency'),
    ('myhostname', 'anything at all'),
    ('transport_maps', ''),
    ('transport_maps', 'hash:{d}/transport'),
    ('transport_maps', 'pipemap:{{pcre:{d}/checks.pcre, texthash:{d}/senders}}, inline:{{a.example=smtp:}}'),
    ('transport_maps', 'proxy:hash:{d}/transport, static:smtp:, randmap:{{a,b}}'),
    ('smtpd_sender_restrictions', 'check_sender_access texthash:{d}/senders, permit_mynetworks, reject'),
    ('smtpd_sender_restrictions', 'check_policy_service inet:127.0.0.1:10023'),
    ('smtp_tls_session_cache_database', 'btree:{d}/smtp_scache'),  # Postfix creates caches
    ('mydestination', '$myhostname, localhost, hash:{d}/transport'),
    ('smtpd_milters', ''),
    ('smtpd_milters', 'unix:relative/path'),
]


@pytest.mark.parametrize(('name', 'value'), GOOD_VALUES)
def test_a_good_value_passes(files: Path, name: str, value: str) -> None:
    assert refused(name, value.format(d=files)) == []


@pytest.fixture
def milters(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A listening unix socket and a listening TCP port on 127.0.0.1, like a running milter."""
    path = str(tmp_path / 'milter.sock')
    with socket.socket(socket.AF_UNIX) as local, socket.socket() as inet:
        local.bind(path)
        local.listen()
        inet.bind(('127.0.0.1', 0))
        inet.listen()
        yield path, inet.getsockname()[1]


def test_a_milter_that_answers_passes(milters: tuple[str, int]) -> None:
    path, port = milters
    value = f'unix:{path}, local:{path}, inet:127.0.0.1:{port}, {{ inet:127.0.0.1:{port}, default_action=accept }}'
    assert milter_problems(value, connector=reach) == []


def test_reach_says_why(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(('127.0.0.1', 0))
        free = closed.getsockname()[1]
    assert reach('inet', f'127.0.0.1:{free}') == f'cannot connect to inet:127.0.0.1:{free} (Connection refused)'
    assert reach('unix', str(tmp_path / 'none.sock')) == (
        f'no socket at {tmp_path / "none.sock"} (No such file or directory)'
    )
    (tmp_path / 'file').write_text('')
    assert reach('unix', str(tmp_path / 'file')) == f'{tmp_path / "file"} is not a socket'


def test_typed_problems_name_the_parameter_the_value_and_the_service() -> None:
    overrides = (
        'out_1/unix/smtp_tls_security_level = always\n'
        'out_1/unix/smtp_bind_address = 192.0.2.10\n'
        'relay/unix/out_1_destination_concurrency_limit = lots\n'
    )
    main = {'maximal_queue_lifetime': '5 days', 'myhostname': 'mx1.example'}
    assert typed_problems(main, overrides, TYPES, None) == [
        'main.cf: maximal_queue_lifetime = 5 days: not a Postfix time: a whole number with at most one unit letter '
        '(s, m, h, d or w; without one, d), like 5d or 300s',
        'master.cf: service out_1/unix: -o smtp_tls_security_level=always: ' + SMTP_LEVELS,
        'master.cf: service relay/unix: -o out_1_destination_concurrency_limit=lots: not an integer: a whole number',
    ]


def test_the_corpus_covers_every_type() -> None:
    kinds = {kind_of(name, DEFAULTS).split(':')[0] for name, _, _ in BAD_VALUES}
    assert kinds >= {'time', 'integer', 'size', 'boolean', 'enum', 'list-enum'}
    assert len(BAD_VALUES) >= 15


# --- the types of the installed Postfix -------------------------------------------------------------------------


@pytest.fixture
def postconf(tmp_path: Path) -> Types:
    if shutil.which('postconf') is None:
        pytest.skip('needs Postfix (apt-get install postfix postfix-pcre; script/bootstrap does)')
    (tmp_path / 'main.cf').write_text('')
    (tmp_path / 'master.cf').write_text('out_1 unix - - n - - smtp\n')

    def lines(option: str) -> str:
        return subprocess.run(
            ['postconf', '-c', str(tmp_path), option], capture_output=True, text=True, check=True
        ).stdout

    defaults = dict(line.split(' = ', 1) for line in lines('-d').splitlines() if ' = ' in line)
    return Types(defaults=defaults, table_types=frozenset(lines('-m').split()))


def test_the_installed_postfix_gives_the_types_of_the_issue_parameters(postconf: Types) -> None:
    assert kind_of('maximal_queue_lifetime', postconf.defaults) == 'time:d'
    assert kind_of('bounce_queue_lifetime', postconf.defaults) == 'time:d'
    assert kind_of('default_destination_concurrency_limit', postconf.defaults) == 'integer'
    assert kind_of('out_1_destination_concurrency_limit', postconf.defaults) == 'integer'
    assert kind_of('out_1_destination_rate_delay', postconf.defaults) == 'time:s'
    assert kind_of('smtp_bind_address_enforce', postconf.defaults) == 'boolean'
    assert kind_of('message_size_limit', postconf.defaults) == 'size'
    assert {'hash', 'texthash', 'pcre', 'inline', 'pipemap'} <= postconf.table_types
    for name, value, reason in BAD_VALUES:
        problems = value_problems(name, value, postconf)
        assert len(problems) == 1 and reason in problems[0], (name, value, problems)


def test_every_default_of_the_installed_postfix_passes(postconf: Types) -> None:
    """No false alarm on Postfix's own values (the defaults that name files are left out: they may not exist)."""
    wrong = {}
    for name, value in postconf.defaults.items():
        if '$' in value or '/' in value:
            continue
        problems = value_problems(name, value, postconf)
        if problems:
            wrong[name] = problems
    assert wrong == {}
