"""Today's warm-up caps in PowerMTA's configuration, on the golden high-volume-powermta config of pmta1."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest

from mailinfra_agent.contract import Contract, Store, load_contract
from mailinfra_agent.powermta.checker import check_text
from mailinfra_agent.shaping.powermta_warmup import (
    PowerMtaWarmupError,
    apply_caps,
    per_day,
    vmta_queues,
)
from mailinfra_agent.shaping.warmup import caps

GOLDEN = Path(__file__).resolve().parents[1] / 'golden' / 'high-volume-powermta' / 'mta' / 'pmta1'
BASELINE = (GOLDEN / 'pmta' / 'config').read_text(encoding='utf-8')
WARM = 'transactional_203_0_113_10'
START = dt.date(2026, 3, 5)


def contract(started: dt.date | None = START, time_zone: str = 'UTC') -> Contract:
    """pmta1's contract with its first IP warming from ``started`` and no other IP warming."""
    loaded = load_contract(str(GOLDEN / 'etc' / 'mailinfra' / 'agent.json'))
    ips = tuple(
        dataclasses.replace(ip, warmup_started=str(started) if index == 0 and started else None)
        for index, ip in enumerate(loaded.ips)
    )
    warmup = dataclasses.replace(loaded.warmup, time_zone=time_zone)
    return dataclasses.replace(loaded, ips=ips, warmup=warmup, store=Store('sqlite', path=':memory:'))


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def applied(when: str, spec: Contract | None = None, baseline: str = BASELINE) -> str:
    spec = spec or contract()
    return apply_caps(baseline, spec, caps(spec, None, at(when)))


def vmta_block(text: str, name: str = WARM) -> str:
    match = re.search(rf'(?s)<virtual-mta {name}>.*?</virtual-mta>\n', text)
    assert match is not None
    return match.group(0)


def rates(text: str, name: str = WARM) -> dict[str, tuple[str, str]]:
    """queue -> (max-msg-rate, backoff-max-msg-rate) inside one VMTA."""
    found = re.findall(
        r'(?s)<domain (\S+)>.*?\n\s*max-msg-rate (\S+)\n.*?\n\s*backoff-max-msg-rate (\S+)\n', vmta_block(text, name)
    )
    return {queue: (rate, backoff) for queue, rate, backoff in found}


def outside(text: str) -> str:
    return text.replace(vmta_block(text), '')


def test_day_one_writes_each_isp_part_per_day_and_nothing_else() -> None:
    result = applied('2026-03-05T12:00:00+00:00')
    found = rates(result)
    # day 1 of the conservative curve: 50 a day; gmail 35 %, yahoo 8 %, apple 6 %, rounded down
    assert found['gmail.queue'] == ('17/d', '17/d')
    assert found['yahoo.queue'] == ('4/d', '4/d')
    assert found['apple.queue'] == ('3/d', '3/d')
    assert "# mailinfra warm-up: today's cap 17/d is stricter than the rendered 3600/h (86,400/d)" in result
    assert 'back-off rate 600/h lowered to max-msg-rate 17/d' in result
    assert outside(result) == outside(BASELINE)
    assert check_text(result) == []


def test_the_parts_of_all_queues_add_up_to_the_ip_cap() -> None:
    # day 5: 800. seznam has no share (its recipients count with "other"), office365 has no queue of its own
    # (recognised only by MX): their parts go to <domain *>, which shares them with the seznam queue.
    found = rates(applied('2026-03-09T12:00:00+00:00'))
    assert sum(int(rate.removesuffix('/d')) for rate, _ in found.values()) == 800
    assert set(found) == set(vmta_queues(BASELINE)[WARM])
    other = 800 - sum(
        800 * share // 1_000_000 for share in (350_000, 80_000, 60_000, 20_000, 30_000, 150_000, 20_000, 20_000)
    )
    assert int(found['seznam.queue'][0].removesuffix('/d')) == other // 2
    assert int(found['*'][0].removesuffix('/d')) == other - other // 2


