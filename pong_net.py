"""Pong for two players on two computers, through a nethelper relay.

How to play on one computer:

    python nethelper.py -g pong_game      (in one terminal: the relay)
    python pong_net.py                    (in a second terminal: Player 1)
    python pong_net.py                    (in a third terminal: Player 2)

(or just "python play.py", which does all three). To play across a network,
start the relay on one computer and give the others its address:

    python pong_net.py 192.168.0.12       (or change SERVER_IP below)

The first game to join becomes Player 1, the *host*: it moves the ball and
counts points, and plays the left bar. The second becomes Player 2 and plays
the right bar. Both use A/Z (or W/S) or the Up/Down arrows to move their own
bar, and Space to start. The small number in the top right corner is the
ping: how many milliseconds a message takes to the other game and back.

Options (after the address and port, if any):

    --group NAME      join this group (your pair's, if the teacher gave you one)
    --bot             the computer plays your bar; it presses Space only
                      against another --bot (a person starts their own game),
                      and lets the winner screen be seen first
    --autostart       press Space for me as soon as both players are in
    --frames N        quit after N frames (for the tests)
    --screenshot PNG  with --frames: save the last frame as a PNG picture

The rules that keep the game fair and smooth on a slow network (the
message formats, checking what arrives, the ping, Player 2's prediction and
the host's check of Player 2's hits) are in pong_netcode.py; this file is
the game that uses them.
"""
import argparse
import collections
import math
import random
import statistics
import sys
import time

# First: pong_oop says plainly if Python is too old or Pygame Zero is missing,
# hides pygame's greeting, and keeps print() from failing on any console.
import pong_oop
import pygame
from pgzero.constants import keys
from pgzero.keyboard import keyboard

from nethelper import (DEFAULT_PORT, GROUP_FULL, NAME_TAKEN, RELAY_STOPPING, TIMEOUT,
                       NetNode, check_relay, find_relays)
# WIDTH and HEIGHT are imported for Pygame Zero: it sizes the window from them.
from pong_netcode import (BAR2_X, FPS, FRAME_MS, MAX_VERDICT_FRAMES, VERDICT_EXTRA_MS,
                          BallPrediction, Blend, HostBall, HostClock, PingMeter, ball_from,
                          bar_at, bar_frame_content, bar_pos_content, follow_textbook_host,
                          frames_to_step, glide, lead, read_ball_pos, read_bar_frame,
                          read_bar_pos, read_game_start, read_hello, read_hit, read_ping,
                          read_point, read_resume)
from pong_oop import (BALL_RADIUS, GAP_FROM_SCR, HEIGHT, WIDTH, Ball, Bar, Score, bot_move,
                      draw_bar_label, draw_game, draw_message, draw_start_or_winner,
                      event_sound, move_bar_with_keys, play_sound)

SERVER_IP = "localhost"     # the relay's address, in quotes: e.g. SERVER_IP = "192.168.0.12"
                            # ("auto": ask the local network which relay there is)
SERVER_PORT = DEFAULT_PORT
GROUP = "pong_game"         # your pair's group, if the teacher gave you one (or --group)
DISCOVER_AT = None          # where "auto" asks for relays: None = the whole local network
HOST_NAME = "Player1"
PEER_NAME = "Player2"
TITLE = "pong"
ICON = pong_oop.ICON        # the window's icon, from images/ (None if it is missing)

UP_KEYS = [keys.A, keys.W, keys.UP]          # both players may use either set of keys
DOWN_KEYS = [keys.Z, keys.S, keys.DOWN]
KEYS_HELP = "Your bar: A = up, Z = down (or the Up and Down arrows)"
RECONNECT_EVERY = 2.0       # seconds between tries while the relay is gone
REFUSAL_FRAMES = 4 * 60     # how long (4 s) a refused game shows why before it closes
JOIN_TIMEOUT = 3.0          # give up one try to join after this many seconds
RESUME_WITHIN = 30.0        # the same two players back this soon: play on from the score
BOT_WINNER_FRAMES = 3 * 60  # --bot: the winner screen stays 3 s before it plays again
TAKE_OVER_AFTER = 0.5       # s: Player 2 waits this long before it takes over as host
                            # (when the relay stops, the host seems to leave first)

