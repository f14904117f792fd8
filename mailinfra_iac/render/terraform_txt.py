"""TXT values as each DNS provider's Terraform resource wants them (its style: ``DnsProvider.txt_style``).

A TXT value stays one logical string in the record list; a DNS character-string holds at most 255 bytes
(RFC 1035 section 3.3.14), so a longer value is published as ONE record made of several strings, and each
provider is told that in its own way (see the DNS reference, section 2):

- ``joined`` (Route 53): the 255-byte chunks joined with ``""``. The provider wraps the value in quotes, so
  Route 53 receives ``"chunk1""chunk2"``; it neither splits nor checks the length itself.
- ``quoted`` (Cloudflare; Hetzner DNS would need it too): pre-chunked quoted strings ``"chunk1" "chunk2"``.
  Cloudflare stores long values as 255-byte chunks and shows drift on every plan when given one long string;
  Hetzner DNS refuses a string over 255 characters.
- ``raw`` (RFC 2136 through hashicorp/dns): the value unsplit; the provider's parser (miekg/dns) splits it.

A value of at most 255 bytes is passed unchanged in every style. Inside a chunk, ``\\`` and ``"`` are escaped
as in zone-file presentation format.

When a value holds Terraform interpolations (addresses Terraform allocates), its final length is known only
at apply time; :func:`chunk_expression` gives the Terraform expression that chunks it then.
"""

from __future__ import annotations

from typing import Literal

TxtStyle = Literal['joined', 'quoted', 'raw']
CHUNK = 255


def chunks(value: str, size: int = CHUNK) -> list[str]:
    """Split ``value`` into strings of at most ``size`` UTF-8 bytes, never inside a character."""
    if size < 4:
        raise ValueError(f'invalid chunk size {size}: a character can take 4 bytes')
    if value.isascii():  # the usual case (DKIM keys, SPF): one byte per character
        return [value[index : index + size] for index in range(0, len(value), size)] or ['']
    parts: list[str] = []
    current: list[str] = []
    length = 0
    for character in value:
        width = len(character.encode())
        if length + width > size:
            parts.append(''.join(current))
            current, length = [], 0
        current.append(character)
        length += width
    parts.append(''.join(current))
    return parts


def _escape(chunk: str) -> str:
    return chunk.replace('\\', '\\\\').replace('"', '\\"')


def render_txt(value: str, style: TxtStyle) -> str:
    """The value to give the provider's resource (literal text, no Terraform interpolation)."""
    if style == 'raw' or len(value.encode()) <= CHUNK:
        return value
    parts = [_escape(part) for part in chunks(value)]
    if style == 'joined':
        return '""'.join(parts)
    return ' '.join(f'"{part}"' for part in parts)


def chunk_expression(template: str, style: TxtStyle) -> str:
    """A Terraform expression (without ``${ }``) that renders the HCL string ``template`` like :func:`render_txt`.

    ``template`` is a quoted HCL template such as ``"v=spf1 ip4:${module.ip.addresses["a"]} -all"``. Chunks are
    counted in characters, which are bytes for the ASCII values that hold interpolations (SPF, addresses).
    """
    if style == 'raw':
        return template
    escaped = 'replace(replace(c, "\\\\", "\\\\\\\\"), "\\"", "\\\\\\"")'
    pieces = f'[for c in regexall(".{{1,{CHUNK}}}", {template}) : {escaped}]'
    quoted = f'join(" ", [for c in {pieces} : "\\"${{c}}\\""])'
    joined = f'join("\\"\\"", {pieces})' if style == 'joined' else quoted
    return f'length({template}) <= {CHUNK} ? {template} : {joined}'
