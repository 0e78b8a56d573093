"""Finding the relay: pong_net.py asks the local network which relays have
its group, and when several answer it shows them as a list to choose from;
when no relay lets it join, why_not_joined() says why.

Nothing here is the game itself: pong_net.py calls find_the_relay() when it
starts (SERVER_IP = "auto", or no relay at localhost), and while its phase
is "choosing" it lets a RelayList read the answers, move with the keys and
draw itself.
"""
import time

import pong_text
from pgzero.constants import keys

from nethelper import (DEFAULT_PORT, GROUP_FULL, NAME_TAKEN, TIMEOUT, RelayFinder,
                       check_relay)
from pong_oop import (HEIGHT, MESSAGE_BORDER_COLOR, MESSAGE_BOX_COLOR, MESSAGE_MARGIN,
                      TEXT_COLOR, WIDTH, Rect)
from pong_text import draw_text, say

FIND_FOR = 1.0              # s: how long to listen for relays' answers before choosing
ASK_AGAIN_EVERY = 2.0       # s: the list of relays asks the network again this often
LIST_ROWS = 5               # relays the list shows at once (scrolled to the chosen one)
CHOSEN_COLOR = (60, 90, 170)   # behind the chosen relay in the list


def nothing_at_localhost(port):
    """No relay answers on this computer (Windows may take a second to say
    "refused", so anything but a relay counts)."""
    return not check_relay("localhost", port, timeout=1.0, samples=1).ok


def port_option(port):
    """How to give the port on a command line: nothing for the usual one."""
    return "" if port == DEFAULT_PORT else " -p %d" % port


def why_not_joined(error_code, error, address, port, group, timeout):
    """Every name was tried and the relay said no (or is not there): says
    why in the console, and returns the screen to show ("group_full" or
    "failed") and, for "failed", its words in the screen's language."""
    if error_code in (NAME_TAKEN, GROUP_FULL):
        print("Failed to connect. The group is full.", flush=True)
        print("Two players are already in group %s: wait for them to finish, or join "
              "another group with --group NAME." % group, flush=True)
        return "group_full", ""
    # error (NetNode's) says what happened and, for "no relay", how to start one.
    explanation = error
    if error_code == TIMEOUT:
        explanation += "\nTo find out why: python nethelper.py --check %s%s" % (
            address, port_option(port))
    print("Failed to connect.", explanation, flush=True)
    return "failed", pong_text.current().why_failed(error_code, explanation, address, port,
                                                    group, timeout)


def find_the_relay(group, discover_at, port):
    """Ask the local network which relays have our group. Returns
    (address and port, list): exactly one relay: its (address, port) and
    None; several: None and a RelayList to choose from; none at all: None
    and None, and the console says so."""
    print("Looking for a relay on the local network...", flush=True)
    try:
        finder = RelayFinder(discover_at, port)
    except OSError as exc:
        print("Could not ask the network:", exc, flush=True)
        return None, None
    finder.gather(FIND_FOR)
    ours = [info for info in finder.found if serves_group(info, group)]
    if len(ours) == 1:
        finder.close()
        info = ours[0]
        print("Found %s; joining group %s." % (relay_line(info, group), group), flush=True)
        return (info["address"], info["port"]), None
    if not ours:
        finder.close()
        print("No relay with group %s answered (UDP port %d). Start one with: python "
              "nethelper.py -g %s%s, or give its name or address: python pong_net.py "
              "minji-pc" % (group, port, group, port_option(port)), flush=True)
        return None, None
    print("Several relays have group %s; choose yours in the game's window:" % group,
          flush=True)
    choices = RelayList(finder, group)
    choices.add(ours)
    return None, choices


def serves_group(info, group):
    """Whether a game may find the group there: the relay lists it, or is
    open to any group, or may have it unlisted (a private relay lists no
    groups, and one with very many lists only the first ones)."""
    groups = info["groups"]
    return groups is None or group in groups or bool(info.get("any_group")
                                                     or info.get("more_groups"))


def who_waits(info, group, lettering):
    """Who is in the group there, in words: for Pong, Player 1 waits alone."""
    if info["groups"] is None:
        return lettering.say("not_listed")
    players = info["groups"].get(group, 0)
    if players == 0:
        return lettering.say("nobody_yet")
    return lettering.say("one_waiting") if players == 1 else lettering.say("full", n=players)


def relay_where(info):
    if info["port"] == DEFAULT_PORT:
        return info["address"]
    return "%s port %d" % (info["address"], info["port"])


