#!/opt/mailinfra-agent/bin/python
"""Print the signed VERP return path of a stream's mail to a recipient, as an application builds it.

Usage: verp_address.py RECIPIENT STREAM

Runs with the agent's Python: the stream's VERP settings from the contract, the host's signing key
(the contract's suppression.signing_key_file). send_arf.py imports return_path() from here.
"""

import json
import sys

from mailinfra_agent.feedback import verp
from mailinfra_agent.feedback.signing import read_key_file


def return_path(recipient: str, stream_name: str) -> tuple[str, str]:
    """(the stream's first From domain, the VERP return path for ``recipient``)."""
    with open('/etc/mailinfra/agent.json', encoding='utf-8') as handle:
        contract = json.load(handle)
    stream = next(item for item in contract['streams'] if item['name'] == stream_name)
    from_domain, return_domain = next(iter(stream['verp']['domains'].items()))
    keys = [read_key_file(contract['suppression']['signing_key_file'])]
    address = verp.encode(
        keys,
        stream=stream_name,
        domain=return_domain,
        prefix=stream['verp']['prefix'],
        separator=stream['verp']['separator'],
        recipient=recipient,
    )
    return from_domain, address


if __name__ == '__main__':
    print(return_path(*sys.argv[1:3])[1])
