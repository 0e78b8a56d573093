"""NetNode's limits, against relays that misbehave on purpose.

A scripted "relay" here is a real listening socket on loopback that admits
the node and then sends exactly the bytes a test chooses: a flood of DATA,
heartbeats and then silence, a warning, a goodbye, or nothing while it
never reads. The splitting of big sends is checked against the real Relay.
"""
import socket
import threading
import time

import pytest

import nethelper
from nethelper import NetNode
from conftest import HOST, join_pair, wait_for, both_selectors

FLOODER_ADDR, FRIEND_ADDR = 2, 3


class ScriptedRelay:
    """A one-connection relay on loopback: it reads the node's AUTH, admits
    it at address 1 next to "Flooder" (address 2) and "Friend" (3), waits
    for ``go`` (set by ``join()`` once the node is in), runs
    ``script(self, conn)``, then keeps the connection open, silent and
    unread, until ``close()``."""

    def __init__(self, script):
        self.script = script
        self.server = socket.create_server((HOST, 0))
        self.port = self.server.getsockname()[1]
        self.sent = 0                       # bytes the script has sent so far
        self.go = threading.Event()
        self.script_done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        conn, _ = self.server.accept()
        with conn:
            conn.settimeout(5)
            reader = nethelper.FrameReader()
            auth = None
            while auth is None:
                reader.feed(conn.recv(4096))
                auth = reader.next_frame()
            name, _ = nethelper.parse_auth(auth.payload)
            conn.sendall(nethelper.peers_frame(255, [(name, 1), ("Flooder", FLOODER_ADDR),
                                                        ("Friend", FRIEND_ADDR)]))
            try:
                if self.go.wait(5):
                    self.script(self, conn)
            except OSError:
                pass                        # the node went away: the test decides what that means
            self.script_done.set()
            self._stop.wait(10)

    def send(self, conn, data):
        for start in range(0, len(data), 65536):        # so that `sent` shows progress
            conn.sendall(data[start:start + 65536])
            self.sent += len(data[start:start + 65536])

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()


@pytest.fixture
def scripted():
    """Call it with a script to get a running ScriptedRelay; all are closed at the end."""
    relays = []

    def start(script):
        relays.append(ScriptedRelay(script))
        return relays[-1]
    yield start
    for relay in relays:
        relay.close()


def join(relay, **limits):
    """A NetNode with these limits, joined to the scripted relay, whose script then starts."""
    net = NetNode()
    for name, value in limits.items():
        setattr(net, name, value)
    assert net.connect(HOST, "Victim", "pong_game", port=relay.port, timeout=3), net.error
    relay.go.set()
    return net


def data(title, content, queue=True, sender=FLOODER_ADDR):
    return nethelper.data_frame(1, sender, [nethelper.encode_message(title, content, queue)])


def turn(net):
    net.process_send()
    net.process_recv()


# -- defect 8: a flood of DATA must not freeze the game or fill its memory ----

def numbered_frames(count):
    return b"".join(data("n", i) for i in range(count))


def test_one_process_recv_reads_at_most_its_byte_budget(scripted):
    blob = numbered_frames(100_000)             # about 4 MiB, more than loopback buffers hold
    relay = scripted(lambda relay, conn: relay.send(conn, blob))
    net = join(relay, recv_budget_bytes=64 * 1024, recv_budget_seconds=10, max_queued=10**6)
    assert wait_for(lambda: relay.sent >= 1024 * 1024)      # a backlog waits in the socket
    net.process_recv()
    assert 0 < net.available("Flooder", "n") <= 64 * 1024 // len(data("n", 0)) + 1
    # The rest comes in the next calls, in order, nothing lost.
    received = net.get_all_msgs("Flooder", "n")
    while len(received) < 100_000 and net.connected:
        net.process_recv()
        received += net.get_all_msgs("Flooder", "n") or []
    assert received == list(range(100_000))
    assert net.dropped_messages == 0


def test_one_process_recv_files_messages_for_at_most_its_time_budget(scripted):
    blob = numbered_frames(1000)
    relay = scripted(lambda relay, conn: relay.send(conn, blob))
    net = join(relay, recv_budget_seconds=0)   # so: one frame per call
    assert wait_for(lambda: relay.script_done.is_set())
    net.process_recv()
    assert net.available("Flooder", "n") == 1
    net.process_recv()
    assert net.get_all_msgs("Flooder", "n") == [0, 1]


def test_unread_messages_per_title_are_bounded_oldest_dropped_first(scripted):
    relay = scripted(lambda relay, conn: relay.send(conn, numbered_frames(1000)))
    net = join(relay, max_queued=100)
    assert wait_for(lambda: turn(net) or (net.get_all_msgs("Flooder", "n", clear=False)
                                          or [None])[-1] == 999, 5)
    assert net.get_all_msgs("Flooder", "n") == list(range(900, 1000))
    assert net.dropped_messages == 900
    assert net.connected


