/**
 * Campaigns: proactive requests kept with their outcomes, and ones scheduled for later. A scheduled
 * request is checked when it is made (recipients, placeholders, its hour's quota) and stored with
 * its recipients; a one-time schedule (`campaignSend-<batchId>`, src/domain/timers.ts) fires the
 * engagement function, which queues it as an immediate request is queued. Counters are ADDed where
 * each outcome is decided, once per outcome (README, Proactive).
 */
import { ClientError, notFound } from './errors';
import { cancelTimer, setTimerAt } from './timers';
import { answeredBack, claimBatch, enqueueProactiveJobs, resolveRecipients, type ProactiveRequest } from './proactive';
import type { AgentIdentity } from './outbound';
import type { Message } from './types';
import type { ConversationRecord } from '../store/conversations';
import { ID_PATTERN } from '../store/keys';
import { erasedAmong } from '../store/erasure';
import { giveProactiveQuotaBack } from '../store/quota';
import {
  addCampaignCounts,
  cancelScheduled,
  finishQueueing,
  getCampaign,
  putCampaign,
  startCampaign,
  takeCampaignReply,
  type CampaignRecord,
} from '../store/campaigns';

/** The nearest a campaign may be scheduled: time to cancel it, and past any clock skew. */
export const MIN_SCHEDULE_AHEAD_MS = 60_000;
/** The furthest: the recipients it holds (and their erasures) are not kept longer. */
export const MAX_SCHEDULE_AHEAD_MS = 30 * 86_400_000;
/** A customer's message this long after the campaign's is no longer counted as its reply. */
export const REPLY_WINDOW_MS = 7 * 86_400_000;

/** Stores a scheduled campaign and arms its schedule; answers its id and when it goes. */
export async function scheduleProactive(
  request: ProactiveRequest,
  sender: AgentIdentity,
  sendAt: Date,
  now = new Date(),
): Promise<{ batchId: string; scheduledFor: string; recipients: number; unknownContactIds?: string[]; erasedContactIds?: string[]; unreachableContactIds?: string[] }> {
  const ahead = sendAt.getTime() - now.getTime();
  if (ahead < MIN_SCHEDULE_AHEAD_MS) throw new ClientError(400, 'send_at_too_soon', 'sendAt must be at least a minute from now (leave it out to send at once)');
  if (ahead > MAX_SCHEDULE_AHEAD_MS) throw new ClientError(400, 'send_at_too_late', 'sendAt must be at most 30 days from now');
  // Whole seconds, as the schedule fires (at() has no finer resolution).
  const scheduledFor = new Date(Math.ceil(sendAt.getTime() / 1000) * 1000).toISOString();
  const recipients = await resolveRecipients(request);
  // The quota of the hour it is sent in, taken now: a full hour is refused while the admin is there.
  const { batchId } = await claimBatch(request, sender, recipients.requested, recipients.contactIds.length, new Date(scheduledFor), scheduledFor);
  await putCampaign({
    batchId,
    state: 'scheduled',
    text: request.text,
    ...(request.channel ? { channel: request.channel } : {}),
    sender: { id: sender.id, ...(sender.name ? { name: sender.name } : {}) },
    createdAt: now.toISOString(),
    sendAt: scheduledFor,
    recipients: recipients.contactIds.length,
    contactIds: recipients.contactIds,
  });
  // A retry (same clientRequestId) arms it again unless it started or was cancelled meanwhile.
  const stored = await getCampaign(batchId);
  if (stored?.campaign.state === 'scheduled') await setTimerAt('campaignSend', batchId, new Date(scheduledFor));
  return { batchId, scheduledFor: stored?.campaign.sendAt ?? scheduledFor, recipients: stored?.campaign.recipients ?? recipients.contactIds.length, ...answeredBack(recipients) };
}

/**
 * The schedule fired: queues the campaign's jobs, once. The start (scheduled → sending) and the
 * removal of its recipients are conditional writes; a fire retried after the start and before the
 * removal queues again under the same deduplication ids and per-recipient claims (nobody is sent
 * it twice), one after the removal finds nothing to queue.
 */
