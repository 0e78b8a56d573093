"""The words on Pong's screens, in Korean and in English, and the letters that draw them.

pong_oop.py and pong_net.py take every sentence they show from TEXTS below,
through say():

    say("start")              -> "Press Space to start"   or  "스페이스 키를 눌러 시작하세요"
    say("wins", n=2)          -> "Player 2 wins!"         or  "플레이어 2 승리!"

Which language: choose_language("auto") picks Korean when the computer's
language is Korean (Windows: its display language; macOS and Linux: the
locale) *and* a font with Hangul is found, English otherwise; "ko" or "en"
choose for you (a game's LANGUAGE constant and its --lang option).

Why this file finds its own font: pygame's built-in font has no Hangul, so
Korean would come out as empty boxes, and Pygame Zero's screen.draw.text only
loads fonts from the game's fonts/ folder, not the computer's. So this file
looks for a font file that has Hangul (Malgun Gothic on Windows, Apple SD
Gothic Neo on macOS, Nanum or Noto CJK on Linux, or any .ttf/.otf in the
game's fonts/ folder) and draws with pygame itself. Without one, Korean
letters in a name are written in Latin letters (퐁게임 -> ponggeim), never
as boxes, and the console says why once.

The console keeps printing the textbook's English lines: only the screen
changes language.
"""
import glob
import os
import re
import subprocess
import sys

import pygame

LANGUAGES = ("en", "ko")
HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------
# The words: each text in English and in Korean. {name} parts are filled in
# by say(); a text may have several lines (\n), and long lines are wrapped
# to fit their panel when drawn.
# ---------------------------------------------------------------------------

