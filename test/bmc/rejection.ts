import assert from 'node:assert/strict';
import { isHealError } from '../../src/core/errors.js';

/** The HealError a BMC call's promise rejects with (fails the test when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    assert.ok(isHealError(err), String(err));
    return { code: err.code, message: err.message };
  }
  assert.fail('expected the BMC call to fail');
}
