/**
 * Credit assignment and advantages: per-turn rewards and a trajectory reward become
 * per-turn returns (returns.ts), and a group's returns become advantages (advantages.ts).
 * Pure functions: the trainer calls them after a group of episodes finishes.
 */

/** Scheme names, configuration, defaults, and the `credit:` task.yaml section. */
export {
  CREDIT_SCHEMES,
  DEFAULT_CREDIT,
  creditConfig,
  creditTaskExtension,
  type CreditConfig,
  type CreditEpisode,
  type CreditInput,
  type CreditScheme,
  type CreditSection,
} from './returns.ts';
/** Per-turn returns: of raw rewards, of a recorded episode, and the discounted return-to-go. */
export { assignCredit, creditedRewards, discountedReturns, episodeReturns } from './returns.ts';
/** Advantage estimators at trajectory and turn level. */
export {
  grpoAdvantages,
  reinforceAdvantages,
  rlooAdvantages,
  trajectoryAdvantages,
  turnAdvantages,
  type AdvantageEstimator,
  type AdvantageOptions,
  type TurnAdvantageOptions,
} from './advantages.ts';
