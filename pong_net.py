"""Pong for two players on two computers, through a nethelper relay.

    python nethelper.py -g pong_game      (in one terminal: the relay)
    python pong_net.py                    (in two more: Player 1, then Player 2)

(or "python play.py", which does all three; in the Mu editor, the Play
button). Across a network: python pong_net.py minji-pc (the relay's name,
which it prints) or 192.168.0.12 (its address), or change SERVER_IP below;
"auto" asks the local network (several relays with our group: a list to
choose from).

The first game to join is Player 1, the *host*: it moves the ball, counts the
points and plays the left bar. The second is Player 2, the *peer*, on the
right. A/Z (or W/S, or the arrows) move your bar; Space starts. The number in
the corner is the ping: how many ms a message takes there and back.

Options: [ADDRESS [PORT]] --group NAME, --lang ko|en, --bot (the computer plays your bar;
it starts a game only against another --bot), --autostart (press Space as
soon as both are in). Each has a constant below, for Mu's Play button, which
gives a game no options. The netcode that keeps the game fair on a slow
network (message formats, ping, Player 2's prediction, checking its hits,
each side's work every frame) is in pong_netcode.py; finding the relay on
the local network is in pong_lobby.py; pong_harness.py runs this game for
the tests.
"""
import argparse
import random
import sys
import time

# First: pong_oop says plainly if Python is too old or Pygame Zero is missing,
# hides pygame's greeting, and keeps print() from failing on any console.
import pong_oop
import pong_text
import pygame
from pgzero.constants import keys
from pgzero.keyboard import keyboard

from nethelper import DEFAULT_PORT, KICKED, NAME_TAKEN, RELAY_STOPPING, NetNode
from pong_lobby import find_the_relay, nothing_at_localhost, relay_line, why_not_joined
from pong_netcode import (BAR2_X, Netcode, ball_from, bar_at, read_ball_pos, read_bar_frame,
                          read_bar_pos, read_game_start, read_hello, read_hit, read_ping,
                          read_point, read_resume)
# WIDTH and HEIGHT are imported for Pygame Zero: it sizes the window from them.
from pong_oop import (BALL_RADIUS, FINAL_SCORE, GAP_FROM_SCR, HEIGHT, WIDTH, Ball, Bar, Score,
                      bot_move, draw_bar_label, draw_bottom_message, draw_game, draw_message,
                      draw_start_or_winner, move_bar_with_keys, play_sound)
from pong_text import draw_text, say

SERVER_IP = "localhost"     # the relay's address, in quotes: e.g. SERVER_IP = "192.168.0.12"
                            # or the relay's name (it prints it): SERVER_IP = "minji-pc"
                            # ("auto": ask the local network which relay there is)
SERVER_PORT = DEFAULT_PORT
GROUP = "pong_game"         # your pair's group, if the teacher gave you one (or --group)
DISCOVER_AT = None          # where "auto" asks for relays: None = the whole local network
BOT = False                 # True: the computer plays your bar (or --bot)
AUTOSTART = False           # True: press Space as soon as both players are in (or --autostart)
HOST_NAME = "Player1"
PEER_NAME = "Player2"
TITLE = "pong"
LANGUAGE = "auto"           # the screens' language: "ko", "en", or "auto" (the computer's,
                            # if it has a font with Hangul) - or --lang
ICON = pong_oop.ICON        # the window's icon, from images/ (None if it is missing)

UP_KEYS = [keys.A, keys.W, keys.UP]          # both players may use either set of keys
DOWN_KEYS = [keys.Z, keys.S, keys.DOWN]
RECONNECT_EVERY = 2.0       # seconds between tries while the relay is gone
REFUSAL_FRAMES = 4 * 60     # how long (4 s) a refused game shows why before it closes
JOIN_TIMEOUT = 3.0          # give up one try to join after this many seconds
BOT_WINNER_FRAMES = 3 * 60  # --bot: the winner screen stays 3 s before it plays again
TAKE_OVER_AFTER = 0.5       # s: Player 2 waits this long before it takes over as host
                            # (when the relay stops, the host seems to leave first)
