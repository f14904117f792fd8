"""Postfix and PowerMTA deliver the same plan: each rendered configuration is read back and compared with it.

The high-volume example is rendered twice (``renderers=['mta']``), once with ``mta: postfix`` and once with
``mta: powermta``, with addresses for the IPs Terraform would allocate, so that every host has a configuration. The
files are parsed as the MTA would read them (Postfix's main.cf, master.cf and routing tables; PowerMTA's blocks),
and for every entry of ``facts.plan`` (stream x sending IP x ISP) the limits, retries and back-off rules found there
are compared with the plan, each within what the MTA can express (docs/postfix.md, docs/powermta.md). No renderer
module is imported: what both files agree with is the plan, so they agree with each other.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from mailinfra_agent.powermta import parse_rate
from mailinfra_iac import Spec, parse_spec, render_files
from mailinfra_iac.facts import DEFAULT_ISP, Backoff, PlanEntry
from mailinfra_iac.model import parse_duration

from ..conftest import AS_OF, ROOT, TEST_DKIM

EXAMPLE = ROOT / 'examples' / 'high-volume-powermta.yml'
HOURLY_DELAY_THRESHOLD = 3600  # docs/postfix.md: below 3600/h per IP, a rate delay of ceil(3600 / limit) seconds
SASL_USERS = {'marketing': ['app-news', 'app-news2']}
"""SMTP AUTH users added to the example, so that both MTAs' authenticated injection is compared too."""


@dataclass
class Rendered:
    spec: Spec
    files: dict[str, str]
    addresses: dict[str, str]
    """IP id -> the address the render used (the spec's, or the one handed in for an IP Terraform allocates)."""

    @property
    def hosts(self) -> list[str]:
        hosts = sorted({ip.host for ip in self.spec.facts.ips if ip.host is not None})
        assert hosts == ['pmta1', 'pmta2', 'pmta3']
        return hosts

    def stream_ips(self, host: str, stream: str) -> dict[str, str]:
        """Address -> HELO name of the stream's IPs on the host, from the facts."""
        ids = set(self.spec.facts.plan.for_stream(stream).ips)
        return {self.addresses[ip.id]: ip.helo for ip in self.spec.facts.ips_of_host(host) if ip.id in ids}

    def entries(self, host: str) -> list[tuple[PlanEntry, str]]:
        """The plan's entries of the host's IPs, with the IP's address."""
        ids = {ip.id for ip in self.spec.facts.ips_of_host(host)}
        return [(entry, self.addresses[entry.ip]) for entry in self.spec.facts.plan.entries if entry.ip in ids]


def _render(mta: str) -> Rendered:
    text = EXAMPLE.read_text().replace('\nmta: powermta\n', f'\nmta: {mta}\n')
    assert f'\nmta: {mta}\n' in text
    injection = '    injection: {port: 2526, networks: [10.8.0.0/16]}\n'
    assert injection in text
    users = ', '.join(SASL_USERS['marketing'])
    text = text.replace(injection, injection.replace('}', f', sasl_users: [{users}]}}'))
    spec = parse_spec(text, 'high-volume.yml', as_of=AS_OF)
    allocated = [ip.id for ip in spec.facts.ips if ip.address is None]
    given = {ip_id: f'192.0.2.{n}' for n, ip_id in enumerate(allocated, 100)}
    files = render_files(spec, renderers=['mta'], addresses=given, dkim=TEST_DKIM)
    addresses = {ip.id: ip.address or given[ip.id] for ip in spec.facts.ips}
    return Rendered(spec, {path: output.content.decode() for path, output in files.items()}, addresses)


@pytest.fixture(scope='module')
def postfix() -> Rendered:
    return _render('postfix')


@pytest.fixture(scope='module')
def powermta() -> Rendered:
    return _render('powermta')


# --- Postfix: main.cf, master.cf and the routing tables ------------------------------------------------------------


