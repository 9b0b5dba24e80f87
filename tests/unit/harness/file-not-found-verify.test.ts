/**
 * The verifier reads reward files by error code: FILE_NOT_FOUND with nothing at the path
 * means "no such reward file, try the next", something else there is the verifier's
 * error, and a broken sandbox (SANDBOX_FAILED) is an infrastructure fault that propagates.
 */
import { describe, expect, it } from 'vitest';
import { PaddockError, type ReadFileOptions } from '../../../harness/index.ts';
import { readRewardFiles } from '../../../harness/verify.ts';
import { MemorySandbox } from '../../../testing/index.ts';

const signal = new AbortController().signal;

describe('readRewardFiles and FILE_NOT_FOUND', () => {
  it('takes a missing reward.json as absent and reads reward.txt', async () => {
    const sandbox = new MemorySandbox('m');
    await sandbox.writeFile('/logs/verifier/reward.txt', '0.5\n');
    await expect(readRewardFiles(sandbox, '/logs/verifier', signal)).resolves.toMatchObject({ reward: 0.5 });
  });

  it('makes a folder where reward.json should be a verifier error, not a missing file', async () => {
    const sandbox = new MemorySandbox('m');
    await sandbox.writeFile('/logs/verifier/reward.json/inside', '1');
    await sandbox.writeFile('/logs/verifier/reward.txt', '1');
    const read = await readRewardFiles(sandbox, '/logs/verifier', signal);
    expect(read.reward).toBeNull();
    expect(read.error).toContain('not a readable regular file');
  });

  it('lets a broken sandbox reject instead of reading as "no reward file"', async () => {
    class Broken extends MemorySandbox {
      override readFile(_path: string, _options?: ReadFileOptions): Promise<Uint8Array> {
        return Promise.reject(
          new PaddockError('SANDBOX_FAILED', 'the container is gone', { retryable: true }),
        );
      }
    }
    await expect(readRewardFiles(new Broken('b'), '/logs/verifier', signal)).rejects.toMatchObject({
      code: 'SANDBOX_FAILED',
      retryable: true,
    });
  });
});
