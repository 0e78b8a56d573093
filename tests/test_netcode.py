"""pong_netcode's rules without sockets or windows: reading messages,
the ping, Player 2's clock and prediction, smoothing, and the host's checks
of Player 2's hits. The last tests play whole rallies through a simulated
slow link (messages held back some frames each way), both bars played by
the bot, and check what each side saw."""
import collections
import math
import random

import pygame
import pytest

from pong_netcode import (BAR2_X, BAR_GLIDE, FPS, RESUME_WITHIN, BallPrediction, BallReport,
                          Blend, HitReport, HostBall, HostClock, Netcode, PingMeter, PingReport, bar_at,
                          bar_frame_content, bar_pos_content, follow_textbook_host,
                          frames_to_step, glide, lead, read_ball_pos, read_bar_frame,
                          read_bar_pos, read_game_start, read_hello, read_hit, read_ping,
                          read_point, read_resume)
from pong_oop import (BALL_RADIUS, BAR_H, BAR_W, GAP_FROM_SCR, HEIGHT, MAX_SPEED, WIDTH, Ball, Bar,
                      Score, bot_move, faster)

NAN, INF = float("nan"), float("inf")

# ---- reading messages ----------------------------------------------------------

BAD_BAR_POS = ["250", None, NAN, INF, -INF, 1e308, 10 ** 400, [20], [20, 250, 3, 4], [],
               ["x", 250], [20, "250"], [20, True], [20, NAN], [20, INF], [20, 10 ** 400],
               [20, -500], [20, 5000], {"x": 20, "y": 250}, [20, 250, -1], [20, 250, "7"],
               [20, 250, 2.5], [20, [250]], True,
               [772, 300, 1234],        # a frame number makes three: the textbook unpacks two
               [-1, 300], [801, 300], [772, -1], [772, 601]]     # a centre off the court


@pytest.mark.parametrize("content", BAD_BAR_POS, ids=repr)
def test_bad_bar_pos_is_refused(content):
    assert read_bar_pos(content) is None


def textbook_reads_bar_pos(content):
    """The textbook's Bar.pos_update, in effect: it unpacks exactly two
    numbers into the centre of its (whole-pixel) bar."""
    bar = pygame.Rect(0, 0, BAR_W, BAR_H)
    bar.centerx, bar.centery = content
    return bar


def test_bar_pos_is_the_bars_centre_as_the_textbook_sends_and_reads_it():
    for top in (0, 7, 250, HEIGHT - BAR_H):
        for x in (GAP_FROM_SCR, BAR2_X):
            content = bar_pos_content(bar_at(x, top))
            assert len(content) == 2
            assert textbook_reads_bar_pos(content).topleft == (x, top)     # where it is
            assert read_bar_pos(content) == (top, None)
    # The textbook's bar stops only after crossing the edge (top -2 or 502):
    # it is drawn at the edge.
    assert read_bar_pos([27, 48]) == (0, None)
    assert read_bar_pos([772, 552]) == (HEIGHT - BAR_H, None)
    assert read_bar_pos((772.0, 300.0)) == (250, None)


BAD_BAR_FRAME = [None, [772, 300, 5], {"center": [772, 300]}, {"frame": 5},
                 {"center": [772, 300], "frame": -1}, {"center": [772, 300], "frame": 2.5},
                 {"center": [772, NAN], "frame": 5}, {"center": [772, 900], "frame": 5},
                 {"center": "772,300", "frame": 5}, {"center": [772, 300], "frame": True}]


@pytest.mark.parametrize("content", BAD_BAR_FRAME, ids=repr)
def test_bad_bar_frame_is_refused(content):
    assert read_bar_frame(content) is None


def test_bar_frame_carries_the_centre_and_the_hosts_frame():
    assert read_bar_frame(bar_frame_content(bar_at(BAR2_X, 240), 1234)) == (240, 1234)


