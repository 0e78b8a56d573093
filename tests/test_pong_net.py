"""The network game end to end: a real relay and real pong_net.py processes, headless."""
import os
import re
import signal
import subprocess
import sys
import threading
import time

from conftest import HOST, ROOT, start_relay_process, stop_process, wait_for

GAME = str(ROOT / "pong_net.py")
HARNESS = str(ROOT / "pong_harness.py")


class Running:
    """A process, in a process group of its own; a thread collects the lines it prints."""

    def __init__(self, command, cwd=ROOT, env=None):
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)
        self.lines = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def read(self):
        return list(self.lines)

    def wait_for_line(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.read()):
                return True
            if self.process.poll() is not None:
                self._reader.join(timeout=2)
                return any(text in line for line in self.read())
            time.sleep(0.05)
        return False

    def finish(self, timeout=60):
        """Wait for the game to end by itself; return its exit code."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reader.join(timeout=5)
        return self.process.returncode

    def kill(self):
        """Stop it, and what it started: a one-file program (PyInstaller) runs
        the game in a child process, which a kill of the parent would leave."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass                # (the whole group has ended)
        self.process.wait()

    def output(self):
        return "\n".join(self.lines)

    def scores(self):
        return [line for line in self.lines if re.fullmatch(r"Score \d+-\d+", line)]


class Game(Running):
    """A pong_net.py process, run by pong_harness.py (which stops it after
    `frames` frames, and writes what its screen shows every frame to the file
    `record`)."""

    def __init__(self, port, *options, frames=None, record=None):
        command = [sys.executable, "-u", HARNESS]
        if frames:
            command += ["--frames", str(frames)]
        if record:
            command += ["--record", str(record)]
        super().__init__(command + [GAME, HOST, str(port), *options])


def test_host_peer_and_a_refused_third_play_a_real_game(relay_process):
    port = relay_process.port
    # The host's bot plays; Player 2 (a person's game, --autostart: it presses Space
    # itself, since a bot never starts a game for a person) keeps its bar still,
    # so points come quickly and the test sees the score travel.
    host = Game(port, "--bot", frames=900)
    peer = third = None
    try:
        assert host.wait_for_line("Connected as host (Player 1)"), host.output()
        peer = Game(port, "--autostart", frames=700)
        assert peer.wait_for_line("Connected as peer (Player 2)"), peer.output()
        assert host.wait_for_line("Player2 is here")

        started = time.monotonic()
        third = Game(port, frames=300)
        assert third.finish(timeout=20) == 1
        assert "Failed to connect. The group is full." in third.lines
        assert time.monotonic() - started < 15      # refused at once, not after a timeout

        assert peer.finish() == 0, peer.output()
        assert host.finish() == 0, host.output()
    finally:
        for game in (host, peer, third):
            if game:
                game.kill()
    for game in (host, peer, third):
        assert "Traceback" not in game.output(), game.output()
    assert "Game started" in host.lines and "Game started" in peer.lines
    # The peer stopped first (fewer frames, started later): the host went back to waiting.
    assert "Player 2 left. Waiting for a new opponent." in host.lines, host.output()
    # The peer saw the same points, in the same order, as the host decided them
    # (the host played on after the peer stopped, so it may have seen more).
    assert peer.scores(), host.output()
    assert host.scores()[:len(peer.scores())] == peer.scores()
    # Player 2's own guess of the ball stays close to the host's ball.
    drift = re.search(r"Ball drift: (\d+) corrections, median ([\d.]+) px, max ([\d.]+) px",
                      peer.output())
    assert drift, peer.output()
    corrections, median = int(drift.group(1)), float(drift.group(2))
    assert corrections > 300
    assert median <= 3.0


