"""Byte-level checks against the protocol document, both ways.

Original nodes and relays are not part of this project, so these tests speak
for them: raw sockets send and expect exactly the bytes the protocol document
describes (with the JSON spacing Python's json.dumps gives by default, as the
original module sends it).
"""
import json
import selectors
import socket
import threading
import time

from nethelper import NetNode
from conftest import HOST, frame, js, raw_connect, read_frame, wait_for, both_selectors


def msg(frame_type, dest, sender, value):
    """A frame whose payload is ``value`` as JSON (None: no payload at all)."""
    return frame(frame_type, dest, sender, b"" if value is None else js(value))


def read(sock):
    """The next whole frame: (type, dest, sender, raw bytes). Heartbeats from
    this relay (HEART with sender 0) are skipped, as an original node ignores
    them; a node's own heartbeats are not."""
    while True:
        got = read_frame(sock)
        assert got is not None, "connection closed"
        if not (got.type == 3 and got.sender == 0):
            return got.type, got.dest, got.sender, got.raw


def payload(raw):
    return json.loads(raw[11:])


# -- an original node talking to this relay -----------------------------------

@both_selectors
def test_an_original_nodes_conversation_with_this_relay(relay):
    first, second = raw_connect(relay.port), raw_connect(relay.port)
    first.sendall(msg(1, 0, 255, {"name": "Player1", "group": "pong_game"}))
    frame_type, dest, sender, raw = read(first)
    assert (frame_type, dest, sender) == (4, 255, 0)
    assert payload(raw) == [{"name": "Player1", "addr": 1}]

    second.sendall(msg(1, 0, 255, {"name": "Player2", "group": "pong_game"}))
    for sock in (first, second):            # everyone gets the new list
        frame_type, _, _, raw = read(sock)
        assert frame_type == 4
        assert payload(raw) == [{"name": "Player1", "addr": 1}, {"name": "Player2", "addr": 2}]

    first.sendall(msg(3, 0, 1, None))     # an original heartbeat: JSON null
    data = msg(2, 255, 1, [{"title": "bar_pos", "content": [20, 250], "queue": False}])
    first.sendall(data)
    assert read(second)[3] == data    # forwarded byte for byte

    direct = msg(2, 1, 2, [{"title": "ball_pos", "content": {"center": [1, 2]}, "queue": True}])
    second.sendall(direct)
    assert read(first)[3] == direct

    second.sendall(msg(5, 0, 2, {"type": 0, "data": None}))     # "I am leaving"
    frame_type, _, _, raw = read(first)
    assert frame_type == 4 and payload(raw) == [{"name": "Player1", "addr": 1}]
    second.settimeout(3)
    assert second.recv(100) == b""
    first.close()


def test_relay_names_a_node_that_asks_and_tells_it_first(relay):
    sock = raw_connect(relay.port)
    sock.sendall(msg(1, 0, 255, {"name": "", "group": "chat"}))
    frame_type, _, sender, raw = read(sock)
    assert (frame_type, sender) == (6, 0)
    sysm = payload(raw)
    assert sysm["type"] == 0 and sysm["msg"] is None and isinstance(sysm["data"], str)
    frame_type, _, _, raw = read(sock)
    assert frame_type == 4 and payload(raw) == [{"name": sysm["data"], "addr": 1}]
    sock.close()


def test_addresses_are_the_lowest_free_ones(relay):
    socks = []
    for name in ("A", "B", "C"):
        sock = raw_connect(relay.port)
        sock.sendall(msg(1, 0, 255, {"name": name, "group": "chat"}))
        socks.append(sock)
        wait_for(lambda: name in relay.members("chat"))
    socks[1].close()                                    # B (address 2) leaves
    wait_for(lambda: relay.members("chat") == ["A", "C"])
    late = raw_connect(relay.port)
    late.sendall(msg(1, 0, 255, {"name": "D", "group": "chat"}))
    while True:
        frame_type, _, _, raw = read(late)
        if frame_type == 4:
            break
    assert {"name": "D", "addr": 2} in payload(raw)
    for sock in socks + [late]:
        sock.close()


# -- this node talking to an original relay ------------------------------------

class ScriptedRelay:
    """A one-connection relay that behaves like the original: it answers AUTH
    with PEERS, or refuses by closing without a word."""

    def __init__(self, accept_name):
        self.accept_name = accept_name
        self.server = socket.create_server((HOST, 0))
        self.port = self.server.getsockname()[1]
        self.received = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.server.accept()
        conn.settimeout(5)
        with conn:
            frame_type, dest, sender, raw = read(conn)
            self.received.append((frame_type, dest, sender, raw))
            if payload(raw)["name"] != self.accept_name:
                return                                   # refuse: just close
            conn.sendall(msg(4, 255, 0, [{"name": "Host", "addr": 1},
                                            {"name": self.accept_name, "addr": 2}]))
            try:
                while len(self.received) < 3:
                    self.received.append(read(conn))
            except (AssertionError, OSError):
                pass

    def close(self):
        self.thread.join(timeout=5)
        self.server.close()