TEACHER_FRAMES = 5 * 60     # how long (5 s) the teacher's message (from the relay's board) shows
PLAYER_ID = "%08x" % random.getrandbits(32)   # tells "the same player is back"

# The screens: the game is always in one of these phases, and each phase's
# screen shows this message: its big and small text, named by their keys in
# pong_text.TEXTS, which has them in English and Korean ({...} is filled in
# by screen_message()). A new screen is one more phase here, and a
# set_phase() where it begins.
SCREENS = {
    "joining": ("joining", "looking"),
    "group_full": ("group_full", "group_full_why"),
    "failed": ("failed", "why_failed"),
    "relay_stopped": ("relay_stopped", "reconnecting"),
    "lost": ("connection_lost", "reconnecting"),
    "waiting": ("waiting", "you_are"),
    "host_left": ("host_left", "now_host"),
    "kicked": ("kicked", "kicked_why"),
    "choosing": ("choose_relay", "choose_why"),    # and the list: pong_lobby.RelayList
    "playing": None,        # the court: how to start, or who won (see draw())
}
REFUSED = ("group_full", "failed")     # the relay said no: any key closes the game


# ---- The game's objects, and the network state of a match ----

net = NetNode()
score = Score()
ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
ball.stop()
bar1 = Bar(GAP_FROM_SCR)                      # the host's bar, on the left
bar2 = Bar(BAR2_X)                            # Player 2's bar, on the right


class Match(Netcode):
    """What this game knows about the network and the other player (the
    netcode's half, its timing and the ball's, is in pong_netcode.Netcode)."""

    def __init__(self):
        self.phase = "joining"          # which screen is up (see SCREENS)
        self.phase_frames = 0           # ... and for how many frames
        self.error = ""                 # why joining failed (phase "failed"), or the kick's reason
        self.told, self.told_frames = "", 0     # the teacher's message, and frames left to show it
        self.me = None                  # my name (HOST_NAME or PEER_NAME) once I am in
        self.is_host, self.peer_id = False, HOST_NAME     # peer_id: the other player's name
        self.my_bar, self.their_bar = bar2, bar1
        self.names = [HOST_NAME, PEER_NAME]     # the names connect_server() tries, in turn
        self.trying = None              # ... the one it is trying (an index), or None
        self.next_try = 0.0             # ... and when it tries again after a failure
        self.game_started = False
        self.winner_frames = 0          # how many frames the winner screen has been up
        self.host_gone_since = None     # Player 2: when the host left
        self.lobby = None               # phase "choosing": the relays to choose from
        super().__init__(ball)

    def new_opponent(self):
        """Forget everything about the last opponent."""
        super().new_opponent()
        self.opponent_is_bot = False    # the other game said (in its hello) --bot plays it

    def set_phase(self, phase):
        self.phase, self.phase_frames = phase, 0

    @property
    def opponent_here(self):
        return self.phase == "playing"


match = Match()


# ---- Joining the game: who is host, who is the peer, which bar is mine ----

def connect_server():
    """One small step of joining each frame, so that the game never waits:
    try the names in turn. The first game in the group is the host (Player1)."""
    if net.connecting:
        return
    if net.connected:
        joined(match.names[match.trying])
        return
    if match.trying is not None:                    # that try failed
        if net.error_code == NAME_TAKEN and match.trying + 1 < len(match.names):
            match.trying += 1
        else:
            match.trying, match.next_try = None, time.monotonic() + RECONNECT_EVERY
            if match.phase == "joining":
                explain_and_quit()      # (after a lost connection: just try again later)
            return
    elif time.monotonic() < match.next_try:
        return
    else:
        match.trying = 0
    net.connect(SERVER_IP, match.names[match.trying], GROUP, port=SERVER_PORT, wait=False,
                timeout=JOIN_TIMEOUT)


