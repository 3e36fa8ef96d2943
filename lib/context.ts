/**
 * The CDK context keys of the app and how their values are read, apart from bin/ so that tests
 * can check the parsing without starting the CDK app. What each key does, its default and the
 * values it takes: README, Configuration (a test keeps that table and CONTEXT_KEYS in step).
 */
import type { ConversaAppConfig } from './app';
import { INBOX_INDEX_STAGES, type InboxIndexStage, isInboxIndexStage } from '../src/store/table';

/** Every context key the app reads. */
export const CONTEXT_KEYS = [
  'sesIdentity',
  'mailFrom',
  'mailReplyDomain',
  'mailReceiptRuleSet',
  'allowedOrigins',
  'publicUrl',
  'widgetUrl',
  'alarmEmail',
  'logLevel',
  'sourceMaps',
  'webSocketAccessLogging',
  'consolePasswordAuth',
  'inboxIndexAll',
  'inboxIndex',
  'dashboard',
  'emailFallbackDelaySeconds',
  'reengageAfterSeconds',
  'autoResolveAfterSeconds',
  'visitorAddressSends',
  'visitorUploadsPerHour',
  'agentUploadsPerHour',
  'engagementConcurrency',
  'nag',
] as const;
export type ContextKey = (typeof CONTEXT_KEYS)[number];

/** What the context sets: the app's settings, and whether cdk-nag runs. */
export interface ConversaContext {
  readonly config: Omit<ConversaAppConfig, 'projectRoot' | 'env' | 'stackPrefix'>;
  /** Whether the cdk-nag AwsSolutions checks run on synth. */
  readonly nag: boolean;
}

const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const;

/**
 * Reads the app's settings through `tryGetContext` (an `App`'s `node.tryGetContext`). Values
 * come as strings from `-c key=value` and as JSON from cdk.json, so both forms are accepted;
 * an empty value counts as unset. Throws on a value that cannot be meant.
 */
export function readConversaContext(tryGetContext: (key: ContextKey) => unknown): ConversaContext {
  const context = (key: ContextKey): string | undefined => {
    const value = tryGetContext(key);
    return value === undefined || value === null || value === '' ? undefined : String(value);
  };
  const seconds = (key: ContextKey): number | undefined => {
    const raw = context(key);
    if (raw === undefined) return undefined;
    const value = Number(raw);
    // Whole seconds within bounds: StatelessStack checks that, for props as well.
    if (!Number.isFinite(value)) throw new Error(`context ${key} must be a number of seconds, got ${raw}`);
    return value;
  };
  const count = (key: ContextKey, what: string): number | undefined => {
    const raw = context(key);
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1) throw new Error(`context ${key} must be a whole number of ${what}, got ${raw}`);
    return value;
  };
  // A count or `none`; its bounds are the stack's to check, for props as well.
  const concurrency = (key: ContextKey): number | 'none' | undefined => {
    const raw = context(key);
    if (raw === undefined || raw === 'none') return raw;
    const value = Number(raw);
    if (!Number.isFinite(value)) throw new Error(`context ${key} must be a number or none, got ${raw}`);
    return value;
  };
  // Only the spellings that say which way: `-c webSocketAccessLogging=0` or `=no` must not turn it on.
  const flag = (key: ContextKey, fallback: boolean): boolean => {
    const raw = context(key);
    if (raw === undefined) return fallback;
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    throw new Error(`context ${key} must be true or false (or 1 or 0), got ${raw}`);
  };

  const logLevel = context('logLevel');
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new Error(`context logLevel must be DEBUG, INFO, WARN or ERROR, got ${logLevel}`);
  }
  const allowedOrigins = context('allowedOrigins')
    ?.split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  // `-c allowedOrigins=,` would leave the API without CORS and the media bucket's CORS rule with no origin.
  if (allowedOrigins?.length === 0) throw new Error(`context allowedOrigins must name origins separated by commas, got ${context('allowedOrigins')}`);
  // inboxIndexAll came first and deployed tables set it: it stays, read as the stage it names.
  const inboxIndex = context('inboxIndex');
  if (inboxIndex !== undefined && !isInboxIndexStage(inboxIndex)) {
    throw new Error(`context inboxIndex must be ${INBOX_INDEX_STAGES.slice(0, -1).join(', ')} or ${INBOX_INDEX_STAGES.at(-1)}, got ${inboxIndex}`);
  }
  const inboxIndexAll = context('inboxIndexAll') === undefined ? undefined : flag('inboxIndexAll', false);
  const fromAll: InboxIndexStage | undefined = inboxIndexAll === undefined ? undefined : inboxIndexAll ? 'all' : 'slim';
  if (inboxIndex !== undefined && fromAll !== undefined && inboxIndex !== fromAll) {
    throw new Error(
      `context inboxIndexAll=${String(inboxIndexAll)} (inboxIndex ${fromAll}) and inboxIndex=${inboxIndex} disagree: remove inboxIndexAll and keep inboxIndex alone (README, Deploy)`,
    );
  }
  const optional = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } =>
    (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };

  return {
    config: {
      ...optional('sesIdentity', context('sesIdentity')),
      ...optional('mailFrom', context('mailFrom')),
      ...optional('mailReplyDomain', context('mailReplyDomain')),
      ...optional('mailReceiptRuleSet', context('mailReceiptRuleSet')),
      ...optional('publicUrl', context('publicUrl')),
      ...optional('widgetUrl', context('widgetUrl')),
      ...optional('alarmEmail', context('alarmEmail')),
      ...optional('allowedOrigins', allowedOrigins),
      ...optional('logLevel', logLevel as (typeof LOG_LEVELS)[number] | undefined),
      webSocketAccessLogging: flag('webSocketAccessLogging', false),
      sourceMaps: flag('sourceMaps', true),
      consolePasswordAuth: flag('consolePasswordAuth', false),
      inboxIndex: inboxIndex ?? fromAll ?? 'slim',
      dashboard: flag('dashboard', true),
      ...optional('emailFallbackDelaySeconds', seconds('emailFallbackDelaySeconds')),
      ...optional('reengageAfterSeconds', seconds('reengageAfterSeconds')),
      ...optional('autoResolveAfterSeconds', seconds('autoResolveAfterSeconds')),
      ...optional('visitorAddressSends', count('visitorAddressSends', 'messages')),
      ...optional('visitorUploadsPerHour', count('visitorUploadsPerHour', 'upload tickets')),
      ...optional('agentUploadsPerHour', count('agentUploadsPerHour', 'upload tickets')),
      ...optional('engagementConcurrency', concurrency('engagementConcurrency')),
    },
    nag: flag('nag', true),
  };
}
