/** Erasing a customer on request (src/domain/erasure.ts): admins only. */
import type { Route } from './context';
import { ID_PATTERN, requireAdmin } from './context';
import { json } from '../http/http';
import { notFound } from '../domain/errors';
import { isErased, requestErasure } from '../domain/erasure';

/** DELETE /v1/contacts/{id}: 202 `{contactId, status: "erasing"}`, the same when asked again. */
export const eraseContactRoute: Route = async ({ params, agent }) => {
  requireAdmin(agent);
  const id = params.id!;
  // An id no contact could have names nothing (and could be no table key).
  if (!ID_PATTERN.test(id)) throw notFound('contact');
  return json(202, await requestErasure(id, agent));
};

/**
 * A contact route that answers 404 once the contact's erasure was asked for, before its steps
 * have removed it (one more read per request).
 */
export function unlessErased(route: Route): Route {
  return async (context) => {
    const id = context.params.id;
    if (id && ID_PATTERN.test(id) && (await isErased(id))) throw notFound('contact');
    return route(context);
  };
}