def test_player2_takes_over_when_the_host_goes(relay_process):
    port = relay_process.port
    host = Game(port, "--bot")
    peer = newcomer = None
    try:
        assert host.wait_for_line("Connected as host (Player 1)"), host.output()
        peer = Game(port, "--bot", frames=600)
        assert peer.wait_for_line("Game started"), peer.output()
        host.process.send_signal(signal.SIGKILL)           # the host vanishes
        assert peer.wait_for_line("The host is disconnected."), peer.output()
        assert peer.wait_for_line("Taking over as host (Player 1)."), peer.output()
        assert peer.wait_for_line("Connected as host (Player 1)"), peer.output()
        newcomer = Game(port, "--bot", frames=200)
        assert newcomer.wait_for_line("Connected as peer (Player 2)"), newcomer.output()
        assert newcomer.finish() == 0, newcomer.output()
        assert peer.finish() == 0, peer.output()
    finally:
        for game in (host, peer, newcomer):
            if game:
                game.kill()
    assert "Traceback" not in peer.output() + newcomer.output()
    assert peer.lines[-1].startswith("Stopped after 600 frames as Player1")


def test_no_relay_gives_a_plain_explanation_and_a_clean_exit():
    import socket
    probe = socket.socket()
    probe.bind((HOST, 0))
    free_port = probe.getsockname()[1]
    probe.close()
    game = Game(free_port, frames=100)
    assert game.finish(timeout=20) == 1
    output = game.output()
    assert "Traceback" not in output
    assert "No relay is running at 127.0.0.1:%d" % free_port in output
    assert "python nethelper.py -g pong_game" in output


def test_games_survive_the_relay_stopping_and_rejoin_when_it_returns():
    relay, port, _ = start_relay_process("-g", "pong_game", "-p", "0", "-i", HOST)
    host = Game(port, "--bot", frames=700)
    peer = None
    try:
        assert host.wait_for_line("Connected as host (Player 1)"), host.output()
        peer = Game(port, "--bot", frames=600)
        assert peer.wait_for_line("Game started"), peer.output()
        stop_process(relay)
        assert host.wait_for_line("Lost the connection to the relay"), host.output()
        assert peer.wait_for_line("Lost the connection to the relay"), peer.output()
        relay, _, _ = start_relay_process("-g", "pong_game", "-p", str(port), "-i", HOST)
        # Both come back by themselves, one as host and one as Player 2.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            joined = [line for game in (host, peer) for line in game.read()
                      if line.startswith("Connected as")]
            if len(joined) >= 4:
                break
            time.sleep(0.1)
        assert len(joined) >= 4, host.output() + "\n---\n" + peer.output()
        assert peer.finish() == 0 and host.finish() == 0
    finally:
        for game in (host, peer):
            if game:
                game.kill()
        stop_process(relay)
    assert "Traceback" not in host.output() + peer.output()


def test_play_py_starts_a_relay_and_two_games_and_cleans_up():
    import socket
    probe = socket.socket()
    probe.bind((HOST, 0))
    free_port = probe.getsockname()[1]
    probe.close()
    result = subprocess.run([sys.executable, "-u", str(ROOT / "play.py"), "--port", str(free_port),
                             "--frames", "150", "--bot"], cwd=ROOT, capture_output=True,
                            text=True, timeout=90)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Server listening" in output
    assert "Connected as host (Player 1)" in output
    assert "Connected as peer (Player 2)" in output
    assert "Traceback" not in output
    with socket.socket() as check:                      # the relay is gone again
        assert check.connect_ex((HOST, free_port)) != 0


# ---- malformed messages, joining that never blocks, the score after a relay restart ----

import json  # noqa: E402
import math  # noqa: E402
import socket  # noqa: E402

from nethelper import NetNode  # noqa: E402

NAN, INF = float("nan"), float("inf")
BAD_BAR_POS = ["250", None, NAN, INF, -INF, 10 ** 400, 1e308, [20], [20, 250, 3, 4],
               ["x", 250], [20, "250"], [20, NAN], [20, INF], [20, -9999], [20, 99999],
               {"y": 250}, [20, 250, "7"]]
BAD_BALL_POS = [None, "x", [400, 300], {}, {"center": [400, 300]}, {"vel": [5, 5]},
                {"center": [NAN, 300], "vel": [5, 5]}, {"center": [400, 300], "vel": [INF, 5]},
                {"center": [400, 1e9], "vel": [5, 5]}, {"center": [400], "vel": [5, 5]},
                {"center": [400, 300], "vel": [5, 5], "frame": "9"},
                {"center": [400, 300], "vel": [5, 5], "frame": 9, "score": "b3"},
                {"center": [400, 300], "vel": [5, 5], "frame": 9, "score": [99, 0]}]
