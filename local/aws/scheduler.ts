/**
 * EventBridge Scheduler stand-in for one-time schedules (`at(...)`): they fire at their time by
 * calling `onScheduleFire`, which stands in for the target (the engagement function).
 */
import { ACCOUNT_ID, REGION } from './sqs';
import { zonedTimeToInstant } from '../../src/domain/business-hours';

export interface ScheduleTarget {
  arn: string;
  roleArn: string;
  input?: string;
}

export interface ScheduleFire {
  name: string;
  groupName: string;
  target: ScheduleTarget;
}

export interface FailedFire extends ScheduleFire {
  error: string;
  attempts: number;
  at: Date;
}

export interface ScheduleView {
  name: string;
  groupName: string;
  arn: string;
  expression: string;
  timezone: string;
  state: 'ENABLED' | 'DISABLED';
  actionAfterCompletion: 'NONE' | 'DELETE';
  target: ScheduleTarget;
  /** When the schedule fires (or fired); undefined once a one-time schedule has fired. */
  fireAt: Date | undefined;
}

export interface LocalSchedulerOptions {
  onScheduleFire: (fire: ScheduleFire) => Promise<void>;
  /** Extra attempts after a failed one, before the fire lands in `failed`. @default 2 */
  retries?: number;
  /** Delay before the first retry, doubled for each further one. @default 100 */
  retryDelayMs?: number;
}

export type SchedulerErrorCode = 'ConflictException' | 'ResourceNotFoundException' | 'ValidationException';

const STATUS: Record<SchedulerErrorCode, number> = {
  ConflictException: 409,
  ResourceNotFoundException: 404,
  ValidationException: 400,
};

export class SchedulerError extends Error {
  readonly status: number;

  constructor(
    readonly code: SchedulerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = code;
    this.status = STATUS[code];
  }
}

const DEFAULT_GROUP = 'default';
const NAME = /^[0-9a-zA-Z-_.]{1,64}$/;
const AT_EXPRESSION = /^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)$/;
/** setTimeout's limit; later fire times are reached by re-arming. */
const MAX_TIMER_MS = 2 ** 31 - 1;

type Json = Record<string, unknown>;

interface Schedule {
  readonly name: string;
  readonly groupName: string;
  readonly expression: string;
  readonly timezone: string;
  readonly fireAt: number;
  readonly state: 'ENABLED' | 'DISABLED';
  readonly actionAfterCompletion: 'NONE' | 'DELETE';
  readonly target: ScheduleTarget;
  /** The Target as given, returned unchanged by GetSchedule. */
  readonly rawTarget: Json;
  readonly flexibleTimeWindow: Json;
  readonly description: string | undefined;
  readonly startDate: number | undefined;
  readonly endDate: number | undefined;
  readonly kmsKeyArn: string | undefined;
  readonly creationDate: number;
  readonly lastModificationDate: number;
  fired: boolean;
  timer?: NodeJS.Timeout;
}

interface Group {
  readonly name: string;
  readonly creationDate: number;
  readonly schedules: Map<string, Schedule>;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(input: Json, name: string): string | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new SchedulerError('ValidationException', `${name} must be a string.`);
  return value;
}

function requiredString(input: Json, name: string): string {
  const value = optionalString(input, name);
  if (!value) throw new SchedulerError('ValidationException', `${name} is required.`);
  return value;
}

function optionalEnum<T extends string>(input: Json, name: string, allowed: readonly T[], fallback: T): T {
  const value = optionalString(input, name) ?? fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new SchedulerError('ValidationException', `${name} must be one of ${allowed.join(', ')}.`);
  }
  return value as T;
}

/** Timestamps travel as epoch seconds in this REST-JSON protocol. */
function optionalEpochSeconds(input: Json, name: string): number | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new SchedulerError('ValidationException', `${name} must be a timestamp.`);
  return value * 1000;
}

function validName(kind: string, name: string): string {
  if (!NAME.test(name)) {
    throw new SchedulerError('ValidationException', `${kind} name must be 1 to 64 letters, digits, hyphens, underscores or dots: ${name}`);
  }
  return name;
}

