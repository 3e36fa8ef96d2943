/**
 * POST /v1/proactive (admins): a message to one contact or a list, queued and paced
 * (src/domain/proactive.ts), or with `sendAt` scheduled (src/domain/campaigns.ts); GET and DELETE
 * /v1/proactive/{id}: a campaign's outcomes, and cancelling one not started.
 */
import * as z from '../zod';
import { requireAdmin, type Route } from './context';
import { json, parseBody } from '../http/http';
import { MAX_RECIPIENTS, queueProactive } from '../domain/proactive';
import { CHANNELS } from '../domain/types';
import { unknownPlaceholders } from '../domain/canned';
import { campaignView, cancelCampaign, scheduleProactive } from '../domain/campaigns';

const contactId = z.text(1, 128);
const ProactiveBody = z
  .strictObject({
    contactId: z.optional(contactId),
    contactIds: z.optional(z.array(contactId).check(z.minLength(1), z.maxLength(MAX_RECIPIENTS))),
    text: z.pipe(z.trimmedText(1, 4096), z.shownText(1, 4096)),
    channel: z.optional(z.enum(CHANNELS)),
    clientRequestId: z.optional(z.text(1, 128)),
    sendAt: z.optional(z.iso.datetime({ offset: true })),
  })
  .check(
    z.refine((b) => (b.contactId === undefined) !== (b.contactIds === undefined), { message: 'give contactId or contactIds (one of them)', path: ['contactIds'] }),
    z.refine((b) => unknownPlaceholders(b.text).length === 0, {
      message: 'holds a placeholder that is not {{contact.name}}, {{contact.email}}, {{contact.phone}} or {{agent.name}} (a fallback after |, as {{contact.name|there}})',
      path: ['text'],
    }),
  );

export const proactiveRoute: Route = async ({ event, agent }) => {
  requireAdmin(agent);
  const body = parseBody(event, ProactiveBody);
  const request = {
    contactIds: body.contactIds ?? [body.contactId!],
    text: body.text,
    ...(body.channel ? { channel: body.channel } : {}),
    ...(body.clientRequestId ? { clientRequestId: body.clientRequestId } : {}),
  };
  if (body.sendAt) return json(202, await scheduleProactive(request, agent, new Date(body.sendAt)));
  return json(202, await queueProactive(request, agent));
};

export const getCampaignRoute: Route = async ({ agent, params }) => {
  requireAdmin(agent);
  return json(200, await campaignView(params.id!));
};

export const cancelCampaignRoute: Route = async ({ agent, params }) => {
  requireAdmin(agent);
  await cancelCampaign(params.id!);
  return { statusCode: 204 };
};
