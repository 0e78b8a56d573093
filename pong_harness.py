"""Runs a Pong game under a script, for the tests, bench/lag and the README's
pictures; nobody needs it to play.

    python pong_harness.py [--frames N] [--screenshot PNG] [--record JSONL] GAME.py [OPTIONS]

starts GAME.py (pong_net.py, or pong_oop.py) with the game's own OPTIONS,
just as "python GAME.py OPTIONS" would, and:

    --frames N        stops it after N frames drawn: prints how the network did
                      (summary()) and exits, with status 1 if the relay refused
                      the game; Ctrl+C (SIGINT) prints the summary too
    --screenshot PNG  with --frames: saves the last frame as a PNG picture
    --record JSONL    writes what the screen shows, one JSON line per frame
                      drawn, just before the game draws it: snapshot()
    --keys            reads key names (Pygame Zero's: DOWN, RETURN, K_2, ...)
                      from standard input, one a line, and presses each one
                      on the next frame, through the game's on_key_down()

What each screen shows, for a harness of your own: import the game module,
and call snapshot(game) whenever it has updated. For pong_net.py that is its
phase (which screen: pong_net.SCREENS), the message on it, and where the
ball and bars are drawn (pong_net.shown_positions()); for a game without
those its module-level ball, bars and score (pong_oop.py, the textbook's
game), or its screen_state() (pong_net.py before issue 15), so that bench/lag
can compare it with older versions.
"""
import argparse
import importlib
import json
import math
import os
import statistics
import sys
import time


def snapshot(game):
    """What the game's screen shows now, as a dict that json can write."""
    match = getattr(game, "match", None)
    if match is None and callable(getattr(game, "screen_state", None)):
        return dict(game.screen_state(), me=game.me)        # pong_net.py before issue 15
    if match is None:
        return {"ball": list(game.ball.center), "bar1": game.bar1.y, "bar2": game.bar2.y,
                "score": [game.score.b1, game.score.b2], "ping": None,
                "me": getattr(game, "me", None)}
    (x, y), bar1, bar2 = game.shown_positions()
    message = game.screen_message()
    return {"phase": match.phase, "message": list(message) if message else None,
            "ball": [round(x, 2), round(y, 2)], "bar1": bar1, "bar2": bar2,
            "score": [game.score.b1, game.score.b2], "ping": match.ping.ms(), "me": match.me,
            "game_frame": match.host_ball.frame if match.is_host else match.prediction.frame,
            "lead": round(match.shown_lead, 2),
            "choices": match.lobby.rows() if match.phase == "choosing" else None}


class Drift:
    """How far Player 2's own ball was from the host's, each time a ball of
    the host's came in: measured around BallPrediction.hear()."""

    def __init__(self, prediction_class):
        self.distances = []
        hear = prediction_class.hear

        def measured_hear(prediction, state, answer_due, moving=True):
            shown = prediction.shown_at.get(state.frame)
            heard = hear(prediction, state, answer_due, moving)
            if heard is not None and moving and shown is not None:
                self.distances.append(math.dist(shown, state.center))
            return heard
        prediction_class.hear = measured_hear

    def line(self):
        if not self.distances:
            return None
        return "Ball drift: %d corrections, median %.1f px, max %.1f px" % (
            len(self.distances), statistics.median(self.distances), max(self.distances))


def summary(game, frames, drift=None):
    """How the network did, as lines to print when the game stops."""
    match = getattr(game, "match", None)
    if match is None:
        return ["Stopped after %d frames, score %d-%d" % (frames, game.score.b1, game.score.b2)]
    lines = [drift.line()] if drift and drift.line() else []
    if match.ping.samples:
        lines.append("Ping: median %.0f ms, worst %.0f ms" % (match.ping.ms(),
                                                               match.ping.worst_ms()))
    for heading, counts in (("Ignored bad messages", match.bad_messages),
                            ("Refused hits", match.refused_hits)):
        if counts:
            lines.append(heading + ": " + ", ".join("%s %d" % item
                                                    for item in sorted(counts.items())))
    lines.append("Stopped after %d frames as %s, score %d-%d" % (
        frames, match.me, game.score.b1, game.score.b2))
    return lines


def refused(game):
    match = getattr(game, "match", None)
    return match is not None and match.phase in game.REFUSED


def load(path, args):
    """Import the game at path, with its options read from args (its own
    "if __name__" block does not run: the game is imported, not started)."""
    folder, name = os.path.split(os.path.abspath(path))
    sys.path.insert(0, folder)
    sys.argv = [path] + list(args)
    game = importlib.import_module(os.path.splitext(name)[0])
    if hasattr(game, "read_options"):       # (the textbook's game has no options)
        game.use_options(game.read_options(args))
    return game


def keys_from_stdin():
    """A queue of the key names read from standard input, one a line."""
    import queue
    import threading
    typed = queue.Queue()

    def read():
        for line in sys.stdin:
            typed.put(line.strip())
    threading.Thread(target=read, daemon=True).start()
    return typed


def run(game, frames=None, screenshot=None, record=None, drift=None, typed=None):
    """Play the game as Pygame Zero would, with the harness around draw()."""
    from pgzero.constants import keys
    from pgzero.runner import prepare_mod, run_mod
    prepare_mod(game)
    draw = game.draw
    out = open(record, "w", buffering=1) if record else None
    drawn = [0]

    def draw_and_watch():
        drawn[0] += 1
        if typed is not None and not typed.empty():
            game.on_key_down(getattr(keys, typed.get()))
        if out:
            line = snapshot(game)
            line["t"], line["frame"] = round(time.time(), 4), drawn[0]
            out.write(json.dumps(line) + "\n")
        draw()
        if frames is not None and drawn[0] >= frames:
            if screenshot:
                import pygame
                pygame.image.save(game.screen.surface, screenshot)
            stop(game, drawn[0], drift, 1 if refused(game) else 0)

    game.draw = draw_and_watch
    try:
        run_mod(game)
    except KeyboardInterrupt:
        pass
    stop(game, drawn[0], drift, 0)


def stop(game, frames, drift, status):
    if not status:
        for line in summary(game, frames, drift):
            print(line, flush=True)
    if getattr(game, "net", None) is not None:
        game.net.disconnect()
    sys.exit(status)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run a Pong game under a script.")
    parser.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="with --frames: save the last frame to PNG")
    parser.add_argument("--record", metavar="JSONL",
                        help="write what the screen shows every frame to JSONL")
    parser.add_argument("--keys", action="store_true",
                        help="press the keys named on standard input, one a line")
    parser.add_argument("game", help="the game's file, e.g. pong_net.py")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="the game's own options")
    options = parser.parse_args(argv)
    game = load(options.game, options.options)
    prediction_class = (getattr(game, "BallPrediction", None)     # (older games had it)
                        or getattr(sys.modules.get("pong_netcode"), "BallPrediction", None))
    drift = Drift(prediction_class) if prediction_class else None
    run(game, options.frames, options.screenshot, options.record, drift,
        keys_from_stdin() if options.keys else None)


if __name__ == "__main__":
    main()
