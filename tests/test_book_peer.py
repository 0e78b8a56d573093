"""Our pong_net.py against the textbook's way of playing (tests/bookpeer.py),
in both roles, through a real relay: neither game crashes, each screen draws
the other's bar where it is, both show the same ball, and every point is a
ball that really passed a bar."""
import json
import signal
import sys

import pytest

from conftest import HOST, ROOT
from test_pong_net import Game, Running

sys.path.insert(0, str(ROOT / "bench" / "lag"))
import report  # noqa: E402  (bench/lag/report.py: the same-moment ball comparison)

BOOK_PEER = str(ROOT / "tests" / "bookpeer.py")
BAR_H = 100
BAR1_FACE, BAR2_FACE = 35, 765      # the front of each bar: 20 + 15, and 800 - 20 - 15


class BookPeer(Running):
    """tests/bookpeer.py as a process, with the same line collecting as Game."""

    def __init__(self, port, frames, record):
        super().__init__([sys.executable, "-u", BOOK_PEER, HOST, str(port), str(frames),
                          str(record)])


def load(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def same_moment(records, t):
    """The record shown at wall-clock time t (the last one drawn before it)."""
    found = None
    for record in records:
        if record["t"] > t:
            break
        found = record
    return found


def bar_gaps(watcher, owner, bar):
    """How far `watcher` draws `bar` from where `owner` has it: (at the same
    moment, from the nearest of the places it had in the last 0.1 s: a
    message takes a moment to arrive)."""
    now_gaps, late_gaps = [], []
    for i, now in enumerate(owner):
        seen = same_moment(watcher, now["t"])
        if seen is None or now["t"] - seen["t"] > 0.05:
            continue
        now_gaps.append(abs(seen[bar] - now[bar]))
        recent = [r[bar] for r in owner[max(0, i - 30):i + 1] if r["t"] >= now["t"] - 0.1]
        late_gaps.append(min(abs(seen[bar] - y) for y in recent))
    return now_gaps, late_gaps


def unfair_points(records, player):
    """Points for `player` given although, on the screen of the player who
    lost it (records: that screen), the ball crossed the front of the
    loser's bar well inside the bar. Returns [(time, px inside)]."""
    bar, face, sign = ("bar2", BAR2_FACE, 1) if player == 1 else ("bar1", BAR1_FACE, -1)
    crossings = []
    for before, now in zip(records, records[1:]):
        x0, x1 = before["ball"][0], now["ball"][0]
        if sign * (x0 - face) < 0 <= sign * (x1 - face) and abs(x1 - x0) < 40:
            y, top = now["ball"][1], now[bar]
            crossings.append((now["t"], min(y - top, top + BAR_H - y)))
    unfair = []
    for before, now in zip(records, records[1:]):
        if now["score"][player - 1] == before["score"][player - 1] + 1:
            last = [c for c in crossings if now["t"] - 2.0 < c[0] <= now["t"]]
            # A hit needs the ball to overlap the bar (inside > -radius); a
            # point with the ball 20 px inside (more than two frames of a
            # bar's movement past the edge) was not a miss.
            if last and last[-1][1] > 20:
                unfair.append(last[-1])
    return unfair


def points(records):
    return max(sum(record["score"]) for record in records)


@pytest.mark.parametrize("book_role", ["Player2", "Player1"])
def test_our_game_and_the_textbooks_play_each_other(relay_process, tmp_path, book_role):
    port = relay_process.port
    ours_path, book_path = tmp_path / "ours.jsonl", tmp_path / "book.jsonl"
    ours = book = None
    try:
        # Ours plays until the textbook's game has played its 12 s (a textbook
        # Player 2 quits, with an error, if its host goes first), then gets Ctrl+C.
        if book_role == "Player2":
            ours = Game(port, "--bot", frames=3000, record=ours_path)
            assert ours.wait_for_line("Connected as host (Player 1)"), ours.output()
            book = BookPeer(port, 720, book_path)
            assert book.wait_for_line("Connected as peer (Player 2)"), book.output()
        else:
            book = BookPeer(port, 720, book_path)
            assert book.wait_for_line("Connected as host (Player 1)"), book.output()
            ours = Game(port, "--bot", frames=3000, record=ours_path)
            assert ours.wait_for_line("Connected as peer (Player 2)"), ours.output()
        assert book.finish(timeout=60) == 0, book.output()
        ours.process.send_signal(signal.SIGINT)
        assert ours.finish(timeout=20) == 0, ours.output()
    finally:
        for game in (ours, book):
            if game:
                game.kill()
    for game in (ours, book):
        assert "Traceback" not in game.output(), game.output()
    assert "Ignored bad messages" not in ours.output(), ours.output()

    mine = [r for r in load(ours_path) if r["me"] is not None]
    theirs = load(book_path)
    host, peer = (mine, theirs) if book_role == "Player2" else (theirs, mine)
    their_bar, my_bar = ("bar2", "bar1") if book_role == "Player2" else ("bar1", "bar2")

    # Each screen draws the other's bar where it is: mostly exactly where it
    # was a moment ago, and about one frame of its movement (7 px) behind.
    # (A busy machine makes a game skip frames: the other bar then glides
    # through places it never had, hence the 90th percentiles; and a message
    # may wait a few frames for a busy game: at the same moment, 4 frames of
    # movement behind at the 90th.)
    for watcher, owner, bar in ((mine, theirs, their_bar), (theirs, mine, my_bar)):
        now_gaps, late_gaps = bar_gaps(watcher, owner, bar)
        assert len(now_gaps) > 300, (bar, len(now_gaps))
        # (a textbook bar may stick 2 px out of the court: drawn at the edge)
        assert report.percentile(late_gaps, 0.5) == 0, (bar, sorted(late_gaps)[::20])
        assert report.percentile(late_gaps, 0.9) <= 7, (bar, sorted(late_gaps)[-40:])
        assert report.percentile(now_gaps, 0.5) <= 7, (bar, sorted(now_gaps)[::20])
        assert report.percentile(now_gaps, 0.9) <= 28, (bar, sorted(now_gaps)[-40:])

    # The same ball on both screens, at the same wall-clock moments.
    first, last = report.play_window(peer)
    gaps = report.distances(peer, host, first, last)
    assert len(gaps) > 300, len(gaps)
    assert report.percentile(gaps, 0.5) <= 6, sorted(gaps)[::20]
    assert report.percentile(gaps, 0.95) <= 15, sorted(gaps)[-40:]

    # Points only where the ball really passed a bar, judged on the screen
    # of the player who lost the point; and there were some.
    assert points(host) >= 1, host[-1]
    assert {tuple(r["score"]) for r in peer} <= {tuple(r["score"]) for r in host}
    assert unfair_points(peer, 1) == [] and unfair_points(host, 2) == []