BAD_POINTS = ["b3", 3, None, "B1", ["b1"], "b1 "]


class Hostile:
    """A raw NetNode that plays the other side with malformed messages."""

    def __init__(self, port, name, other):
        self.node = NetNode()
        assert self.node.connect(HOST, name, "pong_game", port=port, timeout=5), self.node.error
        self.other = other
        self.stamp = 0
        self.received = {"ball_pos": [], "bar_pos": []}

    def wait_for_other(self, timeout=20):
        assert wait_for(lambda: self._pump() or self.other in self.node.get_peers(), timeout)

    def _pump(self):
        self.node.process_send()
        self.node.process_recv()
        for title, box in self.received.items():
            box.extend(self.node.get_all_msgs(self.other, title) or [])

    def send(self, title, content, queue=False):
        """Send one message, and return once the game has read it: the game
        echoes our ping stamp in the frame in which it reads our messages."""
        self.stamp += 1
        # By hand: send_msg() rightly refuses NaN and infinity, which a
        # hostile program can still put on the wire (Python's json reads them).
        raw = json.dumps({"title": title, "content": content, "queue": queue}).encode()
        self.node._outbox.setdefault(self.node._peers[self.other], []).append(raw)
        self.node.send_msg(self.other, "ping", {"t": self.stamp, "echo": None, "held": 0})

        def echoed():
            self._pump()
            ping = self.node.get_msg(self.other, "ping", clear=False)
            return ping is not None and ping.get("echo") == self.stamp
        assert wait_for(echoed, timeout=10), "the game stopped answering"

    def stay_until_it_ends(self, game, timeout=30):
        """Keep talking to the relay (heartbeats) until the game stops."""
        wait_for(lambda: self._pump() or game.process.poll() is not None, timeout)

    def close(self):
        self.node.disconnect()


def bad_counts(game):
    line = next((l for l in game.lines if l.startswith("Ignored bad messages:")), "")
    return dict((name, int(count)) for name, count in
                (item.split() for item in line.split(":", 1)[1].split(","))) if line else {}


def test_a_hostile_player2_cannot_crash_or_move_the_host(relay_process):
    host = Game(relay_process.port, "--bot", frames=300)
    hostile = None
    try:
        assert host.wait_for_line("Connected as host (Player 1)"), host.output()
        hostile = Hostile(relay_process.port, "Player2", "Player1")
        hostile.wait_for_other()
        for content in BAD_BAR_POS:
            hostile.send("bar_pos", content)
        for content in [None, "hit", {"frame": "1"}, {"frame": 5, "bar": NAN, "center": [1, 1],
                                                      "vel": [1, 1]}]:
            hostile.send("hit", content, queue=True)
        # A well-formed claim of an impossible save: refused, not obeyed.
        hostile.send("hit", {"frame": 3, "bar": 0, "center": [700, 50], "vel": [-12, 12]},
                     queue=True)
        for content in ["yes", 1, None]:
            hostile.send("game_start", content, queue=True)
        for content in [{"id": 5}, "me", {"id": "x" * 100}]:
            hostile.send("hello", content, queue=True)
        hostile.stay_until_it_ends(host)
        assert host.finish(timeout=30) == 0, host.output()
    finally:
        host.kill()
        if hostile:
            hostile.close()
    assert "Traceback" not in host.output(), host.output()
    # (a latest-wins None cannot be told from "no message": ignored, not counted)
    assert bad_counts(host) == {"bar_pos": len(BAD_BAR_POS) - 1, "hit": 4, "game_start": 3,
                                "hello": 3}, host.output()
    assert "Refused hits:" in host.output()
    # Everything the host sent stayed on the court.
    assert len(hostile.received["ball_pos"]) > 20
    for state in hostile.received["ball_pos"]:
        x, y = state["center"]
        assert math.isfinite(x) and 0 <= y <= 600, state
    for _, y, *frame in hostile.received["bar_pos"]:
        assert 0 <= y <= 500


