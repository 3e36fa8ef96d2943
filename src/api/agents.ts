/** Team routes: GET /v1/agents, PUT /v1/agents/{id}. */
import { notYet } from './not-yet';

export const listAgentsRoute = notYet('listing agents');
export const updateAgentRoute = notYet('updating an agent');
