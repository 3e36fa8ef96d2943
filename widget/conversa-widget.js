/**
 * Conversa's reference website widget: one file, no build step, no dependencies. It speaks only
 * the public contract (CONTRACT.md: POST /v1/widget/sessions, GET /v1/widget/messages and the
 * WebSocket frames), so a team can host it as it is or read it as the example of a client.
 *
 *   <script src="https://your.cdn/conversa-widget.js" data-api="https://<http api>" async></script>
 *
 * or `ConversaWidget.mount({ apiUrl, title?, target? })`; `ConversaWidget.identify({ name?, email?,
 * phone?, identityHash? })` names a website's signed-in customer and `ConversaWidget.reset()` forgets
 * them at its logout (after the `conversa:ready` event). The visitor's token is kept in
 * localStorage, so another tab or a later visit resumes the same conversation; the page opens
 * with the chat shown when its URL has `?conversation=` (the fallback email's link).
 */
(() => {
  const TOKEN_KEY = 'conversa.visitorToken';
  const WS_KEY = 'conversa.websocketUrl';
  // The newest team message a tab of this browser read: the other tabs' launchers stop counting it
  // (the API tells a visitor's other sockets nothing of a read).
  const READ_KEY = 'conversa.readUpTo';
  // API Gateway closes a WebSocket idle for 10 minutes.
  const PING_MS = 4 * 60_000;
  const TYPING_IDLE_MS = 2_000;
  // "on" is said again this often while typing lasts, and a sign not renewed for twice as long
  // goes: a console (or tab) that died mid-word never sends its "off".
  const TYPING_RENEW_MS = 3_000;
  const TYPING_SHOWN_MS = 6_000;
  const MAX_BACKOFF_MS = 30_000;
  // A message's frame unanswered this long (an error the API sent without its clientMessageId)
  // no longer holds back the ones written after it; it goes again after a reconnection.
  const ANSWER_WAIT_MS = 10_000;
  // The availability is cached a minute (API and browser): the form shown follows it this often.
  const AVAILABILITY_MS = 60_000;
  // The longest text a message may have (the API refuses longer ones).
  const MAX_TEXT = 4096;
  // The largest file the API takes (README: Files agents and visitors send).
  const MAX_FILE_BYTES = 25 * 1024 * 1024;
  // A rating later than this after its question is no rating (the API reads it as a message).
  const CSAT_ANSWERS_MS = 3 * 24 * 3600_000;

  const STYLE = `
    :host { all: initial; font: 14px/1.4 system-ui, sans-serif; color: #1f2328; }
    .launcher { position: fixed; right: 20px; bottom: 20px; border: 0; border-radius: 24px; padding: 12px 18px; background: #1f6feb; color: #fff; cursor: pointer; }
    .badge { margin-left: 8px; padding: 0 7px; border-radius: 10px; background: #cf222e; font-size: 12px; }
    /* A phone's window (360 px wide, or turned to 360 px high) holds it whole: border included, 12 px to spare. */
    .panel { box-sizing: border-box; position: fixed; right: 20px; bottom: 76px; width: min(340px, calc(100vw - 32px)); height: min(460px, calc(100vh - 88px)); height: min(460px, calc(100dvh - 88px)); display: flex; flex-direction: column; background: #fff; border: 1px solid #d0d7de; border-radius: 12px; box-shadow: 0 8px 24px rgba(0,0,0,.15); overflow: hidden; overflow-wrap: anywhere; }
    [hidden] { display: none !important; }
    header { padding: 12px 14px; background: #1f6feb; color: #fff; font-weight: 600; }
    .state { font-weight: 400; font-size: 12px; opacity: .85; }
    .older { align-self: center; margin: 6px 0 0; padding: 3px 10px; font-size: 12px; background: #f6f8fa; color: #0969da; }
    .end { float: right; padding: 2px 8px; font-size: 12px; font-weight: 400; background: rgba(255,255,255,.2); }
    form.prechat { display: flex; flex-direction: column; gap: 8px; padding: 14px; overflow-y: auto; }
    input, textarea { font: inherit; padding: 8px; border: 1px solid #d0d7de; border-radius: 6px; }
    .log { flex: 1; overflow-y: auto; padding: 10px; display: flex; flex-direction: column; gap: 6px; }
    .message { max-width: 80%; padding: 6px 10px; border-radius: 10px; white-space: pre-wrap; overflow-wrap: anywhere; }
    .message.inbound { align-self: flex-end; background: #ddf4ff; }
    .message.outbound { align-self: flex-start; background: #f6f8fa; }
    .message .meta { display: block; font-size: 11px; color: #57606a; }
    .message.failed .meta { color: #cf222e; }
    .typing, .notice { font-size: 12px; color: #57606a; padding: 0 10px; min-height: 16px; }
    .hours { padding: 8px 14px; background: #fff8c5; font-size: 13px; }
    .linked { margin: 0; font-size: 13px; color: #57606a; }
    form.composer { display: flex; gap: 6px; padding: 8px; border-top: 1px solid #d0d7de; }
    form.composer textarea { flex: 1; resize: none; height: 38px; }
    button { font: inherit; border: 0; border-radius: 6px; padding: 8px 12px; background: #1f6feb; color: #fff; cursor: pointer; }
    .csat button { margin: 4px 4px 0 0; padding: 4px 9px; }
    .csat button:disabled { opacity: .45; cursor: default; }
    .csat button[aria-pressed=true] { opacity: 1; background: #0a3069; }
    .file { display: block; margin-top: 4px; padding: 0; background: none; color: #0969da; text-decoration: underline; text-align: left; }
    .file img { display: block; max-width: 100%; max-height: 160px; border-radius: 6px; }
  `;

  // The website's signed-in customer (identify), sent with every session call of every widget on the page.
  let identity;
  const widgets = [];
  const known = () => Boolean(identity && (identity.email || identity.phone));

  const el = (tag, props = {}, children = []) => {
    const node = Object.assign(document.createElement(tag), props);
    for (const child of children) node.append(child);
    return node;
  };

  function mount(options) {
    if (!options || !options.apiUrl) throw new Error('ConversaWidget.mount needs { apiUrl }');
    const apiUrl = options.apiUrl.replace(/\/+$/, '');
    const host = el('div', { className: 'conversa-widget' });
    (options.target || document.body).append(host);
    const root = host.attachShadow({ mode: 'open' });

    const state = el('span', { className: 'state' });
    // "End conversation" (as Chatwoot's widget): the visitor resolves their own conversation.
    const endButton = el('button', { type: 'button', className: 'end', textContent: 'End conversation', hidden: true });
    const log = el('div', { className: 'log', role: 'log', ariaLive: 'polite' });
    // The history's earlier pages, on demand (as the agent console's): outside the log, which clear() empties.
    const olderButton = el('button', { type: 'button', className: 'older', textContent: 'Older messages', hidden: true });
    const typing = el('div', { className: 'typing' });
    const notice = el('div', { className: 'notice' });
    const hours = el('div', { className: 'hours', hidden: true });
    const text = el('textarea', { name: 'text', dir: 'auto', placeholder: 'Type a message…', ariaLabel: 'Message', maxLength: MAX_TEXT });
    const picker = el('input', { type: 'file', hidden: true, ariaLabel: 'File' });
    const attachButton = el('button', { type: 'button', textContent: '📎', title: 'Send a file', ariaLabel: 'Send a file' });
    const composer = el('form', { className: 'composer', hidden: true }, [attachButton, picker, text, el('button', { type: 'submit', textContent: 'Send' })]);
    // The fallback email's link on a browser without the chat's token (README: Website widget).
    const linked = el('p', {
      className: 'linked',
      hidden: true,
      textContent: 'This conversation was started in another browser, so it cannot be shown here. Reply to our email to continue it, or start a new chat with the same email so that we can find it.',
    });
    const linkedId = new URLSearchParams(location.search).get('conversation');
    const prechat = el('form', { className: 'prechat', hidden: true }, [
      linked,
      el('input', { name: 'name', dir: 'auto', placeholder: 'Your name', autocomplete: 'name', maxLength: 200 }),
      el('input', { name: 'email', type: 'email', placeholder: 'Email (to hear back if you leave)', autocomplete: 'email', maxLength: 320 }),
      el('button', { type: 'submit', textContent: 'Start chatting' }),
    ]);
    const panel = el('div', { className: 'panel', hidden: true }, [
      el('header', {}, [endButton, el('div', { textContent: options.title || 'Chat with us' }), state]),
      hours,
      prechat,
      olderButton,
      log,
      typing,
      notice,
      composer,
    ]);
    const badge = el('span', { className: 'badge', hidden: true, ariaLabel: 'unread replies' });
    const launcher = el('button', { className: 'launcher', type: 'button', textContent: options.title || 'Chat with us' }, [badge]);
    // The team's replies that came with the chat closed or the tab out of sight, not read since in any tab (ids).
    let unread = [];
    // The page's own title, and the one shown with the count before it (a page that changes its
    // title meanwhile has its new one kept).
    let pageTitle;
    let titleShown;
    const showUnread = () => {
      badge.textContent = String(unread.length);
      badge.hidden = !unread.length || !panel.hidden;
      if (document.title !== titleShown) pageTitle = document.title;
      titleShown = unread.length ? `(${unread.length}) ${pageTitle}` : pageTitle;
      if (document.title !== titleShown) document.title = titleShown;
    };
    root.append(el('style', { textContent: STYLE }), panel, launcher);

    let token = localStorage.getItem(TOKEN_KEY);
    let socket;
    let websocketUrl;
    let backoff = 1000;
    // A session call (or its retry) is under way: opening the chat again, or a second click on the
    // form, must not start another (a second visitor, a second socket counting every reply twice).
    let starting = false;
    // The API closed this tab's socket while the tab was out of sight: it waits to be seen again.
    let parked = false;
    let pinger;
    let typingOff;
    let typingSentAt = 0;
    let typingShown;
    let typingBy;
    let retryTimer;
    // The clientMessageId of the message frame on its way, and when it stops holding the next back.
    let inFlight;
    let inFlightTimer;
    // The history to read once the chat opens: { since: the newest message shown when the socket came back }.
    let historyDue = false;
    // Asked for while a session call was under way (identify): one more when it is done.
    let rerun = false;
    // Bumped when the visitor changes (reset, someone else identified): answers still on their way
    // for the one before are dropped, never shown to the next.
    let generation = 0;
    // The conversation is resolved, as the newest view of it said (the visitor's next message reopens it).
    let resolved = false;
    // Views of the conversation's status (a session or history answer, a frame) are numbered as they
    // are asked for (a frame: as it arrives), and one older than the view shown is dropped: answers
    // come in any order, and one asked for before a frame arrived must not undo what that frame said.
    let statusAsked = 0;
    let statusShown = 0;
    // The newest team message this tab's markRead covered.
    let readUpTo = '';
    // Where "Older messages" goes on from: undefined until the log's first history read, null once
    // the conversation's first message is shown.
    let olderCursor;

    const setState = (s) => (state.textContent = s ? ` · ${s}` : '');
    // Offered once there is a conversation (a message in it) that is not resolved.
    const showEnd = () => (endButton.hidden = composer.hidden || resolved || !log.querySelector('.message[data-id]'));
    const showNotice = (s) => (notice.textContent = s || '');
    /** `view` is the number statusAsked gave the view when it was asked for; null or undefined tells nothing. */
    function takeStatus(view, status) {
      if (status === undefined || view < statusShown) return;
      statusShown = view;
      resolved = status === 'resolved';
    }

    /**
     * The visitor's token goes only where it is asked for (not to sessions and availability);
     * content-type only with a body, as on a GET it would cost a CORS preflight.
     */
    async function api(method, path, body) {
      const anonymous = path === '/v1/widget/sessions' || path === '/v1/widget/availability';
      const res = await fetch(`${apiUrl}${path}`, {
        method,
        headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(token && !anonymous ? { authorization: `Bearer ${token}` } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      const answer = res.status === 204 ? {} : await res.json().catch(() => ({}));
      if (!res.ok) {
        const retryAfter = Number(res.headers.get('retry-after')) || undefined;
        throw Object.assign(new Error(answer.error?.message || `HTTP ${res.status}`), { status: res.status, code: answer.error?.code, retryAfter });
      }
      return answer;
    }

    /** Outside business hours the team answers later: say when, and ask for an email to answer at. */
    async function showAvailability() {
      const team = await api('GET', '/v1/widget/availability');
      hours.hidden = team.open;
      // The team may come back (or leave) while the form is shown: required follows, both ways.
      prechat.elements.email.required = !linked.hidden || (!team.open && team.asksForEmail);
      if (team.open) return;
      hours.textContent = `We're away right now${team.nextOpen ? ` and back ${team.nextOpen}` : ''}. Leave a message${team.asksForEmail ? ' and your email: we will answer there' : ''}.`;
    }

    /** Starts or resumes the session; a token the API no longer knows gives the form again. */
    async function begin(profile) {
      if (starting) return void (rerun = true);
      starting = true;
      const gen = generation;
      let retrying = false;
      // Another tab of the site may have started the chat since this one loaded: the same visitor.
      token = token || localStorage.getItem(TOKEN_KEY);
      const view = ++statusAsked;
      try {
        const session = await api('POST', '/v1/widget/sessions', { ...identity, ...profile, ...(token ? { token } : {}) });
        if (gen !== generation) return;
        // The website vouches for someone else than the kept token's visitor: the API made them a
        // session of their own, and the previous chat leaves the page.
        if (token && session.token !== token) clear();
        token = session.token;
        localStorage.setItem(TOKEN_KEY, token);
        websocketUrl = session.websocketUrl;
        localStorage.setItem(WS_KEY, websocketUrl);
        prechat.hidden = true;
        composer.hidden = false;
        // No conversation yet (null): this tab's own first message tells more than the answer.
        if (session.conversationStatus) takeStatus(view, session.conversationStatus);
        showEnd();
        // The link names a chat this browser does not keep (a shared computer, a forwarded email).
        showNotice(linkedId && session.conversationId !== linkedId ? 'The link you followed is for a conversation started in another browser: reply to our email to continue it.' : '');
        clearTimeout(retryTimer);
        if (!parked && !(socket && socket.readyState <= WebSocket.OPEN)) connect();
      } catch (error) {
        if (gen !== generation) return;
        // The website's identityHash does not sign what it gave: no chat is shown to whoever that
        // is, and the token stays for the hash once fixed.
        const refused = error.code === 'invalid_identity_hash';
        if (refused) clear();
        // 401: a token the API no longer knows; 400 to a resume (it sent the token alone): no token at all.
        if (!refused && (error.status === 401 || (error.status === 400 && !profile && token))) {
          // Erased meanwhile, say: what the page shows of that visitor goes with the token.
          clear();
          token = null;
          localStorage.removeItem(TOKEN_KEY);
          prechat.hidden = false;
          composer.hidden = true;
          return;
        }
        showNotice(`Could not start the chat: ${error.message}`);
        // A resumed chat whose API is out of reach tries again, as a dropped socket does.
        if (!refused && !profile && token) {
          retrying = true;
          retryTimer = setTimeout(() => {
            starting = false;
            begin();
          }, backoff);
          backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        }
      } finally {
        if (!retrying && gen === generation) {
          starting = false;
          if (rerun) {
            rerun = false;
            begin();
          }
        }
      }
    }

    /** Takes another person's chat off the page: socket, messages, draft, timers. */
    function clear() {
      generation += 1;
      starting = rerun = parked = historyDue = false;
      backoff = 1000;
      clearTimeout(retryTimer);
      clearTimeout(typingOff);
      clearInterval(pinger);
      forgetInFlight();
      typingSentAt = 0;
      if (socket) {
        socket.onopen = socket.onmessage = socket.onclose = null;
        socket.close();
        socket = undefined;
      }
      log.replaceChildren();
      showTyping('');
      showNotice('');
      setState('');
      text.value = '';
      unread = [];
      resolved = false;
      readUpTo = '';
      olderCursor = undefined;
      olderButton.hidden = true;
      showUnread();
      badge.hidden = composer.hidden = endButton.hidden = true;
    }

    /** The website's logout: the next person on this browser starts afresh. */
    function forget() {
      clear();
      token = null;
      localStorage.removeItem(TOKEN_KEY);
      localStorage.removeItem(READ_KEY);
      prechat.reset();
      prechat.hidden = panel.hidden;
    }

    /** The website named its signed-in customer: the kept chat resumes as theirs (or gives way to theirs). */
    function identified() {
      if (token || localStorage.getItem(TOKEN_KEY) || (known() && !prechat.hidden)) begin();
    }

    function connect() {
      setState('connecting');
      socket = new WebSocket(`${websocketUrl}?token=${encodeURIComponent(token)}`);
      let opened = false;
      socket.onopen = async () => {
        opened = true;
        backoff = 1000;
        setState('online');
        clearInterval(pinger);
        pinger = setInterval(() => send({ action: 'ping' }), PING_MS);
        // What arrived while the socket was down comes with the history; with the chat closed, once
        // it opens (a page view needs none: the route's limit is shared by every visitor).
        const gen = generation;
        // Read later, it still goes back to what the log showed now: replies may come live before.
        const since = historyDue ? historyDue.since : newestShown();
        historyDue = panel.hidden && { since };
        if (!historyDue) await reloadHistory(since);
        if (gen !== generation) return;
        // Then what this tab sent without an ack (written while the socket was down, or lost with
        // it), even if the history seemed to hold it (another tab's same words). The same
        // clientMessageId again: one the API stored meanwhile is acknowledged as itself, never twice.
        forgetInFlight();
        for (const node of log.querySelectorAll('.message[data-sent]')) delete node.dataset.sent;
        sendNextMessage();
      };
      socket.onmessage = (event) => onFrame(JSON.parse(event.data));
      socket.onclose = (event) => {
        clearInterval(pinger);
        forgetInFlight();
        // Closed on purpose by the API (1000): a visitor's connections are capped, and a newer tab
        // or device took this one's place. Out of sight, the tab waits until it is seen again, or
        // with more tabs open than the cap they would take each other's places for good.
        if (opened && event.code === 1000 && document.visibilityState === 'hidden') {
          parked = true;
          setState('paused');
          return;
        }
        setState('reconnecting');
        // A handshake refused may be a token the API no longer takes: the session call says so.
        retryTimer = setTimeout(opened ? connect : () => begin(), backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      };
    }

    /** Sends a frame if the socket is open; a message's frame is kept on its bubble (post) until it is known stored. */
    function send(frame) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
    }

    /**
     * Sends the oldest message not yet sent on this socket, unless one is still unanswered: each
     * frame is an invocation of its own, so two at once may be stored the other way round.
     */
    function sendNextMessage() {
      if (inFlight || socket?.readyState !== WebSocket.OPEN) return;
      const node = log.querySelector('.message[data-frame]:not(.failed):not([data-sent])');
      if (!node) return;
      node.dataset.sent = '1';
      inFlight = node.dataset.clientId;
      inFlightTimer = setTimeout(() => {
        inFlight = undefined;
        sendNextMessage();
      }, ANSWER_WAIT_MS);
      socket.send(node.dataset.frame);
    }

    /** The API answered this message (ack or error): the next may go. */
    function answered(clientMessageId) {
      if (!clientMessageId || clientMessageId !== inFlight) return;
      forgetInFlight();
      sendNextMessage();
    }

    function forgetInFlight() {
      clearTimeout(inFlightTimer);
      inFlight = undefined;
    }

    const reloadHistory = (since) => loadHistory(since).catch((error) => showNotice(`History unavailable: ${error.message}`));

    /** The newest page, and, read again over a log that showed `since` (a reconnection), every page back to it. */
    async function loadHistory(since) {
      const gen = generation;
      const view = ++statusAsked;
      const read = (cursor) => api('GET', `/v1/widget/messages?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      const page = await read();
      if (gen !== generation) return;
      // A reload or reconnection skips the session call: the history says whether the conversation
      // was resolved meanwhile (no "End conversation" then). An API without `conversationStatus`
      // leaves it as it is.
      takeStatus(view, page.conversationStatus);
      for (const message of page.items) render(message);
      let older = page;
      // More than a page written meanwhile leaves no gap.
      while (since && older.nextCursor && !older.items.some((message) => message.id <= since)) {
        older = await read(older.nextCursor);
        if (gen !== generation) return;
        for (const message of older.items) render(message);
      }
      // A reconnection's read goes back to what was shown: older pages go on from where they did.
      if (olderCursor === undefined) olderCursor = older.nextCursor ?? null;
      olderButton.hidden = !olderCursor;
      closeDroppedCsat(page);
      showEnd();
      refreshCsat();
      markRead();
    }

    /** The page before the oldest shown, put above it: the visitor stays at the message they were reading. */
    async function loadOlder() {
      const gen = generation;
      const cursor = olderCursor;
      olderButton.disabled = true;
      try {
        const page = await api('GET', `/v1/widget/messages?limit=50&cursor=${encodeURIComponent(cursor)}`);
        if (gen !== generation || olderCursor !== cursor) return;
        const fromEnd = log.scrollHeight - log.scrollTop;
        for (const message of page.items) render(message);
        log.scrollTop = log.scrollHeight - fromEnd;
        olderCursor = page.nextCursor ?? null;
        olderButton.hidden = !olderCursor;
        refreshCsat();
      } finally {
        olderButton.disabled = false;
      }
    }

    /**
     * A question the history shows as open may have been dropped while no socket told this page
     * (an agent reopened the conversation, before a reload): the history's `csatOpen` says whether
     * it still takes a rating (the API reads the conversation after the messages, so it speaks of
     * the newest question the page holds). One that came live since is not the history's to close.
     * An API without `csatOpen` leaves them as they are.
     */
    function closeDroppedCsat(page) {
      if (page.csatOpen !== false) return;
      const ids = new Set(page.items.map((message) => message.id));
      for (const csat of log.querySelectorAll('.csat')) if (ids.has(csat.parentNode.dataset.id)) csat.parentNode.dataset.closed = '1';
    }

    const atEnd = () => log.scrollHeight - log.scrollTop - log.clientHeight < 40;

    const newestShown = () => [...log.querySelectorAll('.message[data-id]')].pop()?.dataset.id;

    const byId = (id) => log.querySelector(`[data-id="${CSS.escape(id)}"]`);

    /**
     * Puts a message in the order of the history (ids grow with time): one that came live while
     * the history was reloading is not left above older ones. Sends not acknowledged yet stay last.
     */
    function place(node, id) {
      node.dataset.id = id;
      const before = [...log.children].reverse().find((other) => other !== node && other.dataset.id && other.dataset.id < id);
      if (before) before.after(node);
      else log.prepend(node);
    }

    /** One element per message: a later frame (status, a copy after reconnecting) updates it. */
    function render(message) {
      if (message.private) return;
      // Only a visitor at the newest end is taken along: one reading older messages stays there.
      const follow = atEnd();
      let node = byId(message.id);
      if (!node && message.direction === 'inbound') {
        // This tab's own send, shown before its ack named it.
        node = [...log.querySelectorAll('.message.pending:not([data-id])')].find((n) => n.dataset.text === message.text);
      }
      if (!node) node = el('div', { dir: 'auto' });
      node.className = `message ${message.direction} ${message.status === 'failed' ? 'failed' : ''}`;
      if (node.dataset.id !== message.id) place(node, message.id);
      node.dataset.status = message.status;
      node.dataset.text = message.text;
      node.dataset.at = message.createdAt;
      node.replaceChildren(message.text);
      (message.attachments || []).forEach((file, index) => {
        if (file.type === 'csat') return;
        const link = el('button', { type: 'button', className: 'file', textContent: `📎 ${file.name || file.type}` });
        link.dataset.index = String(index);
        link.onclick = () =>
          openFile(message.id, index, file).catch((error) =>
            showNotice(error.status === 404 || error.status === 410 ? 'This file is no longer available.' : 'Could not open the file. Please try again.'),
          );
        node.append(link);
      });
      if ((message.attachments || []).some((a) => a.type === 'csat')) {
        node.append(el('div', { className: 'csat' }, [1, 2, 3, 4, 5].map((score) => el('button', { type: 'button', textContent: String(score), onclick: () => post(String(score)) }))));
      }
      // The visitor's own messages are `received` once stored; the agent's read marks them seen.
      const meta = message.direction === 'inbound' ? (message.status === 'failed' ? 'Not sent' : node.dataset.seen ? 'Seen' : 'Sent') : message.sender?.name;
      if (meta) node.append(el('span', { className: 'meta', textContent: meta }));
      if (follow) log.scrollTop = log.scrollHeight;
      showEnd();
    }

    /**
     * As the API reads ratings: only the newest question takes one, until the visitor's next
     * message, a status change or its 3 days end it; the rating given shows as chosen.
     */
    function refreshCsat() {
      let next;
      let newest = true;
      for (const node of [...log.children].reverse()) {
        if (node.classList.contains('inbound') && !node.classList.contains('failed')) next = node;
        const csat = node.querySelector('.csat');
        if (!csat) continue;
        const rating = next && /^([1-5])(?!\d)/.exec(next.dataset.text || '')?.[1];
        const closed = !newest || next || node.dataset.closed || Date.now() - Date.parse(node.dataset.at) > CSAT_ANSWERS_MS;
        for (const button of csat.children) {
          button.disabled = Boolean(closed);
          button.setAttribute('aria-pressed', String(button.textContent === rating));
        }
        newest = false;
      }
    }

    /**
     * A file of the conversation: the API answers with a redirect to a short-lived URL of it,
     * which fetch follows (the token does not go along to the other origin). Images show inline.
     */
    async function openFile(messageId, index, file) {
      const res = await fetch(`${apiUrl}/v1/widget/messages/${encodeURIComponent(messageId)}/attachments/${index}`, { headers: { authorization: `Bearer ${token}` } });
      if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { status: res.status });
      const url = URL.createObjectURL(await res.blob());
      if (file.type === 'image') {
        const shown = byId(messageId)?.querySelector(`.file[data-index="${index}"]`);
        if (shown) return void shown.replaceChildren(el('img', { src: url, alt: file.name || 'image' }));
      }
      const save = el('a', { href: url, download: file.name || 'file', target: '_blank', rel: 'noopener' });
      root.append(save);
      save.click();
      save.remove();
    }

    /** Upload ticket, the file straight to storage, then the message naming the upload. */
    async function sendFile(file) {
      if (file.size > MAX_FILE_BYTES || !file.size) throw Object.assign(new Error('refused'), { code: file.size ? 'file_too_large' : 'file_empty' });
      const ticket = await api('POST', '/v1/widget/uploads', { contentType: file.type || 'application/octet-stream', size: file.size });
      const put = await fetch(ticket.url, { method: ticket.method, headers: ticket.headers, body: file });
      if (!put.ok) throw Object.assign(new Error('refused'), { status: put.status });
      post(text.value.trim(), [{ uploadId: ticket.uploadId, name: file.name }]);
      text.value = '';
    }

    /** A visitor's words for a file that did not go (an API error, a frame's, or a network's): what to do about it. */
    function fileProblem(error, name) {
      const file = name ? `"${name}"` : 'The file';
      if (error.status === 413 || error.code === 'file_too_large') return `${file} is too large to send here (25 MB at most).`;
      if (error.status === 415 || /^(invalid_content_type|attachment_type_not_supported)$/.test(error.code)) return `${file} is a type of file that cannot be sent here.`;
      if (error.code === 'file_empty') return `${file} is empty.`;
      if (error.code === 'too_many_uploads') {
        // The quota is per hour: "try again" at once would only be refused again.
        const minutes = Math.ceil((error.retryAfter ?? 3600) / 60);
        return `${file} was not sent: too many files this hour. Please try again in ${minutes === 1 ? 'a minute' : `${minutes} minutes`}.`;
      }
      return `${file} could not be sent. Please try again.`;
    }

    function onFrame(frame) {
      switch (frame.type) {
        case 'ack': {
          answered(frame.clientMessageId);
          const mine = log.querySelector(`.message[data-client-id="${CSS.escape(frame.clientMessageId)}"]`);
          if (!mine) break;
          // Known stored: never sent again. Shown already under another id (the same words from
          // another tab), its own message.created shows it.
          delete mine.dataset.frame;
          if (mine.dataset.id) break;
          if (byId(frame.messageId)) mine.remove();
          else place(mine, frame.messageId);
          break;
        }
        case 'message.created':
        case 'message.updated':
          if (frame.conversation?.status) takeStatus(++statusAsked, frame.conversation.status);
          render(frame.message);
          refreshCsat();
          if (frame.message.direction === 'outbound') {
            // Their own message ends the typist's sign; another's (a greeting, a colleague's) or an
            // update of an earlier one does not (a greeting delivered late cleared the agent's).
            if (frame.type === 'message.created' && frame.message.sender?.id === typingBy) showTyping('');
            markRead();
            // A reply while the chat is closed or the tab out of sight: counted on the launcher and in
            // the page's title until the visitor sees it.
            if (frame.type === 'message.created' && (panel.hidden || document.visibilityState !== 'visible') && !frame.message.private) {
              unread.push(frame.message.id);
              showUnread();
            }
          }
          break;
        case 'conversation.updated':
          // Reopened, snoozed…: the API dropped the question asked before.
          if (frame.conversation?.status !== 'resolved') for (const csat of log.querySelectorAll('.csat')) csat.parentNode.dataset.closed = '1';
          refreshCsat();
          takeStatus(++statusAsked, frame.conversation?.status ?? null);
          endButton.disabled = false;
          showEnd();
          break;
        case 'typing':
          if (frame.sender?.type !== 'contact') showTyping(frame.state === 'on' ? `${frame.sender?.name || 'Someone'} is typing…` : '', frame.sender?.id);
          break;
        case 'read':
          // The agent read up to this message: what the visitor sent up to it is seen. Ids grow with
          // time (ULIDs), so a message written after it is not, whatever the read names (the
          // agent's own reply, say, read before the visitor's next message reached the console).
          if (frame.by?.type === 'contact') break;
          for (const node of log.querySelectorAll('.message.inbound[data-id]')) {
            if (node.dataset.id > frame.messageId) continue;
            const meta = node.querySelector('.meta:last-child');
            node.dataset.seen = '1';
            if (meta && node.dataset.status !== 'failed') meta.textContent = 'Seen';
          }
          break;
        case 'error': {
          endButton.disabled = false;
          const pending = frame.clientMessageId && log.querySelector(`.message.pending[data-client-id="${CSS.escape(frame.clientMessageId)}"]`);
          const file = pending && JSON.parse(pending.dataset.frame || '{}').attachments?.[0];
          showNotice(file ? fileProblem(frame, file.name) : frame.message || frame.code);
          if (file) {
            // Refused with its file (upload_not_found…): the words go back to the composer, as when
            // the upload fails, to go again with the file picked again; what was written since follows them.
            const words = pending.dataset.text;
            const since = text.value.trim();
            if (words) text.value = since && since !== words ? `${words}\n${since}` : words;
            pending.remove();
            refreshCsat();
          } else if (pending) {
            pending.classList.add('failed');
            const meta = pending.querySelector('.meta:last-child');
            if (meta) meta.textContent = 'Not sent';
          }
          answered(frame.clientMessageId);
          break;
        }
      }
    }

    /**
     * Reads up to the newest team message, once: only one newer than the last this tab read goes
     * (ids grow with time), and none the API shows `read` already (another tab, an earlier page).
     */
    function markRead() {
      if (panel.hidden || document.visibilityState !== 'visible' || socket?.readyState !== WebSocket.OPEN) return;
      const last = [...log.querySelectorAll('.message.outbound[data-id]')].pop();
      if (!last || last.dataset.id <= readUpTo) return;
      readUpTo = last.dataset.id;
      localStorage.setItem(READ_KEY, readUpTo);
      if (last.dataset.status !== 'read') send({ action: 'markRead', messageId: last.dataset.id });
    }

    function post(value, attachments) {
      const clientMessageId = crypto.randomUUID();
      const node = el('div', { className: 'message inbound pending', dir: 'auto' });
      node.dataset.clientId = clientMessageId;
      node.dataset.text = value;
      node.append(value, ...(attachments || []).map((a) => el('span', { className: 'meta', textContent: `📎 ${a.name}` })), el('span', { className: 'meta', textContent: 'Sending…' }));
      log.append(node);
      log.scrollTop = log.scrollHeight;
      showNotice('');
      const frame = { action: 'sendMessage', text: value, clientMessageId, ...(attachments ? { attachments } : {}) };
      node.dataset.frame = JSON.stringify(frame);
      sendNextMessage();
      refreshCsat();
    }

    /** Shows who is typing (`by`: their sender id), or nothing. */
    function showTyping(line, by) {
      clearTimeout(typingShown);
      typing.textContent = line;
      typingBy = line ? by : undefined;
      if (line) typingShown = setTimeout(() => showTyping(''), TYPING_SHOWN_MS);
    }

    function setTyping(on) {
      clearTimeout(typingOff);
      if (on) typingOff = setTimeout(() => setTyping(false), TYPING_IDLE_MS);
      if (on ? Date.now() - typingSentAt < TYPING_RENEW_MS : !typingSentAt) return;
      typingSentAt = on ? Date.now() : 0;
      send({ action: 'typing', state: on ? 'on' : 'off' });
    }

    composer.addEventListener('submit', (event) => {
      event.preventDefault();
      const value = text.value.trim();
      if (!value) return;
      text.value = '';
      setTyping(false);
      post(value);
    });
    text.addEventListener('keydown', (event) => {
      // An input method (Chinese, Japanese, Korean…) takes Enter to confirm what is being composed: not a send.
      if (event.isComposing || event.keyCode === 229) return;
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        composer.requestSubmit();
      }
    });
    text.addEventListener('input', () => setTyping(text.value.length > 0));
    attachButton.addEventListener('click', () => picker.click());
    olderButton.addEventListener('click', () => olderCursor && loadOlder().catch((error) => showNotice(`Older messages unavailable: ${error.message}`)));
    // Answered by conversation.updated (resolved: the button goes; the CSAT question follows when it is on).
    endButton.addEventListener('click', () => {
      if (socket?.readyState !== WebSocket.OPEN) return showNotice('Not connected: try again in a moment.');
      endButton.disabled = true;
      send({ action: 'resolve' });
    });
    picker.addEventListener('change', () => {
      const [file] = picker.files;
      picker.value = '';
      // The draft stays in the composer: it goes with the file picked again.
      if (file) sendFile(file).catch((error) => showNotice(fileProblem(error, file.name)));
    });
    prechat.addEventListener('submit', (event) => {
      event.preventDefault();
      const form = new FormData(prechat);
      const profile = {};
      for (const field of ['name', 'email']) if (String(form.get(field) || '').trim()) profile[field] = String(form.get(field)).trim();
      begin(profile);
    });
    launcher.addEventListener('click', () => {
      panel.hidden = !panel.hidden;
      if (!panel.hidden) {
        // A hidden log scrolls nowhere: what came meanwhile (the badge) is at its end.
        log.scrollTop = log.scrollHeight;
        unread = [];
        showUnread();
        showAvailability().catch(() => (hours.hidden = true));
        if (historyDue && socket?.readyState === WebSocket.OPEN) {
          const { since } = historyDue;
          historyDue = false;
          reloadHistory(since);
        }
        if (!socket && !starting && prechat.hidden && composer.hidden) {
          if (token || known()) begin();
          else prechat.hidden = false;
        }
        markRead();
      }
    });
    document.addEventListener('visibilitychange', () => {
      if (parked && document.visibilityState === 'visible') {
        parked = false;
        connect();
      }
      // Back in sight with the chat open: what came meanwhile is read.
      if (document.visibilityState === 'visible' && !panel.hidden) {
        unread = [];
        showUnread();
      }
      markRead();
    });
    // Another tab started the chat while this one shows the form (or nothing yet): joined at once.
    // Another tab's logout (reset) or someone else signed in there: this one follows.
    window.addEventListener('storage', (event) => {
      if (event.key === READ_KEY && event.newValue) {
        unread = unread.filter((id) => id > event.newValue);
        return showUnread();
      }
      if (event.key !== TOKEN_KEY && event.key !== null) return;
      const kept = localStorage.getItem(TOKEN_KEY);
      if (kept === token || starting) return;
      if (!kept) {
        identity = undefined;
        return forget();
      }
      if (token) clear();
      token = kept;
      begin();
    });
    setInterval(() => {
      if (!panel.hidden && !prechat.hidden) showAvailability().catch(() => undefined);
    }, AVAILABILITY_MS);
    const open = () => panel.hidden && launcher.click();
    if (linkedId) {
      linked.hidden = Boolean(token);
      prechat.elements.email.required = !linked.hidden;
      open();
    }
    // A visitor who has chatted before hears the team's replies with the chat closed (the badge).
    // Straight to the socket: a session call per page view would spend the route's limit, shared
    // by every visitor (a handshake refused asks the session call). A website's customer has theirs.
    else if (token) {
      websocketUrl = !identity && localStorage.getItem(WS_KEY);
      if (websocketUrl) {
        composer.hidden = false;
        connect();
      } else begin();
    }
    widgets.push({ identified, forget });
    return { open, root };
  }

  window.ConversaWidget = {
    mount,
    /** The website's signed-in customer `{ name?, email?, phone?, identityHash? }`, on every page (README: Website widget). */
    identify(who) {
      identity = {};
      for (const key of ['name', 'email', 'phone', 'identityHash']) if (who && who[key]) identity[key] = String(who[key]);
      for (const widget of widgets) widget.identified();
    },
    /** The website's logout: the next person on this browser starts afresh. */
    reset() {
      identity = undefined;
      localStorage.removeItem(TOKEN_KEY);
      for (const widget of widgets) widget.forget();
    },
  };
  // For a website whose code runs before this async script: call identify on this event.
  window.dispatchEvent(new window.Event('conversa:ready'));
  const script = document.currentScript;
  if (script && script.dataset.api) {
    const start = () => mount({ apiUrl: script.dataset.api, title: script.dataset.title });
    if (document.body) start();
    else document.addEventListener('DOMContentLoaded', start);
  }
})();