def test_player2_moves_a_textbook_hosts_ball_on_by_itself_between_its_messages():
    ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
    assert follow_textbook_host(ball, [read_ball_pos({"center": [400, 300], "vel": [5, -5]})]) == []
    assert ball.center == (400, 300)
    follow_textbook_host(ball, [])                  # nothing arrived: one frame on
    assert ball.center == (405, 295)
    ball.set_state((400, 12), (5, -5))
    assert follow_textbook_host(ball, []) == ["wall"]     # off the wall, as the host does
    # The host's ball bounced: Player 2 plays the sound itself, as the textbook's does.
    assert follow_textbook_host(ball, [read_ball_pos({"center": [410, 15], "vel": [5, -5]})]) \
        == ["wall"]
    assert follow_textbook_host(ball, [read_ball_pos({"center": [415, 10], "vel": [-5, 5]})]) \
        == ["bar"]
    assert follow_textbook_host(ball, [read_ball_pos({"center": [400, 300], "vel": [5, 5]})]) \
        == []                                       # a serve: no bounce




GOOD_BALL = {"center": [400.0, 300.0], "vel": [5.0, -5.0], "frame": 10, "bar": 250, "hit": -1,
             "score": [3, 4]}


def with_(**changes):
    content = dict(GOOD_BALL)
    for key, value in changes.items():
        if value is KeyError:
            del content[key]
        else:
            content[key] = value
    return content


BAD_BALL_POS = [None, "ball", [400, 300], {}, with_(center=KeyError), with_(vel=KeyError),
                with_(center=[NAN, 300]), with_(center=[400, INF]), with_(center=[400]),
                with_(center=[1e9, 300]), with_(center=[400, -50]), with_(center="400,300"),
                with_(vel=[NAN, 5]), with_(vel=[100, 5]), with_(vel=[5, None]),
                with_(frame=-1), with_(frame="10"), with_(frame=1.5), with_(frame=True),
                with_(bar=NAN), with_(bar=900), with_(hit="b3"), with_(score="b3"),
                with_(score=[3]), with_(score=[3, 40]), with_(score=[-1, 2]),
                with_(score=[3.0, 4])]


@pytest.mark.parametrize("content", BAD_BALL_POS, ids=repr)
def test_bad_ball_pos_is_refused(content):
    assert read_ball_pos(content) is None


def test_good_ball_pos_new_and_textbook():
    state = read_ball_pos(GOOD_BALL)
    assert state == BallReport((400.0, 300.0), (5.0, -5.0), 10, 250.0, -1, (3, 4))
    old = read_ball_pos({"center": [400, 300], "vel": [5, 5]})
    assert old.frame is None and old.score is None and old.hit == -1


@pytest.mark.parametrize("content,player", [("b1", 1), ("b2", 2), ("b3", None), ("b0", None),
                                            (1, None), (None, None), ("B1", None),
                                            (["b1"], None), ("b1 ", None)])
def test_points(content, player):
    assert read_point(content) == player


def test_hit_ping_hello_resume_and_game_start():
    hit = {"frame": 99, "bar": 240, "center": [755.0, 300.0], "vel": [-5.4, 5.4]}
    assert read_hit(hit) == HitReport(99, 240.0, (755.0, 300.0), (-5.4, 5.4))
    for key, value in [("frame", None), ("frame", -3), ("bar", NAN), ("center", [755, NAN]),
                       ("vel", [-50, 5]), ("center", [5000, 300])]:
        assert read_hit(dict(hit, **{key: value})) is None, (key, value)
    assert read_hit("hit") is None
    assert read_ping({"t": 5.0, "echo": None, "held": 0}) == PingReport(5.0, None, 0.0)
    assert read_ping({"t": 5.0, "echo": 2.0, "held": 1.5}) == PingReport(5.0, 2.0, 1.5)
    for bad in [{"t": NAN}, {"t": 1, "echo": "x"}, {"t": 1, "held": -5}, {"echo": 3}, 7]:
        assert read_ping(bad) is None, bad
    assert read_hello({"id": "ab12", "resume": None}) == ("ab12", None, False)
    assert read_hello({"id": "ab12", "resume": "cd34"}) == ("ab12", "cd34", False)
    assert read_hello({"id": "ab12", "resume": None, "bot": True}) == ("ab12", None, True)
    for bad in [{"id": ""}, {"id": 5}, {"id": "x" * 41}, {"id": "a", "resume": 3}, "a"]:
        assert read_hello(bad) is None, bad
    assert read_resume({"score": [3, 4]}) == (3, 4)
    assert read_resume({"score": [3, 99]}) is None and read_resume([3, 4]) is None
    assert read_game_start(True) is True
    assert read_game_start(1) is None and read_game_start("yes") is None


