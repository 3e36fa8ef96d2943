import type { App, Environment, StackProps } from 'aws-cdk-lib';
import type { InboxIndexStage } from '../src/store/table';
import { StatefulStack } from './stateful-stack';
import { StatelessStack, type StatelessStackProps } from './stateless-stack';

/** Everything the app needs from outside: bin/ reads it from context and environment, tests pass it. */
export interface ConversaAppConfig
  extends Omit<StatelessStackProps, 'table' | 'tableIndexNames' | 'inboxIndexName' | 'mediaBucketArn' | 'userPool' | 'userPoolClient' | 'channelSecrets' | 'replyAddressKey' | 'widgetIdentityKey' | keyof StackProps> {
  /**
   * Account and region to deploy to.
   * @default - environment-agnostic stacks
   */
  readonly env?: Environment;
  /**
   * Prefix of the stack names.
   * @default 'Conversa'
   */
  readonly stackPrefix?: string;
  /**
   * The agent console's client also takes `USER_PASSWORD_AUTH` (AgentDirectoryProps.passwordAuth).
   * @default false: SRP only
   */
  readonly consolePasswordAuth?: boolean;
  /**
   * Where the table's inbox index stands (ConversaTableProps.inboxIndex): the table's indexes
   * and the one the functions' inbox list reads.
   * @default 'slim'
   */
  readonly inboxIndex?: InboxIndexStage;
  /**
   * `true` is `inboxIndex: 'all'` (ConversaTableProps.inboxIndexAll).
   * @deprecated use `inboxIndex`
   * @default false
   */
  readonly inboxIndexAll?: boolean;
}

export interface ConversaStacks {
  readonly stateful: StatefulStack;
  readonly stateless: StatelessStack;
}

/** What the stateless stack takes from the stateful one, but for the inbox index's names (their stage decides them). */
export function statefulResources(
  stateful: StatefulStack,
): Pick<StatelessStackProps, 'table' | 'mediaBucketArn' | 'channelSecrets' | 'replyAddressKey' | 'widgetIdentityKey' | 'userPool' | 'userPoolClient'> {
  return {
    table: stateful.table.table,
    mediaBucketArn: stateful.media.exportedArn,
    channelSecrets: stateful.channelSecrets,
    replyAddressKey: stateful.replyAddressKey,
    widgetIdentityKey: stateful.widgetIdentityKey,
    userPool: stateful.agents.userPool,
    userPoolClient: stateful.agents.consoleClient,
  };
}

/** Adds Conversa's two stacks to `app`; the stateless one depends on the stateful one. */
export function buildConversa(app: App, config: ConversaAppConfig): ConversaStacks {
  const { env, stackPrefix = 'Conversa', consolePasswordAuth, inboxIndex, inboxIndexAll, ...statelessProps } = config;
  const stackProps = env ? { env } : {};
  // The pages that chat (allowedOrigins) upload and download files too.
  const stateful = new StatefulStack(app, `${stackPrefix}Stateful`, {
    ...stackProps,
    ...(statelessProps.allowedOrigins ? { media: { allowedOrigins: statelessProps.allowedOrigins } } : {}),
    ...(consolePasswordAuth ? { agents: { passwordAuth: true } } : {}),
    table: { ...(inboxIndex !== undefined ? { inboxIndex } : {}), ...(inboxIndexAll !== undefined ? { inboxIndexAll } : {}) },
  });
  const stateless = new StatelessStack(app, `${stackPrefix}Stateless`, {
    ...stackProps,
    ...statelessProps,
    ...statefulResources(stateful),
    // The stateful stack deploys first (this stack depends on it): during a migration of the inbox
    // index, each deploy changes the table under the functions of the deploy before (README, Deploy).
    tableIndexNames: stateful.table.indexNames,
    inboxIndexName: stateful.table.inboxIndexName,
  });
  return { stateful, stateless };
}
