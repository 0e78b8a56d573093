"""The load generator's core: one thread, one selectors loop, many nodes.

Every node here speaks nethelper protocol 020 with nethelper's own codec
(``auth_frame``, ``encode_frame``, ``encode_message``, ``heart_frame``,
``parse_peers``...). Nodes are wired in one of two ways:

* ``RelayFabric``: each node has its own TCP connection to a relay subprocess,
  joins its group with AUTH and learns its address from the relay's PEERS.
* ``DirectFabric`` ("the floor"): no relay at all. The generator listens on
  127.0.0.1 itself and opens one direct TCP connection per pair of nodes that
  talk (or per fanout receiver). The same frames, byte for byte, travel over
  it, so the difference between the two is what the relay costs.
* ``SplitDirectFabric``: the floor when the two ends of each link are in two
  generator processes (the latency cases): one listens, the other connects.

``RelayFabric.wire(..., mine=...)`` joins only one process's side of the nodes.

The receive path cuts frames itself (one ``struct`` unpack per frame instead
of a ``Frame`` object and a copy) so that the generator is cheap enough not to
be the bottleneck; it checks every header (version, length) all the same.
"""

import os
import selectors
import socket
import struct
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from nethelper import (  # noqa: E402  (needs the path above)
    ALL_ADDR, DATA, HEADER_SIZE, PEERS, PROTOCOL_VERSION, SYSM, SYSM_REFUSED,
    ProtocolError, auth_frame, encode_frame, encode_message, heart_frame,
    parse_messages, parse_peers, parse_typed,
)

HOST = "127.0.0.1"
HEADER = struct.Struct(">I3sBBBB")     # length, version, dest, sender, type, meta
RECV_SIZE = 256 * 1024
# One buffer for every read, as the relay does: recv() would allocate
# RECV_SIZE bytes per call, which the C library may map and unmap each time.
_BUFFER = memoryview(bytearray(RECV_SIZE))
HEART_EVERY = 1.0                       # seconds of silence before a node sends HEART


class BenchError(Exception):
    """The benchmark cannot go on (a relay refused us, a node was dropped...)."""


# ---------------------------------------------------------------------------
# Payloads with fixed-width numbers, so receivers read them without json.loads
# ---------------------------------------------------------------------------

class FixedFormat:
    """A one-message DATA payload whose numbers sit at fixed byte offsets.

    Each number ``v`` is written as ``10**(w-1) + v`` so it always takes ``w``
    digits: still a plain JSON number, but a receiver can read it with
    ``int(frame[a:b])`` instead of parsing the JSON. ``tail`` are constant
    extra values in the content list (to make the frame Pong-sized).
    """

    def __init__(self, title, widths, tail=()):
        self.bases = tuple(10 ** (w - 1) for w in widths)
        self.limits = tuple(8 * 10 ** (w - 1) for w in widths)   # values must stay below
        content = list(self.bases) + list(tail)
        payload = b"[" + encode_message(title, content, True) + b"]"
        assert b"%" not in payload
        marker = ",".join(str(b) for b in self.bases).encode()
        i = payload.index(marker)
        self.fmt = payload[:i] + b",".join([b"%d"] * len(widths)) + payload[i + len(marker):]
        self.length = HEADER_SIZE + len(payload)
        self.spans = []
        offset = HEADER_SIZE + i
        for w in widths:
            self.spans.append((offset, offset + w))
            offset += w + 1
        # Self-check with the codec: this is a valid DATA payload.
        assert parse_messages(payload) == [(title, content, True)], payload
        assert len(self.payload(*[0] * len(widths))) == len(payload)

    def payload(self, *values):
        return self.fmt % tuple(b + v for b, v in zip(self.bases, values))

    def header(self, dest, sender):
        """The 11 header bytes of a DATA frame of this format (made by the codec)."""
        return encode_frame(DATA, dest, sender, bytes(self.length - HEADER_SIZE))[:HEADER_SIZE]


