"""The rendered monitoring configurations load in the real tools (promtool, amtool, blackbox exporter), route as
intended, hold no secret, and reach roles/prometheus through the inventory unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from mailinfra_iac import MailinfraError, SpecInvalid, load_spec, parse_spec, render_files
from mailinfra_iac.render.base import RenderContext
from mailinfra_iac.render.monitoring import alertmanager_config
from mailinfra_iac.render.rolevars.prometheus import PrometheusVars, jinja_raw

from ..conftest import AS_OF, ROOT, TEST_DKIM, edit
from ..golden_files import EXAMPLES
from .harness import (
    AMTOOL,
    MONITORING,
    PROMTOOL,
    SECRETS,
    monitoring_files,
    rules_spec,
    rules_spec_text,
    run,
    tool,
    write_tree,
)

BLACKBOX = '/usr/bin/prometheus-blackbox-exporter'


def _example_tree(example: Path, tmp_path: Path) -> Path:
    spec = load_spec(example.relative_to(ROOT), as_of=AS_OF)
    files = monitoring_files(spec)
    assert files, f'{example.name} has no monitoring host: every example is to have one, so that this is checked'
    return write_tree(files, tmp_path)


@pytest.mark.parametrize('example', EXAMPLES, ids=lambda path: path.stem)
def test_promtool_checks_config_and_rules_of_every_example(example: Path, tmp_path: Path) -> None:
    tree = _example_tree(example, tmp_path)
    config = run(tool(PROMTOOL), 'check', 'config', 'prometheus/prometheus.yml', cwd=tree)
    assert config.returncode == 0, config.stdout + config.stderr
    rules = sorted(str(path.relative_to(tree)) for path in (tree / 'prometheus' / 'rules').glob('*.yml'))
    checked = run(PROMTOOL, 'check', 'rules', *rules, cwd=tree)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f'{len(rules)} rule files found' in config.stdout


@pytest.mark.parametrize('example', EXAMPLES, ids=lambda path: path.stem)
def test_amtool_and_blackbox_accept_the_configs_of_every_example(example: Path, tmp_path: Path) -> None:
    tree = _example_tree(example, tmp_path)
    alertmanager = run(tool(AMTOOL), 'check-config', 'alertmanager/alertmanager.yml', cwd=tree)
    assert alertmanager.returncode == 0, alertmanager.stdout + alertmanager.stderr
    blackbox = run(tool(BLACKBOX), '--config.check', '--config.file=blackbox/blackbox.yml', cwd=tree)
    assert blackbox.returncode == 0, blackbox.stdout + blackbox.stderr


def test_the_checks_fail_on_a_broken_file(tmp_path: Path) -> None:
    """The tools above can say no: a rule with a bad expression, an unknown Alertmanager field."""
    tree = write_tree(monitoring_files(rules_spec()), tmp_path)
    queue = tree / 'prometheus' / 'rules' / 'queue.yml'
    queue.write_text(queue.read_text().replace('sum by (stream)', 'sum by (stream', 1))
    assert run(PROMTOOL, 'check', 'config', 'prometheus/prometheus.yml', cwd=tree).returncode != 0
    config = tree / 'alertmanager' / 'alertmanager.yml'
    config.write_text(config.read_text().replace('credentials_file', 'credentials_path'))
    assert run(AMTOOL, 'check-config', 'alertmanager/alertmanager.yml', cwd=tree).returncode != 0


@pytest.mark.parametrize(
    ('labels', 'receiver'),
    [
        (['alertname=MailinfraHeartbeat', 'severity=none'], 'heartbeat'),
        (['alertname=MailinfraQueueDepth', 'severity=critical', 'stream=marketing'], 'alerts'),
        (['alertname=MailinfraDnsblListed', 'severity=warning'], 'alerts'),
    ],
)
def test_alertmanager_routes_the_heartbeat_apart(tmp_path: Path, labels: list[str], receiver: str) -> None:
    tree = write_tree(monitoring_files(rules_spec()), tmp_path)
    routed = run(
        tool(AMTOOL), 'config', 'routes', 'test', '--config.file=alertmanager/alertmanager.yml', *labels, cwd=tree
    )
    assert routed.returncode == 0, routed.stderr
    assert routed.stdout.split() == [receiver]


def test_heartbeat_goes_nowhere_without_a_heartbeat_receiver(tmp_path: Path) -> None:
    text = rules_spec_text().replace(
        "    - {kind: webhook, target: 'https://heartbeat.testco.example/ping', receives: heartbeat}\n", ''
    )
    tree = write_tree(monitoring_files(parse_spec(text, 'spec.yml', as_of=AS_OF)), tmp_path)
    routed = run(
        AMTOOL,
        'config',
        'routes',
        'test',
        '--config.file=alertmanager/alertmanager.yml',
        'alertname=MailinfraHeartbeat',
        cwd=tree,
    )
    assert routed.stdout.split() == ['null']


def test_alertmanager_config_from_the_spec() -> None:
    spec = rules_spec()
    config = alertmanager_config(RenderContext(spec.deployment, spec.facts))
    assert config['global'] == {
        'smtp_smarthost': 'relay.example.net:587',
        'smtp_from': 'alerts@testco.example',
        'smtp_require_tls': True,
        'smtp_auth_username': 'alerts',
        'smtp_auth_password_file': '/etc/prometheus/secrets/smarthost-password',
    }
    receivers = {receiver['name']: receiver for receiver in config['receivers']}
    assert receivers['alerts']['email_configs'] == [{'to': 'ops@testco.example', 'send_resolved': True}]
    assert receivers['alerts']['webhook_configs'][0]['http_config'] == {
        'authorization': {'type': 'Bearer', 'credentials_file': '/etc/prometheus/secrets/hook-token'}
    }
    assert [hook['url'] for hook in receivers['heartbeat']['webhook_configs']] == [
        'https://heartbeat.testco.example/ping'
    ]
    assert 'email_configs' not in receivers['heartbeat']
    # timing is the role's (inventory variables): not rendered on the top route
    assert not {'group_wait', 'group_interval', 'repeat_interval'} & set(config['route'])
    assert config['inhibit_rules'][0]['source_matchers'] == ['severity="critical"']
    assert config['inhibit_rules'][0]['target_matchers'] == ['severity="warning"']


def test_email_alert_without_smarthost_is_a_clear_error() -> None:
    spec = rules_spec()
    monitoring = spec.deployment.monitoring.model_copy(update={'smarthost': None})
    deployment = spec.deployment.model_copy(update={'monitoring': monitoring})
    with pytest.raises(MailinfraError, match=r'monitoring\.smarthost is not set'):
        alertmanager_config(RenderContext(deployment, spec.facts))


def _walk(value: Any, key: str = '') -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [pair for name, item in value.items() for pair in _walk(item, str(name))]
    if isinstance(value, list):
        return [pair for item in value for pair in _walk(item, key)]
    return [(key, value)]


def test_no_secret_in_any_rendered_file(tmp_path: Path) -> None:
    """Secret files exist with known contents; no output of any renderer holds them, only their paths."""
    token, password = 'tok-3f9a1c7e5b', 'pw-8d2e6a4c0f'
    token_file, password_file = tmp_path / 'hook-token', tmp_path / 'smarthost-password'
    token_file.write_text(token)
    password_file.write_text(password)
    text = rules_spec_text().replace(SECRETS[0], str(token_file)).replace(SECRETS[1], str(password_file))
    files = render_files(parse_spec(text, 'spec.yml', as_of=AS_OF), dkim=TEST_DKIM)
    assert any(path.startswith('monitoring/') for path in files)
    for path, output in files.items():
        assert token.encode() not in output.content, path
        assert password.encode() not in output.content, path
    config = load_yaml_bytes(files['monitoring/alertmanager/alertmanager.yml'].content)
    keys = {key for key, _ in _walk(config)}
    assert not keys & {'smtp_auth_password', 'auth_password', 'credentials', 'bearer_token', 'password'}
    assert (('credentials_file', str(token_file)) in _walk(config)) and (
        ('smtp_auth_password_file', str(password_file)) in _walk(config)
    )


def load_yaml_bytes(content: bytes) -> Any:
    return yaml.safe_load(content)


def test_rendering_is_deterministic() -> None:
    assert monitoring_files(rules_spec()) == monitoring_files(rules_spec())


def test_prometheus_role_vars_only_on_monitoring_hosts() -> None:
    text = edit('    pools: [tx, bulk]\n', '    pools: [tx, bulk]\n    roles: [mta, monitoring]\n')
    text = edit('monitoring:\n  queue: {depth_warning: 100, depth_critical: 1000}\n', MONITORING, text)
    text = text.replace(
        'hosts:\n',
        'hosts:\n  mon1:\n    fqdn: mon1.testco.example\n    provider: static\n'
        '    address: 192.0.2.99\n    roles: [monitoring]\n',
        1,
    )
    text = text.replace('    roles: [mta, monitoring]\n', '')
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF)
    files = render_files(spec, renderers=['inventory'], dkim=TEST_DKIM)
    mon = load_yaml_bytes(files['inventory/host_vars/mon1.yml'].content)
    assert {'prometheus__rule_groups', 'prometheus__scrape_configs', 'alertmanager__config', 'blackbox__config'} <= set(
        mon
    )
    mta = load_yaml_bytes(files['inventory/host_vars/mta1.yml'].content)
    assert not {key for key in mta if key.startswith(('prometheus__', 'alertmanager__', 'blackbox__'))}
    # scrape targets: the management address; the monitoring host is no MTA (no exporter job target)
    jobs = {job['job_name']: job for job in mon['prometheus__scrape_configs']}
    assert [c['targets'] for c in jobs['mailinfra']['static_configs']] == [['192.0.2.1:9745']]
    assert [c['targets'] for c in jobs['node']['static_configs']] == [['192.0.2.1:9100'], ['192.0.2.99:9100']]
    # its own Prometheus, Alertmanager and blackbox exporter over loopback (the role binds them there)
    for job, port in (('prometheus', 9090), ('alertmanager', 9093), ('blackbox', 9115)):
        assert jobs[job]['static_configs'] == [{'targets': [f'127.0.0.1:{port}'], 'labels': {'host': 'mon1'}}]


def test_role_vars_give_ansible_the_prometheus_templates_verbatim() -> None:
    spec = rules_spec()
    context = RenderContext(spec.deployment, spec.facts)
    escaped = PrometheusVars().host_vars(context, 'mta1')['prometheus__rule_groups']
    from mailinfra_iac.render.monitoring import rule_groups

    plain = rule_groups(context)
    environment = jinja2.Environment()
    pairs = list(zip(_walk(escaped), _walk(plain), strict=True))
    assert any('{{ $labels' in str(value) for (_, value) in _walk(plain))
    for (_, wrapped), (_, original) in pairs:
        if isinstance(original, str):
            assert environment.from_string(wrapped).render() == original
        else:
            assert wrapped == original
    assert jinja_raw({'a': ['{% x %}', 3, 'plain']}) == {'a': ['{% raw %}{% x %}{% endraw %}', 3, 'plain']}


def test_an_injection_port_shared_by_two_streams_on_one_host_is_probed_once() -> None:
    spec = rules_spec()
    from mailinfra_iac.render.monitoring.targets import listeners

    found = listeners(RenderContext(spec.deployment, spec.facts))
    assert [(item.host, item.port, item.kind, item.stream) for item in found] == [
        ('mta1', 25, 'mx', ''),
        ('mta1', 2525, 'injection', 'transactional'),
        ('mta1', 2526, 'injection', 'marketing'),
    ]


def test_no_monitoring_files_without_a_monitoring_host() -> None:
    text = rules_spec_text().replace('    roles: [mta, monitoring]\n', '')
    files = render_files(parse_spec(text, 'spec.yml', as_of=AS_OF), dkim=TEST_DKIM)
    assert not [path for path in files if path.startswith('monitoring/')]
    assert 'inventory/hosts.yml' in files


# --- values at the edges of their ranges (session 12: promtool refused a 300000d window, "duration out of range") ---

WINDOW = 'complaint_critical: 0.002, window: 6h}}'
INTERVAL = '    interval: 15m\n'


@pytest.mark.parametrize(
    ('old', 'new'),
    [
        (WINDOW, 'complaint_critical: 0.002, window: 5m}}'),
        (WINDOW, 'complaint_critical: 0.002, window: 30d}}'),
        (INTERVAL, '    interval: 1m\n'),
        (INTERVAL, '    interval: 7d\n'),
    ],
)
def test_durations_at_their_bounds_pass_promtool(tmp_path: Path, old: str, new: str) -> None:
    spec = parse_spec(edit(old, new, rules_spec_text()), 'spec.yml', as_of=AS_OF)
    tree = write_tree(monitoring_files(spec), tmp_path)
    rules = sorted(str(path.relative_to(tree)) for path in (tree / 'prometheus' / 'rules').glob('*.yml'))
    checked = run(tool(PROMTOOL), 'check', 'rules', *rules, cwd=tree)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ('old', 'new', 'path', 'words'),
    [
        (WINDOW, 'complaint_critical: 0.002, window: 300000d}}', 'window', '300000d is out of range: 5m to 30d'),
        (WINDOW, 'complaint_critical: 0.002, window: 31d}}', 'window', '31d is out of range'),
        (WINDOW, 'complaint_critical: 0.002, window: 1s}}', 'window', '1s is out of range'),
        (INTERVAL, '    interval: 100000d\n', 'interval', '100000d is out of range: 1m to 7d'),
        (INTERVAL, '    interval: 59s\n', 'interval', '59s is out of range'),
        (INTERVAL, '', 'dnsbl_interval', '8d is out of range: 1m to 7d'),
    ],
)
def test_durations_beyond_their_bounds_are_located_errors(old: str, new: str, path: str, words: str) -> None:
    text = edit(old, new, rules_spec_text())
    if path == 'dnsbl_interval':
        text = edit('monitoring:\n', 'monitoring:\n  dnsbl_interval: 8d\n', text)
    with pytest.raises(SpecInvalid) as raised:
        parse_spec(text, 'spec.yml', as_of=AS_OF)
    [problem] = [p for p in raised.value.problems if p.severity == 'error']
    assert problem.path[-1] == path and problem.line is not None and words in problem.message


@pytest.mark.parametrize(
    ('host', 'rendered'),
    [
        ('relay.example.net', 'relay.example.net:25'),
        ('relay.example.net:465', 'relay.example.net:465'),
        ('192.0.2.25:587', '192.0.2.25:587'),
        ('[2001:db8::25]:587', '[2001:db8::25]:587'),
        ('[2001:db8::1]', '[2001:db8::1]:25'),  # amtool: "missing port in address" without the :25
    ],
)
def test_smarthost_forms_alertmanager_can_dial(tmp_path: Path, host: str, rendered: str) -> None:
    text = edit("host: 'relay.example.net:587'", f"host: '{host}'", rules_spec_text())
    tree = write_tree(monitoring_files(parse_spec(text, 'spec.yml', as_of=AS_OF)), tmp_path)
    config = yaml.safe_load((tree / 'alertmanager' / 'alertmanager.yml').read_text())
    assert config['global']['smtp_smarthost'] == rendered
    checked = run(tool(AMTOOL), 'check-config', 'alertmanager/alertmanager.yml', cwd=tree)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ('host', 'words'),
    [
        ('relay.example.net:0', 'port 0 is out of range'),  # amtool takes these: alert mail would never leave
        ('relay.example.net:99999', 'port 99999 is out of range'),
        ('relay example', '"relay example" is not a host name'),
        ('2001:db8::25', 'in brackets'),
        ('[relay]:25', 'not an IPv6 address'),
        ('relay:\u0662\u0665', 'expected a host name'),  # Arabic-Indic digits: int() reads them as 25
        ('a\n.example.net', 'is not a host name'),
        ('999.1.1.1', 'neither an IPv4 address nor a host name'),
        ('10.1.2:25', 'neither an IPv4 address nor a host name'),
    ],
)
def test_smarthost_alertmanager_cannot_dial_is_a_located_error(host: str, words: str) -> None:
    text = edit("host: 'relay.example.net:587'", f'host: {json.dumps(host)}', rules_spec_text())
    with pytest.raises(SpecInvalid) as raised:
        parse_spec(text, 'spec.yml', as_of=AS_OF)
    [problem] = [p for p in raised.value.problems if p.severity == 'error']
    assert problem.path == ('monitoring', 'smarthost', 'host') and problem.line is not None and words in problem.message


@pytest.mark.parametrize(
    ('sender', 'good'),
    [
        ('alerts@testco.example', True),
        ('Mail alerts <alerts@testco.example>', True),
        ('<alerts@testco.example>', True),  # Go's parser takes an angle address without a name
        ('not an address', False),  # amtool takes it; Alertmanager then fails every alert mail
        ('alerts', False),
        ('Alerts <alerts>', False),
        ('"Ops, alerts" <alerts@testco.example>', True),
        ('Alerts <alerts@testco.example', False),  # Alertmanager wants exactly one address (mail.ParseAddress)
        ('<alerts@testco.example> junk', False),
        ('x <a@testco.example>, y <c@testco.example>', False),
        ('Alerts\nBcc: x@testco.example <alerts@testco.example>', False),
        ('Ops, alerts <alerts@testco.example>', False),
    ],
)
def test_smarthost_sender_is_an_address(tmp_path: Path, sender: str, good: bool) -> None:
    text = edit('sender: alerts@testco.example', f'sender: {json.dumps(sender)}', rules_spec_text())
    if not good:
        with pytest.raises(SpecInvalid) as raised:
            parse_spec(text, 'spec.yml', as_of=AS_OF)
        [problem] = [p for p in raised.value.problems if p.severity == 'error']
        assert problem.path == ('monitoring', 'smarthost', 'sender') and 'an e-mail address' in str(problem)
        return
    tree = write_tree(monitoring_files(parse_spec(text, 'spec.yml', as_of=AS_OF)), tmp_path)
    config = yaml.safe_load((tree / 'alertmanager' / 'alertmanager.yml').read_text())
    assert config['global']['smtp_from'] == sender
    checked = run(tool(AMTOOL), 'check-config', 'alertmanager/alertmanager.yml', cwd=tree)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(('mta', 'ages'), [('postfix', 4), ('powermta', 0)])
def test_queue_age_rules_only_where_the_mta_reports_an_age(mta: str, ages: int) -> None:
    """The PowerMTA collector exports no mailinfra_queue_oldest_message_age_seconds: a rule on it never fires."""
    text = rules_spec_text().replace('mta: auto', f'mta: {mta}', 1)
    files = monitoring_files(parse_spec(text, 'spec.yml', as_of=AS_OF))
    rules = yaml.safe_load(files['prometheus/rules/queue.yml'])['groups'][0]['rules']
    names = [rule['alert'] for rule in rules]
    assert names.count('MailinfraQueueAge') == ages
    assert names.count('MailinfraQueueDepth') == 4
    # the same test of the MTA decides which injection listeners get a STARTTLS probe
    aged = {rule['labels']['stream'] for rule in rules if rule['alert'] == 'MailinfraQueueAge'}
    jobs = yaml.safe_load(files['prometheus/prometheus.yml'])['scrape_configs']
    [starttls] = [job['static_configs'] for job in jobs if job['job_name'] == 'blackbox_smtp_starttls']
    assert aged == {target['labels']['stream'] for target in starttls if target['labels']['listener'] == 'injection'}