TEXTS = {
    # Both games
    "start": ("Press Space to start",
              "스페이스 키를 눌러 시작하세요"),
    "wins": ("Player {n} wins!",
             "플레이어 {n} 승리!"),
    "again": ("Press Space to play again",
              "스페이스 키를 눌러 다시 시작하세요"),
    "you": ("YOU",
            "나"),
    # pong_oop: two players on one keyboard, or one against the computer
    "keys_both": ("Left bar: A = up, Z = down\nRight bar: Up and Down arrows",
                  "왼쪽 막대: A = 위, Z = 아래\n오른쪽 막대: 위, 아래 화살표"),
    "keys_left": ("Your bar (left): A = up, Z = down",
                  "내 막대(왼쪽): A = 위, Z = 아래"),
    # pong_net
    "keys_net": ("Your bar: A = up, Z = down (or the Up and Down arrows)",
                 "내 막대: A = 위, Z = 아래 (위, 아래 화살표도 됩니다)"),
    "joining": ("Joining the game...",
                "게임에 들어가는 중..."),
    "looking": ("Looking for the relay at {host}, port {port}",
                "릴레이를 찾는 중: {host}, 포트 {port}"),
    "waiting": ("Waiting for a peer connection...",
                "상대를 기다리는 중..."),
    "you_are": ("You are {who}, in group {group}.\n"
                "Start the game on a second computer or window.",
                "나는 {who}, 그룹은 {group}입니다.\n"
                "다른 컴퓨터나 창에서 게임을 하나 더 시작하세요."),
    "player1": ("Player 1, the left bar",
                "플레이어 1(왼쪽 막대)"),
    "player2": ("Player 2, the right bar",
                "플레이어 2(오른쪽 막대)"),
    "host_left": ("The host is disconnected",
                  "호스트가 나갔습니다"),
    "now_host": ("You are the host now: Player 1, the left bar.\nWaiting for a new player...",
                 "이제 내가 호스트입니다: 플레이어 1(왼쪽 막대).\n새 상대를 기다리는 중..."),
    "relay_stopped": ("The relay was stopped",
                      "릴레이가 꺼졌습니다"),
    "connection_lost": ("Connection lost",
                        "연결이 끊겼습니다"),
    "reconnecting": ("Trying to reconnect...",
                     "다시 연결하는 중..."),
    "ping": ("ping {ms} ms",
             "핑 {ms} ms"),
    "no_ping": ("ping -",
                "핑 -"),
    # pong_net: the relay said no, or is not there
    "group_full": ("The group is full",
                   "그룹이 꽉 찼습니다"),
    "group_full_why": ("Two players are already in group {group}.\n"
                       "Wait for them to finish, or use another group.",
                       "그룹 {group}에는 이미 두 명이 있습니다.\n"
                       "끝나기를 기다리거나 다른 그룹을 쓰세요."),
    # pong_net: the teacher's board (the relay's web page) removed this game, or says something
    "kicked": ("Removed by the teacher",
               "선생님이 게임에서 내보냈습니다"),
    "kicked_why": ("This game may join again in a minute.\nThe teacher's reason is below.",
                   "1분 뒤에 다시 들어올 수 있습니다.\n선생님이 적은 이유는 아래에 있습니다."),
    "teacher_says": ("Teacher: {text}",
                     "선생님: {text}"),
    "failed": ("Failed to connect",
               "연결하지 못했습니다"),
    "why_failed": ("{error}",       # as Lettering.why_failed() put it, in either language
                   "{error}"),
    # (In English the screen shows nethelper's own explanation, the one the
    # console prints; these are its Korean counterparts.)
    "no_relay": (None,
                 "{where}에 릴레이가 없거나, 그 컴퓨터에 닿지 않습니다.\n"
                 "릴레이를 먼저 켜세요: python nethelper.py -g {group}{port_option}"),
    "timeout": (None,
                "{where}에서 {seconds}초 동안 답이 없습니다. "
                "SERVER_IP와 방화벽(TCP 포트 {port}번)을 확인하세요."),
    "check_hint": (None,
                   "원인 찾기: python nethelper.py --check {host}{port_option}"),
    "bad_address": (None,
                    '"{host}"라는 이름의 컴퓨터도, 그 이름의 릴레이도 찾을 수 없습니다. '
                    "SERVER_IP를 확인하세요."),
    "bad_port": (None,
                 "포트 {port}번은 쓸 수 없습니다. 포트는 1번부터 65535번까지입니다 "
                 "(릴레이는 {default_port}번)."),
    "refused": (None,
                "릴레이가 받아 주지 않았습니다:\n{reason}"),
    # pong_net: several relays on the network have the group; the player chooses
    "choose_relay": ("Choose your relay",
                     "릴레이를 고르세요"),
    "choose_why": ("Several relays have group {group}. Which one is your partner's?",
                   "그룹 {group}이 있는 릴레이가 여럿입니다. 짝의 릴레이는 어느 것인가요?"),
    "choose_keys": ("Up/Down: choose    Enter: join    (or press its number)",
                    "위/아래: 고르기    Enter: 들어가기    (번호를 눌러도 됩니다)"),
    "still_looking": ("Relays that answer later are added to the list.",
                      "늦게 답하는 릴레이도 목록에 더해집니다."),
    "nobody_yet": ("nobody yet",
                   "아직 아무도 없음"),
    "one_waiting": ("Player 1 is waiting",
                    "플레이어 1이 기다리는 중"),
    "full": ("full ({n} players)",
             "꽉 참 ({n}명)"),
    "not_listed": ("players not listed",
                   "인원 비공개"),
    "no_name": ("(no name)",
                "(이름 없음)"),
}

# ---------------------------------------------------------------------------
# Where fonts with Hangul live, best first. A bold face first: pygame's own
# font, which draws the English screens, is bold too.
# ---------------------------------------------------------------------------

WINDOWS_FONTS = os.path.join(os.environ.get("WINDIR", r"C:\Windows"), "Fonts")
WINDOWS_USER_FONTS = os.path.join(os.environ.get("LOCALAPPDATA", ""), "Microsoft", "Windows",
                                  "Fonts")
HANGUL_FONTS = [
    os.path.join(HERE, "fonts", "*.[ot]t[fc]"),         # the game's own fonts/ folder
    # Windows: Malgun Gothic comes with every Windows since Vista
    os.path.join(WINDOWS_FONTS, "malgunbd.ttf"),
    os.path.join(WINDOWS_FONTS, "malgun.ttf"),
    os.path.join(WINDOWS_USER_FONTS, "NanumGothicBold.ttf"),
    os.path.join(WINDOWS_USER_FONTS, "NanumGothic.ttf"),
    os.path.join(WINDOWS_FONTS, "gulim.ttc"),
    # macOS
    "/System/Library/Fonts/AppleSDGothicNeo.ttc",
    "/System/Library/Fonts/Supplemental/AppleGothic.ttf",
    "/Library/Fonts/AppleGothic.ttf",
    os.path.expanduser("~/Library/Fonts/NanumGothicBold.ttf"),
    # Linux: Debian and Ubuntu's fonts-nanum and fonts-noto-cjk, Fedora, Arch
    "/usr/share/fonts/truetype/nanum/NanumGothicBold.ttf",
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/nanum*/NanumGothicBold.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",
    os.path.expanduser("~/.local/share/fonts/Nanum*.ttf"),
    os.path.expanduser("~/.fonts/Nanum*.ttf"),
]
HANGUL_SAMPLE = "한글"          # a font must draw these (not as boxes) to count
DEFAULT_FONT_SCALE = 0.6875     # pygame draws its own font at this part of the size asked for


