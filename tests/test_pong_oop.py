"""Tests for pong_oop.py: the rules and physics on the real classes, and the
real game run as a program (headless, with the computer playing)."""
import json
import os
import re
import shutil
import subprocess
import sys
import wave
from pathlib import Path

# Headless: no window and no sound card needed. Set before pygame loads.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pygame  # noqa: E402
import pytest  # noqa: E402
from pgzero import loaders  # noqa: E402
from pgzero.constants import keys  # noqa: E402
from pgzero.keyboard import keyboard  # noqa: E402

import pong_oop  # noqa: E402
from pong_oop import (  # noqa: E402
    BALL_RADIUS, BAR_SPEED, FINAL_SCORE, HEIGHT, MAX_SPEED, SPEED_UP,
    VELOCITY, WIDTH, Ball, Bar, Score, bot_move, move_ball,
    move_bar_with_keys, update_ball,
)

HEADLESS_ENV = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")


def make_ball(center, vel):
    ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
    ball.set_state(center, vel)
    return ball


@pytest.fixture
def bars():
    """Fresh bars in their starting places (y from 250 to 350)."""
    return Bar(pong_oop.GAP_FROM_SCR), Bar(WIDTH - pong_oop.GAP_FROM_SCR - pong_oop.BAR_W)


@pytest.fixture
def game_state():
    """Put the module-level game back as it was after each test."""
    yield pong_oop
    pong_oop.game_started = False
    pong_oop.score.reset()
    pong_oop.ball.stop()


# ---- the ball on its own ----

def test_ball_keeps_fractions_of_a_pixel():
    ball = make_ball((100, 100), (5.4, -5.4))
    for _ in range(3):
        ball.move()
    assert ball.center == pytest.approx((116.2, 83.8))
    assert ball.vel == (5.4, -5.4)


def test_ball_state_round_trips_through_json():
    ball = make_ball((123.25, 456.5), (-5.832, 5.4))
    message = json.loads(json.dumps(ball.state()))
    assert message == {"center": [123.25, 456.5], "vel": [-5.832, 5.4]}
    other = make_ball((0, 0), (0, 0))
    other.set_state(message["center"], message["vel"])
    assert other.center == (123.25, 456.5)
    assert other.vel == (-5.832, 5.4)


def test_serve_starts_on_the_centre_line_at_starting_speed():
    ball = make_ball((10, 10), (11, -11))
    directions = set()
    heights = set()
    for _ in range(200):
        ball.serve()
        assert ball.centerx == WIDTH / 2
        assert BALL_RADIUS <= ball.centery <= HEIGHT - BALL_RADIUS
        assert abs(ball.vel[0]) == VELOCITY and abs(ball.vel[1]) == VELOCITY
        directions.add(ball.vel[0] > 0)
        heights.add(ball.centery)
    assert directions == {True, False}   # both players get served to
    assert len(heights) > 20             # the height really is random


# ---- walls ----

def test_ball_bounces_off_the_top(bars):
    score = Score()
    ball = make_ball((400, 12), (5, -5))
    events = update_ball(ball, *bars, score)
    assert events == ["wall"]
    assert ball.vel == (5, 5)
    assert ball.top == 0


def test_ball_bounces_off_the_bottom(bars):
    score = Score()
    ball = make_ball((400, HEIGHT - 12), (-5, 5))
    events = update_ball(ball, *bars, score)
    assert events == ["wall"]
    assert ball.vel == (-5, -5)
    assert ball.bottom == HEIGHT


def test_ball_leaving_a_wall_is_not_bounced_again(bars):
    # Touching the top but already flying down: must not be turned back up.
    ball = make_ball((400, BALL_RADIUS - 8), (5, 5))   # top at -8
    assert update_ball(ball, *bars, Score()) == []
    assert ball.vel == (5, 5)


# ---- bars ----

def test_centre_hit_on_left_bar_reverses_x_and_speeds_up(bars):
    bar1, _ = bars
    # Lower half while falling: only the x direction changes.
    ball = make_ball((bar1.right + BALL_RADIUS + 2, bar1.centery + 10), (-5, 5))
    events = update_ball(ball, *bars, Score())
    assert events == ["bar"]
    assert ball.vel == pytest.approx((5 * SPEED_UP, 5 * SPEED_UP))
    assert ball.left == bar1.right   # pushed out in front of the bar


