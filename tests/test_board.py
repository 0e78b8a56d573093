"""The teacher's board (--board): its rules without sockets (kick, lock, the
teacher's message, what a snapshot holds, the key and its rate limit), then
its web server over real sockets on 127.0.0.1. The page itself is tested in
a real browser in test_board_browser.py."""
import base64
import json
import logging
import time
import urllib.error
import urllib.request

import pytest

import nethelper
from conftest import HOST, data, frame, js, raw_join, read_until, expect_closed, raw_connect, \
    auth, wait_for
from nethelper import DATA, SYSM, Board, Relay
from test_relay_core import Core


def sysm_of(core, conn):
    """The SYSM payloads sent to ``conn`` since the last take()."""
    return [m.body for m in core.sent().get(conn, []) if m.type == SYSM]


# -- kick, lock, message: core events --------------------------------------------

def test_a_kick_says_why_and_keeps_that_name_from_that_address_out_for_60_s():
    c = Core()
    host, peer = c.join("Player1"), c.join("Player2", host="10.0.0.8")
    c.take()
    assert c.core.kick("pong_game", "Player2", "Please play fair.\n", c.now)
    goodbye = sysm_of(c, peer)
    assert goodbye == [{"type": 3, "msg": "kicked", "data": "The teacher removed this game from "
                        "the group: Please play fair. (it may join again in 60 s)"}]
    assert c.core.members("pong_game") == ["Player1"]
    assert "kicked" in [kind for _, kind, _ in c.core.events]

    again = c.open("10.0.0.8")
    c.feed(again, auth("Player2"))
    refusal = sysm_of(c, again)[0]
    assert (refusal["type"], refusal["msg"]) == (1, "kicked")
    assert "may join again in 60 s" in refusal["data"]
    c.join("Player2", host="10.0.0.9")          # another computer may take the name
    c.core.kick("pong_game", "Player2", "", c.now)
    c.join("Player3", host="10.0.0.9")          # and that computer another name
    c.advance(60.5)
    c.join("Player2", host="10.0.0.8")          # a minute later it may come back
    assert not c.core.kick("pong_game", "Nobody", "x", c.now)
    assert not c.core.kick("no_such_group", "Player1", "x", c.now)


def test_a_locked_group_refuses_new_players_and_keeps_the_ones_it_has():
    c = Core()
    c.join("Player1")
    assert c.core.lock("pong_game", True, c.now)
    c.take()
    newcomer = c.open()
    c.feed(newcomer, auth("Player2"))
    refusal = sysm_of(c, newcomer)[0]
    assert refusal["msg"] == "group_locked" and "locked" in refusal["data"]
    assert c.core.members("pong_game") == ["Player1"]
    c.join("Player2", group="chat")             # other groups are open
    assert c.core.lock("pong_game", False, c.now)
    c.join("Player2")
    assert not c.core.lock("nope", True, c.now)
    kinds = [kind for _, kind, _ in c.core.events]
    assert "locked" in kinds and "unlocked" in kinds and "refused" in kinds


def test_the_teachers_message_reaches_players_and_watchers_on_one_line():
    c = Core()
    host, peer = c.join("Player1"), c.join("Player2")
    watcher = c.open()
    c.feed(watcher, frame(nethelper.AUTH, 0, 255, js({"name": "w", "group": "pong_game",
                                                      "observer": True})))
    other = c.join("Someone", group="chat")
    c.take()
    assert c.core.tell("pong_game", "  Five minutes\nleft!\x07 ", c.now) == 3
    sent = c.sent()
    for conn in (host, peer, watcher):
        assert [m.body for m in sent[conn] if m.type == SYSM] == [
            {"type": 7, "msg": "teacher", "data": "Five minutes left!"}]
        assert sent[conn][0].dest == conn.addr
    assert other not in sent
    assert c.core.tell("pong_game", "x" * 500, c.now) == 3
    assert len(c.sent()[host][0].body["data"]) == nethelper.MESSAGE_LENGTH
    assert c.core.tell("pong_game", " \n ", c.now) == 0
    assert c.core.tell("nope", "hi", c.now) is None


# -- what the board shows ------------------------------------------------------------

