// Confab in a browser: joins this server with a name, shows who is online, calls and is
// called, with camera, microphone and chat. It speaks docs/protocol.md (version 2) exactly
// as any outside client would; `link.js` is one peer connection.
//
// Everything a peer or the server sends is shown with textContent, never as HTML.
// User-timing marks (`confab-join`, `confab-online`, `confab-call`, `confab-media` (the
// camera and microphone open), `confab-connected`)
// time joining and calling in the browser's performance tools (and docs/performance.md).

import { Link, h264Codecs, validChatText } from './link.js';
import { identityCertificate, ownFingerprint, remoteFingerprint, safetyCode } from './safety.js';
import { LocalMedia } from './media.js';
import { ChatView } from './chat.js';

const PROTOCOL = 2;
const OUTGOING_RING_MS = 45000;
const CONNECT_MS = 20000;
const RECONNECT_MS = [1000, 2000, 4000, 8000];

const $ = (id) => document.getElementById(id);
const ui = {
  me: $('me'), leave: $('leave'), notice: $('notice'),
  join: $('join'), joinForm: $('join-form'), name: $('name'), token: $('token'),
  joinButton: $('join-button'), joinError: $('join-error'),
  lobby: $('lobby'), peers: $('peers'), nobody: $('nobody'),
  call: $('call'), callTitle: $('call-title'), callStatus: $('call-status'), tiles: $('tiles'),
  selfView: $('self-view'), mute: $('mute'), camera: $('camera'), hangUp: $('hang-up'),
  codes: $('codes'), messages: $('messages'), chatForm: $('chat-form'), message: $('message'), send: $('send'),
  devices: $('devices'), cameraSelect: $('camera-select'), microphoneSelect: $('microphone-select'),
  devicesNote: $('devices-note'),
  incoming: $('incoming'), incomingText: $('incoming-text'), accept: $('accept'), decline: $('decline'),
};

// What the server's error codes mean, for people.
const ERRORS = {
  unauthorized: 'This server needs a token, and that one is not right. Check it and join again.',
  name_taken: 'Someone online already has that name. Choose another.',
  name_invalid: 'A name is 1 to 64 characters, without control characters.',
  protocol_mismatch: 'This server speaks another version of the Confab protocol than this page.',
  server_full: 'The server is full. Try again in a little while.',
  rate_limited: 'Too many messages too fast; the last one was dropped.',
  too_large: 'A message was too large for the server.',
  not_logged_in: 'Not signed in yet.',
  unknown_peer: 'That person is not online any more.',
  unknown_call: 'That call is over.',
  call_full: 'That call is full (six people at most).',
  not_supported: "That person's app cannot take part in group calls.",
  bad_message: 'The server refused a message from this page.',
};

const state = {
  ws: null,
  me: null, // { id, name, secret }
  token: '',
  iceServers: [],
  peers: new Map(), // id -> { id, name, busy, protocol }
  incoming: null, // a ringing offer or invitation
  call: null,
  reconnects: 0,
  signingOut: false,
  certificate: null, // a promise of this browser's identity (safety.js)
};
const local = new LocalMedia({
  selfView: ui.selfView, cameraSelect: ui.cameraSelect, microphoneSelect: ui.microphoneSelect,
  note: ui.devicesNote,
}, notice);
const chat = new ChatView(ui.messages);

// ---- Signaling ---------------------------------------------------------------------

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${scheme}//${location.host}/ws`);
  state.ws = ws;
  ws.onopen = () => {
    const hello = { type: 'hello', protocol: PROTOCOL, name: state.me.name };
    if (state.token) hello.token = state.token;
    if (state.me.id && state.me.secret) hello.resume = { id: state.me.id, secret: state.me.secret };
    ws.send(JSON.stringify(hello));
  };
  ws.onmessage = ({ data }) => {
    if (state.ws !== ws || typeof data !== 'string') return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg && typeof msg.type === 'string') receive(msg);
  };
  ws.onclose = (event) => {
    if (state.ws !== ws) return;
    state.ws = null;
    disconnected(event);
  };
}

function sendSignal(msg) {
  if (state.ws?.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(msg));
}

