/** Team routes: GET /v1/agents (any agent), PUT /v1/agents/{id} (admins). */
import * as z from '../zod';
import { requireAdmin, type Route } from './context';
import { json, parseBody } from '../http/http';
import { listTeam, updateAgent } from '../domain/team';
import { refuseReservedAgentId } from '../domain/assignment';

const capacity = (max: number) => z.optional(z.nullable(z.wholeNumber(0, max)));
const AgentPatch = z.strictObject({
  name: z.optional(z.trimmedText(1, 200)),
  teams: z.optional(z.array(z.trimmedText(1, 64)).check(z.maxLength(20))),
  liveCapacity: capacity(50),
  asyncCapacity: capacity(200),
});

export const listAgentsRoute: Route = async () => json(200, { items: await listTeam() });

export const updateAgentRoute: Route = async ({ event, agent, params }) => {
  requireAdmin(agent);
  refuseReservedAgentId(params.id!);
  const patch = parseBody(event, AgentPatch);
  const teams = patch.teams ? [...new Set(patch.teams)] : undefined;
  return json(200, await updateAgent(params.id!, { ...patch, ...(teams ? { teams } : {}) }));
};
