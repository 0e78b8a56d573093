"""The netcode of network Pong: the rules pong_net.py plays by on a real network.

Nothing here opens a socket or a window: each function or class is fed what
arrived and the time, and answers with what to show or send, so
tests/test_netcode.py checks the rules on their own, in a split second.

How the game stays fair and smooth on a slow network
----------------------------------------------------
Every message takes a while to arrive (10-100 ms on a school network, and
never the same time twice). So:

* The host numbers its frames and keeps the clock's pace (a frame it was
  too busy to play is played with the next). Player 2 works out which
  frame the host is at *now* (from the host's clock and the ping) and runs
  the host's latest ball forward to it, so both screens show the ball in
  the same place at the same moment.
* Player 2 decides whether the ball hit its own bar, exactly as it showed
  it, and tells the host ("hit"). The host checks that the claim is
  possible, then takes the ball back to that frame and bounces it. The
  host waits a little (one ping and a bit) before it gives itself a point;
  meanwhile its screen shows the save it expects.
* Corrections are spread over a few frames, and the other player's bar
  glides to where it is reported, so nothing jumps.

Messages between the two games. The textbook's four titles (bar_pos,
ball_pos, score, game_start) keep exactly the textbook's shapes, so a
textbook game can play ours in either role; what we add travels where a
textbook game does not look: extra keys inside ball_pos's dict, and titles
of our own. Sent every frame unless noted:

    bar_pos     [x, y]          the centre of the sender's bar, exactly two
                                numbers (the textbook reads it with
                                centerx, centery = value)
    ball_pos    {"center": [x, y], "vel": [vx, vy],   from the host (a textbook
                                    game reads these two keys only)
                 "frame": F,        the host's frame number of this state
                 "bar": y1,         the top of the host's bar at frame F
                 "hit": T,          the last of Player 2's hits it accepted
                 "score": [b1, b2], the score, so both screens agree
                 "ms": t}           the host's clock (ms) in frame F
    score       "b1" or "b2" when a player wins a point, from the host (queued)
    game_start  True, from whoever pressed Space (queued)
    bar_frame   {"center": [x, y], "frame": F}, from Player 2: the centre of
                its bar when it showed the host's frame F (a textbook game
                sends none: the host then bounces the ball off the bar_pos
                it last heard, as the textbook does)
    ping        {"t": ms, "echo": ms or null, "held": ms}: the sender's
                clock, the last "t" it got from us, and how long ago it got it
    hit         {"frame": T, "bar": y, "center": [x, y], "vel": [vx, vy]},
                from Player 2 (queued): its bar (top at y) sent the ball back
                at frame T, leaving it with that center and velocity
    hello       {"id": "...", "resume": "..." or null, "bot": true or false}
                (queued) who I am, who I was playing when the relay went
                away, and whether the computer plays me (--bot)
    resume      {"score": [b1, b2]}, from the host (queued): we are the same
                two players as before the relay went away; play on from this

A textbook host sends ball_pos without "frame": Player 2 then shows its
ball as it arrives and moves it on by itself in the frames in between, as
the textbook's Player 2 does.

Anything that does not have this shape is ignored and counted.
"""
import collections
import math
import statistics

from pong_oop import (BALL_RADIUS, BAR_H, BAR_SPEED, BAR_W, FINAL_SCORE, GAP_FROM_SCR, HEIGHT,
                      MAX_SPEED, WIDTH, Ball, Bar, event_sound, faster, move_ball)

FPS = 60                    # Pygame Zero's frames per second
FRAME_MS = 1000 / FPS
BAR2_X = WIDTH - GAP_FROM_SCR - BAR_W

# Smoothing
BLEND_KEEP = 0.6            # each frame, a correction shrinks to 60% of itself ...
SNAP_DISTANCE = 250         # ... unless it is this big (a new serve): then at once
BAR_GLIDE = BAR_SPEED + 4   # the other player's bar glides at most this far a frame
BAR_SNAP = 150              # ... unless it is this far off

# Checking Player 2's hits
HIT_REACH = 14              # px of slack around the bar and the ball
HIT_FRAMES = 4              # Player 2's frame count may be this many frames off
MAX_HIT_LEAD = 30           # a hit this many frames ahead of the host is refused
HIT_POSITION_SLACK = 24     # px between Player 2's ball and the host's at a hit
BAR_SLACK = 10              # px between a claimed bar and the reported one
VERDICT_EXTRA_MS = 40       # the host waits a ping and this long for a hit
MAX_VERDICT_FRAMES = 45     # ... but never longer than this
HISTORY_FRAMES = 180        # the host remembers the ball this many frames back
MAX_REPLAY = 120            # Player 2 runs a state forward at most this far
MAX_CATCH_UP = 4            # Player 2 moves the ball at most this many frames in one
RESUME_WITHIN = 30.0        # s: the same two players back this soon play on from the score

