/**
 * The trainer's error code. The harness's ERROR_CODES has no entry for trainer faults yet;
 * until it has one (`TRAINER_FAILED: 'TRAINER_FAILED'` in harness/errors.ts), the trainer
 * raises PaddockError with this code.
 */
import { PaddockError, type ErrorCode, type PaddockErrorOptions } from '../../harness/index.ts';

/**
 * The torch worker failed: it exited or was killed, did not answer in time, broke the
 * protocol, or answered a request with an error. `details.stderr` holds its last output.
 */
export const TRAINER_FAILED = 'TRAINER_FAILED' as ErrorCode;

/** A PaddockError with code TRAINER_FAILED. */
export function trainerError(message: string, options: PaddockErrorOptions = {}): PaddockError {
  return new PaddockError(TRAINER_FAILED, message, options);
}