# ---------------------------------------------------------------------------
# The game
# ---------------------------------------------------------------------------

net = NetNode()
score = Score()
ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
ball.stop()
bar1 = Bar(GAP_FROM_SCR)                      # the host's bar, on the left
bar2 = Bar(BAR2_X)                            # Player 2's bar, on the right

me = None                   # HOST_NAME or PEER_NAME once we have joined
opponent_here = False
took_over = False           # True after the host left and we became the host
refusal = None              # (title, explanation) once the relay said no
game_started = False
player_id = "%08x" % random.getrandbits(32)   # tells "the same player is back"

bot_plays = False           # --bot
autostart = False           # --autostart
opponent_is_bot = False     # the other game said (in its hello) that --bot plays it
winner_frames = 0           # how many frames the winner screen has been up
max_frames = None           # --frames
screenshot_path = None      # --screenshot
frame_count = 0

ping = PingMeter()
blend = Blend()
host_ball = HostBall(ball)
prediction = BallPrediction(ball)
host_clock = HostClock()
shown_their_bar = None      # where the other player's bar is drawn
shown_lead = 0.0            # Player 2: frames the host is ahead of the ball (see lead())
peer_judges_hits = False    # host: Player 2 sends "hit" messages
opponent_id = None
saved_game = None           # (opponent id, my points, their points, when) after a break
host_gone_since = None      # Player 2: when the host left
bad_messages = collections.Counter()
refused_hits = collections.Counter()


def now_ms():
    return time.monotonic() * 1000


# ---- joining the game, one small step per frame ----

class Joining:
    """Tries the names in turn, without ever holding up the frame loop."""

    def __init__(self, names):
        self.names = list(names)
        self.trying = None
        self.next_try = 0.0

    def step(self, now):
        """Returns 'joined', 'failed' (every name tried, net.error says
        why) or None (still trying, or waiting to try again)."""
        if self.trying is not None:
            if net.connected:
                return "joined"
            if net.connecting:
                return None
            if net.error_code == NAME_TAKEN and self.trying + 1 < len(self.names):
                self.trying += 1
            else:
                self.trying = None
                self.next_try = now + RECONNECT_EVERY
                return "failed"
        elif now < self.next_try:
            return None
        else:
            self.trying = 0
        net.connect(SERVER_IP, self.names[self.trying], GROUP, port=SERVER_PORT,
                    wait=False, timeout=JOIN_TIMEOUT)
        return None

    def name(self):
        return self.names[self.trying]


joining = Joining([HOST_NAME, PEER_NAME])
first_try = True
lost_connection = False
relay_stopped = False       # the relay said it was stopping (not: the other player left)


def keep_joining():
    """Called every frame while we are not in the group."""
    global me, first_try
    outcome = joining.step(time.monotonic())
    if outcome == "joined":
        me = joining.name()
        first_try = False
        joined()
    elif outcome == "failed" and first_try:
        explain_and_quit()


def explain_and_quit():
    """Every name was tried and the relay said no (or is not there): say
    why in the console and on the screen, and quit a little later."""
    global refusal
    if net.error_code in (NAME_TAKEN, GROUP_FULL):
        print("Failed to connect. The group is full.", flush=True)
        print("Two players are already in group %s: wait for them to finish, or join "
              "another group with --group NAME." % GROUP, flush=True)
        # (The group's name stays off the screen: the game's font has no
        # Korean letters, and a teacher may well call a group 퐁게임.)
        refusal = ("The group is full", "Two players are already in this group.\n"
                                        "Wait for them to finish, or use another group.")
    else:
        # net.error says what happened and, for "no relay", how to start one.
        explanation = net.error
        if net.error_code == TIMEOUT:
            explanation += "\nTo find out why: python nethelper.py --check %s%s" % (
                SERVER_IP, port_option())
        print("Failed to connect.", explanation, flush=True)
        refusal = ("Failed to connect", explanation)


