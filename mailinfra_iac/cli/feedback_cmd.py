"""``mailinfra feedback classify TEXT``: which bounce-classification rule a reply matches, and why.

Runs the same engine as the hosts (``mailinfra_agent.feedback.classify``) over the rules they would get:
the catalogue, plus with ``--spec`` the deployment's and (with ``--stream``) the stream's own rules. The
outcome follows the bounce policy: ``hard`` (suppress after the category's ``suppress_after``), ``soft``,
or ``policy`` (a reputation event, never a suppression). Exit 0 when classified, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..problems import MailinfraError
from .feedback_report_cmd import add_report

if TYPE_CHECKING:
    from mailinfra_agent.feedback.classify import Classification

    from .. import api

OUTCOMES = {
    'hard': 'hard bounce: suppress the recipient after {n}',
    'soft': 'soft bounce: suppress after {n} (counted per recipient)',
    'policy': 'reputation event (policy or spam block): counted and alerted on, the recipient is never suppressed',
    'delivered': 'delivered',
}


def _suppress_after(args: argparse.Namespace, spec: api.Spec | None, category: str) -> int | str:
    """The category's ``suppress_after`` under the bounce policy in force (the stream's, or the deployment's)."""
    from ..catalogue import bounces

    if spec is None:
        return bounces.SUPPRESS_AFTER.get(category, 'never')
    if args.stream is not None:
        return spec.facts.streams[args.stream].categories[category].suppress_after
    policy = spec.deployment.bounce_policy.categories.get(category)  # type: ignore[call-overload]
    if policy is not None and policy.suppress_after is not None:
        value: int | str = policy.suppress_after
        return value
    return bounces.SUPPRESS_AFTER.get(category, 'never')


def _policy_text(outcome: str, suppress_after: int | str) -> str:
    count = 'never' if suppress_after == 'never' else f'{suppress_after} bounce(s)'
    return OUTCOMES[outcome].format(n=count)


def _text(result: Classification, policy: str, suppress_after: int | str) -> str:
    lines = [
        f'category:  {result.category}',
        f'outcome:   {result.outcome} ({policy})',
        f'codes:     reply {result.code or "-"}, enhanced {result.enhanced or "-"}'
        f' ({"permanent" if result.permanent else "temporary"})',
    ]
    if result.rule is None:
        lines.append('rule:      none matched; fallback on the status code')
    else:
        lines.append(
            f'rule:      {result.rule} ({result.origin}){": " + result.description if result.description else ""}'
        )
    for condition, what in result.matched.items():
        lines.append(f'  {condition + ":":10} {what}')
    lines.append(f'suppress_after: {suppress_after}')
    return '\n'.join(lines)


def cmd_classify(args: argparse.Namespace) -> int:
    # here, not at the top: `feedback report` loads this module too and needs none of them
    from mailinfra_agent.feedback.classify import Classifier

    from .. import api
    from ..catalogue.bounce_rules import compile_rules

    spec = api.load_spec(args.spec) if args.spec else None
    if args.stream is not None:
        if spec is None:
            raise MailinfraError('--stream needs --spec')
        if args.stream not in spec.deployment.streams:
            known = ', '.join(sorted(spec.deployment.streams))
            raise MailinfraError(f'unknown stream "{args.stream}", expected one of: {known}')
    compiled = compile_rules(spec.deployment if spec else None)
    classifier = Classifier(compiled.rules, compiled.max_text)
    text = args.text if args.text != '-' else sys.stdin.read()
    result = classifier.classify(text, status=args.status, isp=args.isp, stream=args.stream)
    suppress_after = _suppress_after(args, spec, result.category)
    policy = _policy_text(result.outcome, suppress_after)
    if args.format == 'json':
        report: dict[str, Any] = {**result.as_dict(), 'policy': policy, 'suppress_after': suppress_after}
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(_text(result, policy, suppress_after))
    return 0


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], with_spec: Callable[..., argparse.ArgumentParser]
) -> None:
    feedback = sub.add_parser('feedback', help='bounces and complaints: classify replies, report rates')
    feedback_sub = feedback.add_subparsers(dest='feedback_command', required=True, metavar='COMMAND')
    classify = feedback_sub.add_parser(
        'classify',
        help='explain which bounce-classification rule a reply text matches, its category and outcome',
    )
    classify.add_argument('text', help='the reply or DSN diagnostic text ("-" reads standard input)')
    classify.add_argument('--spec', help='a deployment spec: its bounce_policy rules and policy apply')
    classify.add_argument('--stream', help="with --spec: the stream's own rules and policy apply")
    classify.add_argument('--isp', help='the recipient ISP profile (gmail, microsoft, ...), for ISP-only rules')
    classify.add_argument('--status', metavar='X.Y.Z', help='the DSN Status field, when the text has no code')
    classify.add_argument('--format', choices=['text', 'json'], default='text')
    classify.set_defaults(func=cmd_classify)
    add_report(feedback_sub)
