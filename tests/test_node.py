"""NetNode against a real relay over loopback: joining, messaging, leaving."""
import threading
import time

import pytest

import nethelper
from nethelper import RELAY_STOPPING, TIMEOUT, NetNode, Relay
from conftest import HOST, free_port, join, join_pair, wait_for, both_selectors


def pump(*nodes):
    for node in nodes:
        node.process_send()
    time.sleep(0.02)
    for node in nodes:
        node.process_recv()


def receive(node, sender, title, timeout=3):
    """Wait until a `title` message from `sender` is available, and return it."""
    def arrived():
        node.process_send()
        node.process_recv()
        return node.available(sender, title)
    assert wait_for(arrived, timeout), "no {!r} from {}".format(title, sender)
    return node.get_msg(sender, title)


def deliver_backlog(host, peer, title, count, limit=30):
    """Keep both nodes turning, with peer reading its `title` messages as a game
    would, until `count` have come (or `limit` s pass). Returns them."""
    received = []
    deadline = time.monotonic() + limit
    while len(received) < count and time.monotonic() < deadline:
        host.process_send()
        peer.process_send()         # its heartbeats: on a busy machine this takes over 5 s
        peer.process_recv()
        arrived = peer.get_all_msgs("Player1", title)
        if arrived:
            received += arrived
        else:
            time.sleep(0.002)
    return received




@pytest.fixture
def unanswering_port():
    """A port on loopback where nothing answers a new connection, like a
    computer whose firewall drops it: the listener's one-place accept queue
    is already taken, so the kernel ignores further connection requests."""
    listener = nethelper.socket.socket()
    listener.bind((HOST, 0))
    listener.listen(0)
    filler = nethelper.socket.create_connection(listener.getsockname(), timeout=2)
    yield listener.getsockname()[1]
    filler.close()
    listener.close()


def keep_turning(net):
    net.process_send()
    net.process_recv()


# -- joining ----------------------------------------------------------------

@both_selectors
def test_the_textbook_connect_flow_host_peer_and_a_refused_third(relay):
    """Try "Player1", then "Player2", as the book's game does."""
    players = []
    for _ in range(3):
        net = NetNode()
        started = time.monotonic()
        if net.connect(HOST, "Player1", "pong_game", port=relay.port):
            role = "host"
        elif net.connect(HOST, "Player2", "pong_game", port=relay.port):
            role = "peer"
        else:
            role = "refused"
        players.append((net, role, time.monotonic() - started))
    assert [role for _, role, _ in players] == ["host", "peer", "refused"]
    third = players[2][0]
    assert third.error_code == "name_taken"
    assert "already taken" in third.error
    # Refusals are answered at once, not after the 5 s timeout.
    assert all(elapsed < 2 for _, _, elapsed in players)
    assert players[0][0].get_peers() == ["Player1"]
    host = players[0][0]
    assert wait_for(lambda: host.process_recv() or host.get_peers() == ["Player1", "Player2"])


@both_selectors
def test_connect_says_why_when_no_relay_listens():
    net = NetNode()
    started = time.monotonic()
    assert net.connect(HOST, "Player1", "pong_game", port=free_port()) is False
    assert time.monotonic() - started < 2
    assert net.error_code == "no_relay"
    assert "No relay is running" in net.error and "nethelper.py -g pong_game" in net.error
    assert not net.connected
    net.process_recv()           # still safe to call every frame
    net.process_send()
    assert net.send_msg("ALL", "x", 1) is False


def test_unknown_group_is_refused_with_a_reason(relay):
    net = NetNode()
    assert net.connect(HOST, "Player1", "no_such_game", port=relay.port) is False
    assert net.error_code == "unknown_group"
    assert "no_such_game" in net.error


def test_relay_chooses_a_name_when_asked(relay):
    first, second = NetNode(), NetNode()
    assert first.connect(HOST, "", "chat", port=relay.port)
    assert second.connect(HOST, "", "chat", port=relay.port)
    assert first.get_name() and second.get_name()
    assert first.get_name() != second.get_name()
    assert second.get_peers() == [first.get_name(), second.get_name()]


