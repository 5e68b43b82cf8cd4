// A guest in a browser and a desktop Confab call each other through the web client that
// the signaling server serves: real Chromium, real `confab server`, real `confab headless`.
// Run with `make browser` (part of `make test`).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  headless, join, launchBrowser, mediaFlows, online, openPage, receivedStats, startServer,
  startXvfb, until,
} from './support.mjs';

const TOKEN = 'letmein';
const HOSTILE = '<img src=x onerror=alert(1)>';
let server;
let browser;

before(async () => {
  server = await startServer({ token: TOKEN });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.stop();
});

/** A page on the test server, joined as `name`. */
async function guest(name) {
  const page = await openPage(browser, server);
  await join(page, name, TOKEN);
  await online(page, name);
  return page;
}

/** The page ran no foreign script and logged no error; it is closed. */
async function finish(page) {
  assert.deepEqual(page.problems, []);
  await page.context().close();
}

// Numbers for docs/performance.md, printed at the end.
const measured = {};

/**
 * What the desktop peer received. Its last picture has the size the browser was sending
 * at the end (`sent`, from the browser's own statistics): the camera's 640x480, or less
 * when Chromium steps down because its CPU or the network is short.
 */
function checkDesktopStats(stats, who, sent) {
  assert.equal(stats.end_reason, 'ended', `${who} ended cleanly`);
  assert.ok(stats.video_frames_decoded >= 30, `${who} decoded ${stats.video_frames_decoded} frames`);
  assert.deepEqual(stats.video_size_in, [sent.width, sent.height],
    `${who} received the size the browser sent (limited by: ${sent.limitation})`);
  assert.ok(stats.audio_packets_received >= 50, `${who} got ${stats.audio_packets_received} audio packets`);
  assert.ok(stats.chats_received >= 1, `${who} got the browser's chat`);
}

/** Presses the toggle `name` twice: `kind` stops being sent, then is sent again; the
 * button's pressed state follows (pressed while off for Mute, while on for Camera). */
async function toggleSending(page, name, kind, { pressedWhileOff }) {
  const button = page.getByRole('button', { name });
  const sending = () => page.evaluate((kind) => window.testPeerConnections.at(-1).getSenders()
    .some((sender) => sender.track?.kind === kind), kind);
  assert.equal(await button.getAttribute('aria-pressed'), String(!pressedWhileOff));
  await button.click();
  assert.equal(await button.getAttribute('aria-pressed'), String(pressedWhileOff));
  await until(`${kind} to stop being sent`, async () => !(await sending()));
  await button.click();
  await until(`${kind} to be sent again`, sending);
}

/** The browser's own account of the video it sends: the size of its last frame, and what
 * limits it (`cpu`, `bandwidth`, `none`); null once its connection is closed. */
function sentVideo(page) {
  return page.evaluate(async () => {
    const report = await window.testPeerConnections.at(-1).getStats();
    const out = [...report.values()].find((s) => s.type === 'outbound-rtp' && s.kind === 'video'
      && s.frameWidth);
    return out ? { width: out.frameWidth, height: out.frameHeight,
      limitation: out.qualityLimitationReason ?? 'none' } : null;
  });
}