function receive(msg) {
  switch (msg.type) {
    case 'welcome': return welcome(msg);
    case 'peer_joined': case 'peer_updated': return rosterPut(msg.peer);
    case 'peer_left': return rosterRemove(msg.id);
    case 'offer': return incomingOffer(msg);
    case 'answer': return linkOf(msg)?.applyAnswer(msg.sdp).catch(linkError(msg.from));
    case 'candidate': return incomingCandidate(msg);
    case 'hangup': return incomingHangup(msg);
    case 'invite': return incomingInvite(msg);
    case 'members': return groupMembers(msg);
    case 'member_joined': return memberJoined(msg);
    case 'member_left': return memberLeft(msg);
    case 'error': return serverError(msg);
    default: // Messages of later versions are ignored.
  }
}

function welcome(msg) {
  performance.mark('confab-online');
  const reconnected = state.reconnects > 0;
  state.me.id = msg.id;
  state.me.secret = msg.resume_secret ?? null;
  state.iceServers = Array.isArray(msg.ice_servers) ? msg.ice_servers : [];
  state.reconnects = 0;
  state.peers.clear();
  for (const peer of Array.isArray(msg.peers) ? msg.peers : []) {
    if (validPeer(peer)) state.peers.set(peer.id, peer);
  }
  ui.joinError.textContent = '';
  ui.joinButton.disabled = false;
  ui.me.textContent = `Online as ${state.me.name}`;
  ui.leave.hidden = false;
  ui.join.hidden = true;
  ui.devices.hidden = false;
  try {
    localStorage.setItem('confab-name', state.me.name);
  } catch {
    // Storage may be off; the name is only a convenience.
  }
  if (reconnected) notice('Reconnected to the server.');
  if (!state.call) showLobby();
  renderRoster();
  local.listDevices();
}

function disconnected(event) {
  const online = state.me?.id != null;
  if (state.signingOut) return;
  // Closes the server means for good: say why and go back to the form.
  const fatal = { 1002: 'protocol_mismatch', 1008: 'unauthorized', 1013: 'server_full' };
  if (!online || fatal[event.code]) {
    ui.joinButton.disabled = false;
    if (!ui.joinError.textContent) {
      ui.joinError.textContent = event.code === 1008 && online
        ? `The server closed the connection: ${event.reason || 'policy'}.`
        : "Could not reach the server. Is it running? Try again.";
    }
    signOut(false);
    return;
  }
  // Lost: calls go on peer to peer; reconnect and take the session over.
  const delay = RECONNECT_MS[Math.min(state.reconnects, RECONNECT_MS.length - 1)];
  state.reconnects += 1;
  notice(`Lost the connection to the server; reconnecting in ${delay / 1000} s…`);
  setTimeout(() => {
    if (!state.signingOut && state.me) connect();
  }, delay);
}

function serverError(msg) {
  const words = ERRORS[msg.code] ?? 'The server refused a message.';
  const detail = typeof msg.message === 'string' && msg.message ? ` (${msg.message})` : '';
  if (!state.me?.id) {
    // Refused at join: the form says why, and a new name can be tried.
    ui.joinError.textContent = words;
    ui.joinButton.disabled = false;
    ui.name.focus();
    return;
  }
  if (state.call && msg.call_id === state.call.id && !state.call.connectedOnce
      && (msg.code === 'unknown_peer' || msg.code === 'unknown_call')) {
    endCall(`Could not call: ${words}`);
    return;
  }
  notice(`${words}${detail}`);
}

// ---- Roster ------------------------------------------------------------------------

function validPeer(peer) {
  return typeof peer?.id === 'string' && typeof peer.name === 'string' && peer.id !== state.me?.id;
}

function rosterPut(peer) {
  if (!validPeer(peer)) return;
  state.peers.set(peer.id, peer);
  renderRoster();
}

function rosterRemove(id) {
  state.peers.delete(id);
  renderRoster();
}

function nameOf(id) {
  return state.peers.get(id)?.name ?? state.call?.names.get(id) ?? 'Someone';
}

