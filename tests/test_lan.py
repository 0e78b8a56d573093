"""A classroom on a simulated LAN: several computers, several relays.

Each computer is a network namespace plugged into one bridge (tests/lan.py),
so every relay listens on the real default port 65042 at its own address and
discovery broadcasts really cross the "switch". Needs root: skipped without.

Relays run in this process (lan.Computer.relay) or as `python nethelper.py`
in their namespace; games run for real, headless, under pong_harness.py.
"""
import json
import re
import subprocess
import sys
import threading
import time

import pytest

import lan as network
import nethelper
from conftest import ROOT, pump_until
from test_pong_net import GAME, HARNESS, Game

NAMESPACE_PROBLEM = network.available()
pytestmark = pytest.mark.skipif(NAMESPACE_PROBLEM is not None,
                                reason="no simulated LAN: {}".format(NAMESPACE_PROBLEM))
PYTHON = sys.executable


@pytest.fixture
def lan():
    """A switch; lan.computer() plugs in one more computer. Everything
    (processes, relays, namespaces) goes at the end, whatever happened."""
    made = network.Lan()
    try:
        yield made
    finally:
        made.tear_down()


class LanGame(Game):
    """pong_net.py under pong_harness.py on one of the LAN's computers."""

    def __init__(self, computer, *options, frames=600, record=None, keys=False, command=None):
        if command is None:         # (a command of its own: the game started another way)
            command = [PYTHON, "-u", HARNESS, "--frames", str(frames)]
            command += ["--record", str(record)] if record else []
            command += ["--keys"] if keys else []
            command += [GAME, *options]
        self.process = computer.popen(command, cwd=ROOT, stdin=subprocess.PIPE if keys else None,
                                      start_new_session=True)     # (kill() ends its group)
        self.lines = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def press(self, key):
        self.process.stdin.write(key + "\n")
        self.process.stdin.flush()


def nethelper_command(computer, *args):
    """`python nethelper.py ARGS` on that computer, to the end: its output."""
    result = subprocess.run(["ip", "netns", "exec", computer.namespace, PYTHON, "-u",
                             str(ROOT / "nethelper.py"), *args], cwd=ROOT, timeout=30,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert "Traceback" not in result.stdout, result.stdout
    return result.returncode, result.stdout


def relay_process(computer, *args):
    """`python nethelper.py ARGS` left running on that computer: (process, banner)."""
    process = computer.popen([PYTHON, "-u", str(ROOT / "nethelper.py"), *args], cwd=ROOT)
    banner = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not banner[-1:] == [""]:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line.rstrip("\n"))    # (the banner ends with an empty line)
    assert "Server listening" in banner, banner
    return process, banner


def until_all_answer(computer, names, timeout=10):
    """Ask from computer until the relays called names all answer (the
    LAN's links take a moment to come up): the relays found."""
    deadline = time.monotonic() + timeout
    while True:
        found = computer.run(nethelper.find_relays, timeout=0.3)
        if {info["name"] for info in found} >= set(names) or time.monotonic() > deadline:
            assert {info["name"] for info in found} >= set(names), found
            return found


def relay_with_player1(computer, name, groups=("pong_game",)):
    """A relay called name on computer, with a Player 1 waiting in its first
    group (a NetNode that is not pumped: the relay waits a minute for it)."""
    relay = computer.relay(list(groups), name=name, liveness_timeout=60.0)
    node = nethelper.NetNode()
    assert computer.run(node.connect, "127.0.0.1", "Player1", groups[0]), node.error
    relay.player1 = node            # (kept: a NetNode dropped closes its connection)
    return relay


def last_screen(record):
    lines = record.read_text(encoding="utf-8").splitlines() if record.exists() else []
    return json.loads(lines[-1]) if lines else {}


