// This browser's camera and microphone: opened once per call (however many connections
// ask), switched from the pickers, muted, turned off, closed. It owns the self-view and
// the pickers; a call asks it which tracks to send.

const SIZE = { width: { ideal: 640 }, height: { ideal: 480 } };

/** Why the browser gave no camera or microphone, in words. */
export function mediaErrorWords(err) {
  switch (err?.name) {
    case 'NotAllowedError': return 'the browser was not allowed to use them.';
    case 'NotFoundError': return 'none was found.';
    case 'NotReadableError': return 'another program is using them.';
    case 'SecurityError': case 'TypeError':
      return 'browsers allow cameras only on https pages or on this computer (localhost).';
    default: return err ? `${err.name}: ${err.message}` : 'this browser cannot capture media.';
  }
}

export class LocalMedia {
  /**
   * @param {object} ui the self-view video, the two pickers and the note beside them
   * @param {(text: string) => void} notice tells the user something went wrong
   */
  constructor({ selfView, cameraSelect, microphoneSelect, note }, notice) {
    Object.assign(this, { selfView, cameraSelect, microphoneSelect, note, notice });
    this.stream = null;
    this.opening = null;
    this.muted = false;
    this.cameraOff = false;
  }

  /** The stream for the call (null without camera and microphone), opened on first use. */
  open() {
    this.opening ??= this.acquire();
    return this.opening;
  }

  async acquire() {
    const video = this.cameraSelect.value ? { deviceId: { exact: this.cameraSelect.value }, ...SIZE } : SIZE;
    const audio = this.microphoneSelect.value ? { deviceId: { exact: this.microphoneSelect.value } } : true;
    let lastError = null;
    // Both, else whichever there is: a call without a camera still has a voice.
    for (const constraints of [{ audio, video }, { audio }, { video }]) {
      try {
        this.stream = await navigator.mediaDevices.getUserMedia(constraints);
        break;
      } catch (err) {
        lastError = err;
      }
    }
    this.selfView.srcObject = this.stream;
    await this.listDevices();
    if (this.stream) {
      this.note.textContent = '';
      for (const track of this.stream.getTracks()) {
        track.onended = () => this.notice(`Your ${track.kind === 'audio' ? 'microphone' : 'camera'} stopped.`);
      }
    } else {
      this.note.textContent = `No camera or microphone: ${mediaErrorWords(lastError)} `
        + 'The call goes on; the other side will not see or hear you.';
    }
    return this.stream;
  }

  /** Stops the devices (the call is over). */
  close() {
    this.stream?.getTracks().forEach((track) => track.stop());
    this.stream = null;
    this.opening = null;
    this.muted = false;
    this.cameraOff = false;
    this.selfView.srcObject = null;
    this.selfView.classList.remove('off');
  }

  /** What to send: no audio while muted, no video while the camera is off. */
  tracks() {
    return {
      audio: this.muted ? null : this.stream?.getAudioTracks()[0] ?? null,
      video: this.cameraOff ? null : this.stream?.getVideoTracks()[0] ?? null,
    };
  }

  setCameraOff(off) {
    this.cameraOff = off;
    this.selfView.classList.toggle('off', off);
  }

  /**
   * Opens the device chosen in the `kind` picker in place of the old one. `use` puts the
   * new tracks on the call's senders; the old device is stopped only after that (a sender
   * whose track ended first does not take the new one in Chromium).
   */
  async switchTo(kind, use) {
    const select = kind === 'video' ? this.cameraSelect : this.microphoneSelect;
    if (!this.stream || !select.value) return;
    let track;
    try {
      const device = { deviceId: { exact: select.value } };
      const fresh = await navigator.mediaDevices.getUserMedia(kind === 'video'
        ? { video: { ...device, ...SIZE } } : { audio: device });
      [track] = fresh.getTracks();
    } catch (err) {
      this.notice(`Could not switch: ${mediaErrorWords(err)}`);
      return;
    }
    const old = this.stream.getTracks().filter((t) => t.kind === track.kind);
    old.forEach((t) => this.stream.removeTrack(t));
    this.stream.addTrack(track);
    this.selfView.srcObject = this.stream;
    await use();
    old.forEach((t) => t.stop());
  }

  /** Fills the pickers with the devices there are, the ones in use selected. */
  async listDevices() {
    if (!navigator.mediaDevices?.enumerateDevices) {
      this.note.textContent = mediaErrorWords({ name: 'SecurityError' });
      return;
    }
    const devices = await navigator.mediaDevices.enumerateDevices();
    const fill = (select, kind, active, noun) => {
      const found = devices.filter((d) => d.kind === kind && d.deviceId);
      const current = active?.getSettings().deviceId ?? select.value;
      const options = found.map((device, i) => {
        const option = document.createElement('option');
        option.value = device.deviceId;
        option.textContent = device.label || `${noun} ${i + 1}`;
        option.selected = device.deviceId === current;
        return option;
      });
      if (options.length === 0) {
        const option = document.createElement('option');
        option.value = '';
        // Before permission, browsers list devices without ids.
        option.textContent = devices.some((d) => d.kind === kind)
          ? `The browser will ask for the ${noun.toLowerCase()}`
          : `No ${noun.toLowerCase()} found`;
        options.push(option);
      }
      select.replaceChildren(...options);
    };
    fill(this.cameraSelect, 'videoinput', this.stream?.getVideoTracks()[0], 'Camera');
    fill(this.microphoneSelect, 'audioinput', this.stream?.getAudioTracks()[0], 'Microphone');
  }
}