# ---- ping, clock, smoothing -----------------------------------------------------

def test_ping_is_the_round_trip_without_the_time_the_other_side_held_it():
    mine, theirs = PingMeter(), PingMeter()
    assert mine.ms() is None
    sent = mine.message(now_ms=1000.0)                  # t=1000, nothing to echo yet
    theirs.hear(read_ping(sent), now_ms=1030.0)          # 30 ms on the way
    reply = theirs.message(now_ms=1045.0)                # held 15 ms
    mine.hear(read_ping(reply), now_ms=1080.0)           # 35 ms back
    assert mine.ms() == pytest.approx(65.0)
    assert theirs.ms() is None                           # it has not heard its own echo yet


def test_host_clock_finds_the_hosts_frame_through_a_jittery_link():
    clock = HostClock()
    rng = random.Random(3)
    delay, jitter = 0.030, 0.010
    last_arrival = 0.0
    for frame in range(200):
        sent = frame / FPS
        last_arrival = max(last_arrival, sent + max(0.0, rng.gauss(delay, jitter)))
        clock.hear(frame, last_arrival)
    now = 200 / FPS
    assert clock.now(now, one_way_s=delay) == pytest.approx(200, abs=1.0)
    assert HostClock().now(now, 0.03) is None


def test_a_host_running_slow_is_followed():
    clock = HostClock()
    for frame in range(100):
        clock.hear(frame, frame / 45 + 0.02)            # the host manages only 45 frames a second
    assert clock.now(100 / 45 + 0.02, one_way_s=0.02) == pytest.approx(100 + 0.9, abs=1.0)


def test_a_host_that_skipped_frames_is_followed_at_its_next_message():
    """A busy host draws nothing for 100 ms (6 frames) and then goes on
    from where it was: it is 6 frames behind its old pace for good. Its
    clock in ball_pos says so at once; a line through two seconds of
    arrivals would keep Player 2 ahead of it for a second or more."""
    clock = HostClock()
    rng = random.Random(5)
    delay, jitter, frame_s = 0.030, 0.010, 1 / 62
    sent, last_arrival, errors = 0.0, 0.0, []
    for frame in range(400):
        sent += frame_s + (0.100 if frame == 250 else 0.0)
        last_arrival = max(last_arrival, sent + max(0.0, rng.gauss(delay, jitter)))
        clock.hear(frame, last_arrival, host_ms=1e6 + sent * 1000)
        if 256 <= frame <= 300:           # from a few frames after the pause
            errors.append(abs(clock.now(last_arrival, delay) - (frame + (last_arrival - sent) / frame_s)))
    assert max(errors) < 1.5, max(errors)


def test_a_host_late_for_its_frame_plays_the_frames_it_missed():
    def frames(gaps_ms):
        host, t, played = HostBall(None), 0.0, []
        host.frames_due(t)
        for gap in gaps_ms:
            t += gap / 1000
            played.append(host.frames_due(t))
        return played
    assert frames([16, 17, 16.7, 16]) == [1, 1, 1, 1]       # on time
    assert frames([33, 16, 50, 16]) == [2, 1, 3, 1]         # one, then two frames late
    assert frames([26, 16, 26, 16]) == [2, 1, 1, 1]         # half a frame late, twice
    assert frames([500, 16, 16]) == [4, 2, 1]               # a long pause is not replayed


