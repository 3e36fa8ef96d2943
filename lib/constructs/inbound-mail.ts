import { ArnFormat, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { PolicyStatement, ServicePrincipal, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { ReceiptRule, ReceiptRuleSet, TlsPolicy } from 'aws-cdk-lib/aws-ses';
import { EmailEncoding, Sns } from 'aws-cdk-lib/aws-ses-actions';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { LambdaSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

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
}

/**
 * Email replies back into conversations: the SNS topic an SES receipt rule publishes received
 * mail to, and read access to the key that signs per-conversation reply-to addresses. The receipt
 * rule goes into an existing rule set when one is named; otherwise it is left to the platform
 * team (README, Deploy): an account has one active rule set per region, and a stack should not
 * take it over.
 */
export class InboundMail extends Construct {
  /** HMAC key of the reply-to addresses (a generated string). */
  public readonly replyAddressSecret: ISecret;
  /** Target of the SES receipt rule's SNS action (UTF-8 encoding). */
  public readonly topic: Topic;

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

    if (props.receiptRuleSetName) {
      if (!props.replyDomain) throw new Error('InboundMail: receiptRuleSetName needs replyDomain');
      const rule = new ReceiptRule(this, 'ReceiptRule', {
        ruleSet: ReceiptRuleSet.fromReceiptRuleSetName(this, 'RuleSet', props.receiptRuleSetName),
        recipients: [props.replyDomain],
        // Spam and virus verdicts are read before a reply is stored (src/domain/email.ts).
        scanEnabled: true,
        tlsPolicy: TlsPolicy.REQUIRE,
        actions: [new Sns({ topic: this.topic, encoding: EmailEncoding.UTF8 })],
      });
      // SES checks that it may publish when the rule is created: the topic policy must exist first.
      if (publishBySes.policyDependable) rule.node.addDependency(publishBySes.policyDependable);
    }
  }

  /** Lets `grantee` read the reply-address key. */
  grantReadKey(grantee: IGrantable): void {
    this.replyAddressSecret.grantRead(grantee);
  }
}
