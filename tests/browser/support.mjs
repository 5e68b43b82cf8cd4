// What the browser tests share: a real `confab server`, `confab headless` peers, and a real
// headless Chromium (Debian's, through playwright-core) with its fake camera and
// microphone, opening the web client the server serves.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(import.meta.dirname, '../..');
export const CONFAB = process.env.CONFAB_BIN
  ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, 'target'), 'debug', 'confab');
export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

/** A directory for this run's logs and stats, removed at the end unless KEEP_LOGS is set. */
export const LOGS = mkdtempSync(path.join(tmpdir(), 'confab-browser-'));
process.on('exit', (code) => {
  if (code === 0 && !process.env.KEEP_LOGS) rmSync(LOGS, { recursive: true, force: true });
  else console.error(`browser tests: logs in ${LOGS}`);
});

const children = new Set();
process.on('exit', () => children.forEach((child) => child.kill('SIGKILL')));

function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

/** Runs `confab` with `args`; resolves `exited` with its exit code. Output is kept. */
export function run(args, name, env = {}) {
  const child = spawn(CONFAB, args, {
    // Profiles (the DTLS identity) live in the run's folder, not the user's.
    env: {
      ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info', NO_COLOR: '1', XDG_DATA_HOME: LOGS,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk) => { out.stdout += chunk; });
  child.stderr.on('data', (chunk) => { out.stderr += chunk; });
  const exited = new Promise((done) => child.on('exit', (code, signal) => {
    children.delete(child);
    writeFileSync(path.join(LOGS, `${name}.log`), `${out.stderr}\n--- stdout\n${out.stdout}`);
    done(code ?? signal);
  }));
  return { child, out, exited, name };
}

/** Resolves once something accepts TCP connections on `port`. */
async function listening(port, server) {
  for (let attempt = 0; ; attempt += 1) {
    const up = await new Promise((done) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); done(true); });
      socket.once('error', () => done(false));
    });
    if (up) return;
    if (attempt > 200 || server.child.exitCode != null) {
      throw new Error(`the server did not come up: ${server.out.stderr}`);
    }
    await new Promise((done) => setTimeout(done, 50));
  }
}

/**
 * A real signaling server on a free port, listening when this resolves. With `tls`, it
 * serves https and wss (`--tls-cert`, `--tls-key`) with a certificate made for localhost.
 */
export async function startServer({ token, tls = false } = {}) {
  const port = await freePort();
  const args = ['server', '--listen', `127.0.0.1:${port}`];
  if (token) args.push('--token', token);
  if (tls) {
    const cert = path.join(LOGS, 'cert.pem');
    const key = path.join(LOGS, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
      '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-days', '1',
      '-keyout', key, '-out', cert], { stdio: 'ignore' });
    args.push('--tls-cert', cert, '--tls-key', key);
  }
  const server = run(args, tls ? 'server-tls' : 'server');
  await listening(port, server);
  const host = tls ? `localhost:${port}` : `127.0.0.1:${port}`;
  return {
    url: `${tls ? 'https' : 'http'}://${host}`,
    ws: `${tls ? 'wss' : 'ws'}://${host}/ws`,
    token,
    tls,
    stop: () => server.child.kill(),
  };
}

/** `confab headless` against `server`; its --stats JSON comes from `stats()` once it exited. */
export function headless(server, name, extra, env = {}) {
  const statsFile = path.join(LOGS, `${name}.json`);
  const video = extra.includes('--video') ? [] : ['--video', 'test-pattern'];
  const args = ['headless', '--server', server.ws, '--name', name, ...video, '--audio', 'tone:440', '--stats', statsFile, ...extra];
  if (server.token) args.push('--token', server.token);
  const peer = run(args, name, env);
  peer.stats = () => JSON.parse(readFileSync(statsFile, 'utf8'));
  return peer;
}

/** Flags for Debian's Chromium, headless, with fake devices: the fake camera (640x480) and
 * beeping microphone are configured by `fakeDevices`. */
