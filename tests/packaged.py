"""The game and the relay packaged the way the Mu editor's Package button does it,
built once per content and kept in the user's cache folder
(~/.cache/nethelper-tests/packaged/<hash>/, or $NETHELPER_TEST_CACHE).

Mu's Package (roboticsware/mu, mu/modes/pygamezero.py) formats the file with
Black, puts "import pgzrun" above its first line and "pgzrun.go()" below its
last, saves that, runs

    python -m PyInstaller --collect-all pgzero --onefile --clean --name NAME
        --add-data images/*:images --add-data sounds/*:sounds NAME.py

in the file's folder, and afterwards deletes every "import pgzrun" followed by a
line break and every "pgzrun.go()" at the start of a line (after_package()).
Black is left out here: it only changes how the code is laid out.

A build takes 30-80 s (two cores, depending on the load), so the tests start it
as soon as they are collected (conftest.py: pytest_collection_modifyitems), in
a process of its own that the other tests run beside, and reuse it while the
files it packages (and Python, PyInstaller, pygame and Pygame Zero) stay the
same: outside the checkout, so that a fresh clone of unchanged files reuses it
too. Run on its own to build:

    python tests/packaged.py
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("NETHELPER_TEST_CACHE") or
             Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") /
             "nethelper-tests") / "packaged"
UNUSED_FOR = 3 * 24 * 3600          # s: an older build nobody asked for since is removed
PROGRAMS = ("pong_net", "nethelper")          # each packaged on its own, as Mu would
SOURCES = ["pong_net.py", "pong_oop.py", "pong_text.py", "pong_netcode.py", "pong_lobby.py",
           "nethelper.py"]
ASSETS = ["images", "sounds"]
BUILD_TIMEOUT = 900


def pyinstaller_command(name):
    return [sys.executable, "-m", "PyInstaller", "--collect-all", "pgzero", "--onefile",
            "--clean", "--name", name, "--add-data", "images/*:images", "--add-data",
            "sounds/*:sounds", name + ".py"]


def wrapped(source):
    """What Package saves and PyInstaller reads."""
    return "import pgzrun\n" + source + "\npgzrun.go()"


def after_package(text):
    """What Package leaves in the editor (and on disk) when it is done."""
    text = re.sub(r"import pgzrun\n", "", text, flags=re.DOTALL)
    return re.sub(r"\npgzrun\.go\(\)", "", text, flags=re.DOTALL)


def content_key():
    """A hash of everything that goes into the programs."""
    digest = hashlib.sha256()
    files = [ROOT / name for name in SOURCES]
    for folder in ASSETS:
        files += sorted((ROOT / folder).iterdir())
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    import PyInstaller
    import pgzero
    import pygame
    digest.update(" ".join([sys.platform, sys.version, PyInstaller.__version__, pygame.version.ver,
                            pgzero.__version__] + pyinstaller_command("x")[2:]).encode())
    return digest.hexdigest()[:16]


def folder():
    return CACHE / content_key()


def program(name):
    return folder() / "src" / "dist" / name


def available():
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        return False
    return True


def start():
    """Start building in the background unless it is built or being built.
    Any process may call it: the first to create the folder builds."""
    if not available():
        return
    target = folder()
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        target.mkdir()
    except FileExistsError:
        return
    for old in CACHE.iterdir():             # builds of other contents, unused for days
        result = old / "result.json"
        if old != target and result.exists() and time.time() - result.stat().st_mtime > UNUSED_FOR:
            shutil.rmtree(old, ignore_errors=True)
    log = open(target / "build.log", "w")
    # A session of its own: the build goes on when the test process that
    # started it is done with its share of the tests.
    builder = subprocess.Popen([sys.executable, __file__, str(target)], stdout=log,
                               stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    (target / "pid").write_text(str(builder.pid))


def wait(timeout=BUILD_TIMEOUT):
    """Wait for the build; returns its result: {"ok", "seconds", ...}."""
    start()
    target = folder()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (target / "result.json").exists():
            os.utime(target / "result.json")       # (in use: see start())
            return json.loads((target / "result.json").read_text())
        pid = (target / "pid").read_text() if (target / "pid").exists() else ""
        if pid and not Path("/proc", pid).exists():
            time.sleep(1)               # (it may have written the result meanwhile)
            if not (target / "result.json").exists():
                shutil.rmtree(target, ignore_errors=True)    # it died: build again
                start()
        time.sleep(0.2)
    raise TimeoutError("the packaged programs were not built in %d s" % timeout)


def build(target):
    """Copy the game into target/src as Mu's folder, wrap and package each program."""
    src = Path(target) / "src"
    src.mkdir()
    for name in SOURCES:
        shutil.copy(ROOT / name, src)
    for name in ASSETS:
        shutil.copytree(ROOT / name, src / name)
    env = dict(os.environ, PYINSTALLER_CONFIG_DIR=str(Path(target) / "pyinstaller-cache"))
    result = {"ok": True, "seconds": {}, "load_before": os.getloadavg()[0]}
    for name in PROGRAMS:
        path = src / (name + ".py")
        path.write_text(wrapped(path.read_text(encoding="utf-8")), encoding="utf-8")
        started = time.monotonic()
        done = subprocess.run(pyinstaller_command(name), cwd=src, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        result["seconds"][name] = round(time.monotonic() - started, 1)
        path.write_text(after_package(path.read_text(encoding="utf-8")), encoding="utf-8")
        if done.returncode != 0:
            result["ok"] = False
            result["error"] = done.stdout[-3000:]
            break
    result["load_after"] = os.getloadavg()[0]
    shutil.rmtree(src / "build", ignore_errors=True)
    shutil.rmtree(Path(target) / "pyinstaller-cache", ignore_errors=True)
    (Path(target) / "result.json.part").write_text(json.dumps(result))
    os.replace(Path(target) / "result.json.part", Path(target) / "result.json")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        try:
            build(sys.argv[1])
        except Exception as exc:        # say why, rather than leave the tests waiting
            (Path(sys.argv[1]) / "result.json").write_text(json.dumps(
                {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}))
            raise
    else:
        print(json.dumps(wait()), folder())
