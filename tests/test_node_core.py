"""NodeCore: the node's side of the protocol, without sockets.

The core is fed bytes and time by hand (frames built with conftest's own
struct-and-json helpers, as a relay would send them) and its answers are
read back: the bytes it wants sent, its events, its state.
"""
import types

import pytest

import nethelper
from nethelper import (NODE_CONNECTING, NODE_IDLE, NODE_JOINED, NODE_JOINING, NODE_LOOKING_UP,
                       NODE_OPEN, NODE_WATCHING, Ended, NetNode, NodeCore, Other, Players,
                       Received, Status, Warned)
from conftest import frame, frames_of, js

NOW = 1000.0


def settings(**changes):
    """NetNode's limits as NodeCore reads them, with ``changes``."""
    names = ("max_frame_size", "max_unsent_bytes", "send_stall_timeout",
             "relay_silence_timeout", "heartbeat_interval", "ping_interval")
    values = {name: getattr(NetNode, name) for name in names}
    values.update(changes)
    return types.SimpleNamespace(**values)


def peers(*names):
    return frame(nethelper.PEERS, 255, 0, js([{"name": n, "addr": i + 1}
                                               for i, n in enumerate(names)]))


def sysm(kind, msg, data, dest=1):
    return frame(nethelper.SYSM, dest, 0, js({"type": kind, "msg": msg, "data": data}))


def heart():
    return frame(nethelper.HEART, 1, 0, b"null")


def events(core):
    """Every event the core has for now."""
    found = []
    while True:
        event = core.next_event()
        if event is None:
            return found
        found.append(event)


def joining(name="Player2", group="pong_game", **changes):
    """A core that has sent AUTH; returns (core, the bytes it asked to send)."""
    core = NodeCore(settings(**changes))
    assert core.start("relay-pc", 65042, name, group, NOW, 5)
    assert core.state is NODE_LOOKING_UP
    core.found()
    assert core.state is NODE_CONNECTING
    core.opened(NOW)
    assert core.state is NODE_OPEN and not core.outgoing
    core.join()
    sent = bytes(core.outgoing)
    core.sent(len(sent), NOW)
    return core, sent


def joined(**changes):
    changes.setdefault("ping_interval", float("inf"))     # pings have tests of their own
    core, _ = joining(**changes)
    core.receive(peers("Player1", "Player2"), NOW)
    assert events(core) == [] and core.state is NODE_JOINED
    return core


# -- the table ----------------------------------------------------------------------

def test_every_state_is_in_the_table_and_every_one_can_end():
    table = nethelper._NODE_NEXT_STATES
    assert set(table) == {NODE_IDLE, NODE_LOOKING_UP, NODE_CONNECTING, NODE_OPEN, NODE_JOINING,
                          NODE_JOINED, NODE_WATCHING}
    assert all(NODE_IDLE in nexts for state, nexts in table.items() if state is not NODE_IDLE)


def test_a_move_the_table_does_not_allow_is_a_bug():
    core = NodeCore(settings())
    with pytest.raises(AssertionError, match="cannot go from idle to joined"):
        core._move(NODE_JOINED)


def test_each_name_has_one_meaning_and_the_strings_games_read_stay():
    # The relay's connection state CLOSED is no longer also the node's error
    # code, and the relay's "silent" goodbye reason is TIMEOUT itself.
    assert not hasattr(nethelper, "SILENT")
    assert nethelper.CLOSED_WHILE_JOINING == "closed" and nethelper.CLOSED == "closed"
    assert nethelper.TIMEOUT == "timeout" and nethelper.LOST == "lost"


# -- joining ------------------------------------------------------------------------

def test_join_sends_auth_and_the_own_name_in_peers_makes_it_a_member():
    core, sent = joining()
    [auth] = frames_of(sent)
    assert (auth.type, auth.dest, auth.sender) == (1, 0, 255)
    assert auth.body == {"name": "Player2", "group": "pong_game"}
    assert core.state is NODE_JOINING
    core.receive(peers("Player1"), NOW)            # a list without us: not in yet
    assert events(core) == [] and core.state is NODE_JOINING
    core.receive(peers("Player1", "Player2"), NOW)
    assert events(core) == []
    assert core.state is NODE_JOINED and core.my_addr == 2
    assert list(core.peers) == ["Player1", "Player2"] and core.names == {1: "Player1", 2: "Player2"}


