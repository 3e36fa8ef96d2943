/** GET /v1/reports/summary?from=&to=&channel= (defaults: the last 7 days, every channel). */
import * as z from '../zod';
import type { Route } from './context';
import { json, validate } from '../http/http';
import { summary } from '../domain/reports';
import { getSettings } from '../domain/settings';
import { badRequest } from '../domain/errors';
import { CHANNELS } from '../domain/types';

const Query = z.object({
  from: z.optional(z.iso.datetime({ offset: true })),
  to: z.optional(z.iso.datetime({ offset: true })),
  channel: z.optional(z.enum(CHANNELS)),
});
const PARAMETERS = ['from', 'to', 'channel'];

/**
 * An offset's `+` typed unencoded in a URL arrives as a space (the gateway decodes the query as a
 * form): `…T09:00:00 02:00` can only mean `+02:00`.
 */
const offsetPlus = (value: string | undefined) => value?.replace(/ (\d\d:\d\d)$/, '+$1');

export const reportSummaryRoute: Route = async ({ query }) => {
  // A misspelt parameter (`since=`, `start=`) would silently answer for the default week instead.
  const unknown = Object.keys(query).find((name) => !PARAMETERS.includes(name));
  if (unknown !== undefined) throw badRequest('invalid_request', `unknown parameter ${unknown}: a report takes ${PARAMETERS.join(', ')}`);
  const q = validate(Query, { ...query, from: offsetPlus(query.from), to: offsetPlus(query.to) });
  const to = q.to ? new Date(q.to) : new Date();
  const from = q.from ? new Date(q.from) : new Date(to.getTime() - 7 * 86_400_000);
  const { sla } = await getSettings();
  return json(200, await summary(from, to, sla, q.channel));
};
