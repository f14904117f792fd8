"""The same spec rendered for Postfix and for PowerMTA means the same thing.

The high-volume example is rendered twice, once with ``mta: postfix`` and once with ``mta: powermta``; for
every host and stream both MTAs must send from the same IPs, apply the same per-ISP limits, and retry and
expire on the same schedule (each within what the MTA can express; see docs/postfix.md and docs/powermta.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from mailinfra_iac import Spec, parse_spec
from mailinfra_iac.catalogue.isps import DEFAULT_LIMITS
from mailinfra_iac.model import parse_duration
from mailinfra_iac.render.base import RenderContext
from mailinfra_iac.render.rolevars.postfix import PostfixVars, rate_delay
from mailinfra_iac.render.rolevars.powermta import PowerMtaVars, retry_schedule

from ..conftest import AS_OF, ROOT, TEST_DKIM

EXAMPLE = ROOT / 'examples' / 'high-volume-powermta.yml'
HOSTS = ['pmta1', 'pmta2']  # pmta3's addresses are allocated by Terraform: no MTA config until they exist


def _render(mta: str) -> tuple[Spec, dict[str, dict[str, Any]]]:
    text = EXAMPLE.read_text().replace('\nmta: powermta\n', f'\nmta: {mta}\n')
    spec = parse_spec(text, 'high-volume.yml', as_of=AS_OF)
    context = RenderContext(spec.deployment, spec.facts, 'high-volume.yml', {}, TEST_DKIM)
    role = PostfixVars() if mta == 'postfix' else PowerMtaVars()
    return spec, {host: role.host_vars(context, host) for host in HOSTS}


@pytest.fixture(scope='module')
def both() -> tuple[Spec, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    spec, postfix = _render('postfix')
    _, powermta = _render('powermta')
    return spec, postfix, powermta


def _option(transport: dict[str, Any], name: str) -> str:
    return next(value for key, value in transport['options'] if key == name)


def _parameter(transport: dict[str, Any], suffix: str) -> str:
    return next(value for key, value in transport['parameters'] if key.endswith(suffix))


def _seconds(value: str) -> int:
    return parse_duration(value)


def test_same_ips_per_stream(both: tuple[Spec, Any, Any]) -> None:
    spec, postfix, powermta = both
    for host in HOSTS:
        by_postfix = {
            instance['stream']: sorted({_option(t, 'smtp_bind_address') for t in instance['transports']})
            for instance in postfix[host]['postfix__instances']
        }
        addresses = {vmta['name']: vmta['address'] for vmta in powermta[host]['powermta__virtual_mtas']}
        by_powermta = {
            pool['name']: sorted(addresses[member] for member in pool['members'])
            for pool in powermta[host]['powermta__pools']
        }
        expected = {
            stream.name: sorted(ip.address for ip in stream.ips if ip.host == host and ip.address)
            for stream in spec.facts.streams_of_host(host)
        }
        assert by_postfix == by_powermta == expected


def test_same_per_isp_limits(both: tuple[Spec, Any, Any]) -> None:
    spec, postfix, powermta = both
    compared = 0
    for host in HOSTS:
        queues = powermta[host]['powermta__queues']
        for instance in postfix[host]['postfix__instances']:
            stream = spec.facts.streams[instance['stream']]
            pmta = {queue['isp']: queue for queue in queues[stream.name] if queue.get('isp')}
            for transport in instance['transports']:
                isp = transport['isp']
                if isp is None or isp not in pmta:
                    continue
                limits = stream.isps[isp].limits
                queue = pmta[isp]
                # connections: PowerMTA's max-smtp-out per queue; Postfix's concurrency per IP x ISP transport,
                # which a rate delay forces to 1 (the delay then carries the hourly limit)
                delay = rate_delay(limits)
                assert queue['max_smtp_out'] == limits.max_connections
                assert int(_parameter(transport, '_destination_concurrency_limit')) == (
                    1 if delay else limits.max_connections
                )
                # messages per connection and per hour
                assert queue['max_msg_per_connection'] == limits.messages_per_connection
                assert int(_option(transport, 'smtp_connection_reuse_count_limit')) == limits.messages_per_connection
                assert queue['max_msg_rate'] == f'{limits.messages_per_hour}/h'
                if delay:
                    assert 3600 // delay <= limits.messages_per_hour
                    assert _seconds(_parameter(transport, '_transport_rate_delay')) == delay
                compared += 1
    assert compared >= 2 * 8  # every catalogued ISP with recipient domains, on both hosts


def test_same_retry_and_expiry_per_category(both: tuple[Spec, Any, Any]) -> None:
    spec, postfix, powermta = both
    for host in HOSTS:
        queues = powermta[host]['powermta__queues']
        for instance in postfix[host]['postfix__instances']:
            stream = spec.facts.streams[instance['stream']]
            lifetime = _seconds(instance['maximal_queue_lifetime'])
            assert lifetime == stream.retry.queue_lifetime
            assert _seconds(instance['minimal_backoff_time']) == stream.retry.min_backoff
            assert _seconds(instance['maximal_backoff_time']) == stream.retry.max_backoff
            for queue in queues[stream.name]:
                assert _seconds(queue['bounce_after']) == lifetime
                isp = stream.isps.get(queue.get('isp') or '')
                limits = isp.limits if isp is not None else DEFAULT_LIMITS  # the <domain *> queue
                retry = [_seconds(part) for part in queue['retry_after'].split(',')]
                assert retry == retry_schedule(stream, limits)
                assert all(stream.retry.min_backoff <= value for value in retry)
            for name, category in stream.categories.items():
                if category.retry:  # retried categories expire when the queue lifetime is up, in both MTAs
                    assert category.expire_after == lifetime, name


def test_permanent_reply_rules_bounce_in_postfix_and_are_declared_in_powermta(both: tuple[Spec, Any, Any]) -> None:
    spec, postfix, powermta = both
    for host in HOSTS:
        for instance in postfix[host]['postfix__instances']:
            stream = spec.facts.streams[instance['stream']]
            results = [entry['result'][0] for entry in instance['status_filter']]
            # one smtp_delivery_status_filter line per reply rule, 5.x.y for "bounce", 4.x.y for "defer"
            assert results == ['5' if rule.action == 'bounce' else '4' for rule in stream.reply_rules]
        notes = '\n'.join(powermta[host]['powermta__notes'])
        # PowerMTA cannot rewrite a reply class; its configuration says which rules it could not express
        for stream in spec.facts.streams_of_host(host):
            for rule in stream.reply_rules:
                if rule.action == 'bounce':
                    assert f'/{rule.pattern}/ -> bounce ({rule.category}) is not expressible' in notes