def port_option():
    return "" if SERVER_PORT == DEFAULT_PORT else " -p %d" % SERVER_PORT


def who_am_i():
    return "Player 1, the left bar" if me == HOST_NAME else "Player 2, the right bar"


def joined():
    global lost_connection
    lost_connection = False
    reset_game()
    reset_netcode()
    if me == HOST_NAME:
        print("Connected as host (Player 1)", flush=True)
        pygame.display.set_caption("%s - Player 1 (host)" % TITLE)
    else:
        print("Connected as peer (Player 2)", flush=True)
        pygame.display.set_caption("%s - Player 2" % TITLE)


def rejoin(names):
    global joining, me
    net.disconnect()
    me = None
    joining = Joining(names)


def opponent():
    return PEER_NAME if me == HOST_NAME else HOST_NAME


def my_bar():
    return bar1 if me == HOST_NAME else bar2


def their_bar():
    return bar2 if me == HOST_NAME else bar1


def watch_the_group():
    """Notice when the other player arrives or leaves."""
    global opponent_here, took_over, host_gone_since
    here = opponent() in net.get_peers()
    if here == opponent_here:
        return
    opponent_here = here
    if here:
        took_over = False
        host_gone_since = None
        print("%s is here. Let's play!" % opponent(), flush=True)
        remembered = None
        if saved_game and time.monotonic() - saved_game[3] <= RESUME_WITHIN:
            remembered = saved_game[0]
        net.send_msg(opponent(), "hello", {"id": player_id, "resume": remembered,
                                           "bot": bot_plays}, queue=True)
    elif me == HOST_NAME:
        remember_game()
        print("Player 2 left. Waiting for a new opponent.", flush=True)
        reset_game()
        reset_netcode()
    else:
        remember_game()
        host_gone_since = time.monotonic()


def take_over_when_the_host_is_gone():
    """Without a host there is no ball. Become the host, so that a new
    opponent can join us, instead of leaving the player stranded. (Not at
    once: if the relay is stopping, the connection ends in a moment.)"""
    global host_gone_since
    if host_gone_since is None or time.monotonic() - host_gone_since < TAKE_OVER_AFTER:
        return
    global took_over
    host_gone_since = None
    print("The host is disconnected.", flush=True)          # the textbook's words
    print("Taking over as host (Player 1).", flush=True)
    took_over = True
    reset_game()
    rejoin([HOST_NAME, PEER_NAME])


def remember_game():
    """Keep the score of an interrupted game, in case the same opponent is back soon."""
    global saved_game
    if game_started and not score.game_over and opponent_id:
        mine, theirs = (score.b1, score.b2) if me == HOST_NAME else (score.b2, score.b1)
        saved_game = (opponent_id, mine, theirs, time.monotonic())


def recover_lost_connection():
    """The relay went away: say so once, remember the game, then try to
    join again now and then (first under the same name as before)."""
    global lost_connection, opponent_here, host_gone_since, relay_stopped
    if not lost_connection:
        lost_connection = True
        # The relay says when it is stopping: then the other player did not leave.
        relay_stopped = net.error_code == RELAY_STOPPING
        print("Lost the connection to the relay:", net.error, flush=True)
        if opponent_here:
            remember_game()
        opponent_here = False
        host_gone_since = None
        names = [HOST_NAME, PEER_NAME] if me != PEER_NAME else [PEER_NAME, HOST_NAME]
        rejoin(names)


# ---- playing ----

def reset_game():
    global game_started
    game_started = False
    score.reset()
    ball.stop()


