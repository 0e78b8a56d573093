"""Pong for two players on two computers, through a nethelper relay.

How to play on one computer:

    python nethelper.py -g pong_game      (in one terminal: the relay)
    python pong_net.py                    (in a second terminal: Player 1)
    python pong_net.py                    (in a third terminal: Player 2)

(or just "python play.py", which does all three). To play across a network,
start the relay on one computer and give the others its address:

    python pong_net.py 192.168.0.12       (or change SERVER_IP below)

The first game to join becomes Player 1, the *host*: it moves the ball,
decides bounces and counts points, and plays the left bar. The second
becomes Player 2 and plays the right bar. Both use A/Z (or W/S) or the
Up/Down arrows to move their own bar, and Space to start.

Options (after the address and port, if any):

    --bot             the computer plays your bar (and presses Space)
    --frames N        quit after N frames (for the tests)
    --screenshot PNG  with --frames: save the last frame as a PNG picture

Messages between the two games, each sent every frame unless noted:
    bar_pos     [x, y] of the sender's bar
    ball_pos    {"center": [x, y], "vel": [vx, vy]}, from the host
    score       "b1" or "b2" when a player wins a point, from the host (queued)
    game_start  True, from whoever pressed Space (queued)
"""
import argparse
import math
import statistics
import sys
import time

# First: pong_oop says plainly if Python is too old or Pygame Zero is missing,
# hides pygame's greeting, and keeps print() from failing on any console.
import pong_oop
import pygame
from pgzero.constants import keys
from pgzero.keyboard import keyboard

from nethelper import BAD_ADDRESS, DEFAULT_PORT, NO_RELAY, TIMEOUT, NetNode
# WIDTH and HEIGHT are imported for Pygame Zero: it sizes the window from them.
from pong_oop import (BALL_RADIUS, BAR_W, GAP_FROM_SCR, HEIGHT, WIDTH, Ball, Bar, Score,
                      bot_move, draw_bar_label, draw_game, draw_message, draw_start_or_winner,
                      event_sound, move_ball, move_bar_with_keys, play_sound, update_ball)

SERVER_IP = "localhost"     # the relay's address, in quotes: e.g. SERVER_IP = "192.168.0.12"
SERVER_PORT = DEFAULT_PORT
GROUP = "pong_game"
HOST_NAME = "Player1"
PEER_NAME = "Player2"
TITLE = "pong"
ICON = pong_oop.ICON        # the window's icon, from images/ (None if it is missing)

UP_KEYS = [keys.A, keys.W, keys.UP]          # both players may use either set of keys
DOWN_KEYS = [keys.Z, keys.S, keys.DOWN]
KEYS_HELP = "Your bar: A = up, Z = down (or the Up and Down arrows)"
RECONNECT_EVERY = 2.0       # seconds between tries while the relay is gone
REFUSAL_FRAMES = 4 * 60     # how long (4 s) a refused game shows why before it closes

net = NetNode()
score = Score()
ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
ball.stop()
bar1 = Bar(GAP_FROM_SCR)                      # the host's bar, on the left
bar2 = Bar(WIDTH - GAP_FROM_SCR - BAR_W)      # Player 2's bar, on the right

me = None                   # HOST_NAME or PEER_NAME once we have joined
opponent_here = False
took_over = False           # True after the host left and we became the host
refusal = None              # (title, explanation) once the relay said no
game_started = False
next_reconnect = 0.0

bot_plays = False           # --bot
max_frames = None           # --frames
screenshot_path = None      # --screenshot
frame_count = 0
ball_drift = []             # Player 2: how far its own guess was from the host's ball


# ---- joining the game ----

def join_game():
    """Join as the host if nobody is, otherwise as Player 2."""
    global me
    for name in (HOST_NAME, PEER_NAME):
        if net.connect(SERVER_IP, name, GROUP, port=SERVER_PORT, timeout=3):
            me = name
            reset_game()
            if me == HOST_NAME:
                print("Connected as host (Player 1)", flush=True)
                pygame.display.set_caption("pong - Player 1 (host)")
            else:
                print("Connected as peer (Player 2)", flush=True)
                pygame.display.set_caption("pong - Player 2")
            return True
        if net.error_code != "name_taken":
            return False    # no point trying the other name
    return False


