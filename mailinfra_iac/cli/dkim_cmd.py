"""``mailinfra dkim generate`` and ``mailinfra dkim rotate``: keys outside the repository, rotation by steps."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable

from .. import api
from ..dkim import (
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
    for domain in spec.deployment.sending_domains:
        with rotation_lock(store, client, domain.domain):
            rotation = load_rotation(store, client, domain.domain)
            wanted = [
                (s, a)
                for s, a in _wanted(domain)
                if s not in rotation and not store.exists(client, domain.domain, s, a)
            ]
            if wanted:
                run_step(rotation, 'generate', now, store=store, selectors=wanted, rsa_bits=domain.dkim.rsa_bits)
                save_rotation(store, rotation)
        for selector, algorithm in _wanted(domain):
            ref = store.get(client, domain.domain, selector, algorithm)
            state = 'new' if (selector, algorithm) in wanted else 'kept'
            print(f'{state:<5} {ref.fqdn:<50} {algorithm:<8} {ref.bits:>5} bits  {ref.fingerprint}')
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
    for domain in spec.deployment.sending_domains:
        if args.domain and domain.domain not in args.domain:
            continue
        with rotation_lock(store, client, domain.domain):
            rotation = load_rotation(store, client, domain.domain)
            period = dt.timedelta(seconds=domain.dkim.rotation)
            algorithms = domain.dkim.algorithm
            if args.step is None:
                print(f'{domain.domain}:')
                for entry in rotation.entries:
                    until = f' until {entry.retire_after:%Y-%m-%d %H:%M}' if entry.retire_after else ''
                    print(f'  {entry.selector:<14} {entry.algorithm:<8} {entry.state}{until}')
                print(f'  next: {next_step(rotation, now, period=period, algorithms=algorithms)}')
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
            changed = ', '.join(result.changed) or 'nothing to do'
            print(f'{domain.domain}: {args.step}: {changed}')
            for problem in result.problems:
                print(f'  problem: {problem}')
            failed |= not result.ok
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

    generate = with_spec('generate', 'create missing keys for every selector in the spec', actions)
    keys(generate)
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
    rotate.set_defaults(func=cmd_rotate)