def test_upper_half_while_falling_sends_ball_back_up(bars):
    bar1, _ = bars
    ball = make_ball((bar1.right + BALL_RADIUS + 2, bar1.centery - 30), (-5, 5))
    update_ball(ball, *bars, Score())
    assert ball.vel == pytest.approx((5 * SPEED_UP, -5 * SPEED_UP))


def test_lower_half_while_rising_sends_ball_back_down(bars):
    bar1, _ = bars
    ball = make_ball((bar1.right + BALL_RADIUS + 2, bar1.centery + 30), (-5, -5))
    update_ball(ball, *bars, Score())
    assert ball.vel == pytest.approx((5 * SPEED_UP, 5 * SPEED_UP))


def test_right_bar_upper_half_while_falling(bars):
    _, bar2 = bars
    ball = make_ball((bar2.left - BALL_RADIUS - 2, bar2.centery - 30), (5, 5))
    events = update_ball(ball, *bars, Score())
    assert events == ["bar"]
    assert ball.vel == pytest.approx((-5 * SPEED_UP, -5 * SPEED_UP))
    assert ball.right == bar2.left


def test_speed_keeps_its_fractions_after_hits(bars):
    bar1, bar2 = bars
    ball = make_ball((bar1.right + BALL_RADIUS + 2, bar1.centery + 10), (-5, 5))
    update_ball(ball, *bars, Score())
    ball.set_state((bar2.left - BALL_RADIUS - 2, bar2.centery + 10), ball.vel)
    update_ball(ball, *bars, Score())
    # 5 * 1.08 * 1.08 = 5.832: an integer Rect would have lost the .832
    assert ball.vel == pytest.approx((-5.832, 5.832))


def test_speed_is_capped(bars):
    bar1, _ = bars
    ball = make_ball((bar1.right + BALL_RADIUS + 2, bar1.centery + 10), (-11.5, 11.5))
    update_ball(ball, *bars, Score())
    assert ball.vel == (MAX_SPEED, MAX_SPEED)
    # and it stays capped however often it is hit
    for _ in range(30):
        ball.bounce_off_bar(bar1)
        assert max(abs(v) for v in ball.vel) == MAX_SPEED


def test_ball_overlapping_a_bar_after_a_bounce_is_not_stuck(bars):
    bar1, _ = bars
    # Half inside the bar but already flying away from it.
    ball = make_ball((bar1.right, bar1.centery), (5.4, 5.4))
    assert update_ball(ball, *bars, Score()) == []
    assert ball.vel == (5.4, 5.4)


def test_ball_deep_in_a_bar_is_pushed_out_and_bounced_once(bars):
    bar1, _ = bars
    ball = make_ball((bar1.right + 2, bar1.centery + 10), (-5, 5))
    events = [update_ball(ball, *bars, Score()) for _ in range(10)]
    assert events[0] == ["bar"]
    assert all(e == [] for e in events[1:])
    assert ball.left > bar1.right


def test_ball_already_past_a_bar_is_not_pulled_back(bars):
    bar1, _ = bars
    ball = make_ball((bar1.centerx - 3, bar1.centery), (-5, 5))
    assert "bar" not in update_ball(ball, *bars, Score())
    assert ball.vel[0] < 0


# ---- points and the end of the game ----

def test_ball_past_the_left_bar_is_a_point_for_player2(bars):
    score = Score()
    ball = make_ball((-BALL_RADIUS + 4, 100), (-5, 5))
    events = update_ball(ball, *bars, score)
    assert events == ["b2"]
    assert (score.b1, score.b2) == (0, 1)
    assert ball.centerx == WIDTH / 2   # served again
    assert abs(ball.vel[0]) == VELOCITY


def test_ball_past_the_right_bar_is_a_point_for_player1(bars):
    score = Score()
    ball = make_ball((WIDTH + BALL_RADIUS - 4, 500), (5, -5))
    assert update_ball(ball, *bars, score) == ["b1"]
    assert (score.b1, score.b2) == (1, 0)
    assert ball.centerx == WIDTH / 2


def test_move_ball_bounces_but_never_counts_points(bars):
    """Player 2 of pong_net guesses the ball with move_ball: it must not score."""
    ball = make_ball((-BALL_RADIUS + 4, 100), (-5, 5))
    assert move_ball(ball, *bars) == []
    assert ball.centerx < 0                       # still out, not served again
    ball = make_ball((400, BALL_RADIUS + 2), (3, -5))
    assert move_ball(ball, *bars) == ["wall"]


