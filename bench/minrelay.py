#!/usr/bin/env python3
"""A minimal asyncio relay with nethelper's framing: a REFERENCE, not a product.

    python bench/minrelay.py [-p PORT] [-i ADDRESS] [--backlog N]
                                        # prints "Port: N", then "Server listening"

The benchmark's yardstick for "how fast can a relay written plainly for
speed in asyncio be": the same wire protocol as nethelper (the 11-byte
header, AUTH to join a group, PEERS to every member when the group changes,
DATA forwarded by its header to one member or to all), and none of the rules.
It accepts any group and any name that is free, has no limits, no quotas, no
liveness timer and no refusal messages, and trusts every byte it gets. Do not
run it for real players: one bad client can make it hang or eat memory.

Written for speed: an ``asyncio.Protocol`` (``data_received``, no streams),
one dict lookup per frame, a frame that arrives alone in a read is passed on
without a copy, reads of 64 KiB (asyncio's 256 KiB reads cost an mmap, an
mremap and a munmap each) and a listen backlog of 1,024 (asyncio's default
is 100).
Standard library only; it stops on SIGTERM or Ctrl-C.
"""

import argparse
import asyncio
import json
import signal
import struct

HEADER = struct.Struct(">I3sBBBB")      # length, version, dest, sender, type, meta
HEADER_SIZE = HEADER.size               # 11
VERSION = b"020"
AUTH, DATA, HEART, PEERS, REQ, SYSM = 1, 2, 3, 4, 5, 6
RELAY_ADDR, ALL_ADDR = 0, 255
HIGHEST_ADDR = 254
READ_SIZE = 64 * 1024                   # below glibc's mmap threshold (128 KiB)


def _frame(frame_type, dest, payload):
    return HEADER.pack(HEADER_SIZE + len(payload), VERSION, dest, RELAY_ADDR, frame_type, 0) + payload


def _json(value):
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class Member(asyncio.Protocol):
    """One connection; after AUTH, a member of ``groups[group]`` (addr -> Member)."""

    def __init__(self, groups):
        self.groups = groups
        self.members = None             # the group's dict, once joined
        self.group = self.name = self.addr = None
        self.transport = None
        self.pending = b""              # the start of a frame not complete yet

    def connection_made(self, transport):
        self.transport = transport      # asyncio sets TCP_NODELAY on TCP sockets itself
        # asyncio reads up to 256 KiB at a time: a bytes object that big is
        # mapped and unmapped by the C library on every read (three system
        # calls more per read). Its socket transports read ``max_size`` bytes.
        if hasattr(transport, "max_size"):
            transport.max_size = READ_SIZE

    def data_received(self, data):
        if self.pending:
            data = self.pending + data
            self.pending = b""
        size = len(data)
        pos = 0
        unpack = HEADER.unpack_from
        while size - pos >= HEADER_SIZE:
            length, version, dest, _sender, frame_type, _meta = unpack(data, pos)
            if version != VERSION or length < HEADER_SIZE:
                self.transport.close()
                return
            end = pos + length
            if end > size:
                break
            members = self.members
            if frame_type == DATA and members is not None:
                chunk = data if end - pos == size else data[pos:end]
                if dest == ALL_ADDR:
                    for member in members.values():
                        if member is not self:
                            member.transport.write(chunk)
                else:
                    member = members.get(dest)
                    if member is not None and member is not self:
                        member.transport.write(chunk)
            elif frame_type == AUTH and members is None:
                self._join(data[pos + HEADER_SIZE:end])
            elif frame_type == REQ and members is not None:
                self._request(data[pos + HEADER_SIZE:end])
            pos = end
            if self.transport.is_closing():
                return
        if pos < size:
            self.pending = data[pos:]

    def connection_lost(self, exc):
        members = self.members
        if members is not None and members.get(self.addr) is self:
            del members[self.addr]
            if members:
                _send_peers(members)
            else:
                del self.groups[self.group]
        self.members = None

    def _join(self, payload):
        joined = admit(self.groups, payload)
        if joined is None:
            self.transport.close()
            return
        group, name, addr, members, picked = joined
        self.group, self.name, self.addr, self.members = group, name, addr, members
        members[addr] = self
        if picked:
            self.transport.write(_frame(SYSM, addr, _json({"type": 0, "msg": None, "data": name})))
        _send_peers(members)

    def _request(self, payload):
        try:
            kind = json.loads(payload)["type"]
        except (ValueError, TypeError, KeyError):
            return
        if kind == 0:
            self.transport.close()
        elif kind == 1:
            self.transport.write(_frame(PEERS, ALL_ADDR, _peers_payload(self.members)))


def admit(groups, payload):
    """The join rules both reference relays share: for an AUTH payload,
    (group, name, addr, members, picked) with the name picked when it was
    empty, or None to refuse (bad AUTH, name taken, no address left)."""
    try:
        auth = json.loads(payload)
        name, group = str(auth["name"]), str(auth["group"])
    except (ValueError, TypeError, KeyError):
        return None
    members = groups.setdefault(group, {})
    names = {m.name for m in members.values()}
    picked = not name
    if picked:
        number = 1
        while "Player{}".format(number) in names:
            number += 1
        name = "Player{}".format(number)
    addr = next((a for a in range(1, HIGHEST_ADDR + 1) if a not in members), None)
    if name in names or addr is None:
        if not members:
            del groups[group]
        return None
    return group, name, addr, members, picked


def _peers_payload(members):
    return _json([{"name": m.name, "addr": a} for a, m in sorted(members.items())])


def _send_peers(members):
    frame = _frame(PEERS, ALL_ADDR, _peers_payload(members))
    for member in members.values():
        member.transport.write(frame)


async def serve(host, port, backlog):
    loop = asyncio.get_running_loop()
    groups = {}
    server = await loop.create_server(lambda: Member(groups), host, port, backlog=backlog)
    print("Port: {}".format(server.sockets[0].getsockname()[1]))
    print("Server listening", flush=True)
    stopped = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: stopped.done() or stopped.set_result(None))
    await stopped
    server.close()


def main():
    parser = argparse.ArgumentParser(description="Minimal asyncio reference relay (benchmarks only).")
    parser.add_argument("-p", "--port", type=int, default=65042)
    parser.add_argument("-i", "--interface", default="127.0.0.1")
    parser.add_argument("--backlog", type=int, default=1024)
    args = parser.parse_args()
    asyncio.run(serve(args.interface, args.port, args.backlog))


if __name__ == "__main__":
    main()
