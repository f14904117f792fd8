"""Warm-up on the controller: the spec section, the calendar, the contract section and the host agreeing with both."""

from __future__ import annotations

import datetime as dt

import pytest

from mailinfra_agent import contract as c
from mailinfra_agent.shaping.warmup import DayCounts, caps
from mailinfra_iac.api import Spec, parse_spec
from mailinfra_iac.facts.capacity import WARMUP_DAILY, stream_capacity, warmup_daily_cap
from mailinfra_iac.facts.warmup import contract_warmup, warmup_plan
from mailinfra_iac.render.base import RenderContext
from mailinfra_iac.render.rolevars.agent import host_contract

from ..conftest import AS_OF, edit, problems

WARMING = edit(
    '      - address: 192.0.2.20\n        ptr: bulk1.testco.example\n',
    '      - address: 192.0.2.20\n        ptr: bulk1.testco.example\n        warmup_started: 2026-11-01\n',
)
MIX = edit(
    '    pool: bulk\n',
    '    pool: bulk\n    recipient_mix: {gmail: 0.5, yahoo: 0.2}\n',
    WARMING,
)


BOTH = edit(
    '      - address: 192.0.2.21\n        ptr: bulk2.testco.example\n',
    '      - address: 192.0.2.21\n        ptr: bulk2.testco.example\n        warmup_started: 2026-11-01\n',
    MIX,
)


def spec_of(text: str) -> Spec:
    return parse_spec(text, 'spec.yml', as_of=AS_OF)


def with_warmup(section: str, text: str = MIX) -> str:
    return edit('monitoring:\n', f'warmup:\n{section}monitoring:\n', text)


def contract_of(spec: Spec) -> c.Contract:
    return host_contract(RenderContext(spec.deployment, spec.facts, spec.name, {}, None), 'mta1')


def errors(text: str) -> list[str]:
    return [problem.message for problem in problems(text) if problem.severity == 'error']


# --- the spec section ------------------------------------------------------------------------------------------------


def test_defaults_are_the_conservative_curve_in_utc() -> None:
    warmup = spec_of(MIX).deployment.warmup
    assert (warmup.curve, warmup.steps, warmup.time_zone, warmup.on_threshold, warmup.min_sent) == (
        'conservative',
        None,
        'UTC',
        'hold',
        50,
    )


@pytest.mark.parametrize(
    ('section', 'message'),
    [
        ('  time_zone: Europe/Berln\n', 'unknown time zone "Europe/Berln"'),
        ('  curve: custom\n', 'curve "custom" needs "steps"'),
        ('  steps: {1: 10}\n', '"steps" is only read with curve "custom"'),
        ('  curve: custom\n  steps: {2: 10}\n', 'steps must start on day 1'),
        ('  curve: custom\n  steps: {1: 10, 5: 0}\n', 'every daily cap must be at least 1 (day 5: 0)'),
        ('  curve: gentle\n', 'invalid value "gentle"'),
        ('  on_threshold: pause\n', 'invalid value "pause"'),
    ],
)
def test_bad_sections_are_clear_errors(section: str, message: str) -> None:
    found = errors(with_warmup(section))
    assert any(message in text for text in found), found


def test_a_good_custom_curve_is_accepted() -> None:
    spec = spec_of(with_warmup('  curve: custom\n  steps: {5: 1000, 1: 100}\n  time_zone: Europe/Berlin\n'))
    assert spec.deployment.warmup.steps == {1: 100, 5: 1000}


# --- one curve: capacity and the host agree --------------------------------------------------------------------------


def test_capacity_and_the_host_read_the_same_curve() -> None:
    started = dt.date(2026, 11, 1)
    assert [warmup_daily_cap(started, started + dt.timedelta(days=n)) for n in (0, 6, 9, 29, 30)] == [
        50,
        3000,
        7443,
        175_000,
        None,
    ]
    custom = ((1, 10), (3, 90))
    assert warmup_daily_cap(started, started + dt.timedelta(days=1), custom) == 30


