"""The spec's feedback section: its model (defaults, validation) and each feedback check, passing and failing."""

from __future__ import annotations

import pytest

from mailinfra_agent.feedback.signing import pack_field
from mailinfra_agent.feedback.verp import payload_capacity
from mailinfra_iac import parse_spec
from mailinfra_iac.checks.feedback import MESSAGE_ID_ROOM
from mailinfra_iac.model.feedback import DEFAULT_SIGNING_KEY_FILE, Feedback
from mailinfra_iac.model.reference import reference_markdown
from mailinfra_iac.problems import Problem, format_path

from ..conftest import AS_OF, BASE, edit, problems

TLS = 'tls_certificate: /etc/ssl/unsub.pem, tls_key: /etc/ssl/private/unsub.key'


def _feedback(body: str) -> str:
    return edit('\nmonitoring:', f'\nfeedback: {body}\nmonitoring:', BASE)


def _found(text: str, check: str) -> list[Problem]:
    return [problem for problem in problems(text) if problem.check == check]


def _errors(text: str) -> list[str]:
    return [str(p) for p in problems(text) if p.severity == 'error']


def test_defaults_keep_the_base_spec_valid() -> None:
    deployment = parse_spec(BASE, 'spec.yml', as_of=AS_OF).deployment
    feedback = deployment.feedback
    assert feedback.signing_key_file == DEFAULT_SIGNING_KEY_FILE
    assert feedback.unsubscribe is None and feedback.webhook is None
    assert feedback.suppression.soft_bounce_window == 30 * 86400
    assert feedback.retention.events == 180 * 86400 and feedback.retention.after == 'hash'
    assert feedback.stream('marketing').verp.enabled


def test_a_full_section_is_accepted() -> None:
    text = _feedback(
        '{signing_key_file: /etc/mailinfra/secrets/k2, old_signing_key_files: [/etc/mailinfra/secrets/k1], '
        'streams: {marketing: {verp: {return_path_domain: bounces.news.testco.example, prefix: m, separator: "+"}, '
        'complaint_links: []}}, suppression: {soft_bounce_window: 14d}, '
        'retention: {events: 90d, after: erase, suppressions: hash}, '
        f'unsubscribe: {{hostname: unsubscribe.testco.example, {TLS}, port: 8443, token_max_age: 30d, rate_limit: 5}}, '
        'webhook: {url: "https://crm.testco.example/hook", secret_file: /etc/mailinfra/secrets/hook, retries: 3}}'
    )
    assert _errors(text) == []
    assert [p.check for p in problems(text) if p.severity == 'warning'] == []
    feedback = parse_spec(text, 'spec.yml', as_of=AS_OF).deployment.feedback
    assert feedback.retention.events == 90 * 86400
    assert feedback.stream('marketing').verp.separator == '+'
    assert feedback.unsubscribe is not None and feedback.unsubscribe.token_max_age == 30 * 86400


@pytest.mark.parametrize(
    ('body', 'path'),
    [
        ('{retention: {events: 0}}', 'feedback.retention.events'),
        ('{retention: {events: "-3d"}}', 'feedback.retention.events'),
        ('{suppression: {soft_bounce_window: 0}}', 'feedback.suppression.soft_bounce_window'),
        ('{streams: {marketing: {verp: {prefix: "B-1"}}}}', 'feedback.streams.marketing.verp.prefix'),
        ('{streams: {marketing: {verp: {separator: "/"}}}}', 'feedback.streams.marketing.verp.separator'),
        (f'{{unsubscribe: {{hostname: u.testco.example, {TLS}, port: 0}}}}', 'feedback.unsubscribe.port'),
        (
            f'{{unsubscribe: {{hostname: u.testco.example, {TLS}, listen_address: any}}}}',
            'feedback.unsubscribe.listen_address',
        ),
        ('{unsubscribe: {hostname: u.testco.example}}', 'feedback.unsubscribe.tls_certificate'),
        ('{webhook: {url: "https://x.testco.example", secret_file: /k, retries: 99}}', 'feedback.webhook.retries'),
        ('{store: {path: /x}}', 'feedback.store'),
    ],
)
def test_model_refuses_bad_values(body: str, path: str) -> None:
    found = problems(_feedback(body))
    assert path in [format_path(problem.path) for problem in found], [str(p) for p in found]