def wait_for_screen(record, test, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = last_screen(record)
        if screen and test(screen):
            return screen
        time.sleep(0.05)
    raise AssertionError("the screen never showed it; last: {}".format(last_screen(record)))


# ---------------------------------------------------------------------------
# Several relays, each with its name
# ---------------------------------------------------------------------------

def test_relays_announce_their_names_in_the_banner_find_and_check(lan):
    minji, junho, teacher = lan.computer(), lan.computer(), lan.computer()
    _, banner = relay_process(minji, "--name", "minji-pc", "-g", "pong_game")
    assert 'Players on other computers: SERVER_IP = "minji-pc" or "{}"'.format(
        minji.address) in banner, banner
    _, banner = relay_process(junho, "--name", "3반-준호", "-g", "pong_game", "chess")
    assert "  Name:      3반-준호" in banner
    until_all_answer(teacher, ["minji-pc", "3반-준호"])
    status, output = nethelper_command(teacher, "--find")
    assert status == 0, output
    assert '"minji-pc" at {} port 65042: pong_game (0)'.format(minji.address) in output
    assert '"3반-준호" at {} port 65042: pong_game (0), chess (0)'.format(junho.address) \
        in output
    status, output = nethelper_command(teacher, "--check", "MINJI-PC")     # any case
    assert status == 0, output
    assert output.startswith('A nethelper relay called "minji-pc" (version') and \
        "answers at MINJI-PC port 65042" in output, output


def test_a_netnode_joins_a_relay_by_its_name_and_find_relays_names_them(lan):
    minji, junho, student = lan.computer(), lan.computer(), lan.computer()
    relays = {"minji-pc": minji.relay(["pong_game"], name="minji-pc"),
              "jun-pc": junho.relay(["pong_game"], name="jun-pc")}
    found = until_all_answer(student, relays)
    assert {(f["name"], f["address"]) for f in found} == {
        ("minji-pc", minji.address), ("jun-pc", junho.address)}
    for typed, name in (("Jun-PC", "jun-pc"), ("MINJI-pc", "minji-pc")):
        node = nethelper.NetNode()
        assert student.run(node.connect, typed, "Player1", "pong_game", timeout=5), node.error
        assert relays[name].members("pong_game") == ["Player1"]
        node.disconnect()
    node = nethelper.NetNode()
    assert not student.run(node.connect, "nobodys-pc", "Player1", "pong_game", timeout=5)
    assert node.error_code == nethelper.BAD_ADDRESS
    assert "no relay of that name answered on the local network" in node.error


def test_a_game_given_a_relays_name_joins_the_partner_waiting_there(lan):
    minji, junho, partner = lan.computer(), lan.computer(), lan.computer()
    relay_with_player1(junho, "jun-pc")
    relay = relay_with_player1(minji, "minji-pc")
    until_all_answer(partner, ["minji-pc", "jun-pc"])
    game = LanGame(partner, "Minji-PC", "--bot", frames=300)
    try:
        assert game.wait_for_line("Connected as peer (Player 2)"), game.output()
        assert relay.members("pong_game") == ["Player1", "Player2"]
    finally:
        game.kill()


# ---------------------------------------------------------------------------
# No address: one relay with the group is joined, several are a list
# ---------------------------------------------------------------------------

def test_with_one_relay_serving_the_group_a_game_joins_it_without_asking(lan):
    chess, minji, partner = lan.computer(), lan.computer(), lan.computer()
    chess.relay(["chess"], name="chess-club")           # another game's relay
    relay = relay_with_player1(minji, "minji-pc")
    until_all_answer(partner, ["minji-pc", "chess-club"])
    game = LanGame(partner, "--bot", frames=300)
    try:
        assert game.wait_for_line("Connected as peer (Player 2)"), game.output()
        assert 'Found relay "minji-pc" at {}: Player 1 is waiting; joining group ' \
               "pong_game.".format(minji.address) in game.output()
        assert relay.members("pong_game") == ["Player1", "Player2"]
    finally:
        game.kill()


def test_with_several_relays_the_game_lists_them_adds_late_ones_and_joins_the_chosen(
        lan, tmp_path):
    minji, junho, partner, late = lan.computer(), lan.computer(), lan.computer(), lan.computer()
    relay_with_player1(minji, "minji-pc")
    junho.relay(["pong_game"], name="3반-준호")
    until_all_answer(partner, ["minji-pc", "3반-준호"])
    record = tmp_path / "screens.jsonl"
    game = LanGame(partner, "--lang", "ko", frames=100000, record=record, keys=True)
    try:
        screen = wait_for_screen(record, lambda s: s["phase"] == "choosing")
        assert sorted(row[1:] for row in screen["choices"]) == [
            ["3반-준호", junho.address, "아직 아무도 없음"],
            ["minji-pc", minji.address, "플레이어 1이 기다리는 중"]]
        assert screen["message"][0] == "릴레이를 고르세요"
        assert game.wait_for_line("Several relays have group pong_game")
        assert game.wait_for_line('relay "minji-pc" at {}: Player 1 is waiting'.format(
            minji.address)), game.output()
        # A relay that answers later is added to the end, and printed.
        relay = relay_with_player1(late, "late-pc")
        screen = wait_for_screen(record, lambda s: len(s["choices"] or []) == 3)
        assert screen["choices"][2] == ["3", "late-pc", late.address, "플레이어 1이 기다리는 중"]
        assert game.wait_for_line('  3. relay "late-pc" at {}'.format(late.address))
        assert screen["me"] is None         # it joined none by itself
        for key in ("DOWN", "DOWN", "DOWN", "UP", "DOWN", "RETURN"):   # to the third one
            game.press(key)
        assert game.wait_for_line("Connected as peer (Player 2)"), game.output()
        assert relay.members("pong_game") == ["Player1", "Player2"]
        assert 'Joining group pong_game at relay "late-pc"' in game.output()
    finally:
        game.kill()


def test_under_mus_play_button_the_list_comes_up_too(lan):
    """Mu's Play button runs `python -m pgzero pong_net.py`: no options at all."""
    minji, junho, partner = lan.computer(), lan.computer(), lan.computer()
    relay_with_player1(minji, "minji-pc")
    junho.relay(["pong_game"], name="jun-pc")
    until_all_answer(partner, ["minji-pc", "jun-pc"])
    game = LanGame(partner, command=[PYTHON, "-u", "-m", "pgzero", GAME])
    try:
        assert game.wait_for_line("Several relays have group pong_game"), game.output()
        assert game.wait_for_line('relay "jun-pc" at {}: nobody yet'.format(junho.address))
        assert game.wait_for_line('relay "minji-pc" at {}: Player 1 is waiting'.format(
            minji.address)), game.output()
        assert game.process.poll() is None          # the window stays up, with the list
    finally:
        game.kill()


# ---------------------------------------------------------------------------
# The teacher's open relay: one relay, a group per pair
# ---------------------------------------------------------------------------

def test_the_teachers_open_relay_gives_each_pair_its_own_group(lan):
    teacher = lan.computer()
    students = [lan.computer() for _ in range(4)]
    process, banner = relay_process(teacher, "--name", "teacher", "-g", "*")
    assert "  Groups:    any a game asks for" in banner
    until_all_answer(students[0], ["teacher"])
    # Two pairs of NetNodes, joining by the relay's name...
    nodes = {}
    for pair, (one, two) in (("pair1", students[:2]), ("pair2", students[2:])):
        for computer, name in ((one, "Player1"), (two, "Player2")):
            node = nethelper.NetNode()
            assert computer.run(node.connect, "Teacher", name, pair), node.error
            nodes[pair, name] = node
    everyone = list(nodes.values())
    assert pump_until(everyone, lambda: all(len(n.get_peers()) == 2 for n in everyone))
    nodes["pair1", "Player1"].send_msg("Player2", "hello", "pair1 only")
    nodes["pair2", "Player1"].send_msg("Player2", "hello", "pair2 only")
    assert pump_until(everyone, lambda: nodes["pair1", "Player2"].available("Player1", "hello")
                      and nodes["pair2", "Player2"].available("Player1", "hello"))
    assert nodes["pair1", "Player2"].get_msg("Player1", "hello") == "pair1 only"
    assert nodes["pair2", "Player2"].get_msg("Player1", "hello") == "pair2 only"
    # ... and a third pair of real games, each on its own computer.
    games = [LanGame(students[0], "teacher", "--group", "pair3", "--bot", frames=600)]
    assert pump_until(everyone, lambda: "Connected as host (Player 1)" in games[0].read(),
                      timeout=30), games[0].output()
    games.append(LanGame(students[1], "teacher", "--group", "pair3", "--bot", frames=400))
    try:
        # (the NetNodes keep talking meanwhile, as games do)
        assert pump_until(everyone, lambda: all("Game started" in game.read() for game in games),
                          timeout=30), [game.output() for game in games]
        status = students[2].run(nethelper.check_relay, "teacher", samples=1).status
        assert status["groups"] == {"pair1": 2, "pair2": 2, "pair3": 2}
        assert status["any_group"] is True
    finally:
        for game in games:
            game.kill()
    for node in everyone:
        node.disconnect()
    process.terminate()
    log = process.communicate(timeout=10)[0]
    for pair in ("pair1", "pair2", "pair3"):
        assert log.count("new group " + pair) == 1, log
        assert re.search(r"joined +{}: Player2 from {}".format(pair, re.escape(
            students[1 if pair == "pair3" else 3 if pair == "pair2" else 1].address)), log), log
