"""What bad input gets: raw bytes over real loopback sockets.

The relay must never die, and never stall the other clients, because of what
one connection does: it drops the offender (after a SYSM "refused" frame when
the offender was asking to join) or ignores the frame. Every test below checks
both halves: what happens to the offender, and that a well-behaved pair of
NetNodes in the same group still exchanges messages afterwards.
"""
import contextlib
import logging
import random
import select
import socket
import struct
import time

import pytest

import nethelper
from conftest import (HOST, auth, data, decode, expect_closed, frame, frames_of, js, raw_connect,
                      raw_join, read_frame, read_until, wait_for, both_selectors)
from nethelper import AUTH, DATA, HEART, PEERS, REQ, SYSM, FrameReader, NetNode

# ---------------------------------------------------------------------------
# Helpers (the raw-socket ones are in conftest.py): a NetNode pair
# ---------------------------------------------------------------------------

def expect_refused(sock, reason, timeout=5.0):
    """The relay sends SYSM type 1 with ``reason`` and then closes."""
    frames = expect_closed(sock, timeout)
    assert frames, "the relay closed without saying why (expected SYSM {})".format(reason)
    refusal = frames[0]
    assert refusal.type == SYSM, frames
    assert refusal.sender == 0 and refusal.dest == 255, refusal
    assert refusal.body["type"] == 1, refusal
    assert refusal.body["msg"] == reason, refusal
    assert isinstance(refusal.body["data"], str) and refusal.body["data"], refusal
    assert len(frames) == 1, "frames after the refusal: {}".format(frames[1:])
    return refusal


def sync(sock, addr):
    """Ask the relay for the member list (REQ 1) and wait for the answer.

    The relay handles one connection's frames in order and sends at once, so
    by the time the answer arrives, whatever the frames sent before it caused
    has been sent too: no need to wait and see. Fails if anything but
    heartbeats came first. Returns the answer."""
    sock.sendall(frame(REQ, 0, addr, js({"type": 1, "data": None})))
    while True:
        msg = read_frame(sock)
        if msg is None:
            pytest.fail("the relay closed a connection it should have kept")
        if msg.type == PEERS and msg.dest == addr:
            return msg
        assert msg.type == HEART, "unexpected frame from the relay: {}".format(msg)


def assert_nothing_waiting(sock):
    """Nothing but heartbeats is waiting to be read on ``sock`` now."""
    sock.setblocking(False)
    try:
        chunk = sock.recv(65536)
    except BlockingIOError:
        return
    finally:
        sock.settimeout(5)
    if not chunk:
        pytest.fail("the relay closed a connection it should have kept")
    frames = frames_of(chunk)
    assert all(f.type == HEART for f in frames), "unexpected frames: {}".format(frames)


def names_in(peers_msg):
    return [p["name"] for p in peers_msg.body]


class Pair:
    """Two well-behaved NetNodes in one group, pumped like a game loop."""

    def __init__(self, port, group="pong_game", names=("Alice", "Bob")):
        self.a, self.b = NetNode(), NetNode()
        self.nodes = (self.a, self.b)
        self.keepalive = False          # send a message every pump (short liveness timeouts)
        self._ticks = 0
        self._last_tick = 0.0
        for node, name in zip(self.nodes, names):
            assert node.connect(HOST, name, group, port=port, timeout=5), node.error
        assert self.pump_until(lambda: all(set(n.get_peers()) >= set(names) for n in self.nodes))

    def pump(self):
        now = time.monotonic()
        if self.keepalive and now - self._last_tick >= 0.05:
            self._last_tick = now
            self._ticks += 1
            for node in self.nodes:
                node.send_msg("ALL", "tick", self._ticks)
        for node in self.nodes:
            node.process_send()
            node.process_recv()

    def pump_until(self, condition, timeout=5.0):
        """Pump both nodes until ``condition()`` holds; return its last value."""
        def step():
            self.pump()
            return condition()
        return wait_for(step, timeout=timeout, step=0.005)

    def pump_for(self, seconds):
        self.pump_until(lambda: False, timeout=seconds)

    def round_trip(self, tag="ok"):
        """A message each way; fails unless both arrive intact."""
        a, b = self.a, self.b
        assert a.connected and b.connected, (a.error, b.error)
        assert a.send_msg(b.get_name(), "ping", {"tag": tag, "n": [1, 2, 3]}, queue=True)
        assert self.pump_until(lambda: b.available(a.get_name(), "ping")), \
            "Bob never got Alice's message ({}, {})".format(a.error, b.error)
        assert b.get_msg(a.get_name(), "ping") == {"tag": tag, "n": [1, 2, 3]}
        assert b.send_msg(a.get_name(), "pong", tag, queue=True)
        assert self.pump_until(lambda: a.available(b.get_name(), "pong")), \
            "Alice never got Bob's message ({}, {})".format(a.error, b.error)
        assert a.get_msg(b.get_name(), "pong") == tag
        assert a.connected and b.connected, (a.error, b.error)

    def close(self):
        for node in self.nodes:
            node.disconnect()


@contextlib.contextmanager
def running_relay(**options):
    with nethelper.Relay(["pong_game", "chat"], host=HOST, port=0, **options) as relay:
        yield relay


@pytest.fixture
def cleanup():
    """Register pairs and sockets to close after the test."""
    things = []
    yield things.append
    for thing in reversed(things):
        with contextlib.suppress(OSError):
            if isinstance(thing, NetNode):
                thing.disconnect()
            else:
                thing.close()


@pytest.fixture
def pair(relay, cleanup):
    made = Pair(relay.port)
    cleanup(made)
    made.round_trip("before")
    return made


def connect(port, cleanup):
    sock = raw_connect(port)
    cleanup(sock)
    return sock


# ---------------------------------------------------------------------------
# Broken framing
# ---------------------------------------------------------------------------

def garbage(size, seed):
    rng = random.Random(seed)
    junk = bytes(rng.randrange(256) for _ in range(size))
    assert junk[4:7] != b"020"
    return junk


def test_random_garbage_before_joining_is_refused_and_closed(relay, pair, cleanup):
    sock = connect(relay.port, cleanup)
    sock.sendall(garbage(300, seed=1))
    # The version field of the "header" is not 020: the relay says so and closes.
    expect_refused(sock, "version")
    pair.round_trip("after garbage")
    assert relay.members("pong_game") == ["Alice", "Bob"]


