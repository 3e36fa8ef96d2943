/**
 * Engagement function: the target of every conversation timer (EventBridge Scheduler passes
 * the schedule's Input as the event) and of email replies handed over as a simple event.
 *
 * Events:
 * - `{ kind: 'emailFallback' | 'reengage' | 'autoResolve' | 'snoozeWake', conversationId, dueAt, messageId? }`
 * - `{ kind: 'inboundEmail', email: { to, from, subject?, text, messageId? } }`: an email reply,
 *   already parsed (whatever receives the mail turns it into this; locally POST /local/mail/inbound).
 *
 * A malformed event is logged and dropped: retrying cannot fix it, and the Scheduler's DLQ is for
 * failures worth a look. Errors while acting are thrown so that the Scheduler retries.
 */
import { z } from 'zod';
import { Logger } from '@aws-lambda-powertools/logger';
import { runTimer } from '../../src/domain/engagement';
import { InboundEmailSchema, receiveEmail } from '../../src/domain/email';
import { TIMER_KINDS } from '../../src/domain/timers';

const logger = new Logger({ serviceName: 'conversa' });

const EngagementEvent = z.discriminatedUnion('kind', [
  z.object({
    kind: z.enum(TIMER_KINDS),
    conversationId: z.string().min(1).max(128),
    dueAt: z.string().max(64),
    messageId: z.string().min(1).max(128).optional(),
  }),
  z.object({ kind: z.literal('inboundEmail'), email: InboundEmailSchema }),
]);

export const handler = async (event: unknown): Promise<{ outcome: string }> => {
  const parsed = EngagementEvent.safeParse(event);
  if (!parsed.success) {
    logger.warn('dropped malformed engagement event', { issue: parsed.error.issues[0]?.message });
    return { outcome: 'invalid' };
  }
  const input = parsed.data;
  if (input.kind === 'inboundEmail') {
    const result = await receiveEmail(input.email);
    if (!result.accepted) logger.warn('dropped inbound email', { reason: result.reason });
    return { outcome: result.accepted ? 'queued' : result.reason };
  }
  const outcome = await runTimer(input);
  logger.info('timer', { kind: input.kind, conversationId: input.conversationId, dueAt: input.dueAt, outcome });
  return { outcome };
};
