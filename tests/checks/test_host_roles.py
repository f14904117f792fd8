"""Host roles in the model: the default, schema errors, a deployment that uses every role, and the facts by role."""

from __future__ import annotations

from mailinfra_iac import parse_spec
from mailinfra_iac.facts.hosts import database_host, inbound_hosts, role_hosts
from mailinfra_iac.problems import format_path

from ..conftest import AS_OF, BASE, edit, position, problems

EVERY_ROLE = edit(
    'pools: [tx, bulk]\n',
    'pools: [tx, bulk]\n'
    '    roles: [mta, monitoring]\n'
    '  ops1: {fqdn: ops1.testco.example, provider: hetzner, region: fsn1, size: cx22, roles: [database, dns]}\n',
    edit(
        'nameservers: [ns.testco.example]',
        'nameservers: [ns.testco.example, ops1.testco.example]',
        edit(
            'monitoring:\n',
            'monitoring:\n  alerts: [{kind: email, target: ops@testco.example}]\n'
            '  smarthost: {host: relay.example.net, sender: alerts@testco.example}\n',
        ),
    ),
)
"""The base spec with monitoring on the MTA host, and a separate VM for the database and the zone's DNS."""


def test_roles_default_to_mta() -> None:
    spec = parse_spec(BASE, 'spec.yml', as_of=AS_OF)
    assert spec.deployment.hosts['mta1'].roles == ['mta']
    assert 'roles' not in spec.deployment.hosts['mta1'].model_fields_set


def test_every_role_passes_every_check() -> None:
    found = [problem for problem in problems(EVERY_ROLE) if problem.check != 'mta-choice']
    assert found == [], [str(problem) for problem in found]


def test_facts_by_role() -> None:
    spec = parse_spec(EVERY_ROLE, 'spec.yml', as_of=AS_OF)
    assert role_hosts(spec.deployment) == {
        'mta': ['mta1'],
        'monitoring': ['mta1'],
        'database': ['ops1'],
        'dns': ['ops1'],
    }
    assert database_host(spec.deployment) == 'ops1'
    assert inbound_hosts(spec.deployment) == ['mta1']  # the default: MTA hosts only
    assert spec.facts.host_mta == {'mta1': spec.facts.mta.chosen}
    assert spec.facts.pool_hosts == {'tx': ['mta1'], 'bulk': ['mta1']}
    assert database_host(parse_spec(BASE, 'spec.yml', as_of=AS_OF).deployment) is None


def test_pools_of_a_host_without_the_mta_role_serve_nothing() -> None:
    text = edit(
        'pools: [tx, bulk]\n',
        'pools: [tx]\n  mon1: {fqdn: mon1.testco.example, provider: static, '
        'address: 192.0.2.2, roles: [monitoring], pools: [bulk]}\n',
    )
    spec_problems = problems(text)
    checks = sorted(problem.check for problem in spec_problems if problem.severity == 'error')
    assert checks == ['host-role-settings', 'pool-placement']  # and nobody serves "bulk"
    [unserved] = [problem for problem in spec_problems if problem.check == 'pool-placement']
    assert format_path(unserved.path) == 'pools.bulk'


def test_mta_override_on_a_host_without_the_mta_role() -> None:
    text = edit(
        'pools: [tx, bulk]\n',
        'pools: [tx, bulk]\n  mon1: {fqdn: mon1.testco.example, provider: static, '
        'address: 192.0.2.2, roles: [monitoring], mta: postfix}\n',
    )
    [problem] = [problem for problem in problems(text) if problem.severity == 'error']
    assert (problem.check, format_path(problem.path)) == ('host-role-settings', 'hosts.mon1.mta')
    assert (problem.line, problem.column) == position(text, 'postfix}')


def test_unknown_role_is_a_located_schema_error() -> None:
    text = edit('pools: [tx, bulk]\n', 'pools: [tx, bulk]\n    roles: [mta, monitorin]\n')
    [problem] = problems(text)
    assert problem.check.startswith('schema-')
    assert format_path(problem.path) == 'hosts.mta1.roles[1]'
    assert (problem.line, problem.column) == position(text, 'monitorin]')
    assert 'monitoring' in problem.expected


def test_role_listed_twice_is_a_located_schema_error() -> None:
    text = edit('pools: [tx, bulk]\n', 'pools: [tx, bulk]\n    roles: [mta, dns, mta]\n')
    [problem] = problems(text)
    assert problem.check.startswith('schema-')
    assert format_path(problem.path) == 'hosts.mta1.roles'
    assert 'role "mta" is listed twice' in problem.message
    assert (problem.line, problem.column) == position(text, '[mta, dns, mta]')


def test_no_roles_is_a_schema_error() -> None:
    text = edit('pools: [tx, bulk]\n', 'pools: [tx, bulk]\n    roles: []\n')
    [problem] = problems(text)
    assert problem.check.startswith('schema-')
    assert format_path(problem.path) == 'hosts.mta1.roles'