# Sanity limits for what arrives
MAX_FRAME = 2 ** 40
BALL_X_LIMITS = (-WIDTH, 2 * WIDTH)         # the ball may fly off the court a while
MAX_ID_LENGTH = 40


# ---------------------------------------------------------------------------
# Reading messages: each returns the cleaned-up content, or None when the
# message does not have the right shape. Nothing here trusts the other side.
# ---------------------------------------------------------------------------

def read_number(value, low, high):
    """value as a float if it is a real number from low to high, else None
    (True/False, strings, None, NaN, infinity and huge numbers are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and not low - 1 <= value <= high + 1:
        return None             # checked before float(): 10**400 does not fit one
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        return None
    return value


def read_whole(value, low, high):
    """value if it is a whole number (int) from low to high, else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def read_pair(value, x_limits, y_limits):
    """(x, y) from a list of two numbers inside the limits, else None."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    x = read_number(value[0], *x_limits)
    y = read_number(value[1], *y_limits)
    if x is None or y is None:
        return None
    return x, y


SPEED_LIMITS = (-MAX_SPEED - 0.01, MAX_SPEED + 0.01)
CENTER_Y_LIMITS = (0, HEIGHT)
BAR_Y_LIMITS = (0, HEIGHT - BAR_H)

BarReport = collections.namedtuple("BarReport", "y frame")
BallReport = collections.namedtuple("BallReport", "center vel frame bar hit score ms",
                                    defaults=(None,))
HitReport = collections.namedtuple("HitReport", "frame bar center vel")
PingReport = collections.namedtuple("PingReport", "t echo held")


def read_bar_pos(content):
    """A bar_pos message: the centre of the other player's bar, exactly
    [x, y] as the textbook sends it -> BarReport(top y, frame None). A
    textbook bar may stick out of the court by a few pixels (its bar stops
    only after it has crossed the edge): it is drawn at the edge."""
    center = read_pair(content, (0, WIDTH), CENTER_Y_LIMITS)
    if center is None:
        return None
    return BarReport(top_from_center(center[1]), None)


def read_bar_frame(content):
    """A bar_frame message {"center": [x, y], "frame": F} -> BarReport(top y, F)."""
    if not isinstance(content, dict):
        return None
    center = read_pair(content.get("center"), (0, WIDTH), CENTER_Y_LIMITS)
    frame = read_whole(content.get("frame"), 0, MAX_FRAME)
    if center is None or frame is None:
        return None
    return BarReport(top_from_center(center[1]), frame)


def top_from_center(center_y):
    """The top of a bar whose centre is at center_y, kept on the court."""
    return min(max(int(round(center_y)) - BAR_H // 2, 0), HEIGHT - BAR_H)


def bar_pos_content(bar):
    """What bar_pos carries: the bar's centre, the textbook's two numbers."""
    return list(bar.center)


def bar_frame_content(bar, frame):
    """What bar_frame carries: the bar's centre and the host's frame it belongs to."""
    return {"center": list(bar.center), "frame": frame}


def read_score_pair(value):
    """[b1, b2] -> (b1, b2), each a whole number from 0 to FINAL_SCORE."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    b1, b2 = (read_whole(points, 0, FINAL_SCORE) for points in value)
    if b1 is None or b2 is None:
        return None
    return b1, b2


def read_ball_pos(content):
    """A ball_pos message -> BallReport. frame, bar, hit and score are None
    when a textbook host leaves them out."""
    if not isinstance(content, dict):
        return None
    center = read_pair(content.get("center"), BALL_X_LIMITS, CENTER_Y_LIMITS)
    vel = read_pair(content.get("vel"), SPEED_LIMITS, SPEED_LIMITS)
    if center is None or vel is None:
        return None
    extras = {}
    for key, reader in (("frame", lambda v: read_whole(v, 0, MAX_FRAME)),
                        ("bar", lambda v: read_number(v, *BAR_Y_LIMITS)),
                        ("hit", lambda v: read_whole(v, -1, MAX_FRAME)),
                        ("score", read_score_pair),
                        ("ms", lambda v: read_number(v, -1e15, 1e15))):
        if key in content:
            extras[key] = reader(content[key])
            if extras[key] is None:
                return None
    return BallReport(center, vel, extras.get("frame"), extras.get("bar"),
                      extras.get("hit", -1), extras.get("score"), extras.get("ms"))


def read_point(content):
    """A score message "b1" or "b2" -> 1 or 2."""
    return {"b1": 1, "b2": 2}.get(content) if isinstance(content, str) else None


