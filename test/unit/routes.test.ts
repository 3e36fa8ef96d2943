import { describe, expect, it } from 'vitest';
import { HTTP_ROUTES } from '../../src/manifest';
import { ROUTES } from '../../src/api/routes';

describe('agent routes', () => {
  it('serves exactly the agent routes the manifest declares to CDK and the local stack', () => {
    const declared = HTTP_ROUTES.filter((r) => r.fn === 'api').map((r) => `${r.method} ${r.path}`);
    expect(Object.keys(ROUTES).sort()).toEqual(declared.sort());
    expect(HTTP_ROUTES.filter((r) => r.fn === 'api').every((r) => r.auth === 'agent')).toBe(true);
  });
});