/** Parses `at(yyyy-mm-ddThh:mm:ss)`, a wall-clock time in `timeZone`, into epoch ms. */
export function parseAtExpression(expression: string, timeZone: string): number {
  const match = AT_EXPRESSION.exec(expression);
  if (!match) {
    throw new SchedulerError('ValidationException', `Invalid Schedule Expression ${expression}: the local scheduler supports one-time at(yyyy-mm-ddThh:mm:ss) schedules only.`);
  }
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  const wallClock = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(wallClock);
  if (check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    throw new SchedulerError('ValidationException', `Invalid Schedule Expression ${expression}: no such date.`);
  }
  try {
    return zonedTimeToInstant(timeZone, year, month, day, hour, minute, second).getTime();
  } catch {
    throw new SchedulerError('ValidationException', `Invalid ScheduleExpressionTimezone ${timeZone}.`);
  }
}

function parseTarget(input: Json): { target: ScheduleTarget; rawTarget: Json } {
  const raw = input.Target;
  if (!isObject(raw)) throw new SchedulerError('ValidationException', 'Target is required.');
  return {
    target: { arn: requiredString(raw, 'Arn'), roleArn: requiredString(raw, 'RoleArn'), input: optionalString(raw, 'Input') },
    rawTarget: raw,
  };
}

function page<T>(items: T[], query: URLSearchParams): { items: T[]; nextToken: string | undefined } {
  const start = Number(query.get('NextToken') ?? '0');
  const max = Number(query.get('MaxResults') ?? '100');
  if (!Number.isInteger(start) || start < 0) throw new SchedulerError('ValidationException', 'Invalid NextToken.');
  if (!Number.isInteger(max) || max < 1 || max > 100) throw new SchedulerError('ValidationException', 'MaxResults must be between 1 and 100.');
  const slice = items.slice(start, start + max);
  return { items: slice, nextToken: start + slice.length < items.length ? String(start + slice.length) : undefined };
}

const seconds = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1000);

export class LocalScheduler {
  /** Fires whose every attempt failed: what the target's dead-letter queue would hold. */
  readonly failed: FailedFire[] = [];
  /** Fires that reached the target, oldest first. */
  readonly fired: (ScheduleFire & { at: Date })[] = [];

  private readonly groups = new Map<string, Group>();
  private readonly pending = new Set<Promise<void>>();
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private closed = false;

  constructor(private readonly options: LocalSchedulerOptions) {
    this.retries = options.retries ?? 2;
    this.retryDelayMs = options.retryDelayMs ?? 100;
    this.groups.set(DEFAULT_GROUP, { name: DEFAULT_GROUP, creationDate: Date.now(), schedules: new Map() });
  }

  /** Creates a schedule group unless it exists; AWS needs groups created before their schedules. */
  ensureGroup(name: string): string {
    if (!this.groups.has(name)) this.createScheduleGroup(name);
    return groupArn(name);
  }

  list(): ScheduleView[] {
    return [...this.groups.values()].flatMap((group) =>
      [...group.schedules.values()].map((schedule) => ({
        name: schedule.name,
        groupName: schedule.groupName,
        arn: scheduleArn(schedule),
        expression: schedule.expression,
        timezone: schedule.timezone,
        state: schedule.state,
        actionAfterCompletion: schedule.actionAfterCompletion,
        target: schedule.target,
        fireAt: schedule.fired ? undefined : new Date(schedule.fireAt),
      })),
    );
  }

  /** Stops every timer and waits for fires already under way. */
  async close(): Promise<void> {
    this.closed = true;
    for (const group of this.groups.values()) {
      for (const schedule of group.schedules.values()) clearTimeout(schedule.timer);
    }
    await Promise.allSettled([...this.pending]);
  }

  createSchedule(name: string, input: Json): Json {
    const group = this.group(optionalString(input, 'GroupName') ?? DEFAULT_GROUP);
    if (group.schedules.has(validName('Schedule', name))) {
      throw new SchedulerError('ConflictException', `Schedule ${name} already exists.`);
    }
    return this.put(group, this.parseSchedule(name, group.name, input, Date.now()));
  }

