"""Consoles that are not UTF-8, and computers that lack something.

Korean Windows consoles use cp949 and some consoles only ASCII. Nothing a
program prints may stop it: what the console cannot show becomes "?". And a
missing piece (old Python, no Pygame Zero, no sounds/ folder) gets a plain
sentence, never a traceback.
"""
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import HOST, ROOT, wait_for
from nethelper import NetNode

GROUP = "퐁게임"                     # "pong game" in Korean
PYENV = Path.home() / ".pyenv" / "versions"


class RelayOnConsole:
    """`python nethelper.py -g 퐁게임` whose console only knows `encoding`."""

    def __init__(self, encoding):
        env = dict(os.environ, PYTHONIOENCODING=encoding)
        self.process = subprocess.Popen(
            [sys.executable, "-u", str(ROOT / "nethelper.py"), "-g", GROUP, "-p", "0",
             "-i", HOST], cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        self.lines = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()
        assert wait_for(lambda: self.port, timeout=10), self.output()

    def stop(self):
        """Stop the relay as Ctrl+C would and wait for its last words."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)

    def _collect(self):
        for raw in self.process.stdout:
            self.lines.append(raw.decode("ascii", "backslashreplace").rstrip("\n"))

    @property
    def port(self):
        ports = [line.split()[-1] for line in self.lines if line.strip().startswith("Port:")]
        return int(ports[0]) if ports and any("Server listening" in l for l in self.lines) else 0

    def output(self):
        return "\n".join(self.lines)


@pytest.mark.parametrize("encoding", ["ascii", "cp949"])
def test_relay_with_a_korean_group_on_a_narrow_console(encoding):
    relay = RelayOnConsole(encoding)
    player1, player2 = NetNode(), NetNode()
    try:
        assert player1.connect(HOST, "철수", GROUP, port=relay.port), player1.error
        assert player2.connect(HOST, "영희", GROUP, port=relay.port), player2.error
        # Korean names and text travel through the relay.
        def player2_seen():
            player1.process_recv()
            return "영희" in player1.get_peers()
        assert wait_for(player2_seen)
        assert player1.send_msg("영희", "인사", "안녕하세요")
        player1.process_send()

        def greeting_arrived():
            player2.process_recv()
            return player2.get_msg("철수", "인사", clear=False)
        assert wait_for(greeting_arrived) == "안녕하세요"
        assert sorted(player1.get_peers()) == sorted(["철수", "영희"])
        # The relay has logged both joins, so it printed the Korean names.
        assert wait_for(lambda: sum("joined" in line for line in relay.lines) == 2), \
            relay.output()
        assert relay.process.poll() is None, relay.output()      # still running
    finally:
        player1.disconnect()
        player2.disconnect()
        relay.stop()
    output = relay.output()
    assert "Traceback" not in output and "UnicodeEncodeError" not in output, output
    if encoding == "ascii":
        assert "Groups:    ???" in output       # shown as "?" rather than failing
    else:
        # cp949 can show Korean: the bytes the console gets are the real names.
        assert any("\\x" in line for line in relay.lines if "joined" in line), output
    assert "Server stopped. Goodbye!" in output


def test_games_print_safely_on_an_ascii_console():
    # The game's console messages go through make_console_safe(): a line
    # with a Korean name must come out as "?" instead of stopping the game.
    code = ("import pong_oop; print('Connected as 철수'); "
            "import sys; print('이름', file=sys.stderr)")
    env = dict(os.environ, PYTHONIOENCODING="ascii", SDL_VIDEODRIVER="dummy",
               SDL_AUDIODRIVER="dummy")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode("ascii").strip() == "Connected as ??"
    assert "Traceback" not in result.stderr.decode("ascii", "replace")
    # pygame's "Hello from the pygame community" is not printed.
    assert b"pygame community" not in result.stdout + result.stderr


# ---- missing pieces ----

def game_copied_alone(tmp_path):
    """The files a student copies into the Mu editor's mu_code folder,
    without sounds/ and images/."""
    for name in ("pong_oop.py", "pong_text.py", "pong_net.py", "pong_netcode.py",
                 "pong_lobby.py", "nethelper.py"):
        shutil.copy(ROOT / name, tmp_path)
    return tmp_path


def test_game_copied_without_sounds_and_images_plays_on_silently(tmp_path):
    folder = game_copied_alone(tmp_path)
    # --demo at --speed 60: 100 frames shown are 6000 frames of play, with
    # dozens of bounces and points, each of which wants a sound.
    # The dummy sound driver still gives a working mixer, so sounds are tried.
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    result = subprocess.run([sys.executable, "pong_oop.py", "--demo", "--speed", "60",
                             "--frames", "100"], cwd=folder, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Stopped after 100 frames" in result.stdout
    assert "Winner" in result.stdout or "score 0-0" not in result.stdout   # points were played
    assert "Traceback" not in result.stderr, result.stderr
    # One plain sentence about the missing sounds, not one per bounce.
    sound_lines = [line for line in result.stderr.splitlines() if line.startswith("Sound is off")]
    assert len(sound_lines) == 1, result.stderr
    assert "there is no sounds/" in sound_lines[0]


def test_play_py_without_pygame_says_how_to_install_it():
    # "python -S" leaves out site-packages: a Python without pygame, anywhere.
    python = [sys.executable, "-S"]
    # (--frames and a free port: should the check ever be lost, the games
    # play.py starts stop by themselves and the test fails instead of hanging.)
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        free_port = probe.getsockname()[1]
    result = subprocess.run(python + ["play.py", "--port", str(free_port), "--frames", "30"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "Traceback" not in output and "ModuleNotFoundError" not in output, output
    assert "The games need Pygame Zero" in output
    assert "pip install -r requirements.txt" in output
    for game in ("pong_oop.py", "pong_net.py"):
        result = subprocess.run(python + [game], cwd=ROOT, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr, result.stderr
        assert "This game needs Pygame Zero" in result.stderr
        assert "-m pip install pgzero" in result.stderr


@pytest.mark.parametrize("version", ["3.6", "3.7"])
def test_old_python_is_told_which_python_is_needed(version):
    pythons = sorted(PYENV.glob(version + ".*/bin/python"))
    if not pythons:
        pytest.skip("no Python %s on this machine" % version)
    for program, sentence in [("nethelper.py", "nethelper needs Python 3.8 or newer"),
                              ("pong_net.py", "This game needs Python 3.8 or newer"),
                              ("pong_oop.py", "This game needs Python 3.8 or newer"),
                              ("play.py", "play.py needs Python 3.8 or newer")]:
        result = subprocess.run([str(pythons[0]), program, "-g", "pong_game"], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, (program, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith(sentence), result.stderr
        assert "this is Python %s" % version in result.stderr


def test_server_ip_comment_shows_the_quotes():
    line = next(line for line in (ROOT / "pong_net.py").read_text(encoding="utf-8").splitlines()
                if line.startswith("SERVER_IP = "))
    assert 'SERVER_IP = "192.168.0.12"' in line.split("#", 1)[1]


# ---- the two READMEs stay in step ----

def indented_commands(path, count):
    """The first `count` indented (code) lines of a README."""
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.startswith("    ")][:count]


def test_both_readmes_start_with_the_same_two_commands():
    english = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert "README.ko.md" in "\n".join(english[:5])           # the link, in the first lines
    commands = indented_commands("README.md", 2)
    assert commands[0].endswith("python play.py") and commands[1].endswith("-m pytest")
    assert indented_commands("README.ko.md", 2) == commands
    # CI runs the README's test command word for word.
    assert commands[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_picture_the_readmes_show_exists():
    import re
    for readme in ("README.md", "README.ko.md"):
        text = (ROOT / readme).read_text(encoding="utf-8")
        pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
        assert pictures, readme
        for picture in pictures:
            assert (ROOT / picture).is_file(), (readme, picture)
