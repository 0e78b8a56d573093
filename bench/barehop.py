#!/usr/bin/env python3
"""The bare hop: the least work any relay process can do, as a reference.

    python bench/barehop.py TARGET_PORT      # prints "Port: N", then "Server listening"

It listens on 127.0.0.1 and, for every connection it accepts, opens one to
127.0.0.1:TARGET_PORT and passes bytes both ways: one ``recv`` and one ``send``
per arrival, in one ``selectors`` loop like the relay's, but with no frames,
no groups, no parsing and no bookkeeping. Put in the middle of the floor's
links, it adds exactly one process hop and nothing else. The benchmark runs it
as a third run of the pingpong and classroom cases, so that the table shows
what a hop through one more process costs on this machine before the relay
does any work.

It stops on SIGTERM (or when the benchmark that started it dies).
"""

import selectors
import signal
import socket
import sys

HOST = "127.0.0.1"
# One buffer for every read, as the relay does (recv() would allocate 256 KiB
# per call, which the C library may map and unmap each time).
BUFFER = memoryview(bytearray(256 * 1024))


class _Side:
    """One socket of a pair, and the bytes its partner could not take yet."""

    def __init__(self, sock):
        self.sock = sock
        self.partner = None
        self.unsent = b""
        self.closed = False


def serve(target_port):
    listener = socket.create_server((HOST, 0), backlog=1024)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    print("Port: {}".format(listener.getsockname()[1]))
    print("Server listening", flush=True)
    while True:
        for key, events in selector.select():
            if key.data is None:
                _accept(listener, selector, target_port)
                continue
            side = key.data
            if side.closed:
                continue            # its partner hung up earlier in this batch
            if events & selectors.EVENT_WRITE:
                _send(selector, side, side.unsent)
            if events & selectors.EVENT_READ:
                _pass_on(selector, side)


def _accept(listener, selector, target_port):
    try:
        near, _ = listener.accept()
    except BlockingIOError:
        return
    far = socket.create_connection((HOST, target_port), timeout=5)
    a, b = _Side(near), _Side(far)
    a.partner, b.partner = b, a
    for side in (a, b):
        side.sock.setblocking(False)
        side.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        selector.register(side.sock, selectors.EVENT_READ, side)


def _pass_on(selector, side):
    try:
        size = side.sock.recv_into(BUFFER)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        size = 0
    if not size:
        for end in (side, side.partner):
            end.closed = True
            selector.unregister(end.sock)
            end.sock.close()
        return
    out = side.partner
    if out.unsent:
        out.unsent += BUFFER[:size]     # keep the order: behind what is already waiting
    else:
        _send(selector, out, BUFFER[:size])


def _send(selector, out, data):
    """Send ``data`` on ``out``; keep what does not fit and watch for room."""
    try:
        sent = out.sock.send(data)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        return
    was_waiting = bool(out.unsent)
    out.unsent = bytes(data[sent:])     # a copy: BUFFER is reused by the next read
    if out.unsent and not was_waiting:
        selector.modify(out.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, out)
    elif not out.unsent and was_waiting:
        selector.modify(out.sock, selectors.EVENT_READ, out)


def main():
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        serve(int(sys.argv[1]))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
