"""The structural checker of PowerMTA configurations: a passing and a failing case for every rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailinfra_agent.cli import main as agent
from mailinfra_agent.powermta import check_text, parse, parse_duration, parse_rate
from mailinfra_agent.powermta.checker import main

from ..conftest import ROOT

# The smallest configuration that passes: one VMTA in one pool, selected by a source.
VALID = """\
http-mgmt-port 8080
http-access 127.0.0.1/32 admin
domain-macro gmail gmail.com,googlemail.com
<domain $gmail>
    queue-to gmail.queue
</domain>
<smtp-pattern-list backoff>
    reply /421 .* try again later/ mode=backoff
</smtp-pattern-list>
<virtual-mta ip1>
    smtp-source-host 192.0.2.10 mta1.example.com
    <domain gmail.queue>
        smtp-hosts gmail.com
        max-smtp-out 5
        smtp-pattern-list backoff
    </domain>
</virtual-mta>
<virtual-mta-pool bulk>
    virtual-mta ip1
</virtual-mta-pool>
<source 10.0.0.0/8>
    default-virtual-mta bulk
</source>
"""


def found(text: str) -> list[tuple[int, str]]:
    return [(problem.line, problem.rule) for problem in check_text(text)]


def messages(text: str) -> list[str]:
    return [str(problem) for problem in check_text(text)]


def test_a_valid_configuration_passes() -> None:
    assert check_text(VALID) == []


# --- syntax and nesting -----------------------------------------------------------------------------------------


def test_an_unclosed_block_is_reported_at_its_opening_line() -> None:
    assert found(VALID.replace('</source>\n', '')) == [(21, 'nesting')]
    assert messages(VALID.replace('</source>\n', '')) == ['line 21: <source> is never closed [nesting]']


def test_a_closing_tag_must_close_the_open_block() -> None:
    text = VALID.replace('    </domain>\n</virtual-mta>', '    </virtual-mta>\n</domain>')
    assert 'line 16: </virtual-mta> does not close <domain> opened on line 12 [nesting]' in messages(text)


def test_a_closing_tag_without_an_open_block() -> None:
    assert messages(VALID + '</spool>\n') == ['line 24: </spool> closes no open block [nesting]']


def test_malformed_tags() -> None:
    assert found(VALID + '<spool /var/spool/pmta\n') == [(24, 'syntax')]
    assert found(VALID + '</ spool>\n') == [(24, 'syntax')]


def test_blocks_only_where_they_may_sit() -> None:
    assert found(
        VALID.replace('<domain gmail.queue>', '<source 10.1.0.0/16>').replace('    </domain>', '    </source>')
    ) == [
        (5, 'unknown-reference'),  # gmail.queue has no <domain> block any more
        (12, 'nesting'),
        (13, 'misplaced-directive'),
        (14, 'misplaced-directive'),
        (15, 'misplaced-directive'),
    ]
    # a <domain> may sit in a VMTA (reference) and in a pool (v4.5 release notes)
    pool_domain = VALID.replace(
        '    virtual-mta ip1\n', '    virtual-mta ip1\n    <domain *>\n        max-smtp-out 2\n    </domain>\n'
    )
    assert check_text(pool_domain) == []


def test_unknown_blocks_are_reported_once() -> None:
    text = VALID + '<limits gmail>\n    throttle 5\n</limits>\n'
    assert messages(text) == ['line 24: unknown block <limits> [unknown-block]']


# --- directives ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    'invented',
    ['max-smtp-out-per-ip 5', 'bind-to-source-ip 192.0.2.10', 'max-conn-rate 10/m', 'max-message-rate 100/h'],
)
def test_the_invented_directives_of_the_reference_are_unknown(invented: str) -> None:
    text = VALID.replace('        max-smtp-out 5\n', f'        max-smtp-out 5\n        {invented}\n')
    name = invented.split()[0]
    assert messages(text) == [f'line 15: unknown directive "{name}" in <domain> [unknown-directive]']


def test_a_known_directive_in_the_wrong_block() -> None:
    text = VALID.replace('    default-virtual-mta bulk\n', '    default-virtual-mta bulk\n    max-smtp-out 5\n')
    assert messages(text) == [
        'line 23: "max-smtp-out" is not allowed in <source> (only in <domain>) [misplaced-directive]'
    ]


@pytest.mark.parametrize(
    ('good', 'bad', 'message'),
    [
        ('max-smtp-out 5', 'max-smtp-out many', 'max-smtp-out: "many" is not a whole number from 1 to 100000'),
        ('max-smtp-out 5', 'max-smtp-out 5 6', 'max-smtp-out: expects one value, got 2'),
        # str.isdigit() takes a superscript two; int() refuses it: a problem, not a crash
        ('max-smtp-out 5', 'max-smtp-out 1\u00b2', 'max-smtp-out: "1\u00b2" is not a whole number from 1 to 100000'),
        (
            'max-smtp-out 5',
            'max-msg-rate 600/hour',
            'max-msg-rate: "600/hour" is not a rate such as 600/h, 100/10m or 1/sec',
        ),
        ('max-smtp-out 5', 'retry-after 10m,soon', 'retry-after: "soon" is not a duration such as 10m, 2h or 4d12h'),
        ('max-smtp-out 5', 'bounce-after 0x', 'bounce-after: "0x" is not a duration such as 10m, 2h or 4d12h'),
        ('max-smtp-out 5', 'dkim-sign maybe', 'dkim-sign: "maybe" is not yes, no, true or false'),
        ('max-smtp-out 5', 'queue-priority 101', 'queue-priority: "101" is not a whole number from 0 to 100'),
        ('max-smtp-out 5', 'backoff-to-normal-after later', 'backoff-to-normal-after: "later" is not a duration'),
        ('max-smtp-out 5', 'source-ip-max-smtp-out 5', 'source-ip-max-smtp-out: expects a CIDR network and a value'),
        ('max-smtp-out 5', 'disable-acct-records d,x', 'disable-acct-records: unknown record type(s) x'),
        (
            'http-mgmt-port 8080',
            'http-mgmt-port 70000',
            'http-mgmt-port: "70000" is not a whole number from 1 to 65535',
        ),
        (
            'http-access 127.0.0.1/32 admin',
            'http-access 127.0.0.1/32 root',
            'http-access: "root" is not admin, monitor',
        ),
        ('http-access 127.0.0.1/32 admin', 'http-access localhost admin', 'http-access: "localhost" is not an address'),
        ('domain-macro gmail gmail.com,googlemail.com', 'domain-macro gmail', 'domain-macro: expects a name and a'),
        (
            'smtp-source-host 192.0.2.10 mta1.example.com',
            'smtp-source-host mta1.example.com',
            'smtp-source-host: expects',
        ),
        ('smtp-source-host 192.0.2.10 mta1.example.com', 'smtp-source-host 192.0.2.300 m.example.com', 'is not an IP'),
        ('reply /421 .* try again later/ mode=backoff', 'reply 421 mode=backoff', 'reply: expects /REGEX/ followed by'),
        (
            'reply /421 .* try again later/ mode=backoff',
            'reply /421 (/ mode=backoff',
            'reply: invalid regular expression',
        ),
        ('reply /421 .* try again later/ mode=backoff', 'reply /421/ mode=panic', 'reply: unknown action "mode=panic"'),
    ],
)
def test_directive_values(good: str, bad: str, message: str) -> None:
    assert good in VALID
    problems = messages(VALID.replace(good, bad, 1))
    assert len(problems) == 1, problems
    assert message in problems[0]
    assert problems[0].endswith('[value]')


def test_block_arguments() -> None:
    assert messages(VALID.replace('<source 10.0.0.0/8>', '<source everyone>')) == [
        'line 21: <source>: "everyone" is not an address or CIDR network [value]'
    ]
    assert messages(VALID + '<acct-file acct.csv>\n</acct-file>\n') == [
        'line 24: <acct-file>: "acct.csv" is not an absolute path [value]'
    ]
    assert messages(VALID + '<spool>\n</spool>\n') == ['line 24: <spool> needs an argument [value]']


def test_domain_key_names_an_absolute_key_file() -> None:
    assert check_text(VALID + 'domain-key s1,example.com,/etc/pmta/dkim/example.com/s1.rsa.key\n') == []
    assert messages(VALID + 'domain-key s1,example.com,s1.key\n') == [
        'line 24: domain-key: key file "s1.key" is not an absolute path [value]'
    ]
    assert messages(VALID + 'domain-key s1,example.com\n') == [
        'line 24: domain-key: expects SELECTOR,DOMAIN,KEYFILE [value]'
    ]


def test_acct_file_directives() -> None:
    acct = (
        '<acct-file /var/log/pmta/acct.csv>\n    records d,b,f,rb\n'
        '    record-fields d type,rcpt,bounceCat\n</acct-file>\n'
    )
    assert check_text(VALID + acct) == []
    assert messages(VALID + acct.replace('d,b,f,rb', 'd,b,z')) == ['line 25: records: unknown record type(s) z [value]']


# --- duplicates ---------------------------------------------------------------------------------------------------


def test_duplicate_definitions() -> None:
    text = VALID + '<virtual-mta ip1>\n    smtp-source-host 192.0.2.11 mta2.example.com\n</virtual-mta>\n'
    assert messages(text) == ['line 24: <virtual-mta ip1> is already defined on line 10 [duplicate]']
    assert messages(VALID + 'domain-macro gmail gmail.de\n') == [
        'line 24: domain-macro gmail is already defined on line 3 [duplicate]'
    ]
    nested = VALID.replace('    </domain>\n', '    </domain>\n    <domain gmail.queue>\n    </domain>\n')
    assert found(nested) == [(17, 'duplicate')]
    # the same domain in two VMTAs is two queues, not a duplicate
    second = (
        '<virtual-mta ip2>\n    smtp-source-host 192.0.2.11 m2.example.com\n    <domain gmail.queue>\n    </domain>\n'
    )
    second += '</virtual-mta>\n'
    assert (
        check_text(VALID.replace('    virtual-mta ip1\n', '    virtual-mta ip1\n    virtual-mta ip2\n') + second) == []
    )


# --- virtual MTAs and pools ---------------------------------------------------------------------------------------


def test_every_vmta_belongs_to_a_pool() -> None:
    text = VALID + '<virtual-mta ip2>\n    smtp-source-host 192.0.2.11 mta2.example.com\n</virtual-mta>\n'
    assert messages(text) == ['line 24: <virtual-mta ip2> belongs to no virtual-mta-pool [vmta-without-pool]']


def test_every_vmta_has_a_source_address() -> None:
    text = VALID.replace('    smtp-source-host 192.0.2.10 mta1.example.com\n', '')
    assert messages(text) == ['line 10: <virtual-mta ip1> has no smtp-source-host [vmta-without-source]']


def test_pool_members_must_exist() -> None:
    text = VALID.replace('    virtual-mta ip1\n', '    virtual-mta ip1\n    virtual-mta ip9\n')
    assert messages(text) == ['line 20: pool bulk lists virtual-mta ip9, which is not defined [unknown-reference]']


def test_a_pool_must_not_be_empty() -> None:
    text = (
        VALID
        + '<virtual-mta-pool spare>\n</virtual-mta-pool>\n'
        + '<source 192.0.2.0/24>\n    default-virtual-mta spare\n</source>\n'
    )
    assert messages(text) == ['line 24: <virtual-mta-pool spare> has no virtual-mta [empty-pool]']


def test_every_pool_is_selected_by_a_source_default_or_the_header() -> None:
    unselected = VALID.replace('    default-virtual-mta bulk\n', '')
    assert messages(unselected) == [
        'line 18: <virtual-mta-pool bulk> is selected by no source: no default-virtual-mta names it and no source '
        'sets process-x-virtual-mta yes [pool-not-selected]'
    ]
    by_header = VALID.replace('    default-virtual-mta bulk\n', '    process-x-virtual-mta yes\n')
    assert check_text(by_header) == []
    header_off = VALID.replace('    default-virtual-mta bulk\n', '    process-x-virtual-mta no\n')
    assert found(header_off) == [(18, 'pool-not-selected')]


def test_a_source_default_must_exist() -> None:
    text = VALID.replace('default-virtual-mta bulk', 'default-virtual-mta bluk')
    assert found(text) == [(18, 'pool-not-selected'), (22, 'unknown-reference')]
    assert 'default-virtual-mta bluk names no virtual-mta-pool or virtual-mta' in messages(text)[1]
    # a single VMTA is a valid default too (then the pool it belongs to is selected by nothing)
    assert found(VALID.replace('default-virtual-mta bulk', 'default-virtual-mta ip1')) == [(18, 'pool-not-selected')]


# --- names: macros, pattern lists, queue-to ---------------------------------------------------------------------


def test_a_domain_block_refers_to_a_known_macro() -> None:
    text = VALID.replace('<domain $gmail>', '<domain $gmial>')
    assert messages(text) == ['line 4: <domain $gmial> refers to no domain-macro gmial [unknown-macro]']


def test_pattern_lists_and_queue_targets_exist() -> None:
    text = VALID.replace('        smtp-pattern-list backoff\n', '        smtp-pattern-list backof\n')
    assert messages(text) == ['line 15: smtp-pattern-list backof is not defined [unknown-reference]']
    text = VALID.replace('queue-to gmail.queue', 'queue-to gmail.rollup')
    assert messages(text) == [
        'line 5: queue-to gmail.rollup: there is no <domain gmail.rollup> block [unknown-reference]'
    ]
    text = VALID.replace('        max-smtp-out 5\n', '        backoff-reroute-to-virtual-mta slow\n')
    assert messages(text) == [
        'line 14: backoff-reroute-to-virtual-mta slow names no virtual-mta or pool [unknown-reference]'
    ]
    assert check_text(VALID.replace('        max-smtp-out 5\n', '        backoff-reroute-to-virtual-mta bulk\n')) == []


# --- directives confirmed from public configurations (reference: "PowerMTA directives confirmed ...") ----------

# Each row: where the directive goes in VALID (a line of VALID it follows), a line that passes, and a line that fails
# with the message expected.
AFTER_TOP = 'http-mgmt-port 8080\n'
AFTER_SOURCE = '    default-virtual-mta bulk\n'
AFTER_DOMAIN = '        max-smtp-out 5\n'
AFTER_REPLY = '    reply /421 .* try again later/ mode=backoff\n'


@pytest.mark.parametrize(
    ('after', 'good', 'bad', 'message'),
    [
        (AFTER_TOP, 'smtp-listener 0/0:2525', 'smtp-listener 2525', 'smtp-listener: "2525" is not IP:PORT'),
        (AFTER_TOP, 'smtp-listener 127.0.0.1:2525', 'smtp-listener 0/0:70000', 'port 70000 is not from 1 to 65535'),
        (AFTER_TOP, 'smtp-listener 192.0.2.10:25', 'smtp-listener mx.example:25', '"mx.example" is not an IPv4'),
        (AFTER_SOURCE, 'always-allow-relaying yes', 'always-allow-relaying all', '"all" is not yes, no'),
        (AFTER_SOURCE, 'smtp-service yes', 'smtp-service', 'smtp-service: expects one value, got 0'),
        (AFTER_SOURCE, 'require-auth true', 'require-auth please', '"please" is not yes, no'),
        (AFTER_SOURCE, 'max-message-size unlimited', 'max-message-size big', '"big" is not a whole number'),
        (AFTER_SOURCE, 'log-connections no', 'log-connections verbose', '"verbose" is not yes, no'),
        (AFTER_SOURCE, 'log-commands no', 'log-commands 2', '"2" is not yes, no'),
        (AFTER_SOURCE, 'add-received-header no', 'add-received-header never', '"never" is not yes, no'),
        (AFTER_SOURCE, 'process-x-job yes', 'process-x-job X-Job', '"X-Job" is not yes, no'),
        (AFTER_SOURCE, 'process-x-envid yes', 'process-x-envid on', '"on" is not yes, no'),
        (AFTER_DOMAIN, 'max-msg-rate unlimited', 'max-msg-rate none', '"none" is not a rate'),
        (AFTER_DOMAIN, 'max-msg-rate 0', 'max-msg-rate 10', '"10" is not a rate'),
        (AFTER_DOMAIN, 'max-msg-rate 1000/hr', 'max-msg-rate 1000/hour', '"1000/hour" is not a rate'),
        (AFTER_DOMAIN, 'max-msg-rate 500/min', 'max-msg-rate 500/mn', '"500/mn" is not a rate'),
        (AFTER_DOMAIN, 'max-msg-rate 1/sec', 'max-msg-rate 1/secs', '"1/secs" is not a rate'),
        (AFTER_DOMAIN, 'max-msg-rate 20000/day', 'max-msg-rate 20000/days', '"20000/days" is not a rate'),
        (AFTER_DOMAIN, 'max-connect-rate 100/10min', 'max-connect-rate 100/min10', '"100/min10" is not a rate'),
        (AFTER_DOMAIN, 'backoff-max-connect-rate 10/m', 'backoff-max-connect-rate fast', '"fast" is not a rate'),
        (AFTER_DOMAIN, 'backoff-max-msg-rate 500/m', 'backoff-max-msg-rate 500', '"500" is not a rate'),
        (AFTER_DOMAIN, 'source-ip-max-msg-rate 0/0 1/s', 'source-ip-max-msg-rate 0/0 1/w', '"1/w" is not a rate'),
        (AFTER_DOMAIN, 'max-cold-virtual-mta-msg 5/day,50/day', 'max-cold-virtual-mta-msg 5', '"5" is not a rate'),
        (AFTER_DOMAIN, 'backoff-notify ""', 'backoff-notify postmaster', '"postmaster" is not an e-mail address'),
        (
            AFTER_DOMAIN,
            'backoff-notify ops@example.com,noc@example.com',
            'backoff-notify ops@example.com,',
            '"" is not an e-mail address',
        ),
        (
            AFTER_DOMAIN,
            'disabled-source-ip-notify ops@example.com',
            'disabled-source-ip-notify ops',
            '"ops" is not an e-mail address',
        ),
        (AFTER_DOMAIN, 'backoff-max-msg-per-hour 100', 'backoff-max-msg-per-hour 1 2', 'expects one value, got 2'),
        (AFTER_DOMAIN, 'retry-recipients-after 10m', 'retry-recipients-after often', '"often" is not a duration'),
        (AFTER_DOMAIN, 'retry-after-dns-error 1m', 'retry-after-dns-error 1x', '"1x" is not a duration'),
        (AFTER_DOMAIN, 'require-starttls yes', 'require-starttls always', '"always" is not yes, no'),
        (AFTER_DOMAIN, 'max-rcpt-per-message unlimited', 'max-rcpt-per-message all', '"all" is not a whole number'),
        (AFTER_DOMAIN, 'max-rcpt-per-message 1000', 'max-rcpt-per-message -1', '"-1" is not a whole number'),
        (
            AFTER_REPLY,
            '    reply /421 TS04/ disable-source-ip reenable-after=2h',
            '    reply /421 TS04/ disable-source-ip reenable-after=soon',
            'reply: reenable-after: "soon" is not a duration',
        ),
    ],
)
def test_confirmed_directives(after: str, good: str, bad: str, message: str) -> None:
    assert after in VALID
    indent = '' if after == AFTER_TOP or good.startswith(' ') else '    ' if after == AFTER_SOURCE else '        '
    assert check_text(VALID.replace(after, f'{after}{indent}{good}\n', 1)) == []
    problems = messages(VALID.replace(after, f'{after}{indent}{bad}\n', 1))
    assert len(problems) == 1, problems
    assert message in problems[0]
    assert problems[0].endswith('[value]')


@pytest.mark.parametrize(
    ('directive', 'block'),
    [
        ('smtp-listener 0/0:2525', '<source>'),
        ('always-allow-relaying yes', '<domain>'),
        ('require-auth true', 'the top level'),
        ('backoff-notify ""', '<source>'),
        ('password secret-value', '<source>'),
    ],
)
def test_confirmed_directives_only_in_their_block(directive: str, block: str) -> None:
    where = {'<source>': AFTER_SOURCE, '<domain>': AFTER_DOMAIN, 'the top level': AFTER_TOP}[block]
    indent = {'<source>': '    ', '<domain>': '        ', 'the top level': ''}[block]
    problems = messages(VALID.replace(where, f'{where}{indent}{directive}\n', 1))
    assert len(problems) == 1, problems
    assert f'"{directive.split()[0]}" is not allowed in {block}' in problems[0]
    assert 'secret-value' not in problems[0]


AUTH = """\
<smtp-user app-bulk>
    password s3cret-Passw0rd
    source {auth-bulk}
