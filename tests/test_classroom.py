"""A whole class on one relay: discovery, status checks, observers, the teacher's log.

The rules (discovery queries and answers, status requests, observers, log
lines) are tested on RelayCore without sockets; the commands (--find,
--check, --watch) end to end, as real processes talking to real relays and
to other listeners on 127.0.0.1. Nothing here sends broadcast traffic or
anything else off the loopback interface.
"""
import http.server
import logging
import re
import socket
import subprocess
import sys
import threading

import pytest

import nethelper
from conftest import (HOST, ROOT, auth, data, frame, free_port, join, js, pump_until, raw_join,
                      stop_process, wait_for, both_selectors)
from nethelper import CLOSED, CLOSING, OBSERVER, PEERS, REQ, SEND_DATAGRAM, SYSM
from test_relay_core import Core, names_in

LOOPBACK = ("-i", HOST, "-p", "0")


def watch_auth(group="pong_game", name="watcher"):
    return frame(nethelper.AUTH, 0, 255, js({"name": name, "group": group, "observer": True}))


def status_request(kind=2):
    return frame(REQ, 0, 255, js({"type": kind, "data": None}))


def sysm(msgs, sysm_type):
    return [m for m in msgs if m.type == SYSM and m.body["type"] == sysm_type]


def run(*args, timeout=20):
    """`python nethelper.py ARGS` to the end: (exit status, output)."""
    result = subprocess.run([sys.executable, "-u", str(ROOT / "nethelper.py"), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=timeout)
    assert "Traceback" not in result.stdout, result.stdout
    return result.returncode, result.stdout


@pytest.fixture
def relay():
    return Core()


# ---------------------------------------------------------------------------
# Discovery, without sockets
# ---------------------------------------------------------------------------

def test_a_discovery_query_is_the_prefix_a_version_and_padding():
    query = nethelper.discovery_query()
    assert len(query) == nethelper.DISCOVERY_QUERY_SIZE
    assert nethelper.parse_discovery_query(query) == 1
    assert nethelper.parse_discovery_query(nethelper.discovery_query(2)) == 2


@pytest.mark.parametrize("datagram", [
    b"", b"nethelper-find/1\n",                                 # too short to answer in full
    nethelper.discovery_query()[:-1],
    b"x" + nethelper.discovery_query()[1:],                     # another prefix
    nethelper.discovery_query(0),                               # no version 0
    b"nethelper-find/one\n".ljust(1200, b"\0"),
    b"nethelper-find/1".ljust(1200, b"\0"),                     # no line break
    b"nethelper-find/1\n".ljust(1199, b"\0") + b"!",            # padding that is not zeros
    b"GET / HTTP/1.1\r\n".ljust(1200, b" "),
])
def test_anything_but_a_well_formed_query_is_ignored(relay, datagram):
    assert nethelper.parse_discovery_query(datagram) is None
    relay.core.datagram(datagram, ("10.0.0.9", 5000), 65042, relay.now)
    assert relay.take() == []


def test_the_answer_names_the_port_the_groups_and_their_players(relay):
    relay.join("Alice")
    relay.join("Bob")
    relay.take()
    relay.core.datagram(nethelper.discovery_query(), ("10.0.0.9", 5000), 65042, relay.now)
    [(kind, address, answer)] = relay.take()
    assert (kind, address) == (SEND_DATAGRAM, ("10.0.0.9", 5000))
    info = nethelper.parse_discovery_answer(answer)
    assert info["port"] == 65042 and info["version"] == nethelper.__version__
    assert info["groups"] == {"pong_game": 2, "chat": 0} and info["players"] == 2


def test_an_answer_is_never_longer_than_the_query_however_many_groups():
    groups = ["class-3-pair-{:03d}-{}".format(n, "x" * 40) for n in range(300)]
    relay = Core(groups)
    query = nethelper.discovery_query()
    relay.core.datagram(query, ("10.0.0.9", 5000), 65042, relay.now)
    [(_, _, answer)] = relay.take()
    assert len(answer) <= len(query)
    info = nethelper.parse_discovery_answer(answer)
    assert 0 < len(info["groups"]) < 300
    assert len(info["groups"]) + info["more_groups"] == 300


def test_a_private_relay_answers_with_no_group_names():
    relay = Core(private=True)
    relay.join("Alice")
    relay.take()
    relay.core.datagram(nethelper.discovery_query(), ("10.0.0.9", 5000), 65042, relay.now)
    [(_, _, answer)] = relay.take()
    assert b"pong_game" not in answer
    info = nethelper.parse_discovery_answer(answer)
    assert "groups" not in info and info["players"] == 1


def test_answers_are_rate_limited_per_address(relay):
    query = nethelper.discovery_query()

    def answers(host, count):
        for _ in range(count):
            relay.core.datagram(query, (host, 5000), 65042, relay.now)
        return len([a for a in relay.take() if a[0] == SEND_DATAGRAM])

    assert answers("10.0.0.9", 50) == nethelper.DISCOVERY_BURST
    assert answers("10.0.0.10", 1) == 1                 # another address is not held back
    relay.now += 1.0
    assert answers("10.0.0.9", 50) == int(nethelper.DISCOVERY_RATE)


def test_all_answers_together_are_rate_limited_too(relay):
    query = nethelper.discovery_query()
    for n in range(1000):                               # many (forged) addresses at once
        relay.core.datagram(query, ("10.{}.{}.1".format(n // 250, n % 250), 5000), 65042, relay.now)
    sent = [a for a in relay.take() if a[0] == SEND_DATAGRAM]
    assert len(sent) == nethelper.DISCOVERY_TOTAL_RATE


# ---------------------------------------------------------------------------
# Status requests (REQ 2), without sockets
# ---------------------------------------------------------------------------

def test_a_status_request_before_joining_is_answered_and_the_connection_may_still_join(relay):
    relay.join("Alice")
    relay.take()
    probe = relay.open()
    relay.feed(probe, status_request())
    [answer] = relay.sent()[probe]
    assert (answer.type, answer.body["type"]) == (SYSM, nethelper.SYSM_STATUS)
    status = answer.body["data"]
    assert status["groups"] == {"pong_game": 1, "chat": 0}
    assert status["observers"] is True and status["version"] == nethelper.__version__
    assert probe.state is nethelper.JOINING
    relay.feed(probe, auth("Bob"))
    assert probe.state is nethelper.MEMBER


def test_other_requests_before_joining_are_still_ignored(relay):
    probe = relay.open()
    relay.feed(probe, status_request(nethelper.REQ_PEERS) + status_request(nethelper.REQ_LEAVE))
    assert relay.take() == [] and probe.state is nethelper.JOINING


def test_a_connection_gets_a_bounded_number_of_status_answers(relay):
    probe = relay.open()
    relay.feed(probe, status_request() * (nethelper.STATUS_ANSWERS + 10))
    assert len(relay.sent()[probe]) == nethelper.STATUS_ANSWERS


def test_a_private_relay_tells_a_probe_no_group_names():
    relay = Core(private=True)
    probe = relay.open()
    relay.feed(probe, status_request())
    [answer] = relay.sent()[probe]
    assert "groups" not in answer.body["data"] and b"pong_game" not in answer.raw


def test_a_member_may_ask_for_the_status_too(relay):
    alice = relay.join("Alice")
    relay.take()
    relay.feed(alice, frame(REQ, 0, alice.addr, js({"type": 2, "data": None})))
    [answer] = relay.sent()[alice]
    assert answer.body["type"] == nethelper.SYSM_STATUS


# ---------------------------------------------------------------------------
# Observers, without sockets
# ---------------------------------------------------------------------------

def watch(relay, group="pong_game"):
    conn = relay.open()
    relay.feed(conn, watch_auth(group))
    relay.core.end_turn(relay.now)
    assert conn.state is OBSERVER
    return conn


def test_an_observer_is_in_no_peers_list_and_gets_the_players_as_sysm_5(relay):
    alice = relay.join("Alice")
    relay.take()
    watcher = watch(relay)
    sent = relay.sent()
    assert alice not in sent                            # the players are not told
    [players] = sent[watcher]
    assert players.body["type"] == nethelper.SYSM_PLAYERS
    assert players.body["data"] == [{"name": "Alice", "addr": alice.addr}]
    bob = relay.join("Bob")
    sent = relay.sent()
    assert all(names_in(m) == ["Alice", "Bob"] for c in (alice, bob) for m in sent[c]
               if m.type == PEERS)
    assert [m.type for m in sent[watcher]] == [SYSM]
    assert sent[watcher][0].body["data"] == [{"name": "Alice", "addr": 1}, {"name": "Bob",
                                                                            "addr": 2}]
    assert relay.core.members("pong_game") == ["Alice", "Bob"]


def test_an_observer_gets_every_data_frame_raw_with_its_sender_and_dest(relay):
    alice, bob = relay.join("Alice"), relay.join("Bob")
    watcher = watch(relay)
    relay.take()
    to_bob = data(bob.addr, alice.addr, ("bar_pos", [20, 250]))
    to_all = data(255, bob.addr, ("ball_pos", [400, 300]))
    relay.feed(alice, to_bob)
    relay.feed(bob, to_all)
    sent = relay.sent()
    assert [m.raw for m in sent[watcher]] == [to_bob, to_all]
    assert [m.raw for m in sent[bob]] == [to_bob] and [m.raw for m in sent[alice]] == [to_all]


def test_an_observer_cannot_send(relay):
    alice, bob = relay.join("Alice"), relay.join("Bob")
    watcher = watch(relay)
    relay.take()
    for dest in (255, alice.addr, bob.addr):
        for sender in (255, alice.addr, 0):
            relay.feed(watcher, data(dest, sender, ("bar_pos", [1, 2])))
    assert relay.sent() == {} and watcher.state is OBSERVER


def test_observers_do_not_count_toward_the_player_limit_and_have_their_own():
    relay = Core(max_peers=2, max_observers=2)
    watch(relay)
    relay.join("Alice")
    relay.join("Bob")
    watch(relay)
    third = relay.open()
    relay.feed(third, auth("Carol"))
    assert relay.sent()[third][0].body["msg"] == nethelper.GROUP_FULL
    too_many = relay.open()
    relay.feed(too_many, watch_auth())
    [refusal] = relay.sent()[too_many]
    assert refusal.body["msg"] == nethelper.GROUP_FULL and "watching" in refusal.body["data"]


def test_an_observer_of_an_unknown_group_is_refused(relay):
    conn = relay.open()
    relay.feed(conn, watch_auth("nope"))
    assert relay.sent()[conn][0].body["msg"] == nethelper.UNKNOWN_GROUP


def test_an_observer_leaving_changes_nothing_for_the_players(relay):
    alice = relay.join("Alice")
    watcher = watch(relay)
    relay.take()
    relay.core.connection_lost(watcher, None, relay.now)
    relay.core.end_turn(relay.now)
    actions = relay.take()
    assert relay.sent(actions) == {} and watcher.state is CLOSED
    assert relay.core.watchers["pong_game"] == []
    relay.feed(alice, data(255, alice.addr, ("x", 1)))
    assert relay.sent() == {}                           # no copy to a closed observer


def test_a_silent_observer_gets_a_timeout_goodbye_and_a_talking_one_stays(relay):
    quiet, talking = watch(relay), watch(relay)
    relay.take()
    for _ in range(6):
        relay.advance(1.0)
        relay.feed(talking, nethelper.heart_frame(255))
    goodbye = sysm(relay.sent().get(quiet, []), nethelper.SYSM_GOODBYE)
    assert goodbye and goodbye[0].body["msg"] == nethelper.TIMEOUT
    assert quiet.state in (CLOSING, CLOSED) and talking.state is OBSERVER


def test_stopping_the_relay_says_relay_stopping_to_observers(relay):
    watcher = watch(relay)
    relay.take()
    relay.core.stop(relay.now)
    goodbye = sysm(relay.sent().get(watcher, []), nethelper.SYSM_GOODBYE)
    assert goodbye[0].body["msg"] == nethelper.RELAY_STOPPING and watcher.state is CLOSED


def test_an_observer_that_does_not_read_is_dropped_and_the_game_goes_on(relay):
    alice, bob = relay.join("Alice"), relay.join("Bob")
    watcher = watch(relay)
    relay.take()
    relay.core.backlogged(watcher, relay.core.max_pending + 1, relay.now)
    assert watcher.state is CLOSED and relay.core.watchers["pong_game"] == []
    relay.feed(alice, data(bob.addr, alice.addr, ("bar_pos", 1)))
    assert list(relay.sent()) == [bob]


def test_the_observer_state_is_in_the_table(relay):
    table = nethelper._NEXT_STATES
    assert OBSERVER in table[nethelper.JOINING] and table[OBSERVER] == (CLOSING, CLOSED)
    watcher = watch(relay)
    with pytest.raises(RuntimeError):
        relay.core._move(watcher, nethelper.MEMBER)     # a watcher never becomes a player


# ---------------------------------------------------------------------------
# What the relay logs for a teacher, without sockets
# ---------------------------------------------------------------------------

def levels(relay, word):
    relay.take()
    return [level for level, text in relay.log if word in text]


def test_player_2_trying_player1_first_is_not_a_warning(relay):
    relay.join("Player1")
    conn = relay.open()
    relay.feed(conn, auth("Player1"))
    assert levels(relay, "name_taken") == [logging.INFO]


def test_a_full_group_says_group_full_whatever_name_is_tried():
    relay = Core(max_peers=2)
    relay.join("Player1")
    relay.join("Player2")
    for name in ("Player1", "Player2"):
        conn = relay.open("10.0.0.8")
        relay.feed(conn, auth(name))
        assert relay.sent()[conn][0].body["msg"] == nethelper.GROUP_FULL
    assert levels(relay, "name_taken") == []
    lines = [(level, text) for level, text in relay.log if "group_full" in text]
    assert len(lines) == 2, relay.log
    assert all(level == logging.WARNING and "refused  10.0.0.8:" in text for level, text in lines)


def test_log_lines_speak_of_players_and_addresses_not_nodes(relay):
    relay.join("Alice")
    bob = relay.join("Bob")
    stranger = relay.open("10.0.0.9")
    relay.feed(stranger, auth("Zed", "nope"))
    relay.core.backlogged(bob, relay.core.max_pending + 1, relay.now)
    text = relay.log_text()
    assert "joined   pong_game: Alice from 10.0.0.7:" in text
    assert re.search(r"refused  10\.0\.0\.9:\d+: unknown_group", text)
    assert re.search(r"left     pong_game: Bob \(too slow.*\) from 10\.0\.0\.7:\d+", text)
    assert not re.search(r"\bnode\b|address \d", text), text


def test_the_summary_shows_players_messages_a_second_and_the_slowest():
    relay = Core(liveness_timeout=60)
    alice, bob = relay.join("Alice"), relay.join("Bob")
    relay.advance(relay.core.summary_interval + 1)     # a first summary, with no messages
    relay.take()
    del relay.log[:]
    for _ in range(50):
        relay.feed(alice, data(bob.addr, alice.addr, ("bar_pos", 1)))
    bob.pending_size = 3000                             # as the driver would count it
    relay.advance(relay.core.summary_interval)
    relay.take()
    [line] = [text for _, text in relay.log if text.startswith("group pong_game")]
    assert re.match(r"group pong_game: 2 players \(Alice, Bob\), (\d+) messages/s; slowest: "
                    r"Bob \(heard [\d.]+ s ago, 3000 bytes waiting for it\)$", line), line
    rate = int(re.search(r"(\d+) messages/s", line).group(1))
    assert rate == 10                                   # 50 frames in 5 s


# ---------------------------------------------------------------------------
# --find, end to end
# ---------------------------------------------------------------------------

def test_find_lists_the_relay_at_an_address_with_its_groups_and_players(started):
    process, port, _ = started("-g", "pong1", "pong2", "--name", "Minji-PC", *LOOPBACK)
    alice = join(port, "Alice", "pong1")
    status, output = run("--find", HOST, "-p", str(port))
    assert status == 0, output
    assert output.strip() == ('"Minji-PC" at 127.0.0.1 port {}: pong1 (1), pong2 (0); 1 player '
                              "in all (version {})".format(port, nethelper.__version__))
    alice.disconnect()


def test_find_relays_for_games(relay_process):
    [info] = nethelper.find_relays(HOST, relay_process.port, timeout=5)
    assert (info["address"], info["port"]) == (HOST, relay_process.port)
    assert info["groups"] == {"pong_game": 0}
    assert info["name"] == nethelper.typable_name(socket.gethostname())    # the default name


def test_find_with_no_relay_says_so_and_exits_1():
    port = free_port()
    status, output = run("--find", HOST, "-p", str(port), "--timeout", "0.3")
    assert status == 1
    assert output.startswith("No relay answered on 127.0.0.1 (UDP port {})".format(port)), output


def test_find_of_a_private_relay_lists_no_groups(started):
    process, port, _ = started("-g", "secret", "--private", *LOOPBACK)
    status, output = run("--find", HOST, "-p", str(port))
    assert status == 0 and "groups not listed (private)" in output and "secret" not in output


# ---------------------------------------------------------------------------
# --check, end to end
# ---------------------------------------------------------------------------

def test_check_a_relay_reports_groups_players_version_and_round_trip(started):
    process, port, _ = started("-g", "pong1", "pong2", "--name", "3반-민지", *LOOPBACK)
    a, b = join(port, "Player1", "pong2"), join(port, "Player2", "pong2")
    status, output = run("--check", HOST, "-p", str(port))
    assert status == 0, output
    lines = output.splitlines()
    assert lines[0] == 'A nethelper relay called "3반-민지" (version {}, protocol 020) answers ' \
                       "at 127.0.0.1 port {}.".format(nethelper.__version__, port)
    assert lines[1] == "  Groups: pong1 (0 players), pong2 (2 players)"
    assert re.match(r"  Round trip: [\d.]+ ms \(median of 20; [\d.]+ to [\d.]+ ms\)$", lines[2])
    a.disconnect(), b.disconnect()
    output = stop_process(process)
    assert "closed" not in output           # a probe is routine: not in the teacher's log


@both_selectors
def test_check_relay_for_games_times_each_of_twenty_requests(relay_process):
    result = nethelper.check_relay(HOST, relay_process.port)
    assert result.ok and result.code == nethelper.RELAY_OK
    assert len(result.round_trips) == 20 and result.round_trip > 0
    assert result.status["groups"] == {"pong_game": 0}


@both_selectors
def test_check_a_full_relay_says_it_is_full_not_an_original_relay():
    with nethelper.Relay(["pong_game"], host=HOST, port=0, max_connections=1) as relay:
        holder = join(relay.port, "Player1")
        try:
            result = nethelper.check_relay(HOST, relay.port, timeout=2)
        finally:
            holder.disconnect()
    assert not result.ok and result.code == nethelper.SERVER_FULL, result.message
    assert "full" in result.message


def test_check_with_nothing_listening_says_so_with_the_port():
    port = free_port()
    status, output = run("--check", HOST, "-p", str(port))
    assert status == 1
    assert output.startswith("Nothing is listening at 127.0.0.1 port {} (the connection was "
                             "refused).".format(port)), output
    assert "-p {}".format(port) in output


def test_check_a_name_that_cannot_be_resolved():
    # An empty label fails inside Python, before any name server is asked.
    result = nethelper.check_relay("no..such..host", 65042)
    assert result.code == nethelper.BAD_ADDRESS and not result.ok
    assert result.message.startswith('The name "no..such..host" could not be found')


def test_no_answer_advice_names_the_firewall_rule_for_each_system():
    advice = nethelper._advice(nethelper.TIMEOUT, "192.168.0.10", 65042, 3)
    assert "did not answer within 3 s" in advice
    for rule in ("New-NetFirewallRule", "-LocalPort 65042", "macOS", "ufw allow 65042/tcp",
                 "65042/udp"):
        assert rule in advice


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def web_server():
    """python -m http.server, in a thread, on a free loopback port."""
    server = http.server.ThreadingHTTPServer((HOST, 0), _QuietHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_check_a_web_server_that_waits_for_a_request_line(web_server):
    status, output = run("--check", HOST, "-p", str(web_server), "--timeout", "0.5")
    assert status == 1
    assert "accepted the connection but never answered: it is not a nethelper relay" in output


class OneShotServer:
    """Accepts connections on a free loopback port and runs ``talk(conn)`` for each."""

    def __init__(self, talk):
        self.server = socket.create_server((HOST, 0))
        self.port = self.server.getsockname()[1]
        self.talk = talk
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            while True:
                conn, _ = self.server.accept()
                with conn:
                    conn.settimeout(5)
                    try:
                        self.talk(conn)
                    except OSError:
                        pass
        except OSError:
            return

    def close(self):
        self.server.close()


def test_check_a_server_that_answers_http(web_server):
    def talk(conn):
        conn.recv(100)
        conn.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    server = OneShotServer(talk)
    try:
        result = nethelper.check_relay(HOST, server.port, timeout=2)
    finally:
        server.close()
    assert result.code == nethelper.NOT_A_RELAY and not result.ok
    assert "it looks like a web server" in result.message and "HTTP/1.0 400" in result.message


def original_relay_talk(conn):
    """Like the original relay: ignores all but AUTH before joining, and
    closes without a word on an unknown group."""
    reader = nethelper.FrameReader()
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            return
        reader.feed(chunk)
        for got in reader:
            if got.type == nethelper.AUTH:
                return


def test_check_an_original_relay_that_does_not_answer_status_requests():
    server = OneShotServer(original_relay_talk)
    try:
        result = nethelper.check_relay(HOST, server.port, timeout=0.5)
        status, output = run("--watch", "pong_game", HOST, "-p", str(server.port),
                             "--timeout", "0.5")
    finally:
        server.close()
    assert result.code == nethelper.OLD_RELAY and result.ok
    assert "does not answer status requests (an original nethelper relay?)" in result.message
    assert status == 1 and "Only this project's relay can be watched" in output


# ---------------------------------------------------------------------------
# --watch, end to end
# ---------------------------------------------------------------------------

@both_selectors
def test_watch_prints_a_running_exchange_and_stays_invisible(started):
    process, port, _ = started("-g", "pong1", "--max-peers", "2", *LOOPBACK)
    watcher = subprocess.Popen([sys.executable, "-u", str(ROOT / "nethelper.py"), "--watch",
                                "pong1", HOST, "-p", str(port), "--every", "0.2"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    lines = []
    try:
        def read_until(pattern):
            while True:
                line = watcher.stdout.readline()
                assert line, lines
                lines.append(line.rstrip("\n"))
                if re.search(pattern, line):
                    return line
        read_until("Players in pong1: none yet")
        host, guest = join(port, "Player1", "pong1"), join(port, "Player2", "pong1")
        assert pump_until([host, guest], lambda: host.get_peers() == ["Player1", "Player2"])
        tick = [0]

        def exchange():
            tick[0] += 1
            host.send_msg("Player2", "ball_pos", [tick[0], 300])
            guest.send_msg("ALL", "bar_pos", [780, tick[0]])
            return True
        stop = threading.Event()

        def play():                 # a running match, as a game loop would send it
            while not stop.is_set():
                pump_until([host, guest], exchange, timeout=0)
                stop.wait(0.01)
        game = threading.Thread(target=play, daemon=True)
        game.start()
        try:
            read_until(r"\d\d:\d\d:\d\d Player1 -> Player2: ball_pos \[\d+, 300\]$")
            read_until(r"\d\d:\d\d:\d\d Player2 -> everyone: bar_pos \[780, \d+\]$")
            read_until(r"^  rates: .*ball_pos [\d.]+/s")
        finally:
            stop.set()
            game.join(5)
        # Invisible: in no PEERS list, and not counted: a group of two is full.
        assert host.get_peers() == guest.get_peers() == ["Player1", "Player2"]
        assert host.connected and guest.connected
    finally:
        watcher.terminate()
        rest, _ = watcher.communicate(timeout=5)
    assert watcher.returncode == 0
    assert "Traceback" not in rest
    assert any(l.startswith("Players in pong1: Player1, Player2") for l in lines), lines
    assert not any("watcher" in l for l in lines), lines


def test_watch_skips_a_games_broken_data_and_watches_on(started):
    process, port, _ = started("-g", "pong1", *LOOPBACK)
    watcher = subprocess.Popen([sys.executable, "-u", str(ROOT / "nethelper.py"), "--watch",
                                "pong1", HOST, "-p", str(port)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    lines = []

    def read_until(text):
        while True:
            line = watcher.stdout.readline()
            assert line, lines
            lines.append(line.rstrip("\n"))
            if text in line:
                return
    try:
        read_until("Players in pong1: none yet")
        buggy, addr, _ = raw_join(port, "Buggy", "pong1")
        read_until("Players in pong1: Buggy")
        # The relay forwards DATA unread, so broken bytes reach the watcher.
        buggy.sendall(frame(nethelper.DATA, 255, addr, b"{not json"))
        buggy.sendall(data(255, addr, ("after", 1)))
        read_until("Buggy -> everyone: (not a list of messages)")
        read_until("Buggy -> everyone: after 1")
        buggy.close()
    finally:
        watcher.terminate()
        rest, _ = watcher.communicate(timeout=5)
    assert watcher.returncode == 0, lines + [rest]
    assert "Traceback" not in rest


def test_watch_an_unknown_group_names_the_groups(started):
    process, port, _ = started("-g", "pong1", "pong2", *LOOPBACK)
    status, output = run("--watch", "pong9", HOST, "-p", str(port))
    assert status == 1
    assert output.strip() == "The relay at 127.0.0.1 port {} has no group 'pong9'. Its " \
                             "groups: pong1, pong2.".format(port)


def test_a_relay_whose_udp_port_is_taken_still_serves_games_and_says_find_will_miss_it(caplog):
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((HOST, port))
        with caplog.at_level(logging.WARNING, logger="nethelper"):
            with nethelper.Relay(["pong_game"], host=HOST, port=port) as relay:
                join(relay.port, "Alice").disconnect()
        assert "--find will not see this relay: UDP port {} is not free".format(port) \
            in caplog.text


# ---------------------------------------------------------------------------
# play.py checks what listens on its port before trusting it
# ---------------------------------------------------------------------------

def play_py(port, *options, timeout=60):
    """`python play.py --port PORT OPTIONS` to the end: its output (it must not fail)."""
    result = subprocess.run([sys.executable, "-u", str(ROOT / "play.py"), "--port", str(port),
                             *options], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=timeout)
    assert result.returncode == 0 and "Traceback" not in result.stdout, result.stdout
    return result.stdout


def assert_played_on_a_relay_of_its_own(output):
    assert re.search(r"So this starts a relay of its own, on port \d+\.", output), output
    assert "Connected as host (Player 1)" in output and "Connected as peer (Player 2)" in output
    assert "full" not in output and "No relay" not in output, output


def test_play_py_does_not_trust_a_web_server_on_its_port_and_plays_on_another(web_server):
    output = play_py(web_server, "--frames", "240")
    assert "it is not a nethelper relay" in output, output
    assert_played_on_a_relay_of_its_own(output)


def test_play_py_with_a_full_group_on_its_port_says_so_and_plays_on_another(relay_process):
    port = relay_process.port
    players = [join(port, "Player1"), join(port, "Player2")]
    output = play_py(port, "--frames", "240")
    assert "Its groups: pong_game (2 players). Group pong_game has no room for two more." \
        in output, output
    assert_played_on_a_relay_of_its_own(output)
    for player in players:
        player.disconnect()


def test_play_py_uses_a_relay_that_is_already_running_with_its_group(relay_process):
    assert nethelper.check_relay("localhost", relay_process.port).code == nethelper.RELAY_OK
    output = play_py(relay_process.port, "--frames", "30")
    assert "Its groups: pong_game (0 players)." in output, output
    assert "The games join it, in group pong_game." in output, output
    assert "Starting Server" not in output and "of its own" not in output   # no second relay


def test_check_a_private_relay_counts_players_but_names_no_group():
    with nethelper.Relay(["secret"], host=HOST, port=0, private=True) as relay:
        alice = join(relay.port, "Alice", "secret")
        result = nethelper.check_relay(HOST, relay.port, samples=3)
        alice.disconnect()
    assert result.ok and len(result.round_trips) == 3
    assert "secret" not in result.message
    assert "  Groups: not listed (the relay is private); 1 player in all" in result.message


# ---------------------------------------------------------------------------
# The games in a classroom: groups, discovery, messages that are true
# ---------------------------------------------------------------------------

from test_pong_net import GAME, HARNESS, Game  # noqa: E402  (the game's own test harness)


def run_game(*args, frames, timeout=30):
    """`python pong_net.py ARGS` to the end, stopped after `frames` frames by
    pong_harness.py: (exit status, output lines)."""
    result = subprocess.run([sys.executable, "-u", HARNESS, "--frames", str(frames), GAME, *args],
                            cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=timeout)
    assert "Traceback" not in result.stdout, result.stdout
    return result.returncode, result.stdout.splitlines()


def test_two_pairs_play_at_once_each_in_its_own_group(started):
    process, port, _ = started("-g", "pong1", "pong2", "--max-peers", "2", *LOOPBACK)
    games = []
    try:
        for group in ("pong1", "pong2"):
            host = Game(port, "--group", group, "--bot", frames=400)
            assert host.wait_for_line("Connected as host (Player 1)"), host.output()
            peer = Game(port, "--group", group, "--bot", frames=300)
            assert peer.wait_for_line("Connected as peer (Player 2)"), peer.output()
            games += [host, peer]
        for game in games:
            assert game.wait_for_line("Game started"), game.output()
        status = nethelper.check_relay(HOST, port, samples=1).status
        assert status["groups"] == {"pong1": 2, "pong2": 2}
        assert all(game.finish() == 0 for game in games), [g.output() for g in games]
    finally:
        for game in games:
            game.kill()
    assert not any("full" in game.output() for game in games)


def test_the_window_title_shows_the_group(relay_process):
    import importlib
    import pygame
    import pong_net
    game = importlib.reload(pong_net)
    pygame.display.init()
    try:
        pygame.display.set_mode((80, 60))
        game.use_options(game.read_options([HOST, str(relay_process.port), "--group",
                                            "pong_game"]))
        assert wait_for(lambda: game.update() or game.match.me is not None)
        assert pygame.display.get_caption()[0] == "pong - pong_game - Player 1 (host)"
    finally:
        game.net.disconnect()
        pygame.display.quit()


def test_auto_finds_the_relay_and_says_which(relay_process):
    port = relay_process.port
    status, lines = run_game("auto", str(port), "--discover", HOST, frames=30)
    assert status == 0, lines
    assert 'Found relay "{}" at 127.0.0.1 port {}: nobody yet; joining group pong_game.'.format(
        nethelper.typable_name(socket.gethostname()), port) in lines, lines
    assert "Connected as host (Player 1)" in lines


def test_auto_with_no_relay_says_how_to_start_one_and_exits():
    port = free_port()
    status, lines = run_game("auto", str(port), "--discover", HOST, "--group", "pong7",
                             frames=30)
    assert status == 1
    assert any(line.startswith("No relay with group pong7 answered (UDP port {}). Start one "
                               "with: python nethelper.py -g pong7 -p {}".format(port, port))
               for line in lines), lines


def test_no_relay_advice_is_printed_once_with_the_port():
    port = free_port()
    status, lines = run_game(HOST, str(port), "--group", "pong4", frames=100)
    assert status == 1
    text = "\n".join(lines)
    assert text.count("python nethelper.py -g pong4 -p {}".format(port)) == 1, text
    assert "Start the relay first" not in text


def test_a_bad_host_name_is_not_told_to_start_the_relay():
    # An empty label fails inside Python: no name server is asked.
    status, lines = run_game("no..such..host", frames=100)
    assert status == 1
    text = "\n".join(lines)
    assert 'Cannot find a computer called "no..such..host". Check SERVER_IP.' in text, text
    assert "Start" not in text


def test_a_full_group_says_so_and_how_to_choose_another(started):
    process, port, _ = started("-g", "pong1", "--max-peers", "2", *LOOPBACK)
    a, b = join(port, "Player1", "pong1"), join(port, "Player2", "pong1")
    status, lines = run_game(HOST, str(port), "--group", "pong1", frames=100)
    a.disconnect(), b.disconnect()
    assert status == 1
    assert "Failed to connect. The group is full." in lines
    assert ("Two players are already in group pong1: wait for them to finish, or join another "
            "group with --group NAME.") in lines


def test_player2_tells_the_relay_stopping_from_the_host_leaving(started):
    process, port, _ = started("-g", "pong_game", *LOOPBACK)
    host = Game(port, "--bot", frames=900)
    peer = Game(port, "--bot", frames=900)
    try:
        assert peer.wait_for_line("Game started"), peer.output()
        stop_process(process)
        for game in (host, peer):
            assert game.wait_for_line("Lost the connection to the relay: The relay was "
                                      "stopped."), game.output()
        peer.wait_for_line("Taking over", timeout=1)            # give it the chance to err
    finally:
        host.kill(), peer.kill()
    for game in (host, peer):
        assert "host is disconnected" not in game.output() and "Taking over" not in \
            game.output(), game.output()


def test_play_py_plays_in_the_group_it_is_given(started):
    process, port, _ = started("-g", "pong1", "pong2", *LOOPBACK)
    result = subprocess.run([sys.executable, "-u", str(ROOT / "play.py"), "--port", str(port),
                             "--group", "pong2", "--frames", "300"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert result.returncode == 0, result.stdout
    assert "Connected as host (Player 1)" in result.stdout, result.stdout
    assert "Connected as peer (Player 2)" in result.stdout, result.stdout
    output = stop_process(process)
    assert re.search(r"joined +pong2: Player1 from", output), output
    assert re.search(r"joined +pong2: Player2 from", output), output
    assert "joined   pong1" not in output


def test_play_py_names_the_groups_of_a_relay_without_its_group_and_plays_on_another(started):
    process, port, _ = started("-g", "pong1", "--name", "minji-pc", *LOOPBACK)
    output = play_py(port, "--group", "pong9", "--frames", "240")
    assert 'A relay ("minji-pc") already runs on port {}. Its groups: pong1 (0 players). It ' \
           "has no group pong9.".format(port) in output, output
    assert_played_on_a_relay_of_its_own(output)


def test_a_bot_never_starts_a_game_for_a_person(relay_process):
    port = relay_process.port
    bot = Game(port, "--bot", frames=240)
    person = None
    try:
        assert bot.wait_for_line("Connected as host (Player 1)"), bot.output()
        person = Game(port, frames=180)
        assert person.finish() == 0, person.output()
        assert bot.finish() == 0, bot.output()
    finally:
        bot.kill()
        if person:
            person.kill()
    assert "Player2 is here. Let's play!" in bot.lines, bot.output()
    assert "Game started" not in bot.output() + person.output()


def test_two_bots_start_at_once_but_wait_on_the_winner_screen():
    """pong_net's own rule, frame by frame: bot_wants_to_start()."""
    import importlib
    import pong_net
    import pong_oop
    game = importlib.reload(pong_net)
    game.BOT = True
    assert not game.bot_wants_to_start()                # no word yet that the other is a bot
    game.hear_hello("abcd1234", None, True)
    assert game.match.opponent_is_bot and game.bot_wants_to_start()   # the first game: at once
    game.match.game_started = True
    assert not game.bot_wants_to_start()                # playing
    for _ in range(pong_oop.FINAL_SCORE):
        game.score.add(1)
    assert game.score.game_over
    waited = 0
    while not game.bot_wants_to_start():
        game.match.winner_frames = waited = waited + 1
        assert waited <= game.BOT_WINNER_FRAMES
    assert waited == game.BOT_WINNER_FRAMES             # 3 s of the winner screen first
    game.hear_hello("abcd1234", None, False)            # a person: never
    assert not game.bot_wants_to_start()
