#!/usr/bin/env python3
"""An aiortc peer that speaks Confab's signaling protocol v1 (docs/protocol.md).

It logs in to a Confab signaling server, then either calls a peer by display name
(`--call NAME`) or answers the first incoming call (`--answer`), and checks that a real
call works with another WebRTC implementation:

- SDP offer/answer over signaling; our candidates travel inside the SDP (aiortc does not
  trickle), the peer's trickled `candidate` messages are added as they come (held until
  the remote description is set), `candidate: null` is end-of-candidates;
- we send H.264 video (a moving test pattern, encoded by the libx264 in PyAV's FFmpeg)
  and an Opus tone, and receive and decode the peer's video and audio;
- the caller creates the `chat` data channel; we send a chat message and expect its ack,
  ack every chat we receive, and say `bye` before hanging up.

Exit status 0 only if every check passed. The last line on stdout is a one-line JSON
summary; logs go to stderr.
"""

import argparse
import array
import asyncio
import fractions
import json
import logging
import math
import sys
import time
import uuid

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.sdp import candidate_from_sdp
from websockets.asyncio.client import connect

log = logging.getLogger("aiortc_peer")

PROTOCOL_VERSION = 1
AUDIO_RATE = 48_000
AUDIO_PTIME = 0.020


# ---------------------------------------------------------------------------------------
# Media sources


