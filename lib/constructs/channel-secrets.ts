import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { GENERATED_CREDENTIAL, secretArnEnv } from '../../src/channels/credentials';
import { PROVIDER_CHANNELS, type ProviderChannel } from '../../src/domain/types';

/**
 * The placeholder keys each channel's secret is created with, besides its generated one: the
 * variable names of CONTRACT.md section 2 as the adapters had them when the secrets were first
 * defined. Frozen, not read from the adapters: CloudFormation generates a new value whenever
 * anything in `GenerateSecretString` changes, so a key added here (or reordered) would, on the
 * next deploy, replace every credential the team typed in with blanks and a new random key. A
 * credential a channel needs later is added to the secret by hand (README, Deploy), and the
 * credentials loader names a missing one.
 */
export const SECRET_PLACEHOLDER_KEYS: Readonly<Record<ProviderChannel, readonly string[]>> = {
  whatsapp: ['WHATSAPP_VERIFY_TOKEN', 'WHATSAPP_ACCESS_TOKEN', 'WHATSAPP_PHONE_NUMBER_ID'],
  messenger: ['MESSENGER_VERIFY_TOKEN', 'MESSENGER_PAGE_ACCESS_TOKEN'],
  instagram: ['INSTAGRAM_VERIFY_TOKEN', 'INSTAGRAM_ACCESS_TOKEN'],
  telegram: ['TELEGRAM_BOT_TOKEN'],
  sms: ['TWILIO_ACCOUNT_SID', 'TWILIO_FROM_NUMBER'],
};

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
      // The webhook-verifying credential starts random, so a channel nobody set up refuses every webhook.
      const generated = GENERATED_CREDENTIAL[channel];
      const secret = new Secret(this, channel, {
        description: `Conversa ${channel} channel credentials (JSON; keys as in CONTRACT.md section 2)`,
        generateSecretString: {
          // Empty placeholders: the credentials loader refuses empty values, so nothing works half-configured.
          secretStringTemplate: JSON.stringify(Object.fromEntries(SECRET_PLACEHOLDER_KEYS[channel].map((key) => [key, '']))),
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
