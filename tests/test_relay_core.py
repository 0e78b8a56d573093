"""The relay's rules, tested without sockets.

RelayCore is fed events (a connection opened, bytes arrived, time passed, a
connection closed) and answers with actions (send these bytes, close that
connection, log this line). These tests feed it events by hand and read its
actions: no sockets, no threads, no sleeping. Time is whatever ``now`` the
test passes.
"""
import json

import pytest

import nethelper
from conftest import auth, data, decode, frame, js
from nethelper import (AUTH, CLOSE_CONN, CLOSED, CLOSING, DATA, HEART, JOINING, LOG_LINE, MEMBER,
                       PEERS, REFUSED, REQ, SEND_BYTES, SYSM, RelayCore)


class Core:
    """A RelayCore with a clock, and a way to read what it asked for."""

    def __init__(self, groups=("pong_game", "chat"), **options):
        self.core = RelayCore(list(groups), **options)
        self.now = 100.0
        self._port = 40000
        self.log = []           # (level, text) of every LOG_LINE so far

    def open(self, host="10.0.0.7"):
        self._port += 1
        return self.core.open((host, self._port), self.now)

    def feed(self, conn, raw):
        self.core.receive(conn, raw, self.now)

    def join(self, name, group="pong_game", host="10.0.0.7"):
        """A connection that sent AUTH, after the end of that turn."""
        conn = self.open(host)
        self.feed(conn, auth(name, group))
        self.core.end_turn(self.now)
        assert conn.state is MEMBER, (conn.state, self.take())
        return conn

    def advance(self, seconds):
        """Let time pass, calling tick() as often as a driver would."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + self.core.tick_interval)
            self.core.tick(self.now)

    def take(self):
        """Every action since the last take(), and forget them."""
        actions = list(self.core.actions)
        del self.core.actions[:]
        self.log += [(level, text) for kind, level, text in actions if kind == LOG_LINE]
        return actions

    def sent(self, actions=None):
        """{connection: [Msg, ...]} of the SEND_BYTES among ``actions``."""
        out = {}
        for kind, conn, value in self.take() if actions is None else actions:
            if kind == SEND_BYTES:
                out.setdefault(conn, []).extend(frames_in(value))
        return out

    def closed(self, actions):
        """{connection: flush_first} of the CLOSE_CONN among ``actions``."""
        return {conn: value for kind, conn, value in actions if kind == CLOSE_CONN}

    def log_text(self):
        self.take()
        return "\n".join(text for _, text in self.log)


def frames_in(raw):
    reader = nethelper.FrameReader()
    reader.feed(raw)
    return [decode(f.raw) for f in reader]


def names_in(msg):
    return [p["name"] for p in msg.body]


@pytest.fixture
def relay():
    return Core()


# ---------------------------------------------------------------------------
# The states table
# ---------------------------------------------------------------------------

def test_every_state_is_in_the_table_and_closed_is_the_end():
    table = nethelper._NEXT_STATES
    assert set(table) == {JOINING, MEMBER, nethelper.OBSERVER, REFUSED, CLOSING, CLOSED}
    assert all(nxt in table for nexts in table.values() for nxt in nexts)
    assert table[CLOSED] == ()
    assert all(CLOSED in nexts for state, nexts in table.items() if state is not CLOSED)


def test_a_move_the_table_does_not_allow_is_a_bug_not_a_state(relay):
    conn = relay.open()
    with pytest.raises(RuntimeError):
        relay.core._move(conn, CLOSING)          # only members are closed with a goodbye
    assert conn.state is JOINING


def test_life_of_a_member_joining_to_closed(relay):
    conn = relay.open()
    assert conn.state is JOINING
    relay.feed(conn, auth("Alice"))
    assert conn.state is MEMBER
    relay.core.connection_lost(conn, None, relay.now)
    assert conn.state is CLOSED
    assert relay.closed(relay.take()) == {conn: False}
    assert relay.core.members("pong_game") == []
    assert conn not in relay.core.connections


def test_life_of_a_refused_node_refused_then_closed_after_the_linger(relay):
    relay.join("Alice")
    conn = relay.open()
    relay.feed(conn, auth("Alice"))
    assert conn.state is REFUSED
    actions = relay.take()
    assert relay.closed(actions) == {conn: True}            # once the refusal is out
    assert relay.sent(actions)[conn][0].body["msg"] == "name_taken"
    relay.feed(conn, auth("Bob"))                           # it is not listened to any more
    assert relay.sent() == {} and conn.state is REFUSED
    relay.advance(nethelper.CLOSING_LINGER + 0.5)           # it never hangs up
    assert conn.state is CLOSED
    assert relay.closed(relay.take()) == {conn: False}


# ---------------------------------------------------------------------------
# Joining and forwarding
# ---------------------------------------------------------------------------

def test_join_sends_peers_at_the_end_of_the_turn(relay):
    alice = relay.open()
    relay.feed(alice, auth("Alice"))
    assert relay.sent() == {}                               # not yet: coalesced
    relay.core.end_turn(relay.now)
    got = relay.sent()
    assert [m.type for m in got[alice]] == [PEERS]
    assert got[alice][0].body == [{"name": "Alice", "addr": 1}]
    assert got[alice][0].dest == 255 and got[alice][0].sender == 0


def test_a_node_asking_for_a_name_hears_it_before_the_peers_list(relay):
    conn = relay.open()
    relay.feed(conn, auth(""))
    relay.core.end_turn(relay.now)
    got = relay.sent()[conn]
    assert [m.type for m in got] == [SYSM, PEERS]
    assert got[0].body["type"] == 0 and got[0].body["data"] == conn.name
    assert names_in(got[1]) == [conn.name]


def test_data_runs_are_forwarded_byte_for_byte_in_one_piece(relay):
    alice, bob, carol = relay.join("Alice"), relay.join("Bob"), relay.join("Carol")
    relay.take()
    frames = [data(255, 1, ("n", i)) for i in range(5)]
    relay.feed(alice, b"".join(frames))
    actions = relay.take()
    assert actions == [(SEND_BYTES, bob, b"".join(frames)), (SEND_BYTES, carol, b"".join(frames))]
    relay.feed(bob, data(1, 2, ("to", "alice")))
    assert relay.take() == [(SEND_BYTES, alice, data(1, 2, ("to", "alice")))]


def test_frames_split_anywhere_still_arrive_whole(relay):
    alice, bob = relay.join("Alice"), relay.join("Bob")
    relay.take()
    stream = data(2, 1, ("a", 1)) + data(2, 1, ("b", 2))
    for byte in stream:
        relay.feed(alice, bytes([byte]))
    got = b"".join(value for kind, conn, value in relay.take() if kind == SEND_BYTES)
    assert got == stream


def test_data_before_auth_forged_senders_and_other_groups_go_nowhere(relay):
    alice, bob = relay.join("Alice"), relay.join("Bob")
    chat = relay.join("Carol", "chat")
    stranger = relay.open()
    relay.take()
    relay.feed(stranger, data(255, 255, ("early", 1)) + data(1, 3, ("early", 2)))
    relay.feed(bob, data(255, 1, ("forged", 1)) + data(255, 200, ("forged", 2)))
    relay.feed(chat, data(255, 1, ("chat", 1)))             # nobody else in chat
    assert relay.sent() == {}
    assert bob.state is MEMBER and stranger.state is JOINING


def test_req_peers_answers_the_asker_alone_and_req_leave_closes_at_once(relay):
    alice, bob = relay.join("Alice"), relay.join("Bob")
    relay.take()
    relay.feed(bob, frame(REQ, 0, 2, js({"type": 1, "data": None})))
    got = relay.sent()
    assert list(got) == [bob] and got[bob][0].dest == 2 and names_in(got[bob][0]) == ["Alice", "Bob"]
    relay.feed(bob, frame(REQ, 0, 2, js({"type": 0, "data": None})))
    assert bob.state is CLOSED
    assert relay.closed(relay.take()) == {bob: False}
    relay.core.end_turn(relay.now)
    assert names_in(relay.sent()[alice][0]) == ["Alice"]


def test_a_lost_member_leaves_and_the_group_is_told(relay):
    alice, bob = relay.join("Alice"), relay.join("Bob")
    relay.take()
    relay.core.connection_lost(bob, "connection lost (Broken pipe)", relay.now)
    relay.core.end_turn(relay.now)
    got = relay.sent()
    assert names_in(got[alice][0]) == ["Alice"] and bob not in got
    assert "left     pong_game: Bob (connection lost (Broken pipe))" in relay.log_text()


def test_bad_framing_from_a_member_gets_a_goodbye_then_close(relay):
    alice, bob = relay.join("Alice"), relay.join("Bob")
    relay.take()
    relay.feed(bob, frame(DATA, 255, 2, b"[]", version=b"021"))
    assert bob.state is CLOSING
    actions = relay.take()
    goodbye = relay.sent(actions)[bob][-1]
    assert goodbye.type == SYSM and goodbye.dest == 2
    assert goodbye.body["type"] == nethelper.SYSM_GOODBYE and goodbye.body["msg"] == "bad_frame"
    assert relay.closed(actions) == {bob: True}
    relay.core.connection_lost(bob, None, relay.now)        # it hangs up after reading it
    assert bob.state is CLOSED


def test_wrong_version_before_joining_is_refused_with_version(relay):
    conn = relay.open()
    relay.feed(conn, frame(AUTH, 0, 255, js({"name": "Old", "group": "pong_game"}), version=b"019"))
    assert conn.state is REFUSED
    assert relay.sent()[conn][0].body["msg"] == "version"


def test_more_connections_than_the_cap_are_refused_server_full():
    relay = Core(max_connections=2)
    relay.open(), relay.open()
    third = relay.open()
    assert third.state is REFUSED
    assert relay.sent()[third][0].body["msg"] == "server_full"


def test_a_node_that_never_joins_is_closed_after_the_auth_timeout():
    relay = Core(auth_timeout=3.0)
    conn = relay.open()
    relay.advance(2.9)
    assert conn.state is JOINING
    relay.advance(0.2)
    assert conn.state is CLOSED
    assert relay.closed(relay.take()) == {conn: False}


def test_a_silent_member_gets_a_timeout_goodbye_and_one_that_talks_stays():
    relay = Core(liveness_timeout=5.0)
    alice, bob = relay.join("Alice"), relay.join("Bob")
    for _ in range(4):
        relay.advance(1.0)
        relay.feed(alice, frame(HEART, 0, 1, b"null"))
    assert alice.state is MEMBER and bob.state is MEMBER
    for _ in range(2):
        relay.advance(1.0)
        relay.feed(alice, frame(HEART, 0, 1, b"null"))
    assert alice.state is MEMBER
    assert bob.state is CLOSING
    goodbyes = [m for m in relay.sent().get(bob, []) if m.type == SYSM]
    assert goodbyes[-1].body["type"] == 3 and goodbyes[-1].body["msg"] == "timeout"
    relay.advance(nethelper.CLOSING_LINGER + 0.5)           # it does not hang up
    assert bob.state is CLOSED


def test_the_default_liveness_timeout_is_five_seconds(relay):
    alice, silent = relay.join("Alice"), relay.join("Silent")
    for _ in range(49):
        relay.advance(0.1)
        relay.feed(alice, frame(HEART, 0, 1, b"null"))
    assert silent.state is MEMBER                           # 4.9 s
    relay.advance(0.2)
    relay.core.end_turn(relay.now)
    assert silent.state is CLOSING                          # 5.1 s
    assert names_in([m for m in relay.sent()[alice] if m.type == PEERS][-1]) == ["Alice"]


def test_stopping_says_goodbye_relay_stopping_to_every_member(relay):
    alice, bob = relay.join("Alice"), relay.join("Chat", "chat")
    stranger = relay.open()
    relay.take()
    relay.core.stop(relay.now)
    actions = relay.take()
    got = relay.sent(actions)
    for member in (alice, bob):
        assert got[member][-1].body == {"type": 3, "msg": "relay_stopping",
                                        "data": "The relay was stopped."}
    assert stranger not in got
    assert relay.closed(actions) == {alice: False, bob: False, stranger: False}
    assert not relay.core.connections


def test_a_receiver_that_falls_behind_is_dropped_as_too_slow():
    relay = Core(max_pending=1000)
    alice, bob = relay.join("Alice"), relay.join("Bob")
    relay.take()
    relay.core.backlogged(bob, 1000, relay.now)
    assert bob.state is MEMBER
    relay.core.backlogged(bob, 1001, relay.now)
    assert bob.state is CLOSED
    relay.core.end_turn(relay.now)
    assert names_in(relay.sent()[alice][0]) == ["Alice"]
    assert "Bob (too slow" in relay.log_text()


# ---------------------------------------------------------------------------
# Defect 1: choosing a name ends, even with names at the length limit
# ---------------------------------------------------------------------------

def test_names_at_the_length_limit_are_numbered_within_the_limit():
    relay = Core(names=["x" * 100])
    conns = []
    for _ in range(5):
        conn = relay.open()
        relay.feed(conn, auth(""))
        conns.append(conn)
    names = [c.name for c in conns]
    assert all(c.state is MEMBER for c in conns)
    assert len(set(names)) == 5
    assert names[0] == "x" * 100 and names[1] == "x" * 99 + "2"
    assert all(nethelper.name_problem(n) is None for n in names)


def test_when_no_free_name_is_left_the_node_is_refused_in_plain_words():
    # "1" * 100 numbered runs into itself ("1" * 98 + "11" is "1" * 100):
    # far fewer than 254 different names can be made from it.
    relay = Core(names=["1" * 100])
    for _ in range(nethelper.MAX_NODES_PER_GROUP):
        conn = relay.open()
        relay.feed(conn, auth(""))
        if conn.state is not MEMBER:
            break
    assert conn.state is REFUSED
    refusal = relay.sent()[conn][0]
    assert refusal.body["msg"] == "server_full"
    assert "no free name left" in refusal.body["data"] and "Choose a name" in refusal.body["data"]
    assert len(relay.core.members("pong_game")) < nethelper.MAX_NODES_PER_GROUP
    named = relay.join("Named")                  # a node with its own name still gets in
    assert named.state is MEMBER


# ---------------------------------------------------------------------------
# Defect 2: frames from strangers, and control frames, are small
# ---------------------------------------------------------------------------

def test_a_stranger_announcing_a_big_frame_is_closed_before_it_is_sent(relay):
    conn = relay.open()
    header = frame(AUTH, 0, 255, b"", length=nethelper.MAX_JOIN_FRAME_SIZE + 1)
    relay.feed(conn, header + b'{"name": [[[')        # only the start: nothing to parse yet
    assert conn.state is CLOSED
    actions = relay.take()
    assert relay.closed(actions) == {conn: False}
    assert "over the 4096 byte limit" in relay.log_text()


def test_an_auth_of_exactly_the_join_limit_is_read(relay):
    padding = nethelper.MAX_JOIN_FRAME_SIZE - len(auth("Pad")) - len(', "pad": ""')
    payload = js({"name": "Pad", "group": "pong_game", "pad": "p" * padding})
    assert 11 + len(payload) == nethelper.MAX_JOIN_FRAME_SIZE
    conn = relay.open()
    relay.feed(conn, frame(AUTH, 0, 255, payload))
    assert conn.state is MEMBER


@pytest.mark.parametrize("frame_type", [REQ, HEART, AUTH, 7])
def test_a_member_sending_a_big_control_frame_is_dropped_unread(relay, frame_type):
    alice, bob = relay.join("Alice"), relay.join("Bob")
    relay.take()
    big = frame(frame_type, 0, 2, b"[" * nethelper.MAX_CONTROL_FRAME_SIZE)
    relay.feed(bob, big[:100])                              # the header is enough to know
    assert bob.state is CLOSING
    goodbye = relay.sent()[bob][-1]
    assert goodbye.body["type"] == 3 and goodbye.body["msg"] == "bad_frame"
    assert "frames other than DATA" in goodbye.body["data"]


def test_a_member_may_still_send_data_up_to_the_frame_size_limit():
    relay = Core(max_frame_size=300000)
    alice, bob = relay.join("Alice"), relay.join("Bob")
    relay.take()
    big = frame(DATA, 1, 2, b'"' + b"x" * (300000 - 13) + b'"')
    assert len(big) == 300000
    relay.feed(bob, big)
    assert relay.take() == [(SEND_BYTES, alice, big)]


# ---------------------------------------------------------------------------
# Defect 3: unfinished frames are bounded in time and in memory
# ---------------------------------------------------------------------------

def big_frame_start(sender, size=nethelper.DEFAULT_MAX_FRAME_SIZE, missing=100):
    """The first ``size - missing`` bytes of a DATA frame of ``size`` bytes."""
    return frame(DATA, 255, sender, b"x" * (size - 11))[:size - missing]


def test_a_member_dripping_a_frame_is_dropped_at_the_deadline_though_never_silent():
    relay = Core(partial_frame_timeout=5.0, liveness_timeout=5.0)
    alice, bob = relay.join("Alice"), relay.join("Bob")
    relay.feed(bob, big_frame_start(2))
    for _ in range(2):                                      # a byte every 2 s: never silent
        relay.advance(2.0)
        relay.feed(alice, frame(HEART, 0, 1, b"null"))
        relay.feed(bob, b"x")
    assert bob.state is MEMBER
    relay.advance(2.0)
    assert bob.state is CLOSING
    goodbye = relay.sent()[bob][-1]
    assert goodbye.body["type"] == 3 and goodbye.body["msg"] == "timeout"
    assert "did not arrive within 5 s" in goodbye.body["data"]
    assert relay.core._partial_total == 0
    assert alice.state is MEMBER


def test_a_steady_stream_that_always_ends_mid_frame_is_not_dropped():
    relay = Core(partial_frame_timeout=1.0)
    alice, bob = relay.join("Alice"), relay.join("Bob")
    stream = b"".join(data(1, 2, ("n", i)) for i in range(400))
    piece = 97                                              # cuts frames anywhere
    for start in range(0, len(stream), piece):
        relay.feed(bob, stream[start:start + piece])
        relay.advance(0.02)
        relay.feed(alice, frame(HEART, 0, 1, b"null"))
    assert bob.state is MEMBER
    got = b"".join(v for kind, conn, v in relay.take() if kind == SEND_BYTES and conn is alice
                   and v[9] == DATA)
    assert got == stream


def test_past_the_budget_for_unfinished_frames_a_member_waits_and_is_not_dropped():
    relay = Core(groups=["g{}".format(i) for i in range(10)])
    budget = relay.core.max_partial_total
    members = [relay.join("M{}".format(i), "g{}".format(i % 10)) for i in range(60)]
    relay.take()
    unread = {conn: big_frame_start(conn.addr) for conn in members}
    while any(unread[c] for c in members if c.paused_until is None):
        for conn in members:                   # a driver: one read a turn from each unpaused
            if conn.paused_until is None and unread[conn]:
                size = relay.core.read_size
                relay.feed(conn, unread[conn][:size])
                unread[conn] = unread[conn][size:]
        relay.core.end_turn(relay.now)
    # Past the budget by at most one big read and a small one from each.
    assert relay.core._partial_total <= budget + 256 * 1024 + 60 * 4096
    waiting = [c for c in members if c.paused_until is not None]
    assert all(c.state is MEMBER for c in members)      # nobody dropped
    assert len(waiting) >= 60 - budget // (nethelper.DEFAULT_MAX_FRAME_SIZE - 100)
    actions = relay.take()
    assert len([a for a in actions if a[0] == nethelper.PAUSE_READING]) == len(waiting)
    holders = [c for c in members if c.partial_size and c.paused_until is None]
    first_in_line = [c for c in relay.core._waiting_for_room if c.paused_until][:3]
    for conn in holders[:3]:                            # finishing frees room: read again
        relay.feed(conn, b"x" * 100)
    for _ in range(3):
        relay.core.end_turn(relay.now)
    resumed = [c for kind, c, _ in relay.take() if kind == nethelper.RESUME_READING]
    assert resumed == first_in_line                         # the longest waiting first
    relay.advance(30)                                      # waiting is not silence...
    assert all(c.state is MEMBER for c in waiting if c not in resumed)
    assert all(c.state is not MEMBER for c in holders[3:])   # ...holding a frame for 5 s is


def test_far_past_the_budget_the_member_whose_frame_would_pass_it_is_dropped():
    relay = Core(groups=["g{}".format(i) for i in range(10)])
    hard = nethelper.PARTIAL_HARD_LIMIT * relay.core.max_partial_total
    members = [relay.join("M{}".format(i), "g{}".format(i % 10)) for i in range(60)]
    for conn in members:
        relay.feed(conn, big_frame_start(conn.addr))       # a driver that ignores the pauses
        assert relay.core._partial_total <= hard
    dropped = [c for c in members if c.state is not MEMBER]
    assert dropped
    goodbye = relay.sent()[dropped[0]][-1]
    assert goodbye.body["msg"] == "over_quota"


def test_strangers_hold_at_most_a_join_frame_each(relay):
    strangers = [relay.open() for _ in range(400)]
    for conn in strangers:
        relay.feed(conn, frame(AUTH, 0, 255, b"{" * 4000)[:4000])
    assert all(c.state is JOINING for c in strangers)
    assert relay.core._partial_total <= 400 * nethelper.MAX_JOIN_FRAME_SIZE


# ---------------------------------------------------------------------------
# Defect 4: refusals are short, and so are their log lines
# ---------------------------------------------------------------------------

THOUSAND_GROUPS = ["group{:04d}".format(i) for i in range(1000)]


def refuse_one(relay, name, group, host="10.0.0.7"):
    conn = relay.open(host)
    relay.feed(conn, auth(name, group))
    actions = relay.take()
    refusal = relay.sent(actions)[conn][0]
    return refusal, actions


def test_an_unknown_group_refusal_names_ten_groups_and_counts_the_rest():
    relay = Core(groups=THOUSAND_GROUPS)
    refusal, _ = refuse_one(relay, "Eve", "nope")
    assert refusal.body["msg"] == "unknown_group"
    sentence = refusal.body["data"]
    assert "group0000" in sentence and "group0009" in sentence and "group0010" not in sentence
    assert "... and 990 more" in sentence
    assert len(refusal.raw) < 400


def test_a_huge_name_or_group_is_echoed_as_a_short_prefix():
    relay = Core(groups=THOUSAND_GROUPS)
    huge = "G" * 3000                                       # as big as a join frame allows
    refusal, actions = refuse_one(relay, "Eve", huge)
    assert len(refusal.raw) < 500
    assert "'" + "G" * nethelper.SHORT_ECHO + "'... (3000 characters)" in refusal.body["data"]
    relay.join("Alice", "group0001")
    refusal, actions = refuse_one(relay, "Alice", "group0001" + "\n" * 5)   # also unknown
    lines = [text for kind, level, text in actions if kind == LOG_LINE]
    assert lines and all(len(line) < 500 and "\n" not in line for line in lines)


def test_a_private_relay_names_no_group_to_strangers():
    relay = Core(groups=["secret_game", "other"], private=True)
    refusal, actions = refuse_one(relay, "Eve", "nope")
    assert refusal.body["msg"] == "unknown_group"
    text = json.dumps([refusal.body] + [a[2] for a in actions if a[0] == LOG_LINE])
    assert "secret_game" not in text and "other" not in text
    assert "'nope'" in refusal.body["data"]


def test_refusal_log_lines_are_rate_limited_per_address_with_a_summary():
    relay = Core()
    relay.join("Alice")
    for _ in range(20):
        refuse_one(relay, "Alice", "pong_game", host="10.0.0.66")
    refuse_one(relay, "Alice", "pong_game", host="10.0.0.99")    # another address: its own count
    text = relay.log_text()
    assert text.count("refused  10.0.0.66") == nethelper.REFUSAL_LOG_LINES
    assert text.count("refused  10.0.0.99") == 1
    assert "more refusals" not in text
    relay.advance(nethelper.REFUSAL_LOG_WINDOW + 1)
    text = relay.log_text()
    assert "15 more refusals from 10.0.0.66" in text
    assert "from 10.0.0.99" not in text.split("15 more refusals")[1]
    refuse_one(relay, "Eve", "nope", host="10.0.0.66")           # a new window: logged again
    assert relay.log_text().count("refused  10.0.0.66") == nethelper.REFUSAL_LOG_LINES + 1


# ---------------------------------------------------------------------------
# Defect 6: peer lists coalesced, one per member per loop turn
# ---------------------------------------------------------------------------

def test_fifty_joins_in_one_turn_send_each_member_one_peers_list(relay):
    alice = relay.join("Alice")
    relay.take()
    newcomers = []
    for i in range(50):
        conn = relay.open()
        relay.feed(conn, auth("N{:02d}".format(i)))
        newcomers.append(conn)
    relay.core.connection_lost(newcomers[7], None, relay.now)      # one leaves in the same turn
    relay.core.end_turn(relay.now)
    first_turn = relay.take()
    # A big group's list goes out ANNOUNCE_BATCH members a turn.
    assert len([a for a in first_turn if a[0] == SEND_BYTES]) == nethelper.ANNOUNCE_BATCH
    relay.core.end_turn(relay.now)
    got = relay.sent(first_turn + relay.take())
    assert set(got) == {alice} | set(newcomers) - {newcomers[7]}
    for conn, frames in got.items():
        assert [m.type for m in frames] == [PEERS], conn
        assert len(frames[0].body) == 50
    relay.core.end_turn(relay.now)                          # nothing new: nothing sent
    assert relay.sent() == {}


def test_data_from_a_newcomer_in_the_same_turn_comes_after_the_peers_list(relay):
    alice = relay.join("Alice")
    relay.take()
    carol = relay.open()
    relay.feed(carol, auth("Carol") + data(255, 2, ("hi", "all")))
    got = relay.sent()
    assert [m.type for m in got[alice]] == [PEERS, DATA]
    assert names_in(got[alice][0]) == ["Alice", "Carol"]
    relay.core.end_turn(relay.now)
    assert relay.sent() == {}                               # the list went out once


def test_members_joining_and_leaving_over_and_over_cost_a_big_group_few_lists(relay):
    """Churn in a group of 100: at most one PEERS list per ANNOUNCE_SPACING s
    a member; and a frame sent meanwhile still finds every receiver told."""
    members = [relay.join("M{:03d}".format(i)) for i in range(100)]
    for _ in range(5):
        relay.core.end_turn(relay.now)
    relay.take()
    start = relay.now
    for i in range(200):                                   # a join and a leave every 5 ms
        relay.now = start + i * 0.005
        conn = relay.join("Churn")
        relay.core.connection_lost(conn, None, relay.now)
        relay.core.end_turn(relay.now)
    sent = relay.sent()
    lists = len([m for m in sent[members[0]] if m.type == PEERS])
    assert lists <= 1 + 1.0 / (nethelper.ANNOUNCE_SPACING * 100) + 1, lists   # 1 s: about 5
    # A member that sends now: every receiver gets the latest list before its frame.
    newcomer = relay.join("Late")
    relay.feed(members[0], data(255, members[0].addr, ("hello", 1)))
    got = relay.sent()
    for member in members[1:]:
        types = [m.type for m in got[member]]
        assert types[-1] == DATA and PEERS in types, types
        peers = [m for m in got[member] if m.type == PEERS][-1]
        assert "Late" in names_in(peers)


# ---------------------------------------------------------------------------
# Defect 7: per-sender quotas, so one member cannot get another dropped
# ---------------------------------------------------------------------------

def flood(relay, sender, dest, count, size=1000):
    """``count`` DATA frames of ``size`` bytes from ``sender`` to address ``dest``."""
    one = frame(DATA, dest, sender.addr, b'"' + b"f" * (size - 13) + b'"')
    for _ in range(count):
        relay.feed(sender, one)
    return one


def sysms(msgs, sysm_type):
    return [m for m in msgs if m.type == SYSM and m.body["type"] == sysm_type]


def pauses(actions, conn, kind=nethelper.PAUSE_READING):
    return [value for k, c, value in actions if k == kind and c is conn]


def test_a_sender_over_its_byte_quota_is_slowed_not_dropped_and_loses_nothing():
    relay = Core(quota_bytes=10000, max_frame_size=4096)     # bursts of 20,000 bytes
    victim, attacker = relay.join("Victim"), relay.join("Attacker")
    relay.take()
    one = flood(relay, attacker, victim.addr, 40)            # 40,000 bytes in one turn
    actions = relay.take()
    got = relay.sent(actions)
    assert [m.raw for m in got[victim]] == [one] * 40        # every one passed on
    warnings = sysms(got[attacker], 2)
    assert len(warnings) == 1 and warnings[0].body["msg"] == "over_quota"
    assert warnings[0].dest == attacker.addr
    # It owes 20,000 bytes: not read for two seconds, then read again.
    assert len(pauses(actions, attacker)) == 1
    assert attacker.paused_until == pytest.approx(relay.now + 2.0, abs=0.01)
    assert relay.core.next_resume <= attacker.paused_until
    relay.advance(1.9)
    relay.core.end_turn(relay.now)
    assert not pauses(relay.take(), attacker, nethelper.RESUME_READING)
    relay.advance(0.11)
    relay.core.end_turn(relay.now)
    assert len(pauses(relay.take(), attacker, nethelper.RESUME_READING)) == 1
    assert relay.core.next_resume == float("inf")
    flood(relay, attacker, victim.addr, 40)                   # again: slowed again, not warned
    actions = relay.take()
    assert len(relay.sent(actions)[victim]) == 40 and attacker not in relay.sent(actions)
    assert pauses(actions, attacker) and attacker.state is MEMBER and victim.state is MEMBER
    text = relay.log_text()
    assert "slowed   pong_game: Attacker (10.0.0.7:" in text
    assert "over its quota of 10000 bytes" in text and "left" not in text


def test_a_sender_over_its_frame_quota_is_paused_for_its_debt():
    relay = Core(quota_frames=10)                            # bursts of 20 frames
    victim, attacker = relay.join("Victim"), relay.join("Attacker")
    relay.take()
    flood(relay, attacker, victim.addr, 30, size=20)
    actions = relay.take()
    assert len(relay.sent(actions)[victim]) == 30
    assert sysms(relay.sent(actions)[attacker], 2)[0].body["msg"] == "over_quota"
    assert len(pauses(actions, attacker)) == 1
    assert attacker.paused_until == pytest.approx(relay.now + 1.0, abs=0.2)  # 10 frames owed


def test_receivers_get_no_more_than_the_quota_from_a_sender_read_only_when_not_paused():
    """A driver that obeys the pauses: over 20 s, the victim gets the burst,
    the quota's worth and at most one read more, and nothing is lost."""
    relay = Core(quota_bytes=10000, max_frame_size=4096)
    victim, attacker = relay.join("Victim"), relay.join("Attacker")
    relay.take()
    one = frame(DATA, victim.addr, attacker.addr, b'"' + b"f" * 987 + b'"')
    read, delivered, paused = 0, 0, False
    start = relay.now
    while relay.now < start + 20:
        if not paused:
            relay.feed(attacker, one * 8)                   # one read: 8,000 bytes
            read += 8
        relay.feed(victim, frame(HEART, 0, victim.addr, b"null"))
        relay.advance(0.01)
        relay.core.end_turn(relay.now)
        for kind, conn, value in relay.take():
            if conn is attacker and kind in (nethelper.PAUSE_READING, nethelper.RESUME_READING):
                paused = kind == nethelper.PAUSE_READING
            elif conn is victim and kind == SEND_BYTES:
                delivered += len(frames_in(value))
    assert delivered == read                                # every frame read is passed on
    assert 20 * 10000 <= delivered * 1000 <= 20000 + 20 * 10000 + 8000
    assert attacker.state is MEMBER