@both_selectors
def test_random_garbage_after_joining_drops_the_node(relay, pair, cleanup):
    sock, addr, _ = raw_join(relay.port, "Mallory")
    cleanup(sock)
    assert pair.pump_until(lambda: "Mallory" in pair.a.get_peers())
    sock.sendall(garbage(300, seed=2))
    frames = expect_closed(sock)
    # No refusal once joined: a goodbye (SYSM 3) that says why, and the end.
    assert all(f.type in (PEERS, HEART) for f in frames[:-1]), frames
    assert frames[-1].type == SYSM and frames[-1].body["type"] == 3, frames
    assert frames[-1].body["msg"] == "bad_frame" and frames[-1].dest == addr, frames
    assert pair.pump_until(lambda: pair.a.get_peers() == ["Alice", "Bob"]
                           and pair.b.get_peers() == ["Alice", "Bob"])
    assert relay.members("pong_game") == ["Alice", "Bob"]
    pair.round_trip()


def test_wrong_version_before_joining_gets_a_version_refusal(relay, pair, cleanup):
    sock = connect(relay.port, cleanup)
    sock.sendall(frame(AUTH, 0, 255, js({"name": "Old", "group": "pong_game"}), version=b"019"))
    expect_refused(sock, "version")
    assert relay.members("pong_game") == ["Alice", "Bob"]
    pair.round_trip()


def test_wrong_version_after_joining_drops_the_node(relay, pair, cleanup):
    sock, addr, _ = raw_join(relay.port, "Mallory")
    cleanup(sock)
    sock.sendall(frame(DATA, 255, addr, js([{"title": "x", "content": 1, "queue": True}]),
                       version=b"021"))
    expect_closed(sock)
    assert pair.pump_until(lambda: pair.b.get_peers() == ["Alice", "Bob"])
    assert pair.b.available("Mallory", "x") == 0 and pair.a.available("Mallory", "x") == 0
    pair.round_trip()


@pytest.mark.parametrize("length", [0, 4, 10])
def test_length_below_header_size_closes_the_connection(relay, pair, cleanup, length):
    sock = connect(relay.port, cleanup)
    sock.sendall(frame(AUTH, 0, 255, js({"name": "Short", "group": "pong_game"}), length=length))
    assert expect_closed(sock) == []
    assert relay.members("pong_game") == ["Alice", "Bob"]
    pair.round_trip()


def test_length_below_header_size_from_a_member_drops_it(relay, pair, cleanup):
    sock, addr, _ = raw_join(relay.port, "Mallory")
    cleanup(sock)
    sock.sendall(frame(DATA, 255, addr, length=3))
    expect_closed(sock)
    assert pair.pump_until(lambda: pair.a.get_peers() == ["Alice", "Bob"])
    pair.round_trip()


@pytest.mark.parametrize("length", [1024 * 1024 + 1, 50 * 1024 * 1024, 0xFFFFFFFF])
def test_length_over_the_default_cap_closes_at_once(relay, pair, cleanup, length):
    sock = connect(relay.port, cleanup)
    # Only the header and a few bytes: the relay must not wait for the body.
    sock.sendall(frame(AUTH, 0, 255, b'{"name":', length=length))
    assert expect_closed(sock, timeout=5) == []
    pair.round_trip()


def test_smaller_max_frame_size_is_enforced_exactly(cleanup):
    limit = 4096
    with running_relay(max_frame_size=limit) as relay:
        pair = Pair(relay.port)
        cleanup(pair)
        sender, addr, _ = raw_join(relay.port, "Big")
        cleanup(sender)
        assert pair.pump_until(lambda: "Big" in pair.a.get_peers())
        # A frame of exactly the limit is fine and forwarded byte for byte...
        head = frame(DATA, 255, addr, b"")
        body_prefix, body_suffix = b'[{"title":"big","queue":true,"content":"', b'"}]'
        filler = limit - len(head) - len(body_prefix) - len(body_suffix)
        exact = frame(DATA, 255, addr, body_prefix + b"y" * filler + body_suffix)
        assert len(exact) == limit
        sender.sendall(exact)
        assert pair.pump_until(lambda: pair.a.available("Big", "big")
                               and pair.b.available("Big", "big"))
        assert pair.a.get_all_msgs("Big", "big") == ["y" * filler]
        assert pair.b.get_all_msgs("Big", "big") == ["y" * filler]
        # ...one byte more and the sender is dropped, the frame never delivered.
        over = frame(DATA, 255, addr, body_prefix + b"z" * (filler + 1) + body_suffix)
        assert len(over) == limit + 1
        sender.sendall(over)
        expect_closed(sender)
        assert pair.pump_until(lambda: pair.a.get_peers() == ["Alice", "Bob"])
        assert pair.a.available("Big", "big") == 0 and pair.b.available("Big", "big") == 0
        pair.round_trip()


def test_a_big_frame_before_joining_is_closed_unread(relay, pair, cleanup):
    """Strangers may send small frames only: a real AUTH is under 300 bytes."""
    sock = connect(relay.port, cleanup)
    padded = js({"name": "Big", "group": "pong_game", "pad": "[" * 5000})
    sock.sendall(frame(AUTH, 0, 255, padded))
    assert expect_closed(sock, timeout=2) == []
    assert relay.members("pong_game") == ["Alice", "Bob"]
    pair.round_trip()


def test_a_member_sending_a_big_control_frame_gets_a_goodbye(relay, pair, cleanup):
    sock, addr, _ = raw_join(relay.port, "Mallory")
    cleanup(sock)
    sock.sendall(frame(REQ, 0, addr, js({"type": 1, "data": [[[]]] * 2000})))
    frames = expect_closed(sock, timeout=2)
    assert frames[-1].type == SYSM and frames[-1].body["type"] == 3, frames
    assert frames[-1].body["msg"] == "bad_frame"
    assert pair.pump_until(lambda: pair.a.get_peers() == ["Alice", "Bob"])
    pair.round_trip()


# ---------------------------------------------------------------------------
# AUTH that cannot be accepted
# ---------------------------------------------------------------------------

BAD_AUTH_PAYLOADS = {
    "empty": b"",
    "invalid_json": b'{"name": "Eve", "group": ',
    "not_object_list": b'["Eve", "pong_game"]',
    "not_object_string": b'"Eve"',
    "not_object_null": b"null",
    "missing_group": b'{"name": "Eve"}',
    "missing_name": b'{"group": "pong_game"}',
    "missing_both": b"{}",
    "name_number": b'{"name": 5, "group": "pong_game"}',
    "name_null": b'{"name": null, "group": "pong_game"}',
    "group_list": b'{"name": "Eve", "group": ["pong_game"]}',
    "group_object": b'{"name": "Eve", "group": {"g": 1}}',
    "not_utf8_prefix": b'\xff\xfe{"name": "Eve", "group": "pong_game"}',
    "not_utf8_inside": b'{"name": "Ev\xe9", "group": "pong_game"}',
    "name_ALL": b'{"name": "ALL", "group": "pong_game"}',
    "name_too_long": js({"name": "x" * 101, "group": "pong_game"}),
    "deeply_nested": b'{"name": ' + b"[" * 1000 + b"]" * 1000 + b', "group": "pong_game"}',
}