function renderRoster() {
  const peers = [...state.peers.values()].sort((a, b) => a.name.localeCompare(b.name));
  ui.nobody.hidden = peers.length > 0;
  const inCall = state.call != null;
  ui.peers.replaceChildren(...peers.map((peer) => {
    const item = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = peer.name;
    item.append(name);
    const member = inCall && state.call.names.has(peer.id);
    if (member || peer.busy) {
      const busy = document.createElement('span');
      busy.className = 'busy';
      busy.textContent = member ? 'in this call' : 'in a call';
      item.append(busy);
    }
    if (member) return item;
    const button = document.createElement('button');
    button.type = 'button';
    if (inCall) {
      button.textContent = 'Add';
      button.setAttribute('aria-label', `Add ${peer.name} to the call`);
      button.disabled = !state.call.connectedOnce || (peer.protocol ?? 1) < 2;
      button.onclick = () => invite(peer.id);
    } else {
      button.textContent = 'Call';
      button.setAttribute('aria-label', `Call ${peer.name}`);
      button.disabled = peer.busy === true;
      button.onclick = () => startCall(peer.id);
    }
    item.append(button);
    return item;
  }));
}

// ---- Media -------------------------------------------------------------------------

async function updateSentTracks() {
  const { audio, video } = local.tracks();
  for (const link of state.call?.links.values() ?? []) await link.setTracks(audio, video);
  sendStateToAll();
}

function stateMessage() {
  return { type: 'state', muted: local.muted, camera_off: local.cameraOff };
}

function sendStateToAll() {
  for (const link of state.call?.links.values() ?? []) link.send(stateMessage());
}

// ---- Calls -------------------------------------------------------------------------

function newCall(id, { group = false } = {}) {
  return {
    id,
    group,
    links: new Map(), // peer id -> Link
    names: new Map(), // peer id -> name, of everyone in the call
    tiles: new Map(), // peer id -> tile element
    ringingTo: null, // the peer an outgoing call rings
    timer: null,
    connectedOnce: false,
    startedAt: null,
    early: new Map(), // peer id -> candidates that came before its connection was made
    codes: new Map(), // peer id -> safety code element
  };
}

function browserHasH264() {
  const codecs = h264Codecs();
  if (codecs && codecs.length === 0) {
    notice('This browser offers no H.264 video (packetization mode 1, Constrained Baseline), '
      + 'which Confab calls use. Try a current Chrome, Edge, Firefox or Safari.');
    return false;
  }
  return true;
}

async function startCall(peerId) {
  if (state.incoming?.kind === 'offer' && state.incoming.from === peerId) {
    // They are calling us already: calling them back is answering.
    accept();
    return;
  }
  if (state.call || state.incoming || !browserHasH264()) return;
  performance.mark('confab-call');
  const name = nameOf(peerId);
  const call = newCall(crypto.randomUUID ? crypto.randomUUID() : randomId());
  call.names.set(peerId, name);
  call.ringingTo = peerId;
  state.call = call;
  showCall(`Calling ${name}…`, `Ringing ${name}`);
  const stream = await local.open();
  performance.mark('confab-media');
  if (state.call !== call) return;
  const link = await makeLink(call, peerId);
  if (state.call !== call) {
    // Replaced while the connection was being made (glare: we answer theirs instead).
    link.close();
    return;
  }
  call.timer = setTimeout(() => {
    if (state.call === call && call.ringingTo) {
      sendSignal({ type: 'hangup', to: peerId, call_id: call.id, reason: 'timeout' });
      endCall(`${name} did not answer.`);
    }
  }, OUTGOING_RING_MS);
  try {
    await link.offer(stream, h264Codecs());
  } catch (err) {
    endCall(`Could not start the call: ${err.message}`);
  }
}

async function makeLink(call, peerId) {
  const certificate = await state.certificate.catch(() => null);
  const link = new Link({
    iceServers: state.iceServers,
    certificate,
    signal: (msg) => sendSignal({ ...msg, to: peerId, call_id: call.id }),
    on: {
      media: (stream) => tileFor(call, peerId).video.srcObject = stream,
      connected: () => {
        linkConnected(call, peerId);
        showSafetyCode(call, peerId, link, certificate);
      },
      failed: (reason) => linkEnded(call, peerId, `The connection to ${nameOf(peerId)} failed: ${reason}.`),
      chatOpen: () => {
        link.send(stateMessage());
        updateChatForm();
      },
      chat: (msg) => {
        if (state.call === call) chat.theirs(nameOf(peerId), msg.text);
      },
      ack: (id) => {
        if (state.call === call) chat.acked(id, peerId);
      },
      peerState: (peerState) => showPeerState(call, peerId, peerState),
      bye: () => linkEnded(call, peerId, `${nameOf(peerId)} hung up.`),
      fileOffer: (msg) => {
        link.send({ type: 'file_answer', id: msg.id, accept: false });
        chat.note(`${nameOf(peerId)} offered a file, ${msg.name}; this page cannot take files yet, `
          + 'so it was declined.');
      },
    },
  });
  call.links.set(peerId, link);
  link.pendingCandidates.push(...(call.early.get(peerId) ?? []));
  call.early.delete(peerId);
  tileFor(call, peerId);
  return link;
}