test('a browser guest calls a desktop user: media and chat both ways, then hangs up', async () => {
  const desk = headless(server, 'Desk', ['--answer', '--echo-chat', '--chat', `${HOSTILE} from Desk`]);
  const page = await guest('Guest');
  // The token went over the WebSocket only: never into the page's address.
  assert.ok(!page.url().includes(TOKEN), page.url());
  Object.assign(measured, await page.evaluate(() => {
    const navigation = performance.getEntriesByType('navigation')[0];
    const entries = [navigation, ...performance.getEntriesByType('resource')];
    const mark = (name) => performance.getEntriesByName(name)[0]?.startTime;
    return {
      pageBytes: entries.reduce((sum, entry) => sum + (entry.decodedBodySize ?? 0), 0),
      loadMs: navigation.loadEventEnd,
      joinToOnlineMs: mark('confab-online') - mark('confab-join'),
    };
  }));

  const callDesk = page.getByRole('button', { name: 'Call Desk' });
  await callDesk.waitFor({ timeout: 15000 });
  await callDesk.click();
  await page.getByRole('status').filter({ hasText: 'Connected' }).waitFor({ timeout: 20000 });
  Object.assign(measured, await page.evaluate(() => {
    const mark = (name) => performance.getEntriesByName(name)[0].startTime;
    return {
      callSetupMs: mark('confab-connected') - mark('confab-call'),
      mediaOpenMs: mark('confab-media') - mark('confab-call'),
    };
  }));
  // The pickers list the (fake) camera and microphone the call uses.
  for (const name of ['Camera source', 'Microphone source']) {
    const picker = page.getByRole('combobox', { name });
    assert.ok(await picker.locator('option').count() >= 1, name);
    assert.notEqual(await picker.inputValue(), '', `${name} names the device in use`);
  }

  const received = await mediaFlows(page);
  assert.equal(received.videoCodec, 'video/H264');

  // Desk's message is shown as text: no element made of it, no script run.
  await page.locator('#messages').getByText(`${HOSTILE} from Desk`).waitFor();
  assert.equal(await page.locator('#messages img').count(), 0);

  const message = page.getByRole('textbox', { name: 'Message' });
  await message.fill('hello from the browser');
  await message.press('Enter');
  await page.locator('#messages').getByText('echo: hello from the browser').waitFor();
  await page.locator('#messages [aria-label="delivered"]').waitFor();
  await until('Desk printed the chat', () => desk.out.stdout.includes('chat: hello from the browser'));

  // The page and Desk derive the same safety code, the page from the certificate it keeps
  // in IndexedDB: the one its connection presented.
  await page.locator('#codes p').waitFor({ state: 'attached' });
  assert.match(await page.locator('#codes p').textContent(), /^Safety code with Desk: /);
  const pageCode = await page.locator('#codes .code').textContent();
  const deskCode = desk.out.stdout.match(/safety code with Guest: ([\d ]+)/)?.[1];
  assert.match(pageCode, /^(\d{5} ){11}\d{5}$/);
  assert.equal(pageCode, deskCode);
  const fingerprints = await page.evaluate(async () => {
    const { identityCertificate } = await import('/safety.js');
    const stored = (await identityCertificate()).getFingerprints()[0].value.toUpperCase();
    const sdp = window.testPeerConnections.at(-1).localDescription.sdp;
    return { stored, sent: sdp.match(/a=fingerprint:sha-256 (\S+)/)[1].toUpperCase() };
  });
  assert.equal(fingerprints.stored, fingerprints.sent);

  // Mute: the microphone's track leaves the sender; unmute brings it back. Camera off:
  // nothing is sent on the video sender; on again: the camera is back.
  await toggleSending(page, 'Mute', 'audio', { pressedWhileOff: true });
  await toggleSending(page, 'Camera', 'video', { pressedWhileOff: false });

  // Another camera chosen mid-call: its picture goes out on the same sender.
  const picker = page.getByRole('combobox', { name: 'Camera source' });
  // Chromium's fake cameras: 0 gives I420 frames, 1 is a depth camera (Y16, which WebRTC
  // does not send), 2 gives MJPEG.
  const other = await picker.evaluate((select) =>
    [...select.options].find((o) => o.textContent === 'fake_device_2')?.value);
  assert.ok(other, 'Chromium offers a third fake camera');
  await picker.selectOption(other);
  const framesSent = () => page.evaluate(async (wanted) => {
    const pc = window.testPeerConnections.at(-1);
    const sender = pc.getSenders().find((s) => s.track?.kind === 'video');
    if (sender?.track.getSettings().deviceId !== wanted) return null;
    const report = await pc.getStats();
    return [...report.values()].find((s) => s.type === 'outbound-rtp' && s.kind === 'video')
      ?.framesSent ?? 0;
  }, other);
  const before = await until('the chosen camera on the sender', framesSent);
  await until('frames from the chosen camera', async () => (await framesSent()) >= before + 30);

  // Three seconds of the browser's camera reached Desk before the browser hangs up.
  await until('90 frames sent', () => page.evaluate(async () => {
    const report = await window.testPeerConnections.at(-1).getStats();
    return [...report.values()].some((s) => s.type === 'outbound-rtp' && s.kind === 'video'
      && s.framesSent >= 90);
  }));
  const sent = await sentVideo(page);
  await page.getByRole('button', { name: 'Hang up' }).click();
  await page.getByText(/^Call ended after/).waitFor();
  assert.equal(await desk.exited, 0, desk.out.stderr);
  checkDesktopStats(desk.stats(), 'Desk', sent);
  await finish(page);
});