def reset_netcode():
    """Forget everything about the last opponent's timing."""
    global ping, blend, host_ball, prediction, host_clock, shown_their_bar
    global peer_judges_hits, opponent_id, shown_lead, opponent_is_bot
    ping, blend, host_clock = PingMeter(), Blend(), HostClock()
    shown_lead = 0.0
    host_ball, prediction = HostBall(ball), BallPrediction(ball)
    shown_their_bar = None
    peer_judges_hits = False
    opponent_id = None
    opponent_is_bot = False


def start_game():
    global game_started
    game_started = True
    score.reset()
    if me == HOST_NAME:
        ball.serve()
        host_ball.served()
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


def read_msgs(title, reader, latest=False):
    """The opponent's messages of one title, read with reader(); the ones
    that do not make sense are counted in bad_messages and skipped."""
    if latest:
        message = net.get_msg(opponent(), title)
        contents = [] if message is None else [message]
    else:
        contents = net.get_all_msgs(opponent(), title) or []
    good = []
    for content in contents:
        value = reader(content)
        if value is None:
            bad_messages[title] += 1
        else:
            good.append(value)
    return good


def move_my_bar():
    if bot_plays:
        bot_move(my_bar(), ball)
    else:
        move_bar_with_keys(my_bar(), keyboard, UP_KEYS, DOWN_KEYS)


def play_frame():
    """One frame with both players present."""
    global shown_their_bar, peer_judges_hits, winner_frames
    winner_frames = winner_frames + 1 if score.game_over else 0
    if (bot_plays and bot_wants_to_start()) or (autostart and not game_started):
        press_start()
    if me == HOST_NAME or prediction.frame is None:
        move_my_bar()       # (Player 2 moves its bar with each frame of its ball)
    for report in read_msgs("ping", read_ping, latest=True):
        ping.hear(report, now_ms())
    net.send_msg(opponent(), "ping", ping.message(now_ms()))
    for hello in read_msgs("hello", read_hello):
        hear_hello(*hello)
    for report in read_msgs("bar_pos", read_bar_pos, latest=True):
        their_bar().place(report.y)
    if me == HOST_NAME:
        for report in read_msgs("bar_frame", read_bar_frame, latest=True):
            host_ball.hear_bar2(report)
            peer_judges_hits = True     # (a textbook Player 2 sends no bar_frame)
    if read_msgs("game_start", read_game_start) and may_start():
        start_game()
    if me == HOST_NAME:
        host_frame()
    else:
        peer_frame()
    if shown_their_bar is None:
        shown_their_bar = their_bar().y
    shown_their_bar = glide(shown_their_bar, their_bar().y)


def bot_wants_to_start():
    """--bot presses Space only when the other player is a bot too: a person
    starts their own game. After a game it first lets the winner be seen."""
    if not opponent_is_bot:
        return False
    return not game_started or winner_frames >= BOT_WINNER_FRAMES


def hear_hello(their_id, they_remember, their_bot=False):
    """The other player says who they are. The host decides whether this
    is the same game, interrupted by the relay, and the score goes on."""
    global opponent_id, saved_game, opponent_is_bot
    opponent_id, opponent_is_bot = their_id, their_bot
    if me != HOST_NAME or saved_game is None:
        return
    saved_id, b1, b2, when = saved_game       # my points first: I am Player 1 now
    saved_game = None
    if saved_id == their_id and they_remember == player_id and \
            time.monotonic() - when <= RESUME_WITHIN:
        resume(b1, b2)
        net.send_msg(PEER_NAME, "resume", {"score": [b1, b2]}, queue=True)
        ball.serve()
        host_ball.served()


def resume(b1, b2):
    global game_started, saved_game
    game_started = True
    saved_game = None
    score.b1, score.b2 = b1, b2
    print("Game resumed at %d-%d" % (b1, b2), flush=True)


