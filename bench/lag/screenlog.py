"""Run a Pong game and write down what its screen shows, every frame.

    python bench/lag/screenlog.py RECORD.jsonl GAME.py [the game's options...]

It starts GAME.py just as "python GAME.py ..." would, but every time the
game draws a frame it first writes one JSON line to RECORD.jsonl:

    {"t": wall-clock time (s), "frame": frames drawn so far, "me": "Player1",
     "ball": [x, y], "bar1": y, "bar2": y, "score": [b1, b2], "ping": ms or null}

The picture comes from the game's screen_state() if it has one (pong_net.py
does: it draws the ball and the other player's bar smoothed); otherwise from
its module-level ball, bar1, bar2 and score, which is what the textbook's
game and earlier versions draw. So the same recorder measures old and new.
"""
import json
import os
import sys
import time
import types


def snapshot(game):
    """What the game's screen shows now, as a dict."""
    if callable(getattr(game, "screen_state", None)):
        shown = dict(game.screen_state())
    else:
        shown = {"ball": list(game.ball.center), "bar1": game.bar1.y, "bar2": game.bar2.y,
                 "score": [game.score.b1, game.score.b2], "ping": None}
    shown["me"] = getattr(game, "me", None)
    return shown


def record(record_path, game_path, game_args):
    # The game becomes __main__ before pgzrun is imported: importing pgzrun
    # prepares whatever __main__ is as the Pygame Zero game.
    game = types.ModuleType("__main__")
    game.__file__ = os.path.abspath(game_path)
    sys.modules["__main__"] = game
    sys.argv = [game_path] + list(game_args)
    sys.path.insert(0, os.path.dirname(game.__file__))
    import pgzrun
    # Pygame Zero's builtins (screen, Actor, ...) came in with a __name__ of
    # their own; the game must still see itself as the main program.
    game.__name__, game.__file__ = "__main__", os.path.abspath(game_path)
    start_game = pgzrun.go
    out = open(record_path, "w", buffering=1)
    frames = [0]

    def go():
        draw = game.draw

        def draw_and_record():
            frames[0] += 1
            line = snapshot(game)
            line["t"] = round(time.time(), 4)
            line["frame"] = frames[0]
            out.write(json.dumps(line) + "\n")
            draw()

        game.draw = draw_and_record
        start_game()

    pgzrun.go = go
    with open(game_path, encoding="utf-8") as source:
        code = compile(source.read(), game.__file__, "exec")
    try:
        exec(code, game.__dict__)
    finally:
        out.close()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    record(sys.argv[1], sys.argv[2], sys.argv[3:])