def test_complaint_links_default_by_kind_never_transactional() -> None:
    kinds = {'tx': 'transactional', 'news': 'marketing', 'promo': 'marketing', 'cold': 'cold_outreach', 'x': 'custom'}
    links = Feedback().complaint_links(kinds)
    assert links == {'tx': (), 'news': ('cold',), 'promo': ('cold',), 'cold': ('news', 'promo'), 'x': ()}
    explicit = Feedback.model_validate({'streams': {'news': {'complaint_links': ['tx', 'news', 'tx']}}})
    assert explicit.complaint_links(kinds)['news'] == ('tx',)


def test_unknown_streams_each_reported() -> None:
    found = _found(
        _feedback('{streams: {nope: {}, marketing: {complaint_links: [transactional, gone]}}}'),
        'feedback-unknown-stream',
    )
    assert sorted(format_path(p.path) for p in found) == [
        'feedback.streams.marketing.complaint_links[1]',
        'feedback.streams.nope',
    ]


def test_transactional_link_warns_only_when_transactional() -> None:
    text = _feedback('{streams: {transactional: {complaint_links: [marketing]}}}')
    assert _found(text, 'complaint-link-transactional') == []


def test_verp_domain_must_align_with_the_from_domain() -> None:
    text = edit(
        '  - domain: news.testco.example\n',
        '  - domain: news.testco.example\n    return_path: bounces.other.example\n',
        _feedback('{streams: {transactional: {verp: {return_path_domain: bounces.other.example}}}}'),
    )
    [problem] = _found(text, 'verp-return-path')
    assert 'does not align' in problem.message
    aligned = _feedback('{streams: {transactional: {verp: {return_path_domain: bounces.news.testco.example}}}}')
    assert _found(aligned, 'verp-return-path') == []


@pytest.mark.parametrize(
    ('hostname', 'words'),
    [
        ('unsubscribe.testco.example', None),
        ('u.news.testco.example', None),
        ('mta1.testco.example', 'already host "mta1"'),
        ('bounces.testco.example', 'already a return-path domain'),
        ('tx1.testco.example', 'already a PTR name'),
        ('ns.testco.example', 'already a name server'),
    ],
)
def test_unsubscribe_hostname(hostname: str, words: str | None) -> None:
    found = _found(_feedback(f'{{unsubscribe: {{hostname: {hostname}, {TLS}}}}}'), 'unsubscribe-hostname')
    if words is None:
        assert found == []
    else:
        [problem] = found
        assert words in problem.message


def test_unsubscribe_hostname_under_a_managed_zone_but_not_the_clients() -> None:
    text = edit(
        '      nameserver_addresses: {ns.testco.example: [192.0.2.53]}\n',
        '      nameserver_addresses: {ns.testco.example: [192.0.2.53]}\n'
        '    - {name: parked.example, provider: zonefile, nameservers: [ns.testco.example]}\n',
        _feedback(f'{{unsubscribe: {{hostname: u.parked.example, {TLS}}}}}'),
    )
    [problem] = _found(text, 'unsubscribe-hostname')
    assert 'not under a client or sending domain' in problem.message


@pytest.mark.parametrize(
    ('url', 'words'),
    [
        ('https://crm.testco.example/hook', None),
        ('http://127.0.0.1:8080/hook', None),
        ('http://[::1]/hook', None),
        ('http://localhost/hook', None),
        ('http://crm.testco.example/hook', 'unencrypted'),
        ('ftp://crm.testco.example/hook', 'not an http(s) URL'),
        ('https:///hook', 'not an http(s) URL'),
        ('https://crm.testco.example:port/hook', 'not an http(s) URL'),
        ('https://user:hunter2@crm.testco.example/hook', 'holds credentials'),
        # URLs urlsplit refuses still hold the password: it was shown in the message and as the value
        ('https://user:hunter2@crm.testco.example:port/hook', 'holds credentials'),
        ('https://user:hunter2@[::1/hook', 'holds credentials'),
        ('https://crm.testco.example/hook?to=a@b', None),
    ],
)
def test_webhook_url(url: str, words: str | None) -> None:
    found = _found(_feedback(f'{{webhook: {{url: "{url}", secret_file: /etc/mailinfra/hook}}}}'), 'webhook-url')
    if words is None:
        assert found == []
    else:
        [problem] = found
        assert words in problem.message
        assert 'hunter2' not in f'{problem} {problem.value}'


