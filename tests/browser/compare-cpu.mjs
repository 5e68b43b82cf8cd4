// `make compare-cpu`: the same two-way call made by Confab and by Chromium on this machine,
// side by side, and what each costs per delivered frame.
//
// Each stack calls itself through one `confab server`: two `confab headless` (the test
// pattern at 640x480@30 and a 440 Hz tone, chat, the received audio decoded into a WAV
// file as a speaker would consume it), then two headless Chromiums (Debian's, each its own
// browser process tree, on the web client with the fake camera at 640x480@30 and the fake
// microphone, chat). After the call settles, CPU is read from /proc over a window and PSS
// at its end. Prints markdown: docs/performance.md, "Side by side with Chromium".

import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { chromium } from 'playwright-core';
import {
  CHROMIUM, LOGS, browserArgs, headless, join, mediaFlows, online, openPage, receivedStats,
  startServer, until,
} from './support.mjs';

const SETTLE_MS = 5000;
const WINDOW_MS = Number(process.env.WINDOW_SECS ?? 10) * 1000;
const CALL_SECS = (SETTLE_MS + WINDOW_MS) / 1000 + 3;
const TICKS_PER_SEC = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** A process's or thread's name, parent and CPU time in seconds, from its stat file. */
function stat(file) {
  try {
    const text = readFileSync(file, 'utf8');
    const close = text.lastIndexOf(')');
    const fields = text.slice(close + 2).split(' ');
    return {
      comm: text.slice(text.indexOf('(') + 1, close),
      ppid: Number(fields[1]),
      cpu: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SEC,
    };
  } catch {
    return null; // gone in the meantime
  }
}

/** `root` and every process below it. */
function tree(root) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = stat(`/proc/${entry}/stat`);
    if (!s) continue;
    if (!children.has(s.ppid)) children.set(s.ppid, []);
    children.get(s.ppid).push(Number(entry));
  }
  const pids = [root];
  for (let i = 0; i < pids.length; i += 1) pids.push(...(children.get(pids[i]) ?? []));
  return pids;
}

/** What a process is: a thread's name for Confab, Chromium's --type (and utility kind). */
function chromiumKind(pid) {
  try {
    // Chromium's child processes rewrite their command line as one string of words.
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0 ]/);
    const type = args.find((a) => a.startsWith('--type='))?.slice(7) ?? 'browser';
    const sub = args.find((a) => a.startsWith('--utility-sub-type='))?.slice(19);
    return sub ? `${type} (${sub.replace(/\.mojom\..*/, '')})` : type;
  } catch {
    return 'gone';
  }
}

/** CPU seconds so far of every thread in `pids`, keyed by `kind(pid, thread name)`. */
function cpuBy(pids, kind) {
  const out = new Map();
  for (const pid of pids) {
    let tasks = [];
    try { tasks = readdirSync(`/proc/${pid}/task`); } catch { continue; }
    for (const tid of tasks) {
      const s = stat(`/proc/${pid}/task/${tid}/stat`);
      if (!s) continue;
      const key = kind(pid, s.comm);
      out.set(key, (out.get(key) ?? 0) + s.cpu);
    }
  }
  return out;
}

function pssMiB(pids) {
  let kib = 0;
  for (const pid of pids) {
    try {
      const line = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+)/m);
      kib += Number(line?.[1] ?? 0);
    } catch { /* gone */ }
  }
  return kib / 1024;
}

/** Cores used per key between two `cpuBy` readings over `seconds`. */
function cores(before, after, seconds) {
  const out = new Map();
  for (const [key, cpu] of after) out.set(key, (cpu - (before.get(key) ?? 0)) / seconds);
  return out;
}

const sum = (map) => [...map.values()].reduce((a, b) => a + b, 0);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const fmt = (x, digits = 3) => (x == null || Number.isNaN(x) ? 'n/a' : x.toFixed(digits));

/** Thread names with a number (tokio-runtime-w, ThreadPoolForegroundWorker 3) grouped. */
const threadGroup = (comm) => comm.replace(/[-\s]?\d+$/, '');

async function measureConfab(server) {
  const wav = (name) => path.join(LOGS, `${name}.wav`);
  const common = ['--bind', '127.0.0.1:0', '--size', '640x480', '--fps', '30'];
  const bob = headless(server, 'Bob', [...common, '--answer', '--record-audio', wav('Bob')]);
  const alice = headless(server, 'Alice', [...common, '--call', 'Bob', '--duration',
    String(CALL_SECS), '--chat', 'hello Bob', '--record-audio', wav('Alice')]);
  const peers = [alice, bob];
  // Connected, with the chat open both ways; then the same settling time Chromium gets.
  await until('the chat delivered', () => alice.out.stdout.includes('chat delivered: hello Bob'),
    30000);
  await sleep(SETTLE_MS);
  const pids = peers.map((p) => [p.child.pid]);
  const byThread = (_, comm) => threadGroup(comm);
  const before = pids.map((p) => cpuBy(p, byThread));
  await sleep(WINDOW_MS);
  const used = pids.map((p, i) => cores(before[i], cpuBy(p, byThread), WINDOW_MS / 1000));
  const pss = pids.map(pssMiB);
  const codes = await Promise.all(peers.map((p) => p.exited));
  if (codes.some((c) => c !== 0)) throw new Error(`a confab peer failed (logs in ${LOGS})`);
  const stats = peers.map((p) => p.stats());
  return peers.map((p, i) => ({
    name: p.name,
    cores: sum(used[i]),
    threads: used[i],
    fps: stats[i].video_frames_decoded / stats[i].connected_secs,
    pss: pss[i],
    size: stats[i].video_size_in?.join('x'),
    psnr: stats[i].pattern_psnr_db,
    latency: stats[i].latency_p50_ms,
  }));
}

