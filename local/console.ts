/**
 * The reference agent console (console/conversa-console.js) served by the local stack: `npm start`,
 * then open /local/console/ and sign in with any agent id, for which the page asks the local
 * identity provider (POST /local/auth/token) for a token.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';
import { send } from './gateway/shared';
import { escapeHtml, sendScript } from './widget';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../console/conversa-console.js');

export const CONSOLE_PATH = '/local/console/';

/**
 * The console's page against this stack's HTTP and WebSocket APIs, signing in through the local
 * identity provider; `/local/console/?feed=focused` connects it with the focused feed.
 */
export function consolePage(apiUrl: string, websocketUrl: string, focused = false): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Conversa console</title><style>body { margin: 0; }</style></head>
<body><div id="console"></div>
<script src="${CONSOLE_PATH}conversa-console.js" data-api="${escapeHtml(apiUrl)}" data-ws="${escapeHtml(websocketUrl)}"${focused ? ' data-feed="focused"' : ''} data-dev-auth async></script></body></html>`;
}

/** Answers GET /local/console/ and the script; false for any other path. */
export function serveConsole(url: URL, res: ServerResponse, apiUrl: string, websocketUrl: string): boolean {
  if (url.pathname === CONSOLE_PATH || url.pathname === CONSOLE_PATH.slice(0, -1)) {
    send(res, 200, { 'content-type': 'text/html; charset=utf-8' }, consolePage(apiUrl, websocketUrl, url.searchParams.get('feed') === 'focused'));
    return true;
  }
  if (url.pathname === `${CONSOLE_PATH}conversa-console.js`) {
    sendScript(res, SCRIPT);
    return true;
  }
  return false;
}