function linkOf(msg) {
  return state.call?.id === msg.call_id ? state.call.links.get(msg.from) : undefined;
}

function linkError(peerId) {
  return (err) => {
    if (state.call) linkEnded(state.call, peerId, `The call with ${nameOf(peerId)} failed: ${err.message}`);
  };
}

function linkConnected(call, peerId) {
  if (state.call !== call) return;
  clearTimeout(call.timer);
  call.ringingTo = null;
  if (!call.connectedOnce) {
    call.connectedOnce = true;
    call.startedAt = Date.now();
    performance.mark('confab-connected');
  }
  ui.callStatus.textContent = 'Connected';
  renderTitle();
  renderRoster();
}

// One member's connection is over; a call of two ends with it.
function linkEnded(call, peerId, outcome, { bye = false } = {}) {
  if (state.call !== call) return;
  const link = call.links.get(peerId);
  link?.close({ bye });
  call.links.delete(peerId);
  call.tiles.get(peerId)?.root.remove();
  call.tiles.delete(peerId);
  call.codes.get(peerId)?.remove();
  call.codes.delete(peerId);
  if (call.group && (call.links.size > 0 || call.names.size > 1)) {
    call.names.delete(peerId);
    chat.note(outcome);
    renderTitle();
    renderRoster();
    return;
  }
  endCall(outcome);
}

function incomingOffer(msg) {
  const call = state.call;
  if (call && msg.call_id === call.id) {
    const link = call.links.get(msg.from);
    if (link) {
      link.reoffer(msg.sdp).catch(linkError(msg.from));
    } else if (call.group && call.names.has(msg.from)) {
      // A member of the group call we joined offers to us.
      local.open().then(async (stream) => {
        if (state.call !== call || call.links.has(msg.from)) return;
        const link = await makeLink(call, msg.from);
        await link.answer(msg.sdp, stream, h264Codecs());
      }).catch(linkError(msg.from));
    }
    return;
  }
  const incoming = { kind: 'offer', from: msg.from, name: msg.from_name || nameOf(msg.from),
    callId: msg.call_id, sdp: msg.sdp, candidates: [] };
  if (call && call.ringingTo === msg.from && !call.group) {
    // Glare: we called each other at once. The lower id keeps its call (docs/protocol.md);
    // the other cancels its own and answers, as Confab does.
    if (state.me.id < msg.from) return;
    if (call.links.size > 0) {
      sendSignal({ type: 'hangup', to: msg.from, call_id: call.id, reason: 'cancelled' });
    }
    dropCall(call);
    state.incoming = incoming;
    accept();
    return;
  }
  if (call || state.incoming) {
    sendSignal({ type: 'hangup', to: msg.from, call_id: msg.call_id, reason: 'busy' });
    return;
  }
  ring(incoming, `${incoming.name} is calling you.`);
}

function incomingInvite(msg) {
  if (state.call || state.incoming) {
    sendSignal({ type: 'hangup', to: msg.from, call_id: msg.call_id, reason: 'busy' });
    return;
  }
  const members = Array.isArray(msg.members) ? msg.members.filter(validPeer) : [];
  const others = members.filter((m) => m.id !== msg.from).map((m) => m.name);
  const withWhom = others.length ? ` with ${others.join(', ')}` : '';
  ring({ kind: 'invite', from: msg.from, name: msg.from_name || nameOf(msg.from), callId: msg.call_id,
    members }, `${msg.from_name || nameOf(msg.from)} invites you to a call${withWhom}.`);
}

function ring(incoming, text) {
  state.incoming = incoming;
  ui.incomingText.textContent = text;
  ui.incoming.hidden = false;
  ui.accept.focus();
  document.title = `Ringing: ${incoming.name} — Confab`;
}

function stopRinging() {
  state.incoming = null;
  ui.incoming.hidden = true;
  document.title = 'Confab';
}

