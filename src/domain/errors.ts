/** Errors that mean "the caller asked for something wrong": always a 4xx, never a 5xx. */
export class ClientError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** More fields beside code and message in the error body (a macro's failed action). */
    readonly details?: Record<string, unknown>,
    /** Answered as `Retry-After` (a quota that frees up at a known time). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

export const badRequest = (code: string, message: string) => new ClientError(400, code, message);
export const notFound = (what: string) => new ClientError(404, 'not_found', `${what} not found`);
export const forbidden = (message: string) => new ClientError(403, 'forbidden', message);
export const conflict = (code: string, message: string) => new ClientError(409, code, message);
