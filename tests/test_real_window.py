"""The local game in a real X window, played with real key presses.

The other tests run the games headless (SDL's dummy video driver), where no
key is ever pressed. Here the game opens a real window on a private X server
(Xvfb) and xdotool presses the keys the start screen shows, the way a
keyboard would. Skipped where Xvfb or xdotool is not installed (on Debian or
Ubuntu: sudo apt-get install xvfb xdotool).
"""
import os
import shutil
import subprocess
import sys

import pygame
import pytest

from conftest import ROOT, wait_for
from pong_oop import BAR_H, BAR_W, GAP_FROM_SCR, HEIGHT, MESSAGE_BOX_COLOR, WIDTH

pytestmark = pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("xdotool")),
    reason="needs Xvfb and xdotool (apt-get install xvfb xdotool)")

FRAMES = 150        # 2.5 s: time enough for a bar to cross the whole court
LEFT_BAR_X = GAP_FROM_SCR + BAR_W // 2
RIGHT_BAR_X = WIDTH - GAP_FROM_SCR - BAR_W // 2


@pytest.fixture
def x_display():
    """A private X server; Xvfb writes its display number once it is ready."""
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0",
                               "1024x768x24", "-nolisten", "tcp"], pass_fds=[write_end],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as ready:
        number = ready.readline().strip()
    if not number:
        server.kill()
        server.wait()
        pytest.fail("Xvfb did not start")
    yield ":" + number
    server.terminate()
    server.wait(timeout=10)


def xdotool(display, *args):
    result = subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=display),
                            capture_output=True, text=True, timeout=15)
    assert result.returncode == 0, "xdotool %s: %s" % (" ".join(args), result.stderr)
    return result.stdout


def game_window(display, pid):
    """The id of the game's 800x600 window, once it is on the screen.

    Pygame Zero first opens a small window and then makes it the game's
    size (pygame may replace the window while doing so), so wait for a
    shown window of the right size before giving it the keyboard."""
    def ask(*args):         # no check: a window may vanish between two questions
        return subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=display),
                              capture_output=True, text=True, timeout=15).stdout

    def find():
        for window in ask("search", "--onlyvisible", "--pid", str(pid)).split():
            if "WIDTH=%d\nHEIGHT=%d" % (WIDTH, HEIGHT) in ask("getwindowgeometry", "--shell",
                                                                 window):
                return window
        return None
    window = wait_for(find, timeout=15, step=0.05)
    assert window, "the game's window did not appear"
    xdotool(display, "windowfocus", "--sync", window)
    return window


def white_rows(picture, x):
    return [y for y in range(HEIGHT) if picture.get_at((x, y))[:3] == (255, 255, 255)]


# The start screen says "Left bar: A = up, Z = down" and "Right bar: Up and
# Down arrows": press those keys (held down) and Space.
@pytest.mark.parametrize("left_key, right_key", [("z", "Up"), ("a", "Down")])
def test_keys_on_the_start_screen_move_the_bars_and_space_starts(x_display, tmp_path,
                                                                  left_key, right_key):
    picture_path = tmp_path / "window.png"
    env = dict(os.environ, DISPLAY=x_display, SDL_VIDEODRIVER="x11", SDL_AUDIODRIVER="dummy")
    game = subprocess.Popen([sys.executable, str(ROOT / "pong_oop.py"), "--frames", str(FRAMES),
                             "--screenshot", str(picture_path)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        game_window(x_display, game.pid)
        xdotool(x_display, "keydown", left_key, "keydown", right_key)
        xdotool(x_display, "key", "space")
        output, errors = game.communicate(timeout=30)
    finally:
        if game.poll() is None:
            game.kill()
            game.wait()
        xdotool(x_display, "keyup", left_key, "keyup", right_key)
    assert game.returncode == 0, errors
    assert "Traceback" not in errors
    assert "Stopped after %d frames" % FRAMES in output

    picture = pygame.image.load(str(picture_path))
    left, right = white_rows(picture, LEFT_BAR_X), white_rows(picture, RIGHT_BAR_X)
    # Each bar went all the way in the direction of its key (the ball may
    # happen to pass a column, so only the bar's own rows are demanded).
    bottom = list(range(HEIGHT - BAR_H, HEIGHT))
    top = list(range(BAR_H))
    assert set(bottom if left_key == "z" else top) <= set(left), left
    assert set(top if right_key == "Up" else bottom) <= set(right), right
    # Space started the game: the "Press Space to start" panel is gone.
    panel = tuple(pygame.Color(MESSAGE_BOX_COLOR))[:3]
    assert not any(picture.get_at((x, y))[:3] == panel
                   for x in range(0, WIDTH, 4) for y in range(0, HEIGHT // 2, 4))


def test_network_game_moves_your_bar_with_the_keys_it_shows(x_display, tmp_path):
    # The host's start screen says "Your bar: A = up, Z = down": hold A in
    # the host's window while the game starts (--autostart presses Space for
    # the host: a computer-played Player 2 never starts a person's game).
    from conftest import HOST, start_relay_process, stop_process
    relay, port, _ = start_relay_process("-g", "pong_game", "-p", "0", "-i", HOST)
    picture_path = tmp_path / "host.png"
    x11 = dict(os.environ, DISPLAY=x_display, SDL_VIDEODRIVER="x11", SDL_AUDIODRIVER="dummy")
    host = subprocess.Popen([sys.executable, str(ROOT / "pong_harness.py"), "--frames", "300",
                             "--screenshot", str(picture_path), str(ROOT / "pong_net.py"), HOST,
                             str(port), "--autostart"], cwd=ROOT,
                            env=x11, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peer = None
    try:
        window = game_window(x_display, host.pid)
        peer = subprocess.Popen([sys.executable, "-u", str(ROOT / "pong_net.py"), HOST, str(port),
                                 "--bot"], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, SDL_VIDEODRIVER="dummy"))
        for line in peer.stdout:                    # wait until Player 2 is in
            if "Connected as peer" in line:
                break
        xdotool(x_display, "windowfocus", "--sync", window)    # again: it may have moved
        xdotool(x_display, "keydown", "a")
        output, _ = host.communicate(timeout=30)
    finally:
        for process in (host, peer):
            if process and process.poll() is None:
                process.kill()
                process.wait()
        xdotool(x_display, "keyup", "a")
        stop_process(relay)
    assert host.returncode == 0, output
    assert "Game started" in output and "Traceback" not in output, output
    picture = pygame.image.load(str(picture_path))
    assert set(range(BAR_H)) <= set(white_rows(picture, LEFT_BAR_X))     # all the way up
    yellow = [(x, y) for x in range(GAP_FROM_SCR + BAR_W, 120) for y in range(BAR_H)
              if picture.get_at((x, y))[:3] == (255, 255, 0)]
    assert len(yellow) > 50                                              # "YOU" went along