def test_score_rules():
    score = Score()
    for _ in range(FINAL_SCORE - 1):
        score.add(1)
        score.add(2)
    assert score.winner() is None and not score.game_over
    score.add(2)
    assert score.winner() == 2 and score.game_over
    with pytest.raises(ValueError):
        score.add(3)
    score.reset()
    assert (score.b1, score.b2, score.winner()) == (0, 0, None)


def test_winning_point_ends_the_game(bars):
    score = Score()
    score.b1 = FINAL_SCORE - 1
    ball = make_ball((WIDTH + BALL_RADIUS - 4, 300), (5, 5))
    assert update_ball(ball, *bars, score) == ["b1"]
    assert score.winner() == 1
    pong_oop.pong_text.use_language("en", quiet=True)     # (not the computer's language)
    assert pong_oop.winner_text(score) == "Player 1 wins!"
    # No new serve, and nothing more happens until a new game.
    assert ball.left > WIDTH
    assert update_ball(ball, *bars, score) == []
    assert (score.b1, score.b2) == (FINAL_SCORE, 0)


def test_space_starts_and_restarts_the_game(game_state):
    game = game_state
    game.on_key_down(keys.SPACE)
    assert game.game_started
    assert game.ball.vel != (0, 0)
    # Space in the middle of a game changes nothing...
    game.score.b1, game.score.b2 = 4, 6
    game.on_key_down(keys.SPACE)
    assert (game.score.b1, game.score.b2) == (4, 6)
    # ...but after a win it starts again from 0-0 with a fresh serve.
    game.score.b1 = FINAL_SCORE
    game.ball.set_state((WIDTH + 50, 300), (0, 0))
    game.on_key_down(keys.SPACE)
    assert (game.score.b1, game.score.b2) == (0, 0)
    assert game.ball.centerx == WIDTH / 2
    assert abs(game.ball.vel[0]) == VELOCITY


# ---- moving the bars ----

def test_bars_move_by_bar_speed_and_stay_on_screen():
    bar = Bar(20)
    start = bar.y
    bar.move_up()
    assert bar.y == start - BAR_SPEED
    for _ in range(100):
        bar.move_up()
    assert bar.top == 0
    for _ in range(100):
        bar.move_down()
    assert bar.bottom == HEIGHT
    bar.place(-40)
    assert bar.top == 0
    bar.place(HEIGHT)
    assert bar.bottom == HEIGHT
    bar.place(123)
    assert bar.y == 123


@pytest.fixture
def pressed_keys():
    """Press keys on Pygame Zero's real keyboard object; release them after."""
    pressed = []

    def press(key):
        keyboard._press(key.value)
        pressed.append(key)

    yield press
    for key in pressed:
        keyboard._release(key.value)


@pytest.mark.parametrize("key, step", [
    (keys.A, -BAR_SPEED), (keys.W, -BAR_SPEED),
    (keys.Z, BAR_SPEED), (keys.S, BAR_SPEED),
])
def test_left_player_keys(pressed_keys, key, step):
    bar = Bar(20)
    start = bar.y
    pressed_keys(key)
    move_bar_with_keys(bar, keyboard, pong_oop.BAR1_UP_KEYS, pong_oop.BAR1_DOWN_KEYS)
    assert bar.y == start + step


def test_right_player_arrows_move_only_the_right_bar(pressed_keys, game_state):
    game = game_state
    bar1_y, bar2_y = game.bar1.y, game.bar2.y
    pressed_keys(keys.DOWN)
    game.move_bars()
    assert (game.bar1.y, game.bar2.y) == (bar1_y, bar2_y + BAR_SPEED)
    game.bar2.place(bar2_y)


def test_bot_follows_the_ball():
    bar = Bar(20)
    start = bar.y
    ball = make_ball((300, 100), (-5, 5))
    bot_move(bar, ball)
    assert bar.y == start - BAR_SPEED       # one step, no faster than a player
    for _ in range(100):
        bot_move(bar, ball)
    assert abs(bar.centery - ball.centery) <= pong_oop.BOT_DEAD_ZONE
    # Near enough: it keeps still instead of shaking.
    y = bar.y
    bot_move(bar, ball)
    assert bar.y == y
    ball.set_state((300, 550), (-5, 5))
    bot_move(bar, ball)
    assert bar.y == y + BAR_SPEED


