"""Every way the Mu editor starts a file, for the game and for the relay.

Mu's Play (and, for nethelper.py, Run) runs "python -m pgzero FILE" in the
file's folder, with no options; Package wraps the file in "import pgzrun" ...
"pgzrun.go()", builds one program with PyInstaller and then strips the wrapping
again (tests/packaged.py has the facts). Each must play the same game with the
same settings as "python FILE" in a terminal.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

import nethelper
import packaged
from conftest import HOST, ROOT, free_port, wait_for
from test_pong_net import Game, Running
from test_real_window import x_display  # noqa: F401  (a fixture: a private X server)

HEADLESS = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
CAN_UNSHARE = (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("unshare")
               and shutil.which("nsenter") and shutil.which("ip"))
needs_own_network = pytest.mark.skipif(
    not CAN_UNSHARE, reason="needs root, unshare, nsenter and ip (iproute2): a relay on "
                            "the usual port, in a network of its own")
needs_default_group = pytest.mark.skipif(
    not hasattr(nethelper, "DEFAULT_GROUP"),
    reason="needs the relay that serves pong_game when started without -g")


def mu_folder(tmp_path, **constants):
    """The game as a student has it in Mu's mu_code folder, with constants at
    the top of pong_net.py changed as the student would change them."""
    tmp_path.mkdir(exist_ok=True)
    for name in packaged.SOURCES:
        shutil.copy(ROOT / name, tmp_path)
    for name in packaged.ASSETS:
        shutil.copytree(ROOT / name, tmp_path / name)
    game = tmp_path / "pong_net.py"
    text = game.read_text(encoding="utf-8")
    for name, value in constants.items():
        text, found = re.subn(r"^%s = .*$" % name, "%s = %r" % (name, value), text,
                              count=1, flags=re.M)
        assert found, name
    game.write_text(text, encoding="utf-8")
    return tmp_path


def play(folder, name="pong_net.py", env=HEADLESS):
    """Mu's Play button."""
    return Running([sys.executable, "-u", "-m", "pgzero", name], cwd=folder, env=env)


def relay_port(relay):
    """The port from a relay's banner, once it says it is listening."""
    assert relay.wait_for_line("Server listening"), relay.output()
    return int(next(line for line in relay.lines if line.strip().startswith("Port:")).split()[-1])


def in_own_network(command):
    """command in a network of its own, loopback up: it may use the usual
    port (65042) without meeting anything else on this computer."""
    return ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
            *command]


def in_network_of(process, command):
    return ["nsenter", "--target", str(process.pid), "--net", *command]


def stop(*programs):
    for program in programs:
        if program:
            program.kill()


# ---- Play ----

def test_play_uses_the_constants_at_the_top(tmp_path, started):
    _, port, _ = started("-g", "pong3", "-p", "0", "-i", HOST, "--name", "minji-pc")
    folder = mu_folder(tmp_path, SERVER_IP="auto", DISCOVER_AT=HOST, SERVER_PORT=port,
                       GROUP="pong3")
    game = play(folder)
    try:
        assert game.wait_for_line("Connected as host (Player 1)"), game.output()
        assert nethelper.check_relay(HOST, port, samples=1).status["groups"] == {"pong3": 1}
    finally:
        stop(game)
    assert 'Found relay "minji-pc" at 127.0.0.1 port %d: nobody yet; joining group ' \
           "pong3." % port in game.lines, game.lines
    assert "Traceback" not in game.output()


def test_play_looks_for_a_relay_when_none_answers_at_localhost(tmp_path):
    folder = mu_folder(tmp_path, SERVER_PORT=free_port(), DISCOVER_AT=HOST, GROUP="pong7")
    game = play(folder)
    try:
        assert game.wait_for_line("No relay with group pong7 answered"), game.output()
    finally:
        stop(game)
    assert "Looking for a relay on the local network..." in game.lines


@pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                    reason="needs Xvfb and xdotool (apt-get install xvfb xdotool)")
def test_play_shows_the_group_in_the_window_title(tmp_path, started, x_display):  # noqa: F811
    _, port, _ = started("-g", "pong3", "-p", "0", "-i", HOST)
    folder = mu_folder(tmp_path, SERVER_IP=HOST, SERVER_PORT=port, GROUP="pong3")
    x11 = dict(os.environ, DISPLAY=x_display, SDL_VIDEODRIVER="x11", SDL_AUDIODRIVER="dummy")
    game = play(folder, env=x11)

    def titles():
        def ask(*args):
            return subprocess.run(["xdotool", *args], env=x11, capture_output=True, text=True,
                                  timeout=15).stdout
        return [ask("getwindowname", window).strip()
                for window in ask("search", "--pid", str(game.process.pid)).split()]
    try:
        assert game.wait_for_line("Connected as host (Player 1)"), game.output()
        assert wait_for(lambda: "pong - pong3 - Player 1 (host)" in titles(), timeout=10,
                        step=0.1), titles()
    finally:
        stop(game)