function incomingCandidate(msg) {
  const incoming = state.incoming;
  if (incoming?.kind === 'offer' && incoming.callId === msg.call_id && incoming.from === msg.from) {
    incoming.candidates.push(msg.candidate);
    return;
  }
  const call = state.call;
  if (call?.id !== msg.call_id || !call.names.has(msg.from)) return;
  const link = call.links.get(msg.from);
  if (link) {
    link.addCandidate(msg.candidate);
  } else if (msg.candidate) {
    // A member's offer is being answered (camera opening): keep its candidates.
    if (!call.early.has(msg.from)) call.early.set(msg.from, []);
    call.early.get(msg.from).push(msg.candidate);
  }
}

async function accept() {
  const incoming = state.incoming;
  if (!incoming) return;
  stopRinging();
  if (!browserHasH264()) {
    const reason = 'declined';
    sendSignal({ type: 'hangup', to: incoming.from, call_id: incoming.callId, reason });
    return;
  }
  if (incoming.kind === 'invite') {
    const call = newCall(incoming.callId, { group: true });
    for (const member of incoming.members) {
      if (validPeer(member)) call.names.set(member.id, member.name);
    }
    state.call = call;
    showCall('Joining…', `Call with ${[...call.names.values()].join(', ')}`);
    sendSignal({ type: 'join', call_id: call.id });
    await local.open();
    return;
  }
  const call = newCall(incoming.callId);
  call.names.set(incoming.from, incoming.name);
  state.call = call;
  showCall('Connecting…', `Call with ${incoming.name}`);
  call.timer = setTimeout(() => {
    if (state.call === call && !call.connectedOnce) {
      sendSignal({ type: 'hangup', to: incoming.from, call_id: call.id, reason: 'failed' });
      endCall(`Could not connect to ${incoming.name}.`);
    }
  }, CONNECT_MS);
  const stream = await local.open();
  if (state.call !== call) return;
  const link = await makeLink(call, incoming.from);
  link.pendingCandidates.push(...incoming.candidates);
  try {
    await link.answer(incoming.sdp, stream, h264Codecs());
  } catch (err) {
    sendSignal({ type: 'hangup', to: incoming.from, call_id: call.id, reason: 'failed' });
    endCall(`Could not answer: ${err.message}`);
  }
}

function decline() {
  const incoming = state.incoming;
  if (!incoming) return;
  stopRinging();
  sendSignal({ type: 'hangup', to: incoming.from, call_id: incoming.callId, reason: 'declined' });
  notice(`You declined ${incoming.name}'s call.`);
}

function incomingHangup(msg) {
  const incoming = state.incoming;
  if (incoming && incoming.callId === msg.call_id && incoming.from === msg.from) {
    stopRinging();
    notice(msg.reason === 'timeout' ? `Missed call from ${incoming.name}.`
      : `${incoming.name} ${msg.reason === 'cancelled' ? 'cancelled' : 'ended'} the call.`);
    return;
  }
  const call = state.call;
  if (!call || call.id !== msg.call_id || !call.names.has(msg.from)) return;
  const name = nameOf(msg.from);
  const link = call.links.get(msg.from);
  // The server says `failed` when only the peer's signaling was lost: its media may still
  // flow, and the link ends by itself if it does not.
  if (msg.reason === 'failed' && link?.connected) return;
  const words = {
    declined: `${name} declined the call.`,
    busy: `${name} is in another call.`,
    cancelled: `${name} cancelled the call.`,
    ended: `${name} hung up.`,
    timeout: `${name} did not answer.`,
    failed: `The connection to ${name} failed.`,
  };
  linkEnded(call, msg.from, words[msg.reason] ?? `${name} ended the call.`);
}

function groupMembers(msg) {
  const call = state.call;
  if (!call || call.id !== msg.call_id) return;
  call.group = true;
  for (const member of Array.isArray(msg.members) ? msg.members : []) {
    if (validPeer(member)) call.names.set(member.id, member.name);
  }
  ui.callStatus.textContent = 'Connecting…';
  renderTitle();
}

async function memberJoined(msg) {
  const call = state.call;
  if (!call || call.id !== msg.call_id || !validPeer(msg.peer)) return;
  call.group = true;
  call.names.set(msg.peer.id, msg.peer.name);
  chat.note(`${msg.peer.name} joined.`);
  renderTitle();
  const stream = await local.open();
  if (state.call !== call || call.links.has(msg.peer.id)) return;
  try {
    await (await makeLink(call, msg.peer.id)).offer(stream, h264Codecs());
  } catch (err) {
    linkError(msg.peer.id)(err);
  }
}

