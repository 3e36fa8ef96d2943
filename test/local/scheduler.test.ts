import {
  ConflictException,
  CreateScheduleCommand,
  CreateScheduleGroupCommand,
  DeleteScheduleCommand,
  GetScheduleCommand,
  GetScheduleGroupCommand,
  ListSchedulesCommand,
  ResourceNotFoundException,
  SchedulerClient,
  UpdateScheduleCommand,
  ValidationException,
  type CreateScheduleCommandInput,
} from '@aws-sdk/client-scheduler';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseAtExpression, type ScheduleFire } from '../../local/aws/scheduler';
import { startAwsStandIns, type AwsStandIns } from '../../local/aws/server';

const WAIT = { timeout: 15_000, interval: 20 };
const GROUP = 'conversa';
const TARGET = {
  Arn: 'arn:aws:lambda:us-east-1:000000000000:function:engagement',
  RoleArn: 'arn:aws:iam::000000000000:role/scheduler',
};

let aws: AwsStandIns;
let scheduler: SchedulerClient;
let fires: (ScheduleFire & { at: number })[];
let onFire: (fire: ScheduleFire) => Promise<void>;
let nameCount = 0;

/** `at(...)` for a moment `offsetMs` from now, rounded up to the next whole second. */
function at(offsetMs: number): { expression: string; time: number } {
  const time = Math.ceil((Date.now() + offsetMs) / 1000) * 1000;
  return { expression: `at(${new Date(time).toISOString().slice(0, 19)})`, time };
}

function newName(): string {
  nameCount += 1;
  return `conv-${nameCount}-email-fallback`;
}

function scheduleInput(name: string, expression: string, extra: Partial<CreateScheduleCommandInput> = {}): CreateScheduleCommandInput {
  return {
    Name: name,
    GroupName: GROUP,
    ScheduleExpression: expression,
    FlexibleTimeWindow: { Mode: 'OFF' },
    Target: { ...TARGET, Input: JSON.stringify({ kind: 'emailFallback', name }) },
    ActionAfterCompletion: 'DELETE',
    ...extra,
  };
}

const firesOf = (name: string) => fires.filter((fire) => fire.name === name);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  aws = await startAwsStandIns({
    onScheduleFire: (fire) => onFire(fire),
    scheduleRetries: 2,
    scheduleRetryDelayMs: 10,
  });
  scheduler = new SchedulerClient({ endpoint: aws.url, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  await scheduler.send(new CreateScheduleGroupCommand({ Name: GROUP }));
});

beforeEach(() => {
  fires = [];
  onFire = async (fire) => void fires.push({ ...fire, at: Date.now() });
});

afterAll(async () => {
  scheduler.destroy();
  await aws.close();
});

