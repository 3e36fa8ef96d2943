/**
 * Engagement function: the target of every conversation timer (EventBridge Scheduler passes
 * the schedule's Input as the event) and of email replies handed over as a simple event.
 *
 * Events:
 * - `{ kind: 'emailFallback' | 'reengage' | 'autoResolve' | 'snoozeWake', conversationId, dueAt, messageId? }`
 * - `{ kind: 'keepMedia', conversationId, messageId, dueAt, round }`: a customer's files to copy
 *   again after an outage outlasted the outbound queue's attempts (src/domain/media-jobs.ts).
 * - `{ kind: 'presenceGrace', conversationId: <agent id>, dueAt }`: the end of an agent's grace
 *   period after their last connection closed (src/domain/presence.ts).
 * - `{ kind: 'inboundEmail', email: { to, from, subject?, text, messageId?, automatic? } }`: an email reply,
 *   already parsed (locally POST /local/mail/inbound does the same without this function).
 * - `{ kind: 'recountLoads' }`: the recurring schedule that heals agents' load counters and
 *   turns away online agents left without a connection.
 * - An SNS event whose messages are SES "Received" notifications: email replies as SES receiving
 *   delivers them when deployed, stored by the receipt rule's S3 action (read from the bucket the
 *   notification names) or, from a rule with an SNS action (UTF-8), carried in the notification.
 *
 * A malformed event is logged and dropped: retrying cannot fix it, and the timers' DLQ is for
 * failures worth a look. Errors while acting are thrown: Lambda retries the (asynchronous)
 * invocation twice, then sends the event to that DLQ, whose alarm fires.
 */
import * as z from '../../src/zod';
import { Logger } from '@aws-lambda-powertools/logger';
import { runTimer } from '../../src/domain/engagement';
import { recountAllLoads } from '../../src/domain/routing';
import { sweepPresence } from '../../src/domain/presence';
import { emailsFromSesNotifications, InboundEmailSchema, loadReplySecret, receiveEmail, storedEmailLocations } from '../../src/domain/email';
import { deleteRawEmail, readRawEmail } from '../../src/aws/raw-mail';
import type { Context } from 'aws-lambda';
import { TIMER_KINDS, useInvokedFunctionAsTarget } from '../../src/domain/timers';

const logger = new Logger({ serviceName: 'conversa' });

const EngagementEvent = z.discriminatedUnion('kind', [
  z.object({
    kind: z.enum(TIMER_KINDS),
    conversationId: z.text(1, 128),
    dueAt: z.text(0, 64),
    messageId: z.optional(z.text(1, 128)),
    round: z.optional(z.wholeNumber(1, 100)),
  }),
  z.object({ kind: z.literal('inboundEmail'), email: InboundEmailSchema }),
  z.object({ kind: z.literal('recountLoads') }),
]);

const SnsEvent = z.object({ Records: z.array(z.object({ Sns: z.object({ Message: z.string() }) })).check(z.minLength(1)) });

export const handler = async (event: unknown, context?: Pick<Context, 'invokedFunctionArn'>): Promise<{ outcome: string }> => {
  if (context?.invokedFunctionArn) useInvokedFunctionAsTarget(context.invokedFunctionArn);
  await loadReplySecret();
  const sns = SnsEvent.safeParse(event);
  if (sns.success) {
    const received = await emailsFromSesNotifications(sns.data, readRawEmail);
    const results = await Promise.all(received.map(({ email, files }) => receiveEmail(email, files)));
    // Only once all are in (a throw above has Lambda try the event again, which needs the copies).
    const deletions = await Promise.allSettled(storedEmailLocations(sns.data).map(({ bucket, key }) => deleteRawEmail(bucket, key)));
    const undeleted = deletions.filter((d) => d.status === 'rejected').length;
    if (undeleted > 0) logger.warn('stored inbound emails left for the bucket to expire', { count: undeleted });
    const dropped = results.flatMap((r) => (r.accepted ? [] : [r.reason]));
    const noted = results.flatMap((r) => (r.accepted && r.kept === 'note' ? [r.conversationId] : []));
    if (dropped.length > 0) logger.warn('dropped inbound emails', { count: dropped.length, reasons: dropped });
    // Not the customer's address: kept as private notes, which someone may want to trace.
    if (noted.length > 0) logger.info('kept inbound emails from another sender as private notes', { count: noted.length, conversationIds: noted });
    const queued = results.length - dropped.length - noted.length;
    return { outcome: `queued ${queued} of ${sns.data.Records.length}${noted.length > 0 ? `, ${noted.length} kept as notes` : ''}` };
  }
  const parsed = EngagementEvent.safeParse(event);
  if (!parsed.success) {
    logger.warn('dropped malformed engagement event', { issue: parsed.error.issues[0]?.message });
    return { outcome: 'invalid' };
  }
  const input = parsed.data;
  if (input.kind === 'inboundEmail') {
    const result = await receiveEmail(input.email);
    if (!result.accepted) logger.warn('dropped inbound email', { reason: result.reason });
    else if (result.kept === 'note') logger.info('kept an inbound email from another sender as a private note', { conversationId: result.conversationId });
    return { outcome: result.accepted ? (result.kept === 'note' ? 'noted' : 'queued') : result.reason };
  }
  if (input.kind === 'recountLoads') {
    const orphaned = await sweepPresence();
    if (orphaned > 0) logger.info('online agents without a connection start their grace period', { agents: orphaned });
    const healed = await recountAllLoads();
    // A counter only drifts through a crash: worth a look when it happens.
    if (healed > 0) logger.warn('load counters were high and are recounted', { agents: healed });
    return { outcome: `healed ${healed}` };
  }
  const outcome = await runTimer(input);
  logger.info('timer', { kind: input.kind, conversationId: input.conversationId, dueAt: input.dueAt, outcome });
  return { outcome };
};
