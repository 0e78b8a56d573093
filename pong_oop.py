"""Pong for two players on one keyboard, written with Pygame Zero.

How to run:

    python pong_oop.py        or        pgzrun pong_oop.py

Controls:

    Space               start a game, or play again after someone wins
    A (or W) / Z (or S) move the left bar up / down   (Player1)
    Up / Down arrows    move the right bar up / down  (Player2)

The first player to reach 11 points wins.

Options (these only work with "python pong_oop.py ...", because the
pgzrun command does not pass options on to the game):

    --bot             the computer plays the right bar, so you can practise
                      alone with the left bar
    --demo            the computer plays both bars and the game starts by
                      itself (you can still press Space to play again)
    --lang ko|en      the screens' language (normally the computer's own)
    --speed K         fast forward: play K frames of the game for every
                      frame shown (a whole --demo game takes about four
                      minutes at normal speed)
    --frames N        quit after N frames have been shown (for the tests)
    --screenshot PNG  with --frames: save the last frame as a PNG picture

This file is also a small library: pong_net.py imports its classes and
functions (Ball, Bar, Score, update_ball, draw_game, ...) to build the
network version, so every function gets the objects it works on as
parameters instead of reaching for global variables.
"""
import argparse
import math
import os
import random
import sys

# Checked before anything that needs a newer Python or pygame, so that a
# student sees one plain sentence instead of a traceback.
if sys.version_info < (3, 8):
    sys.exit("This game needs Python 3.8 or newer, but this is Python %d.%d. "
             "Install a newer Python from https://www.python.org" % sys.version_info[:2])

# pygame prints "Hello from the pygame community" when it is imported; keep
# the game's console for the game's own messages.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
try:
    import pygame
    from pgzero.constants import keys
    from pgzero.keyboard import keyboard
    from pgzero.loaders import sounds
    from pgzero.rect import Rect, ZRect
except ImportError:
    sys.exit('This game needs Pygame Zero, which this Python does not have. Install it with:\n'
             '    "%s" -m pip install pgzero' % sys.executable)

import pong_text        # the screens' words, in Korean and English, and their fonts
from pong_text import draw_text, say

WIDTH = 800
HEIGHT = 600
TITLE = "pong"
LANGUAGE = "auto"     # the screens' language: "ko", "en", or "auto" (the computer's, if
                      # it has a font with Hangul) - or --lang
HERE = os.path.dirname(os.path.abspath(__file__))
# The window's icon, drawn by make_assets.py. A game copied without images/
# simply keeps the usual icon (None tells Pygame Zero to leave it alone).
ICON = os.path.join(HERE, "images", "icon.png")
if not os.path.exists(ICON):
    ICON = None

BAR_H = 100
BAR_W = 15
GAP_FROM_SCR = 20     # space between the screen edge and a bar
BAR_SPEED = 7         # pixels a bar moves in one frame
BALL_RADIUS = 10
VELOCITY = 5          # the ball's starting speed, across and down, per frame
SPEED_UP = 1.08       # every bar hit makes the ball 8% faster ...
MAX_SPEED = 12        # ... but never faster than this (per frame, per axis).
# MAX_SPEED must stay below BAR_W / 2 + BALL_RADIUS (17.5), otherwise a fast
# ball could jump over the front half of a bar in a single frame.
FINAL_SCORE = 11
BOT_DEAD_ZONE = 10    # the computer ignores the ball when this close (px),
                      # so its bar does not shake up and down

BAR1_UP_KEYS = [keys.A, keys.W]
BAR1_DOWN_KEYS = [keys.Z, keys.S]
BAR2_UP_KEYS = [keys.UP]
BAR2_DOWN_KEYS = [keys.DOWN]
# (The start screen names A/Z only: two keys are easier to remember than four.)

