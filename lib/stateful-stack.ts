import { CfnOutput, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { AgentDirectory, type AgentDirectoryProps } from './constructs/agent-directory';
import { ChannelSecrets, type ChannelSecretsProps } from './constructs/channel-secrets';
import { ConversaTable, type ConversaTableProps } from './constructs/conversa-table';
import { MediaBucket, type MediaBucketProps } from './constructs/media-bucket';
import { warnPlaceholder } from './placeholder-warnings';
import { secretArnEnv } from '../src/channels/credentials';

/** Properties of {@link StatefulStack}. */
export interface StatefulStackProps extends StackProps {
  /**
   * Options of the single table.
   * @default - RETAIN, deletion protection on, pinned logical id
   */
  readonly table?: ConversaTableProps;
  /**
   * Options of the agents' user pool.
   * @default - RETAIN, PLUS feature plan, pinned logical id, console client with SRP sign-in only
   */
  readonly agents?: AgentDirectoryProps;
  /**
   * Options of the channels' credential secrets.
   * @default - one per provider channel, RETAIN
   */
  readonly channelSecrets?: ChannelSecretsProps;
  /**
   * Options of the bucket of files agents and visitors send.
   * @default - RETAIN, versioned (earlier versions of sent files kept 30 days), CORS for any origin, unsent uploads expired after a day
   */
  readonly media?: MediaBucketProps;
}

/**
 * What a redeploy must never lose: the table holding every conversation, the bucket holding the
 * files sent in them, the user pool holding every agent, and the secrets people typed in or handed out (channel credentials, the key of
 * the reply addresses in customers' inboxes). Kept apart from the stateless stack, which can be
 * destroyed freely.
 */
export class StatefulStack extends Stack {
  public readonly table: ConversaTable;
  public readonly agents: AgentDirectory;
  public readonly channelSecrets: ChannelSecrets;
  public readonly media: MediaBucket;
  /** HMAC key of the per-conversation email reply-to addresses (a generated string). */
  public readonly replyAddressKey: Secret;
  /** HMAC key the website signs its signed-in visitors' email or phone with (widget identity verification). */
  public readonly widgetIdentityKey: Secret;

  constructor(scope: Construct, id: string, props: StatefulStackProps = {}) {
    super(scope, id, { description: 'Conversa data: the single DynamoDB table, the media bucket, the agent user pool and the secrets', ...props });
    this.table = new ConversaTable(this, 'Data', props.table);
    this.agents = new AgentDirectory(this, 'Agents', props.agents);
    this.channelSecrets = new ChannelSecrets(this, 'ChannelSecrets', props.channelSecrets);
    this.media = new MediaBucket(this, 'Media', props.media);
    if (props.media?.allowedOrigins === undefined) {
      warnPlaceholder(
        this.media,
        'corsAnyOrigin',
        'allowedOrigins is not set: the media bucket takes browser uploads from any origin (CORS *). Set context allowedOrigins to the origins of the agent console and of the sites with the widget (or to * to keep any origin).',
      );
    }
    this.replyAddressKey = this.hmacKey(
      'ReplyAddressKey',
      'HMAC key of per-conversation email reply-to addresses',
      'Rotating the reply-address key would break every reply address already sent to customers; it is rotated by hand when compromised.',
    );
    this.widgetIdentityKey = this.hmacKey(
      'WidgetIdentityKey',
      "HMAC key of web visitors' identity hashes (give it to the website backend)",
      'The website backend holds a copy of the identity key to sign visitors; it is rotated by hand, together with the website.',
    );
    new CfnOutput(this, 'WidgetIdentityKeyArn', {
      value: this.widgetIdentityKey.secretArn,
      description: 'HMAC key for identityHash on POST /v1/widget/sessions (settings widget.identityVerification)',
    });
    for (const [channel, secret] of this.channelSecrets.secrets) {
      new CfnOutput(this, `${channel.charAt(0).toUpperCase()}${channel.slice(1)}SecretArn`, {
        value: secret.secretArn,
        description: `Fill in the ${channel} credentials here (${secretArnEnv(channel)})`,
      });
    }
  }

  /**
   * A generated HMAC key kept across stack deletions; `whyNoRotation` answers cdk-nag's SMG4.
   * Its generation settings are frozen: CloudFormation makes a new value when they change, which
   * would void every reply-to address in customers' inboxes and every identity hash a website made.
   */
  private hmacKey(id: string, what: string, whyNoRotation: string): Secret {
    const key = new Secret(this, id, {
      description: `Conversa: ${what}`,
      generateSecretString: { excludePunctuation: true, passwordLength: 48 },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(key).acknowledge({ id: 'AwsSolutions-SMG4', reason: whyNoRotation });
    return key;
  }
}
