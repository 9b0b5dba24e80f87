import { ERROR_CODES, PaddockError, type PaddockErrorOptions } from '../../harness/index.ts';

/**
 * The torch worker failed: it exited or was killed, did not answer in time, broke the
 * protocol, or answered a request with an error. `details.stderr` holds its last output.
 */
export const TRAINER_FAILED = ERROR_CODES.TRAINER_FAILED;

/** A PaddockError with code TRAINER_FAILED. */
export function trainerError(message: string, options: PaddockErrorOptions = {}): PaddockError {
  return new PaddockError(TRAINER_FAILED, message, options);
}
