"""``mailinfra advise``: with and without a spec, text and JSON, and clear usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mailinfra_iac.cli.main import main
from mailinfra_iac.facts.advice import DASH, TIMES

from ..conftest import BASE, ROOT, edit

SEED_FLAGS = (
    '--monthly-volume',
    '1000000',
    '--revenue-per-inbox',
    '0.10',
    '--placement-shared',
    '0.78',
    '--placement-dedicated',
    '0.97',
)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(['advise', *args])
    except SystemExit as exit_:  # argparse's usage errors
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / 'spec.yml'
    path.write_text(BASE)
    return path


def test_seed_example_prints_its_arithmetic(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *SEED_FLAGS)
    assert code == 0 and err == ''
    lines = out.splitlines()
    assert lines[0] == (
        f'Economics: dedicated infrastructure pays: €19,000/month added revenue against a €300{DASH}600/month '
        'cost difference'
    )
    assert '  added revenue: €19,000/month' in lines
    assert (
        f'      because 1,000,000 mails/month {TIMES} (97% - 78%) {TIMES} €0.10 per inbox-delivered mail = '
        '€19,000/month'
    ) in lines
    assert f'  cost difference: €300{DASH}600/month' in lines
    assert f'  net gain: €18,400{DASH}18,700/month' in lines
    # the inputs and their sources are named
    assert 'placement shared 78% (--placement-shared)' in out and 'revenue per inbox €0.10 (--revenue-per-inbox)' in out
    # the rest of the advice follows
    assert 'Dedicated or shared: dedicated infrastructure' in out and 'MTA: postfix' in out
    assert 'IPs: 1 IP(s), full volume on warm-up day 17' in out


def test_percentages_and_own_costs(capsys: pytest.CaptureFixture[str]) -> None:
    flags = [
        '--placement-shared',
        '78%',
        '--placement-dedicated',
        '97%',
        '--cost-shared',
        '50',
        '--cost-dedicated',
        '500',
    ]
    code, out, _ = run(capsys, '--monthly-volume', '1,000,000', '--revenue-per-inbox', '0.10', *flags)
    assert code == 0
    assert '  cost difference: €450/month' in out and '€500/month - €50/month = €450/month' in out
    assert '  net gain: €18,550/month' in out


def test_json_has_every_figure_with_reason_and_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *SEED_FLAGS, '--use-case', 'transactional', '--format', 'json')
    assert code == 0
    report = json.loads(out)
    assert report['spec'] is None
    assert [section['topic'] for section in report['sections']] == ['economics', 'infrastructure', 'mta', 'ips']
    economics = report['sections'][0]
    added = next(figure for figure in economics['figures'] if figure['name'] == 'added_revenue')
    assert added['value'] == 19000
    assert {item['name']: item['value'] for item in added['inputs']} == {
        'monthly_volume': 1000000,
        'placement_shared': 0.78,
        'placement_dedicated': 0.97,
        'revenue_per_inbox': 0.1,
    }
    for section in report['sections']:
        for figure in section['figures']:
            assert figure['reason'], figure['name']
    assert report['sections'][1]['figures'][0]['value'] == 'dedicated'  # transactional, far below 500,000
    assert report['sections'][2]['verdict'] == 'postfix'


def test_without_economics_flags_it_says_which_to_give(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, '--monthly-volume', '40000000', '--use-case', 'marketing')
    assert code == 0
    assert not out.startswith('Economics:')
    assert out.splitlines()[-1].startswith('Economics: give --revenue-per-inbox')
    assert 'MTA: powermta' in out  # 1,333,333 a day
    assert '--peak-hourly not given: 1,333,333/day over 12 sending hours' in out


def test_engaged_marketing_stays_shared_up_to_a_million(capsys: pytest.CaptureFixture[str]) -> None:
    _, plain, _ = run(capsys, '--monthly-volume', '800000', '--use-case', 'marketing')
    _, engaged, _ = run(capsys, '--monthly-volume', '800000', '--use-case', 'marketing', '--engaged')
    assert 'Dedicated or shared: dedicated infrastructure' in plain
    assert 'Dedicated or shared: shared infrastructure' in engaged


def test_with_a_spec_every_stream_gets_advice_from_its_own_inputs(
    capsys: pytest.CaptureFixture[str], spec: Path
) -> None:
    code, out, _ = run(capsys, str(spec), '--as-of', '2026-11-28', '--format', 'json', *SEED_FLAGS[2:])
    assert code == 0
    report = json.loads(out)
    topics = [(section['topic'], section['subject']) for section in report['sections']]
    assert topics == [
        ('economics', None),
        ('infrastructure', 'transactional'),
        ('infrastructure', 'marketing'),
        ('mta', None),
        ('ips', 'transactional'),
        ('ips', 'marketing'),
    ]
    economics = report['sections'][0]
    volume = economics['figures'][0]['inputs'][0]
    assert volume == {
        'name': 'monthly_volume',
        'value': 330000,
        'shown': '330,000 mails/month',
        'source': 'spec: the sum of streams.*.volume.monthly',
    }
    transactional, marketing = report['sections'][1], report['sections'][2]
    assert transactional['verdict'] == 'dedicated infrastructure'  # 30,000 a month of password resets
    assert marketing['verdict'] == 'shared infrastructure'  # 300,000 < 500,000
    ips = report['sections'][5]
    sources = {item['source'] for figure in ips['figures'] for item in figure['inputs']}
    assert 'spec: streams.marketing.volume.peak_hourly' in sources and "spec: the stream's pool" in sources
    pool = next(figure for figure in ips['figures'] if figure['name'] == 'pool_ips')
    assert pool['value'] == 2


def test_spec_warm_up_today_is_compared_with_the_peak(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / 'warming.yml'
    path.write_text(
        edit(
            '        ptr: tx1.testco.example\n', '        ptr: tx1.testco.example\n        warmup_started: 2026-11-27\n'
        )
    )
    code, out, _ = run(capsys, str(path), '--as-of', '2026-11-28')
    assert code == 0
    # day 2 of the curve: 100 a day, 8 an hour, against a peak of 300; day 8 gives 4,063 a day, 338 an hour
    verdict = 'IPs: stream transactional: 1 IP(s), full volume on warm-up day 8; the pool has 1 (enough); warm-up on '
    assert verdict in out
    assert 'warm-up on 2026-11-28: 292/hour short' in out
    assert 'as of 2026-11-28 (--as-of)' in out


def test_output_is_deterministic(capsys: pytest.CaptureFixture[str], spec: Path) -> None:
    first = run(capsys, str(spec), '--as-of', '2026-11-28', *SEED_FLAGS[2:])
    assert first == run(capsys, str(spec), '--as-of', '2026-11-28', *SEED_FLAGS[2:])


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        ((), 'give a SPEC, or --monthly-volume'),
        (('--monthly-volume', 'lots'), '"lots" is not a whole number'),
        (('--monthly-volume', '-5'), 'is negative'),
        (('--monthly-volume', '5', '--placement-shared', '1.2'), 'is not a placement rate'),
        (('--monthly-volume', '5', '--revenue-per-inbox', 'nan'), 'is not a finite number'),
        (('--monthly-volume', '5', '--revenue-per-inbox', '0.1'), 'the economics need --placement-shared'),
        ((*SEED_FLAGS, '--cost-shared', '10'), '--cost-shared and --cost-dedicated go together'),
        (('--monthly-volume', '5', '--cost-shared', '1', '--cost-dedicated', '2'), 'need --revenue-per-inbox'),
        (('--monthly-volume', '5', '--engaged'), '--engaged describes a marketing list'),
        (('--monthly-volume', '5', '--use-case', 'newsletters'), 'invalid choice'),
    ],
)
def test_bad_input_is_a_usage_error(capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ''
    assert message in err and 'Traceback' not in err


def test_spec_and_volume_flags_do_not_mix(capsys: pytest.CaptureFixture[str], spec: Path) -> None:
    code, _, err = run(capsys, str(spec), '--monthly-volume', '5')
    assert code == 2 and "the spec gives each stream's volume and kind" in err


def test_engaged_needs_a_marketing_stream(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / 'spec.yml'
    path.write_text(
        edit('  marketing:\n    use_case: newsletter', '  marketing:\n    kind: custom\n    use_case: newsletter')
    )
    code, _, err = run(capsys, str(path), '--engaged')
    assert code == 2 and 'the spec has no marketing stream' in err


def test_invalid_spec_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, str(tmp_path / 'missing.yml'))
    assert code == 1 and 'no such file' in err


def test_installed_command_runs_the_readme_example() -> None:
    done = subprocess.run(
        [Path(sys.executable).parent / 'mailinfra', 'advise', *SEED_FLAGS],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '€19,000/month' in done.stdout


def test_docs_example_is_the_real_output(capsys: pytest.CaptureFixture[str]) -> None:
    doc = (ROOT / 'docs' / 'advisor.md').read_text()
    start = doc.index('$ mailinfra advise --monthly-volume 1000000')
    block = doc[start : doc.index('\n...\n', start)].splitlines()
    command, shown = block[0], block[1:]
    assert command.split()[3:] == list(SEED_FLAGS)
    _, out, _ = run(capsys, *SEED_FLAGS)
    assert out.splitlines()[: len(shown)] == shown


def test_spec_curve_and_the_pools_start_days_are_used(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / 'curve.yml'
    warming = edit('ptr: tx1.testco.example\n', 'ptr: tx1.testco.example\n        warmup_started: 2026-11-27\n')
    path.write_text(warming + 'warmup: {curve: custom, steps: {1: 100, 5: 1000}}\n')
    code, out, _ = run(capsys, str(path), '--as-of', '2026-11-28', '--format', 'json')
    assert code == 0
    [ips] = [s for s in json.loads(out)['sections'] if s['topic'] == 'ips' and s['subject'] == 'transactional']
    figures = {figure['name']: figure for figure in ips['figures']}
    # 1,000 a day: one IP at the custom curve's last step (day 5); the peak of 300/hour needs day 6 (no cap)
    assert figures['ips_for_daily_volume']['value'] == 1
    assert figures['full_volume_day']['value'] == 6
    # day 2 of the curve on 2026-11-28: 177 a day, 14 an hour
    assert figures['warmup_capacity']['value'] == 14
    # started 2026-11-27, day 5 (1,000 a day) is 2026-12-01
    assert figures['pool_full_volume_date']['value'] == '2026-12-01'
    sources = {item['source'] for item in figures['ips_for_daily_volume']['inputs']}
    assert any('custom curve (spec: warmup.steps)' in source for source in sources)