def first_join():
    """The first thing the game does: join, or explain why not (in the
    console and on the screen) and quit a little later."""
    global refusal
    if join_game():
        return
    if net.error_code == "name_taken":
        print("Failed to connect. The group is full.", flush=True)
        # (The group's name stays off the screen: the game's font has no
        # Korean letters, and a teacher may well call a group 퐁게임.)
        refusal = ("The group is full", "Two players are already in this group.\n"
                                        "Wait for them to finish, or use another group.")
    else:
        print("Failed to connect.", net.error, flush=True)
        explanation = net.error
        if net.error_code in (NO_RELAY, TIMEOUT, BAD_ADDRESS):
            print("Start the relay first with: python nethelper.py -g", GROUP, flush=True)
            explanation += "\nStart the relay first: python nethelper.py -g " + GROUP
        refusal = ("Failed to connect", explanation)


def who_am_i():
    return "Player 1, the left bar" if me == HOST_NAME else "Player 2, the right bar"


def opponent():
    return PEER_NAME if me == HOST_NAME else HOST_NAME


def my_bar():
    return bar1 if me == HOST_NAME else bar2


def their_bar():
    return bar2 if me == HOST_NAME else bar1


def watch_the_group():
    """Notice when the other player arrives or leaves."""
    global opponent_here, took_over
    here = opponent() in net.get_peers()
    if here == opponent_here:
        return
    opponent_here = here
    if here:
        took_over = False
        print("%s is here. Let's play!" % opponent(), flush=True)
    elif me == HOST_NAME:
        print("Player 2 left. Waiting for a new opponent.", flush=True)
        reset_game()
    else:
        # Without a host there is no ball. Become the host, so that a new
        # opponent can join us, instead of leaving the player stranded.
        print("The host left. Taking over as host (Player 1).", flush=True)
        took_over = True
        net.disconnect()
        if not join_game():
            print("Could not take over:", net.error, flush=True)


def recover_lost_connection():
    """The relay went away: say so once, then try to join again now and then."""
    global next_reconnect, opponent_here
    now = time.monotonic()
    if next_reconnect == 0.0:
        print("Lost the connection to the relay:", net.error, flush=True)
        opponent_here = False
        reset_game()
    if now >= next_reconnect:
        next_reconnect = now + RECONNECT_EVERY
        if join_game():
            next_reconnect = 0.0


# ---- playing ----

def reset_game():
    global game_started
    game_started = False
    score.reset()
    ball.stop()


def start_game():
    global game_started
    game_started = True
    score.reset()
    if me == HOST_NAME:
        ball.serve()
    else:
        ball.stop()         # until the host's ball arrives
    print("Game started", flush=True)


def may_start():
    return opponent_here and (not game_started or score.game_over)


def press_start():
    """Space (or the bot): start here, and tell the other side."""
    if may_start():
        start_game()
        net.send_msg(opponent(), "game_start", True, queue=True)


def on_key_down(key):
    if refusal:
        sys.exit(1)         # any key closes a game the relay refused
    if key == keys.SPACE:
        press_start()


def play_frame():
    """One frame with both players present."""
    if bot_plays:
        bot_move(my_bar(), ball)
        press_start()
    else:
        move_bar_with_keys(my_bar(), keyboard, UP_KEYS, DOWN_KEYS)
    net.send_msg(opponent(), "bar_pos", [my_bar().x, my_bar().y])
    position = net.get_msg(opponent(), "bar_pos")
    if position is not None:
        their_bar().place(position[1])
    if net.get_all_msgs(opponent(), "game_start") and may_start():
        start_game()
    if me == HOST_NAME:
        host_frame()
    else:
        peer_frame()


def host_frame():
    """The host is the referee: it moves the ball and counts the points."""
    if game_started and not score.game_over:
        for event in update_ball(ball, bar1, bar2, score):
            play_sound(event_sound(event))
            if event in ("b1", "b2"):
                net.send_msg(PEER_NAME, "score", event, queue=True)
                report_score()
        net.send_msg(PEER_NAME, "ball_pos", ball.state())