BACKGROUND_COLOR = "black"
LINE_COLOR = "grey"
BALL_COLOR = "white"
BAR_COLOR = "white"
TEXT_COLOR = "white"
LABEL_COLOR = "yellow"            # "YOU" beside your bar
MESSAGE_BOX_COLOR = (20, 40, 90)  # the dark blue panel behind messages ...
MESSAGE_BORDER_COLOR = (110, 130, 190)  # ... and its lighter frame
MESSAGE_TOP = 100                 # y of the panel's top edge: under the score ...
MESSAGE_BOTTOM = HEIGHT // 2 - BALL_RADIUS - 4  # ... and its lowest: above the ball's start
MESSAGE_MARGIN = GAP_FROM_SCR + BAR_W  # the panel stays between the bars
MESSAGE_PADDING = 30              # room left and right of the words, inside the panel ...
MESSAGE_PADDING_Y = 20            # ... and above and below them
MESSAGE_GAP = 15                  # between the big and the small text
# Font sizes (pixels) of messages, big and small: the first pair with which
# the big text is one line and the panel fits above the ball (a long message
# takes more lines, so smaller letters).
MESSAGE_SIZES = [(64, 32), (56, 28), (48, 24), (40, 20)]
LABEL_TEXT = 30


class Score:
    """The points of Player1 (b1, left bar) and Player2 (b2, right bar)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.b1 = 0
        self.b2 = 0

    def add(self, player):
        """Give one point to player 1 or 2."""
        if player == 1:
            self.b1 += 1
        elif player == 2:
            self.b2 += 1
        else:
            raise ValueError("player must be 1 or 2, not %r" % (player,))

    def winner(self):
        """1 or 2 once that player has FINAL_SCORE points, otherwise None."""
        if self.b1 >= FINAL_SCORE:
            return 1
        if self.b2 >= FINAL_SCORE:
            return 2
        return None

    @property
    def game_over(self):
        return self.winner() is not None


def faster(speed):
    """speed times SPEED_UP, keeping its sign (its direction), but never
    more than MAX_SPEED."""
    return math.copysign(min(abs(speed) * SPEED_UP, MAX_SPEED), speed)


class Ball(ZRect):
    """The ball: a square the size of the ball, drawn as a circle.

    It is a ZRect rather than a Rect because a Rect only stores whole
    numbers: after a few speed-ups the speed is 5.832 pixels per frame, and
    a Rect would quietly drop the .832 every frame. A ZRect keeps the
    fractions, so ball.center is the ball's true position.

    ball.vel is the velocity (vx, vy): pixels per frame across (+ is right)
    and down (+ is down).
    """

    def __init__(self, *rect_args):
        # Takes the same arguments as ZRect, e.g. Ball(x, y, w, h), because
        # ZRect's own methods (colliderect, ==, ...) build temporary
        # rectangles by calling this class with those arguments.
        super().__init__(*rect_args)
        self.vel = (0.0, 0.0)

    def set_state(self, center, vel):
        """Put the ball at center = (x, y) with velocity vel = (vx, vy),
        e.g. from a network message."""
        self.center = (float(center[0]), float(center[1]))
        self.vel = (float(vel[0]), float(vel[1]))

    def state(self):
        """The ball's position and velocity as a dict that can be sent over
        the network and given back to set_state()."""
        return {"center": list(self.center), "vel": list(self.vel)}

    def serve(self):
        """Start a new point: the ball leaves from the centre line at a
        random height, to the left or to the right, up or down."""
        y = random.randint(BALL_RADIUS, HEIGHT - BALL_RADIUS)
        vx = random.choice([-VELOCITY, VELOCITY])
        vy = random.choice([-VELOCITY, VELOCITY])
        self.set_state((WIDTH / 2, y), (vx, vy))

    def stop(self):
        """Park the ball, not moving, in the middle of the court."""
        self.set_state((WIDTH / 2, HEIGHT / 2), (0, 0))

    def move(self):
        """Move the ball one frame along its velocity.

        (This replaces ZRect's move(x, y): a ball always moves by its own
        velocity.)
        """
        vx, vy = self.vel
        self.move_ip(vx, vy)

    def bounce_off_walls(self):
        """Bounce off the top or bottom edge. Returns True if it bounced."""
        vx, vy = self.vel
        if self.top < 0 and vy < 0:
            self.top = 0
            self.vel = (vx, -vy)
            return True
        if self.bottom > HEIGHT and vy > 0:
            self.bottom = HEIGHT
            self.vel = (vx, -vy)
            return True
        return False

    def hits_bar(self, bar):
        """True if the ball touches the bar while flying toward its face.

        Asking for the direction means that a ball which has just bounced
        (and may still overlap the bar) is not bounced a second time, so it
        cannot get stuck inside the bar. Asking that the ball's centre has
        not passed the middle of the bar means a ball that already slipped
        past the bar is not pulled back in front of it.
        """
        if not self.colliderect(bar):
            return False
        vx = self.vel[0]
        if is_left_bar(bar):
            return vx < 0 and self.centerx > bar.centerx
        return vx > 0 and self.centerx < bar.centerx

    def bounce_off_bar(self, bar):
        """Send the ball back from the bar, a little faster."""
        vx, vy = self.vel
        # Hitting the upper half of the bar while falling, or the lower half
        # while rising, also sends the ball back up (or down) the way it came.
        # This lets players aim, like in the original Pong.
        hit_upper_half = self.centery < bar.centery
        hit_lower_half = self.centery > bar.centery
        if (vy > 0 and hit_upper_half) or (vy < 0 and hit_lower_half):
            vy = -vy
        self.vel = (-faster(vx), faster(vy))
        # Put the ball just in front of the bar so it never stays inside it.
        if is_left_bar(bar):
            self.left = bar.right
        else:
            self.right = bar.left

    def who_scored(self):
        """2 if the ball has left the court on the left (Player1 missed it),
        1 if it left on the right, None while it is still in play."""
        if self.right < 0:
            return 2
        if self.left > WIDTH:
            return 1
        return None


class Bar(Rect):
    """A player's bar (paddle). x is its left edge; it starts half way
    down the screen. Bars move in whole pixels, so a plain Rect is fine."""

    def __init__(self, x):
        super().__init__(x, (HEIGHT - BAR_H) // 2, BAR_W, BAR_H)

    def move_up(self):
        self.y -= BAR_SPEED
        self.keep_on_screen()

    def move_down(self):
        self.y += BAR_SPEED
        self.keep_on_screen()

    def place(self, y):
        """Put the bar's top edge at y (e.g. from a network message)."""
        self.y = y
        self.keep_on_screen()

    def keep_on_screen(self):
        if self.top < 0:
            self.top = 0
        if self.bottom > HEIGHT:
            self.bottom = HEIGHT