def test_titles_per_sender_are_bounded_and_a_flood_of_titles_spares_the_others(scripted):
    def new_titles(relay, conn):
        relay.send(conn, data("bar_pos", [20, 250], queue=False, sender=FRIEND_ADDR))
        relay.send(conn, data("first", 0))
        relay.send(conn, b"".join(data("t%d" % i, i) for i in range(5000)))
    relay = scripted(new_titles)
    net = join(relay, max_titles=50)
    assert wait_for(lambda: turn(net) or net.available("Flooder", "t4999"), 5)
    assert net.available("Flooder", "first") == 0               # the flooder's oldest titles went
    assert net.get_all_msgs("Flooder", "t4999") == [4999]       # its newest stayed
    assert net.dropped_messages == 5001 - 50
    assert net.get_msg("Friend", "bar_pos") == [20, 250]        # the other player lost nothing
    assert net.connected


def test_unread_messages_are_bounded_in_bytes_taken_from_the_biggest_sender(scripted):
    big = "x" * 1000

    def big_messages(relay, conn):
        relay.send(conn, data("score", "friend's point", sender=FRIEND_ADDR))
        relay.send(conn, b"".join(data("t%d" % i, big) for i in range(200)))
    relay = scripted(big_messages)
    net = join(relay, max_inbox_bytes=20_000)
    assert wait_for(lambda: turn(net) or net.available("Flooder", "t199"), 5)
    kept = [i for i in range(200) if net.available("Flooder", "t%d" % i)]
    assert 10 <= len(kept) <= 20 and kept == list(range(200 - len(kept), 200))
    assert net.dropped_messages == 200 - len(kept)
    assert net.get_msg("Friend", "score") == "friend's point"


def test_latest_wins_messages_are_replaced_not_counted_as_dropped(scripted):
    relay = scripted(lambda relay, conn: relay.send(
        conn, b"".join(data("bar_pos", [20, y], queue=False) for y in range(1000))))
    net = join(relay)
    assert wait_for(lambda: turn(net) or relay.script_done.is_set() and
                    net.get_msg("Flooder", "bar_pos", clear=False) == [20, 999], 5)
    assert net.available("Flooder", "bar_pos") == 1
    assert net.dropped_messages == 0


# -- defect 12: a relay that goes silent, warns, or says goodbye ------------------

def test_a_relay_that_sent_heartbeats_and_went_silent_is_reported_lost(scripted):
    def beat_then_fall_silent(relay, conn):
        for _ in range(10):                 # 0.5 s of heartbeats, longer than the timeout
            relay.send(conn, nethelper.encode_frame(nethelper.HEART, 1, 0, b"null"))
            time.sleep(0.05)
    relay = scripted(beat_then_fall_silent)
    net = join(relay, relay_silence_timeout=0.3)
    while not relay.script_done.is_set():
        turn(net)
        assert net.connected                # heartbeats keep it alive
        time.sleep(0.01)
    silent_since = time.monotonic()
    assert wait_for(lambda: turn(net) or not net.connected, 3)
    assert time.monotonic() - silent_since >= 0.2
    assert net.error_code == "lost"
    assert "has said nothing for 0.3 s" in net.error


def test_a_relay_that_never_sent_heartbeats_is_never_expected_to(scripted):
    relay = scripted(lambda relay, conn: None)     # an original relay: quiet while nobody talks
    net = join(relay, relay_silence_timeout=0.1)
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        turn(net)
        time.sleep(0.01)
    assert net.connected and net.error is None


def test_a_goodbye_from_the_relay_says_why_it_closed_us(scripted):
    sentence = "The relay is shutting down. Thanks for playing!"
    relay = scripted(lambda relay, conn: relay.send(conn, nethelper.sysm_frame(
        1, nethelper.SYSM_GOODBYE, nethelper.RELAY_STOPPING, sentence)) or conn.close())
    net = join(relay)
    assert wait_for(lambda: turn(net) or not net.connected, 3)
    assert net.error_code == "relay_stopping"
    assert net.error == sentence


def test_a_goodbye_behind_a_backlog_is_still_read(scripted):
    goodbye = nethelper.sysm_frame(1, nethelper.SYSM_GOODBYE, nethelper.OVER_QUOTA, "Too much.")
    relay = scripted(lambda relay, conn: relay.send(conn, numbered_frames(2000) + goodbye)
                     or conn.close())
    net = join(relay, recv_budget_seconds=0)              # one frame per call
    assert wait_for(lambda: turn(net) or not net.connected, 5, step=0)
    assert net.error_code == "over_quota" and net.error == "Too much."
    assert net.get_all_msgs("Flooder", "n") == list(range(2000))


def test_a_warning_from_the_relay_is_kept_for_the_game(scripted):
    sentence = "You send more than your share; slow down or you will be disconnected."
    relay = scripted(lambda relay, conn: relay.send(conn, nethelper.sysm_frame(
        1, nethelper.SYSM_WARNING, nethelper.OVER_QUOTA, sentence)))
    net = join(relay)
    assert net.warning is None
    assert wait_for(lambda: turn(net) or net.warning, 3) == sentence
    assert net.connected


