// One WebRTC connection with one other person, as docs/protocol.md ("Peer to peer: media
// and chat") describes it: a call of two has one; a group call one per other member.
// It knows nothing of the page: it reports what happens through the handlers it is given.

const H264_PROFILES = ['42e01f', '42001f'];
// A receiver ignores chat-channel messages larger than this (docs/protocol.md).
const MAX_CHAT_MESSAGE_BYTES = 24256;
const MAX_CHAT_CHARS = 4000;
const MAX_ID_BYTES = 64;
// A connected call whose connection stays `disconnected` this long ends `failed`.
const DISCONNECTED_MS = 10000;

const encoder = new TextEncoder();
const byteLength = (text) => encoder.encode(text).length;

/** The H.264 codecs (packetization-mode 1, Constrained Baseline) this browser can receive,
 * best first, followed by RTX; an empty list when it has none; null when it cannot tell. */
export function h264Codecs() {
  const caps = globalThis.RTCRtpReceiver?.getCapabilities?.('video');
  if (!caps) return null;
  const fmtp = (codec) => (codec.sdpFmtpLine || '').toLowerCase();
  const h264 = caps.codecs.filter((codec) =>
    codec.mimeType.toLowerCase() === 'video/h264'
    && fmtp(codec).includes('packetization-mode=1')
    && H264_PROFILES.some((p) => fmtp(codec).includes(`profile-level-id=${p}`)));
  if (h264.length === 0) return [];
  const rank = (codec) => H264_PROFILES.findIndex((p) => fmtp(codec).includes(p));
  h264.sort((a, b) => rank(a) - rank(b));
  return h264.concat(caps.codecs.filter((codec) => codec.mimeType.toLowerCase() === 'video/rtx'));
}

/** Chat text the protocol allows: 1 to 4,000 characters, not only white space. */
export function validChatText(text) {
  return typeof text === 'string' && text.trim() !== '' && [...text].length <= MAX_CHAT_CHARS;
}

export class Link {
  /**
   * @param {object} options
   * @param {RTCIceServer[]} options.iceServers
   * @param {RTCCertificate | null} options.certificate this browser's identity
   * @param {(msg: object) => void} options.signal sends `offer`, `answer` or `candidate`
   *   (without `to` and `call_id`, which the caller adds)
   * @param {object} options.on handlers: media(stream), connected(), failed(reason),
   *   chatOpen(), chat(msg), ack(id), peerState(state), bye(), fileOffer(msg)
   */
  constructor({ iceServers, certificate, signal, on }) {
    this.on = on;
    this.signal = signal;
    const certificates = certificate ? [certificate] : undefined;
    this.pc = new RTCPeerConnection({ iceServers, certificates, bundlePolicy: 'max-bundle' });
    this.remoteStream = new MediaStream();
    this.pendingCandidates = [];
    this.chat = null;
    this.connected = false;
    this.closed = false;
    this.downTimer = null;

    this.pc.onicecandidate = ({ candidate }) => {
      this.signal({
        type: 'candidate',
        candidate: candidate && {
          candidate: candidate.candidate,
          sdp_mid: candidate.sdpMid,
          sdp_m_line_index: candidate.sdpMLineIndex,
          username_fragment: candidate.usernameFragment,
        },
      });
    };
    this.pc.ontrack = ({ track, transceiver }) => {
      // A desktop peer's offer has a second video section for a shared screen. This page
      // does not say it takes one (no `screen` in its `state`), so a screen comes on the
      // camera's stream instead: the second section carries nothing and is not shown.
      if (!this.isMain(transceiver)) return;
      this.remoteStream.addTrack(track);
      this.on.media(this.remoteStream);
    };
    this.pc.ondatachannel = ({ channel }) => {
      if (channel.label === 'chat' && !this.chat) {
        this.useChat(channel);
      } else {
        // A file transfer (`file:ID`) this page never accepted, or anything else.
        channel.close();
      }
    };
    this.pc.onconnectionstatechange = () => this.connectionChanged();
  }

  /** Starts the call: both transceivers, the chat channel, and the offer. */
  async offer(stream, codecs) {
    for (const kind of ['audio', 'video']) {
      const track = stream?.getTracks().find((t) => t.kind === kind) ?? null;
      const transceiver = this.pc.addTransceiver(track ?? kind, {
        direction: 'sendrecv',
        streams: stream ? [stream] : [],
      });
      if (kind === 'video') preferCodecs(transceiver, codecs);
    }
    this.useChat(this.pc.createDataChannel('chat', { ordered: true }));
    await this.pc.setLocalDescription(await this.pc.createOffer());
    this.signal({ type: 'offer', sdp: this.pc.localDescription.sdp });
  }

  /** Whether `transceiver` is the first of its kind: the camera's or the microphone's. */
  isMain(transceiver) {
    const kind = transceiver.receiver.track.kind;
    return this.pc.getTransceivers().find((t) => t.receiver.track.kind === kind) === transceiver;
  }

