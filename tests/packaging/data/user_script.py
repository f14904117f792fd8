"""A user's script against the installed wheels: load, inspect, render, sign (mypy --strict in test_wheel_install)."""

from __future__ import annotations

import datetime as dt
import sys
import tempfile

from mailinfra_iac import Problem, SpecInvalid, keystore_dkim, load_spec, parse_spec, render, render_files, validate
from mailinfra_iac.api import envelope_sender, id_header, list_unsubscribe_headers, read_key_file


def main(path: str) -> int:
    try:
        spec = load_spec(path, as_of=dt.date(2026, 11, 28))
    except SpecInvalid as invalid:
        problems: list[Problem] = invalid.problems
        for problem in problems:
            print(problem.file, problem.line, problem.column, '.'.join(map(str, problem.path)), problem.message)
        return 1
    for ip in spec.facts.ips:
        print(ip.pool, ip.address, ip.ptr, ip.host)
    limits = spec.facts.streams['marketing'].isps['gmail'].limits
    connections: int = limits.max_connections
    print(connections, spec.deployment.client.name)
    files = render_files(spec, renderers=['inventory'])
    for name, output in sorted(files.items()):
        print(name, len(output.content), oct(output.mode))
    with tempfile.TemporaryDirectory() as tmp:
        print(render(spec, f'{tmp}/out', renderers=['inventory'], dkim=keystore_dkim(spec)))
    print(len(validate(path)), parse_spec('version: 1\n', 'x.yml').name)
    keys = [read_key_file('/etc/mailinfra/secrets/feedback-signing-key')]
    headers = list_unsubscribe_headers(
        'a@example.org', 'marketing', 'https://u.example.com/u', 'u@b.example.com', keys, 0.0
    )
    headers |= id_header('a@example.org', 'marketing', keys)
    sender: str = envelope_sender('marketing', 'b.example.com', keys, recipient='a@example.org')
    print(sender, sorted(headers))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
