#!/usr/bin/env node
/**
 * The CDK app. The only place that reads context and environment variables; every value
 * goes down to the stacks as props.
 *
 * Context: the `context` of cdk.json, or `-c key=value` for one run only (not saved: a later
 * deploy without it falls back to the defaults; README, Deploy). The keys, their defaults and
 * how each is read are in lib/context.ts.
 */
import { fileURLToPath } from 'node:url';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildConversa } from '../lib/app';
import { readConversaContext } from '../lib/context';

const app = new App();
const { config, nag } = readConversaContext((key) => app.node.tryGetContext(key));

const account = process.env.CDK_DEFAULT_ACCOUNT;
const region = process.env.CDK_DEFAULT_REGION;

buildConversa(app, {
  projectRoot: fileURLToPath(new URL('..', import.meta.url)),
  ...(account || region ? { env: { ...(account ? { account } : {}), ...(region ? { region } : {}) } } : {}),
  ...config,
});

if (nag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
