/**
 * The reference widget (widget/conversa-widget.js) served by the local stack, with a demo page
 * that mounts it against this stack's HTTP API: `npm start`, then open /local/widget/
 * (`?as=<email>&name=<name>`: a shop customer signed in, with a "Log out").
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';
import { send } from './gateway/shared';
import { ENV } from '../src/config';
import { identityHashOf } from '../src/domain/visitors';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../widget/conversa-widget.js');

export const WIDGET_PATH = '/local/widget/';

export interface DemoCustomer {
  name?: string;
  email: string;
  identityHash: string;
}

/** The customer `?as=<email>&name=` signs in, vouched for as a shop's backend does: with the widget identity key. */
export function demoCustomer(query: URLSearchParams): DemoCustomer | undefined {
  const email = query.get('as')?.trim();
  if (!email) return undefined;
  const name = query.get('name')?.trim();
  const key = process.env[ENV.widgetIdentitySecret] ?? 'dev-widget-identity-secret';
  return { ...(name ? { name } : {}), email, identityHash: identityHashOf(email, key) };
}

export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The demo page of a site with the widget on it, pointed at `apiUrl`; with a `customer`, the
 * site's own code tells the widget who is signed in (README: Website widget) and logs out.
 */
export function widgetDemoPage(apiUrl: string, scriptUrl = `${WIDGET_PATH}conversa-widget.js`, customer?: DemoCustomer): string {
  // In a script element: `</script>` in a value must not end it.
  const signedIn = customer
    ? `<p>Signed in as ${escapeHtml(customer.name ?? customer.email)}. <button id="logout">Log out</button></p>
<script>
  const identify = () => ConversaWidget.identify(${JSON.stringify(customer).replace(/</g, '\\u003c')});
  window.ConversaWidget ? identify() : window.addEventListener('conversa:ready', identify);
  document.getElementById('logout').onclick = () => { ConversaWidget.reset(); location.search = ''; };
</script>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Conversa widget demo</title></head>
<body><h1>A shop with the Conversa widget</h1><p>Open the chat at the bottom right.</p>
${signedIn}
<script src="${scriptUrl}" data-api="${apiUrl}" async></script></body></html>`;
}

/** Answers GET /local/widget/ and the script; false for any other path. */
export function serveWidget(url: URL, res: ServerResponse, apiUrl: string): boolean {
  if (url.pathname === WIDGET_PATH || url.pathname === WIDGET_PATH.slice(0, -1)) {
    send(res, 200, { 'content-type': 'text/html; charset=utf-8' }, widgetDemoPage(apiUrl, undefined, demoCustomer(url.searchParams)));
    return true;
  }
  if (url.pathname === `${WIDGET_PATH}conversa-widget.js`) {
    sendScript(res, SCRIPT);
    return true;
  }
  return false;
}

/** A reference client's file, read per request: an edit shows on reload while `npm start` runs. */
export function sendScript(res: ServerResponse, file: string): void {
  send(res, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' }, readFileSync(file, 'utf8'));
}