def test_a_paused_sender_is_not_timed_out_for_the_silence_the_relay_imposed():
    relay = Core(quota_bytes=1000, max_frame_size=4096)     # bursts of 4,096 bytes
    victim, attacker = relay.join("Victim"), relay.join("Attacker")
    sent = (frame(DATA, victim.addr, attacker.addr, b'"' + b"f" * 3000 + b'"') * 4
            + frame(DATA, victim.addr, attacker.addr, b'"' + b"f" * 100 + b'"')[:20])  # half one
    relay.feed(attacker, sent)
    relay.take()
    assert attacker.partial_since is not None
    assert attacker.paused_until == pytest.approx(relay.now + (len(sent) - 4096) / 1000, abs=0.1)
    relay.advance(7.5)                                       # past every timeout, still paused
    assert attacker.state is MEMBER and attacker.paused_until is not None
    relay.advance(1.0)
    relay.core.end_turn(relay.now)
    assert attacker.paused_until is None and attacker.state is MEMBER
    relay.advance(4.0)                                       # its timers run again from the resume
    assert attacker.state is MEMBER
    relay.advance(1.6)
    assert attacker.state is CLOSING                         # now its own silence counts


def test_a_warned_sender_that_slows_down_stays_and_is_heard_again():
    relay = Core(quota_bytes=10000, max_frame_size=4096)
    victim, attacker = relay.join("Victim"), relay.join("Attacker")
    flood(relay, attacker, victim.addr, 40)
    assert sysms(relay.sent()[attacker], 2)
    for _ in range(30):                                      # 5,000 bytes a second from now on
        relay.advance(0.1)
        flood(relay, attacker, victim.addr, 1, size=500)
        relay.feed(victim, frame(HEART, 0, victim.addr, b"null"))
    assert attacker.state is MEMBER
    got = relay.sent()
    assert len([m for m in got[victim] if m.type == DATA]) >= 20