# ---------------------------------------------------------------------------
# Choosing the language
# ---------------------------------------------------------------------------

def system_language():
    """The computer's language as a two-letter code ("ko", "en", ...), or "" if unknown."""
    if sys.platform == "win32":
        try:
            import ctypes
            language_id = ctypes.windll.kernel32.GetUserDefaultUILanguage()
        except (AttributeError, OSError):
            pass
        else:
            return windows_language(language_id)
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        code = locale_language(os.environ.get(variable, ""))
        if code:
            return code
    if sys.platform == "darwin":    # a game started from the Dock may have no LANG
        try:
            answer = subprocess.run(["defaults", "read", "-g", "AppleLanguages"],
                                    capture_output=True, text=True, timeout=2).stdout
        except (OSError, subprocess.SubprocessError):
            answer = ""
        words = answer.replace('"', " ").replace("(", " ").split()
        if words:
            return locale_language(words[0])
    return ""


def windows_language(language_id):
    """A Windows language id (e.g. 0x0412, Korean) as a two-letter code."""
    primary = language_id & 0x3FF
    return {0x12: "ko", 0x09: "en"}.get(primary, "other")


def locale_language(value):
    """ "ko_KR.UTF-8", "ko-KR" or "ko:en" -> "ko"; "C" or "POSIX" -> "en"; "" -> ""."""
    value = value.split(":")[0].strip()
    if value in ("C", "POSIX") or value.startswith("C."):
        return "en"
    return value[:2].lower() if len(value) >= 2 else ""


def find_hangul_font(places=None):
    """The path of a font file on this computer that draws Hangul, or None."""
    pygame.font.init()
    for pattern in HANGUL_FONTS if places is None else places:
        for path in sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") \
                else [pattern]:
            if os.path.isfile(path) and draws_hangul(path):
                return path
    return None


def draws_hangul(path):
    try:
        font = pygame.font.Font(path, 24)
    except (pygame.error, OSError):
        return False
    return all(has_glyph(font, letter) for letter in HANGUL_SAMPLE)


def has_glyph(font, letter):
    """True unless the font would draw letter as its "missing letter" box."""
    if letter.isspace():
        return True
    return picture_of(font, letter) != picture_of(font, MISSING_LETTER)


MISSING_LETTER = "\U0010FFFD"   # in no font: drawn as the font's box for a missing letter


def picture_of(font, text):
    drawn = font.render(text, False, (255, 255, 255), (0, 0, 0))
    # (pygame before 2.1.3, which an older Mu may have, calls tobytes() tostring())
    as_bytes = getattr(pygame.image, "tobytes", None) or pygame.image.tostring
    return drawn.get_size(), as_bytes(drawn, "RGB")


def choose_language(wanted="auto", font_places=None, quiet=False):
    """The Lettering for wanted ("auto", "ko" or "en"): see the top of this file."""
    if wanted not in ("auto",) + LANGUAGES:
        raise ValueError('the language must be "auto", "ko" or "en", not %r' % (wanted,))
    font_path = find_hangul_font(font_places)
    language = wanted
    if wanted == "auto":
        language = "ko" if system_language() == "ko" else "en"
    if language == "ko" and font_path is None:
        if not quiet:
            print("No font with Korean letters (Hangul) was found on this computer, so the "
                  "screens are in English. To fix it, put a .ttf font with Hangul (e.g. "
                  "NanumGothic.ttf) in a folder called fonts next to the game.", flush=True)
        language = "en"
    return Lettering(language, font_path, quiet)


# ---------------------------------------------------------------------------
# The lettering: which words, in which font
# ---------------------------------------------------------------------------

