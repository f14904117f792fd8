#!/opt/mailinfra-agent/bin/python
"""Print the signed VERP return path of a stream's mail to a recipient, as an application builds it.

Usage: verp_address.py RECIPIENT STREAM [forged | truncated | malformed]

Runs with the agent's Python: the stream's VERP settings from the contract, the host's signing key
(the contract's suppression.signing_key_file). send_arf.py imports return_path() from here.
With a third argument, a return path the bounce MX must refuse instead: signed with a key this host never had,
cut in half, or of the wrong shape (the stream's prefix and separator, no payload).
"""

import json
import sys

from mailinfra_agent.feedback import verp
from mailinfra_agent.feedback.signing import read_key_file

OTHER_KEY = b'a key this deployment never had, molecule only 0001'


def return_path(recipient: str, stream_name: str, variant: str = '') -> tuple[str, str]:
    """(the stream's first From domain, the VERP return path for ``recipient``, or its ``variant``)."""
    with open('/etc/mailinfra/agent.json', encoding='utf-8') as handle:
        contract = json.load(handle)
    stream = next(item for item in contract['streams'] if item['name'] == stream_name)
    from_domain, return_domain = next(iter(stream['verp']['domains'].items()))
    prefix, separator = stream['verp']['prefix'], stream['verp']['separator']
    if variant == 'malformed':
        return from_domain, f'{prefix}{separator}{recipient.replace("@", "+")}@{return_domain}'
    keys = [OTHER_KEY if variant == 'forged' else read_key_file(contract['suppression']['signing_key_file'])]
    address = verp.encode(
        keys, stream=stream_name, domain=return_domain, prefix=prefix, separator=separator, recipient=recipient
    )
    if variant == 'truncated':
        local = address.partition('@')[0]
        address = f'{local[: len(local) // 2]}@{return_domain}'
    elif variant not in ('', 'forged'):
        raise SystemExit(f'verp_address.py: unknown variant "{variant}"')
    return from_domain, address


if __name__ == '__main__':
    print(return_path(*sys.argv[1:4])[1])