export function browserArgs(fakeDevices) {
  return [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--use-fake-device-for-media-stream=${fakeDevices}`, '--use-fake-ui-for-media-stream',
    '--autoplay-policy=no-user-gesture-required',
  ];
}

/** The tests' Chromium, with three fake cameras (and microphones) so that the pickers have
 * a choice; `extraArgs` for more flags. */
export function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [...browserArgs('device-count=3'), ...extraArgs],
  });
}

/**
 * A new page (its own context) on `server`'s web client. The test watches the page's
 * peer connections (an init script, outside the page's CSP) to read their statistics,
 * and records script errors and dialogs: a hostile name or message that ran script would
 * open one.
 */
export async function openPage(browser, server, url = server.url) {
  // The https server's certificate is made for the test: the browser is told to take it.
  const context = await browser.newContext({ ignoreHTTPSErrors: server.tls === true });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (err) => page.problems.push(`script error: ${err.message}`));
  page.on('dialog', (dialog) => {
    page.problems.push(`dialog: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.problems.push(`console error: ${msg.text()}`);
  });
  await page.addInitScript(() => {
    const Original = window.RTCPeerConnection;
    window.testPeerConnections = [];
    window.RTCPeerConnection = class extends Original {
      constructor(...args) {
        super(...args);
        window.testPeerConnections.push(this);
      }
    };
  });
  await page.goto(url);
  return page;
}

/** Joins with `name` (and `token`) through the form, with the keyboard's Enter. */
export async function join(page, name, token) {
  await page.getByRole('textbox', { name: 'Your name' }).fill(name);
  if (token) await page.getByLabel('Server token').fill(token);
  await page.getByRole('textbox', { name: 'Your name' }).press('Enter');
}

export async function online(page, name) {
  await page.getByText(`Online as ${name}`, { exact: true }).waitFor({ timeout: 10000 });
}

/**
 * What the page's newest peer connection received: the remote video's decoded frames and
 * size, the remote audio's packets and energy.
 */
export function receivedStats(page, index = -1) {
  return page.evaluate(async (index) => {
    const pcs = window.testPeerConnections;
    const pc = pcs.at(index);
    if (!pc) return null;
    const result = { video: null, audio: null, videoCodec: null };
    const report = await pc.getStats();
    report.forEach((stat) => {
      if (stat.type !== 'inbound-rtp') return;
      // A desktop peer offers a second video stream for a shared screen, which this page
      // does not take (it stays empty): the camera's is the one that decodes.
      const more = (stat.framesDecoded ?? 0) >= (result.video?.framesDecoded ?? 0);
      if (stat.kind === 'video' && more) {
        result.video = { framesDecoded: stat.framesDecoded ?? 0, width: stat.frameWidth,
          height: stat.frameHeight };
        result.videoCodec = report.get(stat.codecId)?.mimeType ?? null;
      } else if (stat.kind === 'audio') {
        result.audio = { packets: stat.packetsReceived ?? 0, energy: stat.totalAudioEnergy ?? 0 };
      }
    });
    return result;
  }, index);
}

/** A virtual X display of `width` x `height` (Xvfb picks a free number), for a desktop peer
 * that shares its screen. */
export async function startXvfb(width, height) {
  const child = spawn('Xvfb', ['-displayfd', '1', '-nolisten', 'tcp', '-noreset', '-screen', '0',
    `${width}x${height}x24`], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.add(child);
  const number = await new Promise((done, fail) => {
    let text = '';
    child.stdout.on('data', (chunk) => {
      text += chunk;
      if (text.includes('\n')) done(text.trim());
    });
    child.on('exit', () => fail(new Error('Xvfb did not start')));
  });
  return {
    display: `:${number}`,
    stop: () => {
      children.delete(child);
      child.kill();
    },
  };
}

/** Waits until `check()` returns something truthy, polling every 100 ms. */
export async function until(what, check, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

/**
 * Waits until the page's connection received 30 frames and 50 audio packets with sound in
 * them. The picture is 640x480: from Confab always; from another Chromium (`fromBrowser`)
 * possibly smaller with the same aspect, as Chromium steps the size down while its CPU is
 * short (two browsers encoding on two cores) and up again seconds later.
 */
export function mediaFlows(page, index = -1, { fromBrowser = false } = {}) {
  return until('video and audio from the peer', async () => {
    const stats = await receivedStats(page, index);
    const { width, height } = stats?.video ?? {};
    const sized = fromBrowser ? width <= 640 && width * 3 === height * 4
      : width === 640 && height === 480;
    const ok = stats?.video?.framesDecoded >= 30 && sized && stats.audio?.packets >= 50
      && stats.audio.energy > 0;
    return ok ? stats : null;
  });
}