# [{"title":"b","content":[SEQ,SENT_AT_NS],"queue":true}]  -> 73-byte frames
LATENCY = FixedFormat("b", (8, 13))
# [{"title":"f","content":[SEQ,20,250],"queue":true}]      -> 65-byte frames (Pong's bar_pos is 65)
FLOOD = FixedFormat("f", (8,), (20, 250))


# ---------------------------------------------------------------------------
# Nodes, endpoints and the loop
# ---------------------------------------------------------------------------

class Node:
    """One simulated game. ``out`` is where frames to its partner go; ``fan``
    is every socket a broadcast must be written to (one through a relay, one
    per receiver on the floor)."""

    __slots__ = ("name", "group", "addr", "ep", "out", "fan", "links", "peer", "hdr",
                 "role", "sent", "received", "expect", "order_errors", "bad", "done")

    def __init__(self, name, group):
        self.name, self.group = name, group
        self.addr = None
        self.ep = self.out = self.peer = self.hdr = self.role = None
        self.fan = []
        self.links = {}
        self.sent = self.received = self.expect = self.order_errors = self.bad = 0
        self.done = False


class Endpoint:
    """One socket of the generator."""

    __slots__ = ("sock", "node", "rbuf", "wbuf", "closed", "last_send")

    def __init__(self, sock, node):
        self.sock, self.node = sock, node
        self.rbuf = b""
        self.wbuf = bytearray()
        self.closed = False
        self.last_send = time.monotonic()