def verdict_frames():
    """How long the host waits for Player 2's word on a ball at its bar."""
    worst = ping.worst_ms()
    if worst is None:
        return 12
    return min(MAX_VERDICT_FRAMES, math.ceil((worst + VERDICT_EXTRA_MS) / FRAME_MS) + 2)


def host_frame():
    """The host is the referee: it moves the ball and counts the points."""
    for hit in read_msgs("hit", read_hit):
        host_ball.hear_hit(hit)
    for hit in host_ball.ready_hits():
        why_not = host_ball.judge(hit) if game_started and not score.game_over else "no game"
        if why_not:
            refused_hits[why_not] += 1
        else:
            blend.corrected(host_ball.accept(hit), ball.center)
            play_sound("bar")
    for extra in range(host_ball.frames_due(time.monotonic())):
        if extra:
            move_my_bar()       # (after a busy moment: the bar keeps pace with the ball)
        moving = game_started and not score.game_over
        for event in host_ball.step(bar1, bar2, moving, peer_judges_hits, verdict_frames()):
            if event in (1, 2):
                score.add(event)
                net.send_msg(PEER_NAME, "score", "b%d" % event, queue=True)
                play_sound("die")
                report_score()
                if not score.game_over:
                    ball.serve()
                    host_ball.served()
            else:
                play_sound(event_sound(event))
    blend.fade()
    x, y = ball.center
    net.send_msg(PEER_NAME, "ball_pos", {
        "center": [x, y], "vel": list(ball.vel), "frame": host_ball.frame, "bar": bar1.y,
        "hit": host_ball.last_hit, "score": [score.b1, score.b2], "ms": round(now_ms(), 1)})
    net.send_msg(PEER_NAME, "bar_pos", bar_pos_content(bar1))


def peer_frame():
    """Player 2 shows the host's ball where the host has it now, and judges
    the ball at its own bar."""
    global shown_lead
    for point in read_msgs("score", read_point):
        score.add(point)
        play_sound("die")
        report_score()
    for b1, b2 in read_msgs("resume", read_resume):
        resume(b1, b2)
    moving = game_started and not score.game_over
    states = read_msgs("ball_pos", read_ball_pos, latest=True)
    if prediction.frame is None and moving:     # a textbook host numbers no frames
        textbook_states = [state for state in states if state.frame is None]
        for event in follow_textbook_host(ball, textbook_states[-1:]):
            play_sound(event_sound(event))
    for state in states:
        if state.frame is None:
            continue
        host_clock.hear(state.frame, time.monotonic(), state.ms)
        if state.score is not None and (score.b1, score.b2) != state.score:
            score.b1, score.b2 = state.score        # both screens show the same score
        answer_due = math.ceil(((ping.worst_ms() or 100) + VERDICT_EXTRA_MS) / FRAME_MS) + 2
        heard = prediction.hear(state, answer_due, moving)
        if heard:
            old_center, hits = heard
            blend.corrected(old_center, ball.center)
            send_hits(hits)
    if prediction.frame is not None:
        one_way = (ping.ms() or 0) / 2000
        target = host_clock.now(time.monotonic(), one_way)
        steps = frames_to_step(target, prediction.frame)
        events, hits = prediction.step(steps, bar2, moving, move_my_bar)
        for event in events:
            play_sound(event_sound(event))
        send_hits(hits)
        shown_lead = lead(target, prediction.frame) if moving else 0.0
    blend.fade()
    frame = prediction.frame if prediction.frame is not None else 0
    net.send_msg(HOST_NAME, "bar_pos", bar_pos_content(bar2))
    net.send_msg(HOST_NAME, "bar_frame", bar_frame_content(bar2, frame))


def send_hits(hits):
    for hit in hits:
        net.send_msg(HOST_NAME, "hit", {"frame": hit.frame, "bar": hit.bar,
                                        "center": list(hit.center), "vel": list(hit.vel)},
                     queue=True)


def report_score():
    print("Score %d-%d" % (score.b1, score.b2), flush=True)
    if score.game_over:
        print("Winner: Player%d %d-%d" % (score.winner(), score.b1, score.b2), flush=True)