describe('one-time schedules', () => {
  it('fires at its time with the target input, then deletes itself', async () => {
    const name = newName();
    const { expression, time } = at(1500);
    const { ScheduleArn } = await scheduler.send(new CreateScheduleCommand(scheduleInput(name, expression)));
    expect(ScheduleArn).toBe(`arn:aws:scheduler:us-east-1:000000000000:schedule/${GROUP}/${name}`);

    const stored = await scheduler.send(new GetScheduleCommand({ Name: name, GroupName: GROUP }));
    expect(stored).toMatchObject({ Name: name, GroupName: GROUP, ScheduleExpression: expression, State: 'ENABLED', ActionAfterCompletion: 'DELETE' });
    expect(stored.CreationDate).toBeInstanceOf(Date);
    expect(stored.Target).toMatchObject(TARGET);

    await vi.waitFor(() => expect(firesOf(name)).toHaveLength(1), WAIT);
    const [fire] = firesOf(name);
    expect(fire).toMatchObject({ name, groupName: GROUP, target: { arn: TARGET.Arn, roleArn: TARGET.RoleArn } });
    expect(JSON.parse(fire!.target.input!)).toEqual({ kind: 'emailFallback', name });
    expect(fire!.at).toBeGreaterThanOrEqual(time);

    await vi.waitFor(
      () => expect(scheduler.send(new GetScheduleCommand({ Name: name, GroupName: GROUP }))).rejects.toBeInstanceOf(ResourceNotFoundException),
      WAIT,
    );
  });

  it('fires a schedule in the past at once', async () => {
    const name = newName();
    await scheduler.send(new CreateScheduleCommand(scheduleInput(name, 'at(2020-01-01T00:00:00)')));
    await vi.waitFor(() => expect(firesOf(name)).toHaveLength(1), WAIT);
  });

  it('keeps a schedule after firing when ActionAfterCompletion is NONE', async () => {
    const name = newName();
    await scheduler.send(new CreateScheduleCommand(scheduleInput(name, 'at(2020-01-01T00:00:00)', { ActionAfterCompletion: 'NONE' })));
    await vi.waitFor(() => expect(firesOf(name)).toHaveLength(1), WAIT);
    await expect(scheduler.send(new GetScheduleCommand({ Name: name, GroupName: GROUP }))).resolves.toMatchObject({ Name: name });
    await sleep(200);
    expect(firesOf(name)).toHaveLength(1);
  });

  it('rejects a second schedule of the same name in the group with ConflictException', async () => {
    const name = newName();
    await scheduler.send(new CreateScheduleCommand(scheduleInput(name, at(3_600_000).expression)));
    const error = await scheduler.send(new CreateScheduleCommand(scheduleInput(name, at(3_600_000).expression))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictException);
    expect(error).toMatchObject({ $metadata: { httpStatusCode: 409 } });
  });

  it('moves the fire time on update', async () => {
    const later = newName();
    await scheduler.send(new CreateScheduleCommand(scheduleInput(later, at(1000).expression)));
    await scheduler.send(new UpdateScheduleCommand(scheduleInput(later, at(3_600_000).expression)));

    const sooner = newName();
    await scheduler.send(new CreateScheduleCommand(scheduleInput(sooner, at(3_600_000).expression)));
    const { expression, time } = at(1000);
    await scheduler.send(new UpdateScheduleCommand(scheduleInput(sooner, expression)));

    await vi.waitFor(() => expect(firesOf(sooner)).toHaveLength(1), WAIT);
    expect(firesOf(sooner)[0]!.at).toBeGreaterThanOrEqual(time);
    // The first schedule's original time has passed too, and it did not fire.
    await sleep(Math.max(0, time + 500 - Date.now()));
    expect(firesOf(later)).toEqual([]);
    expect(aws.scheduler.list().find((s) => s.name === later)?.fireAt?.getTime()).toBeGreaterThan(Date.now() + 3_000_000);
  });

  it('cancels on delete', async () => {
    const name = newName();
    const { expression, time } = at(1000);
    await scheduler.send(new CreateScheduleCommand(scheduleInput(name, expression)));
    await scheduler.send(new DeleteScheduleCommand({ Name: name, GroupName: GROUP }));

    await sleep(Math.max(0, time + 500 - Date.now()));
    expect(firesOf(name)).toEqual([]);
    await expect(scheduler.send(new DeleteScheduleCommand({ Name: name, GroupName: GROUP }))).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it('reads the time in ScheduleExpressionTimezone', async () => {
    const name = newName();
    await scheduler.send(
      new CreateScheduleCommand(scheduleInput(name, 'at(2099-07-01T09:30:00)', { ScheduleExpressionTimezone: 'America/New_York' })),
    );
    expect(aws.scheduler.list().find((s) => s.name === name)?.fireAt?.toISOString()).toBe('2099-07-01T13:30:00.000Z');
  });
});

describe('failing targets', () => {
  it('retries a failing target, then records the fire as failed', async () => {
    let attempts = 0;
    onFire = async () => {
      attempts += 1;
      throw new Error('engagement crashed');
    };
    const name = newName();
    await scheduler.send(new CreateScheduleCommand(scheduleInput(name, 'at(2020-01-01T00:00:00)')));
    await vi.waitFor(() => expect(aws.scheduler.failed.filter((f) => f.name === name)).toHaveLength(1), WAIT);
    expect(attempts).toBe(3);
    expect(aws.scheduler.failed.find((f) => f.name === name)).toMatchObject({ error: 'engagement crashed', attempts: 3, groupName: GROUP });
  });

  it('succeeds on a retry after a transient failure', async () => {
    let attempts = 0;
    onFire = async (fire) => {
      attempts += 1;
      if (attempts === 1) throw new Error('throttled');
      fires.push({ ...fire, at: Date.now() });
    };
    const name = newName();
    await scheduler.send(new CreateScheduleCommand(scheduleInput(name, 'at(2020-01-01T00:00:00)')));
    await vi.waitFor(() => expect(firesOf(name)).toHaveLength(1), WAIT);
    expect(aws.scheduler.failed.filter((f) => f.name === name)).toEqual([]);
  });
});

describe('groups, listing and validation', () => {
  it('lists schedules by group and name prefix', async () => {
    await scheduler.send(new CreateScheduleGroupCommand({ Name: 'listing' }));
    for (const name of ['alpha-1', 'alpha-2', 'beta-1']) {
      await scheduler.send(new CreateScheduleCommand({ ...scheduleInput(name, at(3_600_000).expression), GroupName: 'listing' }));
    }
    const { Schedules } = await scheduler.send(new ListSchedulesCommand({ GroupName: 'listing', NamePrefix: 'alpha' }));
    expect(Schedules?.map((s) => s.Name)).toEqual(['alpha-1', 'alpha-2']);
    expect(Schedules?.[0]).toMatchObject({ GroupName: 'listing', State: 'ENABLED', Target: { Arn: TARGET.Arn } });

    const paged = await scheduler.send(new ListSchedulesCommand({ GroupName: 'listing', MaxResults: 2 }));
    expect(paged.Schedules).toHaveLength(2);
    const rest = await scheduler.send(new ListSchedulesCommand({ GroupName: 'listing', MaxResults: 2, NextToken: paged.NextToken }));
    expect(rest.Schedules?.map((s) => s.Name)).toEqual(['beta-1']);
    expect(rest.NextToken).toBeUndefined();
  });

  it('keeps schedule groups like AWS: create, get, conflict, missing', async () => {
    await expect(scheduler.send(new GetScheduleGroupCommand({ Name: GROUP }))).resolves.toMatchObject({ Name: GROUP, State: 'ACTIVE' });
    await expect(scheduler.send(new CreateScheduleGroupCommand({ Name: GROUP }))).rejects.toBeInstanceOf(ConflictException);
    await expect(
      scheduler.send(new CreateScheduleCommand({ ...scheduleInput(newName(), at(60_000).expression), GroupName: 'no-such-group' })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it('uses the default group when none is given', async () => {
    const name = newName();
    await scheduler.send(new CreateScheduleCommand({ ...scheduleInput(name, at(3_600_000).expression), GroupName: undefined }));
    await expect(scheduler.send(new GetScheduleCommand({ Name: name }))).resolves.toMatchObject({ GroupName: 'default' });
    await expect(scheduler.send(new GetScheduleCommand({ Name: name, GroupName: GROUP }))).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it('rejects invalid schedules with ValidationException', async () => {
    const invalid: CreateScheduleCommandInput[] = [
      scheduleInput(newName(), 'at(2099-02-30T00:00:00)'),
      scheduleInput(newName(), 'rate(5 minutes)'),
      scheduleInput(newName(), 'at(2099-01-01T00:00:00)', { ScheduleExpressionTimezone: 'Mars/Olympus_Mons' }),
      scheduleInput('bad name!', 'at(2099-01-01T00:00:00)'),
      { ...scheduleInput(newName(), 'at(2099-01-01T00:00:00)'), Target: { Arn: TARGET.Arn, RoleArn: '' } },
    ];
    for (const input of invalid) {
      await expect(scheduler.send(new CreateScheduleCommand(input))).rejects.toBeInstanceOf(ValidationException);
    }
  });

  it('answers unknown routes and malformed bodies with 4xx JSON errors', async () => {
    const responses = await Promise.all([
      fetch(`${aws.url}/schedules/x/y`, { method: 'PATCH' }),
      fetch(`${aws.url}/schedules/x`, { method: 'POST', body: 'not json' }),
      fetch(`${aws.url}/schedules/x`, { method: 'POST', body: JSON.stringify({ ScheduleExpression: 7, Target: [], FlexibleTimeWindow: 'off' }) }),
      fetch(`${aws.url}/schedules/%E0%A4%A`, { method: 'GET' }),
      fetch(`${aws.url}/schedules?MaxResults=abc`),
    ]);
    expect(responses.map((r) => r.status)).toEqual([400, 400, 400, 400, 400]);
    for (const response of responses) expect(typeof ((await response.json()) as { message?: unknown }).message).toBe('string');
  });
});

describe('parseAtExpression', () => {
  it('converts wall-clock times across daylight-saving changes', () => {
    expect(new Date(parseAtExpression('at(2030-01-15T12:00:00)', 'Europe/Paris')).toISOString()).toBe('2030-01-15T11:00:00.000Z');
    expect(new Date(parseAtExpression('at(2030-07-15T12:00:00)', 'Europe/Paris')).toISOString()).toBe('2030-07-15T10:00:00.000Z');
    expect(new Date(parseAtExpression('at(2030-03-31T03:30:00)', 'Europe/Paris')).toISOString()).toBe('2030-03-31T01:30:00.000Z');
    expect(new Date(parseAtExpression('at(2030-03-31T03:30:00)', 'UTC')).toISOString()).toBe('2030-03-31T03:30:00.000Z');
  });
});
