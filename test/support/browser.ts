/**
 * Browser-test helpers shared by the widget's and the console's cases. Chromium's offline
 * emulation leaves WebSockets alone, so a connection that cannot come back is made by pointing
 * the page's WebSocket at a closed port while `blocked`.
 */
import type { Page } from 'playwright-core';

/** From now on the page's new WebSockets fail (until `unblockSockets`); an open one is left as it is. */
export async function blockSockets(page: Page): Promise<void> {
  await page.evaluate(() => {
    const g = globalThis as any;
    g.blocked = true;
    g.WebSocket = class extends g.WebSocket {
      constructor(url: string) {
        super(g.blocked ? 'ws://127.0.0.1:9/' : url);
      }
    };
  });
}

/** The page's next WebSocket goes through again. */
export async function unblockSockets(page: Page): Promise<void> {
  await page.evaluate(() => ((globalThis as any).blocked = false));
}