def read_hit(content):
    """A hit message -> HitReport."""
    if not isinstance(content, dict):
        return None
    frame = read_whole(content.get("frame"), 0, MAX_FRAME)
    bar = read_number(content.get("bar"), *BAR_Y_LIMITS)
    center = read_pair(content.get("center"), (0, WIDTH), CENTER_Y_LIMITS)
    vel = read_pair(content.get("vel"), SPEED_LIMITS, SPEED_LIMITS)
    if None in (frame, bar, center, vel):
        return None
    return HitReport(frame, bar, center, vel)


def read_ping(content):
    """A ping message -> PingReport (echo None until the other side has heard us)."""
    if not isinstance(content, dict):
        return None
    t = read_number(content.get("t"), -1e15, 1e15)
    echo = content.get("echo")
    if echo is not None:
        echo = read_number(echo, -1e15, 1e15)
    held = read_number(content.get("held", 0), 0, 60000)
    if t is None or held is None or (echo is None and content.get("echo") is not None):
        return None
    return PingReport(t, echo, held)


def read_player_id(value):
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH:
        return value
    return None


def read_hello(content):
    """A hello message -> (id, resume id or None, played by --bot)."""
    if not isinstance(content, dict):
        return None
    player_id = read_player_id(content.get("id"))
    resume = content.get("resume")
    if player_id is None or (resume is not None and read_player_id(resume) is None):
        return None
    return player_id, resume, content.get("bot") is True


def read_resume(content):
    """A resume message -> the score (b1, b2) to play on from."""
    if not isinstance(content, dict):
        return None
    return read_score_pair(content.get("score"))


def read_game_start(content):
    return True if content is True else None


# ---------------------------------------------------------------------------
# The netcode rules, without sockets or windows (tests/test_netcode.py).
# ---------------------------------------------------------------------------

class PingMeter:
    """Measures the round trip to the other game.

    Each side sends its own clock ("t") every frame and echoes the last "t"
    it got, with how long it held it. When our "t" comes back, the round
    trip is now - echo - held.
    """

    def __init__(self, keep=30):
        self.samples = collections.deque(maxlen=keep)
        self.their_t = None
        self.their_t_heard_at = None

    def message(self, now_ms):
        held = 0.0 if self.their_t is None else now_ms - self.their_t_heard_at
        return {"t": round(now_ms, 1), "echo": self.their_t, "held": round(held, 1)}

    def hear(self, ping, now_ms):
        self.their_t, self.their_t_heard_at = ping.t, now_ms
        if ping.echo is not None:
            round_trip = now_ms - ping.echo - ping.held
            if 0 <= round_trip <= 10000:
                self.samples.append(round_trip)

    def ms(self):
        """The usual round trip lately (the median), or None before the first."""
        return statistics.median(self.samples) if self.samples else None

    def worst_ms(self):
        return max(self.samples) if self.samples else None


class HostClock:
    """Player 2's idea of which frame the host is at now.

    Each ball_pos brings the host's frame number F and the host's clock
    then, and arrives a little later at local time t. The host's clock
    against ours is steady: over the last two seconds, its clock minus the
    time we heard it, plus the one-way delay, says what the host's clock
    reads now. The newest frame and its time on the host's clock then say
    which frame the host is at: a host that falls behind (a busy computer
    skips frames) is followed at the next message, not seconds later.
    Without the host's clock (an older host), F against t lies on a line,
    blurred by the jitter, which is used instead.
    """

    def __init__(self, window=2.0):
        self.window = window
        self.samples = collections.deque()      # (local time, frame, host's clock in ms)

    def hear(self, frame, t, host_ms=None):
        self.samples.append((t, frame, host_ms))
        while self.samples and self.samples[0][0] < t - self.window:
            self.samples.popleft()

    def now(self, t, one_way_s):
        """The host's frame at local time t (a float), or None before any news."""
        if not self.samples:
            return None
        last_t, last_frame, last_ms = self.samples[-1]
        timed = [s for s in self.samples if s[2] is not None]
        if last_ms is not None and len(timed) >= 10:
            clock_gap = statistics.median(ms - heard * 1000 for heard, _, ms in timed)
            host_now = t * 1000 + clock_gap + one_way_s * 1000
            steps = [(b[2] - a[2]) / (b[1] - a[1]) for a, b in zip(timed, timed[1:])
                     if b[1] > a[1]]
            frame_ms = statistics.median(steps) if steps else FRAME_MS
            frame_ms = min(max(frame_ms, FRAME_MS / 1.5), FRAME_MS * 2)
            return last_frame + (host_now - last_ms) / frame_ms
        if len(self.samples) < 10 or last_t - self.samples[0][0] < 0.5:
            return last_frame + (t - last_t + one_way_s) * FPS
        mean_t = statistics.fmean(s[0] for s in self.samples)
        mean_f = statistics.fmean(s[1] for s in self.samples)
        spread = sum((s[0] - mean_t) ** 2 for s in self.samples)
        rate = sum((s[0] - mean_t) * (s[1] - mean_f) for s in self.samples) / spread
        rate = min(max(rate, FPS * 0.5), FPS * 1.5)
        return mean_f + (t - mean_t + one_way_s) * rate