def is_left_bar(bar):
    return bar.centerx < WIDTH / 2


def move_ball(ball, *bars):
    """Move the ball one frame and bounce it off the walls and the bars
    (usually move_ball(ball, bar1, bar2)).

    Returns a list of what happened: 'wall' (bounced off the top or
    bottom) and 'bar' (bounced off a bar). Points are not counted here, so
    pong_net can use this to work out where the ball goes, and can leave
    out a bar whose hits the other computer decides.
    """
    events = []
    ball.move()
    if ball.bounce_off_walls():
        events.append("wall")
    for bar in bars:
        if ball.hits_bar(bar):
            ball.bounce_off_bar(bar)
            events.append("bar")
    return events


def update_ball(ball, bar1, bar2, score):
    """Play one frame of the ball: move it, bounce it, count points.

    Returns a list of what happened, so the caller can play sounds (and
    pong_net can tell the other computer): the events of move_ball(), and
      'b1'   - Player1 won the point ('b2': Player2 won it)
    After a point the ball is served again, unless the game is over.
    """
    if score.game_over:
        return []
    events = move_ball(ball, bar1, bar2)
    player = ball.who_scored()
    if player is not None:
        score.add(player)
        events.append("b%d" % player)
        if not score.game_over:
            ball.serve()
    return events


