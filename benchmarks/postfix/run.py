"""Postfix benchmark: our converged Postfix against Debian's stock Postfix, in one container and one run.

Usage (as root, from the repository root, after script/setup-podman and script/build-images)::

    python benchmarks/postfix/run.py [--distro 12] [--messages 20000] [--rounds 3] [--keep]

1. renders ``benchmarks/postfix/spec.yml`` (keys in a temporary key store), starts a systemd container
   from ``localhost/mailinfra-debian:<distro>`` and prepares it (prepare.yml: local DNS, sink route);
2. converges ``playbooks/site.yml`` from the generated inventory twice and times both runs (the
   second must change nothing);
3. adds Debian's stock Postfix as a second instance next to ours: main.cf and master.cf exactly as the
   postfix package writes them for "Internet Site" (taken from a fresh container of the same image),
   changed only where two instances must differ (queue and data directory, instance name, listener
   port 2600 instead of 25, which our MX holds);
4. runs ``measure.sh`` for each configuration, round after round (interleaved, so that background load
   hits all of them alike): smtp-source -> instance -> smtp-sink, end to end;
5. prints the medians and the ratios, and writes them as JSON to --output.

Configurations: ``stock`` (Debian's defaults), ``ours`` (the stream instance, a sender OpenDKIM does not
sign: the same work as stock), ``ours-signed`` (DKIM-signed with RSA-2048, as production sends), and
two cross-checks: ``ours-journald`` (ours, logging to syslog/journald like stock) and
``stock-maillog`` (stock, logging to its own file like ours).
Only RFC 5737 and loopback addresses inside the container are used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
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
    'ours-signed': (2525, OURS, 'bench@bench.example'),
    'ours-journald': (2525, OURS, 'bench@unsigned.test'),
    'stock-maillog': (2600, STOCK, 'bench@unsigned.test'),
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
    from render_inventory import render as render_spec  # the same rendering as the Molecule scenario

    render_spec(SPEC, out, keys)
    (inventory / 'host_vars' / HOST).mkdir(parents=True)
    (inventory / 'hosts.yml').symlink_to(out / 'inventory' / 'hosts.yml')
    (inventory / 'group_vars').symlink_to(out / 'inventory' / 'group_vars')
    (inventory / 'host_vars' / HOST / '10-generated.yml').symlink_to(out / 'inventory' / 'host_vars' / f'{HOST}.yml')
    overrides = {
        'ansible_connection': 'containers.podman.podman',
        'ansible_host': CONTAINER,
        'ansible_user': 'root',
        'ansible_python_interpreter': '/usr/bin/python3',
        'mta_base__manage_kernel_hostname': False,
        'mta_base__sysctl_apply': False,
        'mta_base__nofile_limit': 16384,
        'mta_base__ip_interface': 'lo',
        'mta_base__ntp_servers': ['192.0.2.123'],
        'opendkim__keys_dir': str(keys),
    }
    (inventory / 'host_vars' / HOST / '20-bench.yml').write_text('---\n' + json.dumps(overrides, indent=2) + '\n')
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


def stock_configuration(image: str) -> tuple[str, str]:
    """main.cf and master.cf as Debian's postfix package writes them ("Internet Site"), from a fresh container."""
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
            '  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null && exit\n'
            '  sleep 5\n'
            'done\n'
            'exit 1',
        )
        main_cf = podman('exec', helper, 'cat', '/etc/postfix/main.cf')
        master_cf = podman('exec', helper, 'cat', '/etc/postfix/master.cf')
    finally:
        podman('rm', '-f', helper)
    return main_cf, master_cf


def add_stock_instance(main_cf: str, master_cf: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, 'main.cf').write_text(main_cf)
        Path(directory, 'master.cf').write_text(master_cf.replace('\nsmtp      inet', '\n2600      inet', 1))
        shell(f'mkdir -p {STOCK}')
        podman('cp', f'{directory}/main.cf', f'{CONTAINER}:{STOCK}/main.cf')
        podman('cp', f'{directory}/master.cf', f'{CONTAINER}:{STOCK}/master.cf')
    shell(
        f'postconf -c {STOCK} -e queue_directory=/var/spool/postfix-stock data_directory=/var/lib/postfix-stock '
        f'multi_instance_name=postfix-stock multi_instance_enable=yes myhostname=stock.bench.test '
        f"'mydestination=$myhostname, localhost'\n"
        f'mkdir -p /var/spool/postfix-stock /var/lib/postfix-stock && chown postfix: /var/lib/postfix-stock\n'
        f'postconf -e "multi_instance_directories = $(postconf -h multi_instance_directories) {STOCK}"\n'
        'systemctl daemon-reload && systemctl start postfix@postfix-stock.service\n'
        f'postconf -c {STOCK} -n | grep -E "^(smtpd_banner|inet_interfaces|mynetworks|maillog_file)" || true'
    )


def set_maillog(config: str, value: str) -> None:
    shell(f"postconf -c {config} -e 'maillog_file={value}' && postfix -c {config} reload 2>/dev/null")


def measure(label: str, count: int) -> dict[str, Any]:
    port, config, sender = CONFIGURATIONS[label]
    base = label.split('-')[0]
    if label == 'ours-journald':
        set_maillog(OURS, '')
    if label == 'stock-maillog':
        set_maillog(STOCK, '/var/log/postfix/postfix-stock.log')
    try:
        output = shell(
            f'/usr/local/bin/mailinfra-bench-measure {label} {port} {config} {sender} {count} {SESSIONS} {SIZE}'
        )
    finally:
        if label == 'ours-journald':
            set_maillog(OURS, '/var/log/postfix/postfix-bulk.log')
        if label == 'stock-maillog':
            set_maillog(STOCK, '')
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result['base'] = base
    return result


def signs(sender: str) -> bool:
    """Whether a message smtp-source sends through our instance with this sender arrives DKIM-signed."""
    output = shell(
        'rm -f /tmp/mailinfra-bench-dump\n'
        'smtp-sink -u postfix -D /tmp/mailinfra-bench-dump 198.51.100.25:10025 16 & sink=$!\n'
        'sleep 0.5\n'
        f'smtp-source -m 1 -l {SIZE} -f {sender} -t check@sink.test 127.0.0.1:2525\n'
        'for attempt in $(seq 100); do [ -s /tmp/mailinfra-bench-dump ] && break; sleep 0.1; done\n'
        'sleep 0.2; kill $sink\n'
        'grep -c "^DKIM-Signature:" /tmp/mailinfra-bench-dump || true'
    )
    return output.strip().splitlines()[-1] != '0'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--distro', default='12', choices=['12', '13'])
    parser.add_argument('--messages', type=int, default=20_000)
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
        results['dkim_signed'] = {label: signs(CONFIGURATIONS[label][2]) for label in ('ours', 'ours-signed')}
        log(f'DKIM signature on the delivered message: {results["dkim_signed"]}')
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
                for key in ('messages_per_second', 'cpu_ms_per_message', 'seconds')
            }
            for label in CONFIGURATIONS
        }
        results['medians'] = medians
        stock = medians['stock']['messages_per_second']
        results['ratios_to_stock'] = {
            label: round(value['messages_per_second'] / stock, 2) for label, value in medians.items()
        }
        args.output.write_text(json.dumps(results, indent=2) + '\n')
        print(json.dumps({key: results[key] for key in ('converge', 'medians', 'ratios_to_stock')}, indent=2))
    finally:
        if not args.keep:
            subprocess.run(['podman', 'rm', '-f', CONTAINER], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
