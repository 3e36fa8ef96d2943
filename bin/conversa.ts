#!/usr/bin/env node
/**
 * The CDK app. The only place that reads context and environment variables; every value
 * goes down to the stacks as props.
 *
 * Context: the `context` of cdk.json, or `-c key=value` for one run only (not saved: a later
 * deploy without it falls back to the defaults below; README, Deploy):
 *   sesIdentity       verified SES domain or address mail is sent from (default: example.com, a placeholder)
 *   mailFrom          sender address (default: conversa@<sesIdentity>)
 *   mailReplyDomain   domain of per-conversation reply addresses (default: reply.<sesIdentity>)
 *   mailReceiptRuleSet  the account's active SES receipt rule set, to add the reply domain's rule to (default: none)
 *   allowedOrigins    comma-separated CORS origins (default: *)
 *   publicUrl         public base URL providers call, if not the execute-api URL
 *   widgetUrl         the web page visitors chat on; fallback emails link to it (default: no link)
 *   alarmEmail        address notified by every alarm: dead-letter queues, 5xx, throttles, errors, queue age (default: none)
 *   logLevel          DEBUG | INFO | WARN | ERROR (default: INFO)
 *   sourceMaps        false for shorter cold starts without source-mapped stack traces (default: true)
 *   webSocketAccessLogging  true once the account's API Gateway CloudWatch role exists (default: false)
 *   emailFallbackDelaySeconds, reengageAfterSeconds, autoResolveAfterSeconds  timers (defaults: 120, 86400, 172800)
 *   visitorAddressSends  web visitors' messages one network address may send in 10 s (default: 100)
 *   nag               false to skip the cdk-nag AwsSolutions checks (default: true)
 */
import { fileURLToPath } from 'node:url';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildConversa } from '../lib/app';

const app = new App();

function context(key: string): string | undefined {
  const value: unknown = app.node.tryGetContext(key);
  return value === undefined || value === null || value === '' ? undefined : String(value);
}

function seconds(key: string): number | undefined {
  const raw = context(key);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`context ${key} must be a number of seconds, got ${raw}`);
  return value;
}

function messages(key: string): number | undefined {
  const raw = context(key);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`context ${key} must be a whole number of messages, got ${raw}`);
  return value;
}

function flag(key: string, fallback: boolean): boolean {
  const raw = context(key);
  return raw === undefined ? fallback : raw !== 'false';
}

const logLevel = context('logLevel');
if (logLevel !== undefined && !['DEBUG', 'INFO', 'WARN', 'ERROR'].includes(logLevel)) {
  throw new Error(`context logLevel must be DEBUG, INFO, WARN or ERROR, got ${logLevel}`);
}

const account = process.env.CDK_DEFAULT_ACCOUNT;
const region = process.env.CDK_DEFAULT_REGION;
const optional = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };

buildConversa(app, {
  projectRoot: fileURLToPath(new URL('..', import.meta.url)),
  ...(account || region ? { env: { ...optional('account', account), ...optional('region', region) } } : {}),
  ...optional('sesIdentity', context('sesIdentity')),
  ...optional('mailFrom', context('mailFrom')),
  ...optional('mailReplyDomain', context('mailReplyDomain')),
  ...optional('mailReceiptRuleSet', context('mailReceiptRuleSet')),
  ...optional('publicUrl', context('publicUrl')),
  ...optional('widgetUrl', context('widgetUrl')),
  ...optional('alarmEmail', context('alarmEmail')),
  ...optional(
    'allowedOrigins',
    context('allowedOrigins')
      ?.split(',')
      .map((origin) => origin.trim())
      .filter(Boolean),
  ),
  ...optional('logLevel', logLevel as 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | undefined),
  webSocketAccessLogging: flag('webSocketAccessLogging', false),
  sourceMaps: flag('sourceMaps', true),
  ...optional('emailFallbackDelaySeconds', seconds('emailFallbackDelaySeconds')),
  ...optional('reengageAfterSeconds', seconds('reengageAfterSeconds')),
  ...optional('autoResolveAfterSeconds', seconds('autoResolveAfterSeconds')),
  ...optional('visitorAddressSends', messages('visitorAddressSends')),
});

if (flag('nag', true)) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