def joined(name):
    """Who is host, who the peer is, which bar is mine."""
    match.me, match.is_host = name, name == HOST_NAME
    match.peer_id = PEER_NAME if match.is_host else HOST_NAME
    match.my_bar, match.their_bar = (bar1, bar2) if match.is_host else (bar2, bar1)
    reset_game()
    match.new_opponent()
    if match.is_host:
        print("Connected as host (Player 1)", flush=True)
        pygame.display.set_caption("%s - Player 1 (host)" % TITLE)
    else:
        print("Connected as peer (Player 2)", flush=True)
        pygame.display.set_caption("%s - Player 2" % TITLE)
    if not (match.phase == "host_left" and match.is_host):
        match.set_phase("waiting")


def explain_and_quit():
    """Every name was tried and the relay said no (or is not there): say
    why in the console and on the screen, and quit a little later."""
    phase, match.error = why_not_joined(net.error_code, net.error, SERVER_IP, SERVER_PORT,
                                        GROUP, JOIN_TIMEOUT)
    match.set_phase(phase)


def rejoin(names, phase):
    net.disconnect()
    match.me, match.names, match.trying, match.next_try = None, names, None, 0.0
    match.set_phase(phase)


def watch_the_group():
    """Notice when the other player arrives or leaves."""
    here = match.peer_id in net.get_peers()
    if here == match.opponent_here:
        return
    if here:
        match.set_phase("playing")
        match.host_gone_since = None
        print("%s is here. Let's play!" % match.peer_id, flush=True)
        net.send_msg(match.peer_id, "hello", {
            "id": PLAYER_ID, "resume": match.remembered_opponent(time.monotonic()), "bot": BOT},
            queue=True)
        return
    remember_game()
    match.set_phase("waiting")
    if match.is_host:
        print("Player 2 left. Waiting for a new opponent.", flush=True)
        reset_game()
        match.new_opponent()
    else:
        match.host_gone_since = time.monotonic()


def take_over_when_the_host_is_gone():
    """Without a host there is no ball. Become the host, so that a new
    opponent can join us, instead of leaving the player stranded. (Not at
    once: if the relay is stopping, the connection ends in a moment.)"""
    gone = match.host_gone_since
    if gone is None or time.monotonic() - gone < TAKE_OVER_AFTER:
        return
    match.host_gone_since = None
    print("The host is disconnected.", flush=True)          # the textbook's words
    print("Taking over as host (Player 1).", flush=True)
    reset_game()
    rejoin([HOST_NAME, PEER_NAME], "host_left")


def remember_game():
    """Keep the score of an interrupted game, in case the same opponent is back soon."""
    match.remember_game(score, match.is_host, match.game_started, time.monotonic())


def connection_lost():
    """The relay went away: say so, remember the game, then try to join
    again now and then (first under the same name as before)."""
    if net.error_code == KICKED:
        print("Removed by the teacher.", net.error, flush=True)
    else:
        print("Lost the connection to the relay:", net.error, flush=True)
    if match.opponent_here:
        remember_game()
    match.host_gone_since = None
    # The relay says when it is stopping: then the other player did not leave.
    phase = "relay_stopped" if net.error_code == RELAY_STOPPING else "lost"
    if net.error_code == KICKED:            # (it tries again: after 60 s it may come back)
        phase, match.error = "kicked", net.error
    names = [HOST_NAME, PEER_NAME] if match.is_host else [PEER_NAME, HOST_NAME]
    rejoin(names, phase)


# ---- Playing ----

def reset_game():
    match.game_started = False
    score.reset()
    ball.stop()


def start_game():
    match.game_started = True
    score.reset()
    if match.is_host:
        ball.serve()
        match.host_ball.served()
    else:
        ball.stop()         # until the host's ball arrives
    print("Game started", flush=True)


