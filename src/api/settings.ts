/** GET (any agent) and PUT (admins) /v1/settings. */
import { requireAdmin, type Route } from './context';
import { json, parseBody } from '../http/http';
import { getSettings, saveSettings, SettingsPatchSchema } from '../domain/settings';
import { routeOnCapacityChange } from '../domain/routing';

export const getSettingsRoute: Route = async () => json(200, await getSettings({ fresh: true }));

export const putSettingsRoute: Route = async ({ event, agent }) => {
  requireAdmin(agent);
  const patch = parseBody(event, SettingsPatchSchema);
  const saved = await saveSettings(patch);
  // A larger workspace capacity (or a shorter hand-off hold) lets waiting conversations in now,
  // not at the next unrelated event.
  if (patch.capacity || patch.routing) await routeOnCapacityChange();
  return json(200, saved);
};
