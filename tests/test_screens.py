"""Every screen of both games, drawn headless and checked as a picture.

Each screen is drawn by the game's own draw() (for pong_net after real
frames against a real relay), then compared pixel for pixel with the court
plus the message the screen should show, drawn by pong_oop's functions. So
these tests check which words appear, and that the words stay readable:
the centre line never runs through a message, and the parked ball is not
hidden behind one.
"""
import importlib
import time

import pygame
import pytest
from pgzero import ptext
from pgzero.constants import keys
from pgzero.screen import Screen

from conftest import HOST, wait_for
import nethelper
import pong_oop
from pong_oop import (BACKGROUND_COLOR, FINAL_SCORE, HEIGHT, LINE_COLOR, TEXT_COLOR, WIDTH,
                      draw_bar_label, draw_game, draw_message)

CENTRE_X = WIDTH // 2


@pytest.fixture(scope="module", autouse=True)
def display():
    """Text needs a display mode; the dummy driver gives one without a window."""
    pygame.init()
    pygame.display.set_mode((WIDTH, HEIGHT))
    yield
    pygame.display.quit()


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
            draw_bar_label(screen, you, "YOU")
        if getattr(getattr(game, "match", None), "opponent_here", False):
            game.draw_ping(screen)
    return render(draw)


def court_with_message(game, you, text, small_text=""):
    def draw(screen):
        screen.blit(court(game, you), (0, 0))
        draw_message(screen, text, small_text)
    return render(draw)


def same_picture(a, b):
    return pygame.image.tobytes(a, "RGB") == pygame.image.tobytes(b, "RGB")


def check_message_is_readable(picture, plain_court):
    """Where the message is, the centre line does not show; outside it does."""
    changed_rows = [y for y in range(HEIGHT)
                    if any(picture.get_at((x, y)) != plain_court.get_at((x, y))
                           for x in range(CENTRE_X - 120, CENTRE_X + 121, 3))]
    assert changed_rows, "no message on the screen"
    top, bottom = min(changed_rows), max(changed_rows)
    line = rgb(LINE_COLOR)
    crossed = [y for y in range(top, bottom + 1) if picture.get_at((CENTRE_X, y))[:3] == line]
    assert not crossed, "the centre line runs through the message at y=%s" % crossed[:5]
    # The words are there: plenty of pure text-coloured pixels in the box.
    text_pixels = sum(picture.get_at((x, y))[:3] == rgb(TEXT_COLOR)
                      for y in range(top, bottom + 1) for x in range(100, WIDTH - 100, 2))
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


def test_local_start_screen_shows_both_players_keys(local_game):
    picture = render_game(local_game)
    keys_help = "Left bar: A = up, Z = down\nRight bar: Up and Down arrows"
    assert same_picture(picture, court_with_message(local_game, None, "Press Space to start",
                                                    keys_help))
    check_message_is_readable(picture, court(local_game))


def test_local_game_against_the_computer_marks_your_bar(local_game):
    local_game.bot_plays_bar2 = True
    picture = render_game(local_game)
    expected = court_with_message(local_game, local_game.bar1, "Press Space to start",
                                  "Your bar (left): A = up, Z = down")
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


def test_local_winner_screen(local_game):
    local_game.start_game()
    for _ in range(FINAL_SCORE):
        local_game.score.add(2)
    local_game.ball.stop()
    picture = render_game(local_game)
    assert same_picture(picture, court_with_message(local_game, None, "Player 2 wins!",
                                                    "Press Space to play again"))
    check_message_is_readable(picture, court(local_game))


# ---- pong_net: the network game, against a real relay ----

@pytest.fixture
def net_game(relay):
    """A fresh pong_net (its own NetNode) pointed at the test's relay."""
    import pong_net
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


