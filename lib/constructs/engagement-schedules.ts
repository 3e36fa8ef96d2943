import { Names, Stack, Validations } from 'aws-cdk-lib';
import { Effect, type IGrantable, Grant, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { CfnSchedule, CfnScheduleGroup } from 'aws-cdk-lib/aws-scheduler';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { RedrivePermission } from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';
import { AlarmedDeadLetterQueue } from './dead-letter-queue';
import { acknowledgeWildcardResource } from './nag';

/**
 * What a function needs to create, replace and cancel one-time schedules. No
 * `scheduler:GetSchedule`: no function reads a schedule back (src/domain/timers.ts).
 */
export const SCHEDULE_WRITE_ACTIONS = ['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:DeleteSchedule'] as const;

/** Properties of {@link EngagementSchedules}. */
export interface EngagementSchedulesProps {
  /**
   * Topic for the alarm on the schedules' dead-letter queue.
   * @default - no alarm actions
   */
  readonly alarmTopic?: ITopic;
}

/**
 * Where Conversa's timers live: an EventBridge Scheduler group for the one-time schedules
 * the functions create at runtime (email fallback, re-engagement, auto-resolve), the role
 * Scheduler assumes to invoke the target, and a dead-letter queue for invocations that failed.
 * Those schedules are not part of the stack; the few recurring ones are (addRecurring).
 */
export class EngagementSchedules extends Construct {
  public readonly group: CfnScheduleGroup;
  public readonly groupName: string;
  /** ARN pattern of every schedule in the group, the only ones the functions may touch. */
  public readonly schedulesArn: string;
  /** ARN of the group, which Scheduler names as the source when it assumes the role. */
  public readonly groupArn: string;
  /** The role each schedule names as its execution role. */
  public readonly role: Role;
  public readonly deadLetterQueue: AlarmedDeadLetterQueue;
  private readonly allowed = new Set<IFunction>();

  constructor(scope: Construct, id: string, props: EngagementSchedulesProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);

    // Generated from the construct path, so two deployments in one account never collide,
    // yet known at synth time so the schedule ARN pattern needs no token arithmetic.
    this.groupName = Names.uniqueResourceName(this, { maxLength: 64, separator: '-' });
    this.group = new CfnScheduleGroup(this, 'Group', { name: this.groupName });
    this.schedulesArn = stack.formatArn({ service: 'scheduler', resource: 'schedule', resourceName: `${this.groupName}/*` });
    this.groupArn = stack.formatArn({ service: 'scheduler', resource: 'schedule-group', resourceName: this.groupName });

    this.role = new Role(this, 'Role', {
      description: 'Assumed by EventBridge Scheduler to run Conversa timers',
      // Confused-deputy guard: only Scheduler acting for this account, and for a schedule of this
      // group, may assume it. AWS's guide names the schedule group's ARN as aws:SourceArn (and
      // warns against a schedule's); an earlier version of it named the schedules' ARN. Both stay
      // inside this group, so either form Scheduler sends matches and nothing else does: a
      // condition that matched neither would fail every timer, and its dead-lettering with it.
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: { 'aws:SourceArn': [this.groupArn, this.schedulesArn] },
        },
      }),
    });

    this.deadLetterQueue = new AlarmedDeadLetterQueue(this, 'DeadLetter', {
      subject: 'Conversa timers',
      // Scheduler's dead letters only: no SQS queue may redrive its failures in here.
      redriveAllowPolicy: { redrivePermission: RedrivePermission.DENY_ALL },
      ...(props.alarmTopic ? { alarmTopic: props.alarmTopic } : {}),
    });
    // Scheduler delivers dead-letter events with the schedule's execution role, so the role
    // needs SendMessage on this queue (and nothing else of SQS).
    this.role.addToPrincipalPolicy(
      new PolicyStatement({ effect: Effect.ALLOW, actions: ['sqs:SendMessage'], resources: [this.deadLetterQueue.queue.queueArn] }),
    );
    Validations.of(this.deadLetterQueue.queue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself a dead-letter queue: the DeadLetterConfig of every schedule in the group, set at runtime by the functions (SCHEDULER_DLQ_ARN).',
    });
  }

  /**
   * Lets the schedules invoke `target` and nothing else. Kept apart from the constructor because
   * the target is itself configured with this group and role.
   */
  public allowTarget(target: IFunction): void {
    if (this.allowed.has(target)) return;
    this.allowed.add(target);
    // The unqualified ARN only: schedules target $LATEST, never a version or alias (no `:*`).
    this.role.addToPrincipalPolicy(
      new PolicyStatement({ effect: Effect.ALLOW, actions: ['lambda:InvokeFunction'], resources: [target.functionArn] }),
    );
  }

  /**
   * A schedule of the stack itself that invokes `target` every `everyMinutes` with `input`, with
   * the group's role, retries and dead-letter queue; the role may invoke `target` from then on.
   */
  public addRecurring(id: string, props: { target: IFunction; everyMinutes: number; input: object; description: string }): CfnSchedule {
    this.allowTarget(props.target);
    return new CfnSchedule(this, id, {
      groupName: this.group.ref,
      description: props.description,
      scheduleExpression: `rate(${props.everyMinutes} minutes)`,
      flexibleTimeWindow: { mode: 'OFF' },
      target: {
        arn: props.target.functionArn,
        roleArn: this.role.roleArn,
        input: JSON.stringify(props.input),
        deadLetterConfig: { arn: this.deadLetterQueue.queue.queueArn },
        retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: props.everyMinutes * 60 },
      },
    });
  }

  /** Lets `grantee` manage the group's schedules and hand them the execution role. */
  public grantManageSchedules(grantee: IGrantable & IConstruct): Grant {
    const schedules = Grant.addToPrincipal({ grantee, actions: [...SCHEDULE_WRITE_ACTIONS], resourceArns: [this.schedulesArn] });
    // Only to Scheduler: the role cannot be handed to another service by these functions.
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ['iam:PassRole'],
        resources: [this.role.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
      }),
    );
    acknowledgeWildcardResource(
      grantee,
      this.schedulesArn,
      'Schedules are created at runtime with names derived from conversation ids; the wildcard stays inside this schedule group.',
    );
    return schedules;
  }
}
