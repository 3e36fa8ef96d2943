import { RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import { LogGroupLogDestination, WebSocketApi, type WebSocketRoute, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { Grant, IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct, type IConstruct } from 'constructs';
import { acknowledgeWildcardResource } from './nag';
import { applyRouteThrottles } from './route-throttles';
import type { RouteThrottle } from '../../src/manifest';

/** Properties of {@link ConversaRealtimeApi}. */
export interface ConversaRealtimeApiProps {
  /** Handles $connect, $disconnect and every client action ($default). */
  readonly handler: IFunction;
  /** Checks the agent JWT or visitor token on $connect. */
  readonly authorizer: IFunction;
  /** Query string parameter that carries the token (src/manifest.ts WS_TOKEN_QUERY_PARAM). */
  readonly tokenQueryParam: string;
  /**
   * Stage name; part of the URL clients connect to.
   * @default 'live'
   */
  readonly stageName?: string;
  /**
   * Steady-state messages per second across the stage.
   * @default 500
   */
  readonly throttlingRateLimit?: number;
  /**
   * Burst of messages the stage accepts above the rate.
   * @default 1000
   */
  readonly throttlingBurstLimit?: number;
  /**
   * Per-route limits below the stage's, by route key.
   * @default - the stage's limits on every route
   */
  readonly routeThrottles?: Readonly<Record<string, RouteThrottle>>;
  /**
   * Write access logs. WebSocket APIs can only log once the account's API Gateway settings
   * name a CloudWatch Logs role; that is account-wide, so this app does not set it for you.
   * @default false
   */
  readonly accessLogging?: boolean;
  /**
   * Retention of the access log group, when `accessLogging` is on.
   * @default RetentionDays.ONE_MONTH
   */
  readonly accessLogRetention?: RetentionDays;
}

/**
 * The WebSocket API that visitors and agents keep open: a Lambda REQUEST authorizer on
 * $connect (the token in the query string), the realtime function on every route, and a
 * throttled, auto-deployed stage.
 */
export class ConversaRealtimeApi extends Construct {
  public readonly api: WebSocketApi;
  public readonly stage: WebSocketStage;
  public readonly routes: readonly WebSocketRoute[];
  public readonly accessLogs?: LogGroup;
  /** wss:// URL clients connect to. */
  public readonly url: string;
  /** https:// URL of the @connections management API for this stage. */
  public readonly callbackUrl: string;

  constructor(scope: Construct, id: string, props: ConversaRealtimeApiProps) {
    super(scope, id);

    this.api = new WebSocketApi(this, 'Api', {
      apiName: `${Stack.of(this).stackName}-websocket`,
      description: 'Conversa live events for visitors and agents',
    });
    const integration = new WebSocketLambdaIntegration('Realtime', props.handler);
    const connect = this.api.addRoute('$connect', {
      integration,
      authorizer: new WebSocketLambdaAuthorizer('Token', props.authorizer, {
        identitySource: [`route.request.querystring.${props.tokenQueryParam}`],
      }),
    });
    const afterConnect = ['$disconnect', '$default'].map((routeKey) => this.api.addRoute(routeKey, { integration }));
    for (const route of afterConnect) {
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          'API Gateway runs authorizers on $connect only; later frames belong to a connection that passed it, and the realtime function acts as the identity stored for that connection.',
      });
    }
    this.routes = [connect, ...afterConnect];

    const accessLogs = props.accessLogging
      ? new LogGroup(this, 'AccessLogs', { retention: props.accessLogRetention ?? RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY })
      : undefined;
    if (accessLogs) this.accessLogs = accessLogs;

    this.stage = new WebSocketStage(this, 'Stage', {
      webSocketApi: this.api,
      stageName: props.stageName ?? 'live',
      autoDeploy: true,
      throttle: { rateLimit: props.throttlingRateLimit ?? 500, burstLimit: props.throttlingBurstLimit ?? 1000 },
      ...(accessLogs
        ? {
            accessLogSettings: {
              destination: new LogGroupLogDestination(accessLogs),
              format: AccessLogFormat.custom(
                JSON.stringify({
                  requestId: '$context.requestId',
                  ip: '$context.identity.sourceIp',
                  requestTime: '$context.requestTime',
                  routeKey: '$context.routeKey',
                  eventType: '$context.eventType',
                  connectionId: '$context.connectionId',
                  status: '$context.status',
                  authorizerError: '$context.authorizer.error',
                  integrationError: '$context.integrationErrorMessage',
                }),
              ),
            },
          }
        : {}),
    });
    if (!accessLogs) {
      Validations.of(this.stage).acknowledge({
        id: 'AwsSolutions-APIG1',
        reason:
          'WebSocket access logging needs the account-wide API Gateway CloudWatch role, which this app must not own; until `accessLogging` is set (once that role exists), connections leave no access record, and the realtime function logs only failed routes.',
      });
    }

    const routeByKey = new Map<string, WebSocketRoute>([['$connect', connect], ['$disconnect', afterConnect[0]!], ['$default', afterConnect[1]!]]);
    applyRouteThrottles(
      this.stage,
      Object.entries(props.routeThrottles ?? {}).map(([routeKey, throttle]) => {
        const route = routeByKey.get(routeKey);
        if (!route) throw new Error(`${this.node.path}: no route ${routeKey} to throttle`);
        return { routeKey, route, throttle };
      }),
    );

    this.url = this.stage.url;
    this.callbackUrl = this.stage.callbackUrl;
  }

  /** Lets `grantee` post to, inspect and close this stage's connections. */
  public grantManageConnections(grantee: IGrantable & IConstruct): Grant {
    const grant = this.stage.grantManagementApiAccess(grantee);
    for (const statement of grant.principalStatements) {
      for (const arn of statement.resources) {
        acknowledgeWildcardResource(
          grantee,
          arn,
          'Connection ids exist only at runtime; the wildcard is limited to the @connections of this API stage.',
        );
      }
    }
    return grant;
  }
}
