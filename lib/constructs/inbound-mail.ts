import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Grant, PolicyStatement, ServicePrincipal, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { ReceiptRule, ReceiptRuleSet, TlsPolicy, type IReceiptRuleAction } from 'aws-cdk-lib/aws-ses';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { LambdaSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct, type IConstruct } from 'constructs';
import { acknowledgeWildcardResource } from './nag';

/** Where the receipt rule's S3 action stores each received email. */
export const RAW_MAIL_PREFIX = 'inbound/';

/** Properties of {@link InboundMail}. */
export interface InboundMailProps {
  /** The function that turns SES "Received" notifications into inbound messages. */
  readonly receiver: IFunction;
  /**
   * HMAC key of the reply-to addresses. It lives with the data (stateful stack): a new key
   * invalidates every reply address already in customers' inboxes.
   */
  readonly replyAddressSecret: ISecret;
  /**
   * Adds the receipt rule for the reply domain to this rule set, which must exist already (an
   * account has one active rule set per region; the stack never takes it over).
   * @default - no rule: the platform team adds one (README, Deploy)
   */
  readonly receiptRuleSetName?: string;
  /** Domain of the reply addresses; needed with `receiptRuleSetName`. */
  readonly replyDomain?: string;
  /**
   * Days a received email stays in the bucket. The engagement function reads it within minutes;
   * a notification it failed on waits in the timers' dead-letter queue for 14 days, and a
   * redrive must still find the email.
   * @default 14
   */
  readonly rawMailExpiryDays?: number;
}

/**
 * Email replies back into conversations: the bucket an SES receipt rule's S3 action stores received
 * mail in (up to SES's 40 MB, files included), the SNS topic it notifies, and read access to the
 * key that signs per-conversation reply-to addresses. The receipt
 * rule goes into an existing rule set when one is named; otherwise it is left to the platform
 * team (README, Deploy): an account has one active rule set per region, and a stack should not
 * take it over.
 */
export class InboundMail extends Construct {
  /** HMAC key of the reply-to addresses (a generated string). */
  public readonly replyAddressSecret: ISecret;
  /** Notified by the receipt rule's S3 action (or, in older setups, target of an SNS action in UTF-8). */
  public readonly topic: Topic;
  /**
   * Received emails under `inbound/`, each deleted after `rawMailExpiryDays`. Retained with the
   * stack (it holds mail not yet read when the stack goes); empty within those days, it can be deleted then.
   */
  public readonly bucket: Bucket;

  constructor(scope: Construct, id: string, props: InboundMailProps) {
    super(scope, id);
    this.replyAddressSecret = props.replyAddressSecret;

    // SES can only publish to an encrypted topic whose customer-managed key lets it.
    const key = new Key(this, 'TopicKey', { enableKeyRotation: true, description: 'Conversa inbound mail topic', removalPolicy: RemovalPolicy.DESTROY });
    const account = Stack.of(this).account;
    key.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('ses.amazonaws.com')],
        actions: ['kms:GenerateDataKey*', 'kms:Decrypt'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': account } },
      }),
    );
    this.topic = new Topic(this, 'Topic', { masterKey: key, enforceSSL: true, displayName: 'Conversa inbound mail' });
    // SES names the receipt rule that publishes as aws:SourceArn. The rule's own name cannot be
    // used (the rule waits for this policy), so any rule of the named rule set, or of any rule set
    // of this account and region when the platform team adds the rule.
    const receiptRules = Stack.of(this).formatArn({
      service: 'ses',
      resource: 'receipt-rule-set',
      resourceName: `${props.receiptRuleSetName ?? '*'}:receipt-rule/*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    const publishBySes = this.topic.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('ses.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': account }, ArnLike: { 'aws:SourceArn': receiptRules } },
      }),
    );
    this.topic.addSubscription(new LambdaSubscription(props.receiver));

    this.bucket = new Bucket(this, 'RawMail', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      // SSE-S3: a KMS key on the S3 action would have SES encrypt client-side, which S3 reads cannot undo.
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        { id: 'ReadMail', expiration: Duration.days(props.rawMailExpiryDays ?? 14) },
        { id: 'AbandonedMultipart', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'Only SES writes here (the bucket policy) and only the engagement function reads, each email once before it expires; CloudTrail data events can log reads per account.',
    });
    // As the topic's: SES writes for this account's receipt rules only (not CDK's S3 action's policy, which names no rule).
    const storeBySes = this.bucket.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal('ses.amazonaws.com')],
        actions: ['s3:PutObject'],
        resources: [this.bucket.arnForObjects(`${RAW_MAIL_PREFIX}*`)],
        conditions: { StringEquals: { 'aws:SourceAccount': account }, ArnLike: { 'aws:SourceArn': receiptRules } },
      }),
    );

    if (props.receiptRuleSetName) {
      if (!props.replyDomain) throw new Error('InboundMail: receiptRuleSetName needs replyDomain');
      const storeAndNotify: IReceiptRuleAction = {
        bind: () => ({ s3Action: { bucketName: this.bucket.bucketName, objectKeyPrefix: RAW_MAIL_PREFIX, topicArn: this.topic.topicArn } }),
      };
      const rule = new ReceiptRule(this, 'ReceiptRule', {
        ruleSet: ReceiptRuleSet.fromReceiptRuleSetName(this, 'RuleSet', props.receiptRuleSetName),
        recipients: [props.replyDomain],
        // Spam and virus verdicts are read before a reply is stored (src/domain/email.ts).
        scanEnabled: true,
        tlsPolicy: TlsPolicy.REQUIRE,
        // The S3 action, not SNS's: SNS carries emails up to 150 KB and SES bounces larger ones.
        actions: [storeAndNotify],
      });
      // SES checks that it may write and publish when the rule is created: both policies must exist first.
      for (const granted of [publishBySes, storeBySes]) if (granted.policyDependable) rule.node.addDependency(granted.policyDependable);
    }
  }

  /** Lets `grantee` read the stored emails and delete each once taken in (and nothing else of the bucket). */
  grantConsumeRawMail(grantee: IGrantable & IConstruct): void {
    const arn = this.bucket.arnForObjects(`${RAW_MAIL_PREFIX}*`);
    Grant.addToPrincipal({ grantee, actions: ['s3:GetObject', 's3:DeleteObject'], resourceArns: [arn] });
    acknowledgeWildcardResource(grantee, arn, 'SES names each stored email by its own message id: the function reads the one a notification names.');
  }

  /** Lets `grantee` read the reply-address key. */
  grantReadKey(grantee: IGrantable): void {
    this.replyAddressSecret.grantRead(grantee);
  }
}
