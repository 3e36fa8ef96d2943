import { join } from 'node:path';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { ApplicationLogLevel, Architecture, LoggingFormat, Runtime, SystemLogLevel, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { FunctionSpec } from '../../src/manifest';

/**
 * esbuild's ESM output has no `require`; bundled CommonJS dependencies (parts of the AWS SDK)
 * still call it, so the bundle defines one.
 */
export const ESM_REQUIRE_BANNER = "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

/**
 * Modules every bundle replaces, each with a file relative to the project root: the SDK's default
 * credential chain with the environment provider alone (src/aws/lambda-credentials.ts says why).
 */
export const BUNDLE_ALIASES: Readonly<Record<string, string>> = {
  '@aws-sdk/credential-provider-node': './src/aws/lambda-credentials.ts',
};

/**
 * Node options of the functions when `sourceMaps` is on: stack traces that name our source files
 * and lines. Node reads and parses the bundle's source map when it loads the bundle, which costs
 * cold starts tens of milliseconds (bench/bundles.ts measures the load with these options).
 */
export const RUNTIME_NODE_OPTIONS = '--enable-source-maps';

/** Properties of {@link ConversaFunction}. */
export interface ConversaFunctionProps {
  /** The function's entry in src/manifest.ts: handler path, description, memory, timeout. */
  readonly spec: FunctionSpec;
  /**
   * Absolute path of the repository root: `spec.entry` is relative to it and its
   * package-lock.json pins the bundled dependencies.
   */
  readonly projectRoot: string;
  /**
   * Environment variables, on top of the Powertools and source-map ones this construct sets.
   * @default - none
   */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * Retention of the function's log group.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Powertools logger level (`LOG_LEVEL`), also the function's application log level, so
   * Lambda drops nothing the logger writes.
   * @default 'INFO'
   */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /**
   * Powertools service name (`POWERTOOLS_SERVICE_NAME`).
   * @default 'conversa'
   */
  readonly serviceName?: string;
  /**
   * Powertools metrics namespace (`POWERTOOLS_METRICS_NAMESPACE`).
   * @default 'Conversa'
   */
  readonly metricsNamespace?: string;
  /**
   * Stack traces mapped to the TypeScript sources at run time (`--enable-source-maps`). Off, the
   * bundle still carries its source map (traces can be mapped offline) and cold starts are
   * shorter by the map's parse (about 30 ms for the larger functions, measured on Node 20).
   * @default true
   */
  readonly sourceMaps?: boolean;
  /**
   * Concurrent executions reserved for the function, which are also its ceiling: it can neither
   * run more at once nor take them from the functions that share the account's unreserved pool.
   * @default - none: the function draws on the account's unreserved concurrency
   */
  readonly reservedConcurrency?: number;
}

/**
 * One Conversa Lambda function from its manifest entry: Node.js 22 on arm64, an ESM bundle
 * that includes its own AWS SDK (so the SDK version is the one the tests ran against),
 * minified with source maps, X-Ray active, its own log group with a retention, and its
 * own role that can write only to that log group (no AWS managed policy).
 */
export class ConversaFunction extends Construct {
  public readonly function: NodejsFunction;
  public readonly role: Role;
  public readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: ConversaFunctionProps) {
    super(scope, id);
    const { spec } = props;

    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      // The stateless stack can be redeployed from scratch; its logs go with it.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs the Conversa function: ${spec.description}`,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry: join(props.projectRoot, spec.entry),
      handler: 'handler',
      projectRoot: props.projectRoot,
      depsLockFilePath: join(props.projectRoot, 'package-lock.json'),
      description: spec.description,
      memorySize: spec.memoryMb,
      timeout: Duration.seconds(spec.timeoutSeconds),
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      tracing: Tracing.ACTIVE,
      role: this.role,
      logGroup: this.logGroup,
      ...(props.reservedConcurrency === undefined ? {} : { reservedConcurrentExecutions: props.reservedConcurrency }),
      // JSON logs with the platform's own lines at WARN: no START/END/REPORT lines per
      // invocation (billed as ingestion on every message); duration and errors are in metrics.
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: ApplicationLogLevel[props.logLevel ?? 'INFO'],
      systemLogLevelV2: SystemLogLevel.WARN,
      environment: {
        POWERTOOLS_SERVICE_NAME: props.serviceName ?? 'conversa',
        POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace ?? 'Conversa',
        LOG_LEVEL: props.logLevel ?? 'INFO',
        ...(props.sourceMaps === false ? {} : { NODE_OPTIONS: RUNTIME_NODE_OPTIONS }),
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        // Prefer packages' ESM builds: smaller bundles, and tree shaking works on them.
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: true,
        // Stack traces need the mappings only: a map without the sources is a third of the size,
        // and Node parses it at every cold start.
        sourcesContent: false,
        banner: ESM_REQUIRE_BANNER,
        bundleAwsSDK: true,
        externalModules: [],
        esbuildArgs: Object.fromEntries(Object.entries(BUNDLE_ALIASES).map(([module, file]) => [`--alias:${module}`, file])),
      },
    });

    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'Node.js 22 (supported until April 2027) is the runtime the bundles target (esbuild target node22) and were tested on; moving to a newer major is a deliberate upgrade, not a side effect of a cdk-nag release.',
    });
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions; tracing is on for every function.',
    });
  }
}