@pytest.mark.parametrize(
    'body',
    [
        '{signing_key_file: Sign1ng-S3cret-key-0123456789abcdef}',
        '{retention: {hash_key_file: "Hash/S3cret-key+0123456789abcdef"}}',
        '{webhook: {url: "https://h.testco.example", secret_file: Hook-S3cret}}',
        # base64 keys may start with "/"
        '{signing_key_file: "/S3cret//key+0123456789abcdef="}',
        '{signing_key_file: "/S3cret+key=", old_signing_key_files: ["/S3cret+key="]}',
        '{signing_key_file: "/S3cret+key=", retention: {hash_key_file: "/S3cret+key="}}',
    ],
)
def test_a_key_given_for_its_file_is_not_shown(body: str) -> None:
    # a key pasted where its file's path belongs must not reach validate's output (CI logs)
    [problem] = _found(_feedback(body), 'feedback-file-path')
    assert 'S3cret' not in f'{problem} {problem.value}'


@pytest.mark.parametrize(
    ('body', 'path', 'words'),
    [
        ('{old_signing_key_files: [old.key]}', 'feedback.old_signing_key_files[0]', 'absolute'),
        ('{signing_key_file: /etc/../k}', 'feedback.signing_key_file', 'absolute'),
        (f'{{old_signing_key_files: [{DEFAULT_SIGNING_KEY_FILE}]}}', 'feedback.old_signing_key_files[0]', 'also'),
        (f'{{retention: {{hash_key_file: {DEFAULT_SIGNING_KEY_FILE}}}}}', 'feedback.retention.hash_key_file', 'hash'),
        ('{webhook: {url: "https://h.testco.example", secret_file: hook}}', 'feedback.webhook.secret_file', 'absolute'),
        (
            '{unsubscribe: {hostname: u.testco.example, tls_certificate: c.pem, tls_key: /k}}',
            'feedback.unsubscribe.tls_certificate',
            'absolute',
        ),
    ],
)
def test_feedback_file_path(body: str, path: str, words: str) -> None:
    [problem] = _found(_feedback(body), 'feedback-file-path')
    assert format_path(problem.path) == path
    assert words in problem.message
    assert problem.line is not None


@pytest.mark.parametrize(('port', 'words'), [(443, None), (8443, None), (25, 'bounce MX'), (9745, 'exporter')])
def test_unsubscribe_port(port: int, words: str | None) -> None:
    text = _feedback(f'{{unsubscribe: {{hostname: u.testco.example, {TLS}, port: {port}}}}}')
    found = _found(text, 'unsubscribe-port')
    if words is None:
        assert found == []
    else:
        [problem] = found
        assert words in problem.message


def _name_that_fits_only_a_short_prefix() -> str:
    """A stream name whose VERP fits with prefix "b" but not with "abcdefgh" (found, so the encoding may change)."""
    for length in range(1, 41):
        name = 'n' * length
        rooms = [payload_capacity(prefix, '-') - len(pack_field(name)) for prefix in ('b', 'abcdefgh')]
        if rooms[0] >= MESSAGE_ID_ROOM > rooms[1]:
            return name
    raise AssertionError('no such name')  # pragma: no cover


def test_verp_capacity_follows_prefix_and_switch() -> None:
    name = _name_that_fits_only_a_short_prefix()
    text = edit('  marketing:\n    use_case: newsletter', f'  {name}:\n    use_case: newsletter')
    assert _found(text, 'verp-capacity') == []
    section = f'\nfeedback: {{streams: {{{name}: {{verp: {{prefix: abcdefgh}}}}}}}}\nmonitoring:'
    long_prefix = edit('\nmonitoring:', section, text)
    [problem] = _found(long_prefix, 'verp-capacity')
    assert format_path(problem.path) == f'feedback.streams.{name}.verp.prefix'
    off = long_prefix.replace('prefix: abcdefgh', 'prefix: abcdefgh, enabled: false')
    assert _found(off, 'verp-capacity') == []


