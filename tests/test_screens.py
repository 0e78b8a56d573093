"""Every screen of both games, in English and in Korean, drawn headless and
checked as a picture.

Each screen is drawn by the game's own draw() (for pong_net after real
frames against a real relay), then compared pixel for pixel with the court
plus the message the screen should show, drawn by pong_oop's functions. So
these tests check which words appear, and that the words stay readable:
the centre line never runs through a message, the parked ball is not
hidden behind one, every letter stays inside its panel, and Hangul is drawn
as letters, not as the empty boxes of a font without it.
"""
import importlib
import os
import shutil
import socket
import subprocess
import sys
import time

import pygame
import pytest
from pgzero.constants import keys
from pgzero.screen import Screen

from conftest import HOST, ROOT, wait_for
import nethelper
import pong_lobby
import pong_net
import pong_oop
import pong_text
from pong_oop import (BACKGROUND_COLOR, FINAL_SCORE, HEIGHT, LINE_COLOR, MESSAGE_BORDER_COLOR,
                      MESSAGE_BOX_COLOR, TEXT_COLOR, WIDTH, draw_bar_label, draw_game,
                      draw_message, message_layout)
from pong_text import TEXTS

CENTRE_X = WIDTH // 2


@pytest.fixture(scope="module", autouse=True)
def display():
    """Text needs a display mode; the dummy driver gives one without a window."""
    pygame.init()
    pygame.display.set_mode((WIDTH, HEIGHT))
    yield
    pygame.display.quit()


HANGUL_FONT = pong_text.find_hangul_font()
needs_hangul_font = pytest.mark.skipif(
    HANGUL_FONT is None, reason="no font with Hangul here: apt install fonts-nanum")


@pytest.fixture(autouse=True)
def english():
    """English unless a test asks for Korean: the computer's own language must
    not decide what a test expects."""
    pong_text.use_language("en", quiet=True)
    yield
    pong_text.use_language("en", quiet=True)


@pytest.fixture(params=["en", pytest.param("ko", marks=needs_hangul_font)])
def lang(request):
    """Run the test once in each language."""
    pong_text.use_language(request.param, quiet=True)
    return request.param


def words(lang, key, **fields):
    """What the screen should say in lang (TEXTS is the one place the words live)."""
    english, korean = TEXTS[key]
    return (korean if lang == "ko" else english).format(**fields)


def keep(picture, name):
    """With SCREENS_TO=FOLDER set, save the picture there as
    screen_NAME_LANGUAGE.png: the README's pictures are the ones checked here."""
    folder = os.environ.get("SCREENS_TO")
    if folder:
        pygame.image.save(picture, os.path.join(folder, "screen_%s_%s.png" % (
            name, pong_text.current().language)))
    return picture


def rgb(colour):
    return tuple(pygame.Color(colour))[:3]


def render(draw):
    """Call draw(screen) on a fresh surface the size of the window."""
    surface = pygame.Surface((WIDTH, HEIGHT))
    draw(Screen(surface))
    return surface


def render_game(game):
    """The game's own draw(), with Pygame Zero's screen pointed at a surface."""
    def draw(screen):
        game.screen = screen
        game.draw()
    return render(draw)


def court(game, you=None):
    """The court as the game shows it, with "YOU" beside the bar `you`
    (and the network game's ping in its corner while two play)."""
    def draw(screen):
        draw_game(screen, game.ball, game.bar1, game.bar2, game.score)
        if you is not None:
            draw_bar_label(screen, you, pong_text.say("you"))
        if getattr(getattr(game, "match", None), "opponent_here", False):
            game.draw_ping(screen)
    return render(draw)


def court_with_message(game, you, text, small_text=""):
    def draw(screen):
        screen.blit(court(game, you), (0, 0))
        draw_message(screen, text, small_text)
    return render(draw)


def message_alone(text, small_text=""):
    """The message on an empty court."""
    def draw(screen):
        pong_oop.draw_court(screen)
        draw_message(screen, text, small_text)
    return render(draw)


def empty_court():
    return render(pong_oop.draw_court)


def rows(picture):
    """The picture as one bytes object per row, 3 bytes (RGB) a pixel."""
    data = pygame.image.tobytes(picture, "RGB")
    return [data[y * WIDTH * 3:(y + 1) * WIDTH * 3] for y in range(HEIGHT)]


