/**
 * GET /v1/reports/summary?from=&to=&channel=&team=&label= (defaults: the last 7 days, every
 * channel, team and label).
 */
import * as z from '../zod';
import type { Route } from './context';
import { json, validate } from '../http/http';
import { summary } from '../domain/reports';
import { getSettings, LabelName, type Settings } from '../domain/settings';
import { badRequest } from '../domain/errors';
import { CHANNELS } from '../domain/types';

const Query = z.object({
  from: z.optional(z.iso.datetime({ offset: true })),
  to: z.optional(z.iso.datetime({ offset: true })),
  channel: z.optional(z.enum(CHANNELS)),
  // Teams are free-form (an agent's teams, a transfer's team): any name an agent could belong to.
  team: z.optional(z.trimmedText(1, 64)),
  label: z.optional(LabelName),
});
const PARAMETERS = ['from', 'to', 'channel', 'team', 'label'];

/**
 * An offset's `+` typed unencoded in a URL arrives as a space (the gateway decodes the query as a
 * form): `…T09:00:00 02:00` can only mean `+02:00`.
 */
const offsetPlus = (value: string | undefined) => value?.replace(/ (\d\d:\d\d)$/, '+$1');

/**
 * The settings, with `label` defined in them: one an admin defined a moment ago may not be in
 * this instance's cached copy yet, so a name not found there is looked up again before it is
 * refused (as a conversation's labels are).
 */
async function settingsDefining(label: string | undefined): Promise<Settings> {
  const defines = (s: Settings) => label === undefined || s.labels.some((l) => l.name === label);
  const cached = await getSettings();
  if (defines(cached)) return cached;
  const fresh = await getSettings({ fresh: true });
  if (!defines(fresh)) throw badRequest('unknown_label', `label ${label} is not defined (settings.labels)`);
  return fresh;
}

export const reportSummaryRoute: Route = async ({ query }) => {
  // A misspelt parameter (`since=`, `start=`) would silently answer for the default week instead.
  const unknown = Object.keys(query).find((name) => !PARAMETERS.includes(name));
  if (unknown !== undefined) throw badRequest('invalid_request', `unknown parameter ${unknown}: a report takes ${PARAMETERS.join(', ')}`);
  const q = validate(Query, { ...query, from: offsetPlus(query.from), to: offsetPlus(query.to) });
  const to = q.to ? new Date(q.to) : new Date();
  const from = q.from ? new Date(q.from) : new Date(to.getTime() - 7 * 86_400_000);
  const { sla } = await settingsDefining(q.label);
  return json(200, await summary(from, to, sla, { channel: q.channel, team: q.team, label: q.label }));
};
