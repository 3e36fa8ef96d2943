/**
 * Takes the place of @aws-sdk/credential-provider-node in the function bundles (an esbuild alias,
 * lib/constructs/conversa-function.ts BUNDLE_ALIASES). Lambda hands every function its role's
 * credentials in environment variables, so of the SDK's default chain only the environment
 * provider ever answers there; the others (SSO, INI files, processes, containers, IMDS, with the
 * STS and SSO clients they bring) only made the bundles larger and their cold starts longer.
 */
import { fromEnv } from '@aws-sdk/credential-provider-env';

export const defaultProvider: typeof fromEnv = (init) => fromEnv(init);