def test_a_name_chosen_by_the_relay_is_taken_before_the_list():
    core, _ = joining(name="")
    core.receive(sysm(0, None, "Okapi") + peers("Okapi"), NOW)
    assert events(core) == [] and core.name == "Okapi" and core.state is NODE_JOINED


def test_a_refusal_ends_the_attempt_with_the_relays_reason():
    core, _ = joining()
    core.receive(sysm(1, "name_taken", 'The name "Player2" is already taken.', 255), NOW)
    assert events(core) == [Ended("name_taken", 'The name "Player2" is already taken.', True)]
    assert core.state is NODE_IDLE and core.error_code == "name_taken"


def test_an_original_relay_closing_without_a_word_is_closed_while_joining():
    core, _ = joining()
    core.receive(b"", NOW)
    [end] = events(core)
    assert end.code == nethelper.CLOSED_WHILE_JOINING and not end.by_relay
    assert "may be taken" in core.error and core.state is NODE_IDLE


@pytest.mark.parametrize("port, code", [(0, "bad_address"), (70000, "bad_address")])
def test_a_port_out_of_range_never_starts(port, code):
    core = NodeCore(settings())
    assert core.start("localhost", port, "Player1", "pong_game", NOW, 5) is False
    assert core.state is NODE_IDLE and core.error_code == code


def test_a_name_the_relay_would_refuse_never_starts():
    core = NodeCore(settings())
    assert core.start("localhost", 65042, "ALL", "pong_game", NOW, 5) is False
    assert core.error_code == nethelper.BAD_REQUEST


@pytest.mark.parametrize("steps, words", [
    (0, "Looking up the computer called"),
    (1, "No answer from relay-pc:65042 within 5 s"),
    (3, "did not answer the request to join within 5 s"),
])
def test_the_connect_timeout_names_the_step_that_took_too_long(steps, words):
    core = NodeCore(settings())
    core.start("relay-pc", 65042, "Player1", "pong_game", NOW, 5)
    for step in (core.found, lambda: core.opened(NOW), core.join)[:steps]:
        step()
    assert core.tick(NOW + 4.9) == []
    [end] = core.tick(NOW + 5)
    assert end.code == nethelper.TIMEOUT and words in end.text and core.state is NODE_IDLE


# -- members --------------------------------------------------------------------------

def test_data_becomes_received_events_in_order():
    core = joined()
    data = frame(2, 2, 1, js([{"title": "bar_pos", "content": [20, 250], "queue": False},
                             {"title": "score", "content": 1, "queue": True}]))
    core.receive(data, NOW)
    assert events(core) == [Received(1, 2, [("bar_pos", [20, 250], False),
                                            ("score", 1, True)], len(data))]


def test_a_peers_broken_data_is_skipped_and_the_connection_stays():
    core = joined()
    core.receive(frame(2, 2, 1, b"{not json") + frame(2, 2, 1, js([{"title": "t"}])), NOW)
    assert events(core) == [Received(1, 2, None, 20), Received(1, 2, [("t", None, False)], 27)]
    assert core.state is NODE_JOINED


def test_frames_that_came_before_the_end_come_first():
    core = joined()
    core.receive(frame(2, 2, 1, js([{"title": "last", "content": 1}])), NOW)
    core.receive(b"", NOW)
    got = events(core)
    assert [type(e) for e in got] == [Received, Ended]
    assert got[1].code == nethelper.LOST and "closed the connection" in got[1].text
    assert core.peers == {} and core.state is NODE_IDLE


def test_a_goodbye_says_why_and_nothing_after_it_counts():
    core = joined()
    core.receive(sysm(3, "over_quota", "Too much.", 2) + frame(2, 2, 1, js([])), NOW)
    assert events(core) == [Ended("over_quota", "Too much.", True)]


