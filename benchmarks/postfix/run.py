"""Postfix benchmark: our converged Postfix against Debian's stock Postfix, in one container and one run.

Usage (as root, from the repository root, after script/setup-podman and script/build-images)::

    python benchmarks/postfix/run.py [--distro 12] [--messages 10000] [--rounds 3] [--keep]

1. renders ``benchmarks/postfix/spec.yml`` (keys in a temporary key store), starts a systemd container
   from ``localhost/mailinfra-debian:<distro>`` and prepares it (prepare.yml: local DNS, sink route);
2. converges ``playbooks/site.yml`` from the generated inventory twice and times both runs (the
   second must change nothing);
3. adds Debian's stock Postfix as a second instance next to ours: main.cf and master.cf exactly as the
   postfix package writes them for "Internet Site" (taken from a fresh container of the same image),
   changed only where two instances must differ (queue and data directory, instance name, listener
   port 2600 instead of 25, which our MX holds); and a second OpenDKIM with Debian's opendkim.conf;
4. runs ``measure.sh`` for each configuration, round after round (interleaved, so that background load
   hits all of them alike): smtp-source -> instance -> smtp-sink, end to end;
5. prints the medians and the ratios, and writes them as JSON to --output.

Configurations, each the same work on both sides of a pair:

* ``stock`` (Debian's defaults) and ``ours`` (the stream instance as converged, OpenDKIM attached, with a
  sender it does not sign): relaying without DKIM;
* ``stock-dkim`` (stock Postfix with Debian's stock opendkim.conf, wired as its README.Debian shows,
  signing with our key table) and ``ours-signed`` (a sender our OpenDKIM signs with RSA-2048, as
  production sends): relaying with DKIM;
* what made the difference: ``ours-nomilter`` (ours with OpenDKIM detached: our Postfix settings alone),
  ``ours-journald`` (ours, logging to syslog/journald like stock) and ``stock-maillog`` (stock, logging
  to its own file like ours).

Before measuring, one message per configuration proves that exactly the ``-dkim``/``-signed`` ones arrive
signed. ``measure.sh`` also reports the CPU OpenDKIM spent per message.
Only RFC 5737 and loopback addresses inside the container are used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SPEC = HERE / 'spec.yml'
CONTAINER = 'mailinfra-bench-postfix'
HOST = 'mta1'
AS_OF = '2026-11-28'
OURS = '/etc/postfix-bulk'
STOCK = '/etc/postfix-stock'
SESSIONS = 20
SIZE = 2000
CONFIGURATIONS = {
    # label: (port, configuration directory, envelope sender)
    'stock': (2600, STOCK, 'bench@unsigned.test'),
    'ours': (2525, OURS, 'bench@unsigned.test'),
    'stock-dkim': (2600, STOCK, 'bench@bench.example'),
    'ours-signed': (2525, OURS, 'bench@bench.example'),
    'ours-nomilter': (2525, OURS, 'bench@unsigned.test'),
    'ours-journald': (2525, OURS, 'bench@unsigned.test'),
    'stock-maillog': (2600, STOCK, 'bench@unsigned.test'),
}
OVERRIDES = {
    # label: (instance, main.cf settings for its runs); restored afterwards
    'stock-dkim': (
        STOCK,
        {
            'smtpd_milters': 'unix:/opendkim/opendkim.sock',  # inside the chroot of Debian's master.cf
            'non_smtpd_milters': '$smtpd_milters',
            'milter_default_action': 'accept',
        },
    ),
    'ours-nomilter': (OURS, {'smtpd_milters': '', 'non_smtpd_milters': ''}),
    'ours-journald': (OURS, {'maillog_file': ''}),
    'stock-maillog': (STOCK, {'maillog_file': '/var/log/postfix/postfix-stock.log'}),
}


def log(message: str) -> None:
    print(f'bench: {message}', file=sys.stderr, flush=True)


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, text=True, **kwargs)


def podman(*args: str, capture: bool = True) -> str:
    return run(['podman', *args], capture_output=capture).stdout if capture else run(['podman', *args]).stdout


def shell(script: str) -> str:
    """Run a shell script in the benchmark container and return its output."""
    return podman('exec', CONTAINER, 'bash', '-euo', 'pipefail', '-c', script)


def render(work: Path, distro: str) -> Path:
    """Keys, inventory and an inventory overlay with the podman connection; returns the inventory directory."""
    venv_bin = Path(sys.executable).parent
    keys, out, inventory = work / 'keys', work / 'render', work / 'inventory'
    keys.mkdir(mode=0o700)
    run(
        [str(venv_bin / 'mailinfra'), 'dkim', 'generate', '--as-of', AS_OF, '--keys', str(keys), str(SPEC)],
        capture_output=True,
    )
    sys.path.insert(0, str(ROOT / 'molecule' / 'default'))
    from render_inventory import container_inventory
    from render_inventory import render as render_spec  # the same rendering as the Molecule scenario

    render_spec(SPEC, out, keys)
    container_inventory(out, inventory, CONTAINER, keys, {}, '20-bench.yml')
    log(f'distro {distro}: inventory in {inventory}')
    return inventory


def ansible_playbook(inventory: Path, playbook: Path) -> tuple[float, str]:
    env = {
        **os.environ,
        'ANSIBLE_ROLES_PATH': str(ROOT / 'roles'),
        'ANSIBLE_FORCE_COLOR': 'false',
        'ANSIBLE_NOCOLOR': 'true',
        'ANSIBLE_HOST_KEY_CHECKING': 'false',
    }
    started = time.monotonic()
    result = run(
        [str(Path(sys.executable).parent / 'ansible-playbook'), '-i', str(inventory), str(playbook)],
        capture_output=True,
        env=env,
    )
    recap = [line for line in result.stdout.splitlines() if line.startswith(f'{HOST} ') and 'ok=' in line]
    return time.monotonic() - started, recap[-1] if recap else ''


def stock_configuration(image: str) -> tuple[str, str, str]:
    """main.cf and master.cf as Debian's postfix package writes them ("Internet Site"), and opendkim.conf as
    Debian's opendkim package ships it, from a fresh container of the same image."""
    helper = f'{CONTAINER}-stock'
    podman('rm', '-f', helper)
    podman('run', '-d', '--name', helper, '--systemd=always', image, '/sbin/init')
    try:
        # The container is still booting: retry until its network answers.
        podman(
            'exec',
            helper,
            'bash',
            '-c',
            'echo stock.bench.test >/etc/mailname\n'
            'for attempt in 1 2 3 4 5 6; do\n'
            '  apt-get update -qq && DEBIAN_FRONTEND=noninteractive\\\n'
            '    apt-get install -y -qq postfix opendkim >/dev/null && exit\n'
            '  sleep 5\n'
            'done\n'
            'exit 1',
        )
        main_cf = podman('exec', helper, 'cat', '/etc/postfix/main.cf')
        master_cf = podman('exec', helper, 'cat', '/etc/postfix/master.cf')
        opendkim_conf = podman('exec', helper, 'cat', '/etc/opendkim.conf')
    finally:
        podman('rm', '-f', helper)
    return main_cf, master_cf, opendkim_conf