def test_a_hostile_host_cannot_crash_or_move_player2(relay_process, tmp_path):
    hostile = Hostile(relay_process.port, "Player1", "Player2")
    record = tmp_path / "peer.jsonl"
    peer = Game(relay_process.port, frames=300, record=record)
    try:
        hostile.wait_for_other()
        for content in BAD_BALL_POS:
            hostile.send("ball_pos", content)
        for content in BAD_BAR_POS:
            hostile.send("bar_pos", content)
        for content in BAD_POINTS:
            hostile.send("score", content, queue=True)
        for content in [{"score": [1, 99]}, {"score": "b3"}, 7]:
            hostile.send("resume", content, queue=True)
        hostile.stay_until_it_ends(peer)
        assert peer.finish(timeout=30) == 0, peer.output()
    finally:
        peer.kill()
        hostile.close()
    assert "Traceback" not in peer.output(), peer.output()
    assert bad_counts(peer) == {"ball_pos": len(BAD_BALL_POS) - 1, "bar_pos": len(BAD_BAR_POS) - 1,
                                "score": len(BAD_POINTS), "resume": 3}, peer.output()
    assert peer.lines[-1] == "Stopped after 300 frames as Player2, score 0-0"   # no "b3" point
    shown = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(shown) >= 300
    for frame in shown:
        x, y = frame["ball"]
        assert 0 <= x <= 800 and 0 <= y <= 600, frame
        assert 0 <= frame["bar1"] <= 500 and 0 <= frame["bar2"] <= 500, frame


def test_frames_keep_coming_while_the_relay_address_does_not_answer():
    # A listener whose queue of connections waiting to be accepted is full:
    # it answers no more connection attempts, like a computer that is off.
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex((HOST, port))
        fillers.append(filler)
    try:
        started = time.monotonic()
        game = Game(port, frames=60)             # 1 s of frames; joining gives up after 3 s
        assert game.finish(timeout=20) == 0, game.output()
        assert game.lines[-1] == "Stopped after 60 frames as None, score 0-0", game.output()
        assert time.monotonic() - started < 15
    finally:
        for sock in fillers + [listener]:
            sock.close()


def test_the_score_survives_a_relay_restart():
    relay, port, _ = start_relay_process("-g", "pong_game", "-p", "0", "-i", HOST)
    host = Game(port, "--bot")
    peer = None
    try:
        assert host.wait_for_line("Connected as host (Player 1)"), host.output()
        peer = Game(port, "--autostart")                # stands still: points come quickly
        assert host.wait_for_line("Score 1-0", timeout=40), host.output()
        assert peer.wait_for_line("Score 1-0"), peer.output()
        stop_process(relay)
        assert host.wait_for_line("Lost the connection to the relay"), host.output()
        assert peer.wait_for_line("Lost the connection to the relay"), peer.output()
        before = host.scores()[-1]      # 1-0, or more if a point came meanwhile
        relay, _, _ = start_relay_process("-g", "pong_game", "-p", str(port), "-i", HOST)
        resumed = "Game resumed at %s" % before.split()[1]
        assert host.wait_for_line(resumed), host.output()
        assert peer.wait_for_line(resumed), peer.output()
        # Play goes on from there: the next point makes the score one more, not 1-0.
        b1, b2 = map(int, before.split()[1].split("-"))
        assert host.wait_for_line("Score %d-%d" % (b1 + 1, b2), timeout=40), host.output()
        assert peer.wait_for_line("Score %d-%d" % (b1 + 1, b2)), peer.output()
    finally:
        for game in (host, peer):
            if game:
                game.kill()
        stop_process(relay)
    assert "Traceback" not in host.output() + peer.output()
    after = host.lines[host.lines.index(resumed):]
    assert "Game started" not in after and "Score 1-0" not in after


def test_the_latency_harness_plays_and_reports_a_short_match(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "lag" / "match.py"), "--seconds", "4",
         "--out", str(tmp_path), "30:10"], cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    row = [line for line in result.stdout.splitlines() if line.startswith("| 30±10 ms")]
    assert row, result.stdout
    meta = json.loads((tmp_path / "30_10" / "meta.json").read_text())
    assert meta["delay_ms"] == 30 and meta["load"]
    peer = [json.loads(l) for l in (tmp_path / "30_10" / "peer.jsonl").read_text().splitlines()]
    assert any(frame["ping"] and 50 < frame["ping"] < 200 for frame in peer)
