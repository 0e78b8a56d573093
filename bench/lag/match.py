"""Network Pong over a slow network, measured: both players --bot, Player 2
(or both players) behind a delay proxy, both screens recorded every frame.

    python bench/lag/match.py --seconds 60 --out /tmp/lag 0 10:3 30:10 60:20 100:30 30:10:both

Each setting is DELAY[:JITTER[:both]] in ms, one way. For each it starts a
relay (python nethelper.py -g pong_game -p 0 -i 127.0.0.1), a DelayProxy in
front of it for Player 2 (and one for the host with ":both"), the host
(pong_net.py --bot) and then Player 2 (pong_net.py --bot, stopped after N
frames), each run by pong_harness.py --record. When Player 2 has played its frames the host is stopped.
The records go to OUT/<setting>/host.jsonl and peer.jsonl, with meta.json
(setting, load average, commands), and the table of report.py is printed.

--game runs another pong_net.py (e.g. an older one, to compare). Only
127.0.0.1 is used. A match runs --seconds of Player 2's frames at 60 frames a
second: longer if the machine is too busy to keep up (meta.json says).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from proxy import HOST, DelayProxy  # noqa: E402
import report  # noqa: E402

GAME = os.path.join(ROOT, "pong_net.py")
HARNESS = os.path.join(ROOT, "pong_harness.py")
NETHELPER = os.path.join(ROOT, "nethelper.py")


def parse_setting(text):
    """'30:10:both' -> (30.0, 10.0, True)."""
    parts = text.split(":")
    both = parts[-1] == "both"
    if both:
        parts = parts[:-1]
    delay = float(parts[0])
    jitter = float(parts[1]) if len(parts) > 1 else 0.0
    return delay, jitter, both


def setting_name(delay, jitter, both):
    name = "%g" % delay if not jitter else "%g±%g ms" % (delay, jitter)
    if delay == 0 and not jitter:
        name = "0"
    return name + (" (both)" if both else "")


def game_env():
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_relay():
    process = subprocess.Popen([sys.executable, "-u", NETHELPER, "-g", "pong_game", "-p", "0",
                                "-i", HOST, "-q"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.strip().startswith("Port:"):
            return process, int(line.split()[-1])
    process.kill()
    raise RuntimeError("the relay did not start")


def stop(process, timeout=10, how=signal.SIGTERM):
    if process.poll() is None:
        process.send_signal(how)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_text(path, text, process, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path) as f:
            if text in f.read():
                return True
        if process.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def play_match(out_dir, delay, jitter, both=False, seconds=60, game=GAME, seed=1):
    """One match; returns the run directory (with host.jsonl, peer.jsonl, meta.json)."""
    os.makedirs(out_dir, exist_ok=True)
    frames = int(seconds * 60)
    load = [os.getloadavg()[0]]
    relay, relay_port = start_relay()
    peer_proxy = DelayProxy(relay_port, delay, jitter, seed).start()
    host_proxy = DelayProxy(relay_port, delay, jitter, seed + 1).start() if both else None
    host_port = host_proxy.port if host_proxy else relay_port
    host_cmd = [sys.executable, "-u", HARNESS, "--record", os.path.join(out_dir, "host.jsonl"),
                game, HOST, str(host_port), "--bot"]
    peer_cmd = [sys.executable, "-u", HARNESS, "--record", os.path.join(out_dir, "peer.jsonl"),
                "--frames", str(frames), game, HOST, str(peer_proxy.port), "--bot"]
    host_out = os.path.join(out_dir, "host.out")
    peer_out = os.path.join(out_dir, "peer.out")
    started = time.time()
    host = peer = None
    try:
        with open(host_out, "w") as out:
            host = subprocess.Popen(host_cmd, stdout=out, stderr=subprocess.STDOUT,
                                    env=game_env(), cwd=ROOT)
        if not wait_for_text(host_out, "Connected as host", host):
            raise RuntimeError("the host did not join: see " + host_out)
        with open(peer_out, "w") as out:
            peer = subprocess.Popen(peer_cmd, stdout=out, stderr=subprocess.STDOUT,
                                    env=game_env(), cwd=ROOT)
        deadline = time.monotonic() + seconds * 3 + 30
        while peer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            if int(time.time() - started) % 10 == 0:
                load.append(os.getloadavg()[0])
        load.append(os.getloadavg()[0])
    finally:
        for process in (peer, host):
            if process is not None:
                stop(process, how=signal.SIGINT)    # like Ctrl+C: the game prints its summary
        peer_proxy.stop()
        if host_proxy:
            host_proxy.stop()
        stop(relay)
    meta = {"setting": setting_name(delay, jitter, both), "delay_ms": delay, "jitter_ms": jitter,
            "both": both, "seconds": seconds, "wall_seconds": round(time.time() - started, 1),
            "load": load, "cpus": os.cpu_count(), "game": game,
            "host_command": host_cmd, "peer_command": peer_cmd}
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return out_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="+", help="DELAY[:JITTER[:both]] in ms, one way")
    parser.add_argument("--seconds", type=float, default=60, help="length of each match")
    parser.add_argument("--out", default="lag-runs", help="where the records go")
    parser.add_argument("--game", default=GAME, help="the pong_net.py to play")
    parser.add_argument("--seed", type=int, default=1, help="the delays' random seed")
    options = parser.parse_args(argv)
    run_dirs = []
    for text in options.settings:
        delay, jitter, both = parse_setting(text)
        run_dir = os.path.join(options.out, text.replace(":", "_"))
        print("playing %s for %g s ..." % (setting_name(delay, jitter, both), options.seconds),
              file=sys.stderr, flush=True)
        run_dirs.append(play_match(run_dir, delay, jitter, both, options.seconds,
                                   os.path.abspath(options.game), options.seed))
    print(report.HEADER)
    for run_dir in run_dirs:
        print(report.row(report.figures(run_dir)), flush=True)


if __name__ == "__main__":
    main()
