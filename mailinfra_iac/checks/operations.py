"""Retry timing, queue and rate thresholds, alert delivery, DNSBL zones and resolvers."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from mailinfra_agent.dnsbl import PUBLIC_RESOLVERS
from mailinfra_agent.dnsbl.catalogue import load_catalogue, zone_key

from ..model import format_duration
from ..model.base import NOT_SHOWN, parse_email, url_has_userinfo
from ..problems import Path, Problem
from .base import Check, CheckContext


def retry_schedule(ctx: CheckContext) -> Iterator[Problem]:
    for name, stream in ctx.facts.streams.items():
        retry = stream.retry
        if retry.min_backoff > retry.max_backoff:
            yield ctx.problem(
                'retry-schedule',
                f'min_backoff {format_duration(retry.min_backoff)} is longer than max_backoff '
                f'{format_duration(retry.max_backoff)}',
                ('streams', name, 'retry'),
                expected='min_backoff <= max_backoff',
            )
        if retry.queue_lifetime < retry.min_backoff:
            yield ctx.problem(
                'retry-schedule',
                f'queue_lifetime {format_duration(retry.queue_lifetime)} ends before the first retry '
                f'({format_duration(retry.min_backoff)})',
                ('streams', name, 'retry'),
                expected='queue_lifetime >= min_backoff',
            )


def queue_thresholds(ctx: CheckContext) -> Iterator[Problem]:
    queue = ctx.deployment.monitoring.queue
    if queue.depth_warning > queue.depth_critical:
        yield ctx.problem(
            'queue-thresholds',
            f'depth_warning {queue.depth_warning} is above depth_critical {queue.depth_critical}',
            ('monitoring', 'queue', 'depth_warning'),
            expected='depth_warning <= depth_critical',
            value=queue.depth_warning,
        )
    if queue.age_warning > queue.age_critical:
        yield ctx.problem(
            'queue-thresholds',
            f'age_warning {format_duration(queue.age_warning)} is above age_critical '
            f'{format_duration(queue.age_critical)}',
            ('monitoring', 'queue', 'age_warning'),
            expected='age_warning <= age_critical',
        )
    for name, override in queue.streams.items():
        path = ('monitoring', 'queue', 'streams', name)
        depth = (override.depth_warning or queue.depth_warning, override.depth_critical or queue.depth_critical)
        if depth[0] > depth[1]:
            field = 'depth_warning' if override.depth_warning is not None else 'depth_critical'
            yield ctx.problem(
                'queue-thresholds',
                f'stream {name}: depth_warning {depth[0]} is above depth_critical {depth[1]}'
                + (
                    ''
                    if override.depth_warning is not None and override.depth_critical is not None
                    else ' (one of them inherited from monitoring.queue)'
                ),
                (*path, field),
                expected='depth_warning <= depth_critical',
                value=getattr(override, field),
            )
        age = (
            override.age_warning if override.age_warning is not None else queue.age_warning,
            override.age_critical if override.age_critical is not None else queue.age_critical,
        )
        if age[0] > age[1]:
            field = 'age_warning' if override.age_warning is not None else 'age_critical'
            yield ctx.problem(
                'queue-thresholds',
                f'stream {name}: age_warning {format_duration(age[0])} is above age_critical {format_duration(age[1])}',
                (*path, field),
                expected='age_warning <= age_critical',
            )


EXPECTED_AGE = 'no age threshold for streams on PowerMTA hosts only (watch the depth)'


def queue_age_powermta(ctx: CheckContext) -> Iterator[Problem]:
    """Age thresholds the spec sets for streams whose hosts all run PowerMTA: no alert can use them."""
    queue = ctx.deployment.monitoring.queue
    unwatched = sorted(name for name in ctx.facts.streams if not ctx.facts.queue_age_exported(name))
    because = (
        "PowerMTA's management API gives no message age, so MailinfraQueueAge is not rendered for {}; "
        'MailinfraQueueDepth and MailinfraQueueStuck still watch the queue'
    )
    streams = ('stream ' if len(unwatched) == 1 else 'streams ') + ', '.join(unwatched)
    for field in ('age_warning', 'age_critical'):
        if unwatched and field in queue.model_fields_set:
            yield ctx.problem(
                'queue-age-powermta',
                f'{field} is not watched: ' + because.format(streams),
                ('monitoring', 'queue', field),
                severity='warning',
                expected=EXPECTED_AGE,
            )
    for name, override in queue.streams.items():
        for field in ('age_warning', 'age_critical'):
            if name in unwatched and getattr(override, field) is not None:
                yield ctx.problem(
                    'queue-age-powermta',
                    f'{field} is not watched: ' + because.format(f'stream {name}'),
                    ('monitoring', 'queue', 'streams', name, field),
                    severity='warning',
                    expected=EXPECTED_AGE,
                )


def alert_target(ctx: CheckContext) -> Iterator[Problem]:
    for index, alert in enumerate(ctx.deployment.monitoring.alerts):
        if url_has_userinfo(alert.target):
            # never quoted, whatever the kind: a webhook's would be written into alertmanager.yml in clear
            webhook = alert.kind == 'webhook'
            yield ctx.problem(
                'alert-target',
                f'{alert.kind} alert target holds credentials; '
                + ('put a bearer token in token_file instead' if webhook else 'an e-mail alert goes to an address'),
                ('monitoring', 'alerts', index, 'target'),
                expected='a URL without user name or password, such as https://hooks.example.com/alerts'
                if webhook
                else 'an e-mail address such as ops@example.com',
            )
            continue
        if alert.kind == 'email':
            try:
                parse_email(alert.target)
                continue
            except ValueError:
                expected = 'an e-mail address such as ops@example.com'
        else:
            try:
                url = urlsplit(alert.target)  # raises ValueError for an unclosed "[" (IPv6 literal)
                url.port  # noqa: B018 - raises ValueError for a bad port
                scheme, host = url.scheme, url.hostname
            except ValueError:
                scheme, host = '', None
            if scheme in ('http', 'https') and host and ' ' not in alert.target:
                continue
            expected = 'an http:// or https:// URL with a host, such as https://hooks.example.com/alerts'
        yield ctx.problem(
            'alert-target',
            f'{alert.kind} alert target "{alert.target}" is not '
            + ('an e-mail address' if alert.kind == 'email' else 'a URL'),
            ('monitoring', 'alerts', index, 'target'),
            expected=expected,
            value=alert.target,
        )


def _zones_path(ctx: CheckContext) -> tuple[str, ...]:
    """Where the zone list is written: the deprecated ``dnsbl_zones`` or ``dnsbl.zones``."""
    return (
        ('monitoring', 'dnsbl', 'zones')
        if ctx.deployment.monitoring.dnsbl.zones is not None
        else (
            'monitoring',
            'dnsbl_zones',
        )
    )


def dnsbl_zones(ctx: CheckContext) -> Iterator[Problem]:
    catalogue = load_catalogue()
    dnsbl = ctx.deployment.monitoring.dnsbl
    path = _zones_path(ctx)
    custom = {zone.zone for zone in dnsbl.custom_zones}
    for index, zone in enumerate(ctx.deployment.monitoring.dnsbl_zone_names() or []):
        note = catalogue.refusal(zone)
        known = catalogue.get(zone)
        if note is not None:
            yield ctx.problem(
                'dnsbl-zone',
                f'DNSBL zone {zone} must not be queried: {note}',
                (*path, index),
                expected='a live zone, e.g. ' + ', '.join(z.zone for z in catalogue.default_zones()[:3]),
                value=zone,
            )
        elif known is None and zone not in custom:
            yield ctx.problem(
                'dnsbl-zone',
                f'DNSBL zone {zone} is not in the catalogue: its answers cannot be decoded',
                (*path, index),
                expected='a catalogue zone (docs/monitoring.md lists them), or the zone under '
                'monitoring.dnsbl.custom_zones with its documented codes',
                value=zone,
            )
        elif known is not None and known.key is not None and dnsbl.dqs_key_file is None:
            yield ctx.problem(
                'dnsbl-zone',
                f'DNSBL zone {zone} answers only queries that carry a key, and monitoring.dnsbl.dqs_key_file is unset',
                (*path, index),
                expected='monitoring.dnsbl.dqs_key_file naming the 0600 key file on the monitoring host',
                value=zone,
            )


def _custom_code_problem(decoder: str, code: str) -> str | None:
    """Why ``code`` is not a valid answer of a ``decoder`` zone (None: valid)."""
    if decoder == 'bitmask':
        if not (code.isascii() and code.isdigit()) or int(code) not in {1 << bit for bit in range(8)}:
            return f'"{code}" is not a bit value of the last octet'
        return None
    try:
        address = ipaddress.IPv4Address(code)
    except ValueError:
        return f'"{code}" is not an IPv4 address'
    if address not in _LOOPBACK:
        return f'"{code}" is outside 127.0.0.0/8 (such answers come from resolvers that rewrite NXDOMAIN)'
    return None


_LOOPBACK = ipaddress.IPv4Network('127.0.0.0/8')
_TEST_LABEL = re.compile(r'^(?!-)[a-z0-9-]{1,63}(?<!-)$')


def _test_point_problem(kind: str, zone: str, point: str) -> str | None:
    name = point.lower().rstrip('.')
    if name == zone or name.endswith('.' + zone):
        return f'test point "{point}" includes the zone name'
    labels = name.split('.')
    if kind == 'ip':
        if len(labels) == 4 and all(
            label.isascii() and label.isdigit() and int(label) <= 255 and str(int(label)) == label for label in labels
        ):
            return None
        if len(labels) == 32 and all(len(label) == 1 and label in '0123456789abcdef' for label in labels):
            return None
        return f'test point "{point}" is not a reversed IPv4 address (such as 2.0.0.127) or 32 IPv6 nibbles'
    if len(labels) >= 2 and all(_TEST_LABEL.match(label) for label in labels):
        return None
    return f'test point "{point}" is not a domain name (such as test.example)'


def dnsbl_custom_zones(ctx: CheckContext) -> Iterator[Problem]:
    catalogue = load_catalogue()
    seen: set[str] = set()
    for index, zone in enumerate(ctx.deployment.monitoring.dnsbl.custom_zones):
        where = ('monitoring', 'dnsbl', 'custom_zones', index)
        name = zone_key(zone.zone)
        in_catalogue = catalogue.get(name) is not None
        if in_catalogue or name in seen:
            yield ctx.problem(
                'dnsbl-custom-zone',
                f'custom zone {zone.zone} '
                + ('is already in the catalogue, with its documented codes' if in_catalogue else 'is given twice'),
                (*where, 'zone'),
                expected='a zone that is not in the catalogue, once (select catalogue zones in monitoring.dnsbl.zones)',
                value=zone.zone,
            )
        seen.add(name)
        note = catalogue.refusal(name)
        if note is not None:
            yield ctx.problem(
                'dnsbl-custom-zone',
                f'custom zone {zone.zone} must not be queried: {note}',
                (*where, 'zone'),
                expected='a live zone',
                value=zone.zone,
            )
        unit = 'bit values 1 to 128' if zone.decoder == 'bitmask' else 'addresses in 127.0.0.0/8'
        for field, answers in (('listings', zone.listings), ('errors', zone.errors)):
            for code in answers:
                why = _custom_code_problem(zone.decoder, code)
                if why is None and field == 'listings' and code in ('127.0.0.1', '1'):
                    why = f'"{code}" is the usual "refused" answer and never a listing'
                if why is None and field == 'listings' and code in zone.errors:
                    why = f'"{code}" is both a listing and an error'
                if why is not None:
                    yield ctx.problem(
                        'dnsbl-custom-zone',
                        f'custom zone {zone.zone} {field}: {why}',
                        (*where, field, code),
                        expected=f'{zone.decoder} answers: {unit}' + (', not 127.0.0.1' if field == 'listings' else ''),
                        value=code,
                        at_key=True,
                    )
        if zone.test_point is not None:
            why = _test_point_problem(zone.kind, name, zone.test_point)
            if why is not None:
                yield ctx.problem(
                    'dnsbl-custom-zone',
                    f'custom zone {zone.zone}: {why}',
                    (*where, 'test_point'),
                    expected='the name relative to the zone: a reversed address for an IP zone (2.0.0.127), '
                    'a domain for a domain zone (test.example)',
                    value=zone.test_point,
                )
        for flag, applies_to in (('ipv6', 'ip'), ('host_names', 'domain')):
            if getattr(zone, flag) and zone.kind != applies_to:
                yield ctx.problem(
                    'dnsbl-custom-zone',
                    f'custom zone {zone.zone}: {flag} only applies to {applies_to} zones, and this one is a '
                    f'{zone.kind} zone',
                    (*where, flag),
                    expected=f'{flag}: false (or leave it out) for a {zone.kind} zone',
                    value=True,
                )
        url = zone.delisting_url
        if url is not None and (urlsplit(url).scheme not in ('http', 'https') or not urlsplit(url).netloc):
            yield ctx.problem(
                'dnsbl-custom-zone',
                f'custom zone {zone.zone}: delisting URL "{url}" is not an http(s) URL',
                (*where, 'delisting_url'),
                expected='an http:// or https:// URL',
                value=url,
            )


def _nameserver_address(value: str) -> str | None:
    text = value.strip()
    if text.startswith('['):
        text = text[1:].partition(']')[0]
    elif text.count(':') == 1:
        text = text.partition(':')[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def dnsbl_nameservers(ctx: CheckContext) -> Iterator[Problem]:
    for index, value in enumerate(ctx.deployment.monitoring.dnsbl.nameservers):
        address = _nameserver_address(value)
        path = ('monitoring', 'dnsbl', 'nameservers', index)
        if address is None:
            yield ctx.problem(
                'dnsbl-nameserver',
                f'DNSBL nameserver "{value}" is not an IP address with an optional port',
                path,
                expected='ADDRESS or ADDRESS:PORT ([ADDRESS]:PORT for IPv6), e.g. 127.0.0.1',
                value=value,
            )
        elif address in PUBLIC_RESOLVERS:
            yield ctx.problem(
                'dnsbl-nameserver',
                f'DNSBL nameserver {value} is a public resolver ({PUBLIC_RESOLVERS[address]}): Spamhaus and others '
                'refuse its queries, and the '
                'refusal codes look like listings to careless readers',
                path,
                severity='warning',
                expected='a recursive resolver of your own (the monitoring role installs unbound on 127.0.0.1)',
                value=value,
            )


def monitoring_secret_files(ctx: CheckContext) -> Iterator[Problem]:
    monitoring = ctx.deployment.monitoring
    files: list[tuple[Path, str | None]] = [(('monitoring', 'dnsbl', 'dqs_key_file'), monitoring.dnsbl.dqs_key_file)]
    files += [
        (('monitoring', 'alerts', i, 'token_file'), alert.token_file) for i, alert in enumerate(monitoring.alerts)
    ]
    if monitoring.smarthost is not None:
        files.append((('monitoring', 'smarthost', 'password_file'), monitoring.smarthost.password_file))
    for path, value in files:
        if value is not None and not PurePosixPath(value).is_absolute():
            yield ctx.problem(
                'monitoring-secret-file',
                f'secret file is not an absolute path on the monitoring host ({NOT_SHOWN})',
                path,
                expected='an absolute path such as /etc/mailinfra/secrets/' + str(path[-1]).removesuffix('_file'),
            )
    for index, alert in enumerate(monitoring.alerts):
        if alert.token_file is not None and alert.kind != 'webhook':
            yield ctx.problem(
                'monitoring-secret-file',
                'token_file is for webhook alerts only',
                ('monitoring', 'alerts', index, 'token_file'),
                expected='no token_file on an e-mail alert',
            )


def alert_smarthost(ctx: CheckContext) -> Iterator[Problem]:
    monitoring = ctx.deployment.monitoring
    if monitoring.smarthost is not None:
        return
    for index, alert in enumerate(monitoring.alerts):
        if alert.kind == 'email':
            yield ctx.problem(
                'alert-smarthost',
                f'e-mail alert to {alert.target} has no monitoring.smarthost: alert e-mail must not depend on the '
                'MTAs it watches',
                ('monitoring', 'alerts', index),
                expected='monitoring.smarthost: an independent relay {host, sender}',
            )
            return


def monitoring_streams(ctx: CheckContext) -> Iterator[Problem]:
    streams = sorted(ctx.deployment.streams)
    monitoring = ctx.deployment.monitoring
    for section, names in (('queue', monitoring.queue.streams), ('rates', monitoring.rates.streams)):
        for name in names:
            if name not in ctx.deployment.streams:
                yield ctx.problem(
                    'monitoring-streams',
                    f'monitoring.{section}.streams names stream "{name}", which the spec does not define',
                    ('monitoring', section, 'streams', name),
                    expected='one of: ' + ', '.join(streams),
                    value=name,
                    at_key=True,
                )


def rate_thresholds(ctx: CheckContext) -> Iterator[Problem]:
    rates = ctx.deployment.monitoring.rates
    for path, thresholds in (
        (('monitoring', 'rates', 'default'), rates.default),
        *((('monitoring', 'rates', 'streams', name), value) for name, value in rates.streams.items()),
    ):
        for kind in ('bounce', 'complaint', 'deferral'):
            warning, critical = getattr(thresholds, f'{kind}_warning'), getattr(thresholds, f'{kind}_critical')
            if warning > critical:
                yield ctx.problem(
                    'rate-thresholds',
                    f'{kind}_warning {warning:g} is above {kind}_critical {critical:g}',
                    (*path, f'{kind}_warning'),
                    expected=f'{kind}_warning <= {kind}_critical',
                    value=warning,
                )


CHECKS = (
    Check('retry-schedule', 'error', 'Back-off and queue lifetime that make sense together.', retry_schedule),
    Check('queue-thresholds', 'error', 'Warning thresholds below critical ones.', queue_thresholds),
    Check(
        'queue-age-powermta', 'warning', 'Queue age thresholds only where the MTA reports an age.', queue_age_powermta
    ),
    Check('alert-target', 'error', 'Alert targets that are e-mail addresses or URLs.', alert_target),
    Check('dnsbl-zone', 'error', 'DNSBL zones that are live, decodable and usable without a missing key.', dnsbl_zones),
    Check(
        'dnsbl-custom-zone', 'error', 'Custom DNSBL zones with answers that can be decoded exactly.', dnsbl_custom_zones
    ),
    Check('dnsbl-nameserver', 'warning', 'Blocklist resolvers that are addresses and not public.', dnsbl_nameservers),
    Check('monitoring-secret-file', 'error', 'Secret files named by absolute path.', monitoring_secret_files),
    Check('alert-smarthost', 'error', 'E-mail alerts leave through an independent smarthost.', alert_smarthost),
    Check('monitoring-streams', 'error', 'Per-stream thresholds name streams that exist.', monitoring_streams),
    Check('rate-thresholds', 'error', 'Rate warning thresholds below critical ones.', rate_thresholds),
)