def bot_move(bar, ball):
    """The computer's move: follow the ball's height, but no faster than a
    person can move a bar, so a fast ball can still get past it."""
    if ball.centery < bar.centery - BOT_DEAD_ZONE:
        bar.move_up()
    elif ball.centery > bar.centery + BOT_DEAD_ZONE:
        bar.move_down()


def move_bar_with_keys(bar, keyboard, up_keys, down_keys):
    """Move the bar up while one of up_keys is held, or down while one of
    down_keys is held. keyboard is Pygame Zero's keyboard object."""
    if any(keyboard[key] for key in up_keys):
        bar.move_up()
    elif any(keyboard[key] for key in down_keys):
        bar.move_down()


sound_works = True


def play_sound(name):
    """Play sounds/<name>.wav. On a computer without a working sound device,
    or when the game was copied without its sounds/ folder, the game keeps
    going silently instead of crashing."""
    global sound_works
    if not sound_works:
        return
    if not pygame.mixer.get_init():
        sound_works = False   # no sound device: stay quiet from now on
        return
    try:
        sound = getattr(sounds, name)
    except AttributeError:    # Pygame Zero's way of saying "no such file"
        print("Sound is off: there is no sounds/%s.wav next to the game "
              "(run make_assets.py to make the sounds)." % name, file=sys.stderr)
        sound_works = False
        return
    try:
        sound.play()
    except pygame.error as error:
        print("Sound is off:", error, file=sys.stderr)
        sound_works = False


def event_sound(event):
    """The sound for an event from update_ball()."""
    if event in ("b1", "b2"):
        return "die"
    return event   # 'wall' and 'bar' have sounds of the same name


# ---- drawing: these take Pygame Zero's screen as a parameter, because
# ---- "screen" only exists once the game is running.

def draw_court(screen):
    screen.fill(BACKGROUND_COLOR)
    screen.draw.line((WIDTH / 2, 0), (WIDTH / 2, HEIGHT), LINE_COLOR)


def draw_score(screen, score):
    screen.draw.text(str(score.b1), center=(WIDTH / 4, 40),
                     fontsize=60, color=TEXT_COLOR)
    screen.draw.text(str(score.b2), center=(WIDTH * 3 / 4, 40),
                     fontsize=60, color=TEXT_COLOR)


def draw_game(screen, ball, bar1, bar2, score):
    """Draw the court, the scores, both bars and the ball."""
    draw_court(screen)
    draw_score(screen, score)
    screen.draw.filled_rect(bar1, BAR_COLOR)
    screen.draw.filled_rect(bar2, BAR_COLOR)
    screen.draw.filled_circle(ball.center, BALL_RADIUS, BALL_COLOR)


def draw_bar_label(screen, bar, text):
    """Write a short label (e.g. "YOU") beside the bar, on the court side."""
    if is_left_bar(bar):
        draw_text(screen, text, LABEL_TEXT, LABEL_COLOR, by_ink=True,
                  midleft=(bar.right + 12, bar.centery))
    else:
        draw_text(screen, text, LABEL_TEXT, LABEL_COLOR, by_ink=True,
                  midright=(bar.left - 12, bar.centery))