def frames_to_step(target, frame):
    """How many frames to move the ball this frame: normally 1, so it moves
    evenly; more (up to MAX_CATCH_UP) to catch up when it would fall more
    than 1 frame behind the target (after a busy computer skipped frames);
    0 (a pause) only when it would be more than 2 frames ahead. Never
    backwards. What is left over is drawn with lead()."""
    if target is None:
        return 1
    behind = target - (frame + 1)
    if behind < -2:
        return 0
    if behind > 1:
        return 1 + min(int(behind), MAX_CATCH_UP - 1)
    return 1


def lead(target, frame):
    """How many frames (a fraction, -2 to 1) the host's now is ahead of the
    ball's frame. The ball is drawn that far along its way (or back along
    the way it came), so it shows where the host has it between whole frames."""
    if target is None or frame is None:
        return 0.0
    return max(-2.0, min(1.0, target - frame))


class Blend:
    """How far the drawn ball still is from the real one after a correction.

    A correction moves the ball at once but the drawing keeps its place
    and then closes the gap in a few frames, so the ball never jumps.
    """

    def __init__(self):
        self.dx = self.dy = 0.0

    def corrected(self, old_center, new_center):
        dx, dy = old_center[0] - new_center[0], old_center[1] - new_center[1]
        if math.hypot(self.dx + dx, self.dy + dy) > SNAP_DISTANCE:
            self.dx = self.dy = 0.0
        else:
            self.dx += dx
            self.dy += dy

    def fade(self):
        self.dx *= BLEND_KEEP
        self.dy *= BLEND_KEEP
        if math.hypot(self.dx, self.dy) < 0.5:
            self.dx = self.dy = 0.0

    def shown(self, center):
        x = center[0] + self.dx
        y = min(max(center[1] + self.dy, BALL_RADIUS), HEIGHT - BALL_RADIUS)
        return x, y


def glide(shown_y, target_y):
    """The other player's bar, one frame closer to where it was reported."""
    gap = target_y - shown_y
    if abs(gap) > BAR_SNAP:
        return target_y
    return shown_y + max(-BAR_GLIDE, min(BAR_GLIDE, gap))


def bar_at(x, y):
    bar = Bar(x)
    bar.place(int(round(y)))
    return bar


def ball_from(center, vel):
    moved = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
    moved.set_state(center, vel)
    return moved


def follow_textbook_host(ball, states):
    """Player 2's ball against a textbook host, whose ball_pos carries no
    frame number: take the newest of `states` that arrived this frame, or,
    when none did, move the ball on one frame by itself (off the walls: the
    host decides the bars), as the textbook's Player 2 does. Returns the
    events, for the sounds: a state going back the other way is a "bar",
    one going up instead of down (or down instead of up) a "wall"."""
    if not states:
        return move_ball(ball)
    (x, y), (vx, vy) = states[-1].center, states[-1].vel
    served = math.dist((x, y), ball.center) > SNAP_DISTANCE / 2
    events = []
    if not served and vx * ball.vel[0] < 0:
        events.append("bar")
    elif not served and vy * ball.vel[1] < 0:
        events.append("wall")
    ball.set_state((x, y), (vx, vy))
    return events


def hits_right_bar(events, ball):
    """After move_ball(ball, left_bar, right_bar): did it bounce off the right bar?"""
    return "bar" in events and ball.vel[0] < 0 and ball.centerx > WIDTH / 2