@pytest.mark.parametrize("payload", list(BAD_AUTH_PAYLOADS.values()), ids=list(BAD_AUTH_PAYLOADS))
def test_bad_auth_gets_bad_request_then_close(relay, pair, cleanup, payload):
    sock = connect(relay.port, cleanup)
    sock.sendall(frame(AUTH, 0, 255, payload))
    expect_refused(sock, "bad_request")
    assert relay.members("pong_game") == ["Alice", "Bob"]
    assert pair.a.get_peers() == ["Alice", "Bob"]
    pair.round_trip()


def test_auth_for_unknown_group_is_refused(relay, pair, cleanup):
    sock = connect(relay.port, cleanup)
    sock.sendall(auth("Eve", "no_such_group"))
    refusal = expect_refused(sock, "unknown_group")
    assert "no_such_group" in refusal.body["data"]
    pair.round_trip()


def test_a_refusal_from_a_relay_with_a_thousand_groups_stays_short(cleanup):
    groups = ["group{:04d}".format(i) for i in range(1000)]
    with nethelper.Relay(groups, host=HOST, port=0) as relay:
        sock = connect(relay.port, cleanup)
        sock.sendall(auth("Eve", "no_such_group"))
        refusal = expect_refused(sock, "unknown_group")
        assert len(refusal.raw) < 500, len(refusal.raw)
        assert refusal.body["data"].endswith("... and 990 more.")


def test_auth_with_a_taken_name_is_refused_but_the_name_is_free_in_another_group(
        relay, pair, cleanup):
    sock = connect(relay.port, cleanup)
    sock.sendall(auth("Alice", "pong_game"))
    refusal = expect_refused(sock, "name_taken")
    assert "Alice" in refusal.body["data"]
    assert relay.members("pong_game") == ["Alice", "Bob"]
    pair.round_trip()
    # Names are scoped to a group.
    other, addr, peers = raw_join(relay.port, "Alice", "chat")
    cleanup(other)
    assert peers == [{"name": "Alice", "addr": 1}] and addr == 1


def test_auth_into_a_full_group_is_refused(cleanup):
    with running_relay(max_peers=2) as relay:
        pair = Pair(relay.port)
        cleanup(pair)
        sock = connect(relay.port, cleanup)
        sock.sendall(auth("Carol"))
        expect_refused(sock, "group_full")
        assert relay.members("pong_game") == ["Alice", "Bob"]
        pair.round_trip()
        # The limit is per group: chat still takes her.
        carol, addr, _ = raw_join(relay.port, "Carol", "chat")
        cleanup(carol)
        assert relay.members("chat") == ["Carol"]
        # And a NetNode is told why.
        node = NetNode()
        assert not node.connect(HOST, "Dave", "pong_game", port=relay.port, timeout=5)
        assert node.error_code == "group_full"
        pair.round_trip()


def test_second_auth_from_a_member_is_ignored(relay, pair, cleanup):
    sock, addr, _ = raw_join(relay.port, "Mallory")
    cleanup(sock)
    sock.sendall(auth("Mallory2", "chat"))
    sync(sock, addr)
    assert relay.members("pong_game") == ["Alice", "Bob", "Mallory"]
    assert relay.members("chat") == []
    pair.round_trip()


# ---------------------------------------------------------------------------
# Frames that must be ignored
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("frame_type", [0, 7, 99, 255])
def test_unknown_frame_type_is_ignored_and_the_connection_stays(relay, pair, cleanup, frame_type):
    sock, addr, _ = raw_join(relay.port, "Odd")
    cleanup(sock)
    assert pair.pump_until(lambda: "Odd" in pair.b.get_peers())
    sock.sendall(frame(frame_type, 255, addr, js([{"title": "x", "content": 1, "queue": True}])))
    sock.sendall(frame(frame_type, 1, addr, b"whatever"))
    sync(sock, addr)
    pair.pump()
    assert pair.a.available("Odd", "x") == 0 and pair.b.available("Odd", "x") == 0
    # Still a member, still heard.
    sock.sendall(data(1, addr, ("hello", "from Odd")))
    assert pair.pump_until(lambda: pair.a.available("Odd", "hello"))
    assert pair.a.get_msg("Odd", "hello") == "from Odd"
    assert relay.members("pong_game") == ["Alice", "Bob", "Odd"]
    pair.round_trip()


def test_data_before_auth_is_never_delivered(relay, pair, cleanup):
    sock = connect(relay.port, cleanup)
    observer, obs_addr, _ = raw_join(relay.port, "Observer")
    cleanup(observer)
    assert pair.pump_until(lambda: "Observer" in pair.a.get_peers())
    early = [data(255, 255, ("early", 1)), data(1, 255, ("early", 2)),
             data(255, 3, ("early", 3)), data(obs_addr, 1, ("early", 4))]
    # The connection is not dropped: it can still join, and the early frames
    # are not kept for later either. Its AUTH comes after them, so once the
    # group hears of the join, the early frames would have arrived too.
    sock.sendall(b"".join(early) + auth("Late"))
    peers = read_until(sock, lambda m: m.type == PEERS)
    assert names_in(peers) == ["Alice", "Bob", "Observer", "Late"]
    late_addr = peers.body[-1]["addr"]
    assert pair.pump_until(lambda: "Late" in pair.a.get_peers())
    for node in pair.nodes:
        for who in (None, "Alice", "Bob", "Observer", "Late"):
            assert node.available(who, "early") == 0
    seen = []
    read_until(observer, lambda m: seen.append(m) or m.type == PEERS and "Late" in names_in(m))
    assert all(m.type in (PEERS, HEART) for m in seen), seen
    sock.sendall(data(255, late_addr, ("now", "joined")))
    got = read_until(observer, lambda m: m.type == DATA)
    assert got.body == [{"title": "now", "content": "joined", "queue": True}]
    assert pair.pump_until(lambda: pair.a.available("Late", "now") and pair.b.available("Late", "now"))
    for node in pair.nodes:
        assert node.available("Late", "early") == 0
    pair.round_trip()


