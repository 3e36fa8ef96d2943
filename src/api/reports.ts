/** GET /v1/reports/summary?from=&to=&channel= (defaults: the last 7 days, every channel). */
import * as z from '../zod';
import type { Route } from './context';
import { json, validate } from '../http/http';
import { summary } from '../domain/reports';
import { getSettings } from '../domain/settings';
import { CHANNELS } from '../domain/types';

const Query = z.object({
  from: z.optional(z.iso.datetime({ offset: true })),
  to: z.optional(z.iso.datetime({ offset: true })),
  channel: z.optional(z.enum(CHANNELS)),
});

export const reportSummaryRoute: Route = async ({ query }) => {
  const q = validate(Query, query);
  const to = q.to ? new Date(q.to) : new Date();
  const from = q.from ? new Date(q.from) : new Date(to.getTime() - 7 * 86_400_000);
  const { sla } = await getSettings();
  return json(200, await summary(from, to, sla, q.channel));
};
