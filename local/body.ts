/** Reading request bodies in the local stand-ins. */
import type { IncomingMessage } from 'node:http';

/**
 * The whole body, from data events (async iteration costs several microtask hops a request,
 * on every hop of the hot path). Past `limit` bytes it rejects with `tooLarge()` and lets the
 * rest of the body drain.
 */
export function readBody(req: IncomingMessage, limit: number, tooLarge: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}