def test_forged_sender_is_not_delivered(relay, pair, cleanup):
    sock, addr, peers = raw_join(relay.port, "Mallory")
    cleanup(sock)
    assert addr == 3
    assert pair.pump_until(lambda: "Mallory" in pair.a.get_peers())
    alice_addr, bob_addr = 1, 2
    # Pretending to be Alice (to Bob and to everyone), or to be nobody yet.
    sock.sendall(data(bob_addr, alice_addr, ("forged", "to bob as alice")))
    sock.sendall(data(255, alice_addr, ("forged", "to all as alice")))
    sock.sendall(data(255, 255, ("forged", "as unknown")))
    sock.sendall(data(255, 200, ("forged", "as a stranger")))
    sync(sock, addr)
    pair.pump()
    for node in pair.nodes:
        for who in ("Alice", "Bob", "Mallory", None):
            assert node.available(who, "forged") == 0, (node.name, who)
    # Ignored, not dropped: the same connection with its own address works.
    sock.sendall(data(bob_addr, addr, ("honest", "hi Bob")))
    assert pair.pump_until(lambda: pair.b.available("Mallory", "honest"))
    assert pair.b.get_msg("Mallory", "honest") == "hi Bob"
    assert pair.a.available("Mallory", "honest") == 0
    assert relay.members("pong_game") == ["Alice", "Bob", "Mallory"]
    pair.round_trip()


@pytest.mark.parametrize("payload", [b"not json", b"", b"[" * 100000, b'{"title": "x"}',
                                     b'[1, "x", null, {"title": 5}, {"content": 1}]',
                                     b'[{"title": "bad", "content": "\xff"}]'],
                         ids=["invalid", "empty", "deeply_nested", "object", "bad_items",
                              "not_utf8"])
def test_junk_data_from_a_member_does_not_break_the_receivers(relay, pair, cleanup, payload):
    """The relay forwards DATA unread; the NetNodes that get junk must shrug it off."""
    sock, addr, _ = raw_join(relay.port, "Junk")
    cleanup(sock)
    assert pair.pump_until(lambda: "Junk" in pair.a.get_peers() and "Junk" in pair.b.get_peers())
    sock.sendall(frame(DATA, 255, addr, payload))
    sock.sendall(data(255, addr, ("after", "junk")))
    assert pair.pump_until(lambda: pair.a.available("Junk", "after")
                           and pair.b.available("Junk", "after"))
    for node in pair.nodes:
        assert node.connected, node.error
        assert node.get_all_msgs("Junk", "after") == ["junk"]
        assert node.available("Junk", "x") == 0 and node.available("Junk", "bad") == 0
    assert relay.members("pong_game") == ["Alice", "Bob", "Junk"]
    pair.round_trip()


@pytest.mark.parametrize("dest", [0, 4, 200, 254])
def test_data_to_an_address_not_in_the_group_goes_nowhere(relay, pair, cleanup, dest):
    sock, addr, _ = raw_join(relay.port, "Lost")
    cleanup(sock)
    other, other_addr, _ = raw_join(relay.port, "Other", "chat")    # address 1 in chat
    cleanup(other)
    assert addr == 3 and other_addr == 1
    assert pair.pump_until(lambda: "Lost" in pair.a.get_peers())
    sock.sendall(data(dest, addr, ("void", dest)))
    sync(sock, addr)
    assert_nothing_waiting(other)
    pair.pump()
    assert pair.a.available("Lost", "void") == 0 and pair.b.available("Lost", "void") == 0
    sock.sendall(data(2, addr, ("found", "hi")))
    assert pair.pump_until(lambda: pair.b.available("Lost", "found"))
    assert relay.members("pong_game") == ["Alice", "Bob", "Lost"]
    pair.round_trip()


def test_data_is_never_forwarded_across_groups(relay, pair, cleanup):
    chat_a, addr_a, _ = raw_join(relay.port, "ChatA", "chat")
    chat_b, addr_b, _ = raw_join(relay.port, "ChatB", "chat")
    cleanup(chat_a)
    cleanup(chat_b)
    read_until(chat_a, lambda m: m.type == PEERS and len(m.body) == 2)
    chat_a.sendall(data(255, addr_a, ("hello", "chat")))
    got = read_until(chat_b, lambda m: m.type == DATA)
    assert got.sender == addr_a and got.body[0]["content"] == "chat"
    pair.pump()                     # had it gone to them too, it would be there by now
    for node in pair.nodes:
        assert node.available("Alice", "hello") == 0 and node.available(None, "hello") == 0
    pair.round_trip()


@pytest.mark.parametrize("payload", [js({"type": 42, "data": None}), js({"type": -1}),
                                     js({"type": "1"}), js([1]), b"{oops", b""],
                         ids=["type42", "negative", "string_type", "list", "invalid", "empty"])
def test_req_of_unknown_type_or_bad_payload_is_ignored(relay, pair, cleanup, payload):
    sock, addr, _ = raw_join(relay.port, "Asker")
    cleanup(sock)
    sock.sendall(frame(REQ, 0, addr, payload))
    # Still served, and nothing came before: a proper REQ type 1 is answered.
    answer = sync(sock, addr)
    assert names_in(answer) == ["Alice", "Bob", "Asker"]
    assert relay.members("pong_game") == ["Alice", "Bob", "Asker"]
    pair.round_trip()


def test_req_type_1_gets_peers_for_that_node_alone(relay, pair, cleanup):
    asker, asker_addr, _ = raw_join(relay.port, "Asker")
    cleanup(asker)
    bystander, by_addr, _ = raw_join(relay.port, "Bystander")
    cleanup(bystander)
    # The asker sees the bystander's join; after that both are quiet.
    read_until(asker, lambda m: m.type == PEERS and "Bystander" in names_in(m))
    asker.sendall(frame(REQ, 0, asker_addr, js({"type": 1, "data": None})))
    answer = read_until(asker, lambda m: m.type != HEART)
    assert answer.type == PEERS
    assert answer.sender == 0
    assert answer.dest == asker_addr
    assert answer.body == [{"name": "Alice", "addr": 1}, {"name": "Bob", "addr": 2},
                           {"name": "Asker", "addr": asker_addr},
                           {"name": "Bystander", "addr": by_addr}]
    sync(asker, asker_addr)             # nothing else came for either of them
    sync(bystander, by_addr)
    pair.round_trip()


def test_req_type_1_with_forged_sender_is_ignored(relay, pair, cleanup):
    sock, addr, _ = raw_join(relay.port, "Asker")
    cleanup(sock)
    sock.sendall(frame(REQ, 0, 1, js({"type": 1, "data": None})))      # pretends to be Alice
    sock.sendall(frame(REQ, 0, 1, js({"type": 0, "data": None})))      # "Alice leaves"
    sync(sock, addr)
    assert relay.members("pong_game") == ["Alice", "Bob", "Asker"]
    pair.round_trip()


