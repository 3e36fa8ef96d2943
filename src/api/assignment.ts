/** Manual assignment and transfer. */
import { z } from 'zod';
import type { Route } from './context';
import { json, parseBody } from '../http/http';
import { changeConversation } from '../domain/conversations';
import { toConversation } from '../store/conversations';
import { notYet } from './not-yet';

const AssignBody = z.object({ agentId: z.string().min(1).max(128).nullable() });

export const assignRoute: Route = async ({ event, params }) => {
  const body = parseBody(event, AssignBody);
  const { after } = await changeConversation(params.id!, (c) =>
    c.assigneeId === body.agentId ? undefined : { ...c, assigneeId: body.agentId, updatedAt: new Date().toISOString() },
  );
  return json(200, toConversation(after));
};

export const transferRoute = notYet('transfer');
export const statusRoute = notYet('status changes');
export const markReadRoute = notYet('marking read');
