"""Make the three sound effects that pong_oop.py plays.

    python make_assets.py

writes sounds/wall.wav, sounds/bar.wav and sounds/die.wav next to this file.
Only the standard library is used: each sound is a short sine tone, worked
out sample by sample with math.sin and saved with the wave module as 16-bit
mono PCM, a format Pygame always understands. Nothing random is used, so
every run writes exactly the same bytes.
"""
import math
import os
import struct
import wave

SAMPLE_RATE = 22050   # samples per second: plenty for simple beeps
VOLUME = 0.5          # 1.0 would be the loudest a 16-bit sample can be
FADE_IN = 0.005       # seconds; starting at full volume makes a "click"

SOUNDS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sounds")


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


def main():
    os.makedirs(SOUNDS_DIR, exist_ok=True)
    save_wav("wall", tone(440, 440, 0.06))   # low, short "tock"
    save_wav("bar", tone(880, 880, 0.08))    # higher "ping" for a hit
    save_wav("die", tone(600, 150, 0.4))     # falling tone: point lost


if __name__ == "__main__":
    main()