export async function fireCampaign(batchId: string, now = new Date()): Promise<'done' | 'skipped'> {
  const found = await getCampaign(batchId);
  if (!found) return 'skipped';
  let campaign: CampaignRecord | undefined = found.campaign;
  if (campaign.state === 'scheduled') {
    // Early (clocks differ by more than the second every timer allows): armed again for the rest.
    if (campaign.sendAt && now.getTime() + 1000 < Date.parse(campaign.sendAt)) {
      await setTimerAt('campaignSend', batchId, new Date(campaign.sendAt));
      return 'skipped';
    }
    campaign = (await startCampaign(batchId)) ?? (await getCampaign(batchId))?.campaign;
  }
  if (!campaign || campaign.state !== 'sending' || !campaign.contactIds) return 'skipped';
  // Those whose erasure was asked for since the request are not written to (counted as skipped).
  const erased = await erasedAmong(campaign.contactIds);
  const contactIds = campaign.contactIds.filter((id) => !erased.has(id));
  await enqueueProactiveJobs(batchId, contactIds, campaign, campaign.sender);
  await finishQueueing(batchId, campaign.contactIds.length - contactIds.length, now.toISOString());
  return 'done';
}

/** Cancels a campaign that has not started; 409 once it has, 404 for none. */
export async function cancelCampaign(batchId: string, now = new Date()): Promise<void> {
  const found = ID_PATTERN.test(batchId) ? await getCampaign(batchId) : undefined;
  if (!found) throw notFound('campaign');
  const { campaign } = found;
  if (campaign.state === 'cancelled') return;
  if (campaign.state === 'scheduled' && (await cancelScheduled(batchId, now.toISOString()))) {
    await cancelTimer('campaignSend', batchId);
    // Its hour's quota was taken when it was scheduled.
    if (campaign.sendAt) await giveProactiveQuotaBack(new Date(campaign.sendAt), campaign.recipients);
    return;
  }
  const again = (await getCampaign(batchId))?.campaign;
  if (again?.state === 'cancelled') return;
  throw new ClientError(409, 'campaign_started', 'the campaign has started: its messages are on their way');
}

export type CampaignView = {
  batchId: string;
  state: 'scheduled' | 'sending' | 'done' | 'cancelled';
  text: string;
  channel?: string;
  sendAt?: string;
  createdAt: string;
  queuedAt?: string;
  cancelledAt?: string;
  counts: {
    recipients: number;
    sent: number;
    delivered: number;
    read: number;
    failed: number;
    skipped: number;
    /** Why: no conversation to write in (none on the channel, or not stored yet for a brand-new customer), a text that fills to nothing, an erasure found by the fire. */
    skippedFor: { noConversation: number; blank: number; erased: number };
    replied: number;
  };
};

/** A campaign's state, what it says and its outcome counts. */
export async function campaignView(batchId: string): Promise<CampaignView> {
  const found = ID_PATTERN.test(batchId) ? await getCampaign(batchId) : undefined;
  if (!found) throw notFound('campaign');
  const { campaign, counts } = found;
  const skipped = counts.skipped + (campaign.skippedAtSend ?? 0);
  // Every recipient decided: skipped, or its message out of `queued` (sent, or failed before it).
  const decided = campaign.state === 'sending' && campaign.queuedAt !== undefined && skipped + counts.settled >= campaign.recipients;
  return {
    batchId,
    state: decided ? 'done' : campaign.state,
    text: campaign.text,
    ...(campaign.channel ? { channel: campaign.channel } : {}),
    ...(campaign.sendAt ? { sendAt: campaign.sendAt } : {}),
    createdAt: campaign.createdAt,
    ...(campaign.queuedAt ? { queuedAt: campaign.queuedAt } : {}),
    ...(campaign.cancelledAt ? { cancelledAt: campaign.cancelledAt } : {}),
    counts: {
      recipients: campaign.recipients,
      sent: counts.sent,
      delivered: counts.delivered,
      read: counts.read,
      failed: counts.failed,
      skipped,
      skippedFor: { noConversation: counts.skippedNoConversation, blank: counts.skippedBlank, erased: campaign.skippedAtSend ?? 0 },
      replied: counts.replied,
    },
  };
}

/**
 * The customer wrote after a campaign's message in this conversation, within REPLY_WINDOW_MS:
 * counted once per conversation and campaign (the conversation's mark is taken by a conditional
 * write). Nothing is written for a conversation without a mark.
 */
export async function countCampaignReply(conversation: ConversationRecord, message: Pick<Message, 'direction' | 'private' | 'sender' | 'createdAt'>): Promise<void> {
  const batchId = conversation.lastCampaignId;
  const at = conversation.lastCampaignAt;
  if (!batchId || !at || message.direction !== 'inbound' || message.private || message.sender.type !== 'contact') return;
  if (message.createdAt < at || Date.parse(message.createdAt) - Date.parse(at) > REPLY_WINDOW_MS) return;
  if (await takeCampaignReply(conversation.id, batchId)) await addCampaignCounts(batchId, { replied: 1 });
}
