"""A stand-in for the textbook's own pong_net.py, for tests/test_book_peer.py.

    python tests/bookpeer.py RELAY_IP PORT FRAMES RECORD.jsonl

The Korean Mu editor ships the textbook's network Pong (roboticsware/mu,
mu/resources/pygamezero/pong_net.py). This project may not copy it, so this
is a small Pygame Zero game of our own that talks exactly as the textbook's
does, and reads what arrives exactly the way the textbook does, so that our
game is tested against the textbook's habits:

* it joins group pong_game as Player1 (the host) or, if that name is taken,
  as Player2, waiting for each answer (wait=True);
* every frame it sends bar_pos, its bar's centre (a tuple of two numbers),
  and reads the other's with clear=False, unpacking it into its own bar's
  centre with `centerx, centery = value` (three numbers would crash it, as
  they crash the textbook's game);
* Player 1 moves the ball, bounces it off both bars and the walls, sends
  ball_pos {'center': ..., 'vel': ...} every frame and score 'b1' or 'b2';
* Player 2 reads ball_pos by its keys 'center' and 'vel' only, and in every
  frame puts its ball there and moves it on by itself one frame (it decides
  nothing: its bounces are for the sounds only);
* whoever starts sends game_start True.

The computer plays its bar: it follows the ball, but misses on purpose
every other time the ball comes its way (so points come quickly), and it
starts the game once both players are in. After FRAMES frames it writes
"Stopped" and quits. Every frame it writes what its screen shows to
RECORD.jsonl, in the format of pong_harness.py --record:
{"t", "me", "ball", "bar1", "bar2", "score", "playing"}.
"""
import json
import os
import sys
import time

# This project's nethelper, from the folder above (found before importing
# pgzrun, which replaces this module's __file__ with its own builtins').
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import pgzrun  # noqa: E402
from pgzero.rect import Rect  # noqa: E402  (the whole-pixel Rect a Pygame Zero game gets)

from nethelper import NetNode  # noqa: E402

TITLE = "pong (textbook stand-in)"
WIDTH = 800
HEIGHT = 600
BAR_W, BAR_H = 15, 100
GAP = 20
BALL_SIZE = 14              # the textbook's ball: a square of radius * sqrt(2)
BAR_STEP = 7
SERVE_SPEED = 5
FASTER = 1.08
FINAL_SCORE = 11
MISS_BY = 90                # px: how far off the bar aims when it means to miss

relay_ip, port, last_frame, record_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
record = open(record_path, "w", buffering=1)

net = NetNode()


class Ball(Rect):
    vx = vy = 0


ball = Ball(WIDTH // 2, HEIGHT // 2, BALL_SIZE, BALL_SIZE)
bar1 = Rect(GAP, HEIGHT // 2 - BAR_H // 2, BAR_W, BAR_H)
bar2 = Rect(WIDTH - GAP - BAR_W, HEIGHT // 2 - BAR_H // 2, BAR_W, BAR_H)
score = {"b1": 0, "b2": 0}
playing = False
frames = 0
approaches = 0              # how many times the ball has come toward my bar
coming = False

if net.connect(relay_ip, "Player1", "pong_game", port=port, wait=True):
    me, other, my_bar, other_bar = "Player1", "Player2", bar1, bar2
    print("Connected as host (Player 1)", flush=True)
elif net.connect(relay_ip, "Player2", "pong_game", port=port, wait=True):
    me, other, my_bar, other_bar = "Player2", "Player1", bar2, bar1
    print("Connected as peer (Player 2)", flush=True)
else:
    print("Failed to connect. The group is full.", flush=True)
    sys.exit(1)


def serve():
    # Toward Player 2 first, so the test sees a rally at Player 2's bar soon.
    ball.center = (WIDTH // 2, HEIGHT // 3 + 40 * (score["b1"] + score["b2"]) % 200)
    ball.vx = SERVE_SPEED if (score["b1"] + score["b2"]) % 2 == 0 else -SERVE_SPEED
    ball.vy = SERVE_SPEED


def start():
    global playing
    playing = True
    score["b1"] = score["b2"] = 0
    serve()


def bounce_off(bar):
    if bar.colliderect(ball) and (ball.vx < 0) == (bar is bar1):
        ball.x += 10 if bar is bar1 else -10
        ball.vx = -ball.vx * FASTER
        if (ball.vy > 0) == (ball.centery < bar.centery):
            ball.vy = -ball.vy * FASTER


def computer_moves_my_bar():
    """Follow the ball; every other time it comes, aim beside it."""
    global approaches, coming
    toward_me = (ball.vx < 0) if my_bar is bar1 else (ball.vx > 0)
    if toward_me and not coming:
        approaches += 1
    coming = toward_me
    target = ball.centery + (MISS_BY if approaches % 2 == 1 else 0)
    if target < my_bar.centery - 5 and my_bar.y > 0:
        my_bar.y -= BAR_STEP
    elif target > my_bar.centery + 5 and my_bar.y + BAR_H < HEIGHT:
        my_bar.y += BAR_STEP


def read_messages():
    net.process_recv()
    game_start = net.get_msg(other, "game_start")
    bar_pos = net.get_msg(other, "bar_pos", clear=False)
    ball_pos = net.get_msg("Player1", "ball_pos", clear=False)
    point = net.get_msg("Player1", "score")
    if game_start:
        start()
    if ball_pos:
        ball.centerx, ball.centery = ball_pos["center"]
        ball.vx, ball.vy = ball_pos["vel"]
    if bar_pos:
        other_bar.centerx, other_bar.centery = bar_pos
    if point:
        score[point] += 1


def update():
    global frames, playing
    frames += 1
    read_messages()
    computer_moves_my_bar()
    net.send_msg(other, "bar_pos", my_bar.center)
    here = len(net.get_peers()) == 2
    if not playing and here:
        start()
        net.send_msg(other, "game_start", True)
    if playing and FINAL_SCORE in score.values():
        playing = False
    if playing:
        if me == "Player1":
            bounce_off(bar1)
            bounce_off(bar2)
        ball.move_ip(ball.vx, ball.vy)
        if me == "Player1":
            net.send_msg(other, "ball_pos", {"center": ball.center, "vel": (ball.vx, ball.vy)})
            if ball.top < 0 or ball.bottom > HEIGHT:
                ball.vy = -ball.vy
            point = "b2" if ball.left < 0 else "b1" if ball.right > WIDTH else None
            if point:
                score[point] += 1
                net.send_msg(other, "score", point)
                serve()
    if me == "Player2" and not here and frames > 60:
        print("The host is disconnected.", flush=True)
        sys.exit(1)
    net.process_send()
    if frames >= last_frame:
        print("Stopped after %d frames as %s, score %d-%d"
              % (frames, me, score["b1"], score["b2"]), flush=True)
        net.disconnect()
        sys.exit(0)


def draw():
    record.write(json.dumps({"t": round(time.time(), 4), "me": me, "ball": list(ball.center),
                             "bar1": bar1.y, "bar2": bar2.y,
                             "score": [score["b1"], score["b2"]], "playing": playing}) + "\n")
    screen.clear()
    if playing:
        screen.draw.filled_circle(ball.center, 10, "white")
    screen.draw.filled_rect(bar1, "white")
    screen.draw.filled_rect(bar2, "white")


pgzrun.go()
