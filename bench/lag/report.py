"""Figures from recorded matches (see match.py): how fair and how smooth.

    python bench/lag/report.py RUN_DIR [RUN_DIR ...]

prints one table row per match. What the columns mean (all from the two
screens' records, per minute of the match):

    points          points won by the host : by Player 2
    phantom saves   points the host won just after Player 2's screen showed the
                    ball coming back off Player 2's bar
    stalls/min      frames in which Player 2's ball did not move although the
                    ball was in play
    jumps/min       frames in which Player 2's ball moved more than 10 (or 30) px
                    away from where its last step would have taken it (walls
                    and bars taken into account); host screen in brackets
    P2 vs host      distance between the ball on Player 2's screen and on the
                    host's screen at the same wall-clock moment, at every frame
                    either screen draws, median / 95th percentile
    bar jumps       the host's bar on Player 2's screen moving >= 21 px in a frame
    ping            Player 2's ping figure, median
    frame ms        time between drawn frames on Player 2's screen, median / 95th
                    percentile (a late frame shows the machine was busy)
"""
import bisect
import json
import math
import os
import statistics
import sys

WIDTH, HEIGHT = 800, 600
BALL_RADIUS = 10
NEAR_WALL = BALL_RADIUS + 14        # px: a wall bounce may happen within this
NEAR_BAR = 20 + 15 + BALL_RADIUS + 14
SERVE_JUMP = 100                    # px between two frames: a serve, not a move


def load(path):
    with open(path) as lines:
        return [json.loads(line) for line in lines if line.strip()]


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def in_court(x):
    return 0 <= x <= WIDTH


def play_window(peer):
    """From the first to the last frame in which Player 2's ball moved."""
    moving = [i for i in range(1, len(peer)) if peer[i]["ball"] != peer[i - 1]["ball"]]
    if not moving:
        return 0, 0
    return moving[0], moving[-1]


def points(host, start_t, end_t):
    """[(time, player)] for every point the host counted between the times."""
    found = []
    for before, now in zip(host, host[1:]):
        if not start_t <= now["t"] <= end_t:
            continue
        (b1, b2), (a1, a2) = before["score"], now["score"]
        if a1 == b1 + 1 and a2 == b2:
            found.append((now["t"], 1))
        elif a2 == b2 + 1 and a1 == b1:
            found.append((now["t"], 2))
    return found


def turns(records):
    """[(time, 'save' or 'return')]: the ball turning back near Player 2's bar
    (right) or the host's bar (left), and staying turned for 3 frames."""
    found = []
    xs = [r["ball"][0] for r in records]
    for i in range(2, len(records) - 3):
        before = xs[i - 1] - xs[i - 2]
        after = [xs[j] - xs[j - 1] for j in range(i, i + 3)]
        if before > 0 and all(d < 0 for d in after) and xs[i - 1] > WIDTH - 130:
            found.append((records[i]["t"], "save"))
        elif before < 0 and all(d > 0 for d in after) and xs[i - 1] < 130:
            found.append((records[i]["t"], "return"))
    return found


def phantom_saves(peer_turns, host_points):
    """Host points that came within 3 s of a save Player 2 saw, with no
    return by the host shown in between."""
    count = 0
    for when, player in host_points:
        if player != 1:
            continue
        earlier = [turn for turn in peer_turns if turn[0] < when]
        if earlier and earlier[-1][1] == "save" and when - earlier[-1][0] < 3.0:
            count += 1
    return count


def stalls(records, first, last):
    count = 0
    for i in range(max(first, 1), last):
        still = records[i]["ball"] == records[i - 1]["ball"]
        if still and in_court(records[i]["ball"][0]):
            moved_before = any(records[j]["ball"] != records[j - 1]["ball"]
                               for j in range(max(1, i - 10), i))
            moved_after = any(records[j]["ball"] != records[j - 1]["ball"]
                              for j in range(i + 1, min(len(records), i + 11)))
            if moved_before and moved_after:
                count += 1
    return count


def jumps(records, first, last, limits=(10, 30)):
    """How many frames moved more than each limit away from the last step."""
    counts = [0] * len(limits)
    for i in range(max(first, 2), last + 1):
        a, b, c = (records[j]["ball"] for j in (i - 2, i - 1, i))
        if not all(in_court(p[0]) for p in (a, b, c)):
            continue
        if any(records[j]["score"] != records[i - 2]["score"] for j in (i - 1, i)):
            continue            # a point: the ball is served again
        if c[0] == WIDTH / 2 or b[0] == WIDTH / 2:
            continue            # served from the centre line
        step_x, step_y = b[0] - a[0], b[1] - a[1]
        now_x, now_y = c[0] - b[0], c[1] - b[1]
        if step_x == step_y == 0:
            continue            # starting from rest (a stall is counted as a stall)
        if min(p[1] for p in (a, b, c)) < NEAR_WALL or max(p[1] for p in (a, b, c)) > HEIGHT - NEAR_WALL:
            off_y = abs(abs(now_y) - abs(step_y))
        else:
            off_y = abs(now_y - step_y)
        if min(p[0] for p in (a, b, c)) < NEAR_BAR or max(p[0] for p in (a, b, c)) > WIDTH - NEAR_BAR:
            off_x = abs(abs(now_x) - abs(step_x))
        else:
            off_x = abs(now_x - step_x)
        off = math.hypot(off_x, off_y)
        for k, limit in enumerate(limits):
            if off > limit:
                counts[k] += 1
    return counts


FRAME_S = 1 / 60