# ---- sounds ----

def test_play_sound_without_a_sound_device_does_not_crash(game_state):
    pygame.mixer.quit()
    try:
        pong_oop.play_sound("bar")
        assert pong_oop.sound_works is False
        pong_oop.play_sound("wall")   # stays quiet afterwards
    finally:
        pong_oop.sound_works = True


def test_play_sound_plays_the_wav(game_state):
    pygame.mixer.init()
    loaders.set_root(str(ROOT / "pong_oop.py"))
    try:
        pong_oop.play_sound("die")
        assert pong_oop.sound_works is True
        assert pygame.mixer.get_busy()
    finally:
        pygame.mixer.quit()


def test_sounds_and_icon_are_made_the_same_every_time(tmp_path):
    # make_assets.py writes next to itself: run a copy in a temporary folder
    # and compare with the committed files.
    shutil.copy(ROOT / "make_assets.py", tmp_path)
    subprocess.run([sys.executable, "make_assets.py"], cwd=tmp_path,
                   check=True, capture_output=True, timeout=60)
    for name in ("wall", "bar", "die"):
        committed = ROOT / "sounds" / (name + ".wav")
        assert committed.read_bytes() == (tmp_path / "sounds" / (name + ".wav")).read_bytes()
        with wave.open(str(committed)) as wav:
            assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
            seconds = wav.getnframes() / wav.getframerate()
            assert 0.05 <= seconds <= 0.4
    # The window icon is drawn the same way every time, and the games use it.
    made = pygame.image.load(str(tmp_path / "images" / "icon.png"))
    committed = pygame.image.load(str(ROOT / "images" / "icon.png"))
    assert committed.get_size() == (32, 32)
    assert pygame.image.tobytes(made, "RGB") == pygame.image.tobytes(committed, "RGB")
    assert pong_oop.ICON == str(ROOT / "images" / "icon.png")


# ---- the real program ----

def test_importing_does_not_start_a_game():
    code = ("import sys, pygame, pong_oop; "
            "print(pong_oop.game_started, 'pgzrun' in sys.modules, "
            "pygame.display.get_surface() is None)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=HEADLESS_ENV,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["False", "False", "True"]


def test_demo_plays_a_full_game_to_the_end(tmp_path):
    # A demo game takes about 15,000 frames (20,000 at most in 2,000
    # simulated games). --speed 300 plays 300 of them per frame shown, so
    # 100 frames shown (under 2 s) leave plenty of room.
    picture = tmp_path / "end.png"
    command = [sys.executable, "pong_oop.py", "--demo", "--speed", "300",
               "--frames", "100", "--screenshot", str(picture)]
    result = subprocess.run(command, cwd=ROOT, env=HEADLESS_ENV,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    winner = re.search(r"^Winner: Player([12]) (\d+)-(\d+)$", result.stdout, re.M)
    assert winner, result.stdout
    player, b1, b2 = (int(n) for n in winner.groups())
    assert max(b1, b2) == FINAL_SCORE and min(b1, b2) < FINAL_SCORE
    assert (b1 > b2) == (player == 1)
    assert "Stopped after 100 frames, score %d-%d" % (b1, b2) in result.stdout
    image = pygame.image.load(str(picture))
    assert image.get_size() == (WIDTH, HEIGHT)
    assert image.get_at((5, HEIGHT - 5))[:3] == (0, 0, 0)             # background
    assert image.get_at((WIDTH // 2, HEIGHT - 5))[:3] == (190, 190, 190)  # centre line
    left_bar_column = [image.get_at((27, y))[:3] for y in range(HEIGHT)]
    assert left_bar_column.count((255, 255, 255)) == pong_oop.BAR_H


def test_pgzrun_command_runs_the_game():
    # The pgzrun command is "python -m pgzero FILE"; it cannot pass options,
    # so the game just waits for Space. It must still be running after two
    # seconds of frames (an error in starting up or drawing would have stopped it).
    process = subprocess.Popen([sys.executable, "-m", "pgzero", "pong_oop.py"],
                               cwd=ROOT, env=HEADLESS_ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=2)
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=10)
    assert "Traceback" not in errors
