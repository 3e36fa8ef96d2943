/**
 * Channel credentials and provider base URLs.
 * Deployed: one Secrets Manager secret per channel, named by `<CHANNEL>_SECRET_ARN`, whose JSON keys
 * are the environment variable names of CONTRACT.md section 2. Locally: those environment variables,
 * each with a development default, so `npm start` needs no configuration.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PROVIDER_CHANNELS, type ProviderChannel } from '../domain/types';
import { ClientError } from '../domain/errors';
import { adapters } from './registry';
import type { Credentials } from './types';

const ENV_PREFIX: Readonly<Record<ProviderChannel, string>> = {
  whatsapp: 'WHATSAPP',
  messenger: 'MESSENGER',
  instagram: 'INSTAGRAM',
  telegram: 'TELEGRAM',
  sms: 'SMS',
};

/** Base-URL variables follow the provider's name where that differs from the channel (Twilio). */
const BASE_URL_ENV: Readonly<Record<ProviderChannel, string>> = {
  whatsapp: 'WHATSAPP_API_BASE_URL',
  messenger: 'MESSENGER_API_BASE_URL',
  instagram: 'INSTAGRAM_API_BASE_URL',
  telegram: 'TELEGRAM_API_BASE_URL',
  sms: 'TWILIO_API_BASE_URL',
};

export function secretArnEnv(channel: ProviderChannel): string {
  return `${ENV_PREFIX[channel]}_SECRET_ARN`;
}

export function baseUrlEnv(channel: ProviderChannel): string {
  return BASE_URL_ENV[channel];
}

function fromDefaults(channel: ProviderChannel, read: (env: string) => string | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, { env, dev }] of Object.entries(adapters[channel].credentialDefaults)) {
    result[key] = read(env) ?? dev;
  }
  for (const [key, { env }] of Object.entries(adapters[channel].optionalCredentials ?? {})) {
    const value = read(env);
    if (value) result[key] = value;
  }
  return result;
}

/** The documented development credentials: tests and the local stack sign and check with these. */
export const DEV_CREDENTIALS: Readonly<Record<ProviderChannel, Credentials>> = Object.fromEntries(
  PROVIDER_CHANNELS.map((channel) => [channel, fromDefaults(channel, () => undefined)]),
) as Record<ProviderChannel, Credentials>;

/** Credentials from environment variables, falling back to the development defaults. */
export function credentialsFromEnv(channel: ProviderChannel, env: NodeJS.ProcessEnv = process.env): Credentials {
  return fromDefaults(channel, (name) => env[name] || undefined);
}

/** Long enough to spare Secrets Manager on every invocation, short enough that a rotation lands within minutes. */
export const CREDENTIALS_TTL_MS = 5 * 60_000;

/**
 * How long "not configured" is believed. A deployment creates every channel's secret with
 * placeholders, and a scanner posting to a channel nobody set up must not cost a Secrets Manager
 * call each time; a team that fills the secret in waits at most this long.
 */
export const NOT_CONFIGURED_TTL_MS = 60_000;

/**
 * Per channel, the credential the stack generates a random value for when it creates the secret
 * (lib/constructs/channel-secrets.ts): the one that authenticates the provider's webhooks, so a
 * channel nobody has set up refuses every webhook. For Telegram it is the real value: we choose
 * the secret token and hand it to setWebhook.
 */
export const GENERATED_CREDENTIAL: Readonly<Record<ProviderChannel, string>> = {
  whatsapp: 'WHATSAPP_APP_SECRET',
  messenger: 'MESSENGER_APP_SECRET',
  instagram: 'INSTAGRAM_APP_SECRET',
  telegram: 'TELEGRAM_SECRET_TOKEN',
  sms: 'TWILIO_AUTH_TOKEN',
};

/**
 * A channel nobody set up: its secret is as the stack created it, every credential still empty
 * but the generated one. That is no failure of ours (404, not a 5xx that pages someone). A secret
 * someone did fill in, but wrongly (a key missing or not a string, not JSON, or no secret at all),
 * is a broken channel instead: an error, so that the 5xx and dead-letter alarms page someone.
 */