def test_this_node_joins_an_original_relay_and_sends_what_it_expects():
    relay = ScriptedRelay(accept_name="Player2")
    net = NetNode()
    assert net.connect(HOST, "Player2", "pong_game", port=relay.port)
    frame_type, dest, sender, raw = relay.received[0]
    assert (frame_type, dest, sender) == (1, 0, 255)
    assert payload(raw) == {"name": "Player2", "group": "pong_game"}
    assert net.get_peers() == ["Host", "Player2"]

    assert net.send_msg("Host", "bar_pos", [760, 300])
    net.heartbeat_interval = 0.05                        # shrunk from 1 s for the test
    net.process_send()
    assert wait_for(lambda: net.process_send() or len(relay.received) >= 3)   # idle: a heartbeat
    relay.close()
    (data_type, data_dest, data_sender, data_raw), (heart_type, heart_dest, heart_sender, heart_raw) = \
        relay.received[1:3]
    assert (data_type, data_dest, data_sender) == (2, 1, 2)
    assert payload(data_raw) == [{"title": "bar_pos", "content": [760, 300], "queue": False}]
    assert (heart_type, heart_dest, heart_sender) == (3, 0, 2)
    assert heart_raw[11:] == b"null"


def test_a_silent_refusal_by_an_original_relay_fails_fast_with_a_reason():
    relay = ScriptedRelay(accept_name="Player2")
    net = NetNode()
    started = time.monotonic()
    assert net.connect(HOST, "Player1", "pong_game", port=relay.port) is False
    assert time.monotonic() - started < 2
    assert net.error_code == "closed"
    assert "may be taken" in net.error
    relay.close()


class OriginalRelay:
    """Several connections, as the original relay serves them: AUTH gets the
    lowest free address and a PEERS list sent to every member, in the order
    they joined; DATA goes to its dest (255: everyone else in the group).
    Nothing else is answered: no HEART, no REQ, no reasons."""

    def __init__(self):
        self.server = socket.create_server((HOST, 0))
        self.port = self.server.getsockname()[1]
        self.members = []                   # [sock, name, addr], in joining order
        self.requests = []                  # REQ payloads it ignored
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        selector = selectors.DefaultSelector()
        selector.register(self.server, selectors.EVENT_READ)
        buffers = {}
        while not self.stopped.is_set():
            for key, _ in selector.select(0.05):
                if key.fileobj is self.server:
                    conn, _ = self.server.accept()
                    buffers[conn] = b""
                    selector.register(conn, selectors.EVENT_READ)
                    continue
                chunk = key.fileobj.recv(65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffers[key.fileobj] += chunk
                while len(buffers[key.fileobj]) >= 11:
                    length = int.from_bytes(buffers[key.fileobj][:4], "big")
                    if len(buffers[key.fileobj]) < length:
                        break
                    raw, buffers[key.fileobj] = (buffers[key.fileobj][:length],
                                                 buffers[key.fileobj][length:])
                    self.handle(key.fileobj, raw)
        selector.close()

    def handle(self, sock, raw):
        kind, dest = raw[9], raw[7]
        if kind == 1:
            name = payload(raw)["name"]
            addr = min(set(range(1, 255)) - {a for _, _, a in self.members})
            self.members.append([sock, name, addr])
            peers = msg(4, 255, 0, [{"name": n, "addr": a} for _, n, a in self.members])
            for member, _, _ in self.members:
                member.sendall(peers)
        elif kind == 2:
            for member, _, addr in self.members:
                if member is not sock and dest in (255, addr):
                    member.sendall(raw)
        elif kind == 5:
            self.requests.append(payload(raw))

    def close(self):
        self.stopped.set()
        self.thread.join(timeout=5)
        for sock, _, _ in self.members:
            sock.close()
        self.server.close()


@both_selectors
def test_both_players_can_send_right_after_connecting_to_an_original_relay():
    relay = OriginalRelay()
    try:
        host, peer = NetNode(), NetNode()
        assert host.connect(HOST, "Player1", "pong_game", port=relay.port)
        assert peer.connect(HOST, "Player2", "pong_game", port=relay.port)
        assert peer.get_peers() == ["Player1", "Player2"]
        assert host.send_msg("Player2", "game_start", True), host.send_error
        assert peer.send_msg("Player1", "bar_pos", [780, 300]), peer.send_error
        host.process_send(), peer.process_send()
        assert wait_for(lambda: peer.process_recv() or peer.available("Player1", "game_start"))
        assert wait_for(lambda: host.process_recv() or host.available("Player2", "bar_pos"))
        assert host.joined() == ["Player2"] and peer.joined() == ["Player1"]
    finally:
        relay.close()


def test_an_original_relay_gives_no_ping_and_is_asked_three_times_only():
    relay = OriginalRelay()
    try:
        net = NetNode()
        net.ping_interval = 0.02
        assert net.connect(HOST, "Player1", "pong_game", port=relay.port)
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            net.process_send()
            net.process_recv()
            time.sleep(0.005)
        assert wait_for(lambda: len(relay.requests) >= 3)
        time.sleep(0.05)
        assert net.ping is None and net.connected
        assert relay.requests == [{"type": 3, "data": n} for n in (1, 2, 3)]
    finally:
        relay.close()
