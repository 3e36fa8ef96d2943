import { describe, expect, it } from 'vitest';
import * as z from '../../src/zod';
import { validate } from '../../src/http/http';
import { ClientError } from '../../src/domain/errors';
import { wellFormedJson } from '../../src/unicode';

/** The 400 that `validate` throws for `value`, as the client would read it. */
function refusal(schema: z.ZodMiniType, value: unknown): { status: number; code: string; message: string } {
  try {
    validate(schema, value);
  } catch (error) {
    if (error instanceof ClientError) return { status: error.status, code: error.code, message: error.message };
    throw error;
  }
  throw new Error('the value was accepted');
}

describe('request validation (zod mini)', () => {
  it('names the field and says in English what is wrong with it', () => {
    const Body = z.object({ name: z.text(1, 5), age: z.wholeNumber(0, 150) });

    expect(refusal(Body, { name: '', age: 3 })).toEqual({ status: 400, code: 'invalid_request', message: 'name: Too small: expected string to have >=1 characters' });
    expect(refusal(Body, { name: 'Ana', age: 2.5 }).message).toBe('age: Invalid input: expected int, received number');
    expect(refusal(Body, { name: 'Ana', age: 151 }).message).toBe('age: Too big: expected number to be <=150');
    expect(refusal(z.strictObject({ a: z.optional(z.string()) }), { b: 1 }).message).toBe('body: Unrecognized key: "b"');
  });

  it('trims before it counts and hands the trimmed text on', () => {
    const Body = z.object({ note: z.trimmedText(1, 3) });

    expect(validate(Body, { note: '  abc  ' })).toEqual({ note: 'abc' });
    expect(refusal(Body, { note: '   ' }).message).toMatch(/^note: Too small/);
  });

  it('reads a page size from a query string, with a default and the bounds 1 to 100', () => {
    const Query = z.object({ limit: z.pageLimit(25) });

    expect(validate(Query, {})).toEqual({ limit: 25 });
    expect(validate(Query, { limit: '7' })).toEqual({ limit: 7 });
    expect(refusal(Query, { limit: '0' }).message).toMatch(/^limit: Too small/);
    expect(refusal(Query, { limit: '101' }).message).toMatch(/^limit: Too big/);
    expect(refusal(Query, { limit: 'ten' }).status).toBe(400);
  });
});

describe('well-formed Unicode in JSON bodies and frames', () => {
  const check = (raw: string) => wellFormedJson(raw, JSON.parse(raw));

  it('refuses a lone surrogate in any string, key or nested value, and takes pairs written either way', () => {
    expect([String.raw`{"text":"a \udc00"}`, String.raw`{"a":[{"b":"\ud83d"}]}`, String.raw`{"\ud800":1}`].map(check)).toEqual([false, false, false]);
    expect([String.raw`{"text":"\ud83d\ude00"}`, '{"text":"😀 שלום"}', '{"n":1,"b":null}'].map(check)).toEqual([true, true, true]);
  });
});