def relay_line(info, group):
    """A relay in the console's words: 'relay "minji-pc" at 192.168.0.12: nobody yet'."""
    english = pong_text.Lettering("en")
    name = '"%s"' % info["name"] if info["name"] else english.say("no_name")
    return "relay %s at %s: %s" % (name, relay_where(info), who_waits(info, group, english))


class RelayList:
    """The relays with our group, in the order heard, and the one the keys
    point at; it keeps asking the network while it is shown."""

    def __init__(self, finder, group):
        self.finder, self.group = finder, group
        self.relays = []
        self.chosen = 0
        self.next_ask = time.monotonic() + ASK_AGAIN_EVERY

    def add(self, found):
        """New relays go at the end (printed), the ones listed already are
        updated in place, so the chosen one stays where it is."""
        places = {(r["address"], r["port"]): n for n, r in enumerate(self.relays)}
        for info in found:
            place = places.get((info["address"], info["port"]))
            if place is None:
                self.relays.append(info)
                print("  %d. %s" % (len(self.relays), relay_line(info, self.group)),
                      flush=True)
            else:
                self.relays[place] = info

    def keep_looking(self):
        """Read the answers, and ask again now and then."""
        if time.monotonic() >= self.next_ask:
            self.next_ask = time.monotonic() + ASK_AGAIN_EVERY
            try:
                self.finder.ask()
            except OSError:
                pass                # (the list stays as it is)
        self.finder.poll()
        self.add([info for info in self.finder.found if serves_group(info, self.group)])

    def choose_with_key(self, key, up_keys, down_keys):
        """Up and Down move through the list; Enter (or Space, or a number)
        picks a relay: then it is returned, and the list stops asking."""
        last = len(self.relays) - 1
        number = int(key) - int(keys.K_1)
        picked = None
        if key in up_keys:
            self.chosen = max(0, self.chosen - 1)
        elif key in down_keys:
            self.chosen = min(last, self.chosen + 1)
        elif key in (keys.RETURN, keys.KP_ENTER, keys.SPACE):
            picked = self.relays[self.chosen]
        elif 0 <= number <= min(8, last):
            picked = self.relays[number]
        if picked is not None and self.finder is not None:
            self.finder.close()
            self.finder = None
        return picked

    def rows(self):
        """The list as the screen shows it: (number, name, address, who waits)."""
        lettering = pong_text.current()
        return [("%d" % (n + 1), info["name"] or lettering.say("no_name"), relay_where(info),
                 who_waits(info, self.group, lettering)) for n, info in enumerate(self.relays)]

    def draw(self, screen, title, why):
        """The relays, the chosen one marked; the list scrolls when more
        than LIST_ROWS answer."""
        panel = Rect(MESSAGE_MARGIN, 90, WIDTH - 2 * MESSAGE_MARGIN, HEIGHT - 110)  # under the score
        screen.draw.filled_rect(panel, MESSAGE_BOX_COLOR)
        screen.draw.rect(panel, MESSAGE_BORDER_COLOR)
        draw_text(screen, title, 48, TEXT_COLOR, midtop=(WIDTH // 2, panel.top + 16))
        top = panel.top + 76
        for line in pong_text.current().lines(why, 24, panel.width - 40):
            draw_text(screen, line, 24, TEXT_COLOR, midtop=(WIDTH // 2, top))
            top += 28
        first = min(max(0, self.chosen - LIST_ROWS + 1), max(0, len(self.relays) - LIST_ROWS))
        rows = self.rows()
        for n in range(first, min(first + LIST_ROWS, len(rows))):
            number, name, where, who = rows[n]
            row = Rect(panel.left + 16, top + 8, panel.width - 32, 56)
            if n == self.chosen:
                screen.draw.filled_rect(row, CHOSEN_COLOR)
            draw_text(screen, number, 30, "yellow", topleft=(row.left + 10, row.top + 6))
            draw_text(screen, name, 30, TEXT_COLOR, topleft=(row.left + 44, row.top + 6))
            draw_text(screen, "%s  -  %s" % (where, who), 20, TEXT_COLOR,
                      topleft=(row.left + 44, row.top + 34))
            top += 60
        for n, key in enumerate(("still_looking", "choose_keys")):
            draw_text(screen, say(key), 20, TEXT_COLOR,
                      midbottom=(WIDTH // 2, panel.bottom - 14 - 26 * (1 - n)))