export class ChannelNotConfiguredError extends ClientError {
  constructor(readonly channel: ProviderChannel) {
    super(404, 'channel_not_configured', `the ${channel} channel is not configured`);
  }
}

let client: SecretsManagerClient | undefined;
const cache = new Map<ProviderChannel, { expiresAt: number; value: Promise<Credentials> }>();

async function fromSecret(channel: ProviderChannel, secretId: string): Promise<Credentials> {
  client ??= new SecretsManagerClient({});
  const output = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
  let json: unknown;
  try {
    json = JSON.parse(output.SecretString ?? '');
  } catch {
    json = undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`Secret ${secretId} for ${channel} is not a JSON object`);
  const values = json as Record<string, unknown>;
  const envs = Object.values(adapters[channel].credentialDefaults).map(({ env }) => env);
  // Nothing typed in beside the generated key (a credential a later release added may be absent too).
  const blank = (value: unknown) => value === undefined || value === null || value === '';
  if (envs.every((env) => env === GENERATED_CREDENTIAL[channel] || blank(values[env]))) throw new ChannelNotConfiguredError(channel);
  const result: Record<string, string> = {};
  const refuse = (env: string, value: unknown) => {
    const what = blank(value) && typeof value !== 'string' ? 'lacks' : typeof value === 'string' ? 'has an empty' : `has a ${Array.isArray(value) ? 'list' : typeof value}, not a string, as`;
    return new Error(`Secret ${secretId} for ${channel} ${what} ${env}`);
  };
  for (const [key, { env }] of Object.entries(adapters[channel].credentialDefaults)) {
    const value = values[env];
    // A public development default in production would let anyone forge webhooks: a gap is an error.
    // A number typed without quotes (a phone number id) is no credential either, and the error says so.
    if (typeof value !== 'string' || value === '') throw refuse(env, value);
    result[key] = value;
  }
  // An optional one may be absent or empty; typed in as something other than a string, it is refused all the same.
  for (const [key, { env }] of Object.entries(adapters[channel].optionalCredentials ?? {})) {
    const value = values[env];
    if (typeof value === 'string' && value !== '') result[key] = value;
    else if (!blank(value)) throw refuse(env, value);
  }
  return result;
}

export async function loadCredentials(channel: ProviderChannel, now: number = Date.now()): Promise<Credentials> {
  const secretId = process.env[secretArnEnv(channel)];
  if (!secretId) {
    // In Lambda the development defaults, which are public, would let anyone forge webhooks.
    if (process.env.AWS_LAMBDA_FUNCTION_NAME) throw new Error(`${secretArnEnv(channel)} is not set: this function has no ${channel} credentials`);
    return credentialsFromEnv(channel);
  }
  const cached = cache.get(channel);
  if (cached && cached.expiresAt > now) return cached.value;
  // The promise is cached so that concurrent cold-start calls share one GetSecretValue.
  const value: Promise<Credentials> = fromSecret(channel, secretId).catch((error: unknown) => {
    if (error instanceof ChannelNotConfiguredError) {
      // Believed for a while, and told once per while, not once per request.
      cache.set(channel, { expiresAt: now + NOT_CONFIGURED_TTL_MS, value });
      console.warn(`the ${channel} channel is not configured: its secret ${secretId} has only placeholders`);
    } else if (cache.get(channel)?.value === value) {
      cache.delete(channel);
    }
    throw error;
  });
  cache.set(channel, { expiresAt: now + CREDENTIALS_TTL_MS, value });
  return value;
}

/** Forgets cached secrets (tests, or after a provider rejects a token as revoked). */
export function clearCredentialCache(): void {
  cache.clear();
}

export function baseUrl(channel: ProviderChannel): string {
  const configured = process.env[BASE_URL_ENV[channel]];
  return (configured || adapters[channel].defaultBaseUrl).replace(/\/+$/, '');
}
