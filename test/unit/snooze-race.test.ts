/**
 * The snooze wake-up against concurrent changes, with DynamoDB (one conversation item, written on
 * its version) and EventBridge Scheduler faked: one change's call to the scheduler is held until a
 * second change has been written and armed, so the first arms last. The timer must still end as
 * the conversation is stored: at its snoozedUntil while snoozed, gone otherwise.
 */
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { ConflictException, CreateScheduleCommand, DeleteScheduleCommand, ResourceNotFoundException, SchedulerClient, UpdateScheduleCommand } from '@aws-sdk/client-scheduler';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { keys } from '../../src/store/keys';
import { atExpression } from '../../src/domain/timers';

vi.mock('../../src/domain/events', async (original) => ({ ...(await original<typeof import('../../src/domain/events')>()), publishToConversation: vi.fn(async () => undefined) }));
vi.mock('../../src/domain/automation', async (original) => ({ ...(await original<typeof import('../../src/domain/automation')>()), afterConversationChange: vi.fn(async () => false) }));
const { setConversationStatus } = await import('../../src/domain/assignment');
const { snoozeScheduleName, wakeSnoozed } = await import('../../src/domain/snooze');

const ddb = mockClient(DynamoDBDocumentClient);
const scheduler = mockClient(SchedulerClient);
const CONVERSATION = '01JSNOOZERACE0000000000000';
const metadata = { $metadata: {} };

/** The table's one conversation item. */
let item: Record<string, unknown> | undefined;
/** Schedules by name: their `at()` expression. */
const timers = new Map<string, string>();
/** Run (once) by the first scheduler call before it takes effect: the change that overtakes it. */
let overtake: (() => Promise<unknown>) | undefined;

async function schedulerCall(apply: () => void): Promise<Record<string, never>> {
  const first = overtake;
  overtake = undefined;
  if (first) await first();
  apply();
  return {};
}

/** Whole seconds ahead (a timer's at() has second resolution). */
const inHours = (hours: number) => new Date(Math.ceil(Date.now() / 1000) * 1000 + hours * 3_600_000).toISOString();
const timer = () => timers.get(snoozeScheduleName(CONVERSATION));
const stored = () => item as { status: string; snoozedUntil?: string };

beforeEach(() => {
  vi.stubEnv('TABLE_NAME', 'conversa-unit');
  vi.stubEnv('SCHEDULE_GROUP', 'conversa-unit');
  vi.stubEnv('SCHEDULER_ROLE_ARN', 'arn:aws:iam::000000000000:role/scheduler');
  vi.stubEnv('ENGAGEMENT_FUNCTION_ARN', 'arn:aws:lambda:us-east-1:000000000000:function:engagement');
  vi.stubEnv('SCHEDULER_DLQ_ARN', 'arn:aws:sqs:us-east-1:000000000000:scheduler-dlq');
  const at = new Date().toISOString();
  item = {
    ...keys.conversation(CONVERSATION),
    id: CONVERSATION,
    channel: 'whatsapp',
    status: 'open',
    contact: { id: 'contact-snooze' },
    handle: '+15550101',
    assigneeId: null,
    unreadCount: 0,
    createdAt: at,
    updatedAt: at,
    lastMessageAt: at,
    version: 1,
  };
  timers.clear();
  overtake = undefined;
  ddb.reset();
  ddb.on(GetCommand).callsFake(() => ({ Item: item && structuredClone(item) }));
  ddb.on(PutCommand).callsFake((input: { Item: Record<string, unknown>; ExpressionAttributeValues?: Record<string, unknown> }) => {
    if (item?.version !== input.ExpressionAttributeValues?.[':v']) throw new ConditionalCheckFailedException({ message: 'version moved', ...metadata });
    item = structuredClone(input.Item);
    return {};
  });
  scheduler.reset();
  scheduler.on(CreateScheduleCommand).callsFake((input: { Name: string; ScheduleExpression: string }) =>
    schedulerCall(() => {
      if (timers.has(input.Name)) throw new ConflictException({ message: 'exists', Message: 'exists', ...metadata });
      timers.set(input.Name, input.ScheduleExpression);
    }),
  );
  scheduler.on(UpdateScheduleCommand).callsFake((input: { Name: string; ScheduleExpression: string }) =>
    schedulerCall(() => {
      if (!timers.has(input.Name)) throw new ResourceNotFoundException({ message: 'none', Message: 'none', ...metadata });
      timers.set(input.Name, input.ScheduleExpression);
    }),
  );
  scheduler.on(DeleteScheduleCommand).callsFake((input: { Name: string }) =>
    schedulerCall(() => {
      if (!timers.delete(input.Name)) throw new ResourceNotFoundException({ message: 'none', Message: 'none', ...metadata });
    }),
  );
});

describe('the snooze wake-up', () => {
  it('ends at the stored snoozedUntil when two snoozes arm in the other order than they were written', async () => {
    // Prepare: a second snooze is written and armed while the first one's arming is on its way
    const [first, second] = [inHours(1), inHours(2)];
    overtake = () => setConversationStatus(CONVERSATION, 'snoozed', second, 'agent-b');

    // Act
    await setConversationStatus(CONVERSATION, 'snoozed', first, 'agent-a');

    // Assess: the later write stands, and the timer follows it
    expect(stored()).toMatchObject({ status: 'snoozed', snoozedUntil: second });
    expect(timer()).toBe(atExpression(new Date(second)));
  });

  it('is gone when a reopening overtakes the snooze', async () => {
    overtake = () => setConversationStatus(CONVERSATION, 'open', undefined, 'agent-b');

    await setConversationStatus(CONVERSATION, 'snoozed', inHours(1), 'agent-a');

    expect(stored().status).toBe('open');
    expect(timer()).toBeUndefined();
  });

  it('re-armed by an early fire follows a snooze written meanwhile', async () => {
    // Prepare: snoozed for two hours; the wake fires early, and an agent snoozes it for three while it re-arms
    await setConversationStatus(CONVERSATION, 'snoozed', inHours(2), 'agent-a');
    const later = inHours(3);
    overtake = () => setConversationStatus(CONVERSATION, 'snoozed', later, 'agent-b');

    // Act
    expect(await wakeSnoozed(CONVERSATION)).toBeUndefined();

    // Assess
    expect(stored()).toMatchObject({ status: 'snoozed', snoozedUntil: later });
    expect(timer()).toBe(atExpression(new Date(later)));
  });
});