</smtp-user>
<source {auth-bulk}>
    smtp-service yes
    always-allow-relaying yes
    require-auth true
    process-x-virtual-mta no
    default-virtual-mta bulk
</source>
"""


def test_an_smtp_user_selects_a_named_source() -> None:
    assert check_text(VALID + AUTH) == []
    # the user names a source that is not defined
    assert found(VALID + AUTH.replace('    source {auth-bulk}', '    source {auth-blk}')) == [(26, 'unknown-reference')]
    # braces on both sides, as in the reference
    assert messages(VALID + AUTH.replace('{auth-bulk}', 'auth-bulk')) == [
        'line 26: source: "auth-bulk" is not a source name such as {name} [value]',
        'line 28: <source>: "auth-bulk" is not an address or CIDR network [value]',
    ]
    assert messages(VALID + AUTH.replace('<source {auth-bulk}>', '<source {auth bulk}>')) == [
        'line 26: source {auth-bulk}: there is no <source {auth-bulk}> block [unknown-reference]',
        'line 28: <source>: "{auth bulk}" is not a source name such as {name} [value]',
    ]
    no_password = messages(VALID + AUTH.replace('    password s3cret-Passw0rd\n', ''))
    assert no_password == ['line 24: <smtp-user app-bulk> has no password [user-without-password]']
    assert found(VALID + AUTH.replace('    source {auth-bulk}\n', '')) == [(24, 'user-without-source')]
    # a password is never quoted back
    spaced = messages(VALID + AUTH.replace('s3cret-Passw0rd', 's3cret Passw0rd'))
    assert spaced == ['line 25: password: expects one value without spaces [value]']
    assert messages(VALID + AUTH.replace('<smtp-user app-bulk>', '<smtp-user app bulk>')) == [
        'line 24: <smtp-user>: "app bulk" is not a user name ([A-Za-z0-9_.@+-]) [value]'
    ]
    assert found(VALID + AUTH + AUTH.split('<source')[0]) == [(35, 'duplicate')]
    # a user block only at the top level
    nested = VALID.replace(AFTER_SOURCE, AFTER_SOURCE + '    <smtp-user x>\n    </smtp-user>\n')
    assert found(nested) == [(23, 'nesting')]


def test_an_smtp_user_must_name_a_source_by_name_not_network() -> None:
    text = VALID + AUTH.replace('    source {auth-bulk}', '    source 10.0.0.0/8')
    assert messages(text) == ['line 26: source: "10.0.0.0/8" is not a source name such as {name} [value]']


def test_listeners_do_not_share_a_port() -> None:
    assert check_text('smtp-listener 0/0:2525\nsmtp-listener 0/0:2526\n' + VALID) == []
    assert check_text('smtp-listener 192.0.2.1:25\nsmtp-listener 192.0.2.2:25\n' + VALID) == []
    for first, second in (('0/0:2525', '0/0:2525'), ('0/0:25', '192.0.2.1:25'), ('192.0.2.1:25', '0/0:25')):
        text = f'smtp-listener {first}\nsmtp-listener {second}\n' + VALID
        assert messages(text) == [
            f'line 2: smtp-listener {second}: port {second.split(":")[1]} is already bound on line 1 [duplicate]'
        ]


def test_the_sample_injection_source_passes() -> None:
    """Port25's sample (reference: [SAMPLE]) with its listener and sources."""
    sample = (
        'smtp-listener 0/0:2525\n'
        '<source 127.0.0.1>\n    always-allow-relaying yes\n    process-x-virtual-mta yes\n'
        '    max-message-size unlimited\n    smtp-service yes\n</source>\n'
        '<source 0/0>\n    log-connections no\n    log-commands no\n</source>\n'
    )
    assert check_text(sample) == []