def message_layout(text, small_text=""):
    """Where draw_message() puts its panel and each line: (panel, [(line,
    size, top, whole text), ...]). Long lines are wrapped to fit the panel,
    and the letters are as big as MESSAGE_SIZES allows with the big text on
    one line and the panel above the ball."""
    widest = WIDTH - 2 * MESSAGE_MARGIN - 2 * MESSAGE_PADDING
    lettering = pong_text.current()
    layouts = []
    for big, small in MESSAGE_SIZES:
        title = [(line, big, text) for line in lettering.lines(text, big, widest)]
        below = [(line, small, small_text) for line in lettering.lines(small_text, small, widest)
                 if small_text]
        height = sum(lettering.line_height(*line) for line in title + below)
        height += 2 * MESSAGE_PADDING_Y + (MESSAGE_GAP if below else 0)
        layouts.append((title, below, height))
    fitting = [layout for layout in layouts if MESSAGE_TOP + layout[2] <= MESSAGE_BOTTOM]
    one_line_title = [layout for layout in fitting if len(layout[0]) == 1]
    title, below, height = (one_line_title or fitting or layouts[-1:])[0]
    width = max(lettering.render(line, size, TEXT_COLOR, whole).get_width()
                for line, size, whole in title + below)
    panel = Rect(0, MESSAGE_TOP, width + 2 * MESSAGE_PADDING, height)
    panel.centerx = WIDTH // 2
    placed, top = [], panel.top + MESSAGE_PADDING_Y
    for number, (line, size, whole) in enumerate(title + below):
        if number == len(title):
            top += MESSAGE_GAP          # a little air between the big and the small text
        placed.append((line, size, top, whole))
        top += lettering.line_height(line, size, whole)
    return panel, placed