def test_a_game_at_60_frames_a_second_is_far_within_the_default_quota(relay):
    alice, bob = relay.join("Alice"), relay.join("Bob")
    for _ in range(60 * 20):
        relay.now += 1 / 60
        relay.core.tick(relay.now)
        relay.feed(alice, data(2, 1, ("bar_pos", [20, 250]), ("ball_pos", [400, 300])))
        relay.feed(bob, data(1, 2, ("bar_pos", [780, 250])))
    got = relay.sent()
    assert not sysms(got[alice], 2) and not sysms(got[bob], 2)
    assert len([m for m in got[bob] if m.type == DATA]) == 60 * 20


# ---------------------------------------------------------------------------
# Defect 10: one frame size limit, the one NetNode reads
# ---------------------------------------------------------------------------

def test_max_frame_size_cannot_go_above_what_a_netnode_reads():
    with pytest.raises(ValueError, match="only lower"):
        RelayCore(["g"], max_frame_size=nethelper.DEFAULT_MAX_FRAME_SIZE + 1)
    assert RelayCore(["g"], max_frame_size=4096).max_frame_size == 4096


# ---------------------------------------------------------------------------
# Defect 12: the relay's heartbeats
# ---------------------------------------------------------------------------

def test_a_member_that_got_nothing_for_a_heartbeat_interval_gets_heart(relay):
    alice, bob = relay.join("Alice"), relay.join("Bob")
    relay.take()
    relay.advance(relay.core.heartbeat_interval * 0.9)
    assert relay.sent() == {}
    for _ in range(3):
        relay.feed(bob, data(1, 2, ("ball_pos", [1, 2])))  # Alice hears Bob: no HEART for her
        relay.feed(alice, frame(HEART, 0, 1, b"null"))      # Bob hears nothing
        relay.advance(relay.core.heartbeat_interval * 0.5)
    got = relay.sent()
    assert [m.type for m in got[alice]] == [DATA] * 3
    hearts = got[bob]
    assert hearts and all(m.type == HEART for m in hearts)
    assert hearts[0].dest == bob.addr and hearts[0].sender == 0 and hearts[0].raw[11:] == b"null"
    assert len(hearts) == 2                                 # once per interval: 2.4 of them passed