class HostBall:
    """The host's ball: moves it, remembers where it was each frame, and
    judges Player 2's hits.

    When Player 2 reports its own hits, the host does not bounce the ball
    off Player 2's bar itself: its picture of that bar is old. It lets the
    ball fly on and waits a ping and a bit for Player 2's word before it
    gives itself the point. Meanwhile its screen shows the ball bouncing
    off its picture of that bar (`shadow`), if it would: Player 2's word
    comes a moment later, and the ball should not be seen flying past a bar
    that saved it.
    """

    def __init__(self, ball):
        self.ball = ball
        self.frame = 0
        self.history = {}               # frame -> (x, y, vx, vy, host bar y)
        self.bar2_reports = collections.deque(maxlen=HISTORY_FRAMES)   # (frame, y)
        self.last_hit = -1              # frame of the last hit accepted
        self.served_at = 0
        self.crossed_at = None          # frame the ball passed Player 2's bar
        self.waiting_hits = []          # hits at frames the host has not reached yet
        self.shadow = None              # the ball as shown while Player 2's word is awaited
        self.last_update = None         # when frames_due() was last asked (s)
        self.frames_owed = 0.0          # frames the game is behind the clock

    def frames_due(self, now_s):
        """How many frames to play in this update: 1, or more when the
        computer was too busy to call update() on time, so that the game
        keeps the clock's pace (Player 2 follows that pace: a host that
        fell behind would be seen ahead of where it is). Pygame Zero calls
        update() a little more often than 60 times a second, so a gap of up
        to a quarter frame more than one frame is on time."""
        gap_frames = 1.0
        if self.last_update is not None:
            gap_frames = (now_s - self.last_update) * 1000 / FRAME_MS
        self.last_update = now_s
        if gap_frames > 1.25:
            self.frames_owed = min(self.frames_owed + gap_frames - 1, MAX_CATCH_UP)
        extra = min(int(self.frames_owed + 0.5), MAX_CATCH_UP - 1)
        self.frames_owed -= extra
        return 1 + extra

    def served(self):
        self.served_at = self.frame
        self.crossed_at = None
        self.shadow = None

    def shown_center(self):
        """Where the host's screen shows the ball."""
        return (self.shadow or self.ball).center

    def _move_shadow(self, before, bar1, bar2):
        """The ball as it would go if Player 2's bar is where we last heard."""
        if self.shadow is None:
            probe = ball_from(*before)
            if hits_right_bar(move_ball(probe, bar1, bar2), probe):
                self.shadow = probe
        else:
            move_ball(self.shadow, bar1, bar2)

    def step(self, bar1, bar2, moving, peer_judges, verdict_frames):
        """One frame. Returns move_ball()'s events, plus 1 or 2 when a player
        scored (the caller counts it and serves)."""
        self.frame += 1
        events = []
        if moving:
            if peer_judges:
                before = self.ball.center, self.ball.vel
                events = move_ball(self.ball, bar1)
                self._move_shadow(before, bar1, bar2)
            else:
                events = move_ball(self.ball, bar1, bar2)
            if self.ball.vel[0] <= 0:
                self.crossed_at = None
            elif self.crossed_at is None and self.ball.centerx > bar2.centerx:
                self.crossed_at = self.frame
            player = self.ball.who_scored()
            waited = self.crossed_at is not None and self.frame - self.crossed_at >= verdict_frames
            if player == 2 or (player == 1 and (waited or not peer_judges)):
                events.append(player)
                self.shadow = None
        x, y = self.ball.center
        vx, vy = self.ball.vel
        self.history[self.frame] = (x, y, vx, vy, bar1.y)
        self.history.pop(self.frame - HISTORY_FRAMES, None)
        return events

    def hear_bar2(self, report):
        if report.frame is not None:
            self.bar2_reports.append((report.frame, report.y))

    def hear_hit(self, hit):
        self.waiting_hits.append(hit)

    def ready_hits(self):
        """Player 2's hits to judge now: Player 2 may run a frame or two
        ahead, so a hit waits until the host has reached its frame."""
        ready = [hit for hit in self.waiting_hits
                 if not self.frame < hit.frame <= self.frame + MAX_HIT_LEAD]
        self.waiting_hits = [hit for hit in self.waiting_hits if hit not in ready]
        return ready

    def judge(self, hit):
        """Why Player 2's hit cannot be right, or None if it can."""
        if hit.frame <= max(self.last_hit, self.served_at):
            return "too early"
        if hit.frame > self.frame + MAX_HIT_LEAD:
            return "in the future"
        if not self.bar2_reports:
            return "no bar reported"
        report_frame, report_y = min(self.bar2_reports, key=lambda r: abs(r[0] - hit.frame))
        if abs(hit.bar - report_y) > BAR_SPEED * abs(report_frame - hit.frame) + BAR_SLACK:
            return "the bar was not there"
        reach = bar_at(BAR2_X, hit.bar).inflate(2 * HIT_REACH, 2 * HIT_REACH)
        for frame in range(hit.frame - HIT_FRAMES, hit.frame + HIT_FRAMES + 1):
            if frame not in self.history:
                continue
            x, y, vx, vy, _ = self.history[frame]
            if vx <= 0 or not reach.colliderect(ball_from((x, y), (vx, vy))):
                continue
            if math.dist((x, y), hit.center) > HIT_POSITION_SLACK + abs(vx) * HIT_FRAMES:
                continue
            if (math.isclose(hit.vel[0], -faster(vx), abs_tol=0.01)
                    and math.isclose(abs(hit.vel[1]), abs(faster(vy)), abs_tol=0.01)):
                return None
            return "impossible speed"
        return "the ball was not there"

    def accept(self, hit):
        """Take the ball back to Player 2's hit and run it forward to now.
        Returns the ball's old center on the screen (for smoothing the drawing)."""
        old_center = self.shown_center()
        self.shadow = None
        self.last_hit = hit.frame
        self.crossed_at = None
        self.ball.set_state(hit.center, hit.vel)
        for frame in range(hit.frame + 1, self.frame + 1):
            bar1_y = self.history.get(frame, (0, 0, 0, 0, None))[4]
            if bar1_y is not None:
                move_ball(self.ball, bar_at(GAP_FROM_SCR, bar1_y))
            else:
                self.ball.move()
            x, y = self.ball.center
            vx, vy = self.ball.vel
            self.history[frame] = (x, y, vx, vy, bar1_y)
        return old_center


