import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  CorsHttpMethod,
  HttpApi,
  HttpMethod,
  HttpNoneAuthorizer,
  HttpRoute,
  HttpRouteKey,
  HttpStage,
  type IHttpRouteAuthorizer,
  LogGroupLogDestination,
  PayloadFormatVersion,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { FunctionName, HttpRouteSpec } from '../../src/manifest';
import { applyRouteThrottles } from './route-throttles';

/** Why a function's routes carry no API Gateway authorization. */
const PUBLIC_ROUTE_REASONS: Readonly<Partial<Record<FunctionName, string>>> = {
  webhook:
    'Channel providers cannot send API Gateway credentials; the webhook function verifies their signature (HMAC, secret token or Twilio signature) over the raw body and answers 401.',
  widget:
    'Anonymous website visitors: a session is public by design and returns a signed visitor token, which the widget function checks on every later widget call.',
};

/** Properties of {@link ConversaHttpApi}. */
export interface ConversaHttpApiProps {
  /** Every route to create (src/manifest.ts HTTP_ROUTES). */
  readonly routes: readonly HttpRouteSpec[];
  /** The function behind each route's `fn`; every function a route names must be here. */
  readonly handlers: Readonly<Partial<Record<FunctionName, IFunction>>>;
  /**
   * The function behind the `$default` route, which a request no route matches reaches without
   * authorization; it must answer 404 without reading anything. It gives an unknown route the
   * contract's error body, where API Gateway's own 404 is `{"message":"Not Found"}`.
   * @default - none: API Gateway answers unknown routes itself
   */
  readonly fallback?: FunctionName;
  /** Issuer of agent JWTs (the Cognito user pool's issuer URL). */
  readonly jwtIssuer: string;
  /** Accepted `aud` / `client_id` values of agent JWTs (the console's app client id). */
  readonly jwtAudience: readonly string[];
  /**
   * Browser origins allowed by CORS: the agent console and every site that embeds the widget.
   * Credentials travel as bearer tokens, never cookies, so `*` exposes nothing a script could
   * not already send.
   * @default ['*']
   */
  readonly allowedOrigins?: readonly string[];
  /**
   * Steady-state requests per second across the stage.
   * @default 500
   */
  readonly throttlingRateLimit?: number;
  /**
   * Burst of requests the stage accepts above the rate.
   * @default 1000
   */
  readonly throttlingBurstLimit?: number;
  /**
   * Retention of the access log group.
   * @default RetentionDays.ONE_MONTH
   */
  readonly accessLogRetention?: RetentionDays;
}

/**
 * The public HTTP API: one Lambda proxy route (payload format 2.0) per manifest entry, a JWT
 * authorizer on agent routes, CORS, stage throttling and JSON access logs. Webhook and widget
 * routes carry no API Gateway authorization on purpose: providers sign their requests and the
 * webhook function verifies the signature over the raw body; the widget route mints visitor
 * tokens for anonymous visitors.
 */
export class ConversaHttpApi extends Construct {
  public readonly api: HttpApi;
  public readonly stage: HttpStage;
  public readonly accessLogs: LogGroup;
  public readonly authorizer: HttpJwtAuthorizer;
  public readonly routes: readonly HttpRoute[];
  /** Base URL without a trailing slash, e.g. `https://abc.execute-api.eu-west-1.amazonaws.com`. */
  public readonly url: string;

  constructor(scope: Construct, id: string, props: ConversaHttpApiProps) {
    super(scope, id);

    const allowOrigins = [...(props.allowedOrigins ?? ['*'])];
    this.api = new HttpApi(this, 'Api', {
      apiName: `${Stack.of(this).stackName}-http`,
      description: 'Conversa: provider webhooks, web widget sessions and the agent API',
      // The default stage is declared below so that it can have throttling and access logs.
      createDefaultStage: false,
      ...(allowOrigins.length > 0
        ? {
            corsPreflight: {
              allowOrigins,
              allowMethods: [CorsHttpMethod.GET, CorsHttpMethod.POST, CorsHttpMethod.PUT, CorsHttpMethod.PATCH, CorsHttpMethod.DELETE, CorsHttpMethod.OPTIONS],
              allowHeaders: ['authorization', 'content-type'],
              // A 503 asks to try again later; the browser shows the script the header only if exposed.
              exposeHeaders: ['retry-after'],
              maxAge: Duration.days(1),
            },
          }
        : {}),
    });

    this.accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.accessLogRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.throttlingRateLimit ?? 500, burstLimit: props.throttlingBurstLimit ?? 1000 },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTime',
            routeKey: '$context.routeKey',
            status: '$context.status',
            responseLength: '$context.responseLength',
            latencyMs: '$context.responseLatency',
            integrationLatencyMs: '$context.integrationLatency',
            integrationError: '$context.integrationErrorMessage',
            authorizerError: '$context.authorizer.error',
          }),
        ),
      },
    });

    this.authorizer = new HttpJwtAuthorizer('AgentJwt', props.jwtIssuer, { jwtAudience: [...props.jwtAudience] });
    const open = new HttpNoneAuthorizer();
    const integrations = new Map<FunctionName, HttpLambdaIntegration>();
    const integrationFor = (name: FunctionName): HttpLambdaIntegration => {
      let integration = integrations.get(name);
      if (!integration) {
        const handler = props.handlers[name];
        if (!handler) throw new Error(`${this.node.path}: no handler for function '${name}', which a route names`);
        integration = new HttpLambdaIntegration(`${name}Integration`, handler, { payloadFormatVersion: PayloadFormatVersion.VERSION_2_0 });
        integrations.set(name, integration);
      }
      return integration;
    };

    const routes: HttpRoute[] = [];
    for (const spec of props.routes) {
      const authorizer: IHttpRouteAuthorizer = spec.auth === 'agent' ? this.authorizer : open;
      const [route] = this.api.addRoutes({ path: spec.path, methods: [HttpMethod[spec.method]], integration: integrationFor(spec.fn), authorizer });
      if (!route) throw new Error(`${this.node.path}: no route created for ${spec.method} ${spec.path}`);
      const reason = PUBLIC_ROUTE_REASONS[spec.fn];
      // A public route for any other function stays a cdk-nag finding until someone writes down why.
      if (spec.auth === 'none' && reason) Validations.of(route).acknowledge({ id: 'AwsSolutions-APIG4', reason });
      routes.push(route);
    }
    if (props.fallback) {
      const fallback = new HttpRoute(this, 'DefaultRoute', { httpApi: this.api, routeKey: HttpRouteKey.DEFAULT, integration: integrationFor(props.fallback) });
      Validations.of(fallback).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason: 'The $default route only answers 404 for requests no route matched, reading nothing; an authorizer would turn those 404s into API Gateway 401s.',
      });
    }
    this.routes = routes;
    applyRouteThrottles(
      this.stage,
      props.routes.flatMap((spec, i) => (spec.throttle ? [{ routeKey: `${spec.method} ${spec.path}`, route: routes[i]!, throttle: spec.throttle }] : [])),
    );

    this.url = `https://${this.api.apiId}.execute-api.${Stack.of(this).region}.${Stack.of(this).urlSuffix}`;
  }
}