@needs_own_network
@needs_default_group
def test_play_on_nethelper_runs_the_relay_for_pong_game():
    relay = Running(in_own_network([sys.executable, "-u", "-m", "pgzero", "nethelper.py"]),
                    env=HEADLESS)
    try:
        assert relay_port(relay) == nethelper.DEFAULT_PORT
        check = subprocess.run(in_network_of(relay.process, [
            sys.executable, "-c", "import nethelper; r = nethelper.check_relay('localhost', "
            "samples=1); print(r.ok, r.status['groups'])"]), cwd=ROOT, capture_output=True,
            text=True, timeout=30)
    finally:
        stop(relay)
    assert check.stdout.strip() == "True {'pong_game': 0}", check.stdout + check.stderr
    output = relay.output()
    assert "pong_game" in output and "python nethelper.py -g" in output, output
    assert "Warning: found constant" not in output and "Traceback" not in output, output


# ---- Package ----

def test_the_file_package_leaves_behind_is_the_file_it_was():
    for name in ("pong_net.py", "nethelper.py"):
        text = (ROOT / name).read_text(encoding="utf-8")
        assert packaged.after_package(packaged.wrapped(text)) == text, name


def test_package_wrapped_files_take_their_options(tmp_path):
    """What Package saves and PyInstaller reads, run by Python: the game and
    the relay get the options given to the program."""
    # (Mu wraps only the file it packages: one folder for each.)
    relay_folder, game_folder = mu_folder(tmp_path / "relay"), mu_folder(tmp_path / "game")
    for path in (relay_folder / "nethelper.py", game_folder / "pong_net.py"):
        path.write_text(packaged.wrapped(path.read_text(encoding="utf-8")), encoding="utf-8")
    relay = Running([sys.executable, "-u", "nethelper.py", "-g", "pong_game", "-p", "0", "-i",
                     HOST], cwd=relay_folder, env=HEADLESS)
    game = None
    try:
        port = relay_port(relay)
        game = Running([sys.executable, "-u", "pong_net.py", HOST, str(port), "--group",
                        "pong_game"], cwd=game_folder, env=HEADLESS)
        assert game.wait_for_line("Connected as host (Player 1)"), game.output()
    finally:
        stop(game, relay)
    assert "Traceback" not in game.output() + relay.output()


@pytest.fixture(scope="session")
def programs():
    """The one-file game and relay, built as Mu's Package builds them."""
    if not packaged.available():
        pytest.skip("needs PyInstaller (pip install -r requirements-dev.txt)")
    result = packaged.wait()
    assert result["ok"], result.get("error")
    return {name: str(packaged.program(name)) for name in packaged.PROGRAMS}


@pytest.mark.packaged
def test_packaged_game_plays_through_a_packaged_relay(programs, tmp_path):
    relay = Running([programs["nethelper"], "-g", "pong_game", "-p", "0", "-i", HOST],
                    cwd=tmp_path, env=HEADLESS)
    host = peer = None
    try:
        port = relay_port(relay)
        # Somewhere else than the game's folder: its sounds and icon come from inside it.
        host = Running([programs["pong_net"], HOST, str(port), "--bot"], cwd=tmp_path,
                       env=HEADLESS)
        assert host.wait_for_line("Connected as host (Player 1)"), host.output()
        peer = Game(port, "--bot", frames=180)
        assert peer.finish() == 0, peer.output()
        assert host.wait_for_line("Game started"), host.output()
    finally:
        stop(host, peer, relay)
    assert "Game started" in peer.lines
    output = host.output() + relay.output()
    assert "Traceback" not in output and "Sound is off" not in output, output


@pytest.mark.packaged
@needs_own_network
@needs_default_group
def test_packaged_relay_and_game_started_without_options(programs):
    """A student double-clicks the packaged relay, then the packaged game."""
    relay = Running(in_own_network([programs["nethelper"]]), env=HEADLESS)
    game = None
    try:
        assert relay_port(relay) == nethelper.DEFAULT_PORT
        game = Running(in_network_of(relay.process, [programs["pong_net"]]), env=HEADLESS)
        assert game.wait_for_line("Connected as host (Player 1)"), game.output()
    finally:
        stop(game, relay)
    assert "Traceback" not in game.output() + relay.output()
