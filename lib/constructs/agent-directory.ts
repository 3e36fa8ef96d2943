import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import {
  AccountRecovery,
  CfnUserPool,
  FeaturePlan,
  Mfa,
  StandardThreatProtectionMode,
  UserPool,
  UserPoolClient,
  UserPoolGroup,
} from 'aws-cdk-lib/aws-cognito';
import { Construct } from 'constructs';

/** Agent roles; the API reads them from the `cognito:groups` claim. */
export const AGENT_GROUPS = ['admin', 'agent'] as const;
export type AgentGroup = (typeof AGENT_GROUPS)[number];

/** Properties of {@link AgentDirectory}. */
export interface AgentDirectoryProps {
  /**
   * What happens to the user pool when it leaves the stack. Agents' accounts and MFA
   * devices cannot be recreated by a deploy.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Cognito feature plan. PLUS adds compromised-credential and risk-based sign-in
   * protection; agents are few, so the per-user price is negligible against what an
   * agent account can read (every conversation).
   * @default FeaturePlan.PLUS
   */
  readonly featurePlan?: FeaturePlan;
  /**
   * CloudFormation logical ID of the user pool, pinned because replacing it would
   * log every agent out and lose their accounts.
   * @default 'AgentUserPool'
   */
  readonly logicalId?: string;
  /**
   * Lets the console client sign in with `USER_PASSWORD_AUTH` besides SRP. That flow sends the
   * password itself to Cognito (over TLS) instead of an SRP proof, which a browser console never
   * needs; turn it on only for a client that cannot do SRP (a script, a migration tool).
   * Changing it updates the client in place: its id, the agents' JWT audience, stays.
   * @default false
   */
  readonly passwordAuth?: boolean;
}

/**
 * The Cognito user pool in which agents sign in to the console, its `admin` and `agent`
 * groups, and the console's public client (SRP, and password auth only when asked; no client
 * secret: the console is a browser app and cannot keep one).
 */
export class AgentDirectory extends Construct {
  public static readonly DEFAULT_LOGICAL_ID = 'AgentUserPool';

  public readonly userPool: UserPool;
  public readonly consoleClient: UserPoolClient;
  public readonly groups: Readonly<Record<AgentGroup, UserPoolGroup>>;

  constructor(scope: Construct, id: string, props: AgentDirectoryProps = {}) {
    super(scope, id);
    const featurePlan = props.featurePlan ?? FeaturePlan.PLUS;

    this.userPool = new UserPool(this, 'UserPool', {
      // Admins invite agents; nobody signs themselves up to read customer conversations.
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      autoVerify: { email: true },
      passwordPolicy: {
        minLength: 12,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
        tempPasswordValidity: Duration.days(3),
      },
      mfa: Mfa.REQUIRED,
      mfaSecondFactor: { otp: true, sms: false },
      accountRecovery: AccountRecovery.EMAIL_ONLY,
      featurePlan,
      ...(featurePlan === FeaturePlan.PLUS
        ? { standardThreatProtectionMode: StandardThreatProtectionMode.FULL_FUNCTION }
        : {}),
      deletionProtection: true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    (this.userPool.node.defaultChild as CfnUserPool).overrideLogicalId(props.logicalId ?? AgentDirectory.DEFAULT_LOGICAL_ID);

    this.groups = {
      admin: this.userPool.addGroup('AdminGroup', { groupName: 'admin', description: 'Agents who manage settings, teams and other agents', precedence: 0 }),
      agent: this.userPool.addGroup('AgentGroup', { groupName: 'agent', description: 'Agents who answer conversations', precedence: 1 }),
    };

    this.consoleClient = this.userPool.addClient('ConsoleClient', {
      authFlows: { userSrp: true, userPassword: props.passwordAuth ?? false },
      generateSecret: false,
      // The console signs in with the SDK, never through the hosted UI.
      disableOAuth: true,
      preventUserExistenceErrors: true,
      accessTokenValidity: Duration.hours(1),
      idTokenValidity: Duration.hours(1),
      refreshTokenValidity: Duration.days(30),
    });
  }
}