  /** Replaces every field, as UpdateSchedule does: omitted optional fields fall back to defaults. */
  updateSchedule(name: string, input: Json): Json {
    const group = this.group(optionalString(input, 'GroupName') ?? DEFAULT_GROUP);
    const existing = this.schedule(group, name);
    return this.put(group, this.parseSchedule(name, group.name, input, existing.creationDate));
  }

  getSchedule(name: string, groupName: string | null): Json {
    const group = this.group(groupName ?? DEFAULT_GROUP);
    const schedule = this.schedule(group, name);
    return {
      Arn: scheduleArn(schedule),
      GroupName: schedule.groupName,
      Name: schedule.name,
      ScheduleExpression: schedule.expression,
      ScheduleExpressionTimezone: schedule.timezone,
      State: schedule.state,
      ActionAfterCompletion: schedule.actionAfterCompletion,
      Target: schedule.rawTarget,
      FlexibleTimeWindow: schedule.flexibleTimeWindow,
      Description: schedule.description,
      StartDate: seconds(schedule.startDate),
      EndDate: seconds(schedule.endDate),
      KmsKeyArn: schedule.kmsKeyArn,
      CreationDate: seconds(schedule.creationDate),
      LastModificationDate: seconds(schedule.lastModificationDate),
    };
  }

  deleteSchedule(name: string, groupName: string | null): Json {
    const group = this.group(groupName ?? DEFAULT_GROUP);
    this.remove(this.schedule(group, name));
    return {};
  }

  listSchedules(query: URLSearchParams): Json {
    const groupName = query.get('ScheduleGroup');
    const prefix = query.get('NamePrefix') ?? '';
    const state = query.get('State');
    const groups = groupName === null ? [...this.groups.values()] : [this.group(groupName)];
    const schedules = groups
      .flatMap((group) => [...group.schedules.values()])
      .filter((schedule) => schedule.name.startsWith(prefix) && (state === null || schedule.state === state))
      .sort((a, b) => a.groupName.localeCompare(b.groupName) || a.name.localeCompare(b.name));
    const { items, nextToken } = page(schedules, query);
    return {
      Schedules: items.map((schedule) => ({
        Arn: scheduleArn(schedule),
        Name: schedule.name,
        GroupName: schedule.groupName,
        State: schedule.state,
        CreationDate: seconds(schedule.creationDate),
        LastModificationDate: seconds(schedule.lastModificationDate),
        Target: { Arn: schedule.target.arn },
      })),
      NextToken: nextToken,
    };
  }

  createScheduleGroup(name: string): Json {
    if (this.groups.has(validName('Schedule group', name))) {
      throw new SchedulerError('ConflictException', `Schedule group ${name} already exists.`);
    }
    this.groups.set(name, { name, creationDate: Date.now(), schedules: new Map() });
    return { ScheduleGroupArn: groupArn(name) };
  }

  getScheduleGroup(name: string): Json {
    return groupSummary(this.group(name));
  }

  deleteScheduleGroup(name: string): Json {
    if (name === DEFAULT_GROUP) throw new SchedulerError('ValidationException', 'The default schedule group cannot be deleted.');
    const group = this.group(name);
    for (const schedule of group.schedules.values()) this.remove(schedule);
    this.groups.delete(name);
    return {};
  }

  listScheduleGroups(query: URLSearchParams): Json {
    const prefix = query.get('NamePrefix') ?? '';
    const groups = [...this.groups.values()].filter((group) => group.name.startsWith(prefix));
    const { items, nextToken } = page(groups, query);
    return { ScheduleGroups: items.map(groupSummary), NextToken: nextToken };
  }

  private group(name: string): Group {
    const group = this.groups.get(name);
    if (!group) throw new SchedulerError('ResourceNotFoundException', `Schedule group ${name} does not exist.`);
    return group;
  }