def add_stock_instance(main_cf: str, master_cf: str, opendkim_conf: str) -> None:
    """Stock Postfix as a second instance, and a stock OpenDKIM for the ``stock-dkim`` runs.

    The OpenDKIM is Debian's opendkim.conf plus what its README.Debian asks for with a chrooted
    Postfix: the socket inside the stock queue directory and postfix in the opendkim group; it signs
    with our key table (the same key, the same signing table).
    """
    stock_dkim = ''.join(
        line + '\n'
        for line in opendkim_conf.splitlines()
        if not line.startswith(('Socket', 'PidFile', 'KeyTable', 'SigningTable'))
    ) + (
        'Socket local:/var/spool/postfix-stock/opendkim/opendkim.sock\n'
        'PidFile /run/opendkim/opendkim-stock.pid\n'
        'KeyTable file:/etc/opendkim/KeyTable\n'
        'SigningTable refile:/etc/opendkim/SigningTable\n'
    )
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, 'main.cf').write_text(main_cf)
        Path(directory, 'master.cf').write_text(master_cf.replace('\nsmtp      inet', '\n2600      inet', 1))
        Path(directory, 'opendkim.conf').write_text(stock_dkim)
        shell(f'mkdir -p {STOCK}')
        podman('cp', f'{directory}/main.cf', f'{CONTAINER}:{STOCK}/main.cf')
        podman('cp', f'{directory}/master.cf', f'{CONTAINER}:{STOCK}/master.cf')
        podman('cp', f'{directory}/opendkim.conf', f'{CONTAINER}:/etc/opendkim-stock.conf')
    shell(
        f'postconf -c {STOCK} -e queue_directory=/var/spool/postfix-stock data_directory=/var/lib/postfix-stock '
        f'multi_instance_name=postfix-stock multi_instance_enable=yes myhostname=stock.bench.test '
        f"'mydestination=$myhostname, localhost'\n"
        f'mkdir -p /var/spool/postfix-stock/opendkim /var/lib/postfix-stock && chown postfix: /var/lib/postfix-stock\n'
        'chown opendkim:postfix /var/spool/postfix-stock/opendkim && chmod 0750 /var/spool/postfix-stock/opendkim\n'
        'usermod -aG opendkim postfix\n'
        'opendkim -x /etc/opendkim-stock.conf\n'
        f'postconf -e "multi_instance_directories = $(postconf -h multi_instance_directories) {STOCK}"\n'
        'systemctl daemon-reload && systemctl start postfix@postfix-stock.service\n'
        f'postconf -c {STOCK} -n | grep -E "^(smtpd_banner|inet_interfaces|mynetworks|maillog_file)" || true'
    )


