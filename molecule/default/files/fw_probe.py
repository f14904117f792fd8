#!/usr/bin/python3
"""Probe the input firewall from addresses that are not on this host (standard library only).

fw_probe.py --dest D --source S [--source S ...] --port P[=CIDR,...] [--port ...] [--timeout SECONDS]

Traffic between local addresses goes over lo, which the firewall accepts as a whole. So the probe
builds a veth pair (mlprobe0 on the host's side, mlprobe1 as the wire) and writes a TCP SYN from each
source to each port of D onto mlprobe1: the kernel receives it on mlprobe0, through the input
firewall, like a packet from the network. The answer comes back over mlprobe0 (a /32 route and a
fixed neighbour entry per source) and is read from mlprobe1. Prints {source: {port: result}} as
JSON, where result is "answered" (SYN-ACK or RST: the firewall let the SYN in) or "dropped" (no answer
within the timeout), and under "expected" what the firewall rules say: a port given as P=CIDR,...
admits those networks, P= admits every source, a bare P none. Needs CAP_NET_ADMIN and CAP_NET_RAW.
Sources must not be local addresses.
"""

import argparse
import ipaddress
import json
import random
import socket
import struct
import subprocess
import sys
import time

HOST_SIDE, WIRE_SIDE = 'mlprobe0', 'mlprobe1'
ETH_P_ALL, ETH_P_IP = 0x0003, 0x0800


def ip(*args: str, check: bool = True) -> None:
    subprocess.run(['ip', *args], check=check, capture_output=True)


def mac(interface: str) -> bytes:
    shown = subprocess.run(['ip', '-j', 'link', 'show', interface], check=True, capture_output=True, text=True)
    return bytes.fromhex(json.loads(shown.stdout)[0]['address'].replace(':', ''))


def setup(sources: list[str]) -> None:
    ip('link', 'del', HOST_SIDE, check=False)
    ip('link', 'add', HOST_SIDE, 'type', 'veth', 'peer', 'name', WIRE_SIDE)
    ip('link', 'set', HOST_SIDE, 'up')
    ip('link', 'set', WIRE_SIDE, 'up')
    wire_mac = ':'.join(f'{b:02x}' for b in mac(WIRE_SIDE))
    for source in sources:
        ip('route', 'replace', f'{source}/32', 'dev', HOST_SIDE)
        ip('neigh', 'replace', source, 'lladdr', wire_mac, 'dev', HOST_SIDE, 'nud', 'permanent')


def teardown() -> None:
    ip('link', 'del', HOST_SIDE, check=False)  # removes the peer, its routes and neighbours too


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack(f'!{len(data) // 2}H', data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def syn(source: str, dest: str, sport: int, dport: int) -> bytes:
    src, dst = socket.inet_aton(source), socket.inet_aton(dest)
    tcp = struct.pack('!HHIIBBHHH', sport, dport, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    tcp_sum = checksum(src + dst + struct.pack('!BBH', 0, socket.IPPROTO_TCP, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack('!H', tcp_sum) + tcp[18:]
    header = struct.pack(
        '!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0x4000, 64, socket.IPPROTO_TCP, 0, src, dst
    )
    header = header[:10] + struct.pack('!H', checksum(header)) + header[12:]
    return mac(HOST_SIDE) + mac(WIRE_SIDE) + struct.pack('!H', ETH_P_IP) + header + tcp


def probe(wire: socket.socket, source: str, dest: str, port: int, timeout: float) -> str:
    sport = random.randint(40000, 60000)
    wire.send(syn(source, dest, sport, port))
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        wire.settimeout(left)
        try:
            frame, address = wire.recvfrom(65535)
        except TimeoutError:
            break
        if address[2] == socket.PACKET_OUTGOING or struct.unpack('!H', frame[12:14])[0] != ETH_P_IP:
            continue
        packet = frame[14:]
        if packet[9] != socket.IPPROTO_TCP or packet[12:16] != socket.inet_aton(dest):
            continue
        if packet[16:20] != socket.inet_aton(source):
            continue
        tcp = packet[(packet[0] & 0x0F) * 4 :]
        from_port, to_port = struct.unpack('!HH', tcp[:4])
        if from_port == port and to_port == sport and tcp[13] & 0x16 in (0x12, 0x04, 0x14):
            return 'answered'
    return 'dropped'


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--dest', required=True)
    parser.add_argument('--source', action='append', required=True)
    parser.add_argument('--port', action='append', required=True)
    parser.add_argument('--timeout', type=float, default=2.0)
    args = parser.parse_args()
    rules: dict[int, list[str] | None] = {}
    for entry in args.port:
        port, has_rule, networks = entry.partition('=')
        rules[int(port)] = [network for network in networks.split(',') if network] if has_rule else None
    expected = {
        source: {
            str(port): 'dropped'
            if networks is None
            or (networks and not any(ipaddress.ip_address(source) in ipaddress.ip_network(n) for n in networks))
            else 'answered'
            for port, networks in rules.items()
        }
        for source in args.source
    }
    setup(args.source)
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as wire:
            wire.bind((WIRE_SIDE, 0))
            seen = {
                source: {str(port): probe(wire, source, args.dest, port, args.timeout) for port in rules}
                for source in args.source
            }
    finally:
        teardown()
    json.dump({'seen': seen, 'expected': expected}, sys.stdout, indent=1, sort_keys=True)


if __name__ == '__main__':
    main()