def test_a_failed_send_ends_the_connection_once_everything_was_read():
    core = joined()
    core.cannot_send("Broken pipe")
    core.receive(sysm(3, "relay_stopping", "The relay was stopped.", 2), NOW)
    core.drained()
    assert events(core) == [Ended("relay_stopping", "The relay was stopped.", True)]
    core = joined()
    core.cannot_send("Broken pipe")
    core.drained()
    [end] = events(core)
    assert end.code == nethelper.LOST and "(Broken pipe)" in end.text


def test_bytes_that_are_not_frames_end_it_as_a_protocol_error():
    core = joined()
    core.receive(b"HTTP/1.1 400 Bad Request\r\n\r\n", NOW)
    [end] = events(core)
    assert end.code == nethelper.PROTOCOL and not end.by_relay


def test_a_warning_is_kept_and_handed_over():
    core = joined()
    core.receive(sysm(2, "over_quota", "Slow down.", 2), NOW)
    assert events(core) == [Warned("over_quota", "Slow down.")]
    assert core.warning == "Slow down." and core.state is NODE_JOINED


def test_a_relay_that_sent_heartbeats_and_went_silent_is_lost():
    core = joined(relay_silence_timeout=5, heartbeat_interval=float("inf"))
    assert core.tick(NOW + 60) == []               # no heartbeat seen: an original relay
    core.receive(heart(), NOW + 60)
    assert events(core) == [] and core.relay_beats
    assert core.tick(NOW + 64.9) == []
    [end] = core.tick(NOW + 65)
    assert end.code == nethelper.LOST and "has said nothing for 5 s" in end.text


def test_an_idle_member_sends_a_heartbeat_each_interval():
    core = joined(heartbeat_interval=1)
    core.tick(NOW + 0.5)
    assert not core.outgoing
    core.tick(NOW + 1)
    [beat] = frames_of(bytes(core.outgoing))
    assert (beat.type, beat.dest, beat.sender, beat.body) == (3, 0, 2, None)


def test_a_relay_that_takes_nothing_of_what_waits_is_lost_after_the_stall_timeout():
    core = joined(send_stall_timeout=10, heartbeat_interval=1)
    core.tick(NOW + 1)                          # a heartbeat waits, but no send was tried:
    assert core.outgoing and core.tick(NOW + 100) == []     # a game reading only is not stuck
    core.sent(0, NOW + 100)
    core.sent(len(core.outgoing), NOW + 100)
    assert core.send("Player1", b'{"title":"t","content":1,"queue":true}')
    core.pack()
    core.sent(5, NOW + 103)                     # the socket took a little, then nothing
    core.sent(0, NOW + 105)
    assert core.tick(NOW + 112.9) == [] and core.state is NODE_JOINED
    [end] = core.tick(NOW + 113)
    assert end.code == nethelper.LOST and "none taken for 10 s" in end.text


def test_send_says_no_once_more_than_the_limit_waits_and_yes_when_it_has_gone():
    core = joined(max_unsent_bytes=1000)
    message = b'{"title":"t","content":"' + b"x" * 461 + b'","queue":true}'
    assert len(message) == 500
    assert core.send("Player1", message) and core.send("Player1", message)
    assert core.send("Player1", message)            # 1000 bytes wait: not more than the limit
    assert core.send("Player1", message) is False     # 1500 do
    assert "still wait to go" in core.send_error and "Send fewer" in core.send_error
    core.pack()
    assert core.send("Player1", message) is False     # packed, still waiting
    core.sent(len(core.outgoing), NOW)
    assert core.send("Player1", message) and core.send_error is None


def test_joined_and_left_say_who_came_and_went_since_the_last_call():
    core, _ = joining(name="Player2")
    core.receive(peers("Player1", "Player2"), NOW)
    assert events(core) == [] and core.take_arrivals() == ["Player1"]   # there already
    assert core.take_arrivals() == [] and core.take_departures() == []
    core.receive(peers("Player1", "Player2", "Carol"), NOW)
    core.receive(peers("Player2", "Carol"), NOW)
    events(core)
    assert core.take_arrivals() == ["Carol"] and core.take_departures() == ["Player1"]