test('a desktop user calls a browser guest, who answers with the keyboard', async () => {
  const page = await guest('Guest2');
  const desk = headless(server, 'Desk2', ['--call', 'Guest2', '--duration', '4', '--echo-chat',
    '--chat', 'hello from Desk2']);

  const dialog = page.getByRole('alertdialog');
  await dialog.getByText('Desk2 is calling you.').waitFor({ timeout: 15000 });
  const accept = page.getByRole('button', { name: 'Accept' });
  await page.getByRole('button', { name: 'Decline' }).waitFor();
  // The dialog takes the keyboard focus, on Accept.
  await until('Accept to have the focus', () => accept.evaluate((el) => el === document.activeElement));
  await page.keyboard.press('Enter');

  await mediaFlows(page);
  await page.locator('#messages').getByText('hello from Desk2').waitFor();

  const message = page.getByRole('textbox', { name: 'Message' });
  await message.fill('hi Desk2');
  await message.press('Enter');
  await page.locator('#messages').getByText('echo: hi Desk2').waitFor();
  await page.locator('#messages [aria-label="delivered"]').waitFor();

  // Desk2 hangs up after 4 s; the page says so. Until then, the browser says what it sent.
  let sent = await sentVideo(page);
  const watch = setInterval(async () => {
    sent = (await sentVideo(page).catch(() => null)) ?? sent;
  }, 200);
  assert.equal(await desk.exited, 0, desk.out.stderr);
  clearInterval(watch);
  await page.getByText('Desk2 hung up.').waitFor({ timeout: 15000 });
  checkDesktopStats(desk.stats(), 'Desk2', sent);
  assert.match(desk.out.stdout, /chat delivered: hello from Desk2/);
  await finish(page);
});

test('a desktop user shares a screen with a browser guest, who sees it instead of the camera', async () => {
  const screen = await startXvfb(800, 600);
  const page = await guest('Guest8');
  const desk = headless(server, 'Desk8', ['--call', 'Guest8', '--video', 'screen:0',
    '--duration', '5'], { DISPLAY: screen.display, WAYLAND_DISPLAY: '' });
  await page.getByRole('button', { name: 'Accept' }).click({ timeout: 15000 });
  // The page does not say it takes a second picture: the screen comes on the camera's
  // stream, at the screen's size.
  await until('the shared screen at its size', async () => {
    const { video } = (await receivedStats(page)) ?? {};
    return video?.framesDecoded >= 5 && video.width === 800 && video.height === 600;
  });
  assert.equal(await desk.exited, 0, desk.out.stderr);
  const stats = desk.stats();
  assert.ok(stats.screen_frames_sent >= 5, `Desk8 sent ${stats.screen_frames_sent} screen frames`);
  assert.equal(stats.video_frames_sent, 0, 'no camera: --video screen sends only the screen');
  screen.stop();
  await finish(page);
});

test('a browser guest declines a call with the keyboard, and the caller is told', async () => {
  const page = await guest('Busy guest');
  const desk = headless(server, 'Desk6', ['--call', 'Busy guest']);
  await page.getByText('Desk6 is calling you.').waitFor({ timeout: 15000 });
  await page.keyboard.press('Escape');
  await page.getByText("You declined Desk6's call.").waitFor();
  await desk.exited;
  assert.equal(desk.stats().end_reason, 'declined');
  // Nothing was set up for a call that was not accepted.
  assert.equal(await page.evaluate(() => window.testPeerConnections.length), 0);
  await finish(page);
});

test('a browser guest joins a group call of two desktop users', async () => {
  const page = await guest('Guest3');
  const bob = headless(server, 'Bob', ['--answer', '--duration', '12']);
  const alice = headless(server, 'Alice', ['--call', 'Bob', '--call', 'Guest3', '--duration', '8']);

  await page.getByText('Alice invites you to a call with Bob.').waitFor({ timeout: 20000 });
  await page.getByRole('button', { name: 'Accept' }).click();
  // One connection to each member, both with video and sound.
  await until('two peer connections', () => page.evaluate(() => window.testPeerConnections.length === 2));
  await mediaFlows(page, 0);
  await mediaFlows(page, 1);
  await page.getByRole('heading', { name: 'Call with Alice, Bob' }).waitFor();

  assert.equal(await alice.exited, 0, alice.out.stderr);
  await page.getByText('Alice left the call.').waitFor({ timeout: 15000 });
  const stats = alice.stats();
  const fromGuest = stats.participants?.find((p) => p.name === 'Guest3');
  assert.ok(fromGuest, `Alice's stats name Guest3: ${JSON.stringify(stats.participants)}`);
  assert.ok(fromGuest.video_frames_decoded >= 30, `Alice decoded ${fromGuest.video_frames_decoded} of Guest3's frames`);
  await page.getByRole('button', { name: 'Hang up' }).click();
  assert.equal(await bob.exited, 0, bob.out.stderr);
  await finish(page);
});