def test_frames_to_step_never_goes_back_and_only_pauses_when_far_ahead():
    assert frames_to_step(None, 10) == 1
    assert frames_to_step(11.4, 10) == 1
    assert frames_to_step(9.6, 10) == 1
    assert frames_to_step(9.2, 10) == 1             # 1.8 ahead after the step: drawn with lead()
    assert frames_to_step(12.5, 10) == 2
    assert frames_to_step(13.5, 10) == 3            # behind after a busy moment: catch up
    assert frames_to_step(30, 10) == 4              # ... but at most 4 frames at once
    assert frames_to_step(8.5, 10) == 0             # 2.5 ahead after a step: wait a frame
    assert all(frames_to_step(t / 10, 10) >= 0 for t in range(-500, 500))


def test_the_ball_is_drawn_where_the_host_has_it_between_whole_frames():
    assert lead(None, 10) == 0 and lead(10.4, 10) == pytest.approx(0.4)
    assert lead(5, 10) == -2 and lead(15, 10) == 1
    ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
    prediction = BallPrediction(ball)
    prediction.hear(state(0, (760, 300), (6, 0)), answer_due=10)
    prediction.step(2, bar_at(BAR2_X, 250), moving=True)            # bounces off our bar (x 765) at once
    assert ball.vel[0] < 0
    now = ball.center
    assert prediction.drawn_at(0.5) == pytest.approx((now[0] + ball.vel[0] / 2, now[1]))
    # Half a frame back lies on the way the ball came, not behind the bar.
    back = prediction.drawn_at(-0.5)
    previous = prediction.path[-2]
    assert back == pytest.approx(((now[0] + previous[0]) / 2, 300))
    assert back[0] <= BAR2_X - BALL_RADIUS


def test_a_correction_is_blended_over_a_few_frames():
    blend = Blend()
    blend.corrected((400, 300), (430, 300))         # the ball moves 30 px right at once ...
    shown = [blend.shown((430, 300))]
    for _ in range(10):
        blend.fade()
        shown.append(blend.shown((430, 300)))
    assert shown[0] == (400, 300)                   # ... but is drawn where it was
    steps = [b[0] - a[0] for a, b in zip(shown, shown[1:])]
    assert max(steps) <= 12.5                       # and glides over
    assert shown[-1] == (430, 300)
    blend.corrected((100, 300), (700, 300))         # a serve: no gliding across the court
    assert blend.shown((700, 300)) == (700, 300)


def test_the_other_bar_glides_and_snaps_only_when_far():
    assert glide(250, 250) == 250
    assert glide(250, 280) == 250 + BAR_GLIDE
    assert glide(250, 245) == 245
    assert glide(0, 400) == 400


# ---- the host judging Player 2's hits ------------------------------------------

def host_with_ball_going_right(y=300.0, frames=40):
    """A host whose ball flies at Player 2's bar; returns (host, frame of the hit)."""
    ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
    ball.set_state((600.0, y), (6.0, 0.0))
    host = HostBall(ball)
    bar1 = Bar(GAP_FROM_SCR)
    bar2 = Bar(BAR2_X)
    hit_frame = None
    for _ in range(frames):
        host.hear_bar2(read_bar_frame(bar_frame_content(bar_at(BAR2_X, 250), host.frame)))
        host.step(bar1, bar2, moving=True, peer_judges=True, verdict_frames=10)
        if hit_frame is None and ball.right >= bar2.left:
            hit_frame = host.frame
    return host, hit_frame


