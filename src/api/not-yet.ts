import { ClientError } from '../domain/errors';
import type { Route } from './context';

/** A declared route whose feature has not landed: 501, never a 5xx crash. */
export const notYet =
  (what: string): Route =>
  async () => {
    throw new ClientError(501, 'not_implemented', `${what} is not available yet`);
  };