def shown_at(records, times, t):
    """(x, y, score) of the ball a screen shows at wall-clock time t, or None.

    A screen shows each frame from the moment it is drawn until the next
    one is; a moving ball is taken to move on continuously to the next
    frame's place during the last frame period before that frame is drawn.
    (For frames drawn on time that is plain interpolation between the two;
    while a busy game draws nothing, the ball stands still where it was.)
    Between frames with a point or a serve in between it is None."""
    j = bisect.bisect_right(times, t) - 1
    if j < 0 or j + 1 >= len(records):
        return None
    before, after = records[j], records[j + 1]
    if before["score"] != after["score"]:
        return None
    (x0, y0), (x1, y1) = before["ball"], after["ball"]
    if math.hypot(x1 - x0, y1 - y0) > SERVE_JUMP:
        return None
    span = min(times[j + 1] - times[j], FRAME_S)
    share = max(0.0, 1 - (times[j + 1] - t) / span) if span > 0 else 1.0
    return x0 + (x1 - x0) * share, y0 + (y1 - y0) * share, before["score"]


def distances(peer, host, first, last):
    """The ball on Player 2's screen against the host's screen at the same
    wall-clock moment: at every frame either screen draws between Player
    2's frames first and last, both balls in the court, the same score."""
    start_t, end_t = peer[first]["t"], peer[last]["t"]
    peer_times = [r["t"] for r in peer]
    host_times = [r["t"] for r in host]
    moments = sorted(t for t in peer_times[first:last + 1] + host_times
                     if start_t <= t <= end_t)
    found = []
    for t in moments:
        on_peer, on_host = shown_at(peer, peer_times, t), shown_at(host, host_times, t)
        if on_peer is None or on_host is None or on_peer[2] != on_host[2]:
            continue
        if not (in_court(on_peer[0]) and in_court(on_host[0])):
            continue
        found.append(math.hypot(on_peer[0] - on_host[0], on_peer[1] - on_host[1]))
    return found


def bar_jumps(records, bar, first, last, limit=21):
    return sum(1 for i in range(max(first, 1), last + 1)
               if abs(records[i][bar] - records[i - 1][bar]) >= limit)


def figures(run_dir):
    meta = {}
    if os.path.exists(os.path.join(run_dir, "meta.json")):
        with open(os.path.join(run_dir, "meta.json")) as f:
            meta = json.load(f)
    host = load(os.path.join(run_dir, "host.jsonl"))
    peer = [r for r in load(os.path.join(run_dir, "peer.jsonl")) if r.get("me") == "Player2"]
    first, last = play_window(peer)
    if last <= first:
        raise ValueError("%s: Player 2's ball never moved" % run_dir)
    start_t, end_t = peer[first]["t"], peer[last]["t"]
    minutes = (end_t - start_t) / 60
    host_first = next(i for i, r in enumerate(host) if r["t"] >= start_t)
    host_last = max(i for i, r in enumerate(host) if r["t"] <= end_t)
    won = points(host, start_t, end_t)
    peer_jumps = jumps(peer, first, last)
    host_jumps = jumps(host, host_first, host_last)
    gaps = distances(peer, host, first, last)
    frame_ms = [(peer[i]["t"] - peer[i - 1]["t"]) * 1000 for i in range(first + 1, last + 1)]
    host_ms = [(host[i]["t"] - host[i - 1]["t"]) * 1000 for i in range(host_first + 1, host_last + 1)]
    pings = [r["ping"] for r in peer[first:last + 1] if r.get("ping") is not None]
    return {
        "setting": meta.get("setting", os.path.basename(run_dir)),
        "minutes": minutes,
        "host_points": sum(1 for _, p in won if p == 1),
        "peer_points": sum(1 for _, p in won if p == 2),
        "phantom_saves": phantom_saves(turns(peer[first:last + 1]), won),
        "stalls_per_min": stalls(peer, first, last) / minutes,
        "jumps10_per_min": peer_jumps[0] / minutes,
        "jumps30_per_min": peer_jumps[1] / minutes,
        "host_jumps10_per_min": host_jumps[0] / minutes,
        "host_jumps30_per_min": host_jumps[1] / minutes,
        "gap_p50": percentile(gaps, 0.5),
        "gap_p95": percentile(gaps, 0.95),
        "bar_jumps_per_min": bar_jumps(peer, "bar1", first, last) / minutes,
        "ping_ms": statistics.median(pings) if pings else None,
        "frame_ms_p50": percentile(frame_ms, 0.5),
        "frame_ms_p95": percentile(frame_ms, 0.95),
        "host_frame_ms_p95": percentile(host_ms, 0.95),
        "load": meta.get("load"),
    }


HEADER = ("| one-way delay | minutes | points host : P2 | phantom saves | stalls/min "
          "| jumps >10 px/min (host) | jumps >30 px/min (host) | P2 vs host p50 / p95 "
          "| bar jumps/min | ping | frame ms p50 / p95 | load avg |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


def row(f):
    ping = "-" if f["ping_ms"] is None else "%.0f ms" % f["ping_ms"]
    load = "-" if not f["load"] else "%.1f-%.1f" % (min(f["load"]), max(f["load"]))
    return ("| %s | %.1f | %d : %d | %d | %.1f | %.1f (%.1f) | %.1f (%.1f) | %.1f / %.1f px "
            "| %.1f | %s | %.1f / %.1f | %s |" % (
                f["setting"], f["minutes"], f["host_points"], f["peer_points"],
                f["phantom_saves"], f["stalls_per_min"], f["jumps10_per_min"],
                f["host_jumps10_per_min"], f["jumps30_per_min"], f["host_jumps30_per_min"],
                f["gap_p50"], f["gap_p95"], f["bar_jumps_per_min"], ping,
                f["frame_ms_p50"], f["frame_ms_p95"], load))


def main(argv):
    if not argv:
        sys.exit(__doc__)
    print(HEADER)
    for run_dir in argv:
        print(row(figures(run_dir)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