def test_the_snapshot_has_every_group_its_players_rates_and_the_recent_events():
    c = Core(groups=("pong1", "pong2", "pong3"))
    host, peer = c.join("Player1", "pong1"), c.join("Player2", "pong1", host="10.0.0.8")
    c.core.board_state(c.now)
    for _ in range(10):
        c.feed(host, data(255, host.addr, ("bar_pos", [20, 250])))
    c.advance(2.0)
    c.feed(host, frame(nethelper.HEART, 0, host.addr))       # Player2 has said nothing
    refused = c.open("10.0.0.9")
    c.feed(refused, auth("Player1", "nope"))
    c.take()
    state = json.loads(json.dumps(c.core.board_state(c.now, round_trip=lambda conn: 1.5)))
    assert [g["name"] for g in state["groups"]] == ["pong1", "pong2", "pong3"]
    pong1 = state["groups"][0]
    players = {p["name"]: p for p in pong1["players"]}
    assert players["Player1"]["where"] == host.where and players["Player1"]["addr"] == 1
    assert players["Player1"]["msgs_s"] == pytest.approx(11 / 2.0, abs=0.1)   # 10 DATA + HEART
    assert players["Player1"]["bytes_s"] > 0 and players["Player1"]["rtt_ms"] == 1.5
    assert players["Player1"]["heard_s"] == 0 and players["Player2"]["heard_s"] == 2.0
    assert not pong1["quiet"] and "court" not in pong1     # nobody watches it: no court
    assert state["players"] == 2 and state["connections"] == 3
    kinds = [kind for _, kind, _ in state["events"]]
    assert kinds == ["joined", "joined", "refused"]
    c.advance(1.5)                  # Player2 silent for 3.5 s: its group gets the badge
    assert c.core.board_state(c.now)["groups"][0]["quiet"]


def test_an_unwatched_group_is_not_read_and_a_watched_one_shows_its_court():
    c = Core(groups=("pong1", "pong2"))
    host, peer = c.join("Player1", "pong1"), c.join("Player2", "pong1")
    other = c.join("Player1", "pong2")
    state = c.core.board_state(c.now, watched=["pong1"])
    assert host.tap is not None and peer.tap is host.tap and other.tap is None
    assert state["groups"][0]["court"]["pong"] is False      # nothing sent yet

    # The textbook's shapes: bar centre [x, y], ball {"center", "vel"}, score "b1"/"b2".
    # Only each sender's latest frame is read when the board looks: a sample.
    c.feed(host, data(255, host.addr, ("score", "b1")))
    c.feed(peer, data(1, peer.addr, ("bar_pos", "not a point")))
    c.feed(other, data(255, other.addr, ("ball_pos", {"center": [1, 2]})))
    state = c.core.board_state(c.now, watched=["pong1"])
    assert state["groups"][0]["court"]["score"] == [1, 0]
    assert state["groups"][0]["court"]["bars"] == {}
    assert ["Player2", "Player1", "bar_pos", '"not a point"'] in [
        m[1:5] for m in state["groups"][0]["recent"]]
    for x in range(100, 400, 10):
        c.feed(host, data(255, host.addr, ("ball_pos", {"center": [x, 300], "vel": [5, 0]}),
                          ("bar_pos", [20, 250])))
    c.feed(peer, data(1, peer.addr, ("bar_pos", [780, 300, 76])))
    c.feed(peer, data(1, peer.addr, ("bar_pos", [780, 310.5, 77])))
    state = c.core.board_state(c.now, watched=["pong1"])
    assert state["groups"][0]["court"] == {"ball": [390, 300], "score": [1, 0], "pong": True,
                                           "bars": {"Player1": [20, 250], "Player2": [780, 310.5]}}
    recent = state["groups"][0]["recent"]
    assert [m[1:4] for m in recent[-3:]] == [["Player1", "everyone", "ball_pos"],
                                             ["Player1", "everyone", "bar_pos"],
                                             ["Player2", "Player1", "bar_pos"]]
    assert ["Player2", "Player1", "bar_pos", "[780, 300, 76]"] not in [m[1:5] for m in recent]
    # This project's host sends the score inside every ball_pos; a new game starts at 0-0.
    c.feed(host, data(255, host.addr, ("ball_pos", {"center": [5, 6], "score": [7, 3]})))
    state = c.core.board_state(c.now, courts=["pong1"])
    assert state["groups"][0]["court"]["score"] == [7, 3]
    assert "recent" not in state["groups"][0] and "court" not in state["groups"][1]
    c.feed(host, data(255, host.addr, ("game_start", True)))
    assert c.core.board_state(c.now, courts=["pong1"])["groups"][0]["court"]["score"] == [0, 0]

    c.core.board_state(c.now, watched=[])          # no page watches it any more
    assert host.tap is None and peer.tap is None
    newcomer = c.join("Player3", "pong1")
    assert newcomer.tap is None


def test_a_new_member_of_a_watched_group_is_tapped_too():
    c = Core()
    c.join("Player1")
    c.core.board_state(c.now, watched=["pong_game", "not_a_group"])
    late = c.join("Player2")
    assert late.tap is not None
    c.feed(late, data(1, late.addr, ("bar_pos", [780, 100])))
    court = c.core.board_state(c.now, watched=["pong_game"])["groups"][0]["court"]
    assert court["bars"] == {"Player2": [780, 100]}