def test_req_type_0_closes_cleanly_and_the_others_get_new_peers(relay, pair, cleanup):
    leaver, leaver_addr, _ = raw_join(relay.port, "Leaver")
    cleanup(leaver)
    watcher, _, _ = raw_join(relay.port, "Watcher")
    cleanup(watcher)
    assert pair.pump_until(lambda: pair.a.get_peers() == ["Alice", "Bob", "Leaver", "Watcher"])
    leaver.sendall(frame(REQ, 0, leaver_addr, js({"type": 0, "data": None})))
    frames = expect_closed(leaver)
    assert all(f.type in (PEERS, HEART) for f in frames), frames
    update = read_until(watcher, lambda m: m.type == PEERS and "Leaver" not in names_in(m))
    assert update.dest == 255 and update.sender == 0
    assert names_in(update) == ["Alice", "Bob", "Watcher"]
    assert pair.pump_until(lambda: pair.a.get_peers() == ["Alice", "Bob", "Watcher"]
                           and pair.b.get_peers() == ["Alice", "Bob", "Watcher"])
    assert relay.members("pong_game") == ["Alice", "Bob", "Watcher"]
    pair.round_trip()
    # The address is free again for the next one.
    again, again_addr, _ = raw_join(relay.port, "Again")
    cleanup(again)
    assert again_addr == leaver_addr


# ---------------------------------------------------------------------------
# Timeouts
# ---------------------------------------------------------------------------

def test_connection_that_never_sends_auth_is_dropped(cleanup):
    with running_relay(auth_timeout=0.5) as relay:
        pair = Pair(relay.port)
        cleanup(pair)
        silent = connect(relay.port, cleanup)
        partial = connect(relay.port, cleanup)
        partial.sendall(auth("Half")[:15])          # a header and a bit, never finished
        assert expect_closed(silent, timeout=5) == []
        assert expect_closed(partial, timeout=5) == []
        # Members are not subject to the join deadline: the pair joined
        # before those two connected, and is still there.
        pair.pump()
        assert relay.members("pong_game") == ["Alice", "Bob"]
        pair.round_trip()


def test_silent_member_is_dropped_after_the_liveness_timeout(cleanup):
    with running_relay(liveness_timeout=0.6) as relay:
        pair = Pair(relay.port)
        pair.keepalive = True           # the pair talks like a game: many times a second
        cleanup(pair)
        watcher, _, _ = raw_join(relay.port, "Watcher", "pong_game")
        cleanup(watcher)
        assert pair.pump_until(lambda: "Watcher" in pair.a.get_peers())
        # The watcher says nothing after joining: it is dropped, the pair is told...
        assert pair.pump_until(lambda: pair.a.get_peers() == ["Alice", "Bob"]
                               and pair.b.get_peers() == ["Alice", "Bob"])
        assert relay.members("pong_game") == ["Alice", "Bob"]
        pair.round_trip()
        # ...and its socket was closed by the relay.
        watcher.settimeout(0)
        frames = expect_closed(watcher, timeout=3)
        # The pair's chatter and the relay's heartbeats, then a goodbye that says why.
        assert {f.type for f in frames[:-1]} <= {PEERS, DATA, HEART}, frames
        assert frames[-1].type == SYSM and frames[-1].body["type"] == 3, frames
        assert frames[-1].body["msg"] == "timeout", frames
        pair.round_trip()


def test_silent_member_peers_update_seen_by_a_raw_member(cleanup):
    with running_relay(liveness_timeout=0.6) as relay:
        pair = Pair(relay.port)
        pair.keepalive = True
        cleanup(pair)
        talker, talker_addr, _ = raw_join(relay.port, "Talker")
        cleanup(talker)
        silent, _, _ = raw_join(relay.port, "Silent")
        cleanup(silent)
        deadline = time.monotonic() + 5
        update = None
        talker.settimeout(0.1)
        while update is None and time.monotonic() < deadline:
            pair.pump()
            talker.sendall(frame(HEART, 0, talker_addr, b"null"))
            try:
                msg = read_frame(talker, 0.1)
            except socket.timeout:
                continue
            assert msg is not None, "the talking member was dropped"
            if msg.type == PEERS and "Silent" not in names_in(msg):
                update = msg
        assert update is not None, "no PEERS list without the silent node"
        assert names_in(update) == ["Alice", "Bob", "Talker"]
        expect_closed(silent)
        pair.round_trip()


def test_member_sending_heartbeats_is_not_dropped(cleanup):
    with running_relay(liveness_timeout=0.6) as relay:
        pair = Pair(relay.port)
        pair.keepalive = True
        cleanup(pair)
        beating, beat_addr, _ = raw_join(relay.port, "Beating")
        cleanup(beating)
        silent, _, _ = raw_join(relay.port, "Silent")          # the control
        cleanup(silent)
        end = time.monotonic() + 1.5                              # 2.5 timeouts' worth
        while time.monotonic() < end:
            beating.sendall(frame(HEART, 0, beat_addr, b"null"))
            pair.pump_for(0.1)
        assert relay.members("pong_game") == ["Alice", "Bob", "Beating"]
        assert pair.a.get_peers() == ["Alice", "Bob", "Beating"]
        expect_closed(silent)
        # The beating one's socket is still open and it still gets frames.
        beating.sendall(frame(REQ, 0, beat_addr, js({"type": 1, "data": None})))
        answer = read_until(beating, lambda m: m.type == PEERS and m.dest == beat_addr)
        assert names_in(answer) == ["Alice", "Bob", "Beating"]
        pair.round_trip()


def test_a_member_dripping_a_frame_is_dropped_at_the_partial_frame_deadline(cleanup):
    with running_relay(partial_frame_timeout=0.5) as relay:
        pair = Pair(relay.port)
        cleanup(pair)
        sock, addr, _ = raw_join(relay.port, "Drip")
        cleanup(sock)
        big = frame(DATA, 255, addr, b"x" * 100000)
        sock.sendall(big[:50000])
        deadline = time.monotonic() + 5
        closed = False
        sock.settimeout(0.1)
        received = bytearray()
        while time.monotonic() < deadline and not closed:
            sock.send(b"x")                        # never silent, never finished
            pair.pump()
            try:
                chunk = sock.recv(65536)
                closed = not chunk
                received += chunk
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
        assert closed, "a frame that never ends kept its sender connected"
        goodbye = frames_of(received)[-1]
        assert goodbye.type == SYSM and goodbye.body["msg"] == "timeout", goodbye
        assert pair.pump_until(lambda: pair.a.get_peers() == ["Alice", "Bob"])
        pair.round_trip()


