/**
 * Conversa's reference agent console: one file, no build step, no dependencies. Like the widget, it
 * speaks only the public contract (CONTRACT.md: the agent HTTP routes and the WebSocket frames of
 * section 4), so a team can host it as it is or read it as the example of a console.
 *
 *   <div id="console"></div>
 *   <script src="conversa-console.js" data-api="https://<http api>" data-ws="wss://<websocket api>" async></script>
 *
 * or `ConversaConsole.mount({ apiUrl, websocketUrl, target?, devAuth?, feed? })`; `data-feed="focused"`
 * (`feed: 'focused'`) connects with the focused feed (README, Agent workspace). The agent signs in with
 * an id token of the identity provider (pasted, or handed over with `ConversaConsole.signIn(token)`
 * by the page that got it); with `data-dev-auth` (the local stack) it asks `/local/auth/token`
 * for one. The token is kept in sessionStorage: a reload stays signed in, a closed tab does not;
 * so are each conversation's drafts, under the agent's id (README, Agent console: Drafts).
 */
(() => {
  const TOKEN_KEY = 'conversa.agentToken';
  // Drafts kept over a reload, one key per agent (another agent signing in on this tab never sees them).
  const DRAFTS_KEY = 'conversa.drafts.';
  // API Gateway closes a WebSocket idle for 10 minutes.
  const PING_MS = 4 * 60_000;
  const MAX_BACKOFF_MS = 30_000;
  // As the widget: "on" again every 3 s while the agent types (a sign goes 6 s after the last one).
  const TYPING_IDLE_MS = 2_000;
  const TYPING_RENEW_MS = 3_000;
  const TYPING_SHOWN_MS = 6_000;
  const MAX_TEXT = 4096;
  // How near the log's end counts as reading the newest messages (a live one then scrolls into view).
  const FOLLOW_SLACK_PX = 40;
  // How much of a quoted message shows above a reply to it (its whole text is a click away).
  const QUOTE_CHARS = 120;
  // How far a message got (as the server ranks them): `failed` ends it.
  const STATUS_RANK = { received: 0, queued: 0, sent: 1, delivered: 2, read: 3, failed: 4 };
  const FILTERS = {
    open: { label: 'Open', query: 'status=open', matches: (c) => c.status === 'open' },
    pending: { label: 'Pending', query: 'status=pending', matches: (c) => c.status === 'pending' },
    mine: { label: 'Mine', query: 'status=open&assignee=me', matches: (c, me) => c.status === 'open' && c.assigneeId === me },
    unassigned: { label: 'Unassigned', query: 'status=open&assignee=unassigned', matches: (c) => c.status === 'open' && !c.assigneeId },
    resolved: { label: 'Resolved', query: 'status=resolved', matches: (c) => c.status === 'resolved' },
    // Conversations whose notes mentioned the agent, every status, newest mention first.
    mentions: { label: 'Mentions', query: 'mentioned=me', matches: (c, me, mentioned) => mentioned.has(c.id) },
  };

  // What a focused console follows whatever happens: its agent's conversations, the queue, and
  // those it was mentioned in (a mention makes the agent a participant, whom the feed follows).
  const FOCUSED_FILTERS = ['mine', 'unassigned', 'mentions'];
  // Agents offered at once when a note's "@" is typed.
  const MAX_SUGGESTIONS = 8;
  const INBOX_PAGE = 25;
  // Inbox pages read again on a reconnection (the agent's place in a long list); "More" goes on from there.
  const MAX_INBOX_PAGES_AGAIN = 10;

  const STYLE = `
    .conversa-console { font: 14px/1.4 system-ui, sans-serif; color: #1f2328; display: flex; flex-direction: column; height: 100vh; overflow-wrap: anywhere; }
    .conversa-console [hidden] { display: none !important; }
    /* The workspace fills the page's height, so the history scrolls inside its log and the composer stays in view. */
    .conversa-console .workspace { display: flex; flex-direction: column; flex: 1; min-height: 0; }
    .conversa-console .workspace > header { display: flex; gap: 10px; align-items: center; padding: 8px 14px; background: #24292f; color: #fff; }
    .conversa-console .workspace > header .me { margin-left: auto; }
    .conversa-console .main { display: flex; flex: 1; min-height: 0; }
    .conversa-console .side { width: 300px; border-right: 1px solid #d0d7de; display: flex; flex-direction: column; }
    .conversa-console .filters { display: flex; flex-wrap: wrap; gap: 4px; padding: 8px; }
    .conversa-console .filters button[aria-pressed=true] { background: #0a3069; }
    .conversa-console .inbox { list-style: none; margin: 0; padding: 0; overflow-y: auto; flex: 1; }
    .conversa-console .conversation { display: block; width: 100%; text-align: left; background: none; color: inherit; border-bottom: 1px solid #eaeef2; border-radius: 0; }
    .conversa-console .conversation[aria-current=true] { background: #ddf4ff; }
    .conversa-console .conversation .sub { display: block; font-size: 12px; color: #57606a; }
    .conversa-console .unread { margin-left: 6px; padding: 0 6px; border-radius: 9px; background: #cf222e; color: #fff; font-size: 12px; }
    .conversa-console .view { flex: 1; display: flex; flex-direction: column; min-width: 0; }
    .conversa-console .head { padding: 8px 14px; border-bottom: 1px solid #d0d7de; display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
    .conversa-console .head .who { font-weight: 600; margin-right: auto; }
    .conversa-console .log { flex: 1; overflow-y: auto; padding: 10px 14px; display: flex; flex-direction: column; gap: 6px; }
    .conversa-console .message { max-width: 70%; padding: 6px 10px; border-radius: 10px; white-space: pre-wrap; overflow-wrap: anywhere; }
    .conversa-console .message.inbound { align-self: flex-start; background: #f6f8fa; }
    .conversa-console .message.outbound { align-self: flex-end; background: #ddf4ff; }
    .conversa-console .message.note { background: #fff8c5; border: 1px dashed #d4a72c; }
    .conversa-console .message.failed .meta { color: #cf222e; }
    .conversa-console .message .quote { margin-bottom: 4px; padding: 2px 8px; border-left: 3px solid #8c959f; color: #57606a; font-size: 12px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
    .conversa-console .message .quote[title] { cursor: pointer; }
    .conversa-console .message .file { display: flex; flex-direction: column; align-items: flex-start; gap: 2px; margin-top: 4px; padding: 0; background: none; color: #0969da; }
    .conversa-console .message .file img { max-width: 240px; max-height: 140px; border-radius: 6px; }
    .conversa-console .meta { display: block; font-size: 11px; color: #57606a; }
    .conversa-console .typing, .conversa-console .notice { font-size: 12px; color: #57606a; padding: 0 14px; min-height: 16px; }
    .conversa-console .unfollowed { padding: 6px 14px; background: #fff8c5; border-bottom: 1px solid #d4a72c; font-size: 13px; }
    .conversa-console .unfollowed button { margin-left: 8px; padding: 2px 8px; }
    .conversa-console .composer { display: flex; flex-wrap: wrap; gap: 6px; padding: 8px 14px; border-top: 1px solid #d0d7de; }
    .conversa-console .composer textarea { flex: 1 1 100%; height: 60px; resize: vertical; }
    .conversa-console .composer.note textarea { background: #fff8c5; }
    .conversa-console .mention-picker { flex: 1 1 100%; list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px; }
    .conversa-console .mention-picker button { padding: 2px 8px; background: #eaeef2; color: inherit; }
    .conversa-console .mention-picker li:first-child button { background: #0969da; color: #fff; }
    .conversa-console .mentioned { padding: 6px 8px; background: #ddf4ff; border-bottom: 1px solid #54aeff; font-size: 13px; }
    .conversa-console .mentioned button { margin-left: 6px; padding: 2px 8px; }
    .conversa-console .composer .kept { font-size: 12px; color: #57606a; }
    .conversa-console .composer .kept button { margin-left: 6px; padding: 2px 8px; }
    .conversa-console form.signin { display: flex; flex-direction: column; gap: 8px; max-width: 320px; margin: 40px auto; }
    .conversa-console input, .conversa-console textarea, .conversa-console select { font: inherit; padding: 6px; border: 1px solid #d0d7de; border-radius: 6px; }
    .conversa-console button { font: inherit; border: 0; border-radius: 6px; padding: 6px 10px; background: #1f6feb; color: #fff; cursor: pointer; }
    .conversa-console button:disabled { opacity: .5; cursor: default; }
  `;

  /** An element with its properties and children; text always goes in as text, never as markup. */
  const h = (tag, props, ...children) => {
    const node = Object.assign(document.createElement(tag), props);
    node.append(...children.filter((c) => c !== undefined && c !== null));
    return node;
  };

  /** The token's claims (its payload is base64url JSON; the API checks the signature, not us). */
  function claimsOf(token) {
    try {
      const base64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))));
    } catch {
      return undefined;
    }
  }

  const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');
  const contactName = (c) => c.contact?.name || c.contact?.email || c.contact?.phone || 'Visitor';

  function mount(options) {
    if (!options || !options.apiUrl || !options.websocketUrl) throw new Error('ConversaConsole.mount needs { apiUrl, websocketUrl }');
    if (options.feed && options.feed !== 'focused') throw new Error("ConversaConsole.mount: feed is 'focused' or left out");
    const apiUrl = options.apiUrl.replace(/\/+$/, '');
    const root = h('div', { className: 'conversa-console' });
    // The page's own title, which the unread count goes in front of ("(3) Conversa console").
    const title = document.title;
    let shownTitle = title;
    (options.target || document.body).append(h('style', { textContent: STYLE }), root);

    // Signed-in state.
    let token;
    let me;
    // On the focused feed (not an admin's), which follows only the agent's own conversations and the queue.
    let focused = false;
    let socket;
    let pinger;
    let retryTimer;
    // Signs out as the token expires.
    let expiryTimer;
    let backoff = 1000;
    // Bumped at sign-out: answers still on their way for the previous agent are dropped.
    let generation = 0;
    // The inbox: every conversation heard of (newest version), the filter shown and its next page.
    const conversations = new Map();
    let filter = 'open';
    let nextCursor = null;
    // The filter's list: its pages as loaded, and what frames brought in or took out since.
    let listed = new Set();
    // What frames brought in while a first page was on its way (the page may predate them).
    let arrived = new Set();
    // "More" and a reconnection's reload of the list take turns: the reload swaps in the pages it
    // read, which would drop a page "More" added meanwhile, and counts the pages shown when it starts.
    let inboxTurn = Promise.resolve();
    // The conversation shown, its older page and what this console last marked read in it.
    let openId = null;
    let olderCursor = null;
    // The conversation whose history the log shows (its newest page read at least once).
    let historyOf = null;
    let lastRead;
    // Each conversation's draft, kept while the agent works elsewhere: { text, note, files (picked,
    // this page only), clientMessageId and content (of its latest attempt), uploads, error }. The
    // id lives until the API took the message, so sending it again as it was (after an error, a
    // switch or a reload) stores it once; its uploads are the files it already sent up.
    let drafts = new Map();
    // The shown conversation's files fetched so far (`messageId/index` → its source and object URL).
    const fileUrls = new Map();
    // The team as GET /v1/agents read it, kept live by presence frames: the transfer picker.
    let team = [];
    // Whether the presence shown is live: not while the socket is down (no frame reaches the
    // console, and the server turns an agent without a connection away), until /v1/agents is read again.
    let presenceLive = false;
    // Conversations whose notes mentioned this agent → the latest mention's time (the Mentions list).
    const mentioned = new Map();
    // The open draft's mentions picked so far: the "@Name" put in the text → the agent's id (sent while the name stays in the text); each draft keeps its own.
    let picked = new Map();
    // Typing: when this agent's "on" was last sent (0: "off" said) and the sign's timers.
    // `private`: whether the "on" in force was a note's, so that its "off" reaches whom it reached.
    const typingSign = { since: 0, idle: undefined, shown: undefined, by: undefined, private: false };

    // Sign-in form.
    const signinNotice = h('p', { className: 'notice' });
    const signin = options.devAuth
      ? h(
          'form',
          { className: 'signin' },
          h('h2', { textContent: 'Sign in (local stack)' }),
          h('input', { name: 'agentId', placeholder: 'Agent id', ariaLabel: 'Agent id', required: true, maxLength: 128 }),
          h('input', { name: 'name', placeholder: 'Name', ariaLabel: 'Name', maxLength: 256 }),
          h('select', { name: 'role', ariaLabel: 'Role' }, h('option', { value: 'agent', textContent: 'agent' }), h('option', { value: 'admin', textContent: 'admin' })),
          h('button', { type: 'submit', textContent: 'Sign in' }),
          signinNotice,
        )
      : h(
          'form',
          { className: 'signin' },
          h('h2', { textContent: 'Sign in' }),
          h('textarea', { name: 'token', placeholder: 'Id token of your identity provider', ariaLabel: 'Token', required: true }),
          h('button', { type: 'submit', textContent: 'Sign in' }),
          signinNotice,
        );

    // The console.
    const state = h('span', { className: 'state' });
    const whoAmI = h('span', { className: 'me' });
    const presence = h(
      'select',
      { ariaLabel: 'Presence' },
      ...['online', 'away', 'offline'].map((s) => h('option', { value: s, textContent: s })),
      // Shown while the socket is down: not a choice.
      h('option', { value: '', textContent: 'unknown', hidden: true }),
    );
    const signOutButton = h('button', { type: 'button', textContent: 'Sign out' });
    const filterButtons = Object.entries(FILTERS).map(([key, f]) => {
      const button = h('button', { type: 'button', textContent: f.label });
      button.dataset.filter = key;
      button.onclick = () => showFilter(key);
      return button;
    });
    const mentionLine = h('span');
    const mentionOpen = h('button', { type: 'button', textContent: 'Open' });
    const mentionNotice = h('div', { className: 'mentioned', role: 'status', hidden: true }, mentionLine, mentionOpen);
    const inbox = h('ul', { className: 'inbox', ariaLabel: 'Conversations' });
    const moreButton = h('button', { type: 'button', textContent: 'More', hidden: true });
    const who = h('span', { className: 'who' });
    const details = h('span', { className: 'details' });
    const assignButton = h('button', { type: 'button', textContent: 'Assign to me' });
    const transferTo = h('select', { ariaLabel: 'Transfer to' });
    const transferNote = h('input', { placeholder: 'Transfer note', ariaLabel: 'Transfer note', maxLength: MAX_TEXT });
    const transferButton = h('button', { type: 'button', textContent: 'Transfer' });
    const resolveButton = h('button', { type: 'button', textContent: 'Resolve' });
    const reopenButton = h('button', { type: 'button', textContent: 'Reopen' });
    const olderButton = h('button', { type: 'button', textContent: 'Older messages', hidden: true });
    const unfollowedLine = h('span');
    const reloadButton = h('button', { type: 'button', textContent: 'Reload' });
    const unfollowed = h('div', { className: 'unfollowed', role: 'status', hidden: true }, unfollowedLine, reloadButton);
    const log = h('div', { className: 'log', role: 'log' });
    const typing = h('div', { className: 'typing' });
    const notice = h('div', { className: 'notice', role: 'status' });
    const canned = h('select', { ariaLabel: 'Canned response' });
    const macros = h('select', { ariaLabel: 'Macros' });
    const noteBox = h('input', { type: 'checkbox', name: 'private' });
    const text = h('textarea', { name: 'text', placeholder: 'Reply…', ariaLabel: 'Message', maxLength: MAX_TEXT });
    const picker = h('input', { type: 'file', multiple: true, ariaLabel: 'Attach files' });
    const mentionPicker = h('ul', { className: 'mention-picker', ariaLabel: 'Mention', hidden: true });
    // Files a draft uploaded that the picker no longer holds (a reload empties it): they go with it.
    const keptLine = h('span');
    const dropKept = h('button', { type: 'button', textContent: 'Remove files' });
    const keptFiles = h('span', { className: 'kept', hidden: true }, keptLine, dropKept);
    const composer = h(
      'form',
      { className: 'composer' },
      text,
      mentionPicker,
      canned,
      picker,
      keptFiles,
      h('label', {}, noteBox, ' Private note'),
      h('button', { type: 'submit', textContent: 'Send' }),
    );
    const view = h(
      'section',
      { className: 'view', hidden: true },
      h('div', { className: 'head' }, who, details, assignButton, transferTo, transferNote, transferButton, resolveButton, reopenButton, macros),
      unfollowed,
      olderButton,
      log,
      typing,
      notice,
      composer,
    );
    const workspace = h(
      'div',
      { className: 'workspace', hidden: true },
      h('header', {}, h('strong', { textContent: 'Conversa' }), state, whoAmI, presence, signOutButton),
      h('div', { className: 'main' }, h('nav', { className: 'side' }, h('div', { className: 'filters' }, ...filterButtons), mentionNotice, inbox, moreButton), view),
    );
    root.append(signin, workspace);

    const say = (line) => (notice.textContent = line || '');
    const setState = (s) => (state.textContent = s);

    /** A call of the API, its answer read by `read` (JSON by default; an error's always is). */
    async function api(method, path, body, read = (res) => (res.status === 204 ? {} : res.json())) {
      const gen = generation;
      const res = await fetch(`${apiUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      const answer = await (res.ok ? read(res) : res.json()).catch(() => ({}));
      if (gen !== generation) throw Object.assign(new Error('signed out'), { stale: true });
      if (res.status === 401) {
        signOut('Your session ended: sign in again.');
        throw Object.assign(new Error('signed out'), { stale: true });
      }
      if (!res.ok) throw Object.assign(new Error(answer.error?.message || answer.message || `HTTP ${res.status}`), { status: res.status, code: answer.error?.code });
      return answer;
    }

    /** Runs an action; its failure is said under the conversation (a stale answer is dropped quietly). */
    const attempt = (promise) => promise.catch((error) => error.stale || say(error.message));

    function send(frame) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
    }

    // ---- Sign in and out ----

    function signIn(value) {
      const claims = claimsOf(value);
      if (!claims || !claims.sub) return void (signinNotice.textContent = 'That is not an id token.');
      if (claims.exp && claims.exp * 1000 <= Date.now()) return void (signinNotice.textContent = 'That token has expired.');
      // A refreshed token for the same agent is used from the next request and reconnection on;
      // another agent's starts afresh (one socket, theirs).
      if (token && me.id === claims.sub) {
        token = value;
        armExpiry(claims);
        return void sessionStorage.setItem(TOKEN_KEY, token);
      }
      if (token) signOut();
      token = value;
      armExpiry(claims);
      me = { id: claims.sub, name: claims.name || claims.sub };
      loadDrafts();
      // A focused feed keeps live only what an agent holds or may take (admins follow all): the
      // inbox lists that alone, as another list would go stale.
      focused = options.feed === 'focused' && !(claims['cognito:groups'] || []).includes('admin');
      const lists = focused ? FOCUSED_FILTERS : Object.keys(FILTERS);
      for (const button of filterButtons) button.hidden = !lists.includes(button.dataset.filter);
      if (!lists.includes(filter)) filter = lists[0];
      sessionStorage.setItem(TOKEN_KEY, token);
      signin.hidden = true;
      workspace.hidden = false;
      whoAmI.textContent = me.name;
      signinNotice.textContent = '';
      showFilter(filter, false);
      connect();
    }

    /**
     * The session ends when the token does: an open socket outlives it (nothing closes it then), so
     * without this the console would go on showing what the API no longer lets this token read.
     */
    function armExpiry(claims) {
      clearTimeout(expiryTimer);
      if (claims.exp) expiryTimer = setTimeout(() => signOut('Your session ended: sign in again.'), Math.min(claims.exp * 1000 - Date.now(), 2 ** 31 - 1));
    }

    /** `forget`: the agent chose to sign out, so what they were writing leaves the browser too. */
    function signOut(why, forget = false) {
      generation += 1;
      clearTimeout(expiryTimer);
      sessionStorage.removeItem(TOKEN_KEY);
      if (forget && me) sessionStorage.removeItem(DRAFTS_KEY + me.id);
      drafts = new Map();
      token = me = undefined;
      clearTimeout(retryTimer);
      clearInterval(pinger);
      if (socket) {
        socket.onclose = socket.onmessage = socket.onopen = null;
        socket.close();
        socket = undefined;
      }
      conversations.clear();
      mentioned.clear();
      mentionNotice.hidden = true;
      listed = new Set();
      inboxTurn = Promise.resolve();
      inbox.replaceChildren();
      showUnread(0);
      closeConversation();
      workspace.hidden = true;
      signin.hidden = false;
      signinNotice.textContent = why || '';
    }

    signin.addEventListener('submit', async (event) => {
      event.preventDefault();
      const form = new FormData(signin);
      if (!options.devAuth) return signIn(String(form.get('token')).trim());
      const res = await fetch(`${apiUrl}/local/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sub: String(form.get('agentId')).trim(), role: form.get('role'), ...(form.get('name') ? { name: String(form.get('name')).trim() } : {}) }),
      }).catch((error) => ({ ok: false, json: async () => ({ error: { message: error.message } }) }));
      const answer = await res.json().catch(() => ({}));
      if (!res.ok) return void (signinNotice.textContent = answer.error?.message || 'Could not sign in.');
      signIn(answer.token);
    });
    signOutButton.onclick = () => signOut(undefined, true);

    // ---- The WebSocket ----

    function connect() {
      setState('connecting');
      showPresenceStale();
      const gen = generation;
      socket = new WebSocket(`${options.websocketUrl}?token=${encodeURIComponent(token)}${options.feed ? `&feed=${options.feed}` : ''}`);
      socket.onopen = () => {
        backoff = 1000;
        setState('online');
        // A choice can be sent again; what it is shows once /v1/agents (or a frame) says.
        presence.disabled = false;
        clearInterval(pinger);
        pinger = setInterval(() => send({ action: 'ping' }), PING_MS);
        attempt(loadTeam());
        // Loaded once the socket is open, and again after each reconnection: nothing said while
        // no socket listened is missed. As many pages as the list showed ("More", or frames) are read
        // again: the agent keeps their place in it.
        attempt(inTurn(() => loadInbox(false, Math.ceil(listed.size / INBOX_PAGE))));
        if (openId) attempt(loadHistory(openId));
      };
      socket.onmessage = (event) => onFrame(JSON.parse(event.data));
      socket.onclose = () => {
        clearInterval(pinger);
        if (gen !== generation) return;
        // A refused handshake looks like any drop: an expired token means signing in again.
        const claims = claimsOf(token);
        if (claims?.exp && claims.exp * 1000 <= Date.now()) return signOut('Your session ended: sign in again.');
        setState('reconnecting');
        showPresenceStale();
        retryTimer = setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      };
    }

    presence.onchange = () => send({ action: 'setPresence', status: presence.value });

    /**
     * While no socket listens, presence is what it was: the agent's own reads "unknown" (a choice
     * could not be sent, and the server turns an agent without a connection away after a grace
     * period), colleagues' "last known".
     */
    function showPresenceStale() {
      presenceLive = false;
      presence.disabled = true;
      presence.value = '';
      renderTeam();
    }

    function onFrame(frame) {
      switch (frame.type) {
        case 'conversation.updated':
          remember(frame.conversation);
          break;
        case 'message.created':
        case 'message.updated':
          if (frame.conversation) remember(frame.conversation);
          // Without it (unknown, or a frame cut for size, whose activity a focused feed hears of
          // no other way), the conversation is read.
          else if (options.feed || !conversations.has(frame.conversationId)) attempt(api('GET', `/v1/conversations/${encodeURIComponent(frame.conversationId)}`).then(remember));
          if (frame.conversationId !== openId) break;
          // A frame over API Gateway's 128 KiB carries no text: the history has it whole.
          if (frame.message.truncated) attempt(loadHistory(openId));
          // An update of a message older than the pages shown (a read receipt reaching back) waits for
          // its page: shown now, it would sit above the history next to messages it was never beside.
          else if (frame.type === 'message.updated' && isBeforeShown(frame.message.id)) break;
          else renderMessage(frame.message);
          // Only the typist's own message ends their sign: the customer writing does not end a
          // colleague's "is writing a note…", nor a colleague's reply the customer's "is typing…".
          if (frame.type === 'message.created' && frame.message.sender?.id === typingSign.by) showTyping('');
          if (frame.type === 'message.created' && frame.message.direction === 'inbound') markRead();
          break;
        case 'typing':
          if (frame.conversationId === openId && !(frame.sender?.type === 'agent' && frame.sender.id === me.id)) {
            const name = frame.sender?.name || (frame.sender?.type === 'contact' ? 'The customer' : 'Someone');
            showTyping(frame.state === 'on' ? `${name} is ${frame.private ? 'writing a note' : 'typing'}…` : '', frame.sender?.id);
          }
          break;
        case 'read':
          // The customer read up to this message: what was sent to them up to it is seen (ids grow with time).
          if (frame.conversationId === openId && frame.by?.type === 'contact') {
            for (const node of log.querySelectorAll('.message.outbound:not(.note)')) {
              if (node.dataset.id <= frame.messageId) node.dataset.seen = '1';
              setMeta(node);
            }
          }
          break;
        case 'presence': {
          const known = team.find((a) => a.id === frame.agentId);
          // Frames of separate changes may come in either order: the older one changes nothing.
          if (known && frame.at && known.presenceAt && frame.at < known.presenceAt) break;
          if (known) Object.assign(known, { status: frame.status, presenceAt: frame.at });
          else team.push({ id: frame.agentId, status: frame.status, presenceAt: frame.at });
          if (frame.agentId === me.id && (document.activeElement !== presence || !presence.value)) presence.value = frame.status;
          renderTeam();
          break;
        }
        case 'conversation.deleted':
          forgetConversation(frame.conversationId);
          break;
        case 'mention':
          showMention(frame);
          break;
        case 'error':
          say(frame.message || frame.code);
          break;
      }
    }

    /** A colleague's note mentioned this agent: a notice naming the conversation, to open it from. */
    function showMention(frame) {
      if (!mentioned.has(frame.conversationId) || mentioned.get(frame.conversationId) < frame.at) mentioned.set(frame.conversationId, frame.at);
      const known = conversations.get(frame.conversationId);
      // The Mentions list shows it at once; an unknown conversation is read for it.
      if (known) remember(known);
      else attempt(api('GET', `/v1/conversations/${encodeURIComponent(frame.conversationId)}`).then(remember));
      const customer = frame.contact?.name || 'a customer';
      mentionLine.textContent = `${frame.by?.name || frame.by?.id} mentioned you in the conversation with ${customer}: “${frame.text.slice(0, 120)}”`;
      mentionNotice.dataset.id = frame.conversationId;
      mentionNotice.hidden = false;
    }
    mentionOpen.onclick = () => {
      mentionNotice.hidden = true;
      openConversation(mentionNotice.dataset.id);
    };

    // ---- The inbox ----

    /** Keeps the newest version of a conversation (a late answer never undoes a newer frame) and shows it. */
    function remember(conversation, live = true) {
      if (!conversation?.id || !me) return;
      const known = conversations.get(conversation.id);
      const latest = known && known.updatedAt > conversation.updatedAt ? known : conversation;
      conversations.set(latest.id, latest);
      if (!FILTERS[filter].matches(latest, me.id, mentioned)) listed.delete(latest.id);
      else {
        listed.add(latest.id);
        if (live) arrived.add(latest.id);
      }
      renderInbox();
      if (latest.id !== openId) return;
      renderHead();
      markRead();
    }

    /**
     * The customer was erased (the `conversation.deleted` extension): nothing of the conversation
     * stays on screen or in this tab's drafts, and nothing more is asked about it.
     */
    function forgetConversation(id) {
      if (!id || !me) return;
      conversations.delete(id);
      listed.delete(id);
      arrived.delete(id);
      mentioned.delete(id);
      drafts.delete(id);
      storeDrafts();
      if (mentionNotice.dataset.id === id) mentionNotice.hidden = true;
      if (openId === id) {
        // Its typing sign is not ended by a frame about a conversation that is no more.
        clearTimeout(typingSign.idle);
        typingSign.since = 0;
        closeConversation();
      }
      renderInbox();
    }

    /** The next page ("More"), or the list anew from its first page, `pages` of them (a reconnection). */
    async function loadInbox(more, pages = 1) {
      const gen = generation;
      const shown = filter;
      if (!more) arrived = new Set();
      const read = (cursor) => api('GET', `/v1/conversations?${FILTERS[shown].query}&limit=${INBOX_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      let page = await read(more ? nextCursor : null);
      const items = [...page.items];
      let count = 1;
      // Swapped in once all are read: a list cut to its first page meanwhile would lose the agent's place.
      for (; !more && count < Math.min(pages, MAX_INBOX_PAGES_AGAIN) && page.nextCursor && gen === generation && shown === filter; count += 1) {
        page = await read(page.nextCursor);
        items.push(...page.items);
      }
      if (gen !== generation || shown !== filter) return;
      nextCursor = page.nextCursor;
      moreButton.hidden = !nextCursor;
      // A first page is the list anew (one resolved while the socket was down leaves it), with
      // what frames brought in while it was on its way.
      if (!more) listed = new Set(arrived);
      for (const conversation of items) {
        if (conversation.mention && !(mentioned.get(conversation.id) > conversation.mention.at)) mentioned.set(conversation.id, conversation.mention.at);
        remember(conversation, false);
      }
      renderInbox();
    }

    /** Runs `load` once the inbox loads before it in turn are done. */
    function inTurn(load) {
      const run = inboxTurn.then(load);
      inboxTurn = run.catch(() => undefined);
      return run;
    }

    function showFilter(key, load = true) {
      filter = key;
      nextCursor = null;
      listed = new Set();
      moreButton.hidden = true;
      for (const button of filterButtons) button.setAttribute('aria-pressed', String(button.dataset.filter === key));
      renderInbox();
      if (load) attempt(loadInbox());
    }

    /** The filter's list, newest activity first. */
    function renderInbox() {
      if (!me) return;
      // The Mentions list by its latest mention, the others by their activity.
      const activity = (c) => (filter === 'mentions' ? mentioned.get(c.id) : c.lastMessageAt || c.updatedAt) || '';
      const shown = [...listed].map((id) => conversations.get(id)).sort((a, b) => (activity(b) > activity(a) ? 1 : -1));
      inbox.replaceChildren(
        ...shown.map((c) => {
          const button = h(
            'button',
            { type: 'button', className: 'conversation' },
            // Isolated, in its own direction: a right-to-left name neither leans left nor reorders what follows.
            h('bdi', { textContent: contactName(c) }),
            c.unreadCount > 0 && c.id !== openId ? h('span', { className: 'unread', textContent: String(c.unreadCount) }) : undefined,
            h('span', { className: 'sub', textContent: `${c.channel} · ${assigneeLabel(c)} · ${when(c.lastMessageAt)}` }),
          );
          button.dataset.id = c.id;
          button.setAttribute('aria-current', String(c.id === openId));
          button.onclick = () => openConversation(c.id);
          return h('li', {}, button);
        }),
      );
      // The open one counts too: a tab in the background does not mark it read.
      showUnread(shown.reduce((sum, c) => sum + (c.unreadCount > 0 ? c.unreadCount : 0), 0));
    }

    /** The customers' messages nobody read yet in the list shown, in the tab's title: seen from other tabs. */
    function showUnread(count) {
      const next = count > 0 ? `(${count}) ${title}` : title;
      // Written only when it changes (a page that set its own title in between keeps it until then).
      if (next !== shownTitle) document.title = shownTitle = next;
    }

    const assigneeLabel = (c) => (!c.assigneeId ? 'unassigned' : c.assigneeId === me.id ? 'me' : c.assigneeId);
    moreButton.onclick = () => {
      const gen = generation;
      const shown = filter;
      // After a reload it waited for, from where that reload ended (if there is more, still of this filter and agent).
      attempt(inTurn(() => gen === generation && shown === filter && nextCursor && loadInbox(true)));
    };

    // ---- One conversation ----

    function closeConversation() {
      setTyping(false);
      openId = historyOf = null;
      view.hidden = true;
      log.replaceChildren();
      forgetFiles();
      showDraft();
    }

    function openConversation(id) {
      if (openId !== id) {
        setTyping(false);
        keepDraft();
        openId = id;
        historyOf = null;
        // The previous conversation's way back is no cursor of this one's (the API refuses it).
        olderCursor = null;
        olderButton.hidden = true;
        // A transfer being set up was for the conversation left: it never goes with the next one.
        transferNote.value = transferTo.value = '';
        lastRead = undefined;
        showSuggestions([]);
        log.replaceChildren();
        forgetFiles();
        showTyping('');
        showDraft();
      }
      view.hidden = false;
      // Not heard of yet (a mention of a conversation no list loaded): read for its head.
      if (!conversations.has(id)) attempt(api('GET', `/v1/conversations/${encodeURIComponent(id)}`).then(remember));
      renderHead();
      renderInbox();
      attempt(loadHistory(id));
      attempt(loadTeam());
      attempt(loadCanned());
      attempt(loadMacros());
    }

    function renderHead() {
      const c = conversations.get(openId);
      if (!c) return;
      who.textContent = [contactName(c), c.contact?.email, c.contact?.phone].filter(Boolean).join(' · ');
      // Texted STOP: replies are refused (422 opted_out) until they text START. The customer's newest CSAT rating, with their words.
      const rated = c.csat ? ` · rated ${c.csat.score}/5${c.csat.comment ? `: “${c.csat.comment}”` : ''}` : '';
      details.textContent = `${c.channel} · ${c.status} · ${c.assigneeId ? `assigned to ${assigneeLabel(c)}` : 'unassigned'}${c.optedOut ? ' · opted out of texts' : ''}${rated}`;
      details.dataset.status = c.status;
      assignButton.disabled = c.assigneeId === me.id;
      resolveButton.hidden = c.status === 'resolved';
      reopenButton.hidden = c.status !== 'resolved';
      // Handed to a colleague, it leaves a focused feed (which says so once, with this very change):
      // the view says so rather than silently going stale, and reads it again on demand.
      const gone = isUnfollowed(c);
      unfollowed.hidden = !gone;
      if (gone) unfollowedLine.textContent = `Handed to ${nameOf(c.assigneeId)}: this console no longer follows it live; Reload shows what happened since.`;
    }

    /** On the focused feed, a colleague's conversation this agent never wrote in while it was theirs. */
    const isUnfollowed = (c) => focused && !!c.assigneeId && c.assigneeId !== me.id && !(c.participants || []).includes(me.id);
    const nameOf = (agentId) => team.find((a) => a.id === agentId)?.name || agentId;

    /** The shown conversation and its history read again: what no frame brings any more. */
    function reloadConversation() {
      const id = openId;
      if (!id) return;
      attempt(api('GET', `/v1/conversations/${encodeURIComponent(id)}`).then(remember));
      attempt(loadHistory(id));
    }

    /** The newest page of the history (older pages on demand), merged by id with what came live. */
    async function loadHistory(id, cursor) {
      const read = (from) => api('GET', `/v1/conversations/${encodeURIComponent(id)}/messages?limit=50${from ? `&cursor=${encodeURIComponent(from)}` : ''}`);
      // The newest page read again (a reconnection, a cut frame) over a history shown: it reads back
      // to the newest message shown, so more than a page said meanwhile leaves no gap.
      const newest = !cursor && historyOf === id ? log.lastElementChild?.dataset.id : undefined;
      const page = await read(cursor);
      if (id !== openId) return;
      let next = page.nextCursor;
      // An older page goes above what the agent reads, who stays at the same place in it.
      const fromEnd = log.scrollHeight - log.scrollTop;
      for (const message of page.items) renderMessage(message);
      if (cursor) log.scrollTop = log.scrollHeight - fromEnd;
      while (newest && next && !page.items.some((m) => m.id <= newest)) {
        const older = await read(next);
        if (id !== openId) return;
        for (const message of older.items) renderMessage(message);
        if (older.items.some((m) => m.id <= newest)) break;
        next = older.nextCursor;
      }
      historyOf = id;
      // Where "Older messages" goes on from: the first page's end, or the older page's it read; a
      // history read again up to what was shown keeps where that went on from.
      if (cursor ? olderCursor === cursor : !newest) olderCursor = page.nextCursor;
      olderButton.hidden = !olderCursor;
      if (!cursor) log.scrollTop = log.scrollHeight;
      markRead();
    }
    olderButton.onclick = () => olderCursor && attempt(loadHistory(openId, olderCursor));

    /** A message the log lacks that is older than its first, with older pages still to read. */
    function isBeforeShown(messageId) {
      const first = log.firstElementChild?.dataset.id;
      return historyOf === openId && !!olderCursor && !!first && messageId < first;
    }

    /** The team, for Transfer, and this agent's own presence as the API keeps it (a choice outlives reconnections). */
    async function loadTeam() {
      const gen = generation;
      const answer = await api('GET', '/v1/agents');
      if (gen !== generation) return;
      // A frame that came while the list was read may be newer than what it says.
      for (const agent of answer.items) {
        const live = team.find((a) => a.id === agent.id);
        if (live?.presenceAt && agent.presenceAt && live.presenceAt > agent.presenceAt) Object.assign(agent, { status: live.status, presenceAt: live.presenceAt });
      }
      // Live again only with a socket to keep it so (it may have dropped while the list was read:
      // the own status then stays "unknown", not what the list said before the drop).
      presenceLive = socket?.readyState === WebSocket.OPEN;
      const own = answer.items.find((a) => a.id === me.id);
      if (presenceLive && own && (document.activeElement !== presence || !presence.value)) presence.value = own.status;
      // Not listed yet: never chose, so the connection made them online.
      else if (presenceLive && !own && !presence.value) presence.value = 'online';
      team = answer.items;
      renderTeam();
    }

    /** Colleagues to transfer to, as present as they are now: online first, then away, then offline. */
    function renderTeam() {
      const rank = (a) => ['online', 'away', 'offline'].indexOf(a.status) >>> 0;
      const others = team.filter((a) => a.id !== me.id).sort((a, b) => rank(a) - rank(b) || (a.name || a.id).localeCompare(b.name || b.id));
      const chosen = transferTo.value;
      transferTo.replaceChildren(
        h('option', { value: '', textContent: 'Transfer to…' }),
        ...others.map((a) => h('option', { value: a.id, textContent: `${a.name || a.id} (${presenceLive ? '' : 'last known: '}${a.status})` })),
      );
      if (others.some((a) => a.id === chosen)) transferTo.value = chosen;
      // The head names a colleague by the team's names.
      if (openId) renderHead();
    }

    async function loadCanned() {
      const gen = generation;
      const responses = await api('GET', '/v1/canned-responses');
      if (gen !== generation) return;
      canned.replaceChildren(
        h('option', { value: '', textContent: 'Canned response…' }),
        ...responses.items.map((r) => h('option', { value: r.id, textContent: `/${r.shortCode}: ${r.text.slice(0, 60)}` })),
      );
    }

    async function loadMacros() {
      const gen = generation;
      const answer = await api('GET', '/v1/macros');
      if (gen !== generation) return;
      macros.replaceChildren(h('option', { value: '', textContent: 'Macros…' }), ...answer.items.map((m) => h('option', { value: m.id, textContent: m.name })));
    }

    /** One element per message, in id order (ids grow with time); a later frame updates it. */
    function renderMessage(message) {
      let node = log.querySelector(`.message[data-id="${CSS.escape(message.id)}"]`);
      // A new last message comes into view if the agent was at the newest (or sent it); one who
      // scrolled back to read keeps their place.
      let follow = false;
      if (!node) {
        node = h('div');
        node.dataset.id = message.id;
        const after = [...log.children].find((other) => other.dataset.id > message.id);
        const own = message.sender?.type === 'agent' && message.sender.id === me?.id;
        follow = !after && (own || log.scrollHeight - log.scrollTop - log.clientHeight < FOLLOW_SLACK_PX);
        log.insertBefore(node, after || null);
      }
      // Frames and the reply's own answer can arrive in any order: a status never goes back.
      const status = (STATUS_RANK[node.dataset.status] ?? -1) > (STATUS_RANK[message.status] ?? 0) ? node.dataset.status : message.status;
      node.className = ['message', message.direction, message.private ? 'note' : '', status === 'failed' ? 'failed' : ''].join(' ').trim();
      node.dataset.status = status;
      node.dataset.sender = message.sender?.name || message.sender?.type || '';
      node.dataset.at = message.createdAt;
      const files = (message.attachments || []).map((file, index) => (file.type === 'csat' ? undefined : fileButton(message.id, index, file)));
      // A customer may quote a reply by any of its parts' ids (one sent in several).
      const providerIds = [message.providerMessageId, ...(message.otherProviderMessageIds || [])].filter(Boolean);
      if (providerIds.length > 0) node.dataset.providerIds = providerIds.join(' ');
      if (message.replyTo?.providerMessageId) {
        node.dataset.replyTo = message.replyTo.providerMessageId;
        node.dataset.replyText = message.replyTo.text || '';
      }
      // Laid out in the text's own direction (its first strong letter): Arabic or Hebrew reads right to left.
      node.replaceChildren(
        ...(node.dataset.replyTo ? [quoteOf(node)] : []),
        h('div', { className: 'text', dir: 'auto', textContent: message.text }),
        ...files.filter(Boolean),
        h('span', { className: 'meta' }),
      );
      setMeta(node);
      // Replies shown before the message they quote (an older page read later, a send's id known
      // only once sent) find it now.
      for (const other of log.querySelectorAll('.message[data-reply-to]')) {
        if (other !== node && providerIds.includes(other.dataset.replyTo)) other.querySelector(':scope > .quote')?.replaceWith(quoteOf(other));
      }
      // Scrolled once the message has its height, or it would stay below the fold.
      if (follow) log.scrollTop = log.scrollHeight;
    }

    /**
     * "↪ <excerpt>" above a customer's reply: the quoted message's words when it is shown here (a
     * click brings it into view), else those the provider handed over (Telegram), else a mention.
     */
    function quoteOf(node) {
      const id = node.dataset.replyTo;
      const quoted = [...log.querySelectorAll('.message[data-provider-ids]')].find((other) => other.dataset.providerIds.split(' ').includes(id));
      const words = (quoted && excerptOf(quoted)) || node.dataset.replyText || 'Reply to an earlier message';
      const quote = h('div', { className: 'quote', dir: 'auto', textContent: `↪ ${words}` });
      if (quoted) {
        quote.title = 'Show the quoted message';
        quote.onclick = () => quoted.isConnected && quoted.scrollIntoView({ block: 'center' });
      }
      return quote;
    }

    /** A shown message's words on one line (its files' names when it has none), cut to QUOTE_CHARS. */
    function excerptOf(node) {
      const text = node.querySelector(':scope > .text')?.textContent || [...node.querySelectorAll(':scope > .file')].map((file) => file.textContent).join(' ');
      const chars = [...text.replace(/\s+/g, ' ').trim()];
      return chars.length > QUOTE_CHARS ? `${chars.slice(0, QUOTE_CHARS - 1).join('')}…` : chars.join('');
    }

    /** A file of a message: an image shows as its thumbnail, and a click saves any file under its name. */
    function fileButton(messageId, index, file) {
      const name = file.name || file.type;
      const button = h('button', { type: 'button', className: 'file', title: `Download ${name}` }, `📎 ${name}`);
      button.dataset.index = String(index);
      if (file.type === 'image') {
        const thumbnail = h('img', { alt: name });
        button.prepend(thumbnail);
        attempt(fileUrl(messageId, index, file).then((url) => (thumbnail.src = url)));
      }
      button.onclick = () =>
        attempt(
          fileUrl(messageId, index, file).then((url) => {
            const save = h('a', { href: url, download: file.name || 'file' });
            root.append(save);
            save.click();
            save.remove();
          }),
        );
      return button;
    }

    /**
     * The file's bytes as an object URL, fetched once while its conversation is shown (again once
     * a copy replaced the provider's link). The attachment route answers a redirect to a
     * short-lived URL, which fetch follows without the token.
     */
    function fileUrl(messageId, index, file) {
      const key = `${messageId}/${index}`;
      const known = fileUrls.get(key);
      if (known && known.source === file.url) return known.url;
      if (known) known.url.then(URL.revokeObjectURL, () => undefined);
      const path = `/v1/conversations/${encodeURIComponent(openId)}/messages/${encodeURIComponent(messageId)}/attachments/${index}`;
      const url = api('GET', path, undefined, (res) => res.blob()).then((blob) => URL.createObjectURL(blob));
      fileUrls.set(key, { source: file.url, url });
      // A failed fetch is tried again at the next render or click.
      url.catch(() => fileUrls.get(key)?.url === url && fileUrls.delete(key));
      return url;
    }

    function forgetFiles() {
      for (const { url } of fileUrls.values()) url.then(URL.revokeObjectURL, () => undefined);
      fileUrls.clear();
    }

    /** Who, when, and for what went to the customer how far it got. */
    function setMeta(node) {
      const parts = [node.dataset.sender, when(node.dataset.at)];
      if (node.classList.contains('note')) parts.push('private note');
      // The customer's read, live (a `read` frame) or as stored (`read`): said one way.
      else if (node.classList.contains('outbound')) parts.push((node.dataset.seen && node.dataset.status !== 'failed') || node.dataset.status === 'read' ? 'seen' : node.dataset.status);
      node.querySelector('.meta:last-child').textContent = parts.filter(Boolean).join(' · ');
    }

    /** The agent read what the customer wrote: their "Seen", and the conversation's unread count back to 0. */
    function markRead() {
      if (!openId || document.visibilityState !== 'visible') return;
      // A colleague's conversation looked into stays unread for them (as Chatwoot keeps its
      // assignee's own last-seen): read once it is this agent's, or nobody's.
      const c = conversations.get(openId);
      if (c?.assigneeId && c.assigneeId !== me.id) return;
      const last = [...log.querySelectorAll('.message.inbound')].pop();
      if (!last || last.dataset.id === lastRead) return;
      lastRead = last.dataset.id;
      send({ action: 'markRead', conversationId: openId, messageId: lastRead });
    }
    document.addEventListener('visibilitychange', markRead);
    reloadButton.onclick = reloadConversation;
    // Back in this tab: an unfollowed conversation is read again, as frames no longer keep it.
    document.addEventListener('visibilitychange', () => {
      const c = openId && conversations.get(openId);
      if (document.visibilityState === 'visible' && c && isUnfollowed(c)) reloadConversation();
    });

    /** Nothing for the conversation shown; for another, which one (an answer that came after the agent moved on). */
    function where(id) {
      if (id === openId) return '';
      const about = conversations.get(id);
      return ` in the conversation with ${about ? contactName(about) : id}`;
    }

    /** Conversation actions: each answers with the conversation, which the inbox and head then show. */
    function act(path, body, done) {
      const id = openId;
      api('POST', `/v1/conversations/${encodeURIComponent(id)}/${path}`, body || {}).then(
        (conversation) => {
          remember(conversation);
          if (done && id === openId) done();
        },
        (error) => {
          if (error.stale) return;
          // Another conversation shown by the time it failed: the refusal names the one it was about.
          say(id === openId ? error.message : `Not done${where(id)}: ${error.message}`);
        },
      );
    }
    assignButton.onclick = () => act('assign', { agentId: me.id });
    resolveButton.onclick = () => act('resolve');
    reopenButton.onclick = () => act('reopen');
    transferButton.onclick = () => {
      if (!transferTo.value) return say('Choose whom to transfer to.');
      const note = transferNote.value.trim();
      // The note is kept until the transfer went through.
      act('transfer', { agentId: transferTo.value, ...(note ? { note } : {}) }, () => (transferNote.value = transferTo.value = ''));
    };

    // ---- Composer ----

    canned.onchange = () => {
      const id = canned.value;
      const conversationId = openId;
      canned.value = '';
      if (!id || !conversationId) return;
      // Filled for this conversation's customer and this agent, then put where the cursor is.
      attempt(
        api('GET', `/v1/canned-responses/${encodeURIComponent(id)}/render?conversationId=${encodeURIComponent(conversationId)}`).then((rendered) => {
          // Another conversation opened meanwhile: the text (its customer's name in it) joins the draft of the one it was filled for.
          if (openId !== conversationId) {
            const d = draftOf(conversationId);
            // Put after what was written there, not run into its last word.
            d.text += (d.text && !/\s$/.test(d.text) ? ' ' : '') + rendered.text;
            return storeDrafts();
          }
          text.setRangeText(rendered.text, text.selectionStart, text.selectionEnd, 'end');
          text.dispatchEvent(new Event('input'));
          text.focus();
        }),
      );
    };

    // The run that failed last: choosing the same macro on the same conversation again retries it
    // under the same clientRequestId, so the API goes on from the failed action and sends nothing twice.
    let failedRun = null;
    macros.onchange = () => {
      const macroId = macros.value;
      const name = macros.selectedOptions[0]?.textContent;
      macros.value = '';
      if (!macroId || !openId) return;
      const id = openId;
      const same = failedRun && failedRun.conversationId === id && failedRun.macroId === macroId;
      const run = same ? failedRun : { conversationId: id, macroId, clientRequestId: crypto.randomUUID() };
      say(`Running ${name}…`);
      api('POST', `/v1/conversations/${encodeURIComponent(id)}/macros/${encodeURIComponent(macroId)}/run`, { clientRequestId: run.clientRequestId }).then(
        (answer) => {
          if (failedRun === run) failedRun = null;
          remember(answer.conversation);
          if (openId === id) attempt(loadHistory(id));
          say(`${name} done${where(id)}.`);
        },
        (error) => {
          if (error.stale) return;
          // Refused before it started (the macro or conversation gone, bad input): nothing to go on with.
          failedRun = error.code === 'macro_action_failed' || !error.status || error.status >= 500 ? run : null;
          say(`${name} failed${where(id)}: ${error.message}${failedRun ? ' (choose it again to retry from there)' : ''}`);
        },
      );
    };

    /** The composer says which it writes: a reply, or a note the customer never sees. */
    function showNoteMode() {
      composer.classList.toggle('note', noteBox.checked);
      text.placeholder = noteBox.checked ? 'Private note (the customer never sees it; @ mentions a colleague)…' : 'Reply…';
      suggest();
    }

    const sameFiles = (a, b) => a.length === b.length && a.every((file, i) => file === b[i]);
    const isEmpty = (d) => !d.text && d.files.length === 0 && !d.uploads;

    function draftOf(id) {
      let d = drafts.get(id);
      if (!d) drafts.set(id, (d = { text: '', note: false, files: [] }));
      return d;
    }

    /** The drafts of this agent this tab kept (sessionStorage: a reload keeps them, a closed tab does not). */
    function loadDrafts() {
      drafts = new Map();
      try {
        for (const [id, d] of Object.entries(JSON.parse(sessionStorage.getItem(DRAFTS_KEY + me.id) || '{}'))) {
          drafts.set(id, { text: String(d.text || ''), note: d.note === true, files: [], clientMessageId: d.clientMessageId, content: d.content, uploads: d.uploads, error: d.error, picked: Array.isArray(d.picked) ? d.picked : [] });
        }
      } catch {
        // Unreadable: no drafts, rather than no console.
      }
    }

    /** Empty drafts go; the rest is written for a reload (picked files cannot be: their uploads are). */
    function storeDrafts() {
      if (!me) return;
      const kept = {};
      for (const [id, d] of drafts) {
        if (isEmpty(d)) drafts.delete(id);
        else kept[id] = { text: d.text, note: d.note, clientMessageId: d.clientMessageId, content: d.content, uploads: d.uploads, error: d.error, picked: d.picked };
      }
      try {
        sessionStorage.setItem(DRAFTS_KEY + me.id, JSON.stringify(kept));
      } catch {
        // Storage full or refused: the drafts still live as long as the page.
      }
    }

    /** The open conversation's composer, as the agent leaves it, into its draft. */
    function keepDraft() {
      if (!openId || !me) return;
      const d = draftOf(openId);
      d.text = text.value;
      d.note = noteBox.checked;
      d.files = [...picker.files];
      // The colleagues an "@" picked in it, by the name it wrote: a note mentions those still in its text.
      d.picked = [...picked];
      storeDrafts();
    }

    /** The open conversation's draft into the composer (an empty one when there is none). */
    function showDraft() {
      const d = (openId && drafts.get(openId)) || { text: '', note: false, files: [] };
      picked = new Map(d.picked || []);
      // Written only when it differs: the cursor stays where the agent is typing.
      if (text.value !== d.text) text.value = d.text;
      noteBox.checked = d.note;
      showNoteMode();
      if (!sameFiles([...picker.files], d.files)) {
        const chosen = new DataTransfer();
        for (const file of d.files) chosen.items.add(file);
        picker.files = chosen.files;
      }
      keptFiles.hidden = !d.uploads || d.files.length > 0;
      keptLine.textContent = d.uploads ? `📎 ${d.uploads.map((u) => u.name).join(', ')} ` : '';
      say(d.error ? `Not sent: ${d.error}` : '');
    }

    noteBox.onchange = () => {
      // A reply's "typing…" ends as the agent turns to a note (the customer would see it for 6 s more);
      // the next key says "on" again, as a note's.
      if (typingSign.since && typingSign.private !== noteBox.checked) setTyping(false);
      showNoteMode();
      keepDraft();
    };

    dropKept.onclick = () => {
      if (!openId) return;
      draftOf(openId).uploads = undefined;
      keepDraft();
      showDraft();
    };

    /** Upload ticket, the file straight to storage, then the reply names it by its uploadId. */
    async function upload(file) {
      const ticket = await api('POST', '/v1/uploads', { contentType: file.type || 'application/octet-stream', size: file.size });
      const put = await fetch(ticket.url, { method: ticket.method, headers: ticket.headers, body: file });
      if (!put.ok) throw new Error(`the upload of ${file.name} was refused (${put.status})`);
      return { uploadId: ticket.uploadId, name: file.name };
    }

    composer.addEventListener('submit', async (event) => {
      event.preventDefault();
      const id = openId;
      if (!id) return;
      keepDraft();
      const d = drafts.get(id);
      const value = d ? d.text.trim() : '';
      if (!d || (!value && d.files.length === 0 && !d.uploads)) return;
      // On its way already (its files uploading): another Send would upload them again, under new
      // ids, and so be another message. Sent again once this attempt is answered, it is the same.
      if (d.sending) return;
      const { files, note } = d;
      // Only a note mentions, and only the names still in its text.
      const mentions = note ? [...new Set((d.picked || []).filter(([name]) => value.includes(name)).map(([, agentId]) => agentId))] : [];
      d.error = undefined;
      storeDrafts();
      setTyping(false);
      showSuggestions([]);
      say(files.length > 0 ? 'Sending…' : '');
      // Still this draft, and this attempt its latest (the agent may clear it, or send it again, meanwhile).
      let clientMessageId;
      const current = () => drafts.get(id) === d && (!clientMessageId || d.clientMessageId === clientMessageId);
      d.sending = true;
      try {
        const attachments = d.uploads || (await Promise.all(files.map(upload)));
        if (current() && sameFiles(d.files, files)) d.uploads = attachments;
        // What an attempt that got no answer sent, sent again: the same message, under its id (the
        // API stores it once). Anything else (edited, other files, a note now) is another message.
        const content = JSON.stringify([value, note, attachments.map((a) => a.uploadId), mentions]);
        if (!d.clientMessageId || d.content !== content) Object.assign(d, { clientMessageId: crypto.randomUUID(), content });
        clientMessageId = d.clientMessageId;
        if (drafts.get(id) === d) storeDrafts();
        const answer = await api('POST', `/v1/conversations/${encodeURIComponent(id)}/messages`, {
          text: value,
          clientMessageId,
          ...(attachments.length > 0 ? { attachments } : {}),
          ...(note ? { private: true } : {}),
          ...(mentions.length > 0 ? { mentions } : {}),
        });
        if (id === openId) renderMessage(answer.message);
        // Taken: what was sent leaves the draft; what the agent wrote meanwhile stays, a new message.
        if (current()) {
          if (d.text.trim() === value) {
            d.text = '';
            d.picked = [];
          }
          if (sameFiles(d.files, files)) d.files = [];
          d.uploads = d.clientMessageId = d.content = d.error = undefined;
          storeDrafts();
        }
        if (id === openId) showDraft();
      } catch (error) {
        if (error.stale) return;
        // The draft stays, with its id and uploads: sent again as it is, it is stored once.
        if (current()) {
          d.error = error.message;
          storeDrafts();
        }
        if (id === openId) say(`Not sent: ${error.message}`);
      } finally {
        d.sending = false;
      }
    });
    picker.onchange = () => {
      // Other files: uploaded afresh when sent.
      if (openId) draftOf(openId).uploads = undefined;
      keepDraft();
      showDraft();
    };
    // Enter sends, Shift+Enter starts a new line; with colleagues offered for an "@", Enter or Tab
    // picks the first and Escape closes the offer.
    text.onkeydown = (event) => {
      // An input method (Chinese, Japanese, Korean…) takes Enter to confirm what is being composed: not a send.
      if (event.isComposing || event.keyCode === 229) return;
      const offered = mentionPicker.hidden ? undefined : mentionPicker.querySelector('button');
      if (offered && (event.key === 'Enter' || event.key === 'Tab') && !event.shiftKey) return void (event.preventDefault(), offered.click());
      if (offered && event.key === 'Escape') return void showSuggestions([]);
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        composer.requestSubmit();
      }
    };
    text.addEventListener('input', () => {
      keepDraft();
      setTyping(text.value.length > 0);
      suggest();
    });
    text.addEventListener('click', () => suggest());

    /** The "@" being typed in a note, up to the cursor: its start and what follows it, or undefined. */
    function mentionAtCursor() {
      if (!noteBox.checked || text.selectionStart !== text.selectionEnd) return undefined;
      const before = text.value.slice(0, text.selectionStart);
      const match = /(^|\s)@([^\s@]{0,64})$/.exec(before);
      return match ? { start: before.length - match[2].length - 1, query: match[2].toLowerCase() } : undefined;
    }

    /** Colleagues (GET /v1/agents) whose name or id starts a word with what follows the "@". */
    function suggest() {
      const at = mentionAtCursor();
      if (!at) return showSuggestions([]);
      const words = (a) => `${a.name || ''} ${a.id}`.toLowerCase().split(/\s+/);
      showSuggestions(team.filter((a) => a.id !== me.id && words(a).some((w) => w.startsWith(at.query))).slice(0, MAX_SUGGESTIONS));
    }

    function showSuggestions(agents) {
      mentionPicker.hidden = agents.length === 0;
      mentionPicker.replaceChildren(
        ...agents.map((agent) => {
          const button = h('button', { type: 'button', textContent: `@${agent.name || agent.id}` });
          button.dataset.id = agent.id;
          // Not the textarea's blur: the pick keeps the cursor where it was.
          button.onmousedown = (event) => event.preventDefault();
          button.onclick = () => pick(agent);
          return h('li', {}, button);
        }),
      );
    }

    /** The "@…" typed becomes "@Name ", and the note will mention that agent. */
    function pick(agent) {
      const at = mentionAtCursor();
      if (!at) return showSuggestions([]);
      const name = `@${agent.name || agent.id}`;
      picked.set(name, agent.id);
      text.setRangeText(`${name} `, at.start, text.selectionStart, 'end');
      showSuggestions([]);
      text.focus();
      // setRangeText fires no input event: the draft takes the name and the pick here.
      keepDraft();
    }

    /**
     * The agent's sign: "on" as they start and again every 3 s while they type, "off" 2 s after
     * their last key, when they send or when they leave the conversation.
     */
    function setTyping(active) {
      clearTimeout(typingSign.idle);
      if (active) {
        typingSign.idle = setTimeout(setTyping, TYPING_IDLE_MS, false);
        if (Date.now() - typingSign.since < TYPING_RENEW_MS) return;
        typingSign.since = Date.now();
        typingSign.private = noteBox.checked;
      } else {
        if (!typingSign.since) return;
        typingSign.since = 0;
      }
      // A note being written is the team's business: `private` keeps the sign from the customer.
      if (openId) send({ action: 'typing', conversationId: openId, state: active ? 'on' : 'off', ...(typingSign.private ? { private: true } : {}) });
    }

    /**
     * Someone else's sign (`by`: their sender id), gone after 6 s without another "on" (a closed
     * tab never says "off").
     */
    function showTyping(line, by) {
      typing.textContent = line;
      typingSign.by = line ? by : undefined;
      clearTimeout(typingSign.shown);
      typingSign.shown = line ? setTimeout(showTyping, TYPING_SHOWN_MS, '') : undefined;
    }

    const kept = sessionStorage.getItem(TOKEN_KEY);
    if (kept && claimsOf(kept)) signIn(kept);
    return { signIn, signOut: () => signOut(undefined, true) };
  }

  const consoles = [];
  window.ConversaConsole = {
    mount(options) {
      const mounted = mount(options);
      consoles.push(mounted);
      return mounted;
    },
    /** Signs every mounted console in with an id token the page got from the identity provider. */
    signIn(token) {
      for (const c of consoles) c.signIn(token);
    },
  };
  const script = document.currentScript;
  if (script && script.dataset.api && script.dataset.ws) {
    const start = () =>
      window.ConversaConsole.mount({
        apiUrl: script.dataset.api,
        websocketUrl: script.dataset.ws,
        devAuth: 'devAuth' in script.dataset,
        ...(script.dataset.feed ? { feed: script.dataset.feed } : {}),
        target: document.getElementById('console') || undefined,
      });
    if (document.body) start();
    else document.addEventListener('DOMContentLoaded', start);
  }
})();