def honest_hit(host, frame, bar_y=250):
    x, y, vx, vy, _ = host.history[frame]
    return HitReport(frame, bar_y, (BAR2_X - BALL_RADIUS, y), (-faster(vx), faster(vy)))


def test_the_hosts_screen_shows_the_save_it_expects_while_it_waits_for_player2():
    host, frame = host_with_ball_going_right(frames=33)     # Player 2's bar is at 250-350
    assert host.ball.centerx > BAR2_X               # the real ball flies on, awaiting the word
    shown = host.shown_center()
    assert shown[0] < BAR2_X                        # but the screen shows it bounced back
    hit = honest_hit(host, frame)
    assert host.accept(hit) == shown                # smoothing starts from what was shown
    assert host.shown_center() == host.ball.center
    assert math.dist(shown, host.ball.center) < 15  # and the word agreed with the picture


def test_the_host_shows_no_save_where_player2s_bar_is_not():
    host, frame = host_with_ball_going_right(y=100.0, frames=33)  # the bar is at 250-350
    assert host.shown_center() == host.ball.center and host.ball.centerx > BAR2_X


def test_an_honest_hit_is_accepted_and_the_ball_comes_back_at_once():
    host, frame = host_with_ball_going_right()
    assert host.ball.centerx > WIDTH                 # the host let it fly on meanwhile
    hit = honest_hit(host, frame)
    assert host.judge(hit) is None
    host.accept(hit)
    assert host.ball.vel[0] < 0 and host.ball.centerx < BAR2_X
    assert host.last_hit == frame
    assert host.judge(hit) == "too early"            # the same hit twice counts once


@pytest.mark.parametrize("change,reason", [
    (dict(bar=100), "the bar was not there"),        # bar_pos said 250
    (dict(frame_shift=-25), "the ball was not there"),
    (dict(vel=(-MAX_SPEED, 0.0)), "impossible speed"),
    (dict(frame_shift=+60), "in the future"),
])
def test_impossible_hits_are_refused(change, reason):
    host, frame = host_with_ball_going_right()
    hit = honest_hit(host, frame)
    if "frame_shift" in change:
        hit = hit._replace(frame=frame + change["frame_shift"])
    else:
        hit = hit._replace(**change)
    assert host.judge(hit) == reason


def test_a_ball_far_from_the_bar_cannot_be_claimed():
    host, frame = host_with_ball_going_right(y=80.0)     # the bar covers 250-350
    assert host.judge(honest_hit(host, frame)) == "the ball was not there"


def test_the_host_waits_for_player2s_word_before_taking_the_point():
    ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
    bar1, bar2 = Bar(GAP_FROM_SCR), Bar(BAR2_X)
    for peer_judges, wait in ((True, 30), (False, 30)):
        ball.set_state((700.0, 100.0), (6.0, 0.0))      # passes far above the bar
        host = HostBall(ball)
        scored_at = None
        for _ in range(80):
            if 1 in host.step(bar1, bar2, True, peer_judges, wait):
                scored_at = host.frame
                break
        out_at = math.ceil((WIDTH + BALL_RADIUS - 700) / 6)  # the ball's left edge passes WIDTH
        if peer_judges:
            assert scored_at >= host.crossed_at + wait > out_at
        else:
            assert scored_at == out_at


# ---- Player 2's prediction --------------------------------------------------------

def state(frame, center, vel, hit=-1, bar=250):
    return BallReport(tuple(center), tuple(vel), frame, bar, hit, (0, 0))


def test_player2_never_goes_back_to_an_older_state():
    ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
    prediction = BallPrediction(ball)
    assert prediction.hear(state(10, (400, 300), (5, 5)), answer_due=10)
    prediction.step(3, bar_at(BAR2_X, 250), moving=True)
    assert prediction.frame == 13
    assert prediction.hear(state(12, (410, 310), (5, 5)), answer_due=10)
    assert ball.center == pytest.approx((415, 315))     # state 12 run forward to frame 13
    assert prediction.hear(state(11, (0, 0), (5, 5)), answer_due=10) is None
    assert prediction.hear(state(12, (0, 0), (5, 5)), answer_due=10) is None
    assert ball.center == pytest.approx((415, 315)) and prediction.frame == 13