def test_strangers_and_refused_nodes_get_no_heartbeats(relay):
    stranger = relay.open()
    relay.join("Alice")
    refused = relay.open()
    relay.feed(refused, auth("Alice"))
    relay.take()
    relay.advance(1.9)
    got = relay.sent()
    assert stranger not in got and refused not in got


def test_a_sender_over_its_quota_gets_every_answer_and_is_then_paused():
    relay = Core(quota_frames=10)
    alice, bob = relay.join("Alice"), relay.join("Bob")
    relay.take()
    ask = frame(REQ, 0, 2, js({"type": 1, "data": None}))
    for _ in range(25):
        relay.feed(bob, ask)
    actions = relay.take()
    answers = [m for m in relay.sent(actions)[bob] if m.type == PEERS]
    assert len(answers) == 25                                # nothing it sent is lost
    assert pauses(actions, bob)


# ---------------------------------------------------------------------------
# The forward path: one whole frame is passed on without buffering
# ---------------------------------------------------------------------------

def test_a_whole_frame_is_taken_without_buffering_and_anything_else_is_left_alone():
    reader = nethelper.FrameReader()
    one = frame(DATA, 2, 1, b'"x"')
    assert reader.whole_frame(memoryview(one), DATA, 1) == (2, one)
    assert reader.frames_taken == 1 and reader.buffered() == 0
    for other in (frame(DATA, 2, 3, b'"x"'),                 # another sender
                  frame(HEART, 0, 1, b"null"),               # another type
                  one + one,                                 # more than one frame
                  one[:-1],                                  # not all of it
                  frame(DATA, 2, 1, b'"x"', version=b"019")):   # not our protocol
        assert reader.whole_frame(other, DATA, 1) is None
    reader.feed(one[:5])
    assert reader.whole_frame(one, DATA, 1) is None          # something is buffered
    assert reader.frames_taken == 1


def test_a_forged_or_oversized_single_frame_still_gets_the_full_checks():
    relay = Core(max_frame_size=4096)
    alice, bob = relay.join("Alice"), relay.join("Bob")
    relay.take()
    relay.feed(alice, frame(DATA, 2, 7, b'"forged"'))         # sender 7 is not Alice
    assert bob not in relay.sent()
    relay.feed(alice, frame(DATA, 2, 1, b'"' + b"x" * 5000 + b'"'))
    assert alice.state is CLOSING and bob.state is MEMBER