# -- the key ---------------------------------------------------------------------------

def test_the_key_is_random_and_128_bits_or_more():
    relay = Relay(["g"], host=HOST, port=0)
    keys = {Board(relay).key for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert len(base64.urlsafe_b64decode(key + "==")) >= 16


def test_wrong_keys_are_refused_logged_and_rate_limited(caplog):
    relay = Relay(["g"], host=HOST, port=0)
    board = Board(relay, key="right-key")
    assert board.refuse("10.0.0.1", "right-key") is None
    caplog.set_level(logging.WARNING, logger="nethelper")
    assert board.refuse("10.0.0.1", None)[0] == 403
    for _ in range(nethelper.BOARD_WRONG_KEYS - 1):
        assert board.refuse("10.0.0.1", "right-kez")[0] == 403
    # Over the limit, that address is turned away whatever it sends...
    assert board.refuse("10.0.0.1", "right-key")[0] == 429
    assert board.refuse("10.0.0.1", "guess")[0] == 429
    # ...and others are not.
    assert board.refuse("10.0.0.2", "right-key") is None
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["board: no key from 10.0.0.1"]         # one line per address per 10 s


# -- the web server, over real sockets ---------------------------------------------------

@pytest.fixture
def board_relay():
    with Relay(["pong1", "pong2"], host=HOST, port=0, board=True, board_port=0) as relay:
        yield relay


def ask(relay, path, key=None, body=None):
    """(status, decoded JSON) of one request to the relay's board."""
    request = urllib.request.Request("http://{}:{}{}".format(HOST, relay.board.port, path),
                                     data=None if body is None else json.dumps(body).encode())
    if key:
        request.add_header("X-Board-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_board_serves_its_state_and_acts_only_with_the_key(board_relay):
    key = board_relay.board.key
    sock, addr, _ = raw_join(board_relay.port, "Player1", "pong1")
    status, state = ask(board_relay, "/state?watch=pong1", key)
    assert status == 200
    assert [p["name"] for p in state["groups"][0]["players"]] == ["Player1"]
    assert state["groups"][0]["players"][0]["rtt_ms"] is not None      # Linux: TCP_INFO
    assert ask(board_relay, "/state")[0] == 403
    assert ask(board_relay, "/state?key=" + key)[0] == 200

    assert ask(board_relay, "/kick", None, {"group": "pong1", "name": "Player1"})[0] == 403
    assert ask(board_relay, "/kick", "wrong", {"group": "pong1", "name": "Player1"})[0] == 403
    assert board_relay.members("pong1") == ["Player1"]
    assert ask(board_relay, "/message", key, {"group": "pong1", "text": "Hello class"}) == (
        200, {"ok": True, "told": 1})
    said = read_until(sock, lambda m: m.type == SYSM)
    assert said.body == {"type": 7, "msg": "teacher", "data": "Hello class"}
    assert ask(board_relay, "/kick", key, {"group": "pong1", "name": "Player1",
                                           "text": "Time is up"}) == (200, {"ok": True})
    goodbye = [m for m in expect_closed(sock) if m.type == SYSM]
    assert goodbye[-1].body["msg"] == "kicked" and "Time is up" in goodbye[-1].body["data"]
    assert ask(board_relay, "/kick", key, {"group": "pong1", "name": "Player1"})[0] == 404
    assert ask(board_relay, "/lock", key, {"group": "pong2", "locked": True}) == (
        200, {"ok": True, "locked": True})
    late = raw_connect(board_relay.port)
    late.sendall(auth("Player1", "pong2"))
    assert [m.body["msg"] for m in expect_closed(late) if m.type == SYSM] == ["group_locked"]
    assert ask(board_relay, "/lock", key, {"group": "pong2", "locked": "yes"})[0] == 400
    assert ask(board_relay, "/explode", key, {"group": "pong2"})[0] == 404


def test_the_page_needs_the_key_and_loads_nothing_from_elsewhere(board_relay):
    url = "http://{}:{}/".format(HOST, board_relay.board.port)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=5)
    assert refused.value.code == 403 and b"needs its key" in refused.value.read()
    with urllib.request.urlopen(url + "?key=" + board_relay.board.key, timeout=5) as answer:
        page = answer.read().decode()
        policy = answer.headers["Content-Security-Policy"]
    assert "Relay board" in page
    assert "default-src 'none'" in policy and "http" not in policy
    assert "http://" not in page and "https://" not in page      # no CDN, fonts or scripts


def test_the_board_port_taken_is_said_plainly():
    with Relay(["g"], host=HOST, port=0, board=True, board_port=0) as first:
        relay = Relay(["g"], host=HOST, port=0, board=True, board_port=first.board.port)
        with pytest.raises(nethelper.RelayError, match="board cannot use port .*--board-port"):
            relay.start()


def test_board_command_line_prints_the_address_with_its_key(started):
    process, port, banner = started("-g", "pong1", "-p", "0", "-i", HOST, "--board",
                                    "--board-port", "0")
    line = next(b for b in banner if "Board:" in b)
    url = line.split()[1]
    assert url.startswith("http://{}:".format(HOST)) and "/?key=" in url
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert b"Relay board" in answer.read()


def test_an_original_node_plays_on_under_a_watching_board_and_a_kick_closes_it(board_relay):
    """An original node (the original's exact bytes, see test_interop.py)
    joins a group a page watches, its DATA is forwarded byte for byte, a
    teacher's message does not disturb it, and a kick closes it."""
    key = board_relay.board.key
    first, first_addr, _ = raw_join(board_relay.port, "Player1", "pong1")
    second, second_addr, _ = raw_join(board_relay.port, "Player2", "pong1")
    assert ask(board_relay, "/state?watch=pong1", key)[0] == 200
    members = board_relay.groups["pong1"].values()
    assert wait_for(lambda: all(conn.tap is not None for conn in members))     # sampled
    assert ask(board_relay, "/message", key, {"group": "pong1", "text": "Hi"})[0] == 200
    for _ in range(3):
        sent = frame(DATA, 255, first_addr, js([{"title": "ball_pos", "content": [400, 300],
                                                  "queue": False}]))
        first.sendall(sent)
        assert read_until(second, lambda m: m.type == DATA).raw == sent
    assert ask(board_relay, "/kick", key, {"group": "pong1", "name": "Player2"})[0] == 200
    assert any(m.type == SYSM and m.body["msg"] == "kicked" for m in expect_closed(second))
    first.close()


# -- NetNode: the teacher's message and the kick's reason ---------------------------------

def test_node_core_hands_over_the_teachers_message_and_a_kicks_reason():
    from test_node_core import events, joined, sysm
    from nethelper import Ended, Told, NODE_JOINED
    core = joined()
    now = 1000.0
    core.receive(sysm(7, "teacher", "Five minutes left!", 2), now)
    assert events(core) == [Told("Five minutes left!")] and core.state is NODE_JOINED
    core.receive(sysm(7, "teacher", None, 2), now)           # nothing to show: ignored
    assert [type(e).__name__ for e in events(core)] == ["Other"]
    core.receive(sysm(3, "kicked", "The teacher removed this game from the group: x", 2), now)
    assert events(core) == [Ended("kicked", "The teacher removed this game from the group: x",
                                  True)]


def test_a_netnode_gets_the_teachers_message_once_and_the_kicks_reason(board_relay):
    from conftest import join, pump_until
    key = board_relay.board.key
    node = join(board_relay.port, "Player1", "pong1")
    assert node.get_teacher_message() is None
    assert ask(board_relay, "/message", key, {"group": "pong1", "text": "Look at the board"})[0] == 200
    said = []
    assert pump_until([node], lambda: said.append(node.get_teacher_message()) or said[-1])
    assert said[-1] == "Look at the board" and node.get_teacher_message() is None
    assert ask(board_relay, "/kick", key, {"group": "pong1", "name": "Player1",
                                           "text": "Time for the next pair"})[0] == 200
    assert pump_until([node], lambda: not node.connected)
    assert node.error_code == nethelper.KICKED and "Time for the next pair" in node.error
    again = nethelper.NetNode()                 # the same name from the same computer: not yet
    assert not again.connect(HOST, "Player1", "pong1", port=board_relay.port, timeout=5)
    assert again.error_code == nethelper.KICKED and "may join again" in again.error


def test_a_storm_from_one_address_is_turned_away_before_it_is_read(board_relay):
    key = board_relay.board.key
    statuses = [ask_status(board_relay, "/state", key)
                for _ in range(nethelper.BOARD_REQUEST_BURST + 20)]
    assert statuses.count(200) >= nethelper.BOARD_REQUEST_BURST
    assert statuses[-1] == 429 and statuses.count(429) >= 10
    # A page asking once a second is never turned away.
    time.sleep(1.0)
    assert ask_status(board_relay, "/state", key) == 200


def ask_status(relay, path, key):
    """The HTTP status of one GET (0: the connection closed without an answer)."""
    request = urllib.request.Request("http://{}:{}{}".format(HOST, relay.board.port, path),
                                     headers={"X-Board-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError):
        return 0