class BallPrediction:
    """Player 2's ball: the host's latest ball, run forward to the host's now.

    It never goes back to an older state, decides Player 2's own hits as
    they are shown, and keeps a hit it reported until the host accepts it
    (or the host's answer is overdue).
    """

    def __init__(self, ball):
        self.ball = ball
        self.frame = None               # the host frame the ball is at
        self.last_state = -1            # newest host frame heard
        self.host_bar = None            # (frame, y, speed per frame)
        self.my_bar = {}                # frame -> my bar's y then
        self.shown_at = {}              # frame -> where the ball was
        self.pending_hit = None         # HitReport not yet accepted
        self.reported_at = -100         # frame of the last hit reported
        self.path = collections.deque(maxlen=3)     # the ball's centers, last frames

    def host_bar_at(self, frame):
        """Where the host's bar probably is at frame (its last known place,
        moved on at its last speed)."""
        if self.host_bar is None:
            return (HEIGHT - BAR_H) // 2
        known_frame, y, speed = self.host_bar
        y += speed * max(0, frame - known_frame)
        return min(max(y, 0), HEIGHT - BAR_H)

    def _move(self, ball, frame, my_bar_y):
        events = move_ball(ball, bar_at(GAP_FROM_SCR, self.host_bar_at(frame)),
                           bar_at(BAR2_X, my_bar_y))
        hit = None
        if hits_right_bar(events, ball) and frame - self.reported_at > 20:
            hit = HitReport(frame, my_bar_y, ball.center, ball.vel)
            self.reported_at = frame
            self.pending_hit = hit
        return events, hit

    def step(self, steps, my_bar, moving, move_my_bar=None):
        """Move on `steps` frames. move_my_bar(), if given, moves my_bar
        once in each of those frames, so the bar keeps pace with the ball
        however many frames this is. Returns (events, hits to report)."""
        all_events, hits = [], []
        for _ in range(steps):
            if move_my_bar:
                move_my_bar()
            my_bar_y = my_bar.y
            self.frame += 1
            self.my_bar[self.frame] = my_bar_y
            if moving:
                events, hit = self._move(self.ball, self.frame, my_bar_y)
                all_events += events
                if hit:
                    hits.append(hit)
            self.shown_at[self.frame] = self.ball.center
            self.path.append(self.ball.center)
        self._forget_old_frames()
        return all_events, hits

    def _forget_old_frames(self):
        """Keep HISTORY_FRAMES frames of my bar and my ball. (Frames the ball
        skipped, catching up with a newer state, leave gaps: the old ones are
        looked for, not just the one that just got too old.)"""
        for table in (self.my_bar, self.shown_at):
            for old in [frame for frame in table if frame <= self.frame - HISTORY_FRAMES]:
                del table[old]

    def drawn_at(self, lead_frames):
        """Where to draw the ball lead_frames (-2 to 1) from its frame:
        ahead along its velocity, or back along the path it came."""
        x, y = self.ball.center
        if lead_frames >= 0 or len(self.path) < 2:
            lead_frames = max(lead_frames, 0)
            return x + self.ball.vel[0] * lead_frames, y + self.ball.vel[1] * lead_frames
        points = list(self.path)[::-1]          # now, one frame ago, two frames ago
        back = min(-lead_frames, len(points) - 1)
        whole = int(back)
        (x0, y0) = points[whole]
        (x1, y1) = points[min(whole + 1, len(points) - 1)]
        share = back - whole
        return x0 + (x1 - x0) * share, y0 + (y1 - y0) * share

    def hear(self, state, answer_due, moving=True):
        """A ball_pos from the host. Returns (old center, hits to report), or
        None if the state changed nothing. answer_due: frames after a hit by
        which the host's acceptance must show; moving: whether the ball is
        in play (not before a game or after its end)."""
        if state.frame <= self.last_state:
            return None                 # older than what we have: never go back
        if self.host_bar is not None and state.bar is not None and state.frame > self.host_bar[0]:
            speed = (state.bar - self.host_bar[1]) / (state.frame - self.host_bar[0])
            self.host_bar = (state.frame, state.bar, max(-BAR_SPEED, min(BAR_SPEED, speed)))
        elif state.bar is not None:
            self.host_bar = (state.frame, state.bar, 0.0)
        self.last_state = state.frame
        hit = self.pending_hit
        if hit is not None:
            if state.hit >= hit.frame:
                self.pending_hit = None         # accepted
            elif state.frame >= hit.frame and state.frame < hit.frame + answer_due:
                return None     # sent before our hit reached the host
            elif state.frame >= hit.frame:
                self.pending_hit = None         # refused: the host's ball is the truth
        old_center = self.ball.center
        if self.frame is None or state.frame >= self.frame:
            self.frame = state.frame
            self.ball.set_state(state.center, state.vel)
            self.path.clear()
            self.path.append(self.ball.center)
            return old_center, []
        replay = ball_from(state.center, state.vel)
        hits = []
        self.path.clear()
        self.path.append(replay.center)
        for frame in range(max(state.frame, self.frame - MAX_REPLAY) + 1, self.frame + 1):
            if not moving:
                break
            _, hit = self._move(replay, frame, self.my_bar.get(frame, self.my_bar.get(self.frame)))
            if hit:
                hits.append(hit)
            self.path.append(replay.center)
        self.ball.set_state(replay.center, replay.vel)
        return old_center, hits