class Loop:
    """A selectors loop over every endpoint. ``on_frame(ep, type, sender, buf,
    start, end)`` is called for each complete frame that arrives."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.endpoints = []
        self.lost = []                  # (node name, why) for connections the other end closed
        self.on_frame = _ignore_frame
        self.bytes_in = 0
        self.control = None             # a multiprocessing Connection to the other generator
        self.inbox = []                 # messages received on it, oldest first

    def add_control(self, conn):
        """Watch ``conn`` (the pipe to the other generator process) in the same
        select(), so that waiting for it never delays a frame. poll() moves
        what arrives to ``inbox`` (("eof",) once the other end has gone)."""
        self.control = conn
        self.sel.register(conn.fileno(), selectors.EVENT_READ, None)

    def _take_control(self):
        try:
            self.inbox.append(self.control.recv())
        except (EOFError, OSError):
            self.inbox.append(("eof",))
            self.sel.unregister(self.control.fileno())
            self.control = None

    def add(self, sock, node):
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ep = Endpoint(sock, node)
        self.sel.register(sock, selectors.EVENT_READ, ep)
        self.endpoints.append(ep)
        return ep

    def send(self, ep, data):
        """Send now as much as the socket takes; keep the rest for when it is
        writable. Returns True if everything went out at once."""
        if ep.closed:
            return False
        ep.last_send = time.monotonic()
        if ep.wbuf:
            ep.wbuf += data
            return False
        try:
            sent = ep.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lose(ep, "send failed: {}".format(exc))
            return False
        if sent == len(data):
            return True
        ep.wbuf += memoryview(data)[sent:]
        self.sel.modify(ep.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, ep)
        return False

    def poll(self, timeout):
        """Wait up to ``timeout`` seconds; serve what is ready. Returns the event count."""
        events = self.sel.select(timeout)
        for key, mask in events:
            ep = key.data
            if ep is None:
                self._take_control()
                continue
            if mask & selectors.EVENT_WRITE:
                self._flush(ep)
            if mask & selectors.EVENT_READ and not ep.closed:
                self._read(ep)
        return len(events)

    def pending_writes(self):
        return sum(len(ep.wbuf) for ep in self.endpoints)

    def _flush(self, ep):
        try:
            sent = ep.sock.send(ep.wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lose(ep, "send failed: {}".format(exc))
            return
        del ep.wbuf[:sent]
        if not ep.wbuf:
            self.sel.modify(ep.sock, selectors.EVENT_READ, ep)

    def _read(self, ep):
        try:
            size = ep.sock.recv_into(_BUFFER)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lose(ep, "recv failed: {}".format(exc))
            return
        if not size:
            self._lose(ep, "the other end closed the connection")
            return
        self.bytes_in += size
        data = ep.rbuf + _BUFFER[:size] if ep.rbuf else bytes(_BUFFER[:size])
        size = len(data)
        pos = 0
        unpack = HEADER.unpack_from
        handle = self.on_frame
        while size - pos >= HEADER_SIZE:
            length, version, _dest, sender, frame_type, _meta = unpack(data, pos)
            if version != PROTOCOL_VERSION or length < HEADER_SIZE:
                raise BenchError("{} received a malformed header (version {!r}, length {})".format(
                    ep.node.name, version, length))
            end = pos + length
            if end > size:
                break
            handle(ep, frame_type, sender, data, pos, end)
            pos = end
        ep.rbuf = data[pos:] if pos < size else b""

    def _lose(self, ep, why):
        if ep.closed:
            return
        ep.closed = True
        self.lost.append((ep.node.name, why))
        try:
            self.sel.unregister(ep.sock)
        except (KeyError, ValueError):
            pass
        ep.sock.close()

    def close(self):
        for ep in self.endpoints:
            if not ep.closed:
                ep.closed = True
                try:
                    self.sel.unregister(ep.sock)
                except (KeyError, ValueError):
                    pass
                ep.sock.close()
        self.endpoints = []
        self.sel.close()


def _ignore_frame(ep, frame_type, sender, buf, start, end):
    pass


# ---------------------------------------------------------------------------
# Fabrics: how the nodes are wired
# ---------------------------------------------------------------------------

def build_nodes(groups):
    """``groups`` is [(group, [node name, ...]), ...]; returns the nodes in order."""
    return [Node(name, group) for group, names in groups for name in names]


class _Fabric:
    mode = None

    def __init__(self, loop):
        self.loop = loop
        self.nodes = []

    def keepalive(self, now):
        """HEART from every node that has been silent for a second (the relay
        drops nodes silent for 5 s). The floor gets the same frames."""
        send = self.loop.send
        for node in self.nodes:
            ep = node.out
            if ep is not None and now - ep.last_send >= HEART_EVERY:
                send(ep, heart_frame(node.addr))

    def settle(self, quiet=0.1, limit=5.0):
        """Serve the sockets until nothing has arrived for ``quiet`` seconds."""
        end = time.monotonic() + limit
        last_event = time.monotonic()
        while True:
            now = time.monotonic()
            if now - last_event >= quiet or now >= end:
                return
            if self.loop.poll(0.02):
                last_event = time.monotonic()
            self.keepalive(time.monotonic())

    def check(self):
        if self.loop.lost:
            name, why = self.loop.lost[0]
            raise BenchError("{} connection(s) lost, e.g. {}: {}".format(
                len(self.loop.lost), name, why))

    def close(self):
        pass


class RelayFabric(_Fabric):
    """Every node joins its group on the relay at 127.0.0.1:``port``."""

    mode = "relay"

    def __init__(self, loop, port, batch=50, timeout=20.0):
        super().__init__(loop)
        self.port = port
        self.batch = batch
        self.timeout = timeout

    def wire(self, groups, links, mine=None):
        """Join every node (or only the nodes at indices ``mine``: this
        process's side), in batches of ``batch`` connections, and wait for
        each to find itself in a PEERS frame. ``links`` only matter to the floor.
        Returns every node; the others' ``addr`` is left for the caller to fill in."""
        nodes = build_nodes(groups)
        own = nodes if mine is None else [nodes[i] for i in sorted(mine)]
        self.nodes = own
        loop = self.loop
        loop.on_frame = self._on_join_frame
        for first in range(0, len(own), self.batch):
            chunk = own[first:first + self.batch]
            for node in chunk:
                sock = socket.create_connection((HOST, self.port), timeout=5)
                node.ep = node.out = loop.add(sock, node)
                node.fan = [node.ep]
                loop.send(node.ep, auth_frame(node.name, node.group))
            deadline = time.monotonic() + self.timeout
            waiting = [n for n in chunk if n.addr is None]
            while waiting:
                self.check()
                if time.monotonic() > deadline:
                    raise BenchError("{} node(s) not accepted by the relay within {:g} s".format(
                        len(waiting), self.timeout))
                loop.poll(0.05)
                self.keepalive(time.monotonic())
                waiting = [n for n in waiting if n.addr is None]
        self.settle()
        loop.on_frame = _ignore_frame
        self.check()
        return nodes

    @staticmethod
    def _on_join_frame(ep, frame_type, sender, buf, start, end):
        node = ep.node
        if frame_type == PEERS and node.addr is None:
            for name, addr in parse_peers(bytes(buf[start + HEADER_SIZE:end])):
                if name == node.name:
                    node.addr = addr
        elif frame_type == SYSM:
            try:
                message = parse_typed(bytes(buf[start + HEADER_SIZE:end]))
            except ProtocolError:
                return
            if message["type"] == SYSM_REFUSED:
                raise BenchError("the relay refused {} ({}): {}".format(
                    node.name, message.get("msg"), message.get("data")))


class DirectFabric(_Fabric):
    """No relay: one direct loopback TCP connection per link, made through a
    listener of the generator's own. Addresses are given as the relay would
    (1, 2, ... in join order within each group)."""

    mode = "floor"

    def __init__(self, loop):
        super().__init__(loop)
        self.listener = socket.create_server((HOST, 0), backlog=128)
        self.listener.settimeout(5)

    def wire(self, groups, links):
        nodes = self.nodes = build_nodes(groups)
        counters = {}
        for node in nodes:
            counters[node.group] = node.addr = counters.get(node.group, 0) + 1
        where = self.listener.getsockname()
        for a, b in links:
            a, b = nodes[a], nodes[b]
            near = socket.create_connection(where, timeout=5)
            far, _ = self.listener.accept()
            a.links[b] = ea = self.loop.add(near, a)
            b.links[a] = eb = self.loop.add(far, b)
            a.fan.append(ea)
            b.fan.append(eb)
        for node in nodes:
            node.out = node.fan[0] if len(node.fan) == 1 else None
        self.listener.close()
        return nodes

    def close(self):
        self.listener.close()


class SplitDirectFabric(_Fabric):
    """The floor with the two ends of every link in two generator processes:
    side B (``listen()`` then ``accept_links()``) listens, side A
    (``connect_links()``) connects, one TCP connection per link, in ``links``
    order (one listener, so the accept queue gives them back in that order).
    Addresses are given as the relay would (1, 2, ... in join order)."""

    mode = "floor"

    def __init__(self, loop):
        super().__init__(loop)
        self.listener = None

    @staticmethod
    def _nodes(groups):
        nodes = build_nodes(groups)
        counters = {}
        for node in nodes:
            counters[node.group] = node.addr = counters.get(node.group, 0) + 1
        return nodes

    def listen(self, links):
        self.listener = socket.create_server((HOST, 0), backlog=max(128, len(links) + 16))
        self.listener.settimeout(10)
        return self.listener.getsockname()

    def accept_links(self, groups, links, mine):
        nodes = self._nodes(groups)
        for a, b in links:
            local, remote = (nodes[b], nodes[a]) if b in mine else (nodes[a], nodes[b])
            sock, _ = self.listener.accept()
            self._attach(local, remote, sock)
        return self._finish(nodes, mine)

    def connect_links(self, groups, links, mine, where):
        nodes = self._nodes(groups)
        for a, b in links:
            local, remote = (nodes[a], nodes[b]) if a in mine else (nodes[b], nodes[a])
            self._attach(local, remote, socket.create_connection(tuple(where), timeout=5))
        return self._finish(nodes, mine)

    def _attach(self, local, remote, sock):
        local.links[remote] = ep = self.loop.add(sock, local)
        local.fan.append(ep)

    def _finish(self, nodes, mine):
        self.nodes = [nodes[i] for i in sorted(mine)]
        for node in self.nodes:
            node.out = node.fan[0] if len(node.fan) == 1 else None
        if self.listener is not None:
            self.listener.close()
        return nodes

    def close(self):
        if self.listener is not None:
            self.listener.close()


def make_fabric(mode, loop, relay_port=None):
    return RelayFabric(loop, relay_port) if mode == "relay" else DirectFabric(loop)


ALL = ALL_ADDR
