"""The PowerMTA configuration with the suppression gate (``feedback.suppression.powermta_gate``): PowerMTA on one
loopback listener, a ``<source 127.0.0.N>`` per stream that selects its pool, and the gate's ports and addresses in
``powermta__gate``. Without the setting nothing changes (the golden files of the examples are without it)."""

from __future__ import annotations

from pathlib import Path

from mailinfra_agent.powermta import check_text
from mailinfra_iac import load_spec

from ..conftest import AS_OF, BASE, edit, problems
from .helpers import EXAMPLE, host_vars, render
from .test_rolevars import _powermta, blocks, config, value

GATE = '\nfeedback: {suppression: {powermta_gate: true}}\nmonitoring:'


def _gated_example(tmp_path: Path) -> dict[str, bytes]:
    path = tmp_path / 'spec.yml'
    path.write_text(EXAMPLE.read_text().replace('\nmonitoring:', GATE, 1))
    return render(load_spec(path, as_of=AS_OF))


def test_the_gate_moves_the_listeners_to_loopback_and_the_port_selects_the_stream(tmp_path: Path) -> None:
    files = _gated_example(tmp_path)
    root = config(files, 'pmta1')
    assert [d.value for d in root.values('smtp-listener')] == ['127.0.0.1:10025']
    sources = blocks(root, 'source')
    assert list(sources) == ['127.0.0.2', '127.0.0.3']
    assert [value(source, 'default-virtual-mta') for source in sources.values()] == ['transactional', 'marketing']
    for source in sources.values():
        assert value(source, 'process-x-virtual-mta') == 'no'
        assert value(source, 'always-allow-relaying') == 'yes'
    assert host_vars(files, 'pmta1')['powermta__gate'] == {
        'upstream': '127.0.0.1:10025',
        'streams': [
            {'name': 'transactional', 'port': 2525, 'source': '127.0.0.2', 'networks': ['10.8.0.0/16']},
            {'name': 'marketing', 'port': 2526, 'source': '127.0.0.3', 'networks': ['10.8.0.0/16']},
        ],
    }
    text = files['mta/pmta1/pmta/config'].decode()
    assert check_text(text) == []
    assert "suppression gate: mailinfra's gate holds the injection ports" in text
    assert 'a port does not select a stream' not in text
    assert 'X-Virtual-MTA: <stream>' not in text


def test_without_the_gate_powermta_keeps_its_public_listeners(tmp_path: Path) -> None:
    files = render(load_spec(EXAMPLE, as_of=AS_OF))
    assert 'powermta__gate' not in host_vars(files, 'pmta1')
    assert [d.value for d in config(files, 'pmta1').values('smtp-listener')] == ['0/0:2525', '0/0:2526']


def test_the_loopback_port_avoids_the_streams_ports() -> None:
    text = edit('port: 2526, networks', 'port: 10025, networks', BASE).replace('\nmonitoring:', GATE, 1)
    _, variables = _powermta(text)
    assert variables['powermta__gate']['upstream'] == '127.0.0.1:10026'
    assert variables['powermta__listeners'] == [
        {'address': '127.0.0.1', 'port': 10026, 'streams': ['transactional', 'marketing']}
    ]


def test_the_gate_is_refused_with_smtp_auth_users_on_powermta() -> None:
    text = edit('mta: auto', 'mta: powermta', BASE).replace('\nmonitoring:', GATE, 1)
    assert [p for p in problems(text) if p.check == 'powermta-gate-auth'] == []
    users = edit('port: 2526, networks: [10.0.0.0/8]', 'port: 2526, networks: [10.0.0.0/8], sasl_users: [app]', text)
    [problem] = [p for p in problems(users) if p.check == 'powermta-gate-auth']
    assert problem.severity == 'error'
    assert 'stream "marketing" has SMTP AUTH users on PowerMTA' in str(problem)
    assert 'streams.marketing.injection.sasl_users' in str(problem)
    # Postfix hosts keep their users: the gate is only in front of PowerMTA
    postfix = edit('mta: auto', 'mta: postfix', users.replace('mta: powermta', 'mta: auto'))
    assert [p for p in problems(postfix) if p.check == 'powermta-gate-auth'] == []


def test_the_gate_is_refused_for_a_powermta_stream_without_injection_networks() -> None:
    text = edit('mta: auto', 'mta: powermta', BASE).replace('\nmonitoring:', GATE, 1)
    assert [p for p in problems(text) if p.check == 'powermta-gate-networks'] == []
    bare = edit('port: 2526, networks: [10.0.0.0/8]', 'port: 2526, networks: []', text)
    [problem] = [p for p in problems(bare) if p.check == 'powermta-gate-networks']
    assert problem.severity == 'error'
    assert 'streams.marketing.injection.networks' in str(problem)
    assert [
        p for p in problems(edit('mta: powermta', 'mta: postfix', bare)) if p.check == 'powermta-gate-networks'
    ] == []


def test_the_loopback_port_avoids_the_unsubscribe_port() -> None:
    unsubscribe = (
        '\nfeedback: {suppression: {powermta_gate: true}, unsubscribe: {hostname: unsubscribe.testco.example, '
        'tls_certificate: /etc/ssl/u.pem, tls_key: /etc/ssl/u.key, port: 10025}}\nmonitoring:'
    )
    _, variables = _powermta(BASE.replace('\nmonitoring:', unsubscribe, 1))
    assert variables['powermta__gate']['upstream'] == '127.0.0.1:10026'
