/** Team routes: GET /v1/agents (any agent), PUT /v1/agents/{id} (admins). */
import * as z from 'zod';
import { requireAdmin, type Route } from './context';
import { json, parseBody } from '../http/http';
import { listTeam, updateAgent } from '../domain/team';

const capacity = (max: number) => z.number().int().min(0).max(max).nullable().optional();
const AgentPatch = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    teams: z.array(z.string().trim().min(1).max(64)).max(20).optional(),
    liveCapacity: capacity(50),
    asyncCapacity: capacity(200),
  })
  .strict();

export const listAgentsRoute: Route = async () => json(200, { items: await listTeam() });

export const updateAgentRoute: Route = async ({ event, agent, params }) => {
  requireAdmin(agent);
  const patch = parseBody(event, AgentPatch);
  const teams = patch.teams ? [...new Set(patch.teams)] : undefined;
  return json(200, await updateAgent(params.id!, { ...patch, ...(teams ? { teams } : {}) }));
};
