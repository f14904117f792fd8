"""facts/advice.py: the economics, dedicated or shared, the MTA and the IPs per stream, with their arithmetic."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from mailinfra_iac import parse_spec
from mailinfra_iac.facts.advice import (
    DASH,
    DEDICATED_PER_MONTH,
    DERIVED,
    ENGAGED_SHARED_PER_MONTH,
    POWERMTA_THRESHOLD_PER_DAY,
    TIMES,
    TRANSACTIONAL_DEDICATED_PER_MONTH,
    WARMED_PER_IP_PER_DAY,
    Costs,
    Curve,
    Input,
    Section,
    advise_mta,
    catalogue_isps,
    economics,
    infrastructure,
    ip_count,
    money,
    mta_section,
    percent,
    recommend_mta,
    volume_input,
    warmup_days,
)
from mailinfra_iac.facts.capacity import WARMUP_DAILY, warmup_daily_cap

from ..conftest import AS_OF, BASE

SEED = volume_input(1_000_000, '--monthly-volume')


def seed_economics(costs: Costs | None = None) -> Section:
    return economics(SEED, Decimal('0.10'), Decimal('0.78'), Decimal('0.97'), costs)


def test_seed_example_is_reproduced_exactly() -> None:
    section = seed_economics()
    added = section.figure('added_revenue')
    assert added.value == 19_000 and added.shown == '€19,000/month'
    assert added.reason == (
        f'1,000,000 mails/month {TIMES} (97% - 78%) {TIMES} €0.10 per inbox-delivered mail = €19,000/month'
    )
    cost = section.figure('cost_difference')
    assert cost.value == {'low': 300, 'high': 600} and cost.shown == f'€300{DASH}600/month'
    assert section.figure('net_gain').value == {'low': 18_400, 'high': 18_700}
    assert section.figure('extra_inbox_mails').value == 190_000
    assert section.verdict == (
        f'dedicated infrastructure pays: €19,000/month added revenue against a €300{DASH}600/month cost difference'
    )
    # every input of the added revenue is named with its flag
    assert [(item.name, item.source) for item in added.inputs] == [
        ('monthly_volume', '--monthly-volume'),
        ('placement_shared', '--placement-shared'),
        ('placement_dedicated', '--placement-dedicated'),
        ('revenue_per_inbox', '--revenue-per-inbox'),
    ]


def test_figures_built_on_figures_name_them_as_inputs() -> None:
    net = seed_economics().figure('net_gain')
    assert [(item.name, item.source) for item in net.inputs] == [
        ('added_revenue', DERIVED),
        ('cost_difference', DERIVED),
    ]
    peak = Input('peak_hourly', 1, '1', 'test')
    count = ip_count(None, volume_input(1, 't'), peak, catalogue_isps(), 's', 'l').figure('ip_count')
    assert [item.name for item in count.inputs] == ['ips_for_peak', 'ips_for_daily_volume']


def test_economics_is_exact_where_floats_are_not() -> None:
    # 0.97 - 0.78 is 0.18999999999999995 in binary floating point; the advice must still say 19,000
    assert (0.97 - 0.78) * 0.10 * 1_000_000 != 19_000
    assert seed_economics().figure('added_revenue').value == 19_000


def test_break_even_volume_is_the_cost_over_the_gain_per_mail() -> None:
    # 300 / (0.19 x 0.10) = 15,789.47 -> 15,790; 600 / 0.019 = 31,578.9 -> 31,579
    assert seed_economics().figure('break_even_volume').value == {'low': 15_790, 'high': 31_579}


def test_own_costs_replace_the_seed_estimate() -> None:
    section = seed_economics(Costs(Decimal(100), Decimal(450)))
    assert section.figure('cost_difference').value == 350
    assert section.figure('cost_difference').reason == '€450/month - €100/month = €350/month'
    assert section.figure('net_gain').value == 18_650


def test_dedicated_does_not_pay_when_the_gain_is_small() -> None:
    section = economics(volume_input(10_000, 'x'), Decimal('0.02'), Decimal('0.90'), Decimal('0.95'))
    # 10,000 x 5% x €0.02 = €10 against €300-600
    assert section.figure('added_revenue').value == 10
    assert section.verdict.startswith('dedicated infrastructure does not pay')
    between = economics(volume_input(100_000, 'x'), Decimal('0.10'), Decimal('0.90'), Decimal('0.95'))
    assert between.figure('added_revenue').value == 500
    assert between.verdict.startswith('dedicated infrastructure may pay')


def test_worse_dedicated_placement_has_no_break_even() -> None:
    section = economics(SEED, Decimal('0.10'), Decimal('0.97'), Decimal('0.78'))
    assert section.figure('added_revenue').value == -19_000
    assert [figure.name for figure in section.figures if figure.name == 'break_even_volume'] == []
    assert 'does not pay' in section.verdict


@pytest.mark.parametrize(
    ('value', 'shown'),
    [
        (Decimal('19000'), '€19,000'),
        (Decimal('0.10'), '€0.10'),
        (Decimal('0.1'), '€0.10'),
        (Decimal('0.005'), '€0.005'),
    ],
)
def test_money(value: Decimal, shown: str) -> None:
    assert money(value, '€') == shown


def test_percent() -> None:
    assert percent(Decimal('0.78')) == '78%' and percent(Decimal('0.975')) == '97.5%'


def use(kind: str | None) -> Input:
    return Input('use_case', kind, str(kind), 'test')


@pytest.mark.parametrize(
    ('kind', 'volume', 'choice'),
    [
        (None, DEDICATED_PER_MONTH - 1, 'shared'),
        (None, DEDICATED_PER_MONTH, 'dedicated'),
        ('marketing', 499_999, 'shared'),
        ('marketing', 500_000, 'dedicated'),
        ('cold_outreach', 400_000, 'shared'),
        # transactional mail: dedicated far below the conventional threshold
        ('transactional', 60_000, 'dedicated'),
        ('transactional', TRANSACTIONAL_DEDICATED_PER_MONTH, 'dedicated'),
        ('transactional', TRANSACTIONAL_DEDICATED_PER_MONTH - 1, 'shared'),
        # an engaged list stays shared up to 1,000,000 a month
        ('engaged_marketing', 800_000, 'shared'),
        ('engaged_marketing', ENGAGED_SHARED_PER_MONTH, 'shared'),
        ('engaged_marketing', ENGAGED_SHARED_PER_MONTH + 1, 'dedicated'),
    ],
)
def test_dedicated_or_shared_by_use_case(kind: str | None, volume: int, choice: str) -> None:
    section = infrastructure(None, volume_input(volume, 'test'), use(kind))
    figure = section.figure('infrastructure')
    assert figure.value == choice
    threshold = next(item for item in figure.inputs if item.name == 'threshold')
    assert f'{threshold.value:,}' in figure.reason and f'{volume:,}' in figure.reason


def test_transactional_floor_comes_from_the_warm_up_curve() -> None:
    assert TRANSACTIONAL_DEDICATED_PER_MONTH == WARMUP_DAILY[0][1] * 30 < DEDICATED_PER_MONTH


@pytest.mark.parametrize(
    ('daily', 'mta'),
    [(POWERMTA_THRESHOLD_PER_DAY, 'postfix'), (POWERMTA_THRESHOLD_PER_DAY + 1, 'powermta'), (33_333, 'postfix')],
)
def test_mta_choice(daily: int, mta: str) -> None:
    assert recommend_mta(daily)[0] == mta
    section = mta_section(volume_input(daily * 30, 'test'))
    assert section.figure('daily_volume').value == daily
    assert section.figure('mta').value == mta and section.verdict == mta


def test_spec_mta_advice_is_unchanged_and_reused() -> None:
    spec = parse_spec(BASE, 'spec.yml', as_of=AS_OF)
    monthly = sum(stream.volume.monthly for stream in spec.deployment.streams.values())
    section = mta_section(volume_input(monthly, 'spec'), advice=spec.facts.mta)
    assert section.figure('mta').reason == '; '.join(spec.facts.mta.reasons)
    again = advise_mta(spec.deployment, {name: stream.kind for name, stream in spec.facts.streams.items()})
    assert again == spec.facts.mta


def test_ip_count_from_the_peak_hour_and_the_isp_limits() -> None:
    isps = {'gmail': catalogue_isps()['gmail']}  # gmail 35%, 3,600/hour per IP; the other 65% at 5,000/hour

    def peak_ips(peak: int) -> dict[str, int]:
        section = ip_count(None, volume_input(0, 't'), Input('peak_hourly', peak, str(peak), 't'), isps, 's', 'l')
        return {figure.name: figure.value for figure in section.figures}

    exactly = peak_ips(36_000)  # 12,600 to Gmail = 3.5 IPs; 23,400 to the rest = 4.68 IPs
    assert exactly['ips_for_peak.gmail'] == 4 and exactly['ips_for_peak.other'] == 5
    assert exactly['ips_for_peak'] == 5 and exactly['ip_count'] == 5
    one = peak_ips(7_692)  # 2,692 to Gmail, 5,000 to the rest: one IP each, exactly at the limit
    assert one['ips_for_peak.other'] == 1 and one['ip_count'] == 1
    assert peak_ips(7_694)['ips_for_peak.other'] == 2  # 5,001 to the rest


def test_ip_count_from_the_daily_volume_once_warmed() -> None:
    monthly = 30 * (2 * WARMED_PER_IP_PER_DAY + 1)  # just over two warmed IPs' worth a day
    section = ip_count(
        None, volume_input(monthly, 'test'), Input('peak_hourly', 1, '1', 'test'), catalogue_isps(), 's', 'l'
    )
    assert section.figure('ips_for_daily_volume').value == 3
    assert section.figure('ip_count').value == 3


def test_small_stream_needs_one_ip() -> None:
    section = ip_count(None, volume_input(0, 'test'), Input('peak_hourly', 0, '0', 'test'), catalogue_isps(), 's', 'l')
    assert section.figure('ip_count').value == 1
    assert section.figure('full_volume_day').value == 1


def test_warmup_days_follow_the_capacity_curve() -> None:
    # one IP reaches 3,000 a day on day 7 of the conservative curve and not before
    assert warmup_days(1, 3000, 0) == 7
    assert warmup_days(2, 3000, 0) == 6  # 1,500 each on day 6
    # 250 an hour needs a daily cap of 3,000 at 12 sending hours
    assert warmup_days(1, 0, 250) == 7
    # more than the curve ever gives: the day after its last step, when nothing is capped any more
    assert warmup_days(1, 10 * WARMED_PER_IP_PER_DAY, 0) == WARMUP_DAILY[-1][0] + 1
    start = dt.date(2026, 1, 1)
    for day in (8, 15, 29):
        cap = warmup_daily_cap(start, start + dt.timedelta(days=day - 1))
        assert cap is not None
        assert warmup_days(1, cap, 0) == day


def test_pool_size_and_warm_up_today_are_compared() -> None:
    isps = catalogue_isps()
    peak = Input('peak_hourly', 20_000, '20,000', 'test')
    day = Input('as_of', '2026-11-28', '2026-11-28', 'test')
    section = ip_count('m', volume_input(1_900_000, 'test'), peak, isps, 's', 'l', pool_size=1, warmup=(day, 500))
    needed = section.figure('ip_count').value
    assert needed == 2  # 7,000 an hour to Gmail at 3,600 per IP
    assert 'the pool has 1 (1 short)' in section.verdict
    assert section.figure('warmup_capacity').value == 500
    assert '19,500/hour short' in section.verdict
    enough = ip_count(
        'm', volume_input(1_000, 'test'), Input('peak_hourly', 10, '10', 't'), isps, 's', 'l', 5, (day, 50)
    )
    assert 'the pool has 5 (enough)' in enough.verdict and 'warm-up on 2026-11-28: enough' in enough.verdict


def test_a_custom_curve_sets_the_warmed_volume_and_the_days() -> None:
    curve = Curve.of_spec('custom', ((1, 100), (5, 1_000)))
    assert curve.source == 'the custom curve (spec: warmup.steps)'
    assert warmup_days(1, 1_000, 0, curve.points) == 5
    assert warmup_days(1, 1_001, 0, curve.points) == 6  # after the last step nothing is capped
    peak = Input('peak_hourly', 1, '1', 'test')
    section = ip_count(None, volume_input(30 * 2_500, 'test'), peak, catalogue_isps(), 's', 'l', curve=curve)
    assert section.figure('ips_for_daily_volume').value == 3  # 2,500 a day at 1,000 per warmed IP
    warmed = next(
        item for item in section.figure('ips_for_daily_volume').inputs if item.name == 'warmed_per_ip_per_day'
    )
    assert warmed.value == 1_000 and 'custom curve (spec: warmup.steps)' in warmed.source
    assert section.figure('full_volume_day').value == 5  # 3 x 1,000 on day 5; day 4 gives 3 x 562


def test_the_pools_own_start_days_give_its_date() -> None:
    peak = Input('peak_hourly', 1, '1', 'test')
    section = ip_count('s', volume_input(3_000, 'test'), peak, catalogue_isps(), 's', 'l', reach=dt.date(2026, 12, 9))
    assert section.figure('pool_full_volume_date').value == '2026-12-09'
    assert section.verdict.endswith('the pool reaches the daily volume on 2026-12-09')
    assert 'pool_full_volume_date' not in [
        figure.name for figure in ip_count(None, volume_input(3_000, 't'), peak, catalogue_isps(), 's', 'l').figures
    ]
