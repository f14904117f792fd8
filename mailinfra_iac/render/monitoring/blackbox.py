"""Blackbox exporter modules: SMTP with STARTTLS (certificate expiry) and a plain TCP connect (is it answering)."""

from __future__ import annotations

from typing import Any

SMTP_STARTTLS = 'smtp_starttls'
TCP_CONNECT = 'tcp_connect'
PROBER_NAME = 'blackbox.invalid'
"""EHLO name of the probe (a reserved name: it identifies the prober, nothing resolves it)."""


def blackbox_config() -> dict[str, Any]:
    return {
        'modules': {
            SMTP_STARTTLS: {
                'prober': 'tcp',
                'timeout': '15s',
                'tcp': {
                    # Expiry is what is measured: a self-signed or IP-addressed certificate must not fail the probe.
                    'tls_config': {'insecure_skip_verify': True},
                    'query_response': [
                        {'expect': '^220[ -]'},
                        {'send': f'EHLO {PROBER_NAME}\r'},
                        {'expect': '^250[ -]STARTTLS'},
                        {'send': 'STARTTLS\r'},
                        {'expect': '^220'},
                        {'starttls': True},
                        {'send': f'EHLO {PROBER_NAME}\r'},
                        {'expect': '^250 '},
                        {'send': 'QUIT\r'},
                    ],
                },
            },
            TCP_CONNECT: {'prober': 'tcp', 'timeout': '10s'},
        }
    }