def ping_text():
    value = ping.ms()
    return "ping -" if value is None else "ping %d ms" % round(value)


def screen_state():
    """What the screen shows: the ball's center, the bars' tops, the
    score and the ping (bench/lag records it every frame)."""
    x, y = host_ball.shown_center()
    if me == PEER_NAME and opponent_here:
        x, y = prediction.drawn_at(shown_lead)
    x, y = blend.shown((x, y))
    bars = {"bar1": bar1.y, "bar2": bar2.y}
    if shown_their_bar is not None and opponent_here:
        bars["bar2" if me == HOST_NAME else "bar1"] = int(round(shown_their_bar))
    return {"ball": [round(x, 2), round(y, 2)], "bar1": bars["bar1"], "bar2": bars["bar2"],
            "score": [score.b1, score.b2], "ping": ping.ms(),
            "game_frame": host_ball.frame if me == HOST_NAME else prediction.frame,
            "lead": round(shown_lead, 2)}


# ---- Pygame Zero's hooks ----

def update():
    global frame_count
    frame_count += 1
    if refusal:
        if frame_count > REFUSAL_FRAMES:
            sys.exit(1)
        return
    net.process_recv()
    if me is not None and not net.connected:
        recover_lost_connection()
    if me is None:
        keep_joining()          # one small step: the frame loop never waits
    else:
        watch_the_group()
        take_over_when_the_host_is_gone()
        if me is not None and opponent_here:
            play_frame()
    net.process_send()
    if bot_plays and frame_count % (5 * FPS) == 0 and opponent_here:
        print("Ping:", ping_text(), flush=True)


# screen is not imported: Pygame Zero provides it once the game runs.
def draw():
    shown = screen_state()
    shown_ball = ball_from(shown["ball"], (0, 0))
    draw_game(screen, shown_ball, bar_at(bar1.x, shown["bar1"]),
              bar_at(bar2.x, shown["bar2"]), score)
    if net.connected:
        draw_bar_label(screen, my_bar(), "YOU")     # (only the other bar is smoothed)
    if opponent_here:
        draw_ping(screen)
    if refusal:
        draw_message(screen, *refusal)
    elif not net.connected and first_try:
        draw_message(screen, "Joining the game...",
                     "Looking for the relay at %s, port %d" % (SERVER_IP, SERVER_PORT))
    elif not net.connected and relay_stopped:
        draw_message(screen, "The relay was stopped", "Trying to reconnect...")
    elif not net.connected:
        draw_message(screen, "Connection lost", "Trying to reconnect...")
    elif not opponent_here and took_over:
        draw_message(screen, "The host is disconnected",
                     "You are the host now: Player 1, the left bar.\nWaiting for a new player...")
    elif not opponent_here:
        draw_message(screen, "Waiting for a peer connection...",
                     "You are %s.\nStart the game on a second computer or window." % who_am_i())
    else:
        draw_start_or_winner(screen, score, game_started, KEYS_HELP)
    if max_frames is not None and frame_count >= max_frames:
        finish()


def draw_ping(screen):
    """The round trip, small in a corner, so a player knows why the game feels slow."""
    screen.draw.text(ping_text(), topright=(WIDTH - 8, 6), fontsize=22, color="grey")


# ---- the command line, and scripted runs (--frames and --screenshot serve
# ---- the tests and the README's pictures, not the game itself)

def finish():
    """End of --frames: save the screenshot if asked for, report, and quit."""
    if screenshot_path:
        pygame.image.save(screen.surface, screenshot_path)
    if refusal:
        sys.exit(1)
    print_summary()
    net.disconnect()
    sys.exit(0)