def test_a_relay_that_stops_reading_is_reported_lost_not_buffered_forever(scripted):
    relay = scripted(lambda relay, conn: None)     # admits us, then never reads
    net = join(relay, max_unsent_bytes=512 * 1024, send_stall_timeout=0.5)
    chunk = "x" * 60_000

    def send_more():
        net.send_msg("Flooder", "big", chunk, queue=True)
        turn(net)
        return not net.connected
    assert wait_for(send_more, 10, step=0)
    assert net.error_code == "lost"
    assert "stopped taking what this node sends" in net.error


@both_selectors
def test_when_the_relay_takes_nothing_more_send_msg_says_no_and_why(scripted):
    """A relay slows a sender over its quota by not reading from it: TCP
    pushes back, and the game must hear it from send_msg, not lose messages."""
    relay = scripted(lambda relay, conn: None)     # admits us, then never reads
    net = join(relay, max_unsent_bytes=256 * 1024)
    chunk = "x" * 10_000
    accepted = 0
    while net.send_msg("Flooder", "big", chunk, queue=True):
        accepted += 1
        turn(net)
        assert accepted < 10_000, "send_msg never said no"
    assert net.connected and net.error is None
    assert "still wait to go" in net.send_error and "Send fewer" in net.send_error
    waiting = len(net._outgoing) + sum(len(m) for ms in net._outbox.values() for m in ms)
    assert 256 * 1024 < waiting <= 256 * 1024 + 10_100        # bounded: the limit and one more
    for _ in range(5):                                          # it stays no, and says why
        turn(net)
        assert net.send_msg("Flooder", "big", chunk, queue=True) is False
    assert net.send_msg("Nobody", "big", 1) is False and "Nobody" in net.send_error


# -- defects 9 and 10: frames within the one limit, both ways ---------------------

def collect(host, peer, title, count, limit=10):
    received = []
    deadline = time.monotonic() + limit
    while len(received) < count and time.monotonic() < deadline and peer.connected:
        host.process_send()
        peer.process_recv()
        received += peer.get_all_msgs("Player1", title) or []
    return received


@both_selectors
def test_two_big_messages_sent_at_once_go_in_separate_frames(relay):
    host, peer = join_pair(relay)
    first, second = "a" * 600_000, "b" * 600_000
    assert host.send_msg("Player2", "map", first, queue=True)
    assert host.send_msg("Player2", "map", second, queue=True)
    assert collect(host, peer, "map", 2) == [first, second]
    assert host.connected and peer.connected


def test_25000_small_messages_sent_at_once_all_arrive(relay):
    host, peer = join_pair(relay)
    for i in range(25_000):
        host.send_msg("Player2", "n", "message number %d" % i, queue=True)
    assert collect(host, peer, "n", 25_000) == ["message number %d" % i for i in range(25_000)]
    assert host.connected


def test_no_frame_sent_is_over_the_limit(scripted):
    frames, contents = [], []

    def record(relay, conn):
        reader = nethelper.FrameReader()
        while len(contents) < 100:
            reader.feed(conn.recv(65536))
            for frame in reader:
                if frame.type == nethelper.DATA:
                    frames.append(frame)
                    contents.extend(m[1] for m in nethelper.parse_messages(frame.payload))
    relay = scripted(record)
    net = join(relay, max_frame_size=1000)
    for i in range(100):
        net.send_msg("Flooder", "n", "%03d" % i + "x" * 90, queue=True)
    while not relay.script_done.is_set() and net.connected:
        net.process_send()
        time.sleep(0.001)
    assert len(frames) > 1 and max(len(frame.raw) for frame in frames) <= 1000
    assert contents == ["%03d" % i + "x" * 90 for i in range(100)]


def test_a_message_too_big_for_one_frame_is_refused_with_a_clear_error(relay):
    host, _ = join_pair(relay)
    limit = nethelper.DEFAULT_MAX_FRAME_SIZE
    with pytest.raises(ValueError, match="more than one frame can carry"):
        host.send_msg("Player2", "map", "x" * limit)
    fits = "x" * (limit - nethelper.HEADER_SIZE - 2 - len('{"title":"map","content":"","queue":false}'))
    assert host.send_msg("Player2", "map", fits)


def test_a_frame_of_the_largest_size_a_relay_may_send_is_received(scripted):
    limit = nethelper.DEFAULT_MAX_FRAME_SIZE
    overhead = len(data("map", ""))
    relay = scripted(lambda relay, conn: relay.send(conn, data("map", "x" * (limit - overhead))))
    net = join(relay)
    assert NetNode.max_frame_size == limit                  # one limit for relay and node
    assert wait_for(lambda: turn(net) or net.available("Flooder", "map"), 5)
    assert len(net.get_msg("Flooder", "map")) == limit - overhead
    assert net.connected