def test_player2_keeps_its_hit_until_the_host_answers():
    ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
    prediction = BallPrediction(ball)
    prediction.hear(state(0, (700, 300), (6, 0)), answer_due=10)
    hits = []
    for _ in range(12):
        hits += prediction.step(1, bar_at(BAR2_X, 250), moving=True)[1]
    assert len(hits) == 1 and ball.vel[0] < 0          # our bar sent it back
    hit_frame = hits[0].frame
    # States the host sent before it heard of the hit show the ball flying on: ignored.
    assert prediction.hear(state(hit_frame + 2, (780, 300), (6, 0)), answer_due=10) is None
    assert ball.vel[0] < 0
    # The host accepted it: its state shows the bounce.
    back = state(hit_frame + 5, (BAR2_X - 40, 300), (-6.48, 0), hit=hit_frame)
    assert prediction.hear(back, answer_due=10)
    assert prediction.pending_hit is None and ball.vel[0] < 0


def test_a_refused_hit_gives_way_to_the_hosts_ball_when_the_answer_is_overdue():
    ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
    prediction = BallPrediction(ball)
    prediction.hear(state(0, (700, 300), (6, 0)), answer_due=10)
    hits = []
    for _ in range(30):
        hits += prediction.step(1, bar_at(BAR2_X, 250), moving=True)[1]
    hit_frame = hits[0].frame
    overdue = state(hit_frame + 11, (830, 300), (6, 0))
    assert prediction.hear(overdue, answer_due=10)
    assert prediction.pending_hit is None and ball.vel[0] > 0


# ---- whole rallies through a simulated slow link --------------------------------

class Link:
    """Messages held back a random number of frames, never reordered."""

    def __init__(self, mean_frames, jitter_frames, rng):
        self.mean, self.jitter, self.rng = mean_frames, jitter_frames, rng
        self.queue = collections.deque()
        self.last_due = 0

    def send(self, now, message):
        delay = max(0, round(self.rng.gauss(self.mean, self.jitter)))
        self.last_due = max(self.last_due, now + delay)
        self.queue.append((self.last_due, message))

    def receive(self, now):
        while self.queue and self.queue[0][0] <= now:
            yield self.queue.popleft()[1]


def elsewhere(hit):
    """A cheat's claim: the bar was far from where it really was."""
    return hit._replace(bar=0 if hit.bar > 150 else HEIGHT - BAR_H)