def may_start():
    return match.opponent_here and (not match.game_started or score.game_over)


def press_start():
    """Space (or the bot): start here, and tell the other side."""
    if may_start():
        start_game()
        net.send_msg(match.peer_id, "game_start", True, queue=True)


def on_key_down(key):
    if match.phase in REFUSED:
        sys.exit(1)         # any key closes a game the relay refused
    if match.phase == "choosing":
        picked = match.lobby.choose_with_key(key, UP_KEYS, DOWN_KEYS)
        if picked:
            join_relay(picked)
        return
    if key == keys.SPACE:
        press_start()


def read_msgs(title, reader, latest=False):
    """The opponent's messages of one title, read with reader(); the ones
    that do not make sense are counted in bad_messages and skipped."""
    if latest:
        message = net.get_msg(match.peer_id, title)
        contents = [] if message is None else [message]
    else:
        contents = net.get_all_msgs(match.peer_id, title) or []
    return match.read(title, reader, contents)


def handle_recv_messages():
    """What both players read every frame: the ping, who the other is, the
    other bar, and Space pressed over there."""
    for report in read_msgs("ping", read_ping, latest=True):
        match.ping.hear(report, time.monotonic() * 1000)
    net.send_msg(match.peer_id, "ping", match.ping.message(time.monotonic() * 1000))
    for hello in read_msgs("hello", read_hello):
        hear_hello(*hello)
    for report in read_msgs("bar_pos", read_bar_pos, latest=True):
        match.their_bar.place(report.y)
    if match.is_host:
        for report in read_msgs("bar_frame", read_bar_frame, latest=True):
            match.hear_bar_frame(report)
    if read_msgs("game_start", read_game_start) and may_start():
        start_game()


def move_my_bar():
    if BOT:
        bot_move(match.my_bar, ball)
    else:
        move_bar_with_keys(match.my_bar, keyboard, UP_KEYS, DOWN_KEYS)


def play_frame():
    """One frame with both players present."""
    match.winner_frames = match.winner_frames + 1 if score.game_over else 0
    if (BOT and bot_wants_to_start()) or (AUTOSTART and not match.game_started):
        press_start()
    if match.is_host or match.prediction.frame is None:
        move_my_bar()       # (Player 2 moves its bar with each frame of its ball)
    handle_recv_messages()
    if match.is_host:
        host_frame()
    else:
        peer_frame()
    match.glide_their_bar(match.their_bar.y)


def bot_wants_to_start():
    """--bot presses Space only when the other player is a bot too: a person
    starts their own game. After a game it first lets the winner be seen."""
    if not match.opponent_is_bot:
        return False
    return not match.game_started or match.winner_frames >= BOT_WINNER_FRAMES


def hear_hello(their_id, they_remember, their_bot=False):
    """The other player says who they are. The host decides whether this
    is the same game, interrupted by the relay, and the score goes on."""
    match.opponent_id, match.opponent_is_bot = their_id, their_bot
    saved = match.is_host and match.same_game_again(their_id, they_remember, PLAYER_ID,
                                                     time.monotonic())
    if saved:
        resume(*saved)
        net.send_msg(PEER_NAME, "resume", {"score": list(saved)}, queue=True)
        ball.serve()
        match.host_ball.served()


def resume(b1, b2):
    match.game_started = True
    match.saved_game = None
    score.b1, score.b2 = b1, b2
    print("Game resumed at %d-%d" % (b1, b2), flush=True)


def host_frame():
    """The host is the referee: it moves the ball and counts the points
    (pong_netcode's rules: it judges Player 2's hits, and keeps the clock's pace)."""
    carry_out(match.referee(read_msgs("hit", read_hit), time.monotonic(), bar1, bar2, score,
                            match.game_started, move_my_bar))


