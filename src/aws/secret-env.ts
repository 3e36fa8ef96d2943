/**
 * Keys the functions read from Secrets Manager once per cold start. Deployed, `<NAME>_ARN` names
 * the secret and its value lands in `<NAME>`, where the local stack puts the value directly.
 */
export async function loadSecretIntoEnv(valueEnv: string, arnEnv: string): Promise<void> {
  const arn = process.env[arnEnv];
  if (process.env[valueEnv] || !arn) return;
  const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  const out = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: arn }));
  if (!out.SecretString) throw new Error(`the secret behind ${arnEnv} is empty`);
  process.env[valueEnv] = out.SecretString;
}