# ---------------------------------------------------------------------------
# One frame of each side, put together from the pieces above. pong_net.py
# reads the messages, hands them in, and carries out the Turn that comes
# back: the messages to send, the sounds to play, the scores to print.
# ---------------------------------------------------------------------------

class Turn:
    """What one frame of the netcode asks the game to do."""

    def __init__(self):
        self.sends = []         # (title, content, queued): to the other player
        self.sounds = []        # sounds/<name>.wav to play
        self.scores = []        # (b1, b2) after each point won in this frame

    def send(self, title, content, queued=False):
        self.sends.append((title, content, queued))


class Netcode:
    """The network half of a match (pong_net.Match is one): the other game's
    timing, the host's ball and Player 2's prediction of it, and the rules
    each side follows every frame."""

    def __init__(self, ball):
        self.ball = ball
        self.refused_hits = collections.Counter()     # by reason: Player 2's hits refused
        self.bad_messages = collections.Counter()     # by title: read, made no sense
        self.saved_game = None          # (opponent id, my points, theirs, when) after a break
        self.new_opponent()

    def new_opponent(self):
        """Forget everything about the last opponent's timing."""
        self.ping, self.blend, self.host_clock = PingMeter(), Blend(), HostClock()
        self.host_ball, self.prediction = HostBall(self.ball), BallPrediction(self.ball)
        self.shown_their_bar = None     # where the other player's bar is drawn
        self.shown_lead = 0.0           # Player 2: frames the host is ahead of the ball
        self.peer_judges_hits = False   # host: Player 2 sends "hit" messages
        self.opponent_id = None         # the other game's id, from its hello

    def read(self, title, reader, contents):
        """The contents of messages of one title, read with reader(): the
        ones that make sense; the others are counted in bad_messages."""
        good = []
        for content in contents:
            value = reader(content)
            if value is None:
                self.bad_messages[title] += 1
            else:
                good.append(value)
        return good

    def remember_game(self, score, is_host, game_started, now_s):
        """Keep the score of an interrupted game, in case the same opponent is back soon."""
        if game_started and not score.game_over and self.opponent_id:
            mine, theirs = (score.b1, score.b2) if is_host else (score.b2, score.b1)
            self.saved_game = (self.opponent_id, mine, theirs, now_s)

    def remembered_opponent(self, now_s):
        """Whom we played before the break, if it ended RESUME_WITHIN ago or less (for hello)."""
        if self.saved_game and now_s - self.saved_game[3] <= RESUME_WITHIN:
            return self.saved_game[0]
        return None

    def same_game_again(self, their_id, they_remember, my_id, now_s):
        """The host hears the new opponent's hello: the score (b1, b2) to
        play on from if it is the one from before the break and remembers
        us too, else None. The saved game is forgotten either way."""
        saved, self.saved_game = self.saved_game, None
        if saved and saved[0] == their_id and they_remember == my_id and \
                now_s - saved[3] <= RESUME_WITHIN:
            return saved[1], saved[2]     # my points first: I am Player 1 now
        return None

    def verdict_frames(self):
        """How long the host waits for Player 2's word on a ball at its bar."""
        worst = self.ping.worst_ms()
        if worst is None:
            return 12
        return min(MAX_VERDICT_FRAMES, math.ceil((worst + VERDICT_EXTRA_MS) / FRAME_MS) + 2)

    def hear_bar_frame(self, report):
        """The host hears where Player 2's bar was at one of its frames (a
        textbook Player 2 sends no bar_frame: it judges no hits either)."""
        self.host_ball.hear_bar2(report)
        self.peer_judges_hits = True

    def referee(self, hits, now_s, bar1, bar2, score, game_started, move_my_bar):
        """The host's frame: judge Player 2's hits, move the ball as many
        frames as the clock asks, count the points (into score) and serve
        again. Returns the Turn."""
        turn, host_ball, ball = Turn(), self.host_ball, self.ball
        for hit in hits:
            host_ball.hear_hit(hit)
        for hit in host_ball.ready_hits():
            why_not = host_ball.judge(hit) if game_started and not score.game_over \
                else "no game"
            if why_not:
                self.refused_hits[why_not] += 1
            else:
                self.blend.corrected(host_ball.accept(hit), ball.center)
                turn.sounds.append("bar")
        for extra in range(host_ball.frames_due(now_s)):
            if extra:
                move_my_bar()       # (after a busy moment: the bar keeps pace with the ball)
            moving = game_started and not score.game_over
            for event in host_ball.step(bar1, bar2, moving, self.peer_judges_hits,
                                        self.verdict_frames()):
                if event in (1, 2):
                    score.add(event)
                    turn.send("score", "b%d" % event, queued=True)
                    turn.sounds.append("die")
                    turn.scores.append((score.b1, score.b2))
                    if not score.game_over:
                        ball.serve()
                        host_ball.served()
                else:
                    turn.sounds.append(event_sound(event))
        self.blend.fade()
        x, y = ball.center
        turn.send("ball_pos", {
            "center": [x, y], "vel": list(ball.vel), "frame": host_ball.frame, "bar": bar1.y,
            "hit": host_ball.last_hit, "score": [score.b1, score.b2],
            "ms": round(now_s * 1000, 1)})
        turn.send("bar_pos", bar_pos_content(bar1))
        return turn

    def follow_host(self, states, now_s, score, bar2, moving, move_my_bar):
        """Player 2's frame: take in the host's ball_pos states, run the
        ball on to where the host has it now, and judge the ball at my bar
        (bar2), moved by move_my_bar() once each frame the ball moves.
        Returns the Turn (with the hits to report)."""
        turn, prediction, ping = Turn(), self.prediction, self.ping
        if prediction.frame is None and moving:     # a textbook host numbers no frames
            textbook_states = [state for state in states if state.frame is None]
            turn.sounds += map(event_sound, follow_textbook_host(self.ball, textbook_states[-1:]))
        for state in states:
            if state.frame is None:
                continue
            self.host_clock.hear(state.frame, now_s, state.ms)
            if state.score is not None and (score.b1, score.b2) != state.score:
                score.b1, score.b2 = state.score        # both screens show the same score
            answer_due = math.ceil(((ping.worst_ms() or 100) + VERDICT_EXTRA_MS) / FRAME_MS) + 2
            heard = prediction.hear(state, answer_due, moving)
            if heard:
                old_center, hits = heard
                self.blend.corrected(old_center, self.ball.center)
                send_hits(turn, hits)
        if prediction.frame is not None:
            target = self.host_clock.now(now_s, (ping.ms() or 0) / 2000)
            events, hits = prediction.step(frames_to_step(target, prediction.frame), bar2,
                                           moving, move_my_bar)
            turn.sounds += map(event_sound, events)
            send_hits(turn, hits)
            self.shown_lead = lead(target, prediction.frame) if moving else 0.0
        self.blend.fade()
        frame = prediction.frame if prediction.frame is not None else 0
        turn.send("bar_pos", bar_pos_content(bar2))
        turn.send("bar_frame", bar_frame_content(bar2, frame))
        return turn

    def glide_their_bar(self, their_y):
        """The other player's bar, drawn one frame closer to where it is."""
        shown = their_y if self.shown_their_bar is None else self.shown_their_bar
        self.shown_their_bar = glide(shown, their_y)

    def shown_center(self, following):
        """Where to draw the ball: Player 2 (following) draws it where the
        host has it now; corrections are smoothed."""
        x, y = self.host_ball.shown_center()   # (the host shows a save it expects at once)
        if following:
            x, y = self.prediction.drawn_at(self.shown_lead)
        return self.blend.shown((x, y))


def send_hits(turn, hits):
    for hit in hits:
        turn.send("hit", {"frame": hit.frame, "bar": hit.bar, "center": list(hit.center),
                          "vel": list(hit.vel)}, queued=True)