function memberLeft(msg) {
  const call = state.call;
  if (!call || call.id !== msg.call_id) return;
  const name = nameOf(msg.id);
  const link = call.links.get(msg.id);
  if (msg.reason === 'failed' && link?.connected) return;
  linkEnded(call, msg.id, `${name} left the call.`);
}

function invite(peerId) {
  const call = state.call;
  if (!call) return;
  sendSignal({ type: 'invite', to: peerId, call_id: call.id });
  notice(`Invited ${nameOf(peerId)}.`);
}

function hangUp() {
  const call = state.call;
  if (!call) return;
  if (call.group) {
    sendSignal({ type: 'leave', call_id: call.id });
  } else {
    for (const peerId of call.names.keys()) {
      const reason = call.ringingTo ? 'cancelled' : 'ended';
      sendSignal({ type: 'hangup', to: peerId, call_id: call.id, reason });
    }
  }
  const seconds = call.startedAt ? Math.round((Date.now() - call.startedAt) / 1000) : null;
  endCall(seconds == null ? 'You hung up.' : `Call ended after ${duration(seconds)}.`, { bye: true });
}

/** Closes `call`'s connections and clears its view; the camera stays open. */
function dropCall(call, { bye = false } = {}) {
  clearTimeout(call.timer);
  for (const link of call.links.values()) link.close({ bye });
  if (state.call === call) state.call = null;
  ui.tiles.replaceChildren();
  ui.codes.replaceChildren();
  chat.clear();
}

function endCall(outcome, { bye = false } = {}) {
  const call = state.call;
  if (!call) return;
  dropCall(call, { bye });
  local.close();
  notice(outcome);
  showLobby();
  renderRoster();
}

// ---- Chat --------------------------------------------------------------------------

function sendChat(text) {
  const call = state.call;
  if (!call || !validChatText(text)) {
    if (text.trim() !== '') notice('A message is at most 4,000 characters.');
    return false;
  }
  const id = crypto.randomUUID ? crypto.randomUUID() : randomId();
  const msg = { type: 'chat', id, text, sent_at_ms: Date.now() };
  const waiting = new Set();
  for (const [peerId, link] of call.links) {
    if (link.send(msg)) waiting.add(peerId);
  }
  if (waiting.size === 0) {
    notice('The chat is not open yet.');
    return false;
  }
  chat.mine(id, text, waiting);
  return true;
}

function updateChatForm() {
  const open = [...(state.call?.links.values() ?? [])].some((l) => l.chat?.readyState === 'open');
  ui.message.disabled = !open;
  ui.send.disabled = !open;
}

// ---- Screens -----------------------------------------------------------------------

function showLobby() {
  stopRingingTitle();
  ui.call.hidden = true;
  ui.lobby.hidden = false;
  updateChatForm();
}

function showCall(status, title) {
  ui.call.hidden = false;
  ui.callStatus.textContent = status;
  ui.callTitle.textContent = title;
  ui.mute.setAttribute('aria-pressed', 'false');
  ui.camera.setAttribute('aria-pressed', 'true');
  chat.clear();
  renderRoster();
  ui.hangUp.focus();
}

function renderTitle() {
  const call = state.call;
  if (!call) return;
  const names = [...call.names.values()];
  ui.callTitle.textContent = names.length ? `Call with ${names.join(', ')}` : 'Call';
}

function stopRingingTitle() {
  if (!state.incoming) document.title = 'Confab';
}

function tileFor(call, peerId) {
  let tile = call.tiles.get(peerId);
  if (tile) return tile;
  const root = document.createElement('figure');
  root.className = 'tile';
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.setAttribute('aria-label', `${nameOf(peerId)}'s video`);
  const caption = document.createElement('figcaption');
  const name = document.createElement('span');
  name.textContent = nameOf(peerId);
  const marks = document.createElement('span');
  marks.className = 'marks';
  caption.append(name, marks);
  root.append(video, caption);
  ui.tiles.append(root);
  tile = { root, video, marks };
  call.tiles.set(peerId, tile);
  return tile;
}

