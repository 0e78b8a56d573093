"""The network game end to end: a real relay and real pong_net.py processes, headless."""
import re
import signal
import subprocess
import sys
import threading
import time

from conftest import HOST, ROOT, start_relay_process, stop_process

GAME = str(ROOT / "pong_net.py")


class Game:
    """A pong_net.py process; a thread collects the lines it prints."""

    def __init__(self, port, *options):
        self.process = subprocess.Popen(
            [sys.executable, "-u", GAME, HOST, str(port), *options], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        return self.process.returncode

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def output(self):
        return "\n".join(self.lines)

    def scores(self):
        return [line for line in self.lines if re.fullmatch(r"Score \d+-\d+", line)]


def test_host_peer_and_a_refused_third_play_a_real_game(relay_process):
    port = relay_process.port
    # The host's bot plays (and presses Space); Player 2's bar stands still,
    # so points come quickly and the test sees the score travel.
    host = Game(port, "--bot", "--frames", "900")
    peer = third = None
    try:
        assert host.wait_for_line("Connected as host (Player 1)"), host.output()
        peer = Game(port, "--frames", "700")
        assert peer.wait_for_line("Connected as peer (Player 2)"), peer.output()
        assert host.wait_for_line("Player2 is here")

        started = time.monotonic()
        third = Game(port, "--frames", "600")
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
        peer = Game(port, "--bot", "--frames", "600")
        assert peer.wait_for_line("Game started"), peer.output()
        host.process.send_signal(signal.SIGKILL)           # the host vanishes
        assert peer.wait_for_line("The host left. Taking over as host (Player 1)."), peer.output()
        assert peer.wait_for_line("Connected as host (Player 1)"), peer.output()
        newcomer = Game(port, "--bot", "--frames", "200")
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
    game = Game(free_port, "--frames", "100")
    assert game.finish(timeout=20) == 1
    output = game.output()
    assert "Traceback" not in output
    assert "No relay is running at 127.0.0.1:%d" % free_port in output
    assert "python nethelper.py -g pong_game" in output


def test_games_survive_the_relay_stopping_and_rejoin_when_it_returns():
    relay, port, _ = start_relay_process("-g", "pong_game", "-p", "0", "-i", HOST)
    host = Game(port, "--bot", "--frames", "700")
    peer = None
    try:
        assert host.wait_for_line("Connected as host (Player 1)"), host.output()
        peer = Game(port, "--bot", "--frames", "600")
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