def test_the_relay_sends_heartbeats_to_a_member_it_has_nothing_else_for(relay, cleanup):
    """Once a second by default (PROTOCOL.md), so that a node can tell a quiet
    relay from a dead one."""
    sock, addr, _ = raw_join(relay.port, "Quiet")
    cleanup(sock)
    joined = time.monotonic()
    heart = read_until(sock, lambda m: m.type == HEART, timeout=3)
    assert 0.8 <= time.monotonic() - joined
    assert (heart.dest, heart.sender, heart.raw[11:]) == (addr, 0, b"null")


# ---------------------------------------------------------------------------
# Load: too many connections, churn, a slow reader
# ---------------------------------------------------------------------------

@both_selectors
def test_connections_beyond_max_connections_get_server_full(cleanup):
    total = 250
    with running_relay(max_connections=50, auth_timeout=60) as relay:
        assert relay.max_connections == 50
        pair = Pair(relay.port)
        cleanup(pair)
        idle_allowed = relay.max_connections - 2            # the pair holds two
        socks = []
        for _ in range(total):
            sock = connect(relay.port, cleanup)
            socks.append(sock)
            pair.pump()
        # Sort the sockets: refused ones get SYSM server_full and then EOF,
        # the rest hear nothing and stay open.
        refused, frames_seen = set(), {}
        readers = {s: FrameReader() for s in socks}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(refused) < total - idle_allowed:
            for sock in socks:
                if sock in refused:
                    continue
                sock.setblocking(False)
                try:
                    chunk = sock.recv(4096)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    readers[sock].feed(chunk)
                    frames_seen.setdefault(sock, []).extend(decode(f.raw) for f in readers[sock])
                else:
                    refused.add(sock)
            pair.pump_for(0.05)
        pair.pump_for(0.5)                                   # any extra refusals show up now
        for sock in socks:
            if sock in refused:
                continue
            try:
                if sock.recv(4096) == b"":
                    refused.add(sock)
            except BlockingIOError:
                pass
        assert len(refused) == total - idle_allowed
        for sock in refused:
            msgs = frames_seen.get(sock, [])
            assert len(msgs) == 1 and msgs[0].type == SYSM, msgs
            assert msgs[0].body["type"] == 1 and msgs[0].body["msg"] == "server_full"
        for sock in socks:
            if sock not in refused:
                assert sock not in frames_seen, frames_seen.get(sock)
        pair.round_trip("while full")
        # A NetNode arriving now is told the relay is full.
        late = NetNode()
        assert not late.connect(HOST, "Late", "pong_game", port=relay.port, timeout=5)
        assert late.error_code == "server_full"
        # Once the idle ones go, there is room again.
        for sock in socks:
            sock.close()
        node = NetNode()
        cleanup(node)

        def joins():
            pair.pump()
            return node.connect(HOST, "Late", "pong_game", port=relay.port, timeout=2)
        assert wait_for(joins, timeout=10, step=0.2), node.error
        assert pair.pump_until(lambda: pair.a.get_peers() == ["Alice", "Bob", "Late"])
        pair.round_trip("after")


def test_a_class_connecting_at_once_is_not_turned_away_by_the_listen_backlog(cleanup):
    """Before the relay accepts anything, 300 connections wait in the kernel's
    queue: a backlog of 128 would drop SYNs, and those nodes would retry only
    a second later."""
    count = 300
    relay = nethelper.Relay(["pong_game"], host=HOST, port=0).start()   # bound, not serving yet
    try:
        socks = []
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            cleanup(sock)
            sock.setblocking(False)
            sock.connect_ex((HOST, relay.port))
            socks.append(sock)
        deadline = time.monotonic() + 0.7               # well below the 1 s SYN retry
        waiting = set(socks)
        while waiting and time.monotonic() < deadline:
            _, writable, _ = select.select([], list(waiting), [], 0.05)
            waiting -= set(writable)
        assert not waiting, "{} of {} connections were not queued".format(len(waiting), count)
        relay.run_in_background()
        for i, sock in enumerate(socks):
            sock.setblocking(True)
            sock.sendall(auth("N{}".format(i)))
        assert wait_for(lambda: len(relay.members("pong_game")) == 254, timeout=10)
    finally:
        relay.stop()


def test_joins_arriving_together_send_each_member_one_peers_list(cleanup):
    count = 40
    relay = nethelper.Relay(["pong_game"], host=HOST, port=0).start()   # bound, not serving yet
    try:
        first = connect(relay.port, cleanup)
        others = [connect(relay.port, cleanup) for _ in range(count - 1)]
        for i, sock in enumerate([first] + others):
            sock.sendall(auth("N{:02d}".format(i)))     # all waiting when the relay starts
        relay.run_in_background()
        lists = []
        while not lists or len(lists[-1].body) < count:
            lists.append(read_until(first, lambda m: m.type == PEERS))
        assert len(lists) <= 3, "{} PEERS lists for {} joins".format(len(lists), count)
        assert len(lists[-1].body) == count
    finally:
        relay.stop()


@both_selectors
def test_churn_of_hundreds_of_connections_leaves_the_relay_working(cleanup):
    with running_relay(max_connections=20) as relay:
        pair = Pair(relay.port)
        cleanup(pair)
        for i in range(400):
            kind = i % 6
            sock = raw_connect(relay.port)
            try:
                if kind == 1:
                    sock.sendall(auth("Churn{}".format(i)))
                elif kind == 2:
                    sock.sendall(auth("Churn{}".format(i)))
                    read_until(sock, lambda m: m.type in (PEERS, SYSM))
                elif kind == 3:
                    sock.sendall(auth("Churn{}".format(i))[:7])
                elif kind == 4:
                    sock.sendall(auth("Churn{}".format(i)) + data(255, 3, ("churn", i)))
                elif kind == 5:
                    # An abortive close (RST) instead of FIN.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.sendall(auth("Churn{}".format(i)))
            finally:
                sock.close()
            pair.pump()
        assert pair.pump_until(lambda: relay.members("pong_game") == ["Alice", "Bob"]
                               and pair.a.get_peers() == ["Alice", "Bob"], timeout=10)
        pair.round_trip("after churn")
        # No connection slots leaked: a fresh pair can still join under the cap.
        second = Pair(relay.port, group="chat", names=("Carol", "Dave"))
        cleanup(second)
        second.round_trip()
        pair.round_trip()


