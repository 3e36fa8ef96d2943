import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { secretArnEnv } from '../../src/channels/credentials';
import { adapters } from '../../src/channels/registry';
import { PROVIDER_CHANNELS, type ProviderChannel } from '../../src/domain/types';

/**
 * Per channel, the key that authenticates the provider's webhooks. It gets a random value when
 * the secret is created, so a channel nobody has configured yet rejects every webhook instead
 * of checking signatures against a key anyone could guess. For Telegram it is the real value:
 * we choose the secret token and hand it to setWebhook.
 */
export const GENERATED_SECRET_KEYS: Readonly<Record<ProviderChannel, string>> = {
  whatsapp: 'WHATSAPP_APP_SECRET',
  messenger: 'MESSENGER_APP_SECRET',
  instagram: 'INSTAGRAM_APP_SECRET',
  telegram: 'TELEGRAM_SECRET_TOKEN',
  sms: 'TWILIO_AUTH_TOKEN',
};

/**
 * The JSON keys of a channel's secret: the variable names of CONTRACT.md section 2, taken from
 * the channel adapter, which is also what src/channels/credentials.ts reads back.
 */
export function channelSecretKeys(channel: ProviderChannel): string[] {
  return Object.values(adapters[channel].credentialDefaults).map(({ env }) => env);
}

/** Properties of {@link ChannelSecrets}. */
export interface ChannelSecretsProps {
  /**
   * Channels that get a secret.
   * @default every provider channel (PROVIDER_CHANNELS)
   */
  readonly channels?: readonly ProviderChannel[];
  /**
   * What happens to the secrets when they leave the stack. The values are typed in by hand
   * after deploy, so losing them costs a trip to every provider's console.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * One Secrets Manager secret per provider channel, holding that channel's credentials as a
 * JSON document. The stack creates them with placeholders; the platform team puts the real
 * values in after the first deploy (README).
 */
export class ChannelSecrets extends Construct {
  public readonly secrets: ReadonlyMap<ProviderChannel, Secret>;

  constructor(scope: Construct, id: string, props: ChannelSecretsProps = {}) {
    super(scope, id);
    const secrets = new Map<ProviderChannel, Secret>();
    for (const channel of props.channels ?? PROVIDER_CHANNELS) {
      const keys = channelSecretKeys(channel);
      const generated = GENERATED_SECRET_KEYS[channel];
      if (!keys.includes(generated)) throw new Error(`${channel}: ${generated} is not one of the adapter's credentials (${keys.join(', ')})`);
      const secret = new Secret(this, channel, {
        description: `Conversa ${channel} channel credentials (JSON; keys as in CONTRACT.md section 2)`,
        generateSecretString: {
          // Empty placeholders: the credentials loader refuses empty values, so nothing works half-configured.
          secretStringTemplate: JSON.stringify(Object.fromEntries(keys.filter((key) => key !== generated).map((key) => [key, '']))),
          generateStringKey: generated,
          // Telegram accepts only A-Z, a-z, 0-9, _ and - in its secret token.
          excludePunctuation: true,
          passwordLength: 48,
        },
        removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      });
      Validations.of(secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason: 'Provider credentials are issued by the provider (Meta, Telegram, Twilio); no rotation Lambda can create new ones, so they are rotated by hand in the provider console.',
      });
      secrets.set(channel, secret);
    }
    this.secrets = secrets;
  }

  /** Lets `grantee` read every channel's secret. */
  public grantRead(grantee: IGrantable): void {
    for (const secret of this.secrets.values()) secret.grantRead(grantee);
  }

  /** `<CHANNEL>_SECRET_ARN` variables for the functions that read the secrets. */
  public environment(): Record<string, string> {
    return Object.fromEntries([...this.secrets].map(([channel, secret]) => [secretArnEnv(channel), secret.secretArn]));
  }
}