  /** Answers the first offer, sending `stream`'s tracks. */
  async answer(sdp, stream, codecs) {
    await this.pc.setRemoteDescription({ type: 'offer', sdp });
    for (const transceiver of this.pc.getTransceivers()) {
      const kind = transceiver.receiver.track.kind;
      if (!this.isMain(transceiver)) {
        // The screen's section (see ontrack): accepted, nothing sent on it.
        transceiver.direction = 'recvonly';
        continue;
      }
      const track = stream?.getTracks().find((t) => t.kind === kind) ?? null;
      transceiver.direction = 'sendrecv';
      await transceiver.sender.replaceTrack(track);
      if (stream) transceiver.sender.setStreams?.(stream);
      if (kind === 'video') preferCodecs(transceiver, codecs);
    }
    await this.sendAnswer();
  }

  /** A later offer in the same call (an ICE restart, or a renegotiation). */
  async reoffer(sdp) {
    await this.pc.setRemoteDescription({ type: 'offer', sdp });
    await this.sendAnswer();
  }

  async sendAnswer() {
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    this.signal({ type: 'answer', sdp: this.pc.localDescription.sdp });
    await this.flushCandidates();
  }

  async applyAnswer(sdp) {
    if (this.pc.signalingState !== 'have-local-offer') return;
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
    await this.flushCandidates();
  }

  /** A trickled candidate (`null`: the peer has no more), kept until the offer or answer
   * it belongs to is applied. */
  async addCandidate(candidate) {
    if (!candidate) return;
    if (!this.pc.remoteDescription) {
      this.pendingCandidates.push(candidate);
      return;
    }
    try {
      await this.pc.addIceCandidate({
        candidate: candidate.candidate,
        sdpMid: candidate.sdp_mid ?? null,
        sdpMLineIndex: candidate.sdp_m_line_index ?? null,
        usernameFragment: candidate.username_fragment ?? null,
      });
    } catch (err) {
      // A candidate of an older ICE generation, or one this browser cannot use.
      console.debug('candidate ignored:', err);
    }
  }

  async flushCandidates() {
    const pending = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const candidate of pending) await this.addCandidate(candidate);
  }

  /** Sends `stream`'s tracks from now on (another camera, or none while it is off). */
  async setTracks(audio, video) {
    for (const transceiver of this.pc.getTransceivers()) {
      if (transceiver.stopped || transceiver.currentDirection === 'stopped') continue;
      if (!this.isMain(transceiver)) continue;
      const kind = transceiver.receiver.track.kind;
      await transceiver.sender.replaceTrack(kind === 'audio' ? audio : video);
    }
  }

  useChat(channel) {
    this.chat = channel;
    channel.onopen = () => this.on.chatOpen();
    channel.onmessage = ({ data }) => this.chatMessage(data);
  }

  chatMessage(data) {
    if (typeof data !== 'string' || byteLength(data) > MAX_CHAT_MESSAGE_BYTES) return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    const okId = typeof msg.id === 'string' && msg.id !== '' && byteLength(msg.id) <= MAX_ID_BYTES;
    switch (msg.type) {
      case 'chat':
        if (!okId || !validChatText(msg.text)) return;
        this.send({ type: 'ack', id: msg.id });
        this.on.chat(msg);
        break;
      case 'ack':
        if (okId) this.on.ack(msg.id);
        break;
      case 'state':
        this.on.peerState({ muted: msg.muted === true, cameraOff: msg.camera_off === true });
        break;
      case 'bye':
        this.on.bye();
        break;
      case 'file_offer':
        if (okId && typeof msg.name === 'string') this.on.fileOffer(msg);
        break;
      default:
        // Unknown types (and file messages of transfers we are not part of) are ignored.
    }
  }

  /** Sends one chat-channel message; false when the channel is not open. */
  send(msg) {
    if (this.chat?.readyState !== 'open') return false;
    this.chat.send(JSON.stringify(msg));
    return true;
  }

  connectionChanged() {
    const state = this.pc.connectionState;
    if (state === 'connected') {
      clearTimeout(this.downTimer);
      this.downTimer = null;
      if (!this.connected) {
        this.connected = true;
        this.on.connected();
      }
    } else if (state === 'disconnected' && this.connected && !this.downTimer) {
      this.downTimer = setTimeout(() => this.on.failed('the connection was lost'), DISCONNECTED_MS);
    } else if (state === 'failed') {
      this.on.failed(this.connected ? 'the connection was lost' : 'could not connect');
    }
  }

  /** Says `bye` (when hanging up) and closes everything. */
  close({ bye = false } = {}) {
    if (this.closed) return;
    this.closed = true;
    if (bye) this.send({ type: 'bye' });
    clearTimeout(this.downTimer);
    this.pc.onconnectionstatechange = null;
    // Let the bye leave before the transport goes.
    const chat = this.chat;
    const pc = this.pc;
    const finish = () => {
      chat?.close();
      pc.close();
    };
    if (bye && chat?.readyState === 'open' && chat.bufferedAmount > 0) {
      chat.bufferedAmountLowThreshold = 0;
      chat.onbufferedamountlow = finish;
      setTimeout(finish, 500);
    } else {
      finish();
    }
  }
}

function preferCodecs(transceiver, codecs) {
  if (!codecs || codecs.length === 0 || !transceiver.setCodecPreferences) return;
  try {
    transceiver.setCodecPreferences(codecs);
  } catch (err) {
    console.debug('codec preferences not applied:', err);
  }
}