# --- comments and user additions -----------------------------------------------------------------------------------


def test_comments() -> None:
    text = VALID.replace('max-smtp-out 5', 'max-smtp-out 5   # per queue') + '# a comment\n    # indented\n'
    assert check_text(text) == []
    # a "#" inside a reply's regular expression is not a comment
    assert check_text(VALID.replace('/421 .* try again later/', '/421 #5 try again/')) == []


def test_unchecked_lines_may_hold_directives_the_checker_does_not_know() -> None:
    extra = '# mailinfra: unchecked-begin\nlog-data no\n# mailinfra: unchecked-end\n'
    assert check_text(VALID + extra) == []
    assert found(VALID + extra + 'log-data yes\n') == [(27, 'unknown-directive')]
    # nesting is still checked between the markers
    assert found(VALID + extra.replace('log-data no', '<listener 25>')) == [
        (25, 'nesting'),
        (25, 'unknown-block'),
    ]


# --- the reference's own examples pass ------------------------------------------------------------------------------

REFERENCE_DOMAIN = """\
<smtp-pattern-list SMTPRESPONS>
  reply /421 .* SERVICE NOT AVAILABLE/         mode=backoff
</smtp-pattern-list>
<domain *>
    max-smtp-out 512
    bounce-after 1d
    retry-after 2h
    max-msg-per-connection 500
    dkim-sign yes
    backoff-to-normal-after 10m
    backoff-to-normal-after-delivery true
    backoff-retry-after 30m
    backoff-max-msg-rate 500/m
    bounce-upon-no-mx yes
    smtp-pattern-list SMTPRESPONS
    use-starttls yes
</domain>
"""