def peer_frame():
    """Player 2 shows the host's ball where the host has it now, and judges
    the ball at its own bar."""
    for point in read_msgs("score", read_point):
        score.add(point)
        play_sound("die")
        report_score(score.b1, score.b2)
    for b1, b2 in read_msgs("resume", read_resume):
        resume(b1, b2)
    moving = match.game_started and not score.game_over
    carry_out(match.follow_host(read_msgs("ball_pos", read_ball_pos, latest=True),
                                time.monotonic(), score, bar2, moving, move_my_bar))


def carry_out(turn):
    """Do what a frame of the netcode asks: send, play sounds, print scores."""
    for title, content, queued in turn.sends:
        net.send_msg(match.peer_id, title, content, queue=queued)
    for name in turn.sounds:
        play_sound(name)
    for b1, b2 in turn.scores:
        report_score(b1, b2)


def report_score(b1, b2):
    print("Score %d-%d" % (b1, b2), flush=True)
    if max(b1, b2) >= FINAL_SCORE:
        print("Winner: Player%d %d-%d" % (1 if b1 >= FINAL_SCORE else 2, b1, b2), flush=True)


# ---- Pygame Zero's hooks ----

def update():
    match.phase_frames += 1
    if match.phase in REFUSED:
        if match.phase_frames > REFUSAL_FRAMES:
            sys.exit(1)
        return
    if match.phase == "choosing":
        match.lobby.keep_looking()
        return
    net.process_recv()
    hear_the_teacher()
    if match.me is not None and not net.connected:
        connection_lost()
    if match.me is None:
        connect_server()        # one small step: the frame loop never waits
    else:
        watch_the_group()
        take_over_when_the_host_is_gone()
        if match.opponent_here:
            play_frame()
    net.process_send()


def hear_the_teacher():
    """The teacher's message (sent from the relay's board) shows for a few seconds."""
    text = net.get_teacher_message()
    if text:
        print("The teacher says:", text, flush=True)
        match.told, match.told_frames = text, TEACHER_FRAMES
    elif match.told_frames:
        match.told_frames -= 1


def shown_positions():
    """Where draw() draws the ball and the two bars' tops: Player 2's ball
    where the host has it now, corrections and the other bar smoothed."""
    center = match.shown_center(not match.is_host and match.opponent_here)
    tops = [bar1.y, bar2.y]
    if match.shown_their_bar is not None and match.opponent_here:
        tops[1 if match.is_host else 0] = int(round(match.shown_their_bar))
    return center, tops[0], tops[1]


def screen_message():
    """The message of this phase's screen, (big text, small text), or None."""
    message = SCREENS[match.phase]
    if message is None:
        return None
    facts = {"host": SERVER_IP, "port": SERVER_PORT, "group": GROUP, "error": match.error,
             "who": say("player1" if match.is_host else "player2")}
    return tuple(say(key, **facts) for key in message)


# screen is not imported: Pygame Zero provides it once the game runs.
def draw():
    center, bar1_top, bar2_top = shown_positions()
    draw_game(screen, ball_from(center, (0, 0)), bar_at(bar1.x, bar1_top),
              bar_at(bar2.x, bar2_top), score)
    if net.connected:
        draw_bar_label(screen, match.my_bar, say("you"))   # (only the other bar is smoothed)
    if match.opponent_here:
        draw_ping(screen)
    message = screen_message()
    if match.phase == "choosing":
        match.lobby.draw(screen, *message)
    elif message:
        draw_message(screen, *message)
    else:
        draw_start_or_winner(screen, score, match.game_started, say("keys_net"))
    if match.phase == "kicked":
        draw_bottom_message(screen, match.error)       # the relay's sentence, with the reason
    elif match.told_frames:
        draw_bottom_message(screen, say("teacher_says", text=match.told))


def draw_ping(screen):
    """The round trip, small in a corner, so a player knows why the game feels slow."""
    ms = match.ping.ms()
    text = say("no_ping") if ms is None else say("ping", ms=round(ms))
    draw_text(screen, text, 22, "grey", topright=(WIDTH - 8, 6))


