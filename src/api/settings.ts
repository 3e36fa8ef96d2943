/** GET (any agent) and PUT (admins) /v1/settings. */
import { requireAdmin, type Route } from './context';
import { json, parseBody } from '../http/http';
import { getSettings, saveSettings, SettingsPatchSchema } from '../domain/settings';

export const getSettingsRoute: Route = async () => json(200, await getSettings({ fresh: true }));

export const putSettingsRoute: Route = async ({ event, agent }) => {
  requireAdmin(agent);
  const patch = parseBody(event, SettingsPatchSchema);
  return json(200, await saveSettings(patch));
};