REFERENCE_PATTERNS = """\
<smtp-pattern-list backoff>
  # To place a queue back into normal mode: pmta set queue --mode=normal yahoo.com/vmta1
  reply /421 .* SERVICE NOT AVAILABLE/         mode=backoff
  reply /421 .* Please try again later/        mode=backoff
  reply /VS3-IP5 Excessive unknown recipients/ mode=backoff
</smtp-pattern-list>
"""

REFERENCE_ACCT = """\
<acct-file /var/log/pmta/acct>
    move-to /var/log/pmtaAccRep/
    move-interval 1d
    records d,b
    record-fields b FIELDS
</acct-file>
<acct-file /var/log/pmta/diag.csv>
    records t          # transient failures → throttling telemetry
</acct-file>
""".replace(
    'FIELDS',
    'timeLogged,timeQueued,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,dlvSourceIp,dlvDestinationIp,vmta,jobId',
)


@pytest.mark.parametrize(
    'text', [REFERENCE_DOMAIN, REFERENCE_PATTERNS, REFERENCE_ACCT], ids=['domain', 'patterns', 'acct']
)
def test_the_examples_of_the_reference_pass(text: str) -> None:
    assert check_text(text) == []


# --- values, parsing, command line --------------------------------------------------------------------------------


def test_durations_and_rates() -> None:
    assert parse_duration('4d12h') == 4 * 86400 + 12 * 3600
    assert parse_duration('10m') == 600
    assert parse_rate('600/h') == (600, 3600)
    assert parse_rate('100/10m') == (100, 600)
    for bad in ('', '10', 'h', '10 m'):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_rate('1000/hr') == (1000, 3600)
    assert parse_rate('500/min') == (500, 60)
    assert parse_rate('1/sec') == (1, 1)
    assert parse_rate('20000/day') == (20000, 86400)
    for rate in ('600', 'unlimited', '600/hour', '600/w'):
        with pytest.raises(ValueError):
            parse_rate(rate)


