/**
 * The reference widget (widget/conversa-widget.js) served by the local stack, with a demo page
 * that mounts it against this stack's HTTP API: `npm start`, then open /local/widget/.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';
import { send } from './gateway/shared';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../widget/conversa-widget.js');

export const WIDGET_PATH = '/local/widget/';

/** The demo page of a site with the widget on it, pointed at `apiUrl`. */
export function widgetDemoPage(apiUrl: string, scriptUrl = `${WIDGET_PATH}conversa-widget.js`): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Conversa widget demo</title></head>
<body><h1>A shop with the Conversa widget</h1><p>Open the chat at the bottom right.</p>
<script src="${scriptUrl}" data-api="${apiUrl}" async></script></body></html>`;
}

/** Answers GET /local/widget/ and the script; false for any other path. */
export function serveWidget(pathname: string, res: ServerResponse, apiUrl: string): boolean {
  if (pathname === WIDGET_PATH || pathname === WIDGET_PATH.slice(0, -1)) {
    send(res, 200, { 'content-type': 'text/html; charset=utf-8' }, widgetDemoPage(apiUrl));
    return true;
  }
  if (pathname === `${WIDGET_PATH}conversa-widget.js`) {
    // Read per request: an edit shows on reload while `npm start` runs.
    send(res, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' }, readFileSync(SCRIPT, 'utf8'));
    return true;
  }
  return false;
}