def test_spec_reference_documents_the_section_with_durations() -> None:
    text = reference_markdown()
    assert '| `feedback` | `Feedback` | see below |' in text
    assert '| `soft_bounce_window` | `duration` | `30d` |' in text
    assert '| `hostname` | `host-name` | required | Host name of the endpoint' in text


@pytest.mark.parametrize(('age', 'ok'), [('29d', False), ('30d', True), ('3650d', True), ('3651d', False)])
def test_unsubscribe_links_must_work_for_30_days(age: str, ok: bool) -> None:
    # CAN-SPAM (15 U.S.C. 7704(a)(3)): the opt-out must work for 30 days after the message was sent
    text = _feedback(f'{{unsubscribe: {{hostname: unsubscribe.testco.example, {TLS}, token_max_age: {age}}}}}')
    found = [(p.check, format_path(p.path)) for p in problems(text) if p.severity == 'error']
    assert found == ([] if ok else [('schema-value-error', 'feedback.unsubscribe.token_max_age')])


def test_addresses_of_ours_in_a_return_path_domain_must_not_look_like_verp() -> None:
    """The bounce MX refuses such an address unless it verifies (ingest return-path-policy): reports to it are lost."""
    text = edit(
        '\nmonitoring:',
        '\ninbound: {fbl_address: B-fbl@bounces.testco.example, tls_rpt: {rua: [b-tls@bounces.news.testco.example]}}'
        '\nmonitoring:',
        edit(
            'rua: [dmarc@testco.example]}\n  - domain: news',
            'ruf: [b-dmarc@bounces.testco.example]}\n  - domain: news',
        ),
    )
    found = _found(text, 'return-path-reserved-local-part')
    assert sorted(format_path(problem.path) for problem in found) == [
        'inbound.fbl_address',
        'inbound.tls_rpt.rua[0]',
        'sending_domains[0].dmarc.ruf[0]',
    ]
    assert all(problem.severity == 'error' and problem.line is not None for problem in found)
    assert 'starts with "b-", the VERP prefix and separator of stream' in found[0].message
    # The same names elsewhere are fine: another local part, another domain, or another prefix for the stream.
    fine = edit('\nmonitoring:', '\ninbound: {fbl_address: fbl@bounces.testco.example}\nmonitoring:', BASE)
    assert _found(fine, 'return-path-reserved-local-part') == []
    elsewhere = edit('\nmonitoring:', '\ninbound: {fbl_address: b-fbl@testco.example}\nmonitoring:', BASE)
    assert _found(elsewhere, 'return-path-reserved-local-part') == []
    other_prefix = edit(
        '\nmonitoring:',
        '\ninbound: {fbl_address: b-fbl@bounces.testco.example}\nmonitoring:',
        _feedback('{streams: {transactional: {verp: {prefix: t}}}}'),
    )
    assert _found(other_prefix, 'return-path-reserved-local-part') == []


def _fbl(address: str, text: str = BASE) -> list[Problem]:
    found = problems(edit('\nmonitoring:', f'\ninbound: {{fbl_address: {address}}}\nmonitoring:', text))
    return [problem for problem in found if problem.check == 'fbl-address-domain']


def test_fbl_address_domain_only_where_we_would_publish_its_mx() -> None:
    assert [format_path(p.path) for p in _fbl('fbl@testco.example')] == ['inbound.fbl_address']  # client domain
    assert _fbl('fbl@complaints.testco.example') == []  # a name of its own
    other = edit(
        '  domains: [testco.example]\n  postmaster',
        '  domains: [testco.example, testco-corp.example]\n  postmaster',
        BASE,
    )
    assert _fbl('fbl@testco-corp.example', other) == []  # outside the zones: no MX of ours (a warning elsewhere)
    bounce = edit('- domain: testco.example\n', '- domain: testco.example\n    return_path: rp.testco.example\n', BASE)
    client = edit(
        '  domains: [testco.example]\n  postmaster',
        '  domains: [testco.example, rp.testco.example]\n  postmaster',
        bounce,
    )
    assert _fbl('fbl@rp.testco.example', client) == []  # a return-path domain: its MX is the bounce MX anyway