# ---- Options, and starting the game ----

def read_options(args):
    parser = argparse.ArgumentParser(prog="pong_net.py",
                                     description="Pong for two players on two computers.")
    parser.add_argument("server_ip", nargs="?",
                        help="the relay's name or address (default %s; \"auto\": ask the local "
                             "network)" % SERVER_IP)
    parser.add_argument("port", nargs="?", type=int, default=SERVER_PORT,
                        help="the relay's port (default %(default)s)")
    parser.add_argument("--group", default=GROUP,
                        help="the group to join, one per pair (default %(default)s)")
    parser.add_argument("--discover", metavar="ADDRESS", default=DISCOVER_AT,
                        help="where \"auto\" asks for relays (default: the whole local "
                             "network)")
    parser.add_argument("--bot", action="store_true", default=BOT,
                        help="the computer plays your bar (and starts games against "
                             "another --bot only)")
    parser.add_argument("--autostart", action="store_true", default=AUTOSTART,
                        help="press Space for me as soon as both players are in")
    parser.add_argument("--lang", choices=["auto", "ko", "en"], default=LANGUAGE,
                        help="the screens' language (default %(default)s: the computer's)")
    options = parser.parse_args(args)
    if not 0 < options.port <= 65535:
        parser.error("the port must be a number from 1 to 65535 (the relay's is %d)"
                     % DEFAULT_PORT)
    return options


def use_options(options):
    global SERVER_IP, SERVER_PORT, GROUP, DISCOVER_AT, BOT, AUTOSTART, TITLE
    SERVER_IP, SERVER_PORT = options.server_ip or SERVER_IP, options.port
    GROUP, DISCOVER_AT = options.group, options.discover
    BOT, AUTOSTART = options.bot, options.autostart
    pong_text.use_language(options.lang)
    TITLE = "%s - %s" % (TITLE, GROUP)      # the window's title shows the group
    if SERVER_IP == "auto" or (options.server_ip is None and SERVER_IP == "localhost"
                               and nothing_at_localhost(SERVER_PORT)):
        found, match.lobby = find_the_relay(GROUP, DISCOVER_AT, SERVER_PORT)
        if found:
            SERVER_IP, SERVER_PORT = found
        elif match.lobby:
            match.set_phase("choosing")     # several relays: the player chooses one
        elif SERVER_IP == "auto":
            sys.exit(1)


def join_relay(info):
    """The player chose a relay from the list: join our group there."""
    global SERVER_IP, SERVER_PORT
    SERVER_IP, SERVER_PORT = info["address"], info["port"]
    match.lobby = None
    print("Joining group %s at %s." % (GROUP, relay_line(info, GROUP)), flush=True)
    match.set_phase("joining")


def run_game():
    """Play until the window is closed, then leave the group politely."""
    from pgzrun import go       # (this makes this file the Pygame Zero game)
    try:
        go()
    except KeyboardInterrupt:   # Ctrl+C in the terminal
        pass
    net.disconnect()
    sys.exit(0)


# Every way to start this file plays the same game with the same options:
# - "python pong_net.py OPTIONS" in a terminal: __name__ is "__main__".
# - Mu's Play button runs "python -m pgzero pong_net.py", which gives no
#   options and names this file "pgzero.builtins"; Pygame Zero runs the game
#   once this file has been read.
# - Mu's Package button adds an import of pgzrun above the first line and
#   pgzrun.go() below the last: that also names the file "pgzero.builtins",
#   and the packaged program's options are in sys.argv. run_game() never
#   comes back, so the added pgzrun.go() is not reached. (Afterwards Mu
#   deletes every "import pgzrun" line: this file needs none.)
if __name__ in ("__main__", "pgzero.builtins"):
    if getattr(sys, "_pgzrun", False):          # Pygame Zero's runner: Mu's Play
        use_options(read_options([]))
    else:
        use_options(read_options(sys.argv[1:]))
        run_game()