def print_summary():
    """How the network did: printed when the game stops."""
    drift = prediction.errors
    if drift:
        print("Ball drift: %d corrections, median %.1f px, max %.1f px" % (
            len(drift), statistics.median(drift), max(drift)), flush=True)
    if ping.samples:
        print("Ping: median %.0f ms, worst %.0f ms" % (ping.ms(), ping.worst_ms()), flush=True)
    if bad_messages:
        print("Ignored bad messages:", ", ".join(
            "%s %d" % item for item in sorted(bad_messages.items())), flush=True)
    if refused_hits:
        print("Refused hits:", ", ".join(
            "%s %d" % item for item in sorted(refused_hits.items())), flush=True)
    print("Stopped after %d frames as %s, score %d-%d" % (
        frame_count, me, score.b1, score.b2), flush=True)


def read_options(args):
    parser = argparse.ArgumentParser(description="Pong for two players on two computers.")
    parser.add_argument("server_ip", nargs="?",
                        help="the relay's address (default %s; \"auto\": ask the local "
                             "network)" % SERVER_IP)
    parser.add_argument("port", nargs="?", type=int, default=SERVER_PORT,
                        help="the relay's port (default %(default)s)")
    parser.add_argument("--group", default=GROUP,
                        help="the group to join, one per pair (default %(default)s)")
    parser.add_argument("--discover", metavar="ADDRESS", default=DISCOVER_AT,
                        help="where \"auto\" asks for relays (default: the whole local "
                             "network)")
    parser.add_argument("--bot", action="store_true",
                        help="the computer plays your bar (and starts games against "
                             "another --bot only)")
    parser.add_argument("--autostart", action="store_true",
                        help="press Space for me as soon as both players are in")
    parser.add_argument("--frames", type=int, metavar="N", help="quit after N frames")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="with --frames: save the last frame to PNG")
    options = parser.parse_args(args)
    if not 0 < options.port <= 65535:
        parser.error("the port must be a number from 1 to 65535 (the relay's is %d)"
                     % DEFAULT_PORT)
    return options


def nothing_at_localhost():
    """No relay answers on this computer (Windows may take a second to say
    "refused", so anything but a relay counts)."""
    return not check_relay("localhost", SERVER_PORT, timeout=1.0, samples=1).ok


def find_the_relay():
    """Ask the local network for a relay with our group, and use it."""
    global SERVER_IP, SERVER_PORT
    print("Looking for a relay on the local network...", flush=True)
    try:
        relays = find_relays(DISCOVER_AT, SERVER_PORT, timeout=1.0)
    except OSError as exc:
        relays = []
        print("Could not ask the network:", exc, flush=True)
    # A private relay lists no groups, and one with many lists only the first
    # ones: either may have ours.
    ours = [r for r in relays
            if r["groups"] is None or GROUP in r["groups"] or r.get("more_groups")]
    if not ours:
        print("No relay with group %s answered (UDP port %d). Start one with: python "
              "nethelper.py -g %s%s, or give its address: python pong_net.py 192.168.0.12"
              % (GROUP, SERVER_PORT, GROUP, port_option()), flush=True)
        if SERVER_IP == "auto":
            sys.exit(1)
        return
    relay = ours[0]
    SERVER_IP, SERVER_PORT = relay["address"], relay["port"]
    print("Found a relay at %s port %d; joining group %s." % (SERVER_IP, SERVER_PORT, GROUP),
          flush=True)


def use_options(options):
    global SERVER_IP, SERVER_PORT, GROUP, TITLE, DISCOVER_AT, bot_plays, max_frames
    global screenshot_path, autostart
    SERVER_IP, SERVER_PORT = options.server_ip or SERVER_IP, options.port
    GROUP, DISCOVER_AT = options.group, options.discover
    TITLE = "%s - %s" % (TITLE, GROUP)      # the window's title shows the group
    if SERVER_IP == "auto" or (options.server_ip is None and SERVER_IP == "localhost"
                               and nothing_at_localhost()):
        find_the_relay()
    bot_plays, autostart = options.bot, options.autostart
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
        print_summary()
        net.disconnect()