@dataclass
class PostfixInstance:
    main: dict[str, str]
    services: dict[str, dict[str, Any]]
    routes: dict[tuple[str, str], str]
    """(sending address, ISP) -> transport, from transport_ip_isp."""
    isp_domains: dict[str, list[str]]
    """ISP -> recipient domains, from transport_isp."""
    defaults: dict[str, str]
    """sending address -> default transport (mail to domains of no ISP)."""
    filter_results: list[str] = field(default_factory=list)
    """First digit of each smtp_delivery_status_filter result, in order."""


def _main_cf(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        if line and not line.startswith('#') and ' = ' in line:
            name, _, value = line.partition(' = ')
            values[name] = value
    return values


def _master_cf(text: str) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith('#'):
            continue
        if line[0].isspace():
            option = line.split()
            assert option[0] == '-o', line
            name, _, value = option[1].partition('=')
            current['options'][name] = value
            continue
        fields = line.split()
        current = {'type': fields[1], 'maxproc': fields[6], 'command': fields[7], 'options': {}}
        services[fields[0]] = current
    return services


def _table(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip() and not line.startswith('#')]


def _postfix_instance(files: dict[str, str], host: str, stream: str) -> PostfixInstance:
    directory = f'mta/{host}/etc/postfix-{stream}'
    main = _main_cf(files[f'{directory}/main.cf'])
    services = _master_cf(files[f'{directory}/master.cf'])
    bind = {
        name: service['options']['smtp_bind_address']
        for name, service in services.items()
        if service['command'] == 'smtp' and 'smtp_bind_address' in service['options']
    }
    randmap = re.fullmatch(r'randmap:\{(.*)\}', main.get('sender_dependent_default_transport_maps', ''))
    default_names = randmap.group(1).split(', ') if randmap else [main['default_transport']]
    defaults = {bind[name.rstrip(':')]: name.rstrip(':') for name in default_names}
    routes, isp_domains = {}, {}
    if f'{directory}/transport_ip_isp' in files:
        for key, transport in _table(files[f'{directory}/transport_ip_isp']):
            _, isp = key.split(',')
            routes[(bind[transport.rstrip(':')], isp)] = transport.rstrip(':')
        for pattern, isp in _table(files[f'{directory}/transport_isp']):
            inner = re.fullmatch(r'/@\((.*)\)\$/', pattern)
            assert inner is not None, pattern
            isp_domains[isp] = [re.sub(r'\\(.)', r'\1', domain) for domain in inner.group(1).split('|')]
    results = [
        line.split()[0][0] for line in files[f'{directory}/delivery_status_filter'].splitlines() if line[:2] == '  '
    ]
    return PostfixInstance(main, services, routes, isp_domains, defaults, results)


def test_postfix_sends_each_stream_from_its_ips(postfix: Rendered) -> None:
    for host in postfix.hosts:
        for stream in postfix.spec.facts.streams_of_host(host):
            instance = _postfix_instance(postfix.files, host, stream.name)
            bound = {
                service['options']['smtp_bind_address']: service['options']['smtp_helo_name']
                for service in instance.services.values()
                if service['command'] == 'smtp' and 'smtp_bind_address' in service['options']
            }
            assert bound == postfix.stream_ips(host, stream.name), (host, stream.name)
            assert instance.main['smtp_bind_address_enforce'] == 'yes'


def _postfix_expected(entry: PlanEntry, isp_transport: bool) -> dict[str, Any]:
    limits = entry.limits
    delay = math.ceil(3600 / limits.messages_per_hour) if limits.messages_per_hour < HOURLY_DELAY_THRESHOLD else 0
    return {
        'concurrency': 1 if delay else limits.max_connections,
        'maxproc': str(1 if delay else limits.max_connections) if isp_transport else '-',
        'recipients': limits.recipients_per_message,
        'per_connection': limits.messages_per_connection,
        'rate_delay': delay or None,
        'tls': 'encrypt' if limits.require_tls else None,
    }


def _postfix_actual(instance: PostfixInstance, transport: str) -> dict[str, Any]:
    service, main = instance.services[transport], instance.main
    delay = main.get(f'{transport}_transport_rate_delay')
    return {
        'concurrency': int(main[f'{transport}_destination_concurrency_limit']),
        'maxproc': service['maxproc'],
        'recipients': int(main[f'{transport}_destination_recipient_limit']),
        'per_connection': int(service['options']['smtp_connection_reuse_count_limit']),
        'rate_delay': parse_duration(delay) if delay else None,
        'tls': service['options'].get('smtp_tls_security_level'),
    }


def test_postfix_accepts_injection_as_the_spec_says(postfix: Rendered) -> None:
    for host in postfix.hosts:
        for stream in postfix.spec.facts.streams_of_host(host):
            instance = _postfix_instance(postfix.files, host, stream.name)
            injection = stream.injection
            assert instance.services[str(injection.port)]['command'] == 'smtpd'  # every address (inet_interfaces)
            assert instance.main['inet_interfaces'] == 'all'
            assert instance.main['mynetworks'].split(', ') == list(injection.networks)
            assert instance.main['smtpd_sasl_auth_enable'] == ('yes' if injection.sasl_users else 'no')
            if injection.sasl_users:
                # the users are in this instance's own sasldb, so a login injects into this stream only
                assert f'mta/{host}/etc/postfix-{stream.name}/sasl/smtpd.conf' in postfix.files
    assert any(stream.injection.sasl_users for stream in postfix.spec.facts.streams.values())


def test_postfix_transports_carry_the_plans_limits(postfix: Rendered) -> None:
    spec, files = postfix.spec, postfix.files
    compared, delayed, tls = 0, 0, 0
    for host in postfix.hosts:
        streams = spec.facts.streams_of_host(host)
        instances = {stream.name: _postfix_instance(files, host, stream.name) for stream in streams}
        for entry, address in postfix.entries(host):
            instance = instances[entry.stream]
            plan = spec.facts.plan.for_stream(entry.stream).isp(entry.isp)
            if entry.isp == DEFAULT_ISP:
                transport = instance.defaults[address]
            elif not plan.recipient_domains:
                # known only by MX host names: Postfix routes before the MX lookup, the default transport applies
                assert (address, entry.isp) not in instance.routes and entry.isp not in instance.isp_domains
                compared += 1
                continue
            else:
                transport = instance.routes[(address, entry.isp)]
                assert instance.isp_domains[entry.isp] == list(plan.recipient_domains)
            expected = _postfix_expected(entry, entry.isp != DEFAULT_ISP)
            assert _postfix_actual(instance, transport) == expected, (host, entry)
            assert instance.services[transport]['options']['smtp_bind_address'] == address
            compared += 1
            delayed += expected['rate_delay'] is not None
            tls += expected['tls'] is not None
    assert compared == sum(len(postfix.entries(host)) for host in postfix.hosts)
    assert delayed and tls  # both mappings are exercised


def test_postfix_retries_are_the_plans_queue_timing(postfix: Rendered) -> None:
    for host in postfix.hosts:
        for stream in postfix.spec.facts.streams_of_host(host):
            main = _postfix_instance(postfix.files, host, stream.name).main
            retry = postfix.spec.facts.plan.for_stream(stream.name).retry
            # one schedule per instance (Postfix has no per-provider or per-category retry): the stream's bounds
            assert parse_duration(main['minimal_backoff_time']) == retry.min_backoff
            assert parse_duration(main['maximal_backoff_time']) == retry.max_backoff
            assert parse_duration(main['maximal_queue_lifetime']) == retry.queue_lifetime
            assert parse_duration(main['bounce_queue_lifetime']) == retry.queue_lifetime


def test_postfix_status_filter_applies_the_plans_reply_rules(postfix: Rendered) -> None:
    for host in postfix.hosts:
        for stream in postfix.spec.facts.streams_of_host(host):
            instance = _postfix_instance(postfix.files, host, stream.name)
            rules = postfix.spec.facts.plan.for_stream(stream.name).reply_rules
            # one filter entry per reply rule, in order: 5.x.y for "bounce", 4.x.y for "defer"
            assert instance.filter_results == ['5' if rule.action == 'bounce' else '4' for rule in rules]


# --- PowerMTA: /etc/pmta/config -------------------------------------------------------------------------------------


@dataclass
class Block:
    tag: str
    argument: str
    directives: list[list[str]] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    def value(self, name: str) -> str | None:
        values = [' '.join(words[1:]) for words in self.directives if words[0] == name]
        assert len(values) <= 1, (self.tag, self.argument, name)
        return values[0] if values else None

    def children(self, tag: str) -> dict[str, Block]:
        return {block.argument: block for block in self.blocks if block.tag == tag}


def _pmta_parse(text: str) -> Block:
    root = Block('', '')
    stack = [root]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        if closing := re.fullmatch(r'</([\w-]+)>', line):
            assert stack.pop().tag == closing.group(1)
        elif opening := re.fullmatch(r'<([\w-]+)(?: (.*))?>', line):
            block = Block(opening.group(1), opening.group(2) or '')
            stack[-1].blocks.append(block)
            stack.append(block)
        else:
            stack[-1].directives.append(line.split(' '))
    assert stack == [root]
    return root


def _pmta(files: dict[str, str], host: str) -> tuple[Block, str]:
    text = files[f'mta/{host}/pmta/config']
    notes = '\n'.join(line for line in text.splitlines() if line.startswith('#   - '))
    return _pmta_parse(text), notes


def _slashes(pattern: str) -> str:
    return re.sub(r'(?<!\\)/', r'\/', pattern)


def test_powermta_sends_each_stream_from_its_ips(powermta: Rendered) -> None:
    for host in powermta.hosts:
        root, _ = _pmta(powermta.files, host)
        vmtas = root.children('virtual-mta')
        for stream in powermta.spec.facts.streams_of_host(host):
            pool = root.children('virtual-mta-pool')[stream.name]
            members = [words[1] for words in pool.directives if words[0] == 'virtual-mta']
            sources = dict((vmtas[member].value('smtp-source-host') or '').split() for member in members)
            assert sources == powermta.stream_ips(host, stream.name), (host, stream.name)


def test_powermta_accepts_injection_as_the_spec_says(powermta: Rendered) -> None:
    for host in powermta.hosts:
        root, _ = _pmta(powermta.files, host)
        streams = powermta.spec.facts.streams_of_host(host)
        listeners = [' '.join(words[1:]) for words in root.directives if words[0] == 'smtp-listener']
        assert listeners == [f'0/0:{stream.injection.port}' for stream in streams], host  # every address
        sources = root.children('source')
        for stream in streams:
            for network in stream.injection.networks:
                source = sources[network]
                assert source.value('smtp-service') == 'yes'
                assert source.value('always-allow-relaying') == 'yes'  # Postfix: mynetworks may relay
                # the stream's pool is the default, or the X-Virtual-MTA header selects it
                assert source.value('default-virtual-mta') == stream.name or (
                    source.value('process-x-virtual-mta') == 'yes'
                )
            auth = sources.get(f'{{auth-{stream.name}}}')
            if not stream.injection.sasl_users:
                assert auth is None
                continue
            # a pool per login: the login selects the stream's source; the header cannot choose another pool
            assert auth is not None
            assert auth.value('require-auth') == 'true'
            assert auth.value('default-virtual-mta') == stream.name
            assert auth.value('process-x-virtual-mta') == 'no'
            assert auth.value('always-allow-relaying') == 'yes'
            users = ', '.join(stream.injection.sasl_users)
            assert (
                f'# <smtp-user> blocks of {users}: written on the host by the role'
                in powermta.files[f'mta/{host}/pmta/config']
            )
        network_sources = {name for name in sources if not name.startswith('{')}
        assert network_sources == {network for stream in streams for network in stream.injection.networks}
    assert any(stream.injection.sasl_users for stream in powermta.spec.facts.streams.values())


def _per_hour(rate: str | None) -> float:
    """Messages per hour of a PowerMTA rate in any confirmed form (``600/h``, ``10/min``, ``100/10m``)."""
    count, seconds = parse_rate(rate or '')
    return count * 3600 / seconds


RATE_AND_BACKOFF = re.compile(r'^(?:backoff-.*|.*-rate|retry-.*|bounce-after|max-.*)$')
"""Queue directives about rates, back-off, retries and limits: each one rendered must be compared below."""
COMPARED = frozenset(
    {
        'max-smtp-out',
        'max-msg-per-connection',
        'max-msg-rate',
        'retry-after',
        'bounce-after',
        'backoff-max-msg-rate',
        'backoff-retry-after',
        'backoff-to-normal-after',
    }
)


def _pmta_expected(entry: PlanEntry, queue_lifetime: int) -> dict[str, Any]:
    limits = entry.limits
    return {
        'max-smtp-out': limits.max_connections,
        'max-msg-per-connection': limits.messages_per_connection,
        'max-msg-rate': limits.messages_per_hour,
        'retry-after': list(entry.retry_after),
        'bounce-after': queue_lifetime,
        'backoff-max-msg-rate': limits.backoff_messages_per_hour,
        'backoff-retry-after': limits.backoff_retry_after,
        'backoff-to-normal-after': limits.backoff_to_normal_after,
        'use-starttls': 'yes',  # requiring TLS is not rendered (single source): noted in the header (checked below)
        'patterns': [_pmta_reply(rule) for rule in entry.backoff],
    }


def _pmta_reply(rule: Backoff) -> tuple[str, str, int | None]:
    """A rule as PowerMTA can apply it (mta.md §1.2): suspend_ip disables the source IP for the rule's duration;
    backoff and suspend put the queue in backoff mode (a suspend has no confirmed equivalent: noted in the header)."""
    if rule.action == 'suspend_ip':
        return _slashes(rule.pattern), 'disable-source-ip', rule.duration
    return _slashes(rule.pattern), 'mode=backoff', None


def _pmta_reply_actual(words: list[str]) -> tuple[str, str, int | None]:
    assert words[0] == 'reply'
    found = re.fullmatch(r'/(.*)/ (mode=backoff|disable-source-ip reenable-after=(\S+))', ' '.join(words[1:]))
    assert found, words
    action = found.group(2).split()[0]
    return found.group(1), action, parse_duration(found.group(3)) if found.group(3) else None


def _pmta_actual(queue: Block, pattern_lists: dict[str, Block]) -> dict[str, Any]:
    def seconds(name: str) -> int:
        return parse_duration(queue.value(name) or '')

    pattern_list = queue.value('smtp-pattern-list')
    patterns = pattern_lists[pattern_list].directives if pattern_list else []
    rendered = {words[0] for words in queue.directives if RATE_AND_BACKOFF.match(words[0])}
    assert rendered == COMPARED, f'not compared with the plan: {sorted(rendered - COMPARED)}'
    return {
        'max-smtp-out': int(queue.value('max-smtp-out') or 0),
        'max-msg-per-connection': int(queue.value('max-msg-per-connection') or 0),
        'max-msg-rate': _per_hour(queue.value('max-msg-rate')),
        'retry-after': [parse_duration(part) for part in (queue.value('retry-after') or '').split(',')],
        'bounce-after': seconds('bounce-after'),
        'backoff-max-msg-rate': _per_hour(queue.value('backoff-max-msg-rate')),
        'backoff-retry-after': seconds('backoff-retry-after'),
        'backoff-to-normal-after': seconds('backoff-to-normal-after'),
        'use-starttls': queue.value('use-starttls'),
        'patterns': [_pmta_reply_actual(words) for words in patterns],
    }


def test_powermta_queues_carry_the_plans_limits_retries_and_backoff(powermta: Rendered) -> None:
    compared = 0
    for host in powermta.hosts:
        root, notes = _pmta(powermta.files, host)
        vmtas = {
            (vmta.value('smtp-source-host') or '').split()[0]: vmta for vmta in root.children('virtual-mta').values()
        }
        rollups = {name[1:]: block.value('queue-to') or '' for name, block in root.children('domain').items()}
        macros = {words[1]: words[2].split(',') for words in root.directives if words[0] == 'domain-macro'}
        pattern_lists = root.children('smtp-pattern-list')
        for entry, address in powermta.entries(host):
            stream = powermta.spec.facts.plan.for_stream(entry.stream)
            plan = stream.isp(entry.isp)
            queues = vmtas[address].children('domain')
            if entry.isp != DEFAULT_ISP and not plan.recipient_domains:
                # known only by MX host names: no rollup, the <domain *> limits apply, and the header says so
                assert entry.isp not in rollups
                assert re.search(rf'^#   - {entry.isp}: recognised only by MX', notes, re.M)
                compared += 1
                continue
            if entry.isp == DEFAULT_ISP:
                queue = queues['*']
            else:
                assert set(plan.recipient_domains) <= set(macros[entry.isp])
                queue = queues[rollups[entry.isp]]
            expected = _pmta_expected(entry, stream.retry.queue_lifetime)
            assert _pmta_actual(queue, pattern_lists) == expected, (host, entry)
            if entry.limits.require_tls:
                assert re.search(rf'^#   - require_tls \([^)]*\b{entry.isp}\b', notes, re.M)
            compared += 1
    assert compared == sum(len(powermta.entries(host)) for host in powermta.hosts)


def test_powermta_declares_the_reply_rules_it_cannot_apply(powermta: Rendered) -> None:
    for host in powermta.hosts:
        _, notes = _pmta(powermta.files, host)
        for stream in powermta.spec.facts.streams_of_host(host):
            for rule in powermta.spec.facts.plan.for_stream(stream.name).reply_rules:
                if rule.action == 'bounce':
                    assert f'/{rule.pattern}/ -> bounce ({rule.category}) is not expressible' in notes


def test_powermta_declares_the_backoff_rules_it_cannot_apply_alike(powermta: Rendered) -> None:
    """Thresholds, suspensions and failover have no confirmed PowerMTA form: each such rule is named in the header."""
    declared = 0
    for host in powermta.hosts:
        _, notes = _pmta(powermta.files, host)
        for stream in powermta.spec.facts.streams_of_host(host):
            plan = powermta.spec.facts.plan.for_stream(stream.name)
            for isp in plan.isps.values():
                for rule in (rule for rule in isp.backoff if rule.origin == 'isp'):
                    if rule.action == 'suspend':
                        assert re.search(rf'suspend [^\n]*/{re.escape(rule.pattern)}/ [^\n]*as mode=backoff', notes)
                        declared += 1
                    if rule.action == 'suspend_ip':
                        assert re.search(
                            rf'suspend_ip: [^\n]*/{re.escape(rule.pattern)}/[^\n]* as disable-source-ip', notes
                        )
                        declared += 1
                    if rule.failover:
                        assert re.search(rf'failover of [^\n]*/{re.escape(rule.pattern)}/', notes), rule
                        declared += 1
                    if not rule.first_match:
                        trigger = f'/{rule.pattern}/ after {rule.trigger_count} in '
                        assert re.search(rf'triggers [^\n]*{re.escape(trigger)}[^\n]*acts on the first match', notes)
                        declared += 1
    assert declared > 0


def test_postfix_hosts_shaping_service_gets_the_same_backoff_rules(postfix: Rendered, powermta: Rendered) -> None:
    """Postfix does not react to replies itself: the hosts' shaping service enforces the rules of the agent contract.

    The contract's rules per stream x ISP are the plan's, in its order, with trigger, duration and failover, and the
    PowerMTA pattern lists above hold the same patterns: both MTAs start from one rule list.
    """
    compared = 0
    for host in postfix.hosts:
        contract = json.loads(postfix.files[f'mta/{host}/etc/mailinfra/agent.json'])
        for stream in contract['streams']:
            plan = postfix.spec.facts.plan.for_stream(stream['name'])
            for isp in stream['isps']:
                expected = [
                    {
                        'pattern': rule.pattern,
                        'action': rule.action,
                        'duration': rule.duration,
                        'trigger_count': rule.trigger_count,
                        'trigger_window': rule.trigger_window,
                        'failover': rule.failover,
                    }
                    for rule in plan.isp(isp['isp']).backoff
                ]
                actual = [{key: rule[key] for key in expected[0]} for rule in isp['backoff_rules']] if expected else []
                assert actual == expected, (host, stream['name'], isp['isp'])
                pmta = powermta.spec.facts.plan.for_stream(stream['name']).isp(isp['isp']).backoff
                assert [rule.pattern for rule in pmta] == [rule['pattern'] for rule in expected]
                compared += 1
    assert compared > 0
