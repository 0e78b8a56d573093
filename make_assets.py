"""Make the sound effects and the window icon that the games use.

    python make_assets.py

writes sounds/wall.wav, sounds/bar.wav, sounds/die.wav and images/icon.png
next to this file. Only the standard library is used:

* each sound is a short sine tone, worked out sample by sample with math.sin
  and saved with the wave module as 16-bit mono PCM, a format Pygame always
  understands;
* the icon is a tiny Pong court (two bars, a ball, the centre line) drawn
  pixel by pixel and saved as a PNG file with zlib and struct.

Nothing random is used, so every run writes the same sounds and pictures.
"""
import math
import os
import struct
import wave
import zlib

SAMPLE_RATE = 22050   # samples per second: plenty for simple beeps
VOLUME = 0.5          # 1.0 would be the loudest a 16-bit sample can be
FADE_IN = 0.005       # seconds; starting at full volume makes a "click"

HERE = os.path.dirname(os.path.abspath(__file__))
SOUNDS_DIR = os.path.join(HERE, "sounds")
IMAGES_DIR = os.path.join(HERE, "images")

ICON_SIZE = 32        # pixels; window icons are small
ICON_BACKGROUND = (20, 40, 90)      # the dark blue of the games' message panels
ICON_WHITE = (255, 255, 255)
ICON_GREY = (190, 190, 190)


def envelope(t, duration):
    """Loudness (0 to 1) at time t: a very quick fade in, then a fade out
    to silence at the end, so the sound neither clicks nor stops abruptly."""
    fade_in = min(1.0, t / FADE_IN)
    fade_out = 1.0 - t / duration
    return fade_in * fade_out


def tone(start_freq, end_freq, duration):
    """Samples (floats from -1 to 1) of a sine tone whose pitch slides from
    start_freq to end_freq (in Hz) over duration seconds."""
    samples = []
    phase = 0.0
    count = int(SAMPLE_RATE * duration)
    for i in range(count):
        t = i / SAMPLE_RATE
        freq = start_freq + (end_freq - start_freq) * t / duration
        samples.append(math.sin(phase) * envelope(t, duration))
        # Adding up the phase step by step (instead of computing
        # sin(2*pi*freq*t)) keeps the wave smooth while the pitch changes.
        phase += 2 * math.pi * freq / SAMPLE_RATE
    return samples


def save_wav(name, samples):
    """Save the samples as sounds/<name>.wav (16-bit mono)."""
    path = os.path.join(SOUNDS_DIR, name + ".wav")
    frames = b"".join(
        struct.pack("<h", round(s * VOLUME * 32767)) for s in samples
    )
    with wave.open(path, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)   # 2 bytes = 16 bits per sample
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(frames)
    print("wrote", path)


def icon_pixels():
    """The icon as rows of (red, green, blue): a court seen from above."""
    def colour(x, y):
        if (x - 19.5) ** 2 + (y - 12.5) ** 2 <= 3.2 ** 2:
            return ICON_WHITE                       # the ball
        if 3 <= x <= 5 and 6 <= y <= 17:
            return ICON_WHITE                       # the left bar
        if 26 <= x <= 28 and 14 <= y <= 25:
            return ICON_WHITE                       # the right bar
        if x in (15, 16) and y % 4 < 2:
            return ICON_GREY                        # the dashed centre line
        return ICON_BACKGROUND
    return [[colour(x, y) for x in range(ICON_SIZE)] for y in range(ICON_SIZE)]


def save_png(name, rows):
    """Save rows of (red, green, blue) pixels as images/<name>.png.

    A PNG file is a signature and then chunks (length, type, data, CRC).
    IHDR gives the size and the pixel format (8-bit RGB), IDAT holds the
    zlib-compressed rows, each after a 0 byte (no filter), and IEND ends it.
    """
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    height, width = len(rows), len(rows[0])
    raw = b"".join(b"\0" + bytes(value for pixel in row for value in pixel) for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path = os.path.join(IMAGES_DIR, name + ".png")
    with open(path, "wb") as file:
        file.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                   + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    print("wrote", path)


def main():
    os.makedirs(SOUNDS_DIR, exist_ok=True)
    save_wav("wall", tone(440, 440, 0.06))   # low, short "tock"
    save_wav("bar", tone(880, 880, 0.08))    # higher "ping" for a hit
    save_wav("die", tone(600, 150, 0.4))     # falling tone: point lost
    os.makedirs(IMAGES_DIR, exist_ok=True)
    save_png("icon", icon_pixels())          # the window icon (Pygame Zero's ICON)


if __name__ == "__main__":
    main()