def peer_frame():
    """Player 2 moves the ball itself, so it looks smooth, and puts it where
    the host says whenever a new position arrives."""
    points = net.get_all_msgs(HOST_NAME, "score") or []
    for point in points:
        score.add(1 if point == "b1" else 2)
        play_sound("die")
        report_score()
    if game_started and not score.game_over:
        for event in move_ball(ball, bar1, bar2):     # guess what the host will do
            play_sound(event_sound(event))
    state = net.get_msg(HOST_NAME, "ball_pos")      # None unless a new one came
    if state is not None:
        if game_started and not points and ball.vel != (0.0, 0.0):
            ball_drift.append(math.dist(ball.center, state["center"]))
        ball.set_state(state["center"], state["vel"])


def report_score():
    print("Score %d-%d" % (score.b1, score.b2), flush=True)
    if score.game_over:
        print("Winner: Player%d %d-%d" % (score.winner(), score.b1, score.b2), flush=True)


# ---- Pygame Zero's hooks ----

def update():
    global frame_count
    frame_count += 1
    if refusal:
        if frame_count > REFUSAL_FRAMES:
            sys.exit(1)
        return
    if me is None:
        first_join()
    net.process_recv()
    if net.connected:
        watch_the_group()
    if not net.connected:
        recover_lost_connection()
    elif opponent_here:
        play_frame()
    net.process_send()


# screen is not imported: Pygame Zero provides it once the game runs.
def draw():
    draw_game(screen, ball, bar1, bar2, score)
    if net.connected:
        draw_bar_label(screen, my_bar(), "YOU")
    if refusal:
        draw_message(screen, *refusal)
    elif not net.connected:
        draw_message(screen, "Connection lost", "Trying to reconnect...")
    elif not opponent_here and took_over:
        draw_message(screen, "The host left", "You are the host now: Player 1, the left bar.\n"
                                              "Waiting for a new player...")
    elif not opponent_here:
        draw_message(screen, "Waiting for a peer connection...",
                     "You are %s.\nStart the game on a second computer or window." % who_am_i())
    else:
        draw_start_or_winner(screen, score, game_started, KEYS_HELP)
    if max_frames is not None and frame_count >= max_frames:
        finish()


def finish():
    """End of --frames: save the screenshot if asked for, report, and quit."""
    if screenshot_path:
        pygame.image.save(screen.surface, screenshot_path)
    if refusal:
        sys.exit(1)
    if ball_drift:
        print("Ball drift: %d corrections, median %.1f px, max %.1f px" % (
            len(ball_drift), statistics.median(ball_drift), max(ball_drift)), flush=True)
    print("Stopped after %d frames as %s, score %d-%d" % (
        frame_count, me, score.b1, score.b2), flush=True)
    net.disconnect()
    sys.exit(0)


def read_options(args):
    parser = argparse.ArgumentParser(description="Pong for two players on two computers.")
    parser.add_argument("server_ip", nargs="?", default=SERVER_IP,
                        help="the relay's address (default %(default)s)")
    parser.add_argument("port", nargs="?", type=int, default=SERVER_PORT,
                        help="the relay's port (default %(default)s)")
    parser.add_argument("--bot", action="store_true", help="the computer plays your bar")
    parser.add_argument("--frames", type=int, metavar="N", help="quit after N frames")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="with --frames: save the last frame to PNG")
    return parser.parse_args(args)


def use_options(options):
    global SERVER_IP, SERVER_PORT, bot_plays, max_frames, screenshot_path
    SERVER_IP, SERVER_PORT = options.server_ip, options.port
    bot_plays = options.bot
    max_frames = options.frames
    screenshot_path = options.screenshot


if __name__ == "__main__":
    # Imported here only, because importing pgzrun turns the *main* program
    # into a Pygame Zero game (see pong_oop.py).
    import pgzrun
    use_options(read_options(sys.argv[1:]))
    try:
        pgzrun.go()
    except KeyboardInterrupt:       # Ctrl+C in the terminal: leave politely
        net.disconnect()