test('a browser guest adds a desktop user to its call, which becomes a group call', async () => {
  const page = await guest('Host');
  const desk = headless(server, 'Desk7', ['--answer', '--duration', '12']);
  const carol = headless(server, 'Carol7', ['--answer', '--duration', '5']);
  await page.getByRole('button', { name: 'Call Desk7' }).click();
  await mediaFlows(page, 0);
  const add = page.getByRole('button', { name: 'Add Carol7 to the call' });
  await until('Add to be enabled once connected', () => add.isEnabled());
  await add.click();
  // The page offers to Carol7 when the server says she joined; Desk7 does too.
  await until('a second peer connection', () => page.evaluate(() => window.testPeerConnections.length === 2));
  await mediaFlows(page, 1);
  await page.getByRole('heading', { name: 'Call with Desk7, Carol7' }).waitFor();
  assert.equal(await carol.exited, 0, carol.out.stderr);
  const seen = Object.fromEntries(carol.stats().participants.map((p) => [p.name, p.video_frames_decoded]));
  assert.ok(seen.Host >= 30 && seen.Desk7 >= 30, `Carol7 decoded ${JSON.stringify(seen)}`);
  await page.getByText('Carol7 left the call.').waitFor({ timeout: 15000 });
  await page.getByRole('button', { name: 'Hang up' }).click();
  assert.equal(await desk.exited, 0, desk.out.stderr);
  await finish(page);
});

test('two browsers that call each other at the same moment end up in one call', async () => {
  const [ann, ben] = [await guest('Glare Ann'), await guest('Glare Ben')];
  const callAnn = ben.getByRole('button', { name: 'Call Glare Ann' });
  const callBen = ann.getByRole('button', { name: 'Call Glare Ben' });
  await Promise.all([callAnn.waitFor(), callBen.waitFor()]);
  await Promise.all([callBen.click(), callAnn.click()]);
  // The higher id cancels its own call and answers the other: one call, media both ways.
  await mediaFlows(ann, -1, { fromBrowser: true });
  await mediaFlows(ben, -1, { fromBrowser: true });
  for (const page of [ann, ben]) {
    await page.getByRole('status').filter({ hasText: 'Connected' }).waitFor();
    assert.equal(await page.locator('#tiles figure').count(), 1);
  }
  await ann.getByRole('button', { name: 'Hang up' }).click();
  await ben.getByText('Glare Ann hung up.').waitFor();
  await finish(ann);
  await finish(ben);
});

test('a wrong token and a hostile name are told and shown as text', async () => {
  const careful = await openPage(browser, server);
  await join(careful, 'Careful', 'wrong');
  await careful.getByRole('alert').filter({ hasText: 'token' }).waitFor();
  assert.match(await careful.getByRole('alert').textContent(), /needs a token, and that one is not right/);
  await careful.getByLabel('Server token').fill(TOKEN);
  await careful.getByRole('textbox', { name: 'Your name' }).press('Enter');
  await online(careful, 'Careful');

  const hostile = await openPage(browser, server);
  await join(hostile, HOSTILE, TOKEN);
  await online(hostile, HOSTILE);
  await careful.getByRole('button', { name: `Call ${HOSTILE}` }).waitFor();
  await careful.locator('#peers').getByText(HOSTILE, { exact: true }).waitFor();
  assert.equal(await careful.locator('#peers img').count(), 0);

  // A name already online is refused in words, and another one can be tried.
  const twin = await openPage(browser, server);
  await join(twin, 'careful', TOKEN);
  await twin.getByRole('alert').filter({ hasText: 'already has that name' }).waitFor();
  await twin.getByRole('textbox', { name: 'Your name' }).fill('Careful too');
  await twin.getByRole('textbox', { name: 'Your name' }).press('Enter');
  await online(twin, 'Careful too');

  for (const page of [careful, hostile, twin]) {
    assert.deepEqual(page.problems, []);
    await page.context().close();
  }
});