def test_parse_builds_the_block_tree() -> None:
    root, problems = parse(VALID)
    assert problems == []
    vmta = next(block for block in root.blocks if block.name == 'virtual-mta')
    assert [block.argument for block in vmta.blocks] == ['gmail.queue']
    assert vmta.blocks[0].values('max-smtp-out')[0].value == '5'


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / 'good', tmp_path / 'bad'
    good.write_text(VALID)
    bad.write_text(VALID.replace('max-smtp-out 5', 'max-smtp-out five'))
    assert main([str(good)]) == 0
    assert 'structure OK' in capsys.readouterr().out
    assert main([str(bad)]) == 1
    assert f'{bad}: line 14: max-smtp-out: "five" is not a whole number' in capsys.readouterr().err
    assert main([str(tmp_path / 'missing')]) == 2
    assert main([]) == 2


def test_the_agent_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The powermta role validates with ``mailinfra-agent powermta-check %s``."""
    good, bad = tmp_path / 'good', tmp_path / 'bad'
    good.write_text(VALID)
    bad.write_text(VALID.replace('<virtual-mta-pool bulk>', '<virtual-mta-pool other>'))
    assert agent(['powermta-check', str(good)]) == 0
    assert f'{good}: structure OK' in capsys.readouterr().out
    assert agent(['powermta-check', str(bad)]) == 1
    assert 'problem(s); the configuration was not accepted' in capsys.readouterr().err
    assert agent(['powermta-check', str(tmp_path / 'missing')]) == 2
    assert 'cannot read' in capsys.readouterr().err


def test_the_checker_runs_as_a_standalone_script(tmp_path: Path) -> None:
    """The Molecule stand-in for PowerMTA copies the file and runs it with the host's python3: no package imports."""
    good, bad = tmp_path / 'good', tmp_path / 'bad'
    good.write_text(VALID)
    bad.write_text(VALID.replace('max-smtp-out 5', 'max-smtp-out five'))
    script = ROOT / 'agent' / 'mailinfra_agent' / 'powermta' / 'checker.py'
    results = [
        subprocess.run([sys.executable, '-I', str(script), str(path)], capture_output=True, text=True, check=False)
        for path in (good, bad)
    ]
    assert results[0].returncode == 0, results[0].stderr
    assert results[1].returncode == 1
    assert 'is not a whole number' in results[1].stderr