class Lettering:
    """The screens' language and the fonts that draw it.

    English screens use pygame's own font, as every Pygame Zero game does;
    Korean screens, and any text with letters that font lacks (a Korean
    group name on an English screen), use hangul_font, a font file's path.
    Letters no font here can draw are replaced with readable ones."""

    def __init__(self, language="en", hangul_font=None, quiet=False):
        self.language = language
        self.hangul_font = hangul_font
        self.quiet = quiet
        self.told_no_font = False
        self.fonts = {}         # (path, size) -> pygame Font
        self.glyphs = {}        # (path, letter) -> whether that font has it
        self.drawn = {}         # (text, size, colour) -> rendered picture
        self.wrapped = {}       # (text, size, width) -> its lines

    def say(self, key, **fields):
        """The text called key in this language, with its {fields} filled in."""
        english, korean = TEXTS[key]
        text = korean if self.language == "ko" else english
        return text.format(**fields)

    def font_path(self, text):
        """The font for text: pygame's own (None) where it has every letter."""
        if self.hangul_font and (self.language == "ko" or not self.has_all(None, text)):
            return self.hangul_font
        return None

    def font(self, size, path):
        if (path, size) not in self.fonts:
            scaled = size if path is None else round(size * DEFAULT_FONT_SCALE)
            self.fonts[path, size] = pygame.font.Font(path, scaled)
        return self.fonts[path, size]

    def has_all(self, path, text):
        font = None
        for letter in set(text):
            if (path, letter) not in self.glyphs:
                font = font or self.font(24, path)
                self.glyphs[path, letter] = has_glyph(font, letter)
            if not self.glyphs[path, letter]:
                return False
        return True

    def readable(self, text):
        """text with every letter its font cannot draw replaced by one it can:
        Hangul by its Latin spelling, anything else by "?"."""
        path = self.font_path(text)
        if self.has_all(path, text):
            return text
        korean_words = re.findall(r"\w*[\uac00-\ud7a3]\w*", text)
        if korean_words and not self.told_no_font:
            self.told_no_font = True
            if not self.quiet:
                print("This computer has no font with Korean letters (Hangul), so Korean "
                      "names are shown in Latin letters: %s" % ", ".join(
                          "%s -> %s" % (word, romanize(word)) for word in korean_words),
                      flush=True)
        return "".join(letter if self.has_all(path, letter) else
                       romanize(letter) if is_hangul(letter) else "?" for letter in text)

    def lines(self, text, size, width):
        """text (made readable) cut into lines no wider than width pixels.
        A paragraph too long for one line is cut after its sentences first
        (a command stays whole on a line of its own), then each sentence into
        lines of even length, at spaces; inside a word only if it is longer
        than a line."""
        return remembered(self.wrapped, (text, size, width), lambda: self.wrap(text, size, width))

    def wrap(self, text, size, width):
        text = self.readable(text)          # (the font of the whole text, as render() uses)
        font = self.font(size, self.font_path(text))
        lines = []
        for paragraph in text.split("\n"):
            if font.size(paragraph)[0] <= width:
                lines.append(paragraph)
                continue
            for sentence in re.split(r"(?<=[.!?]) +", paragraph):
                # As narrow as it can be in as many lines: no lone last word.
                count = len(fill(sentence, font, width))
                narrowest = first(width // 2, width,
                                  lambda tried: len(fill(sentence, font, tried)) <= count)
                lines += fill(sentence, font, narrowest)
        return lines

    def line_height(self, text, size, whole=None):
        """The height of a line of text; whole: see render()."""
        return self.font(size, self.font_path(self.readable(whole or text))).get_linesize()

    def render(self, text, size, color, whole=None):
        """One line of text as a picture (kept: the same words are drawn every
        frame). A line cut from a longer text (whole) is drawn in the font of
        the whole text, so that all its lines look alike."""
        def draw():
            path = self.font_path(self.readable(whole or text))
            return self.font(size, path).render(self.readable(text), True, pygame.Color(color))
        return remembered(self.drawn, (text, size, tuple(pygame.Color(color)), whole), draw)

    def why_failed(self, code, explanation, host, port, group, timeout):
        """Why a game could not join, for the screen. explanation is the
        console's English (nethelper's NetNode.error, and how to find out
        more); code is NetNode.error_code."""
        if self.language == "en":
            return explanation
        # Imported here: the local game (pong_oop.py) needs no nethelper.py.
        from nethelper import BAD_ADDRESS, DEFAULT_PORT, NO_RELAY, TIMEOUT
        port_option = "" if port == DEFAULT_PORT else " -p %d" % port
        where = "%s:%s" % (host, port)
        if code == BAD_ADDRESS and not 0 < port <= 65535:
            return self.say("bad_port", port=port, default_port=DEFAULT_PORT)
        if code == BAD_ADDRESS:
            return self.say("bad_address", host=host)
        if code == NO_RELAY:
            return self.say("no_relay", where=where, group=group, port_option=port_option)
        if code == TIMEOUT:
            return self.say("timeout", where=where, seconds="%g" % timeout, port=port) + \
                "\n" + self.say("check_hint", host=host, port_option=port_option)
        return self.say("refused", reason=explanation)