def test_name_all_is_refused(relay):
    net = NetNode()
    assert net.connect(HOST, "ALL", "pong_game", port=relay.port) is False
    assert net.error_code == "bad_request"


@both_selectors
def test_wait_false_returns_at_once_and_the_answer_comes_through_process_recv(relay):
    host = join(relay.port, "Player1")
    net = NetNode()
    assert net.connect(HOST, "Player1", "pong_game", port=relay.port, wait=False) is True
    assert not net.connected
    assert wait_for(lambda: net.process_recv() or net.error_code, 3) == "name_taken"

    other = NetNode()
    assert other.connect(HOST, "Player2", "pong_game", port=relay.port, wait=False) is True
    assert wait_for(lambda: other.process_recv() or other.connected, 3)
    assert host.connected


@both_selectors
def test_connect_without_wait_returns_at_once_when_nothing_answers(unanswering_port):
    net = NetNode()
    started = time.monotonic()
    assert net.connect(HOST, "Player1", "pong_game", port=unanswering_port,
                       wait=False, timeout=0.5) is True
    assert time.monotonic() - started < 0.25        # the game's frame goes on
    assert net.connecting and not net.connected and net.error is None
    assert wait_for(lambda: keep_turning(net) or net.error_code, 3) == "timeout"
    assert "No answer from" in net.error and "firewall" in net.error
    assert not net.connecting and not net.connected


def test_connect_with_wait_gives_up_after_the_timeout_when_nothing_answers(unanswering_port):
    net = NetNode()
    started = time.monotonic()
    assert net.connect(HOST, "Player1", "pong_game", port=unanswering_port, timeout=0.3) is False
    assert 0.3 <= time.monotonic() - started < 2
    assert net.error_code == "timeout" and not net.connecting


def test_connect_without_wait_reports_no_relay_through_process_recv():
    net = NetNode()
    assert net.connect(HOST, "Player1", "pong_game", port=free_port(), wait=False) is True
    assert wait_for(lambda: net.process_recv() or net.error_code, 3) == "no_relay"
    assert "No relay is running" in net.error and not net.connecting


def test_connecting_is_true_until_the_relay_has_answered(relay):
    net = NetNode()
    assert net.connect("localhost", "Player1", "pong_game", port=relay.port, wait=False)
    assert net.connecting and not net.connected
    assert net.send_msg("ALL", "early", 1) is False         # not a member yet
    assert wait_for(lambda: keep_turning(net) or net.connected, 3)
    assert not net.connecting and net.get_peers() == ["Player1"]


def test_a_relay_that_accepts_but_never_answers_the_join_times_out():
    listener = nethelper.socket.create_server((HOST, 0))    # the kernel accepts; nobody answers
    try:
        net = NetNode()
        assert net.connect(HOST, "Player1", "pong_game", port=listener.getsockname()[1],
                           timeout=0.3) is False
        assert net.error_code == "timeout"
        assert "did not answer the request to join" in net.error
    finally:
        listener.close()


def test_disconnect_gives_up_an_attempt_under_way(unanswering_port):
    net = NetNode()
    assert net.connect(HOST, "Player1", "pong_game", port=unanswering_port, wait=False)
    net.disconnect()
    assert not net.connecting and not net.connected and net.error is None
    keep_turning(net)
    assert net.error is None


def test_a_host_name_that_cannot_exist_is_a_bad_address():
    # Longer than DNS allows, so it fails without asking any name server.
    net = NetNode()
    assert net.connect("x" * 300, "Player1", "pong_game") is False
    assert net.error_code == "bad_address" and "Check SERVER_IP" in net.error
    other = NetNode()
    assert other.connect("x" * 300, "Player1", "pong_game", wait=False) is True
    assert wait_for(lambda: keep_turning(other) or other.error_code, 3) == "bad_address"
    assert not other.connecting