def postconf(config: str, settings: dict[str, str]) -> None:
    """Set main.cf parameters of one instance and reload it."""
    assignments = ' '.join(shlex.quote(f'{name}={value}') for name, value in settings.items())
    shell(f'postconf -c {config} -e {assignments} && postfix -c {config} reload 2>/dev/null')


@contextlib.contextmanager
def overridden(label: str) -> Iterator[None]:
    """The settings of configuration ``label`` (see OVERRIDES) while it runs, the previous ones afterwards."""
    if label not in OVERRIDES:
        yield
        return
    config, settings = OVERRIDES[label]
    before = {name: shell(f'postconf -c {config} -h {name}').rstrip('\n') for name in settings}
    postconf(config, settings)
    try:
        yield
    finally:
        postconf(config, before)


def measure(label: str, count: int) -> dict[str, Any]:
    port, config, sender = CONFIGURATIONS[label]
    with overridden(label):
        output = shell(
            f'/usr/local/bin/mailinfra-bench-measure {label} {port} {config} {sender} {count} {SESSIONS} {SIZE}'
        )
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result['base'] = label.split('-')[0]
    return result


def signs(label: str) -> bool:
    """Whether a message sent the way configuration ``label`` sends arrives DKIM-signed at the sink."""
    port, _, sender = CONFIGURATIONS[label]
    with overridden(label):
        output = shell(
            'rm -f /tmp/mailinfra-bench-dump\n'
            'smtp-sink -u postfix -D /tmp/mailinfra-bench-dump 198.51.100.25:10025 16 & sink=$!\n'
            'sleep 0.5\n'
            f'smtp-source -m 1 -l {SIZE} -f {sender} -t check@sink.test 127.0.0.1:{port}\n'
            'for attempt in $(seq 100); do [ -s /tmp/mailinfra-bench-dump ] && break; sleep 0.1; done\n'
            'sleep 0.2; kill $sink\n'
            'grep -c "^DKIM-Signature:" /tmp/mailinfra-bench-dump || true'
        )
    return output.strip().splitlines()[-1] != '0'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--distro', default='12', choices=['12', '13'])
    parser.add_argument('--messages', type=int, default=10_000)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--output', type=Path, default=HERE / 'results.json')
    parser.add_argument('--keep', action='store_true', help='leave the container running afterwards')
    args = parser.parse_args()
    os.environ.setdefault('CONTAINERS_CONF', str(ROOT / 'molecule' / 'containers.conf'))
    image = f'localhost/mailinfra-debian:{args.distro}'
    work = Path(tempfile.mkdtemp(prefix='mailinfra-bench-', dir='/var/tmp'))
    results: dict[str, Any] = {
        'distro': args.distro,
        'messages': args.messages,
        'sessions': SESSIONS,
        'size': SIZE,
        'rounds': args.rounds,
    }
    try:
        inventory = render(work, args.distro)
        podman('rm', '-f', CONTAINER)
        podman('run', '-d', '--name', CONTAINER, '--systemd=always', '--cap-add', 'NET_ADMIN', image, '/sbin/init')
        log('preparing the container')
        ansible_playbook(inventory, HERE / 'prepare.yml')
        log('first converge of playbooks/site.yml')
        first, first_recap = ansible_playbook(inventory, ROOT / 'playbooks' / 'site.yml')
        log(f'  {first:.0f} s: {first_recap}')
        second, second_recap = ansible_playbook(inventory, ROOT / 'playbooks' / 'site.yml')
        log(f'second converge: {second:.0f} s: {second_recap}')
        results['converge'] = {
            'first_seconds': round(first, 1),
            'first_recap': first_recap,
            'second_seconds': round(second, 1),
            'second_recap': second_recap,
            'idempotent': 'changed=0' in second_recap and 'failed=0' in second_recap,
        }
        log('adding the stock Postfix instance')
        add_stock_instance(*stock_configuration(image))
        signed = {label: signs(label) for label in ('stock', 'ours', 'stock-dkim', 'ours-signed')}
        results['dkim_signed'] = signed
        log(f'DKIM signature on the delivered message: {signed}')
        if signed != {'stock': False, 'ours': False, 'stock-dkim': True, 'ours-signed': True}:
            raise SystemExit(f'the configurations do not do the work they claim (DKIM signatures: {signed})')
        podman('cp', str(HERE / 'measure.sh'), f'{CONTAINER}:/usr/local/bin/mailinfra-bench-measure')
        shell('chmod 0755 /usr/local/bin/mailinfra-bench-measure')
        for label in ('stock', 'ours'):
            measure(label, min(1000, args.messages))  # warm-up: caches, first connections
        runs = []
        for round_number in range(1, args.rounds + 1):
            for label in CONFIGURATIONS:
                result = measure(label, args.messages)
                result['round'] = round_number
                result['load'] = os.getloadavg()[0]
                runs.append(result)
                log(
                    f'round {round_number} {label}: {result["messages_per_second"]} msg/s, '
                    f'{result["cpu_ms_per_message"]} ms CPU/msg (load {result["load"]:.1f})'
                )
        results['runs'] = runs
        medians = {
            label: {
                key: statistics.median(run[key] for run in runs if run['label'] == label)
                for key in ('messages_per_second', 'cpu_ms_per_message', 'opendkim_cpu_ms_per_message', 'seconds')
            }
            for label in CONFIGURATIONS
        }
        results['medians'] = medians
        stock = medians['stock']['messages_per_second']
        results['ratios_to_stock'] = {
            label: round(value['messages_per_second'] / stock, 2) for label, value in medians.items()
        }
        # The headline: the same work on both sides, without and with DKIM signing.
        results['same_work'] = {
            f'{ours} / {theirs}': round(
                medians[ours]['messages_per_second'] / medians[theirs]['messages_per_second'], 2
            )
            for ours, theirs in (('ours', 'stock'), ('ours-signed', 'stock-dkim'))
        }
        args.output.write_text(json.dumps(results, indent=2) + '\n')
        summary = ('converge', 'medians', 'same_work', 'ratios_to_stock')
        print(json.dumps({key: results[key] for key in summary}, indent=2))
    finally:
        if not args.keep:
            subprocess.run(['podman', 'rm', '-f', CONTAINER], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