def test_net_waiting_ready_rally_and_winner_screens(net_game, relay):
    game = net_game
    run_frames_until(game, lambda: game.match.is_host)
    picture = render_game(game)
    assert same_picture(picture, court_with_message(
        game, game.bar1, "Waiting for a peer connection...",
        "You are Player 1, the left bar.\nStart the game on a second computer or window."))
    check_message_is_readable(picture, court(game, game.bar1))

    player2 = other_player(relay, "Player2")
    try:
        run_frames_until(game, lambda: game.match.opponent_here)
        picture = render_game(game)
        assert same_picture(picture, court_with_message(
            game, game.bar1, "Press Space to start",
            "Your bar: A = up, Z = down (or the Up and Down arrows)"))
        check_message_is_readable(picture, court(game, game.bar1))

        game.on_key_down(keys.SPACE)
        for _ in range(20):
            game.update()
        assert game.match.game_started and game.ball.vel != (0.0, 0.0)
        assert same_picture(render_game(game), court(game, game.bar1))    # just YOU

        for _ in range(FINAL_SCORE):
            game.score.add(2)
        game.ball.stop()
        picture = render_game(game)
        assert same_picture(picture, court_with_message(game, game.bar1, "Player 2 wins!",
                                                        "Press Space to play again"))
        check_message_is_readable(picture, court(game, game.bar1))
    finally:
        player2.disconnect()


def test_net_player2_is_told_on_screen_when_it_takes_over(net_game, relay):
    game = net_game
    host = other_player(relay, "Player1")
    try:
        run_frames_until(game, lambda: game.match.me == game.PEER_NAME and game.match.opponent_here)
        picture = render_game(game)
        assert same_picture(picture, court_with_message(
            game, game.bar2, "Press Space to start",
            "Your bar: A = up, Z = down (or the Up and Down arrows)"))
    finally:
        host.disconnect()
    run_frames_until(game, lambda: game.match.is_host and game.net.connected)
    picture = render_game(game)
    assert same_picture(picture, court_with_message(
        game, game.bar1, "The host is disconnected",
        "You are the host now: Player 1, the left bar.\nWaiting for a new player..."))
    check_message_is_readable(picture, court(game, game.bar1))
    # A new opponent arrives: the note is gone, the normal start screen is back.
    newcomer = other_player(relay, "Player2")
    try:
        run_frames_until(game, lambda: game.match.opponent_here)
        assert game.match.phase == "playing"
    finally:
        newcomer.disconnect()


def test_net_connection_lost_screen(net_game):
    game = net_game
    with nethelper.Relay(["pong_game"], host=HOST, port=0) as own_relay:
        game.SERVER_PORT = own_relay.port
        run_frames_until(game, lambda: game.match.is_host)
    run_frames_until(game, lambda: not game.net.connected)
    picture = render_game(game)
    # The relay said it was stopping: the screen says so, not just "lost".
    assert same_picture(picture, court_with_message(game, None, "The relay was stopped",
                                                    "Trying to reconnect..."))
    check_message_is_readable(picture, court(game))


def test_net_group_full_screen(net_game, relay):
    game = net_game
    players = [other_player(relay, "Player1"), other_player(relay, "Player2")]
    try:
        run_frames_until(game, lambda: game.match.phase == "group_full")
    finally:
        for player in players:
            player.disconnect()
    picture = render_game(game)
    assert same_picture(picture, court_with_message(
        game, None, "The group is full",
        "Two players are already in this group.\n"
        "Wait for them to finish, or use another group."))
    check_message_is_readable(picture, court(game))


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


def test_net_kicked_screen_gives_the_teachers_reason(board_game, capsys):
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
        screen.blit(court_with_message(game, None, "Removed by the teacher", "This game may "
                                       "join again in a minute.\nThe teacher's reason is below."),
                    (0, 0))
        game.draw_teacher_message(screen, game.match.error)     # (a font with Korean letters)
    assert same_picture(picture, render(expected))
    for _ in range(3 * 60):                 # it tries again, and is refused while banned
        game.update()
        time.sleep(0.005)
    assert game.match.phase == "kicked" and not game.net.connected


def test_every_message_fits_on_the_screen():
    for text, small_text in [("Waiting for a peer connection...",
                              "You are Player 2, the right bar.\n"
                              "Start the game on a second computer or window."),
                             ("Failed to connect", "No answer from 192.168.100.200:65042 "
                              "within 3 s\nStart the relay first: python nethelper.py -g "
                              "pong_game")]:
        box = pong_oop.message_box(text, small_text)
        assert box.left >= 0 and box.right <= WIDTH
        small_font = ptext.getfont(None, pong_oop.SMALL_TEXT)
        for line in small_text.splitlines():
            assert small_font.size(line)[0] <= box.width - 20, line