@both_selectors
def test_a_member_whose_socket_breaks_during_a_broadcast_is_dropped_and_the_rest_still_get_it(
        cleanup, caplog):
    caplog.set_level(logging.INFO, logger="nethelper")
    with running_relay() as relay:
        pair = Pair(relay.port)             # Alice broadcasts; Bob must still get it
        cleanup(pair)
        carol, _, _ = raw_join(relay.port, "Carol")
        cleanup(carol)
        assert pair.pump_until(lambda: pair.a.get_peers() == ["Alice", "Bob", "Carol"])
        # Break the relay's own end of Carol's connection for writing, as a
        # vanished network would: its next send to her fails (EPIPE), and
        # only a send can notice, since nothing arrives to be read.
        conn = next(c for c in relay.groups["pong_game"].values() if c.name == "Carol")
        conn.sock.shutdown(socket.SHUT_WR)
        assert pair.a.send_msg("ALL", "news", "to everyone", queue=True)
        assert pair.pump_until(lambda: pair.b.available("Alice", "news"))
        assert pair.b.get_msg("Alice", "news") == "to everyone"
        assert pair.pump_until(lambda: relay.members("pong_game") == ["Alice", "Bob"]
                               and pair.a.get_peers() == ["Alice", "Bob"])
        assert "Carol (connection lost" in caplog.text
        assert "internal error" not in caplog.text
        pair.round_trip("after the broken member left")


def test_a_member_flooding_another_is_slowed_loses_nothing_and_its_victim_stays(cleanup, caplog):
    """The relay stops reading from the flooder while it is over its quota,
    so TCP makes it wait; every frame its socket took arrives, in order, and
    the receiver never falls behind. (A quota of 1 MiB a second: what the
    sockets hold drains in a second or two, not ten.)"""
    caplog.set_level(logging.INFO, logger="nethelper")
    with running_relay(quota_bytes=1024 * 1024) as relay:
        pair = Pair(relay.port)             # Bob is the victim, Alice a bystander
        cleanup(pair)
        attacker, addr, _ = raw_join(relay.port, "Flood")
        cleanup(attacker)
        attacker.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        assert pair.pump_until(lambda: "Flood" in pair.b.get_peers())
        attacker.setblocking(False)
        outgoing, sent, refused_at = bytearray(), 0, None
        received = []

        def take_bobs():
            received.extend(int(m[:6]) for m in pair.b.get_all_msgs("Flood", "f") or ())

        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            while len(outgoing) < 256 * 1024:
                content = "{:06d}".format(sent) + "x" * 1000
                outgoing += frame(DATA, 2, addr, js([{"title": "f", "content": content,
                                                      "queue": True}]))
                sent += 1
            try:
                del outgoing[:attacker.send(outgoing)]
            except BlockingIOError:
                refused_at = refused_at or time.monotonic()   # TCP pushed back
            pair.pump()
            take_bobs()
        attacker.setblocking(True)
        attacker.sendall(outgoing)                 # the rest too: nothing is given up
        assert refused_at is not None, "the flooder was never made to wait"
        assert pair.pump_until(lambda: take_bobs() or len(received) >= sent, timeout=30), (
            len(received), sent)
        assert received == list(range(sent))       # all of them, in order
        assert relay.members("pong_game") == ["Alice", "Bob", "Flood"]
        assert pair.b.connected and pair.b.dropped_messages == 0, pair.b.error
        assert "slowed   pong_game: Flood" in caplog.text and "over its quota" in caplog.text
        assert "left" not in caplog.text and "too slow" not in caplog.text
        pair.round_trip("after the flood")


def test_two_600_kb_messages_sent_together_both_arrive_at_the_default_quota(cleanup):
    with running_relay() as relay:
        pair = Pair(relay.port)
        cleanup(pair)
        first, second = "a" * 600_000, "b" * 600_000
        assert pair.a.send_msg("Bob", "big", first, queue=True)
        assert pair.a.send_msg("Bob", "big", second, queue=True)
        assert pair.pump_until(lambda: pair.b.available("Alice", "big") == 2, timeout=10), (
            pair.b.available("Alice", "big"), relay.core.quota_bytes)
        assert pair.b.get_all_msgs("Alice", "big") == [first, second]
        assert pair.a.connected and pair.b.connected


def test_25000_queued_messages_handed_over_in_one_process_send_all_arrive(cleanup):
    """The sender keeps calling process_send() (as a game does every frame)
    while the relay takes its backlog at the quota's pace."""
    with running_relay() as relay:
        pair = Pair(relay.port)
        cleanup(pair)
        for n in range(25_000):
            assert pair.a.send_msg("Bob", "m", {"n": n, "text": "message number {}".format(n)},
                                   queue=True)
        pair.a.process_send()                       # all of them handed over at once
        got = []

        def all_there():
            got.extend(m["n"] for m in pair.b.get_all_msgs("Alice", "m") or ())
            return len(got) >= 25_000
        assert pair.pump_until(all_there, timeout=15), (len(got), pair.a.error, pair.b.error)
        assert got == list(range(25_000))
        assert pair.a.connected and pair.b.connected and pair.b.dropped_messages == 0


