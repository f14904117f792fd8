"""Check results: report order, and check ids verified there."""

from __future__ import annotations

import pytest

from mailinfra_iac.dnscheck import CHECKS, CheckResult
from mailinfra_iac.dnscheck.results import report_order


def test_report_order_is_server_then_catalogue_then_spec_order() -> None:
    results = [
        CheckResult('mx', 'b.example', 'pass', '', 'ns2'),
        CheckResult('fcrdns', '192.0.2.2', 'pass', '', 'ns1'),
        CheckResult('mx', 'a.example', 'fail', '', 'ns1'),
        CheckResult('fcrdns', '192.0.2.1', 'pass', '', 'ns1'),
    ]
    ordered = report_order(results, ['ns1', 'ns2'])
    assert [(r.server, r.check, r.subject) for r in ordered] == [
        ('ns1', 'fcrdns', '192.0.2.2'),
        ('ns1', 'fcrdns', '192.0.2.1'),
        ('ns1', 'mx', 'a.example'),
        ('ns2', 'mx', 'b.example'),
    ]
    assert ordered[2].failed and not ordered[0].failed
    assert ordered[2].as_dict() == {
        'check': 'mx',
        'subject': 'a.example',
        'server': 'ns1',
        'status': 'fail',
        'reason': '',
    }
    assert next(iter(CHECKS)) == 'fcrdns'


def test_an_unknown_check_id_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown DNS check id 'spf-typo'"):
        report_order([CheckResult('spf-typo', 'a.example', 'pass', '')], [''])
