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
 * A channel nobody set up: its secret still has a placeholder (a key missing or empty), is not a
 * JSON object, or does not exist. That is no failure of ours (404, not a 5xx that pages someone).
 * What is wrong goes to the log, not to the caller.
 */
export class ChannelNotConfiguredError extends ClientError {
  constructor(
    readonly channel: ProviderChannel,
    /** What is wrong with the secret, as the log says it after "its secret <id>": "has no KEY", "does not exist". */
    readonly problem: string,
    /** The key missing or unusable, when that is what is wrong. */
    readonly missing?: string,
  ) {
    super(404, 'channel_not_configured', `the ${channel} channel is not configured`);
  }
}

let client: SecretsManagerClient | undefined;
const cache = new Map<ProviderChannel, { expiresAt: number; value: Promise<Credentials> }>();

/** The secret as Secrets Manager answers it; a secret that does not exist is a channel nobody set up. */
async function secretString(channel: ProviderChannel, secretId: string): Promise<string | undefined> {
  client ??= new SecretsManagerClient({});
  try {
    const output = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    return output.SecretString;
  } catch (error) {
    // Throttling, AccessDenied, a network error: not ours to believe for a minute, they go up as they are.
    if ((error as { name?: unknown } | null)?.name === 'ResourceNotFoundException') throw new ChannelNotConfiguredError(channel, 'does not exist');
    throw error;
  }
}

async function fromSecret(channel: ProviderChannel, secretId: string): Promise<Credentials> {
  const text = await secretString(channel, secretId);
  let json: unknown;
  try {
    json = JSON.parse(text ?? '');
  } catch {
    json = undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ChannelNotConfiguredError(channel, 'is not a JSON object');
  const values = json as Record<string, unknown>;
  const result: Record<string, string> = {};
  for (const [key, { env }] of Object.entries(adapters[channel].credentialDefaults)) {
    const value = values[env];
    // A public development default in production would let anyone forge webhooks: a gap means "not set up".
    if (value === undefined || value === null) throw new ChannelNotConfiguredError(channel, `has no ${env}`, env);
    // A number typed without quotes (a phone number id) is no credential either, and the log says so.
    if (typeof value !== 'string') throw new ChannelNotConfiguredError(channel, `has ${env} as a ${Array.isArray(value) ? 'list' : typeof value}, not a string`, env);
    if (value === '') throw new ChannelNotConfiguredError(channel, `has ${env} empty`, env);
    result[key] = value;
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
      console.warn(`the ${channel} channel is not configured: its secret ${secretId} ${error.problem}`);
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