def test_a_slow_name_lookup_does_not_hold_up_connect_without_wait(relay, monkeypatch):
    """Name servers can take seconds. This test cannot ask a real one, so a
    name server that answers only when told stands in for it."""
    real_getaddrinfo = nethelper.socket.getaddrinfo
    answer = threading.Event()

    def slow_getaddrinfo(host, *args, **kwargs):
        if host != "relay-pc" or kwargs.get("flags"):
            return real_getaddrinfo(host, *args, **kwargs)
        answer.wait(5)
        return real_getaddrinfo(HOST, *args, **kwargs)
    monkeypatch.setattr(nethelper.socket, "getaddrinfo", slow_getaddrinfo)
    net = NetNode()
    started = time.monotonic()
    assert net.connect("relay-pc", "Player1", "pong_game", port=relay.port, wait=False)
    assert time.monotonic() - started < 0.25
    for _ in range(3):
        keep_turning(net)
        assert net.connecting and not net.connected
    answer.set()
    assert wait_for(lambda: keep_turning(net) or net.connected, 3)


def test_the_same_node_can_connect_again_after_leaving(relay):
    net = join(relay.port, "Player1")
    net.disconnect()
    assert not net.connected and net.get_peers() == []
    assert net.connect(HOST, "Player1", "pong_game", port=relay.port)
    assert net.get_peers() == ["Player1"]


# -- messages ---------------------------------------------------------------