def draw_message(screen, text, small_text=""):
    """Show text in big letters near the top of the court, and
    small_text (if any; it may have several lines) under it.

    They sit on a panel of their own: drawn straight onto the court, the
    centre line would run through the middle of the words."""
    panel, lines = message_layout(text, small_text)
    screen.draw.filled_rect(panel, MESSAGE_BOX_COLOR)
    screen.draw.rect(panel, MESSAGE_BORDER_COLOR)
    for line, size, top, whole in lines:
        draw_text(screen, line, size, TEXT_COLOR, whole, midtop=(WIDTH // 2, top))


def winner_text(score):
    return say("wins", n=score.winner())


def draw_start_or_winner(screen, score, game_started, keys_help=""):
    """Before a game: how to start it (and keys_help, which keys move the
    bars). After one: who won, and how to play again."""
    if score.game_over:
        draw_message(screen, winner_text(score), say("again"))
    elif not game_started:
        draw_message(screen, say("start"), keys_help)


def draw_bottom_message(screen, text, size=28):
    """text on a panel at the bottom of the court, over the game (the
    network game shows the teacher's words there: pong_text finds a font
    with Korean letters, as the teacher may write Korean whatever the
    game's language)."""
    lettering = pong_text.current()
    lines = lettering.lines(text, size, WIDTH - 80)[:4]
    line_height = lettering.line_height(text, size)
    width = max(lettering.render(line, size, TEXT_COLOR, text).get_width()
                for line in lines) + 40
    box = Rect(0, 0, width, line_height * len(lines) + 24)
    box.midbottom = (WIDTH // 2, HEIGHT - 12)
    screen.draw.filled_rect(box, MESSAGE_BOX_COLOR)
    screen.draw.rect(box, MESSAGE_BORDER_COLOR)
    for row, line in enumerate(lines):
        draw_text(screen, line, size, TEXT_COLOR, text,
                  midtop=(WIDTH // 2, box.top + 12 + row * line_height))


# ---- the local game ----

def make_console_safe():
    """Let print() replace what the console cannot show (a "?" instead of a
    Korean name on an ASCII console) rather than stop the program with a
    UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="replace")
        except (AttributeError, ValueError, OSError):
            pass            # no console (None), or one that cannot be changed


# A Korean Windows console shows cp949, some consoles only ASCII: the game
# must not stop because of something it prints.
make_console_safe()

score = Score()
ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
ball.stop()
bar1 = Bar(GAP_FROM_SCR)
bar2 = Bar(WIDTH - GAP_FROM_SCR - BAR_W)

game_started = False
bot_plays_bar1 = False   # --demo
bot_plays_bar2 = False   # --bot and --demo
game_speed = 1           # --speed
max_frames = None        # --frames
screenshot_path = None   # --screenshot
frame_count = 0


def start_game():
    global game_started
    game_started = True
    score.reset()
    ball.serve()


def on_key_down(key):
    if key == keys.SPACE and (not game_started or score.game_over):
        start_game()


def move_bars():
    if bot_plays_bar1:
        bot_move(bar1, ball)
    else:
        move_bar_with_keys(bar1, keyboard, BAR1_UP_KEYS, BAR1_DOWN_KEYS)
    if bot_plays_bar2:
        bot_move(bar2, ball)
    else:
        move_bar_with_keys(bar2, keyboard, BAR2_UP_KEYS, BAR2_DOWN_KEYS)


def play_one_frame():
    move_bars()
    if game_started and not score.game_over:
        for event in update_ball(ball, bar1, bar2, score):
            play_sound(event_sound(event))
        if score.game_over:
            # One line on the terminal too, so the tests can see who won.
            print("Winner: Player%d %d-%d" % (score.winner(), score.b1, score.b2),
                  flush=True)


def update():
    global frame_count
    frame_count += 1
    for _ in range(game_speed):
        play_one_frame()


# screen is not imported: Pygame Zero puts it into this file when the game
# runs, and draw() is only called then.
def draw():
    pong_text.use_language_once(LANGUAGE)         # (unless --lang chose already)
    draw_game(screen, ball, bar1, bar2, score)
    if bot_plays_bar2 and not bot_plays_bar1:      # --bot: one player, on the left
        draw_bar_label(screen, bar1, say("you"))
        keys_help = say("keys_left")
    else:
        keys_help = say("keys_both")
    draw_start_or_winner(screen, score, game_started, keys_help)
    if max_frames is not None and frame_count >= max_frames:
        finish()


# ---- the command line, and scripted runs (--frames and --screenshot serve
# ---- the tests and the README's pictures, not the game itself)

def finish():
    """End of --frames: save the screenshot if asked for, then quit."""
    if screenshot_path:
        pygame.image.save(screen.surface, screenshot_path)
    print("Stopped after %d frames, score %d-%d" % (frame_count, score.b1, score.b2),
          flush=True)
    sys.exit(0)


def read_options(args):
    parser = argparse.ArgumentParser(description="Pong for two players.")
    parser.add_argument("--bot", action="store_true",
                        help="the computer plays the right bar")
    parser.add_argument("--demo", action="store_true",
                        help="the computer plays both bars; starts by itself")
    parser.add_argument("--lang", choices=["auto", "ko", "en"], default=LANGUAGE,
                        help="the screens' language (default %(default)s: the computer's)")
    parser.add_argument("--speed", type=int, default=1, metavar="K",
                        help="fast forward: play K frames per frame shown")
    parser.add_argument("--frames", type=int, metavar="N",
                        help="quit after N frames")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="with --frames: save the last frame to PNG")
    # parse_known_args: ignore anything we do not know instead of stopping.
    options, unknown = parser.parse_known_args(args)
    if options.speed < 1:
        parser.error("--speed must be 1 or more")
    if unknown:
        print("Ignoring unknown options:", " ".join(unknown), file=sys.stderr)
    return options


def use_options(options):
    global bot_plays_bar1, bot_plays_bar2, game_speed, max_frames
    global screenshot_path
    if options.demo:
        bot_plays_bar1 = True
        bot_plays_bar2 = True
        start_game()
    elif options.bot:
        bot_plays_bar2 = True
    game_speed = options.speed
    pong_text.use_language(options.lang)
    max_frames = options.frames
    screenshot_path = options.screenshot


if __name__ == "__main__":
    # pgzrun is imported only here: importing it sets up the *main* program
    # as a Pygame Zero game, which must not happen when pong_net.py or a
    # test imports this file.
    import pgzrun
    use_options(read_options(sys.argv[1:]))
    try:
        pgzrun.go()
    except KeyboardInterrupt:       # Ctrl+C in the terminal: no error message
        pass