class PatternVideoTrack(MediaStreamTrack):
    """Vertical bars sliding sideways, in yuv420p, at `fps` frames per second."""

    kind = "video"

    def __init__(self, width: int, height: int, fps: int):
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.frames_sent = 0
        self._start = None
        self._probe = av.VideoFrame(width=width, height=height, format="yuv420p")

    def _plane(self, index: int, offset: int) -> bytes:
        plane = self._probe.planes[index]
        w = self.width if index == 0 else self.width // 2
        h = self.height if index == 0 else self.height // 2
        stride = plane.line_size
        if index == 0:
            # Bars 32 pixels wide, bright and dark, moving 4 px a frame.
            period = bytes(([235] * 32 + [16] * 32))
        else:
            period = bytes(([90 if index == 1 else 200] * 16 + [160 if index == 1 else 60] * 16))
        reps = (w + stride) // len(period) + 2
        long_row = period * reps
        shift = offset % len(period)
        row = long_row[shift : shift + stride]
        return row * h

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            wait = self._start + self.frames_sent / self.fps - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.VideoFrame(width=self.width, height=self.height, format="yuv420p")
        offset = self.frames_sent * 4
        for i, plane in enumerate(frame.planes):
            plane.update(self._plane(i, offset if i == 0 else offset // 2))
        frame.pts = int(self.frames_sent * 90_000 / self.fps)
        frame.time_base = fractions.Fraction(1, 90_000)
        self.frames_sent += 1
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A sine tone, 48 kHz mono s16, 20 ms frames."""

    kind = "audio"

    def __init__(self, hz: int):
        super().__init__()
        # One second holds a whole number of periods of an integer frequency.
        self._second = array.array(
            "h",
            (int(8000 * math.sin(2 * math.pi * hz * i / AUDIO_RATE)) for i in range(AUDIO_RATE)),
        ).tobytes()
        self._timestamp = None
        self.frames_sent = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        samples = int(AUDIO_PTIME * AUDIO_RATE)
        if self._timestamp is None:
            self._start = time.time()
            self._timestamp = 0
        else:
            self._timestamp += samples
            wait = self._start + self._timestamp / AUDIO_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        start = (self._timestamp % AUDIO_RATE) * 2
        frame.planes[0].update(self._second[start : start + samples * 2])
        frame.pts = self._timestamp
        frame.sample_rate = AUDIO_RATE
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self.frames_sent += 1
        return frame


# ---------------------------------------------------------------------------------------
# The peer


class CallFailed(Exception):
    pass


class Peer:
    def __init__(self, args):
        self.args = args
        self.ws = None
        self.my_id = None
        self.roster = {}  # id -> name
        self.ice_servers = []
        self.pc = None
        self.call_id = None
        self.remote_id = None
        self.remote_set = False
        self.held_candidates = []
        self.remote_candidates = 0
        self.remote_end_of_candidates = False
        self.chat = None
        self.chat_open = asyncio.Event()
        self.connected = asyncio.Event()
        self.connected_at = None
        self.ended = asyncio.Event()
        self.end_reason = None  # what ended the call
        self.failure = None
        self.peer_found = asyncio.Event()
        self.answered = asyncio.Event()
        self.video_track = None
        self.audio_track = None
        self.stats = {
            "video_frames_received": 0,
            "video_size_in": None,
            "video_sizes_seen": [],
            "audio_frames_received": 0,
            "audio_sample_rate_in": None,
            "chats_sent": 0,
            "acks_received": 0,
            "chats_received": [],
            "acks_sent": 0,
            "bye_received": False,
            "hangup_received": None,
        }
        self.sent_chat_ids = set()
        self.tasks = []
        self.offer_sdp = None
        self.answer_sdp = None

    # ---- signaling ----

    async def send(self, msg: dict):
        log.debug("-> %s", json.dumps(msg)[:300])
        await self.ws.send(json.dumps(msg))

    async def login(self):
        self.ws = await connect(self.args.server, max_size=16 * 1024 * 1024)
        hello = {"type": "hello", "protocol": PROTOCOL_VERSION, "name": self.args.name}
        if self.args.token:
            hello["token"] = self.args.token
        await self.send(hello)
        msg = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        if msg.get("type") != "welcome":
            raise CallFailed(f"login refused: {msg}")
        self.my_id = msg["id"]
        for p in msg.get("peers", []):
            self.roster[p["id"]] = p["name"]
        self.ice_servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in msg.get("ice_servers", [])
        ]
        log.info("logged in as %s (%s), server %s, %d peers online",
                 self.args.name, self.my_id, msg.get("server_version"), len(self.roster))

    def find_peer(self, name: str):
        for pid, pname in self.roster.items():
            if pname.casefold() == name.casefold():
                return pid
        return None

    async def signaling_loop(self):
        async for raw in self.ws:
            if isinstance(raw, bytes):
                continue
            msg = json.loads(raw)
            kind = msg.get("type")
            log.debug("<- %s", raw[:300])
            if kind in ("peer_joined", "peer_updated"):
                self.roster[msg["peer"]["id"]] = msg["peer"]["name"]
                if self.args.call and self.find_peer(self.args.call):
                    self.peer_found.set()
            elif kind == "peer_left":
                self.roster.pop(msg["id"], None)
            elif kind == "offer":
                await self.on_offer(msg)
            elif kind == "answer":
                await self.on_answer(msg)
            elif kind == "candidate":
                await self.on_candidate(msg)
            elif kind == "hangup":
                if self.is_our_call(msg):
                    log.info("peer hung up: %s (chat %s)", msg.get("reason"),
                             self.chat.readyState if self.chat else None)
                    self.stats["hangup_received"] = msg.get("reason")
                    self.finish(f"hangup:{msg.get('reason')}")
            elif kind == "error":
                if self.ended.is_set():
                    # e.g. our hangup crossed the peer's: the call was already over.
                    log.info("server error after the call ended: %s", raw)
                    continue
                log.error("server error: %s", raw)
                if msg.get("call_id") and msg.get("call_id") == self.call_id:
                    self.fail(f"server refused a message of our call: {msg.get('code')}: {msg.get('message')}")
            # anything else (welcome, unknown types) is ignored
        log.info("signaling connection closed")
        if not self.ended.is_set():
            self.fail("signaling connection closed during the call")

    def is_our_call(self, msg) -> bool:
        return msg.get("call_id") == self.call_id and msg.get("from") == self.remote_id

    # ---- the call ----

    def new_pc(self):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self.ice_servers))

        @pc.on("connectionstatechange")
        async def on_state():
            log.info("connection state: %s", pc.connectionState)
            if pc.connectionState == "connected":
                self.connected_at = time.time()
                self.connected.set()
            elif pc.connectionState == "failed":
                self.fail("peer connection failed")

        @pc.on("iceconnectionstatechange")
        async def on_ice():
            log.info("ICE connection state: %s", pc.iceConnectionState)

        @pc.on("track")
        def on_track(track):
            log.info("remote %s track", track.kind)
            self.tasks.append(asyncio.ensure_future(self.consume(track)))

        @pc.on("datachannel")
        def on_datachannel(channel):
            log.info("remote data channel %r", channel.label)
            if channel.label == "chat":
                self.attach_chat(channel)

        self.video_track = PatternVideoTrack(*self.args.size, self.args.fps) if self.args.send_video else None
        self.audio_track = ToneAudioTrack(self.args.tone)
        self.pc = pc
        return pc

    def add_media(self, pc):
        """Caller side: sendrecv transceivers, video first (as the engine does)."""
        video = pc.addTransceiver("video", direction="sendrecv")
        if self.video_track:
            video.sender.replaceTrack(self.video_track)
        if self.args.h264_only:
            caps = RTCRtpSender.getCapabilities("video")
            video.setCodecPreferences([c for c in caps.codecs if c.mimeType in ("video/H264", "video/rtx")])
        audio = pc.addTransceiver("audio", direction="sendrecv")
        audio.sender.replaceTrack(self.audio_track)

    async def consume(self, track):
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.stats["video_frames_received"] += 1
                    size = [frame.width, frame.height]
                    if size != self.stats["video_size_in"]:
                        log.info("receiving video %dx%d", frame.width, frame.height)
                        self.stats["video_sizes_seen"].append(size)
                    self.stats["video_size_in"] = size
                else:
                    self.stats["audio_frames_received"] += 1
                    self.stats["audio_sample_rate_in"] = frame.sample_rate
        except MediaStreamError:
            pass

    def attach_chat(self, channel):
        self.chat = channel

        def opened():
            log.info("chat channel open")
            self.chat_open.set()

        if channel.readyState == "open":
            opened()
        else:
            channel.on("open", opened)

        @channel.on("close")
        def on_close():
            log.info("chat channel closed")

        @channel.on("message")
        def on_message(data):
            if isinstance(data, bytes):
                data = data.decode("utf-8", "replace")
            try:
                msg = json.loads(data)
            except ValueError:
                self.fail(f"malformed chat message: {data!r}")
                return
            kind = msg.get("type")
            if kind == "chat":
                log.info("chat received: %r", msg.get("text"))
                if not isinstance(msg.get("id"), str) or not isinstance(msg.get("sent_at_ms"), int):
                    self.fail(f"chat message without id/sent_at_ms: {data!r}")
                self.stats["chats_received"].append(msg.get("text"))
                channel.send(json.dumps({"type": "ack", "id": msg.get("id")}))
                self.stats["acks_sent"] += 1
            elif kind == "ack":
                if msg.get("id") in self.sent_chat_ids:
                    log.info("chat acked")
                    self.stats["acks_received"] += 1
                else:
                    self.fail(f"ack for an unknown id: {data!r}")
            elif kind == "bye":
                log.info("peer said bye")
                self.stats["bye_received"] = True
                self.finish("bye")
            else:
                log.warning("unknown chat message %r", data)

    def send_chat(self, text: str):
        mid = str(uuid.uuid4())
        self.sent_chat_ids.add(mid)
        self.chat.send(json.dumps({"type": "chat", "id": mid, "text": text,
                                   "sent_at_ms": int(time.time() * 1000)}))
        self.stats["chats_sent"] += 1

    async def add_remote_candidate(self, cand):
        if cand is None or not cand.get("candidate"):
            self.remote_end_of_candidates = True
            await self.pc.addIceCandidate(None)
            return
        line = cand["candidate"]
        if line.startswith("candidate:"):
            line = line[len("candidate:"):]
        ice = candidate_from_sdp(line)
        ice.sdpMid = cand.get("sdp_mid")
        ice.sdpMLineIndex = cand.get("sdp_m_line_index")
        if ice.sdpMid is None and ice.sdpMLineIndex is None:
            ice.sdpMLineIndex = 0
        self.remote_candidates += 1
        log.info("remote candidate: %s (mid %r)", cand["candidate"], ice.sdpMid)
        await self.pc.addIceCandidate(ice)

    async def on_candidate(self, msg):
        if not self.is_our_call(msg):
            log.warning("candidate for another call ignored")
            return
        if not self.remote_set:
            self.held_candidates.append(msg.get("candidate"))
            return
        await self.add_remote_candidate(msg.get("candidate"))

    async def flush_candidates(self):
        self.remote_set = True
        for cand in self.held_candidates:
            await self.add_remote_candidate(cand)
        self.held_candidates = []

    async def place_call(self, peer_id):
        self.remote_id = peer_id
        self.call_id = str(uuid.uuid4())
        pc = self.new_pc()
        self.add_media(pc)
        self.attach_chat(pc.createDataChannel("chat", ordered=True))
        await pc.setLocalDescription(await pc.createOffer())  # gathers: candidates in SDP
        self.offer_sdp = pc.localDescription.sdp
        log.info("calling %s (call %s)", self.roster.get(peer_id), self.call_id)
        await self.send({"type": "offer", "to": peer_id, "call_id": self.call_id,
                         "sdp": self.offer_sdp})

    async def on_answer(self, msg):
        if not self.is_our_call(msg):
            log.warning("answer for another call ignored")
            return
        self.answer_sdp = msg["sdp"]
        log.info("answered")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="answer"))
        await self.flush_candidates()
        self.answered.set()

    async def on_offer(self, msg):
        if self.call_id is not None:
            if self.is_our_call(msg):
                self.fail("renegotiation is not supported by this test peer")
            else:
                await self.send({"type": "hangup", "to": msg["from"], "call_id": msg["call_id"],
                                 "reason": "busy"})
            return
        if not self.args.answer:
            await self.send({"type": "hangup", "to": msg["from"], "call_id": msg["call_id"],
                             "reason": "declined"})
            return
        self.call_id = msg["call_id"]
        self.remote_id = msg["from"]
        self.offer_sdp = msg["sdp"]
        log.info("answering %s (call %s)", msg.get("from_name"), self.call_id)
        pc = self.new_pc()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="offer"))
        # Our tracks take over the first offered transceiver of each kind. Confab offers a
        # second video section for a shared screen (docs/protocol.md, "Screen sharing"): this
        # peer does not take one (its `state` has no `screen`), so it only receives there.
        taken = set()
        for t in pc.getTransceivers():
            if t.kind in taken:
                t.direction = "recvonly"
                continue
            taken.add(t.kind)
            if t.kind == "video" and self.video_track:
                t.sender.replaceTrack(self.video_track)
                t.direction = "sendrecv"
            elif t.kind == "audio":
                t.sender.replaceTrack(self.audio_track)
                t.direction = "sendrecv"
        await self.flush_candidates()
        await pc.setLocalDescription(await pc.createAnswer())
        self.answer_sdp = pc.localDescription.sdp
        await self.send({"type": "answer", "to": self.remote_id, "call_id": self.call_id,
                         "sdp": self.answer_sdp})
        self.answered.set()

    # ---- ending ----

    def finish(self, reason):
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()

    def fail(self, why):
        log.error("FAIL: %s", why)
        if self.failure is None:
            self.failure = why
        self.finish(f"failed: {why}")

    async def hang_up(self):
        """We end the call: bye on the chat, then hangup over signaling (unless the peer,
        having read our bye, hung up first)."""
        self.finish("we hung up")
        if self.chat and self.chat.readyState == "open":
            self.chat.send(json.dumps({"type": "bye"}))
            for _ in range(20):
                if self.chat.bufferedAmount == 0:
                    break
                await asyncio.sleep(0.01)
            # bufferedAmount 0 only means SCTP took the bye; aiortc exposes no
            # acknowledgement to wait for, so give it one flush interval on the wire.
            await asyncio.sleep(0.1)
        if self.stats["hangup_received"] is None:
            await self.send({"type": "hangup", "to": self.remote_id, "call_id": self.call_id,
                             "reason": "ended"})

    def negotiated(self):
        out = {}
        if not self.pc:
            return out
        for t in self.pc.getTransceivers():
            codecs = getattr(t, "_codecs", None) or []
            if codecs:
                c = codecs[0]
                out[t.kind] = {"mime": c.mimeType, "pt": c.payloadType,
                               "fmtp": ";".join(f"{k}={v}" for k, v in sorted(c.parameters.items()))}
        return out

    async def outbound_packets(self):
        sent = {}
        try:
            report = await self.pc.getStats()
            for s in report.values():
                if s.type == "outbound-rtp":
                    sent[s.kind] = sent.get(s.kind, 0) + s.packetsSent
        except Exception as e:  # stats are informational
            log.warning("getStats: %s", e)
        return sent

    # ---- main ----

    async def run(self):
        sig = None
        try:
            await self.login()
            sig = asyncio.ensure_future(self.signaling_loop())
            await asyncio.wait_for(self.call_flow(), self.args.timeout)
        except asyncio.TimeoutError:
            self.fail(f"timed out after {self.args.timeout}s")
        except CallFailed as e:
            self.fail(str(e))
        except Exception as e:  # e.g. the server is unreachable: still report
            log.exception("unexpected error")
            self.fail(f"{type(e).__name__}: {e}")
        finally:
            sent = await self.outbound_packets() if self.pc else {}
            negotiated = self.negotiated()
            sent_video = self.video_track.frames_sent if self.video_track else 0
            sent_audio = self.audio_track.frames_sent if self.audio_track else 0
            if (self.failure and self.call_id and self.stats["hangup_received"] is None
                    and self.ws is not None):
                # Best effort: let the peer end the call now rather than time out.
                try:
                    await self.send({"type": "hangup", "to": self.remote_id,
                                     "call_id": self.call_id, "reason": "failed"})
                except Exception:
                    pass
            if self.pc:
                await self.pc.close()
            for t in self.tasks:
                t.cancel()
            if self.ws is not None:
                await self.ws.close()
            if sig is not None:
                sig.cancel()
        return self.report(negotiated, sent, sent_video, sent_audio)

    async def call_flow(self):
        if self.args.call:
            if not self.find_peer(self.args.call):
                log.info("waiting for %s to come online", self.args.call)
                await self.peer_found.wait()
            await self.place_call(self.find_peer(self.args.call))
        await self.wait_or_end(self.answered)
        await self.wait_or_end(self.connected)
        await self.wait_or_end(self.chat_open)
        for text in self.args.chat:
            self.send_chat(text)
        if self.args.duration is not None:
            # Hang up ourselves after `duration` seconds connected.
            remaining = self.connected_at + self.args.duration - time.time()
            try:
                await asyncio.wait_for(self.ended.wait(), max(remaining, 0))
            except asyncio.TimeoutError:
                await self.hang_up()
        else:
            await self.ended.wait()
        if self.end_reason.startswith("hangup:") and self.chat and self.chat.readyState == "open":
            # The peer's hangup can overtake its bye (signaling vs. the data channel):
            # give the bye a moment before closing, so the peer can finish cleanly.
            for _ in range(25):
                if self.stats["bye_received"]:
                    break
                await asyncio.sleep(0.02)
        # An ack may still be in flight right at a hang-up: wait for it, briefly.
        for _ in range(20):
            if self.stats["acks_received"] >= len(self.sent_chat_ids):
                break
            await asyncio.sleep(0.01)

    async def wait_or_end(self, event):
        ended = asyncio.ensure_future(self.ended.wait())
        waiting = asyncio.ensure_future(event.wait())
        await asyncio.wait([ended, waiting], return_when=asyncio.FIRST_COMPLETED)
        ended.cancel()
        waiting.cancel()
        if not event.is_set():
            raise CallFailed(self.failure or f"call ended early ({self.end_reason})")

    def report(self, negotiated, sent, sent_video, sent_audio):
        a, s = self.args, self.stats
        checks = {}
        checks["connected"] = self.connected.is_set()
        checks["no_failure"] = self.failure is None
        checks["ended_cleanly"] = self.end_reason in ("we hung up", "bye", "hangup:ended")
        checks["video_codec_h264"] = negotiated.get("video", {}).get("mime", "").lower() == "video/h264"
        checks["audio_codec_opus"] = negotiated.get("audio", {}).get("mime", "").lower() == "audio/opus"
        checks["video_frames_received"] = s["video_frames_received"] >= a.min_video_frames
        if a.expect_size:
            checks["video_size"] = s["video_size_in"] == list(a.expect_size)
        checks["audio_frames_received"] = s["audio_frames_received"] >= a.min_audio_frames
        if a.send_video:
            checks["video_packets_sent"] = sent.get("video", 0) > 0
        checks["audio_packets_sent"] = sent.get("audio", 0) > 0
        checks["chat_acked"] = s["acks_received"] == len(self.sent_chat_ids)
        if a.expect_bye:
            checks["bye_received"] = s["bye_received"]
        for text in a.expect_chat:
            checks[f"chat_received:{text}"] = text in s["chats_received"]
        ok = all(checks.values())
        summary = {
            "ok": ok,
            "name": a.name,
            "role": "caller" if a.call else "callee",
            "failure": self.failure,
            "end": self.end_reason,
            "failed_checks": [k for k, v in checks.items() if not v],
            "negotiated": negotiated,
            "connected_secs": round(time.time() - self.connected_at, 2) if self.connected_at else None,
            "remote_candidates_trickled": self.remote_candidates,
            "remote_end_of_candidates": self.remote_end_of_candidates,
            "video_frames_sent": sent_video,
            "audio_frames_sent": sent_audio,
            "rtp_packets_sent": sent,
            **{k: v for k, v in s.items() if k != "video_sizes_seen"},
        }
        if a.sdp_dir:
            for label, sdp in (("offer", self.offer_sdp), ("answer", self.answer_sdp)):
                if sdp:
                    with open(f"{a.sdp_dir}/{a.name}.{label}.sdp", "w") as f:
                        f.write(sdp)
        return ok, summary


def size_arg(text):
    w, h = text.lower().split("x")
    return int(w), int(h)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", default="ws://127.0.0.1:8787/ws")
    p.add_argument("--name", required=True)
    p.add_argument("--token")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--call", metavar="PEER_NAME", help="call this peer (by display name)")
    who.add_argument("--answer", action="store_true", help="answer the first incoming call")
    p.add_argument("--no-video", dest="send_video", action="store_false", help="send no video")
    p.add_argument("--size", type=size_arg, default=(640, 480), help="video we send, WxH")
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--tone", type=int, default=660, help="audio tone we send, Hz")
    p.add_argument("--h264-only", action="store_true",
                   help="offer only H.264 (by default aiortc offers VP8 first, like a browser)")
    p.add_argument("--chat", action="append", default=[], help="send this chat once open")
    p.add_argument("--expect-chat", action="append", default=[],
                   help="fail unless this chat text is received (repeatable)")
    p.add_argument("--expect-bye", action="store_true",
                   help="fail unless the peer says bye on the chat channel before hanging up")
    p.add_argument("--expect-size", type=size_arg, default=None, help="received video size, WxH")
    p.add_argument("--min-video-frames", type=int, default=10)
    p.add_argument("--min-audio-frames", type=int, default=25)
    p.add_argument("--duration", type=float, default=None,
                   help="hang up after this many seconds connected (default: wait for the peer)")
    p.add_argument("--timeout", type=float, default=45, help="give up after this many seconds")
    p.add_argument("--sdp-dir", help="write the offer and answer SDP here")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {args.name} %(name)s %(levelname)s %(message)s")
    if not args.verbose:
        for noisy in ("aioice", "aiortc"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    ok, summary = asyncio.run(Peer(args).run())
    print(json.dumps(summary), flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
