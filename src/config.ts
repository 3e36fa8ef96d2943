/**
 * Runtime configuration, read from the environment once per cold start.
 * The CDK stateless stack sets these on each function; the local stack sets them for its process.
 */
import { INBOX_INDEX, MIGRATED_INBOX_INDEX } from './store/table';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Missing environment variable ${name}`);
  return value;
}

function seconds(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number of seconds`);
  return value;
}

/** Environment variable names, shared with lib/ and local/ so that nobody spells them twice. */
export const ENV = {
  tableName: 'TABLE_NAME',
  inboundQueueUrl: 'INBOUND_QUEUE_URL',
  outboundQueueUrl: 'OUTBOUND_QUEUE_URL',
  /** The inbound queue's dead-letter queue, where its consumer puts a record it gives up on. */
  inboundDlqUrl: 'INBOUND_DLQ_URL',
  /** The WebSocket @connections management endpoint, e.g. https://abc.execute-api.eu-west-1.amazonaws.com/live */
  wsCallbackUrl: 'WS_CALLBACK_URL',
  /** The URL clients connect to (wss://…); returned by the widget session route. */
  wsPublicUrl: 'WS_PUBLIC_URL',
  jwtIssuer: 'JWT_ISSUER',
  jwtJwksUri: 'JWT_JWKS_URI',
  jwtAudience: 'JWT_AUDIENCE',
  publicUrl: 'CONVERSA_PUBLIC_URL',
  /** The web page visitors chat on (the website with the widget); fallback emails link to it. */
  widgetUrl: 'CONVERSA_WIDGET_URL',
  scheduleGroup: 'SCHEDULE_GROUP',
  schedulerRoleArn: 'SCHEDULER_ROLE_ARN',
  engagementFunctionArn: 'ENGAGEMENT_FUNCTION_ARN',
  schedulerDlqArn: 'SCHEDULER_DLQ_ARN',
  mailFrom: 'MAIL_FROM',
  mailReplyDomain: 'MAIL_REPLY_DOMAIN',
  replySecret: 'REPLY_ADDRESS_SECRET',
  /** Deployed: the Secrets Manager secret holding REPLY_ADDRESS_SECRET's value. */
  replySecretArn: 'REPLY_ADDRESS_SECRET_ARN',
  /** HMAC key of web visitors' identity hashes (widget identity verification). */
  widgetIdentitySecret: 'WIDGET_IDENTITY_SECRET',
  /** Deployed: the Secrets Manager secret holding WIDGET_IDENTITY_SECRET's value. */
  widgetIdentitySecretArn: 'WIDGET_IDENTITY_SECRET_ARN',
  emailFallbackDelay: 'CONVERSA_EMAIL_FALLBACK_DELAY_SECONDS',
  reengageAfter: 'CONVERSA_REENGAGE_AFTER_SECONDS',
  autoResolveAfter: 'CONVERSA_AUTO_RESOLVE_AFTER_SECONDS',
  /** The S3 bucket of uploaded files (src/aws/media-store.ts). */
  mediaBucket: 'MEDIA_BUCKET',
  /** Web visitors' messages one network address may send in 10 s, all its sessions together. */
  visitorAddressSends: 'CONVERSA_VISITOR_ADDRESS_SENDS',
  /** Upload tickets one web visitor may take per UTC hour (src/domain/media.ts). */
  visitorUploadsPerHour: 'CONVERSA_VISITOR_UPLOADS_PER_HOUR',
  /** Upload tickets one agent may take per UTC hour. */
  agentUploadsPerHour: 'CONVERSA_AGENT_UPLOADS_PER_HOUR',
  /** The index the inbox list queries: set only on a table migrated from the old inbox index (src/store/table.ts). */
  inboxIndex: 'CONVERSA_INBOX_INDEX',
  /** How long an agent whose last console closed stays online (a reload or a blip must not make them away). */
  presenceGrace: 'CONVERSA_PRESENCE_GRACE_SECONDS',
  /** The first backoff after a provider's "later" (429, 5xx), doubling per attempt. */
  retryBase: 'CONVERSA_RETRY_BASE_SECONDS',
} as const;

