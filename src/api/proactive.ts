/** POST /v1/proactive (admins): a message to one contact or a list, queued and paced (src/domain/proactive.ts). */
import * as z from 'zod';
import { requireAdmin, type Route } from './context';
import { json, parseBody } from '../http/http';
import { MAX_RECIPIENTS, queueProactive } from '../domain/proactive';
import { CHANNELS } from '../domain/types';

const contactId = z.string().min(1).max(128);
const ProactiveBody = z
  .object({
    contactId: contactId.optional(),
    contactIds: z.array(contactId).min(1).max(MAX_RECIPIENTS).optional(),
    text: z.string().trim().min(1).max(4096),
    channel: z.enum(CHANNELS).optional(),
  })
  .strict()
  .refine((b) => (b.contactId === undefined) !== (b.contactIds === undefined), { message: 'give contactId or contactIds (one of them)', path: ['contactIds'] });

export const proactiveRoute: Route = async ({ event, agent }) => {
  requireAdmin(agent);
  const body = parseBody(event, ProactiveBody);
  const result = await queueProactive(
    { contactIds: body.contactIds ?? [body.contactId!], text: body.text, ...(body.channel ? { channel: body.channel } : {}) },
    agent,
  );
  return json(202, result);
};