  private schedule(group: Group, name: string): Schedule {
    const schedule = group.schedules.get(name);
    if (!schedule) throw new SchedulerError('ResourceNotFoundException', `Schedule ${name} does not exist.`);
    return schedule;
  }

  private parseSchedule(name: string, groupName: string, input: Json, creationDate: number): Schedule {
    const expression = requiredString(input, 'ScheduleExpression');
    const timezone = optionalString(input, 'ScheduleExpressionTimezone') ?? 'UTC';
    const flexibleTimeWindow = input.FlexibleTimeWindow;
    if (!isObject(flexibleTimeWindow)) throw new SchedulerError('ValidationException', 'FlexibleTimeWindow is required.');
    optionalEnum(flexibleTimeWindow, 'Mode', ['OFF', 'FLEXIBLE'], 'OFF');
    return {
      name,
      groupName,
      expression,
      timezone,
      fireAt: parseAtExpression(expression, timezone),
      state: optionalEnum(input, 'State', ['ENABLED', 'DISABLED'], 'ENABLED'),
      actionAfterCompletion: optionalEnum(input, 'ActionAfterCompletion', ['NONE', 'DELETE'], 'NONE'),
      ...parseTarget(input),
      flexibleTimeWindow,
      description: optionalString(input, 'Description'),
      startDate: optionalEpochSeconds(input, 'StartDate'),
      endDate: optionalEpochSeconds(input, 'EndDate'),
      kmsKeyArn: optionalString(input, 'KmsKeyArn'),
      creationDate,
      lastModificationDate: Date.now(),
      fired: false,
    };
  }

  private put(group: Group, schedule: Schedule): Json {
    const previous = group.schedules.get(schedule.name);
    if (previous) clearTimeout(previous.timer);
    group.schedules.set(schedule.name, schedule);
    if (schedule.state === 'ENABLED') this.arm(schedule);
    return { ScheduleArn: scheduleArn(schedule) };
  }

  private remove(schedule: Schedule): void {
    clearTimeout(schedule.timer);
    const schedules = this.groups.get(schedule.groupName)?.schedules;
    // Only this very version: an update or re-create since it fired must survive.
    if (schedules?.get(schedule.name) === schedule) schedules.delete(schedule.name);
  }

  private arm(schedule: Schedule): void {
    if (this.closed) return;
    const delay = schedule.fireAt - Date.now();
    schedule.timer = setTimeout(
      // Node may wake a timer a millisecond before its time by the wall clock: never fire early.
      () => (Date.now() < schedule.fireAt ? this.arm(schedule) : this.track(this.fire(schedule))),
      Math.min(Math.max(delay, 0), MAX_TIMER_MS),
    );
  }

  private track(work: Promise<void>): void {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }

  private async fire(schedule: Schedule): Promise<void> {
    schedule.fired = true;
    const fire: ScheduleFire = { name: schedule.name, groupName: schedule.groupName, target: schedule.target };
    for (let attempt = 0; ; attempt += 1) {
      try {
        await this.options.onScheduleFire(fire);
        this.fired.push({ ...fire, at: new Date() });
        break;
      } catch (error) {
        if (attempt >= this.retries || this.closed) {
          const message = error instanceof Error ? error.message : String(error);
          this.failed.push({ ...fire, error: message, attempts: attempt + 1, at: new Date() });
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, this.retryDelayMs * 2 ** attempt));
      }
    }
    if (schedule.actionAfterCompletion === 'DELETE') this.remove(schedule);
  }
}

function scheduleArn(schedule: Pick<Schedule, 'groupName' | 'name'>): string {
  return `arn:aws:scheduler:${REGION}:${ACCOUNT_ID}:schedule/${schedule.groupName}/${schedule.name}`;
}

function groupArn(name: string): string {
  return `arn:aws:scheduler:${REGION}:${ACCOUNT_ID}:schedule-group/${name}`;
}

function groupSummary(group: Group): Json {
  return {
    Arn: groupArn(group.name),
    Name: group.name,
    State: 'ACTIVE',
    CreationDate: seconds(group.creationDate),
    LastModificationDate: seconds(group.creationDate),
  };
}