def test_mid_curve_interpolates() -> None:
    # day 10: 3,000 x (25,000 / 3,000)^(3/7) = 7,443 (docs/warmup.md); gmail 35 % = 2,605
    assert rates(applied('2026-03-14T00:00:00+00:00'))['gmail.queue'][0] == '2605/d'


def test_the_stricter_of_rendered_and_cap_wins_compared_per_day() -> None:
    # day 5: gmail's part is 280/d. 10/h is 240/d: stricter, kept. 12/h is 288/d: the cap wins.
    def gmail_rate(rendered: str) -> str:
        block = vmta_block(BASELINE)
        changed = block.replace('max-msg-rate 3600/h', f'max-msg-rate {rendered}', 1)
        result = applied('2026-03-09T12:00:00+00:00', baseline=BASELINE.replace(block, changed))
        return rates(result)['gmail.queue'][0]

    assert gmail_rate('10/h') == '10/h'
    assert gmail_rate('12/h') == '280/d'
    assert gmail_rate('unlimited') == '280/d'
    kept = applied(
        '2026-03-09T12:00:00+00:00',
        baseline=BASELINE.replace(vmta_block(BASELINE), vmta_block(BASELINE).replace('3600/h', '10/h', 1)),
    )
    assert "rendered 10/h (240/d) is at or below today's cap 280/d" in kept


def test_over_warm_up_leaves_the_rendering_as_it_is() -> None:
    assert applied('2026-04-10T12:00:00+00:00') == BASELINE


def test_no_warming_ip_leaves_the_rendering_as_it_is() -> None:
    assert applied('2026-03-05T12:00:00+00:00', contract(None)) == BASELINE


def test_before_the_start_every_queue_gets_the_smallest_daily_rate() -> None:
    result = applied('2026-03-04T12:00:00+00:00')
    assert set(rates(result).values()) == {('1/d', '1/d')}
    assert 'cap 0: PowerMTA has no smaller daily rate, 0 means unlimited' in result
    assert check_text(result) == []


@pytest.mark.parametrize(
    ('when', 'gmail'),
    [
        ('2026-03-04T22:59:59+00:00', '1/d'),  # 23:59:59 in Berlin on the day before the start
        ('2026-03-04T23:00:00+00:00', '17/d'),  # midnight in Berlin: day 1
        ('2026-03-05T22:59:59+00:00', '17/d'),
        ('2026-03-05T23:00:00+00:00', '35/d'),  # day 2: 100
    ],
)
def test_the_day_changes_at_midnight_in_the_warm_up_time_zone(when: str, gmail: str) -> None:
    assert rates(applied(when, contract(time_zone='Europe/Berlin')))['gmail.queue'][0] == gmail


def test_same_input_same_bytes() -> None:
    assert applied('2026-03-06T01:00:00+00:00') == applied('2026-03-06T23:00:00+00:00')


def test_a_warming_ip_without_its_vmta_is_an_error() -> None:
    baseline = BASELINE.replace(f'<virtual-mta {WARM}>', '<virtual-mta renamed>')
    with pytest.raises(PowerMtaWarmupError, match=f'no <virtual-mta {WARM}>'):
        applied('2026-03-05T12:00:00+00:00', baseline=baseline)


def test_a_queue_without_max_msg_rate_is_an_error() -> None:
    block = vmta_block(BASELINE)
    without = block.replace('        max-msg-rate 3600/h\n', '', 1)
    with pytest.raises(PowerMtaWarmupError, match='backoff-max-msg-rate before max-msg-rate'):
        applied('2026-03-05T12:00:00+00:00', baseline=BASELINE.replace(block, without))
    without = re.sub(r'        (backoff-)?max-msg-rate \S+\n', '', block, count=2)  # the first queue's
    with pytest.raises(PowerMtaWarmupError, match='has no max-msg-rate'):
        applied('2026-03-05T12:00:00+00:00', baseline=BASELINE.replace(block, without))


def test_per_day() -> None:
    assert per_day('3600/h') == 86_400
    assert per_day('100/10min') == 14_400
    assert per_day('17/d') == 17
    assert per_day('unlimited') == per_day('0') == float('inf')
    with pytest.raises(ValueError, match='not a rate'):
        per_day('17/week')