/**
 * Longest delay of each timer, in seconds: the bounds of the workspace settings
 * (src/domain/settings.ts), which the deployed defaults (CDK context) must keep too.
 */
export const TIMER_MAX_SECONDS = { emailFallbackDelaySeconds: 7 * 86400, reengageAfterSeconds: 30 * 86400, autoResolveAfterSeconds: 90 * 86400 } as const;

/** Web visitors' messages one network address may send in 10 s (ENV.visitorAddressSends). */
export const VISITOR_ADDRESS_SENDS_DEFAULT = 100;

/**
 * Upload tickets one uploader may take per UTC hour. Each may put up to 25 MiB in the bucket for a
 * day (uploads/ expires then): without a limit one visitor token could fill it. Agents attach more.
 */
export const UPLOADS_PER_HOUR_DEFAULT = { visitor: 60, agent: 600 } as const;

function wholeNumber(name: string, fallback: number, what: string): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number of ${what}`);
  return value;
}

export const config = {
  get visitorAddressSends(): number {
    return wholeNumber(ENV.visitorAddressSends, VISITOR_ADDRESS_SENDS_DEFAULT, 'messages');
  },
  /** ENV.visitorUploadsPerHour and ENV.agentUploadsPerHour, else UPLOADS_PER_HOUR_DEFAULT. */
  get uploadsPerHour(): { visitor: number; agent: number } {
    return {
      visitor: wholeNumber(ENV.visitorUploadsPerHour, UPLOADS_PER_HOUR_DEFAULT.visitor, 'upload tickets'),
      agent: wholeNumber(ENV.agentUploadsPerHour, UPLOADS_PER_HOUR_DEFAULT.agent, 'upload tickets'),
    };
  },
  get tableName() {
    return required(ENV.tableName);
  },
  /** `gsi1` unless set: a misspelt name would fail every inbox list, so it is refused at once. */
  get inboxIndex(): string {
    const value = process.env[ENV.inboxIndex];
    if (value === undefined || value === '') return INBOX_INDEX;
    if (value !== INBOX_INDEX && value !== MIGRATED_INBOX_INDEX) throw new Error(`${ENV.inboxIndex} must be ${INBOX_INDEX} or ${MIGRATED_INBOX_INDEX}, got ${value}`);
    return value;
  },
  get inboundQueueUrl() {
    return required(ENV.inboundQueueUrl);
  },
  get outboundQueueUrl() {
    return required(ENV.outboundQueueUrl);
  },
  get inboundDlqUrl() {
    return required(ENV.inboundDlqUrl);
  },
  get wsCallbackUrl() {
    return required(ENV.wsCallbackUrl);
  },
  get wsPublicUrl() {
    return required(ENV.wsPublicUrl);
  },
  /** Undefined when not configured: emails then offer replying by email only. */
  get widgetUrl(): string | undefined {
    const value = process.env[ENV.widgetUrl];
    if (!value) return undefined;
    if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) throw new Error(`${ENV.widgetUrl} must be an http(s) URL, got ${value}`);
    return value;
  },
  get publicUrl() {
    // Paths are appended to it (Twilio signs `<publicUrl>/webhooks/sms`), and the HTTP API's own URL ends in '/'.
    return (process.env[ENV.publicUrl] ?? 'http://127.0.0.1:3000').replace(/\/+$/, '');
  },
  get jwt() {
    return { issuer: required(ENV.jwtIssuer), jwksUri: required(ENV.jwtJwksUri), audience: required(ENV.jwtAudience) };
  },
  /** 0: away as soon as the last console closes. */
  get presenceGraceSeconds(): number {
    return seconds(ENV.presenceGrace, 30);
  },
  /** Not 0: every retry of a refused send would come at once, and the provider's limit with it. */
  get retryBaseSeconds(): number {
    const value = seconds(ENV.retryBase, 2);
    if (value === 0) throw new Error(`${ENV.retryBase} must be more than 0 seconds`);
    return value;
  },
  get timers() {
    return {
      emailFallbackDelaySeconds: seconds(ENV.emailFallbackDelay, 120),
      reengageAfterSeconds: seconds(ENV.reengageAfter, 86_400),
      autoResolveAfterSeconds: seconds(ENV.autoResolveAfter, 172_800),
    };
  },
};
