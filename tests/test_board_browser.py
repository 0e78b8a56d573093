"""The teacher's board in a real headless Chromium (the distribution's
chromium and chromedriver, driven by selenium): the page shows the groups,
a join appears within 2 s, a kick works with the key and not without it,
and the live court of a watched Pong group moves. Skipped where Chromium,
its driver or selenium is missing."""
import shutil
import tempfile
import threading
import time

import pytest

from conftest import HOST, data, raw_join, read_until
from nethelper import SYSM, Relay

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs chromium and chromedriver")


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    profile = tempfile.mkdtemp(prefix="board-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--user-data-dir=" + profile, "--window-size=1280,900"):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def board_relay():
    with Relay(["pong1", "pong2", "pong3"], host=HOST, port=0, board=True,
               board_port=0) as relay:
        yield relay


def open_board(browser, relay, key=None):
    browser.get("http://{}:{}/?key={}".format(HOST, relay.board.port, key or relay.board.key))


def until(browser, condition, timeout):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(browser, timeout, poll_frequency=0.05).until(condition)


def card_text(browser, group, part=""):
    """The text of a group's card (or of one part of it, a CSS selector), None if absent."""
    return browser.execute_script(
        "const el = document.querySelector('article.group[data-group=\"' + arguments[0] +"
        " '\"] ' + arguments[1]);"
        "return el ? el.innerText : null;", group, part)


def test_the_page_shows_every_group_and_a_join_within_2_s(browser, board_relay):
    open_board(browser, board_relay)
    until(browser, lambda b: card_text(b, "pong3") is not None, 5)
    groups = browser.execute_script(
        "return [...document.querySelectorAll('article.group')].map(e => e.dataset.group)")
    assert groups == ["pong1", "pong2", "pong3"]
    assert "Nobody here yet" in card_text(browser, "pong2")
    time.sleep(0.3)                       # the page is polling: now a player joins
    joined_at = time.monotonic()
    sock, _, _ = raw_join(board_relay.port, "Alice", "pong2")
    until(browser, lambda b: "Alice" in card_text(b, "pong2"), 2.0)
    assert time.monotonic() - joined_at < 2.0
    assert "joined" in browser.find_element("id", "events").text
    sock.close()


def test_a_kick_works_with_the_key_and_is_refused_without_it(browser, board_relay):
    sock, _, _ = raw_join(board_relay.port, "Bob", "pong1")
    # Without the key (or with a wrong one) the page says so and cannot kick.
    open_board(browser, board_relay, key="not-the-key")
    until(browser, lambda b: "needs its key" in b.find_element("tag name", "body").text, 5)
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/kick', {method: 'POST', headers: {'Content-Type': 'application/json'},"
        " body: JSON.stringify({group: 'pong1', name: 'Bob'})}).then(r => done(r.status));")
    assert status == 403
    assert board_relay.members("pong1") == ["Bob"]

    open_board(browser, board_relay)
    until(browser, lambda b: "Bob" in (card_text(b, "pong1") or ""), 5)
    reason = browser.find_element("css selector", 'article[data-group="pong1"] input.text')
    reason.send_keys("Please play fair")
    browser.find_element("css selector", 'article[data-group="pong1"] button.kick').click()
    goodbye = read_until(sock, lambda m: m.type == SYSM)
    assert goodbye.body["type"] == 3 and goodbye.body["msg"] == "kicked"
    assert "Please play fair" in goodbye.body["data"]
    until(browser, lambda b: "Bob" not in card_text(b, "pong1", ".players"), 3)
    assert "Kicked Bob" in card_text(browser, "pong1")
    sock.close()


def test_the_live_court_of_a_watched_group_moves(browser, board_relay):
    host, host_addr, _ = raw_join(board_relay.port, "Player1", "pong3")
    peer, peer_addr, _ = raw_join(board_relay.port, "Player2", "pong3")
    stop = threading.Event()

    def play():                         # the host's ball crosses the court, 60 times a second
        x = 50
        while not stop.is_set():
            x = 50 + (x + 12) % 700
            host.sendall(data(255, host_addr, ("ball_pos", {"center": [x, 300], "vel": [12, 0]}),
                              ("bar_pos", [20, 300])))
            peer.sendall(data(host_addr, peer_addr, ("bar_pos", [780, 200])))
            stop.wait(1 / 60)
    player = threading.Thread(target=play, daemon=True)
    player.start()
    try:
        open_board(browser, board_relay)
        until(browser, lambda b: card_text(b, "pong3") is not None, 5)
        browser.find_element("css selector", 'article[data-group="pong3"] button.name').click()
        court = 'article[data-group="pong3"] canvas.court'
        until(browser, lambda b: b.find_element("css selector", court).is_displayed(), 3)
        first = browser.execute_script(
            "return document.querySelector(arguments[0]).toDataURL()", court)
        until(browser, lambda b: b.execute_script(
            "return document.querySelector(arguments[0]).toDataURL()", court) != first, 3)
        assert "ball_pos" in card_text(browser, "pong3")      # its recent messages too
        # The page draws what the relay sampled: both bars and the ball.
        state = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('/state?watch=pong3', {headers: {'X-Board-Key': arguments[0]}})"
            ".then(r => r.json()).then(done);", board_relay.board.key)
        court_state = next(g for g in state["groups"] if g["name"] == "pong3")["court"]
        assert set(court_state["bars"]) == {"Player1", "Player2"} and court_state["ball"]
    finally:
        stop.set()
        player.join()
        host.close()
        peer.close()