async function measureChromium(server) {
  // Each peer its own browser (launched as a server, so that its process is known).
  const launched = await Promise.all([0, 1].map(() => chromium.launchServer({
    executablePath: CHROMIUM, args: browserArgs('fps=30'),
  })));
  try {
    const browsers = await Promise.all(launched.map((l) => chromium.connect(l.wsEndpoint())));
    const [ann, ben] = await Promise.all(browsers.map((b) => openPage(b, server)));
    await join(ann, 'Ann');
    await join(ben, 'Ben');
    await online(ann, 'Ann');
    await online(ben, 'Ben');
    await ann.getByRole('button', { name: 'Call Ben' }).click();
    await ben.getByRole('button', { name: 'Accept' }).click();
    const pages = [ann, ben];
    await Promise.all(pages.map((page) => mediaFlows(page, -1, { fromBrowser: true })));
    const message = ann.getByRole('textbox', { name: 'Message' });
    await message.fill('hello Ben');
    await message.press('Enter');
    await sleep(SETTLE_MS);
    const roots = launched.map((l) => l.process().pid);
    const frames = async () => Promise.all(pages.map(async (p) => (await receivedStats(p)).video));
    const framesBefore = await frames();
    const before = roots.map((root) => cpuBy(tree(root), chromiumKind));
    await sleep(WINDOW_MS);
    const used = roots.map((root, i) => cores(before[i], cpuBy(tree(root), chromiumKind),
      WINDOW_MS / 1000));
    const framesAfter = await frames();
    const pss = roots.map((root) => pssMiB(tree(root)));
    for (const page of pages) {
      if (page.problems.length) throw new Error(`page problems: ${page.problems.join('; ')}`);
    }
    return ['Ann', 'Ben'].map((name, i) => ({
      name,
      cores: sum(used[i]),
      threads: used[i],
      fps: (framesAfter[i].framesDecoded - framesBefore[i].framesDecoded) / (WINDOW_MS / 1000),
      pss: pss[i],
      size: `${framesAfter[i].width}x${framesAfter[i].height}`,
    }));
  } finally {
    await Promise.all(launched.map((l) => l.close()));
  }
}

function breakdown(title, peers) {
  const keys = new Set(peers.flatMap((p) => [...p.threads.keys()]));
  const rows = [...keys]
    .map((key) => [key, peers.map((p) => p.threads.get(key) ?? 0)])
    .filter(([, values]) => values.some((v) => v >= 0.0005))
    .sort((a, b) => mean(b[1]) - mean(a[1]));
  console.log(`\n${title}\n\n| | ${peers.map((p) => p.name).join(' | ')} |`);
  console.log(`|---|${peers.map(() => '---|').join('')}`);
  for (const [key, values] of rows) console.log(`| ${key} | ${values.map((v) => fmt(v)).join(' | ')} |`);
}

const server = await startServer();
try {
  const confab = await measureConfab(server);
  const browser = await measureChromium(server);
  const perFrame = (peers) => mean(peers.map((p) => p.cores / p.fps));
  console.log(`### Two-way 640x480@30 call, ${WINDOW_MS / 1000} s window, per peer\n`);
  console.log('| stack | peer | cores | frames decoded per second | size received | PSS (MiB) | received pattern PSNR (dB) | latency p50 (ms) |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const [stack, peers] of [['confab headless', confab], ['Chromium', browser]]) {
    for (const p of peers) {
      console.log(`| ${stack} | ${p.name} | ${fmt(p.cores)} | ${fmt(p.fps, 1)} | ${p.size} | ${fmt(p.pss, 0)} | ${fmt(p.psnr, 1)} | ${fmt(p.latency, 1)} |`);
    }
  }
  const ratio = perFrame(confab) / perFrame(browser);
  console.log(`\nCPU per delivered frame: confab ${fmt(perFrame(confab) * 1000, 2)} ms, `
    + `Chromium ${fmt(perFrame(browser) * 1000, 2)} ms: **confab/Chromium = ${fmt(ratio, 2)}**`);
  breakdown('Confab, cores per thread', confab);
  breakdown('Chromium, cores per process type', browser);
} finally {
  server.stop();
}