def test_what_waits_for_slow_readers_is_the_broadcast_itself_never_a_copy(cleanup):
    """Frames queued for readers that fall behind are held as the very bytes
    the sender's frame arrived in (shared by every such reader), and sent
    from there: never joined into one copy per reader on every send."""
    with running_relay(quota_bytes=1 << 30, quota_frames=1 << 20,
                       max_pending=64 * 1024 * 1024) as relay:
        slow = []
        for name in ("Slow1", "Slow2"):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            cleanup(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # before connecting
            sock.connect((HOST, relay.port))
            sock.sendall(auth(name))
            read_until(sock, lambda m: m.type == PEERS and name in names_in(m))
            sock.setblocking(False)
            slow.append(sock)
        caster, addr, _ = raw_join(relay.port, "Caster")
        cleanup(caster)
        frame_size = 16 * 1024
        one = frame(DATA, 255, addr, b'"' + b"b" * (frame_size - 13) + b'"')
        conns = [c for c in relay.groups["pong_game"].values() if c.name.startswith("Slow")]
        largest, queued = 0, 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            caster.sendall(one)
            for sock in slow:                     # a little at a time: they fall behind
                with contextlib.suppress(BlockingIOError):
                    sock.recv(2048)
            for conn in conns:
                with contextlib.suppress(RuntimeError):      # (the relay's thread moved on)
                    for item in list(conn.pending):
                        held = item.obj if isinstance(item, memoryview) else item
                        largest = max(largest, len(held))
                        queued += 1
            time.sleep(0.002)
        assert queued > 100, "nothing ever waited for the slow readers"
        # At most a run of frames that arrived in one read, passed on whole.
        assert largest <= nethelper._RECV_SIZE, largest


def test_slow_reader_is_dropped_and_the_others_keep_working(cleanup, caplog):
    caplog.set_level(logging.INFO, logger="nethelper")
    max_pending = 64 * 1024
    # Generous quotas: the flood is in-quota traffic that the slow one falls behind.
    with running_relay(max_pending=max_pending, quota_bytes=1 << 30, quota_frames=1 << 20) as relay:
        pair = Pair(relay.port)             # Alice floods, Bob is the third node
        cleanup(pair)
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cleanup(slow)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.settimeout(5)
        slow.connect((HOST, relay.port))
        slow.sendall(auth("Slow"))
        # Read only up to our own join, then never again.
        reader, slow_addr = FrameReader(), None
        while slow_addr is None:
            chunk = slow.recv(4096)
            assert chunk
            reader.feed(chunk)
            for f in reader:
                msg = decode(f.raw)
                if msg.type == PEERS and "Slow" in names_in(msg):
                    slow_addr = next(p["addr"] for p in msg.body if p["name"] == "Slow")
        assert pair.pump_until(lambda: "Slow" in pair.a.get_peers())
        chunk = "x" * 30000
        sent = 0
        deadline = time.monotonic() + 60
        last_beat = 0.0
        while ("Slow" in relay.members("pong_game") and time.monotonic() < deadline
               and sent < 256 * 1024 * 1024):
            if time.monotonic() - last_beat > 0.3:
                # Slow is alive (it talks), it just does not read.
                slow.sendall(frame(HEART, 0, slow_addr, b"null"))
                last_beat = time.monotonic()
            if pair.a.send_msg("Slow", "flood", chunk, queue=True):
                sent += len(chunk)
            pair.pump()
        assert "Slow" not in relay.members("pong_game"), \
            "slow reader still a member after {} bytes were sent to it".format(sent)
        # The relay thread logs it once it carries out the core's actions.
        assert wait_for(lambda: "too slow" in caplog.text)
        # The others are told, and keep working.
        assert pair.pump_until(lambda: pair.a.get_peers() == ["Alice", "Bob"]
                               and pair.b.get_peers() == ["Alice", "Bob"])
        pair.round_trip("flooder and third node")
        # The slow socket was closed by the relay: reading it ends (after
        # whatever the kernel still holds), it does not block forever.
        slow.settimeout(5)
        got_end = False
        received = 0
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                piece = slow.recv(1 << 20)
            except ConnectionResetError:
                got_end = True
                break
            if not piece:
                got_end = True
                break
            received += len(piece)
        assert got_end, "slow reader's socket is still open"
        # What the relay held for it was bounded: far less than was sent.
        assert received < sent
        pair.round_trip("after the slow one is gone")


# ---------------------------------------------------------------------------
# Framing across recv() boundaries
# ---------------------------------------------------------------------------

@both_selectors
def test_stream_sent_one_byte_at_a_time(relay, pair, cleanup):
    sock = connect(relay.port, cleanup)
    # Alice is 1, Bob 2, so this node will be 3.
    stream = (auth("Dribble") + data(1, 3, ("drip", "to alice")) + data(255, 3, ("drip", "to all"))
              + frame(HEART, 0, 3, b"null") + frame(REQ, 0, 3, js({"type": 1, "data": None})))
    for byte in stream:
        sock.send(bytes([byte]))
        time.sleep(0.001)
    peers = read_until(sock, lambda m: m.type == PEERS and m.dest == 255)
    assert names_in(peers) == ["Alice", "Bob", "Dribble"]
    answer = read_until(sock, lambda m: m.type == PEERS and m.dest == 3)
    assert names_in(answer) == ["Alice", "Bob", "Dribble"]
    assert pair.pump_until(lambda: pair.a.available("Dribble", "drip") == 2
                           and pair.b.available("Dribble", "drip") == 1)
    assert pair.a.get_all_msgs("Dribble", "drip") == ["to alice", "to all"]
    assert pair.b.get_all_msgs("Dribble", "drip") == ["to all"]
    pair.round_trip()


def test_stream_split_at_every_byte_boundary(relay, pair, cleanup):
    def stream_for(cut):
        return auth("S{:03d}".format(cut)) + data(1, 3, ("split", "c{:03d}".format(cut)))
    length = len(stream_for(0))
    for cut in range(1, length):
        name = "S{:03d}".format(cut)
        stream = stream_for(cut)
        assert len(stream) == length
        sock = raw_connect(relay.port)
        try:
            sock.sendall(stream[:cut])
            time.sleep(0.002)
            sock.sendall(stream[cut:])
            assert pair.pump_until(lambda: pair.a.available(name, "split")), \
                "message split at byte {} never arrived".format(cut)
            assert pair.a.get_msg(name, "split") == "c{:03d}".format(cut)
        finally:
            sock.close()
        assert pair.pump_until(lambda: relay.members("pong_game") == ["Alice", "Bob"])
    pair.round_trip()


def test_many_frames_in_one_send(relay, pair, cleanup):
    sock = connect(relay.port, cleanup)
    count = 300
    stream = auth("Burst") + b"".join(data(1, 3, ("burst", i)) for i in range(count))
    stream += frame(REQ, 0, 3, js({"type": 1, "data": None}))
    sock.sendall(stream)
    answer = read_until(sock, lambda m: m.type == PEERS and m.dest == 3)
    assert names_in(answer) == ["Alice", "Bob", "Burst"]
    assert pair.pump_until(lambda: pair.a.available("Burst", "burst") == count)
    assert pair.a.get_all_msgs("Burst", "burst") == list(range(count))
    assert pair.b.available("Burst", "burst") == 0
    # And the other way: many frames from a NetNode arrive as one stream.
    for i in range(count):
        pair.b.send_msg("Burst", "back", i, queue=True)
    pair.pump()
    got = []
    while len(got) < count:
        msg = read_frame(sock)
        assert msg is not None
        if msg.type == DATA:
            assert msg.sender == 2
            got.extend(m["content"] for m in msg.body if m["title"] == "back")
    assert got == list(range(count))
    pair.round_trip()


@both_selectors
def test_relay_survives_everything_at_once(relay, pair, cleanup):
    """A volley of offenders in parallel; the pair never notices."""
    offenders = []
    payloads = [garbage(64, seed=3), frame(AUTH, 0, 255, b"{", version=b"999"),
                frame(AUTH, 0, 255, length=2), frame(AUTH, 0, 255, length=0x7FFFFFFF),
                frame(AUTH, 0, 255, b"[]"), auth("Alice"), auth("X", "nope"), b"\x00" * 11]
    for payload in payloads * 5:
        sock = connect(relay.port, cleanup)
        sock.sendall(payload)
        offenders.append(sock)
        pair.pump()
    for sock in offenders:
        expect_closed(sock)
    assert relay.members("pong_game") == ["Alice", "Bob"]
    pair.round_trip()