// The safety code with `peerId`, once the handshake proved its certificate.
async function showSafetyCode(call, peerId, link, certificate) {
  const line = document.createElement('p');
  const name = nameOf(peerId);
  try {
    const ours = certificate && ownFingerprint(certificate);
    const theirs = ours && await remoteFingerprint(link.pc);
    if (!theirs) {
      line.textContent = `No safety code with ${name}: this browser does not show the call's `
        + 'certificates (it needs an https page, or this computer).';
    } else {
      const code = await safetyCode(ours, theirs);
      line.append(`Safety code with ${name}: `);
      const digits = document.createElement('span');
      digits.className = 'code';
      digits.textContent = code;
      line.append(digits);
    }
  } catch (err) {
    line.textContent = `No safety code with ${name}: ${err.message}`;
  }
  if (state.call !== call || call.links.get(peerId) !== link) return;
  call.codes.get(peerId)?.remove();
  call.codes.set(peerId, line);
  ui.codes.append(line);
}

function showPeerState(call, peerId, peerState) {
  const tile = call.tiles.get(peerId);
  if (!tile) return;
  const marks = [];
  if (peerState.muted) marks.push('muted');
  if (peerState.cameraOff) marks.push('camera off');
  tile.marks.textContent = marks.length ? ` (${marks.join(', ')})` : '';
  tile.root.classList.toggle('camera-off', peerState.cameraOff);
}

function notice(text) {
  ui.notice.textContent = text;
}

function signOut(byUser) {
  state.signingOut = byUser;
  if (state.call) hangUp();
  if (state.incoming) decline();
  const ws = state.ws;
  state.ws = null;
  ws?.close(1000);
  state.me = null;
  state.peers.clear();
  ui.me.textContent = '';
  ui.leave.hidden = true;
  ui.lobby.hidden = true;
  ui.call.hidden = true;
  ui.devices.hidden = true;
  ui.join.hidden = false;
  ui.joinButton.disabled = false;
  ui.name.focus();
}

function duration(seconds) {
  const m = Math.floor(seconds / 60);
  const s = String(seconds % 60).padStart(2, '0');
  return `${m}:${s}`;
}

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// ---- Wiring ------------------------------------------------------------------------

ui.joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = ui.name.value.trim();
  if (!name) {
    ui.joinError.textContent = 'Type your name first.';
    ui.name.focus();
    return;
  }
  ui.joinError.textContent = '';
  ui.joinButton.disabled = true;
  state.signingOut = false;
  state.token = ui.token.value;
  if (state.ws && state.me && !state.me.id) {
    // Refused for the name: the connection is still open for another hello.
    state.me.name = name;
    const hello = { type: 'hello', protocol: PROTOCOL, name };
    if (state.token) hello.token = state.token;
    sendSignal(hello);
    return;
  }
  state.me = { id: null, name, secret: null };
  performance.mark('confab-join');
  state.certificate ??= identityCertificate();
  connect();
});
ui.leave.addEventListener('click', () => signOut(true));
ui.accept.addEventListener('click', accept);
ui.decline.addEventListener('click', decline);
ui.incoming.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') decline();
});
ui.hangUp.addEventListener('click', hangUp);
ui.mute.addEventListener('click', () => {
  if (!state.call) return;
  local.muted = !local.muted;
  ui.mute.setAttribute('aria-pressed', String(local.muted));
  updateSentTracks();
});
ui.camera.addEventListener('click', () => {
  if (!state.call) return;
  local.setCameraOff(!local.cameraOff);
  ui.camera.setAttribute('aria-pressed', String(!local.cameraOff));
  updateSentTracks();
});
ui.chatForm.addEventListener('submit', (event) => {
  event.preventDefault();
  if (sendChat(ui.message.value)) ui.message.value = '';
});
for (const [select, kind] of [[ui.cameraSelect, 'video'], [ui.microphoneSelect, 'audio']]) {
  select.addEventListener('change', () => local.switchTo(kind, updateSentTracks));
}
navigator.mediaDevices?.addEventListener?.('devicechange', () => local.listDevices());
window.addEventListener('pagehide', () => {
  if (state.call) hangUp();
});

try {
  ui.name.value = localStorage.getItem('confab-name') ?? '';
} catch {
  // No storage: nothing to prefill.
}
if (!window.RTCPeerConnection) {
  ui.joinError.textContent = 'This browser cannot make WebRTC calls.';
  ui.joinButton.disabled = true;
}
ui.name.focus();
