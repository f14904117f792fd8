"""``mailinfra dkim generate`` and ``mailinfra dkim rotate``: keys outside the repository, rotation by steps.

Both take ``--format json`` (shapes in docs/cli.md). ``generate`` shows progress on a terminal.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from .. import api
from ..dkim import (
    KeyFileError,
    KeyStore,
    ServerAnswers,
    load_rotation,
    next_step,
    rotation_lock,
    run_step,
    save_rotation,
)
from ..facts.naming import ed25519_selector
from ..model import SendingDomain
from ..problems import MailinfraError
from .progress import Progress

STEPS = ('generate', 'publish', 'verify', 'activate', 'revoke', 'remove')


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _wanted(domain: SendingDomain) -> list[tuple[str, str]]:
    pairs = [(selector, 'rsa') for selector in domain.dkim.selectors]
    if domain.dkim.algorithm == 'rsa+ed25519':
        pairs += [(ed25519_selector(selector), 'ed25519') for selector in domain.dkim.selectors]
    return pairs


def cmd_generate(args: argparse.Namespace) -> int:
    spec = api.load_spec(args.spec)
    store = KeyStore(args.keys)
    client = spec.deployment.client.name
    now = _now()
    keys: list[dict[str, Any]] = []
    total = sum(len(_wanted(domain)) for domain in spec.deployment.sending_domains)
    with Progress('DKIM keys', total, enabled=args.format == 'text') as progress:
        for domain in spec.deployment.sending_domains:
            new = set()
            with rotation_lock(store, client, domain.domain):
                rotation = load_rotation(store, client, domain.domain)
                bits = domain.dkim.rsa_bits
                for pair in _wanted(domain):
                    selector, algorithm = pair
                    if selector not in rotation and not store.exists(client, domain.domain, selector, algorithm):
                        run_step(rotation, 'generate', now, store=store, selectors=[pair], rsa_bits=bits)
                        new.add(pair)
                    progress.advance()
                if new:
                    save_rotation(store, rotation)
            for selector, algorithm in _wanted(domain):
                # the public record is enough to report a key (loading 7,500 private keys takes minutes);
                # a missing or damaged one is checked against the private key and written again
                try:
                    ref = store.public_ref(client, domain.domain, selector, algorithm)
                except KeyFileError:
                    ref = None
                if ref is None:
                    ref = store.get(client, domain.domain, selector, algorithm)
                else:  # what loading would check, short of reading the key
                    store.check_private_file(client, domain.domain, selector, algorithm)
                keys.append(
                    {
                        'state': 'new' if (selector, algorithm) in new else 'kept',
                        'domain': ref.domain,
                        'selector': ref.selector,
                        'algorithm': ref.algorithm.value,
                        'fqdn': ref.fqdn,
                        'bits': ref.bits,
                        'fingerprint': ref.fingerprint,
                        'key_ref': ref.key_ref,
                    }
                )
    if args.format == 'json':
        print(json.dumps({'client': client, 'keys_dir': str(store.root), 'keys': keys}, indent=2))
        return 0
    for key in keys:
        print(f'{key["state"]:<5} {key["fqdn"]:<50} {key["algorithm"]:<8} {key["bits"]:>5} bits  {key["fingerprint"]}')
    print(f'Keys are in {store.root} (mode 0600); DNS records: mailinfra records {args.spec}')
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    spec = api.load_spec(args.spec)
    store = KeyStore(args.keys)
    client = spec.deployment.client.name
    now = _now()
    try:
        answers = ServerAnswers(args.nameserver) if args.nameserver else None
    except ValueError as error:
        raise MailinfraError(str(error)) from None
    if args.step in ('verify', 'activate') and answers is None:
        raise MailinfraError(
            f'--step {args.step} asks the authoritative servers: give each with --nameserver ADDR[:PORT]'
        )
    failed = False
    text = args.format == 'text'
    domains: list[dict[str, Any]] = []
    for domain in spec.deployment.sending_domains:
        if args.domain and domain.domain not in args.domain:
            continue
        with rotation_lock(store, client, domain.domain):
            rotation = load_rotation(store, client, domain.domain)
            period = dt.timedelta(seconds=domain.dkim.rotation)
            algorithms = domain.dkim.algorithm
            if args.step is None:
                step = next_step(rotation, now, period=period, algorithms=algorithms)
                domains.append(
                    {
                        'domain': domain.domain,
                        'selectors': [
                            {
                                'selector': entry.selector,
                                'algorithm': entry.algorithm.value,
                                'state': entry.state.value,
                                'fingerprint': entry.fingerprint,
                                'retire_after': entry.retire_after.isoformat() if entry.retire_after else None,
                            }
                            for entry in rotation.entries
                        ],
                        'next': {
                            'action': str(step.action),
                            'selectors': list(step.selectors),
                            'message': step.message,
                            'not_before': step.not_before.isoformat() if step.not_before else None,
                        },
                    }
                )
                if text:
                    print(f'{domain.domain}:')
                    for entry in rotation.entries:
                        until = f' until {entry.retire_after:%Y-%m-%d %H:%M}' if entry.retire_after else ''
                        print(f'  {entry.selector:<14} {entry.algorithm:<8} {entry.state}{until}')
                    print(f'  next: {step}')
                continue
            result = run_step(
                rotation,
                args.step,
                now,
                store=store,
                selectors=args.selector or None,
                answers=answers,
                rsa_bits=domain.dkim.rsa_bits,
                period=period,
                algorithms=algorithms,
            )
            save_rotation(store, rotation)
            domains.append(
                {'domain': domain.domain, 'changed': list(result.changed), 'problems': list(result.problems)}
            )
            if text:
                changed = ', '.join(result.changed) or 'nothing to do'
                print(f'{domain.domain}: {args.step}: {changed}')
                for problem in result.problems:
                    print(f'  problem: {problem}')
            failed |= not result.ok
    if not text:
        print(json.dumps({'client': client, 'step': args.step, 'ok': not failed, 'domains': domains}, indent=2))
    return 1 if failed else 0


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], with_spec: Callable[..., argparse.ArgumentParser]
) -> None:
    dkim = sub.add_parser('dkim', help='generate and rotate DKIM keys (kept outside the repository)')
    actions = dkim.add_subparsers(dest='dkim_command', required=True, metavar='ACTION')

    def keys(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            '--keys', metavar='DIR', help='key store (default $MAILINFRA_KEYS_DIR or ~/.local/share/mailinfra/keys)'
        )

    def json_format(parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--format', choices=['text', 'json'], default='text', help='json: see docs/cli.md')

    generate = with_spec('generate', 'create missing keys for every selector in the spec', actions)
    keys(generate)
    json_format(generate)
    generate.set_defaults(func=cmd_generate)

    rotate = with_spec('rotate', 'show rotation state, or run one step of it', actions)
    keys(rotate)
    rotate.add_argument('--step', choices=STEPS, help='the step to run (default: only show state and next step)')
    rotate.add_argument('--selector', action='append', help='limit the step to this selector (repeatable)')
    rotate.add_argument('--domain', action='append', help='limit to this sending domain (repeatable)')
    rotate.add_argument(
        '--nameserver',
        action='append',
        default=[],
        metavar='ADDR[:PORT]',
        help='authoritative server to verify against (repeatable; needed for verify/activate)',
    )
    json_format(rotate)
    rotate.set_defaults(func=cmd_rotate)