def check_inside_the_panel(picture, plain_court, text, small_text=""):
    """Every letter of the message is inside its panel, clear of the panel's
    edges: nothing cut off at the window's edge, nothing over the border."""
    panel, _ = message_layout(text, small_text)
    assert panel.left >= 0 and panel.right <= WIDTH, panel
    shown, plain = rows(picture), rows(plain_court)
    left, right = panel.left * 3, panel.right * 3
    outside = [y for y in range(HEIGHT) if shown[y] != plain[y] and (
        not panel.top <= y < panel.bottom
        or shown[y][:left] != plain[y][:left] or shown[y][right:] != plain[y][right:])]
    assert not outside, "drawn outside the panel %s in rows %s" % (panel, outside[:5])
    border = bytes(rgb(MESSAGE_BORDER_COLOR))
    assert shown[panel.top][left:right] == border * panel.width, "the border is broken"
    assert shown[panel.bottom - 1][left:right] == border * panel.width, "the border is broken"
    for y in range(panel.top, panel.bottom):
        assert shown[y][left:left + 3] == shown[y][right - 3:right] == border, \
            "the border is broken in row %d" % y
    # Between the border and the words: only the panel's own colour (8 px).
    fill, margin = bytes(rgb(MESSAGE_BOX_COLOR)), 8
    for y in range(panel.top + 1, panel.bottom - 1):
        row = shown[y][left + 3:right - 3]
        near_edge = row if not panel.top + margin <= y < panel.bottom - margin else \
            row[:(margin - 1) * 3] + row[-(margin - 1) * 3:]
        assert near_edge == fill * (len(near_edge) // 3), \
            "letters touch the panel's edge in row %d" % y


def check_no_boxes(text, small_text=""):
    """Each letter of the message, in the font it is drawn with, is not the
    box that font draws for a letter it lacks (its .notdef glyph)."""
    lettering = pong_text.current()
    _, lines = message_layout(text, small_text)
    for line, size, _, whole in lines:
        font = lettering.font(size, lettering.font_path(lettering.readable(whole)))
        box = pong_text.picture_of(font, pong_text.MISSING_LETTER)
        for letter in set(line) - {" "}:
            assert pong_text.picture_of(font, letter) != box, "%r is drawn as a box" % letter


def same_picture(a, b):
    return pygame.image.tobytes(a, "RGB") == pygame.image.tobytes(b, "RGB")


def check_message_is_readable(picture, plain_court):
    """Where the message is, the centre line does not show; outside it does."""
    middle = slice((CENTRE_X - 120) * 3, (CENTRE_X + 121) * 3)    # (rows(): 3 bytes a pixel)
    changed_rows = [y for y, (row, plain_row) in enumerate(zip(rows(picture), rows(plain_court)))
                    if row[middle] != plain_row[middle]]
    assert changed_rows, "no message on the screen"
    top, bottom = min(changed_rows), max(changed_rows)
    line = rgb(LINE_COLOR)
    crossed = [y for y in range(top, bottom + 1) if picture.get_at((CENTRE_X, y))[:3] == line]
    assert not crossed, "the centre line runs through the message at y=%s" % crossed[:5]
    # The words are there: plenty of pure text-coloured pixels in the box.
    white = bytes(rgb(TEXT_COLOR))
    text_pixels = sum(row[x * 3:x * 3 + 3] == white for row in rows(picture)[top:bottom + 1]
                      for x in range(100, WIDTH - 100, 2))
    assert text_pixels > 200
    # The line is still drawn below the message, and the court is still dark.
    assert picture.get_at((CENTRE_X, HEIGHT - 5))[:3] == line
    assert picture.get_at((5, HEIGHT - 5))[:3] == rgb(BACKGROUND_COLOR)
    # The ball waiting in the middle stays visible below the message.
    assert bottom < HEIGHT // 2 - pong_oop.BALL_RADIUS


# ---- pong_oop: the local game ----

@pytest.fixture
def local_game():
    yield pong_oop
    pong_oop.game_started = False
    pong_oop.bot_plays_bar1 = pong_oop.bot_plays_bar2 = False
    pong_oop.score.reset()
    pong_oop.ball.stop()


def test_local_start_screen_shows_both_players_keys(local_game, lang):
    picture = keep(render_game(local_game), "local")
    title, keys_help = words(lang, "start"), words(lang, "keys_both")
    assert same_picture(picture, court_with_message(local_game, None, title, keys_help))
    check_message_is_readable(picture, court(local_game))
    check_inside_the_panel(picture, court(local_game), title, keys_help)
    check_no_boxes(title, keys_help)


def test_local_game_against_the_computer_marks_your_bar(local_game, lang):
    local_game.bot_plays_bar2 = True
    picture = keep(render_game(local_game), "local_bot")
    expected = court_with_message(local_game, local_game.bar1, words(lang, "start"),
                                  words(lang, "keys_left"))
    assert same_picture(picture, expected)
    # "YOU" really is beside the left bar: yellow pixels just right of it.
    bar = local_game.bar1
    yellow = [(x, y) for x in range(bar.right, bar.right + 80)
              for y in range(bar.top, bar.bottom) if picture.get_at((x, y))[:3] == (255, 255, 0)]
    assert len(yellow) > 50


def test_local_rally_shows_no_message(local_game):
    local_game.start_game()
    for _ in range(30):
        local_game.play_one_frame()
    assert same_picture(render_game(local_game), court(local_game))


def test_local_winner_screen(local_game, lang):
    local_game.start_game()
    for _ in range(FINAL_SCORE):
        local_game.score.add(2)
    local_game.ball.stop()
    picture = keep(render_game(local_game), "local_winner")
    title, small = words(lang, "wins", n=2), words(lang, "again")
    assert same_picture(picture, court_with_message(local_game, None, title, small))
    check_message_is_readable(picture, court(local_game))
    check_inside_the_panel(picture, court(local_game), title, small)
    check_no_boxes(title, small)


# ---- pong_net: the network game, against a real relay ----

@pytest.fixture
def net_game(relay):
    """A fresh pong_net (its own NetNode) pointed at the test's relay."""
    game = importlib.reload(pong_net)
    game.SERVER_IP, game.SERVER_PORT = HOST, relay.port
    yield game
    game.net.disconnect()


def run_frames_until(game, condition, timeout=5):
    """Play real frames of the game (update(): network and all) until condition()."""
    def frame():
        game.update()
        return condition()
    assert wait_for(frame, timeout=timeout), "the game never got there"


def other_player(relay, name):
    node = nethelper.NetNode()
    assert node.connect(HOST, name, "pong_game", port=relay.port), node.error
    return node


def test_net_waiting_ready_rally_and_winner_screens(net_game, relay, lang):
    game = net_game
    run_frames_until(game, lambda: game.match.is_host)
    picture = keep(render_game(game), "waiting")
    title, small = words(lang, "waiting"), words(lang, "you_are", group="pong_game",
                                                  who=words(lang, "player1"))
    assert same_picture(picture, court_with_message(game, game.bar1, title, small))
    check_message_is_readable(picture, court(game, game.bar1))
    check_inside_the_panel(picture, court(game, game.bar1), title, small)
    check_no_boxes(title, small)

    player2 = other_player(relay, "Player2")
    try:
        run_frames_until(game, lambda: game.match.opponent_here)
        picture = keep(render_game(game), "ready")
        title, small = words(lang, "start"), words(lang, "keys_net")
        assert same_picture(picture, court_with_message(game, game.bar1, title, small))
        check_message_is_readable(picture, court(game, game.bar1))
        check_inside_the_panel(picture, court(game, game.bar1), title, small)
        check_no_boxes(title, small)

        game.on_key_down(keys.SPACE)
        for _ in range(20):
            game.update()
        assert game.match.game_started and game.ball.vel != (0.0, 0.0)
        assert same_picture(keep(render_game(game), "rally"), court(game, game.bar1))

        for _ in range(FINAL_SCORE):
            game.score.add(2)
        game.ball.stop()
        picture = keep(render_game(game), "winner")
        title, small = words(lang, "wins", n=2), words(lang, "again")
        assert same_picture(picture, court_with_message(game, game.bar1, title, small))
        check_message_is_readable(picture, court(game, game.bar1))
    finally:
        player2.disconnect()


def test_net_player2_is_told_on_screen_when_it_takes_over(net_game, relay, lang):
    game = net_game
    host = other_player(relay, "Player1")
    try:
        run_frames_until(game, lambda: game.match.me == game.PEER_NAME and game.match.opponent_here)
        picture = render_game(game)
        assert same_picture(picture, court_with_message(
            game, game.bar2, words(lang, "start"), words(lang, "keys_net")))
    finally:
        host.disconnect()
    run_frames_until(game, lambda: game.match.is_host and game.net.connected)
    picture = keep(render_game(game), "host_left")
    title, small = words(lang, "host_left"), words(lang, "now_host")
    assert same_picture(picture, court_with_message(game, game.bar1, title, small))
    check_message_is_readable(picture, court(game, game.bar1))
    check_inside_the_panel(picture, court(game, game.bar1), title, small)
    # A new opponent arrives: the note is gone, the normal start screen is back.
    newcomer = other_player(relay, "Player2")
    try:
        run_frames_until(game, lambda: game.match.opponent_here)
        assert game.match.phase == "playing"
    finally:
        newcomer.disconnect()


def test_net_relay_stopped_screen(net_game, lang):
    game = net_game
    with nethelper.Relay(["pong_game"], host=HOST, port=0) as own_relay:
        game.SERVER_PORT = own_relay.port
        run_frames_until(game, lambda: game.match.is_host)
    run_frames_until(game, lambda: not game.net.connected)
    picture = keep(render_game(game), "relay_stopped")
    # The relay said it was stopping: the screen says so, not just "lost".
    title, small = words(lang, "relay_stopped"), words(lang, "reconnecting")
    assert same_picture(picture, court_with_message(game, None, title, small))
    check_message_is_readable(picture, court(game))


def test_net_group_full_screen(net_game, relay, lang):
    game = net_game
    players = [other_player(relay, "Player1"), other_player(relay, "Player2")]
    try:
        run_frames_until(game, lambda: game.match.phase == "group_full")
    finally:
        for player in players:
            player.disconnect()
    picture = keep(render_game(game), "group_full")
    title, small = words(lang, "group_full"), words(lang, "group_full_why", group="pong_game")
    assert same_picture(picture, court_with_message(game, None, title, small))
    check_message_is_readable(picture, court(game))
    check_inside_the_panel(picture, court(game), title, small)


def closed_port():
    """A port on this computer where nothing listens (it was just given back)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def test_net_no_relay_screen_wraps_the_whole_explanation(net_game, lang):
    """Nothing listens at the port: the explanation, with the command that
    starts a relay, is all on the screen (it was cut at both edges)."""
    game = net_game
    game.SERVER_PORT = closed_port()
    run_frames_until(game, lambda: game.match.phase == "failed")
    assert game.net.error_code == nethelper.NO_RELAY
    picture = render_game(game)
    title, small = game.screen_message()
    assert title == words(lang, "failed")
    assert "python nethelper.py -g pong_game -p %d" % game.SERVER_PORT in small
    if lang == "en":
        assert small == game.net.error         # the console's words, all of them
    assert same_picture(picture, court_with_message(game, None, title, small))
    check_inside_the_panel(picture, court(game), title, small)
    check_message_is_readable(picture, court(game))
    check_no_boxes(title, small)


@pytest.fixture
def silent_server():
    """A TCP port that takes connections and never says a word (a relay
    behind a firewall that lets the connection in but nothing back, say)."""
    with socket.socket() as server:
        server.bind((HOST, 0))
        server.listen(4)
        yield server.getsockname()[1]


def test_net_refusal_stays_four_seconds_from_when_it_appears(net_game, silent_server, lang):
    """The relay does not answer for JOIN_TIMEOUT: the refusal then appears,
    and stays its full REFUSAL_FRAMES, not what is left of them since the
    game started."""
    game = net_game
    game.SERVER_PORT, game.JOIN_TIMEOUT = silent_server, 0.5
    frames_before = 0
    while game.match.phase != "failed":
        game.update()
        frames_before += 1
        time.sleep(1 / 60)
        assert frames_before < 600, "no timeout"
    # (Frames went by before it: counted from the start, it would be shown fewer.)
    assert frames_before >= 2 and game.net.error_code == nethelper.TIMEOUT
    picture = render_game(game)
    title, small = game.screen_message()
    assert "python nethelper.py --check %s -p %d" % (HOST, silent_server) in small
    check_inside_the_panel(picture, court(game), title, small)
    check_no_boxes(title, small)
    shown = 0
    with pytest.raises(SystemExit):
        while shown < 2 * game.REFUSAL_FRAMES:
            game.update()
            shown += 1
    assert shown == game.REFUSAL_FRAMES >= 4 * 60     # (it quits on the next frame)


@pytest.mark.parametrize("phase", sorted(phase for phase, message in
                                         pong_net.SCREENS.items()
                                         if message and phase != "choosing"))   # (a list: below)
def test_every_phase_has_a_screen_in_both_languages(net_game, lang, phase):
    """Each row of pong_net's SCREENS, drawn: its words fit their panel, with
    no boxes, and the ball stays in sight (long explanations included)."""
    game = net_game
    game.match.set_phase(phase)
    game.match.error = LONG_MESSAGES[1][1]
    game.SERVER_IP, game.SERVER_PORT = "localhost", nethelper.DEFAULT_PORT
    game.GROUP = "퐁게임_3반"        # a Korean name, on an English screen too
    picture = render_game(game)
    if phase in ("joining", "lost"):
        keep(picture, phase)
    title, small = game.screen_message()
    assert title == words(lang, game.SCREENS[phase][0])

    def below(screen):          # what a phase draws beside its message: the kick's reason
        if phase == "kicked":
            pong_oop.draw_bottom_message(screen, game.match.error)

    def expected(screen):
        screen.blit(court_with_message(game, None, title, small), (0, 0))
        below(screen)
    background = render(lambda screen: (screen.blit(court(game), (0, 0)), below(screen)))
    assert same_picture(picture, render(expected))
    check_message_is_readable(picture, background)
    check_inside_the_panel(picture, background, title, small)
    check_no_boxes(title, small)


def a_relay(name, address, groups):
    """A relay as find_relays() gives it."""
    return {"name": name, "address": address, "port": nethelper.DEFAULT_PORT, "groups": groups,
            "players": sum((groups or {}).values())}


def test_the_relay_list_in_both_languages(net_game, lang):
    """Several relays have the group: each one's name, address and who waits,
    the chosen one marked, every letter inside the panel, no boxes."""
    game = net_game
    game.match.lobby = pong_lobby.RelayList(None, "pong_game")
    game.match.lobby.relays = [a_relay("minji-pc", "192.168.0.12", {"pong_game": 1}),
                               a_relay("3반-준호", "192.168.0.15", {"pong_game": 0, "chess": 2}),
                               a_relay(None, "192.168.0.21", None),
                               a_relay("teacher", "192.168.0.2", {"pong_game": 2})]
    game.match.lobby.chosen = 1
    game.match.set_phase("choosing")
    picture = keep(render_game(game), "relay_list")
    title, why = game.screen_message()
    assert (title, why) == (words(lang, "choose_relay"), words(lang, "choose_why",
                                                               group="pong_game"))
    shown = game.match.lobby.rows()
    assert [list(row[1:]) for row in shown] == [
        ["minji-pc", "192.168.0.12", words(lang, "one_waiting")],
        ["3반-준호", "192.168.0.15", words(lang, "nobody_yet")],
        [words(lang, "no_name"), "192.168.0.21", words(lang, "not_listed")],
        ["teacher", "192.168.0.2", words(lang, "full", n=2)]]
    check_no_boxes(title, "\n".join([why] + [" ".join(row) for row in shown] +
                                    [words(lang, "choose_keys"), words(lang, "still_looking")]))
    # Outside its panel the picture is the plain court: nothing spills over.
    panel = pygame.Rect(pong_oop.MESSAGE_MARGIN, 90, WIDTH - 2 * pong_oop.MESSAGE_MARGIN,
                        HEIGHT - 110)
    plain = court(game)
    outside = [(x, y) for x in range(0, WIDTH, 3) for y in range(0, HEIGHT, 3)
               if not panel.inflate(2, 2).collidepoint(x, y)]
    assert all(picture.get_at(p) == plain.get_at(p) for p in outside)
    # The chosen relay, the second, is marked: one band of the chosen colour.
    marked = [y for y in range(HEIGHT) if picture.get_at((panel.left + 20, y))[:3] ==
              pong_lobby.CHOSEN_COLOR]
    assert len(marked) == 56 and marked[-1] - marked[0] == 55
    first_row_top = marked[0] - 60
    assert picture.get_at((panel.left + 20, first_row_top + 10))[:3] == MESSAGE_BOX_COLOR


def test_keys_choose_a_relay_from_the_list(net_game):
    game = net_game
    lobby = game.match.lobby = pong_lobby.RelayList(
        nethelper.RelayFinder("127.0.0.1", free_udp_port()), "pong_game")
    lobby.relays = [a_relay("a", "192.168.0.%d" % n, {"pong_game": 0}) for n in (1, 2, 3)]
    game.match.set_phase("choosing")
    for key, chosen in ((keys.DOWN, 1), (keys.Z, 2), (keys.DOWN, 2), (keys.UP, 1), (keys.A, 0),
                        (keys.W, 0), (keys.S, 1)):
        game.on_key_down(key)
        assert lobby.chosen == chosen
    game.on_key_down(keys.K_3)
    assert game.match.phase == "joining" and game.SERVER_IP == "192.168.0.3"
    assert lobby.finder is None and game.match.lobby is None


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


# What NetNode.error says for the usual reasons (its words; the tests above
# get them from real sockets).
USUAL_FAILURES = {
    "no_relay": (nethelper.NO_RELAY, "localhost", "No relay is running at localhost:65042. "
                 "Start one with: python nethelper.py -g pong_game"),
    "timeout": (nethelper.TIMEOUT, "192.168.0.12", "No answer from 192.168.0.12:65042 within "
                "3.0 s. Check SERVER_IP, and that the relay's firewall lets TCP port 65042 "
                "in.\nTo find out why: python nethelper.py --check 192.168.0.12"),
    "bad_address": (nethelper.BAD_ADDRESS, "192.168.0.l2", 'Cannot find a computer called '
                    '"192.168.0.l2". Check SERVER_IP.'),
}


@pytest.mark.parametrize("reason", sorted(USUAL_FAILURES))
def test_the_usual_reasons_to_fail(net_game, lang, reason):
    """The "failed" screen, as it is for a student at localhost without a
    relay, or with a wrong or unanswering SERVER_IP (the README's pictures)."""
    game = net_game
    code, game.SERVER_IP, english = USUAL_FAILURES[reason]
    game.SERVER_PORT = nethelper.DEFAULT_PORT
    game.match.set_phase("failed")
    game.match.error = pong_text.current().why_failed(code, english, game.SERVER_IP,
                                                      game.SERVER_PORT, game.GROUP,
                                                      game.JOIN_TIMEOUT)
    picture = keep(render_game(game), "failed_" + reason)
    title, small = game.screen_message()
    check_message_is_readable(picture, court(game))
    check_inside_the_panel(picture, court(game), title, small)
    check_no_boxes(title, small)


# ---- long messages, names in Hangul, and the choice of language ----

LONG_MESSAGES = [
    ("Failed to connect", "No relay is running at localhost:65042. Start one with: "
     "python nethelper.py -g pong_game"),
    ("Failed to connect", "No answer from 192.168.100.200:65042 within 3.0 s. Check "
     "SERVER_IP, and that the relay's firewall lets TCP port 65042 in.\nTo find out why: "
     "python nethelper.py --check 192.168.100.200"),
    ("Failed to connect", 'Cannot find a computer called "teachers-computer-in-room-'
     'three.school.example". Check SERVER_IP.'),
    ("The group is full", "Two players are already in group 퐁게임_3반_1조.\n"
     "Wait for them to finish, or use another group."),
    ("연결하지 못했습니다", "localhost:65042에 릴레이가 없거나, 그 컴퓨터에 닿지 않습니다.\n"
     "릴레이를 먼저 켜세요: python nethelper.py -g 퐁게임_3반_1조 -p 50000"),
    ("A title far too long for one line of big letters on this screen",
     "x" * 150),
]


@pytest.mark.parametrize("text, small_text", LONG_MESSAGES)
@needs_hangul_font
def test_long_messages_wrap_inside_their_panel(text, small_text):
    picture = message_alone(text, small_text)
    check_inside_the_panel(picture, empty_court(), text, small_text)
    check_message_is_readable(picture, empty_court())     # and the ball stays in sight
    check_no_boxes(text, small_text)
    # Nothing is lost: the lines hold every word, in order.
    _, lines = message_layout(text, small_text)
    assert "".join(line for line, _, _, _ in lines).replace(" ", "") == \
        (text + small_text).replace("\n", "").replace(" ", "")


def test_the_book_sized_message_keeps_its_big_letters():
    """Messages that fit at the usual sizes keep them (only long ones shrink)."""
    _, lines = message_layout("Failed to connect", "No relay is running at localhost:65042. "
                              "Start one with: python nethelper.py -g pong_game")
    assert {size for _, size, _, _ in lines} == set(pong_oop.MESSAGE_SIZES[0])
    assert len(lines) == 3


@needs_hangul_font
def test_hangul_is_drawn_as_letters_not_boxes():
    """Every Korean text, letter by letter, in the font found: not the font's
    .notdef box. (pygame's own font does draw boxes for them: the comparison
    can tell.)"""
    korean = "".join(sorted({letter for _, text in TEXTS.values() if text
                             for letter in text if pong_text.is_hangul(letter)}))
    assert len(korean) > 50
    found = pygame.font.Font(HANGUL_FONT, 30)
    builtin = pygame.font.Font(None, 30)
    box = pong_text.picture_of(found, pong_text.MISSING_LETTER)
    builtin_box = pong_text.picture_of(builtin, pong_text.MISSING_LETTER)
    for letter in korean:
        assert pong_text.picture_of(found, letter) != box, letter
        assert pong_text.picture_of(builtin, letter) == builtin_box, letter


@needs_hangul_font
def test_a_korean_name_on_an_english_screen_uses_the_hangul_font():
    lettering = pong_text.use_language("en", quiet=True)
    assert lettering.hangul_font == HANGUL_FONT
    assert lettering.font_path("Start one with: python nethelper.py -g 퐁게임") == HANGUL_FONT
    assert lettering.font_path("Start one with: python nethelper.py -g pong_game") is None
    check_no_boxes("Failed to connect", "Start one with: python nethelper.py -g 퐁게임")


def test_without_a_hangul_font_korean_falls_back_to_english_and_latin_letters(capsys, tmp_path):
    lettering = pong_text.use_language("ko", font_places=[str(tmp_path / "*.ttf")])
    assert lettering.language == "en" and lettering.hangul_font is None
    assert "No font with Korean letters" in capsys.readouterr().out
    text = "Two players are already in group 퐁게임."
    picture = message_alone("The group is full", text)
    check_inside_the_panel(picture, empty_court(), "The group is full", text)
    check_no_boxes("The group is full", text)
    _, lines = message_layout("The group is full", text)
    assert "group ponggeim." in " ".join(line for line, _, _, _ in lines)
    assert "퐁게임 -> ponggeim" in capsys.readouterr().out      # said once, plainly
    message_alone("The group is full", text)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("code, english, port, expected", [
    (nethelper.NO_RELAY, "No relay is running at pc:65042. ...", 65042,
     ["pc:65042", "python nethelper.py -g 퐁게임"]),
    (nethelper.NO_RELAY, "Cannot reach pc:50000: No route to host", 50000,
     ["pc:50000", "python nethelper.py -g 퐁게임 -p 50000"]),
    (nethelper.TIMEOUT, "No answer from pc:65042 within 3 s. ...", 65042,
     ["pc:65042", "3초", "포트 65042번", "python nethelper.py --check pc"]),
    (nethelper.BAD_ADDRESS, 'Cannot find a computer called "pc". Check SERVER_IP.', 65042,
     ['"pc"', "SERVER_IP"]),
    (nethelper.BAD_ADDRESS, "70000 is not a port number: ...", 70000, ["70000", "65042"]),
    (nethelper.WRONG_VERSION, "This relay speaks protocol 030.", 65042,
     ["This relay speaks protocol 030."]),
])
def test_why_failed_in_korean(code, english, port, expected):
    """The reasons a game cannot join, in Korean: the facts of nethelper's
    English (where, which group, the command to run) in Korean sentences."""
    korean = pong_text.Lettering("ko").why_failed(code, english, "pc", port, "퐁게임", 3.0)
    for fact in expected:
        assert fact in korean
    assert any(pong_text.is_hangul(letter) for letter in korean.replace("퐁게임", ""))
    assert pong_text.Lettering("en").why_failed(code, english, "pc", port, "퐁게임", 3.0) \
        == english


def test_romanize():
    assert pong_text.romanize("퐁게임") == "ponggeim"
    assert pong_text.romanize("한글 pong 1반") == "hangeul pong 1ban"
    assert pong_text.romanize("닭") == "dak"


def test_every_text_has_both_languages_with_the_same_fields():
    import string
    for key, (english, korean) in TEXTS.items():
        assert korean, key
        fields = {name for _, name, _, _ in string.Formatter().parse(korean) if name}
        if english is not None:
            assert fields == {name for _, name, _, _ in string.Formatter().parse(english)
                              if name}, key
        assert not any(pong_text.is_hangul(letter) for letter in english or ""), key


@pytest.mark.parametrize("variables, expected", [
    ({"LANG": "ko_KR.UTF-8"}, "ko"),
    ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LANG": "ko_KR.UTF-8", "LC_ALL": "C"}, "en"),
    ({"LC_MESSAGES": "ko_KR.eucKR", "LANG": "en_GB.UTF-8"}, "ko"),
    ({"LANGUAGE": "ko:en"}, "ko"),
    ({}, ""),
])
def test_the_system_language_from_the_locale(monkeypatch, variables, expected):
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    if sys.platform in ("win32", "darwin") and not variables:
        pytest.skip("the computer's own setting answers here")
    if sys.platform != "win32":
        assert pong_text.system_language() == expected
    chosen = pong_text.choose_language("auto", quiet=True).language
    assert chosen == ("ko" if expected == "ko" and HANGUL_FONT else "en")


def test_the_windows_display_language():
    assert pong_text.windows_language(0x0412) == "ko"       # Korean (Korea)
    assert pong_text.windows_language(0x0409) == "en"       # English (United States)
    assert pong_text.windows_language(0x0411) == "other"    # Japanese


def test_an_unknown_language_is_an_error():
    with pytest.raises(ValueError, match="ko"):
        pong_text.use_language("kr")


def run_local_game(tmp_path, lang_env, *options):
    """pong_oop.py for real, its first screen saved as a picture."""
    picture = tmp_path / "start.png"
    env = {name: value for name, value in os.environ.items()
           if name not in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE")}
    env.update(lang_env, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    result = subprocess.run([sys.executable, "pong_harness.py", "--frames", "2", "--screenshot",
                             str(picture), "pong_oop.py", *options], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return pygame.image.load(str(picture))


@needs_hangul_font
@pytest.mark.parametrize("lang_env, options, shown", [
    ({"LANG": "ko_KR.UTF-8"}, [], "ko"),
    ({"LANG": "ko_KR.UTF-8"}, ["--lang", "en"], "en"),
    ({"LANG": "C.UTF-8"}, [], "en"),
    ({"LANG": "C.UTF-8"}, ["--lang", "ko"], "ko"),
])
def test_the_game_speaks_the_computers_language_or_lang(tmp_path, local_game, lang_env,
                                                        options, shown):
    if sys.platform in ("win32", "darwin"):
        pytest.skip("there the computer's own setting, not LANG, decides")
    picture = run_local_game(tmp_path, lang_env, *options)
    pong_text.use_language(shown, quiet=True)
    expected = court_with_message(local_game, None, words(shown, "start"),
                                  words(shown, "keys_both"))
    assert same_picture(picture, expected)


@needs_hangul_font
def test_the_language_constant_works_without_options(local_game, monkeypatch):
    """Mu's Play button gives no options: LANGUAGE at the top of the game
    decides, when the first screen is drawn."""
    monkeypatch.setattr(pong_text, "lettering", None)
    monkeypatch.setattr(local_game, "LANGUAGE", "ko")
    picture = render_game(local_game)
    assert pong_text.current().language == "ko"
    assert same_picture(picture, court_with_message(local_game, None, words("ko", "start"),
                                                    words("ko", "keys_both")))


def test_pong_nets_language_constant_is_the_default_of_lang(monkeypatch):
    """pong_net under Mu's Play reads its options from no arguments at all:
    LANGUAGE at its top is what --lang gives then."""
    monkeypatch.setattr(pong_net, "LANGUAGE", "ko")
    assert pong_net.read_options([]).lang == "ko"
    assert pong_net.read_options(["--lang", "en"]).lang == "en"
    with pytest.raises(SystemExit):
        pong_net.read_options(["--lang", "kr"])


def test_a_font_in_the_games_fonts_folder_is_used_first(tmp_path):
    """A student can give the game a font: fonts/ next to it, where Pygame
    Zero keeps a game's fonts."""
    if HANGUL_FONT is None:
        pytest.skip("no font with Hangul here to copy: apt install fonts-nanum")
    shutil.copy(ROOT / "pong_text.py", tmp_path)
    (tmp_path / "fonts").mkdir()
    shutil.copy(HANGUL_FONT, tmp_path / "fonts" / "hangul.ttf")
    (tmp_path / "fonts" / "notes.txt").write_text("not a font")
    result = subprocess.run([sys.executable, "-c", "import pong_text; "
                             "print(pong_text.find_hangul_font())"], cwd=tmp_path,
                            env=dict(os.environ, PYGAME_HIDE_SUPPORT_PROMPT="1"),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "fonts" / "hangul.ttf")


@needs_hangul_font
def test_korean_screen_english_console(net_game, tmp_path):
    """--lang ko: the refusal is explained in Korean on the screen, and in
    the textbook's English in the console."""
    port = closed_port()
    picture = tmp_path / "refused.png"
    result = subprocess.run([sys.executable, "pong_harness.py", "--frames", "30",
                             "--screenshot", str(picture), "pong_net.py", HOST, str(port),
                             "--lang", "ko"], cwd=ROOT,
                            env=dict(os.environ, SDL_VIDEODRIVER="dummy",
                                     SDL_AUDIODRIVER="dummy"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr      # refused
    assert "Failed to connect. No relay is running at %s:%d." % (HOST, port) in result.stdout
    pong_text.use_language("ko", quiet=True)
    title = words("ko", "failed")
    small = pong_text.current().why_failed(nethelper.NO_RELAY, "", HOST, port, "pong_game", 3.0)
    assert same_picture(pygame.image.load(str(picture)),
                        court_with_message(net_game, None, title, small))


@pytest.fixture
def board_game(net_game):
    """pong_net against a relay of its own with the teacher's board."""
    with nethelper.Relay(["pong_game"], host=HOST, port=0, board=True, board_port=0) as relay:
        net_game.SERVER_PORT = relay.port
        run_frames_until(net_game, lambda: net_game.match.is_host)
        yield net_game, relay


def test_net_teachers_message_shows_for_5_seconds_over_the_game(board_game, capsys):
    from test_board import ask
    game, relay = board_game
    waiting = render_game(game)
    text = "Five minutes left, then save your work! 5분 남았어요, 저장하세요."
    assert ask(relay, "/message", relay.board.key, {"group": "pong_game", "text": text})[0] == 200
    run_frames_until(game, lambda: game.match.told_frames)
    assert "The teacher says: " + text in capsys.readouterr().out
    picture = render_game(game)
    rows = [y for y in range(HEIGHT) if any(
        picture.get_at((x, y)) != waiting.get_at((x, y)) for x in range(0, WIDTH, 2))]
    assert rows and min(rows) > HEIGHT // 2                 # a panel at the bottom, over the game
    assert picture.get_at((CENTRE_X, HEIGHT - 16))[:3] == pong_oop.MESSAGE_BOX_COLOR
    assert game.match.phase == "waiting" and game.net.connected       # the game goes on
    for _ in range(game.TEACHER_FRAMES):
        game.update()
    assert same_picture(render_game(game), waiting)         # 5 s later it is gone


def test_net_kicked_screen_gives_the_teachers_reason(board_game, capsys, lang):
    from test_board import ask
    game, relay = board_game
    assert ask(relay, "/kick", relay.board.key, {"group": "pong_game", "name": "Player1",
                                                 "text": "Please play fair"})[0] == 200
    run_frames_until(game, lambda: game.match.phase == "kicked")
    assert "Removed by the teacher. The teacher removed this game from the group: Please " \
           "play fair" in capsys.readouterr().out
    assert "Please play fair" in game.match.error and "60 s" in game.match.error
    picture = render_game(game)

    def expected(screen):
        screen.blit(court_with_message(game, None, words(lang, "kicked"),
                                       words(lang, "kicked_why")), (0, 0))
        pong_oop.draw_bottom_message(screen, game.match.error)     # (a font with Korean letters)
    assert same_picture(picture, render(expected))
    for _ in range(3 * 60):                 # it tries again, and is refused while banned
        game.update()
        time.sleep(0.005)
    assert game.match.phase == "kicked" and not game.net.connected