@both_selectors
def test_latest_wins_unless_queued(relay):
    host, peer = join_pair(relay)
    for y in (10, 20, 30):
        assert host.send_msg("Player2", "bar_pos", [20, y])
        assert host.send_msg("Player2", "score", "b%d" % (y // 10), queue=True)
    host.process_send()
    assert receive(peer, "Player1", "bar_pos") == [20, 30]
    assert peer.get_msg("Player1", "bar_pos") is None          # only the latest was kept
    assert peer.available("Player1", "score") == 3
    assert peer.get_all_msgs("Player1", "score") == ["b1", "b2", "b3"]
    assert peer.get_all_msgs("Player1", "score") is None


def test_clear_false_leaves_messages_unread(relay):
    host, peer = join_pair(relay)
    host.send_msg("Player2", "ball_pos", {"center": [400.5, 300], "vel": [5, -3]})
    host.process_send()
    assert receive(peer, "Player1", "ball_pos") == {"center": [400.5, 300], "vel": [5, -3]}
    host.send_msg("Player2", "ball_pos", {"center": [1, 2], "vel": [3, 4]})
    host.process_send()
    wait_for(lambda: peer.process_recv() or peer.available("Player1", "ball_pos"))
    assert peer.get_msg("Player1", "ball_pos", clear=False) == {"center": [1, 2], "vel": [3, 4]}
    assert peer.available("Player1", "ball_pos") == 1
    assert peer.get_all_msgs("Player1", "ball_pos", clear=False) == [{"center": [1, 2], "vel": [3, 4]}]
    assert peer.available("Player1", "ball_pos") == 1


def test_all_reaches_everyone_but_the_sender(relay):
    nodes = [join(relay.port, "N%d" % i, "chat") for i in range(4)]
    pump(*nodes)
    assert nodes[0].send_msg("ALL", "hello", "from N0")
    nodes[0].process_send()
    for node in nodes[1:]:
        assert receive(node, "N0", "hello") == "from N0"
    pump(*nodes)
    assert nodes[0].available("N0", "hello") == 0


def test_send_msg_to_an_unknown_name_returns_false(relay):
    host = join(relay.port, "Player1")
    assert host.send_msg("Nobody", "x", 1) is False


def test_groups_are_separate(relay):
    game, chat = join(relay.port, "Player1"), join(relay.port, "Player2", "chat")
    other = join(relay.port, "Player2")
    game.process_recv()
    game.send_msg("ALL", "secret", 42)
    game.process_send()
    assert receive(other, "Player1", "secret") == 42
    pump(chat)
    assert chat.available("Player1", "secret") == 0
    assert chat.get_peers() == ["Player2"]


def test_content_json_cannot_carry_raises_and_does_not_poison_later_sends(relay):
    host, peer = join_pair(relay)
    with pytest.raises(TypeError, match="cannot send 'bad'"):
        host.send_msg("Player2", "bad", {"a": object()})
    with pytest.raises(ValueError):
        host.send_msg("Player2", "bad", float("inf"))
    with pytest.raises(TypeError):
        host.send_msg("Player2", ("not", "a", "string"), 1)
    assert host.send_msg("Player2", "good", (1, 2))
    host.process_send()
    assert receive(peer, "Player1", "good") == [1, 2]              # tuples arrive as lists


def test_content_is_copied_when_sent(relay):
    host, peer = join_pair(relay)
    position = [1, 2]
    host.send_msg("Player2", "pos", position)
    position[0] = 99
    host.process_send()
    assert receive(peer, "Player1", "pos") == [1, 2]


def test_a_backlog_of_100000_messages_all_arrive_in_order(relay):
    host, peer = join_pair(relay)
    for i in range(100_000):
        host.send_msg("Player2", "n", i, queue=True)
        if i % 1000 == 999:          # one frame per message would take long to build
            host.process_send()
            peer.process_send()      # its heartbeats, as a game would send them
    assert deliver_backlog(host, peer, "n", 100_000) == list(range(100_000))
    assert peer.dropped_messages == 0


def test_one_hundred_thousand_single_message_frames_waiting_are_processed(relay):
    host, peer = join_pair(relay)
    one = nethelper.encode_message("tick", 1, True)
    burst = nethelper.data_frame(peer._peers["Player2"], host._peers["Player1"], [one]) * 100_000
    host._outgoing += burst          # as if 100,000 frames had been sent one by one
    assert len(deliver_backlog(host, peer, "tick", 100_000)) == 100_000
    assert peer.dropped_messages == 0
    assert peer.connected and host.connected


# -- leaving and losing -----------------------------------------------------

def test_the_others_hear_when_a_node_leaves(relay):
    host, peer = join_pair(relay)
    assert host.get_peers() == ["Player1", "Player2"]
    peer.disconnect()
    assert wait_for(lambda: host.process_recv() or host.get_peers() == ["Player1"])


@both_selectors
def test_a_lost_relay_marks_the_node_disconnected_without_raising():
    relay = Relay(["pong_game"], host=HOST, port=0).run_in_background()
    host, peer = join_pair(relay)
    host.send_msg("Player2", "kept", "unread")
    host.process_send()
    assert wait_for(lambda: peer.process_recv() or peer.available("Player1", "kept"))
    relay.stop()
    assert wait_for(lambda: peer.process_recv() or peer.process_send() or not peer.connected)
    assert peer.error_code == RELAY_STOPPING        # the relay said goodbye before closing
    assert "stopped" in peer.error
    assert peer.get_peers() == []
    assert peer.send_msg("Player1", "x", 1) is False
    assert peer.get_msg("Player1", "kept") == "unread"             # nothing already received is lost
    for _ in range(3):                                              # a game keeps calling these
        peer.process_send()
        peer.process_recv()


@both_selectors
def test_heartbeats_keep_an_idle_node_in_its_group():
    with Relay(["pong_game"], host=HOST, port=0, liveness_timeout=0.5) as relay:
        host, idle = join(relay.port, "Player1"), join(relay.port, "Player2")
        host.heartbeat_interval = idle.heartbeat_interval = 0.1
        silent = join(relay.port, "Silent")         # joined last, never calls process_send

        def turn():
            for node in (idle, host):          # idle sends nothing but heartbeats
                node.process_send()
                node.process_recv()
            return host.get_peers() == ["Player1", "Player2"]
        assert wait_for(turn, 5, step=0.05)     # "Silent" timed out...
        assert idle.connected                   # ...while the older, idle one stayed
        assert relay.members("pong_game") == ["Player1", "Player2"]
        assert wait_for(lambda: silent.process_recv() or not silent.connected, 2)
        assert silent.error_code == TIMEOUT         # the relay's goodbye said why


def test_a_relay_stops_when_asked_right_after_starting():
    for _ in range(20):
        relay = Relay(["pong_game"], host=HOST, port=0).run_in_background()
        thread = relay._thread
        relay.stop()
        assert not thread.is_alive()


@pytest.mark.parametrize("port", [0, -1, 70000])
def test_a_port_out_of_range_is_named_as_such(port):
    net = NetNode()
    assert net.connect(HOST, "Player1", "pong_game", port=port, wait=False) is False
    assert net.error_code == nethelper.BAD_ADDRESS
    assert "%d is not a port number" % port in net.error


# -- for people writing their own games ----------------------------------------------

@both_selectors
def test_send_msg_to_the_other_player_right_after_both_connects_arrives(relay):
    host, peer = join(relay.port, "Player1"), join(relay.port, "Player2")
    # No process_recv() yet: the host has not read that Player2 came.
    assert host.send_msg("Player2", "hello", "from the host", queue=True), host.send_error
    assert peer.send_msg("Player1", "hello", "from the peer", queue=True), peer.send_error
    host.process_send(), peer.process_send()
    assert receive(peer, "Player1", "hello") == "from the host"
    assert receive(host, "Player2", "hello") == "from the peer"


@both_selectors
def test_joined_and_left_name_who_came_and_went_since_the_last_call(relay):
    first = join(relay.port, "A", "chat")
    assert first.joined() == [] and first.left() == []
    second = join(relay.port, "B", "chat")
    assert second.joined() == ["A"]                 # who was there already
    third = join(relay.port, "C", "chat")
    second.disconnect()
    assert wait_for(lambda: keep_turning(first) or first.get_peers() == ["A", "C"])
    assert first.joined() == ["B", "C"] and first.left() == ["B"]
    assert first.joined() == [] and first.left() == []
    assert third.joined() == ["A", "B"]


@both_selectors
def test_ping_is_the_round_trip_to_the_relay_in_ms(relay):
    net = NetNode()
    net.ping_interval = 0.05
    assert net.connect(HOST, "Player1", "pong_game", port=relay.port)
    assert net.ping is None                         # not measured yet
    assert wait_for(lambda: keep_turning(net) or net.ping is not None)
    assert 0 < net.ping < 1000
    net.disconnect()
    assert net.ping is None


def test_integer_dict_keys_arrive_as_strings_and_your_own_name_reaches_you(relay):
    host, peer = join_pair(relay)
    assert host.send_msg("Player2", "scores", {1: "ten", 2: "five"})
    host.process_send()
    assert receive(peer, "Player1", "scores") == {"1": "ten", "2": "five"}
    assert host.send_msg("Player1", "note", "to myself")
    host.process_send()
    assert receive(host, "Player1", "note") == "to myself"


def test_the_relay_answers_a_ping_with_the_same_number_and_nothing_else(relay):
    from conftest import frame, js, raw_join, read_until
    sock, addr, _ = raw_join(relay.port, "Pinger")
    try:
        for data in ("a string", [1], None, True):      # only an integer is echoed
            sock.sendall(frame(nethelper.REQ, 0, addr, js({"type": 3, "data": data})))
        sock.sendall(frame(nethelper.REQ, 0, addr, js({"type": 3, "data": 7})))
        pong = read_until(sock, lambda m: m.type == nethelper.SYSM)
        assert (pong.dest, pong.sender, pong.body) == (addr, 0, {"type": 6, "msg": "pong",
                                                                 "data": 7})
    finally:
        sock.close()
