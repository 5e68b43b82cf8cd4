// This browser's identity (one DTLS certificate, kept in IndexedDB so that it stays the
// same from call to call) and the safety code of docs/protocol.md ("Safety codes"), which
// two people compare to check that nobody is in the middle.

const DB = 'confab';
const STORE = 'identity';
const KEY = 'certificate';
const ROUNDS = 5200;
const LABEL = new TextEncoder().encode('confab-safety-code-v1');
const DAY_MS = 24 * 3600 * 1000;
// Made to last this long (browsers allow up to a year), and renewed this long before it
// expires, so that a call never starts on an expired one.
const LIFETIME_MS = 360 * DAY_MS;
const RENEW_MS = 7 * DAY_MS;

function request(req) {
  return new Promise((done, fail) => {
    req.onsuccess = () => done(req.result);
    req.onerror = () => fail(req.error);
  });
}

async function openStore() {
  const open = indexedDB.open(DB, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(STORE);
  return request(open);
}

/** The certificate every call of this browser presents: the stored one, or a new one
 * (ECDSA P-256, as Confab's) stored for next time. Storage refused: one for this page. */
export async function identityCertificate() {
  let db = null;
  try {
    db = await openStore();
    const stored = await request(db.transaction(STORE).objectStore(STORE).get(KEY));
    if (stored instanceof RTCCertificate && stored.expires - Date.now() > RENEW_MS) return stored;
  } catch (err) {
    console.debug('no stored identity:', err);
  }
  const made = await RTCPeerConnection.generateCertificate({
    name: 'ECDSA', namedCurve: 'P-256', expires: LIFETIME_MS,
  });
  try {
    await request(db?.transaction(STORE, 'readwrite').objectStore(STORE).put(made, KEY));
  } catch (err) {
    console.debug('identity not stored:', err);
  }
  return made;
}

/** The SHA-256 fingerprint of `certificate` (an RTCCertificate) as 32 bytes. */
export function ownFingerprint(certificate) {
  const sha256 = certificate.getFingerprints?.().find((f) => f.algorithm.toLowerCase() === 'sha-256');
  return sha256 ? fromHex(sha256.value) : null;
}

/** The SHA-256 fingerprint of the certificate the peer presented in the DTLS handshake,
 * or null when this browser does not tell (or the page is not a secure context). */
export async function remoteFingerprint(pc) {
  const transport = pc.getSenders().find((s) => s.transport)?.transport ?? pc.sctp?.transport;
  if (!transport?.getRemoteCertificates || !crypto.subtle) return null;
  // The connection may report `connected` a moment before its DTLS transport does.
  if (transport.state !== 'connected') {
    await new Promise((done) => {
      const check = () => {
        if (transport.state !== 'new' && transport.state !== 'connecting') done();
      };
      transport.addEventListener('statechange', check);
      setTimeout(done, 5000);
    });
  }
  const certificates = transport.getRemoteCertificates();
  if (!certificates.length) return null;
  return new Uint8Array(await crypto.subtle.digest('SHA-256', certificates[0]));
}

/** The 60-digit safety code of two fingerprints, in 12 groups of 5. */
export async function safetyCode(ours, theirs) {
  const halves = [await digits(ours), await digits(theirs)].sort();
  return halves.join('').match(/\d{5}/g).join(' ');
}

async function digits(fingerprint) {
  let hash = await sha512(LABEL, fingerprint);
  for (let round = 1; round < ROUNDS; round += 1) hash = await sha512(hash, fingerprint);
  let out = '';
  for (let group = 0; group < 6; group += 1) {
    let value = 0n;
    for (const byte of hash.subarray(group * 5, group * 5 + 5)) value = (value << 8n) | BigInt(byte);
    out += String(value % 100000n).padStart(5, '0');
  }
  return out;
}

async function sha512(a, b) {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return new Uint8Array(await crypto.subtle.digest('SHA-512', joined));
}

function fromHex(text) {
  const hex = text.replace(/:/g, '');
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return null;
  return Uint8Array.from(hex.match(/../g), (pair) => parseInt(pair, 16));
}