def test_pings_measure_the_round_trip_and_stop_for_a_relay_that_never_answers():
    core = joined(ping_interval=1)
    core.tick(NOW + 0.5)
    assert not core.outgoing and core.ping is None
    core.tick(NOW + 1)
    [ping] = frames_of(bytes(core.outgoing))
    assert (ping.type, ping.dest, ping.sender, ping.body) == (5, 0, 2, {"type": 3, "data": 1})
    core.sent(len(core.outgoing), NOW + 1)
    core.receive(sysm(6, "pong", 1, 2), NOW + 1.025)
    assert events(core) == [] and core.ping == 25.0
    # An original relay never answers: three are asked, then no more.
    core = joined(ping_interval=1)
    for second in range(1, 10):
        core.tick(NOW + second)
    assert [f.body["data"] for f in frames_of(bytes(core.outgoing))] == [1, 2, 3]
    assert core.ping is None


def test_messages_are_packed_into_frames_no_bigger_than_the_limit():
    core = joined(max_frame_size=100)
    for i in range(10):
        assert core.send("Player1", nethelper.encode_message("n", "x" * 20 + str(i), True))
    assert core.send("Nobody", b"{}") is False and "Nobody" in core.send_error
    core.pack()
    sent = frames_of(bytes(core.outgoing))
    assert len(sent) > 1 and all(len(f.raw) <= 100 for f in sent)
    assert [m["content"] for f in sent for m in f.body] == ["x" * 20 + str(i) for i in range(10)]
    assert {(f.dest, f.sender) for f in sent} == {(1, 2)}


def test_leave_sends_req_leave_and_ends_without_an_error():
    core = joined()
    core.leave()
    [leave] = frames_of(bytes(core.outgoing))
    assert (leave.type, leave.sender, leave.body) == (5, 2, {"type": 0, "data": None})
    assert core.state is NODE_IDLE and core.error is None and core.peers == {}


# -- a probe and an observer ----------------------------------------------------------

def test_a_probe_asks_for_the_status_before_joining():
    core = NodeCore(NetNode)
    core.opened(NOW, "relay-pc:65042")
    core.ask_status()
    [request] = frames_of(bytes(core.outgoing))
    assert (request.type, request.dest, request.sender) == (5, 0, 255)
    assert request.body == {"type": 2, "data": None}
    core.receive(sysm(4, "status", {"relay": "nethelper", "players": 3}, 255), NOW)
    assert events(core) == [Status({"relay": "nethelper", "players": 3})]
    core.receive(peers("Player1"), NOW)             # means nothing before joining
    assert [type(e) for e in events(core)] == [Other]
    assert core.state is NODE_OPEN


def test_an_observer_gets_the_players_and_every_data_frame():
    core = NodeCore(NetNode)
    core.opened(NOW, "relay-pc:65042")
    core.watch("watcher", "pong_game")
    [auth] = frames_of(bytes(core.outgoing))
    assert auth.body == {"name": "watcher", "group": "pong_game", "observer": True}
    core.receive(sysm(5, "players", [{"name": "Alice", "addr": 1}, {"name": "Bob", "addr": 2}],
                      255), NOW)
    assert events(core) == [Players(["Alice", "Bob"])] and core.state is NODE_WATCHING
    core.receive(sysm(5, "players", "not a list", 255), NOW)
    assert events(core) == [] and core.names == {1: "Alice", 2: "Bob"}   # kept
    core.receive(frame(2, 255, 2, js([{"title": "bar_pos", "content": [1, 2]}])), NOW)
    [data] = events(core)
    assert (core.names[data.sender], data.dest, data.messages) == (
        "Bob", 255, [("bar_pos", [1, 2], False)])


def test_an_observer_sends_heartbeats_and_leaves_with_req_leave():
    core = NodeCore(settings(heartbeat_interval=1))
    core.opened(NOW, "relay-pc:65042")
    core.watch("watcher", "pong_game")
    core.sent(len(core.outgoing), NOW)
    core.receive(sysm(5, "players", [], 255), NOW)
    assert events(core) == [Players([])]
    core.tick(NOW + 1)
    core.leave()
    beat, leave = frames_of(bytes(core.outgoing))
    assert (beat.type, beat.sender) == (3, 255)
    assert (leave.type, leave.sender, leave.body["type"]) == (5, 255, 0)