def test_a_custom_curve_changes_the_capacity_check() -> None:
    spec = spec_of(with_warmup('  curve: custom\n  steps: {1: 12, 90: 1000000}\n', BOTH))
    marketing = spec.facts.streams['marketing']
    custom = stream_capacity(marketing, AS_OF, ((1, 12), (90, 1_000_000)))
    assert custom == spec.facts.capacity['marketing']
    # day 28 of both IPs: the custom curve allows far less than the conservative one (over 12 active hours)
    assert custom.warmup_capacity_per_hour == 2 * (int(12 * (1_000_000 / 12) ** (27 / 89)) // 12)
    assert stream_capacity(marketing, AS_OF).warmup_capacity_per_hour == 2 * (137_214 // 12)


# --- the calendar ----------------------------------------------------------------------------------------------------


def test_calendar_splits_each_day_by_the_recipient_mix() -> None:
    spec = spec_of(MIX)
    plan = warmup_plan(spec.deployment, spec.facts.streams)
    days = [day for day in plan.days if day.ip == '192.0.2.20']
    assert [day.day for day in days] == list(range(1, 31))
    assert days[0].date == dt.date(2026, 11, 1) and days[-1].date == dt.date(2026, 11, 30)
    assert days[6].cap == 3000 and days[6].isps == {'gmail': 1500, 'yahoo': 600, c.DEFAULT_ISP: 900}
    assert all(sum(day.isps.values()) == day.cap for day in days)
    assert plan.curve == 'conservative' and 'KumoMTA' in plan.source and plan.points == WARMUP_DAILY


def test_a_store_history_holds_the_calendar_as_on_the_host() -> None:
    spec = spec_of(MIX)
    bad = {dt.date(2026, 11, 2): DayCounts(sent=97, bounced=3, hard_bounced=3)}
    plan = warmup_plan(spec.deployment, spec.facts.streams, {'192.0.2.20': bad})
    days = {day.date.day: day for day in plan.days}
    assert (days[2].step, days[2].held) == (2, 'hard-bounce rate 3.00% > 2.00%, held')
    assert (days[3].step, days[3].cap, days[3].held) == (2, 100, None)
    assert max(day.date for day in plan.days) == dt.date(2026, 12, 1)  # one day later than without the store
    contract = contract_of(spec)
    host = caps(contract, None, dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC).timestamp())
    assert sum(cap.cap for cap in host) == 200  # the host without a store: no hold


def test_pool_reaches_its_volume_when_its_caps_add_up_to_the_daily_volume() -> None:
    # both bulk IPs warm from 2026-11-01: 10,000 a day (300,000 / 30) needs 5,000 each -> day 9 (5,498)
    spec = spec_of(BOTH)
    reach = {row.stream: row for row in warmup_plan(spec.deployment, spec.facts.streams).reach}
    assert (reach['marketing'].daily_volume, reach['marketing'].date) == (10_000, dt.date(2026, 11, 9))
    assert (reach['transactional'].warming, reach['transactional'].date) == (False, None)


def test_a_pool_with_an_ip_that_is_not_warming_has_its_volume_at_once() -> None:
    spec = spec_of(WARMING)
    reach = {row.stream: row for row in warmup_plan(spec.deployment, spec.facts.streams).reach}
    assert reach['marketing'].date == dt.date(2026, 11, 1)


# --- the contract --------------------------------------------------------------------------------------------------


def test_contract_carries_the_schedule_rates_and_shares() -> None:
    text = with_warmup('  time_zone: Europe/Berlin\n  on_threshold: cut_back\n')
    text = edit('monitoring:\n', 'monitoring:\n  rates:\n    streams:\n      marketing: {bounce_warning: 0.03}\n', text)
    contract = contract_of(spec_of(text))
    warmup = contract.warmup
    assert (warmup.curve, warmup.time_zone, warmup.on_threshold, warmup.min_sent) == (
        'conservative',
        'Europe/Berlin',
        'cut_back',
        50,
    )
    assert [(step.day, step.cap) for step in warmup.steps] == list(WARMUP_DAILY)
    limits = {stream.stream: stream for stream in warmup.streams}
    assert limits['marketing'].hard_bounce_limit_ppm == 30_000
    assert limits['transactional'].hard_bounce_limit_ppm == 20_000
    assert limits['marketing'].complaint_limit_ppm == 1_000
    assert limits['marketing'].shares == {'gmail': 500_000, 'yahoo': 200_000}
    started = {ip.address: ip.warmup_started for ip in contract.ips}
    assert started == {'192.0.2.10': None, '192.0.2.20': '2026-11-01', '192.0.2.21': None}
    assert c.load_contract(c.dump_contract(contract)) == contract


def test_a_host_without_warming_ips_gets_an_empty_warmup_section() -> None:
    spec = spec_of(edit('monitoring:\n', 'monitoring:\n'))
    assert contract_of(spec).warmup == c.Warmup()
    assert contract_warmup(spec.deployment, list(spec.facts.streams.values())) == c.Warmup()


def test_the_host_computes_the_calendar_the_plan_prints() -> None:
    spec = spec_of(with_warmup('  time_zone: Europe/Berlin\n'))
    contract = contract_of(spec)
    plan = warmup_plan(spec.deployment, spec.facts.streams)
    for day in plan.days:
        noon = dt.datetime.combine(day.date, dt.time(12), tzinfo=dt.UTC).timestamp()
        host = {cap.isp: cap.cap for cap in caps(contract, None, noon)}
        assert host == day.isps, day
