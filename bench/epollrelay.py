#!/usr/bin/env python3
"""A stripped-down relay on a bare ``select.epoll`` loop: a REFERENCE, not a product.

    python bench/epollrelay.py [-p PORT] [-i ADDRESS] [--backlog N]
                                        # prints "Port: N", then "Server listening"

The second yardstick of the pairs benchmark, below the asyncio one
(minrelay.py): the same framing and the same (absent) rules, with no event
loop library in between. One ``epoll.poll()``, one ``recv_into`` into a
reused buffer and one ``send`` per forwarded frame, straight from a slice of
that buffer. No limits, no quotas, no liveness, no refusal messages: do not
run it for real players. Linux only (epoll); standard library only; it stops
on SIGTERM or Ctrl-C.
"""

import argparse
import json
import select
import signal
import socket
import sys

# The framing and the join rules are the asyncio reference's (same folder).
from minrelay import (ALL_ADDR, AUTH, DATA, HEADER, HEADER_SIZE, PEERS, REQ, SYSM, VERSION,
                      _frame, _json, _peers_payload, admit)

EPOLLIN, EPOLLOUT = select.EPOLLIN, select.EPOLLOUT
BUFFER = bytearray(256 * 1024)
VIEW = memoryview(BUFFER)


class Conn:
    __slots__ = ("sock", "fd", "members", "group", "name", "addr", "pending", "unsent", "closed")

    def __init__(self, sock):
        self.sock, self.fd = sock, sock.fileno()
        self.members = self.group = self.name = self.addr = None
        self.pending = b""              # the start of a frame not complete yet
        self.unsent = bytearray()       # what the socket did not take yet
        self.closed = False


class EpollRelay:
    def __init__(self, host, port, backlog):
        self.listener = socket.create_server((host, port), backlog=backlog)
        self.listener.setblocking(False)
        self.epoll = select.epoll()
        self.epoll.register(self.listener.fileno(), EPOLLIN)
        self.conns = {}                 # fd -> Conn
        self.groups = {}                # group -> {addr: Conn}

    def serve(self):
        listen_fd = self.listener.fileno()
        conns = self.conns
        while True:
            for fd, events in self.epoll.poll():
                if fd == listen_fd:
                    self._accept()
                    continue
                conn = conns.get(fd)
                if conn is None:
                    continue
                if events & EPOLLOUT:
                    self._flush(conn)
                if events & ~EPOLLOUT and not conn.closed:
                    self._read(conn)

    def _accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Conn(sock)
            self.conns[conn.fd] = conn
            self.epoll.register(conn.fd, EPOLLIN)

    def _read(self, conn):
        try:
            size = conn.sock.recv_into(BUFFER)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            size = 0
        if not size:
            self._close(conn)
            return
        if conn.pending:
            data = memoryview(conn.pending + VIEW[:size])
            conn.pending = b""
            size = len(data)
        else:
            data = VIEW
        pos = 0
        unpack = HEADER.unpack_from
        while size - pos >= HEADER_SIZE:
            length, version, dest, _sender, frame_type, _meta = unpack(data, pos)
            if version != VERSION or length < HEADER_SIZE:
                self._close(conn)
                return
            end = pos + length
            if end > size:
                break
            members = conn.members
            if frame_type == DATA and members is not None:
                chunk = data[pos:end]
                if dest == ALL_ADDR:
                    for other in list(members.values()):
                        if other is not conn:
                            self._send(other, chunk)
                else:
                    other = members.get(dest)
                    if other is not None and other is not conn:
                        self._send(other, chunk)
            elif frame_type == AUTH and members is None:
                self._join(conn, bytes(data[pos + HEADER_SIZE:end]))
            elif frame_type == REQ and members is not None:
                self._request(conn, bytes(data[pos + HEADER_SIZE:end]))
            if conn.closed:
                return
            pos = end
        if pos < size:
            conn.pending = bytes(data[pos:size])

    def _send(self, conn, data):
        if conn.closed:
            return
        if conn.unsent:
            conn.unsent += data         # behind what already waits, in order
            return
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return
        if sent < len(data):
            conn.unsent += data[sent:]
            self.epoll.modify(conn.fd, EPOLLIN | EPOLLOUT)

    def _flush(self, conn):
        try:
            sent = conn.sock.send(conn.unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        del conn.unsent[:sent]
        if not conn.unsent:
            self.epoll.modify(conn.fd, EPOLLIN)

    def _close(self, conn):
        if conn.closed:
            return
        conn.closed = True
        del self.conns[conn.fd]
        self.epoll.unregister(conn.fd)
        conn.sock.close()
        members = conn.members
        if members is not None and members.get(conn.addr) is conn:
            del members[conn.addr]
            if members:
                self._send_peers(members)
            else:
                del self.groups[conn.group]

    def _join(self, conn, payload):
        joined = admit(self.groups, payload)
        if joined is None:
            self._close(conn)
            return
        group, name, addr, members, picked = joined
        conn.group, conn.name, conn.addr, conn.members = group, name, addr, members
        members[addr] = conn
        if picked:
            self._send(conn, _frame(SYSM, addr, _json({"type": 0, "msg": None, "data": name})))
        self._send_peers(members)

    def _request(self, conn, payload):
        try:
            kind = json.loads(payload)["type"]
        except (ValueError, TypeError, KeyError):
            return
        if kind == 0:
            self._close(conn)
        elif kind == 1:
            self._send(conn, _frame(PEERS, ALL_ADDR, _peers_payload(conn.members)))

    def _send_peers(self, members):
        frame = _frame(PEERS, ALL_ADDR, _peers_payload(members))
        for conn in list(members.values()):
            self._send(conn, frame)


def main():
    parser = argparse.ArgumentParser(description="Bare epoll reference relay (benchmarks only).")
    parser.add_argument("-p", "--port", type=int, default=65042)
    parser.add_argument("-i", "--interface", default="127.0.0.1")
    parser.add_argument("--backlog", type=int, default=1024)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    relay = EpollRelay(args.interface, args.port, args.backlog)
    print("Port: {}".format(relay.listener.getsockname()[1]))
    print("Server listening", flush=True)
    try:
        relay.serve()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