def play_rallies(frames, mean_frames, jitter_frames, seed=1, peer_honest=True, peer_ahead=0.0):
    """Both bars played by the bot; returns what happened. peer_ahead:
    Player 2's clock runs that many frames ahead of the host's."""
    rng = random.Random(seed)
    random.seed(seed)
    to_peer, to_host = Link(mean_frames, jitter_frames, rng), Link(mean_frames, jitter_frames, rng)
    host_ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
    peer_ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
    host, prediction = HostBall(host_ball), BallPrediction(peer_ball)
    bar1, bar2_at_host, bar2 = Bar(GAP_FROM_SCR), Bar(BAR2_X), Bar(BAR2_X)
    score = Score()
    host_ball.serve()
    host.served()
    seen = {"reported": 0, "accepted": 0, "refused": 0, "points": [0, 0], "gaps": [],
            "screens": []}
    peer_at, host_shown = {}, {}
    wait = 2 * mean_frames + 3 * jitter_frames + 4
    for now in range(frames):
        for kind, message in to_host.receive(now):
            if kind == "bar":
                host.hear_bar2(message)
                bar2_at_host.place(message.y)
            else:
                host.hear_hit(message)
        for hit in host.ready_hits():
            if host.judge(hit) is None:
                host.accept(hit)
                seen["accepted"] += 1
            else:
                seen["refused"] += 1
        bot_move(bar1, host_ball)
        for event in host.step(bar1, bar2_at_host, True, True, wait):
            if event in (1, 2):
                seen["points"][event - 1] += 1
                score.add(event)
                host_ball.serve()
                host.served()
        to_peer.send(now, state(host.frame, host_ball.center, host_ball.vel, host.last_hit,
                                bar1.y))
        for message in to_peer.receive(now):
            heard = prediction.hear(message, answer_due=wait)
            for hit in (heard[1] if heard else []):
                to_host.send(now, ("hit", hit if peer_honest else elsewhere(hit)))
                seen["reported"] += 1
        if prediction.frame is not None:
            _, hits = prediction.step(frames_to_step(host.frame + peer_ahead, prediction.frame),
                                      bar2, True,
                                      lambda: bot_move(bar2, peer_ball))
            for hit in hits:
                to_host.send(now, ("hit", hit if peer_honest else elsewhere(hit)))
                seen["reported"] += 1
            to_host.send(now, ("bar", read_bar_frame(bar_frame_content(bar2, prediction.frame))))
            peer_at[prediction.frame] = peer_ball.center
        host_shown[host.frame] = host.shown_center()
        for frame in [f for f in peer_at if f <= host.frame]:
            # Player 2's ball at a frame against the host's ball at that frame,
            # and against where the host's screen showed it
            shown, (x, y) = peer_at.pop(frame), host.history[frame][:2]
            if 0 < x < WIDTH and 0 < shown[0] < WIDTH:
                seen["gaps"].append(math.dist(shown, (x, y)))
                if frame in host_shown and frame - host.served_at > 2 * mean_frames + 2:
                    seen["screens"].append(math.dist(shown, host_shown[frame]))
        host_shown.pop(host.frame - 200, None)
    return seen


@pytest.mark.parametrize("mean_frames,jitter_frames,ahead", [
    (0, 0, 0), (2, 0.6, 0), (6, 1.8, 0), (0, 0, 2.5), (2, 0.6, -0.9)])