def fill(text, font, width):
    """text in lines no wider than width, as many words on each as fit."""
    fits = lambda words: font.size(words)[0] <= width    # noqa: E731
    lines, line = [], ""
    for word in text.split(" "):
        if fits(line + " " + word if line else word):
            line = line + " " + word if line else word
            continue
        if line:
            lines.append(line)
        while len(word) > 1 and not fits(word):
            cut = first(2, len(word), lambda n: not fits(word[:n])) - 1   # as much as fits
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    return lines + [line]


def first(low, high, good):
    """The smallest number from low to high for which good() is true, when
    it is true of every number after that one too (high if of none)."""
    while low < high:
        middle = (low + high) // 2
        if good(middle):
            high = middle
        else:
            low = middle + 1
    return low


def remembered(cache, key, make, most=200):
    """cache[key], made by make() the first time. The cache is emptied when it
    holds most: the ping's text changes every second, all game long."""
    if key not in cache:
        if len(cache) >= most:
            cache.clear()
        cache[key] = make()
    return cache[key]


def is_hangul(letter):
    return "\uac00" <= letter <= "\ud7a3" or "\u1100" <= letter <= "\u11ff" or \
        "\u3130" <= letter <= "\u318f"


# Revised Romanization, letter by letter: the first consonant, the vowel
# and the last consonant of each Hangul syllable.
FIRST = "g kk n d tt r m b pp s ss - j jj ch k t p h".split()
VOWEL = "a ae ya yae eo e yeo ye o wa wae oe yo u wo we wi yu eu ui i".split()
LAST = "- k k k n n n t l k m l l l p l m p p t t ng t t k t p t".split()


def romanize(text):
    """Hangul in Latin letters (퐁게임 -> ponggeim); other letters stay."""
    out = []
    for letter in text:
        if "\uac00" <= letter <= "\ud7a3":
            number = ord(letter) - 0xAC00
            first, vowel, last = number // 588, number // 28 % 21, number % 28
            out.append((FIRST[first] + VOWEL[vowel] + LAST[last]).replace("-", ""))
        elif is_hangul(letter):
            out.append("?")         # a lone jamo: too rare to spell out
        else:
            out.append(letter)
    return "".join(out)


# ---------------------------------------------------------------------------
# The games use these: one lettering for the whole program
# ---------------------------------------------------------------------------

lettering = None        # set by use_language(), or on first use


def use_language(wanted="auto", **options):
    """Choose the screens' language (see choose_language) for the whole program."""
    global lettering
    lettering = choose_language(wanted, **options)
    return lettering


def use_language_once(wanted="auto"):
    """use_language(wanted), unless the language was chosen already (--lang)."""
    return lettering or use_language(wanted)


def current():
    """The lettering in use: the computer's own language if no game chose one."""
    return use_language_once("auto")


def say(key, **fields):
    return current().say(key, **fields)


def draw_text(screen, text, size, color, whole=None, by_ink=False, **position):
    """Draw one line of text on Pygame Zero's screen, placed like a Rect:
    draw_text(screen, "YOU", 30, "yellow", midleft=(x, y)). by_ink: place the
    letters themselves, not their line (fonts put letters at different
    heights in it: a Hangul "나" sits lower than "YOU"). whole: the text this
    line was cut from, see Lettering.render."""
    picture = current().render(text, size, color, whole)
    box = picture.get_bounding_rect() if by_ink else picture.get_rect()
    placed = box.copy()
    for anchor, point in position.items():
        setattr(placed, anchor, point)
    screen.blit(picture, (placed.x - box.x, placed.y - box.y))
