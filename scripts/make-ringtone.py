#!/usr/bin/env python3
"""Writes assets/ringtone.wav: two 0.4 s rings of a soft two-tone chord, then silence
(2 s in all), 48 kHz mono 16-bit, the format the app's sound thread plays.
Run from the repository root: python3 scripts/make-ringtone.py"""
import math
import struct
import wave

RATE = 48_000


def ring(seconds):
    n = int(RATE * seconds)
    for i in range(n):
        t = i / RATE
        # A short fade in and out so the ring never clicks.
        envelope = min(1.0, t / 0.01, (seconds - t) / 0.03)
        tone = math.sin(2 * math.pi * 480 * t) + math.sin(2 * math.pi * 620 * t)
        # A 20 Hz warble, like a phone bell.
        yield 0.22 * envelope * tone * (0.75 + 0.25 * math.sin(2 * math.pi * 20 * t))


def silence(seconds):
    return [0.0] * int(RATE * seconds)


samples = [*ring(0.4), *silence(0.2), *ring(0.4), *silence(1.0)]
with wave.open("assets/ringtone.wav", "wb") as out:
    out.setnchannels(1)
    out.setsampwidth(2)
    out.setframerate(RATE)
    out.writeframes(b"".join(struct.pack("<h", int(max(-1, min(1, s)) * 32767)) for s in samples))