def test_honest_player2_hits_all_count_and_both_see_the_same_ball(mean_frames, jitter_frames,
                                                                  ahead):
    seen = play_rallies(3600, mean_frames, jitter_frames, peer_ahead=ahead)   # a minute of play
    assert seen["reported"] >= 10, seen
    assert seen["refused"] == 0, seen
    assert seen["accepted"] == seen["reported"]
    if ahead == 0:
        gaps = sorted(seen["gaps"])
        assert gaps[len(gaps) // 2] < 1.0           # the same ball, most of the time
        assert gaps[int(len(gaps) * 0.95)] < 10.0


@pytest.mark.parametrize("mean_frames,jitter_frames", [(2, 0.6), (4, 1.2)])
def test_the_hosts_screen_shows_player2s_saves_without_waiting_for_its_word(mean_frames,
                                                                            jitter_frames):
    # The host's screen against Player 2's, frame by frame: the host no longer
    # shows the ball flying past Player 2's bar until Player 2's word arrives.
    screens = play_rallies(3600, mean_frames, jitter_frames)["screens"]
    assert len(screens) > 3000
    assert sum(1 for gap in screens if gap > 10) <= 0.004 * len(screens)


def test_a_player2_claiming_saves_with_its_bar_elsewhere_gets_nothing():
    seen = play_rallies(1800, 2, 0.6, peer_honest=False)
    assert seen["reported"] > 0 and seen["accepted"] == 0
    assert seen["points"][0] > 0                    # the host scores instead


def test_player2_remembers_a_bounded_number_of_frames():
    """Catching up with the host's newer states skips frames; what Player 2
    remembers of its bar and ball must still stay a few seconds' worth."""
    from pong_netcode import HISTORY_FRAMES, BallPrediction, BallReport, bar_at, ball_from
    prediction = BallPrediction(ball_from((400, 300), (5, 5)))
    bar = bar_at(BAR2_X, 250)
    for k in range(3000):           # each state 7 frames on; 2 frames stepped in between
        prediction.hear(BallReport((400.0, 300.0), (5.0, 5.0), k * 7, 250.0, -1, None), 10)
        prediction.step(2, bar, True)
    assert len(prediction.shown_at) <= HISTORY_FRAMES
    assert len(prediction.my_bar) <= HISTORY_FRAMES


# ---- one frame of each side: Netcode.referee() and Netcode.follow_host() ----

def test_the_referee_counts_a_point_and_says_what_to_send_and_play():
    """The host's frame, fed the time: a ball past Player 2's bar is a
    point for Player 1: score "b1" queued, the "die" sound, the new score to
    print, a new serve, then ball_pos and bar_pos, in the textbook's shapes."""
    ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
    netcode, score = Netcode(ball), Score()
    bar1, bar2 = Bar(GAP_FROM_SCR), Bar(BAR2_X)
    bar2.place(0)                               # far from the ball
    ball.set_state((WIDTH - 2, HEIGHT - 100), (8.0, 0.0))
    for frame in range(30):
        turn = netcode.referee([], 10.0 + frame / FPS, bar1, bar2, score, True, lambda: None)
        if turn.scores:
            break
    assert (score.b1, score.b2) == (1, 0) and turn.scores == [(1, 0)]
    assert "die" in turn.sounds
    titles = [title for title, _, _ in turn.sends]
    assert titles == ["score", "ball_pos", "bar_pos"]
    assert turn.sends[0] == ("score", "b1", True)
    ball_pos = turn.sends[1][1]
    assert read_ball_pos(ball_pos).frame == netcode.host_ball.frame
    assert ball_pos["ms"] == round((10.0 + frame / FPS) * 1000, 1)
    assert ball_pos["score"] == [1, 0]
    assert abs(ball_pos["center"][0] - WIDTH / 2) <= 8          # served again
    assert turn.sends[2] == ("bar_pos", list(bar1.center), False)


def test_player2_follows_the_hosts_ball_and_takes_its_score():
    ball = Ball(0, 0, BALL_RADIUS * 2, BALL_RADIUS * 2)
    netcode, score = Netcode(ball), Score()
    bar2 = Bar(BAR2_X)
    state = BallReport((300.0, 200.0), (4.0, 1.0), 50, 250.0, -1, (2, 1), 1000.0)
    turn = netcode.follow_host([state], 5.0, score, bar2, True, lambda: None)
    assert (score.b1, score.b2) == (2, 1)               # both screens show the host's score
    assert netcode.prediction.frame >= 50 and tuple(ball.vel) == (4.0, 1.0)
    assert [title for title, _, _ in turn.sends] == ["bar_pos", "bar_frame"]
    assert turn.sends[1][1] == bar_frame_content(bar2, netcode.prediction.frame)


def test_the_same_two_players_play_on_after_a_break_only_soon_enough():
    netcode, score = Netcode(Ball(0, 0, 10, 10)), Score()
    netcode.opponent_id = "them"
    score.b1, score.b2 = 3, 1
    netcode.remember_game(score, True, True, 100.0)
    assert netcode.remembered_opponent(100.0 + RESUME_WITHIN) == "them"
    assert netcode.remembered_opponent(100.1 + RESUME_WITHIN) is None
    assert netcode.same_game_again("them", "me", "me", 110.0) == (3, 1)
    assert netcode.saved_game is None                   # used once
    netcode.remember_game(score, True, True, 100.0)
    assert netcode.same_game_again("them", "someone else", "me", 110.0) is None
    netcode.remember_game(score, True, False, 100.0)    # no game under way: nothing kept
    assert netcode.saved_game is None