test('a browser without H.264 is told why instead of calling', async () => {
  const page = await openPage(browser, server);
  await page.addInitScript(() => {
    const original = RTCRtpReceiver.getCapabilities;
    RTCRtpReceiver.getCapabilities = (kind) => {
      const caps = original.call(RTCRtpReceiver, kind);
      if (kind === 'video' && caps) caps.codecs = caps.codecs.filter((c) => !/h264/i.test(c.mimeType));
      return caps;
    };
  });
  await page.reload();
  const other = headless(server, 'Desk4', ['--answer', '--duration', '1']);
  await join(page, 'NoH264', TOKEN);
  await online(page, 'NoH264');
  await page.getByRole('button', { name: 'Call Desk4' }).click();
  await page.getByText(/offers no H\.264 video/).waitFor();
  assert.equal(await page.evaluate(() => window.testPeerConnections.length), 0);
  other.child.kill();
  await page.context().close();
});

test('two browsers call each other over https and wss, with matching safety codes', async () => {
  const secure = await startServer({ tls: true });
  try {
    const [ann, ben] = [await openPage(browser, secure), await openPage(browser, secure)];
    await join(ann, 'Ann');
    await join(ben, 'Ben');
    await online(ann, 'Ann');
    await online(ben, 'Ben');
    // An https page is a secure context: cameras and the safety code's hashing work.
    assert.equal(await ann.evaluate(() => window.isSecureContext), true);
    await ann.getByRole('button', { name: 'Call Ben' }).click();
    await ben.getByRole('button', { name: 'Accept' }).click();
    await mediaFlows(ann, -1, { fromBrowser: true });
    await mediaFlows(ben, -1, { fromBrowser: true });
    const code = async (page, peer) => {
      await page.locator('#codes .code').waitFor({ state: 'attached' });
      assert.match(await page.locator('#codes p').textContent(), new RegExp(`^Safety code with ${peer}: `));
      return page.locator('#codes .code').textContent();
    };
    assert.equal(await code(ann, 'Ben'), await code(ben, 'Ann'));
    const message = ben.getByRole('textbox', { name: 'Message' });
    await message.fill('hi Ann');
    await message.press('Enter');
    await ann.locator('#messages').getByText('hi Ann').waitFor();
    await ben.locator('#messages [aria-label="delivered"]').waitFor();
    await ann.getByRole('button', { name: 'Hang up' }).click();
    await ben.getByText('Ann hung up.').waitFor();
    for (const page of [ann, ben]) {
      assert.deepEqual(page.problems, []);
      await page.context().close();
    }
  } finally {
    secure.stop();
  }
});

test('on a plain http page from elsewhere, a guest without a camera still calls and is told why', async () => {
  // `guest.test` is this machine, but a name that is not localhost: the page is not a
  // secure context, as for a guest on another computer of the network.
  const elsewhere = await launchBrowser(['--host-resolver-rules=MAP guest.test 127.0.0.1']);
  try {
    const port = new URL(server.url).port;
    const page = await openPage(elsewhere, server, `http://guest.test:${port}/`);
    assert.equal(await page.evaluate(() => window.isSecureContext), false);
    const desk = headless(server, 'Desk5', ['--answer', '--duration', '4']);
    await join(page, 'Remote', TOKEN);
    await online(page, 'Remote');
    await page.getByRole('button', { name: 'Call Desk5' }).click();
    await page.getByText(/No camera or microphone: browsers allow cameras only on https pages/).waitFor();
    // Desk5's picture and sound arrive; nothing is sent back.
    await mediaFlows(page);
    await page.getByText(/No safety code with Desk5: .*https/).waitFor({ state: 'attached' });
    assert.equal(await desk.exited, 0, desk.out.stderr);
    await page.getByText('Desk5 hung up.').waitFor();
    const stats = desk.stats();
    assert.equal(stats.end_reason, 'ended');
    assert.equal(stats.video_frames_decoded, 0, 'the guest sent no picture');
    assert.deepEqual(page.problems, []);
  } finally {
    await elsewhere.close();
  }
});

test('performance', () => {
  // Printed for docs/performance.md; not a pass/fail check.
  const ms = (value) => `${Math.round(value)} ms`;
  console.log(`browser client: page ${(measured.pageBytes / 1024).toFixed(1)} KiB uncompressed, `
    + `loaded in ${ms(measured.loadMs)}, join to online ${ms(measured.joinToOnlineMs)}, `
    + `call to connected ${ms(measured.callSetupMs)} (camera and microphone open `
    + `${ms(measured.mediaOpenMs)})`);
});
