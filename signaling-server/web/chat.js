// The chat pane of a call: our messages with their delivery ticks, theirs, and notes
// (who joined or left). Text from peers is only ever set as textContent.

export class ChatView {
  constructor(list) {
    this.list = list;
    this.sent = new Map(); // message id -> { tick, waiting: Set(peer id), of }
  }

  /** Our message `id`, sent to the peers in `waiting`, ticked as they acknowledge it. */
  mine(id, text, waiting) {
    const tick = document.createElement('span');
    tick.className = 'tick';
    this.line('You', text, 'mine').append(tick);
    const chat = { tick, waiting, of: waiting.size };
    this.sent.set(id, chat);
    this.renderTick(chat);
  }

  theirs(who, text) {
    this.line(who, text, 'theirs');
  }

  acked(id, peerId) {
    const chat = this.sent.get(id);
    if (!chat) return;
    chat.waiting.delete(peerId);
    this.renderTick(chat);
  }

  note(text) {
    const item = document.createElement('li');
    item.className = 'note';
    item.textContent = text;
    this.list.append(item);
  }

  clear() {
    this.sent.clear();
    this.list.replaceChildren();
  }

  renderTick(chat) {
    const delivered = chat.of - chat.waiting.size;
    if (chat.waiting.size === 0) {
      chat.tick.textContent = ' ✓';
      chat.tick.setAttribute('aria-label', 'delivered');
    } else if (chat.of > 1) {
      chat.tick.textContent = ` ${delivered}/${chat.of}`;
      chat.tick.setAttribute('aria-label', `delivered to ${delivered} of ${chat.of}`);
    } else {
      chat.tick.textContent = ' …';
      chat.tick.setAttribute('aria-label', 'sending');
    }
  }

  line(who, text, kind) {
    const item = document.createElement('li');
    item.className = kind;
    const author = document.createElement('span');
    author.className = 'author';
    author.textContent = `${who}: `;
    const body = document.createElement('span');
    body.className = 'text';
    body.textContent = text;
    item.append(author, body);
    this.list.append(item);
    item.scrollIntoView({ block: 'nearest' });
    return item;
  }
}
