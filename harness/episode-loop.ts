/**
 * The episode loop: one agent on one task with one seed.
 *
 *   start sandbox + tool sessions → [agent turn → tool calls → observations → turn rewards]*
 *   → stop (submit, no tool calls, a limit) → verify → trajectory reward → close everything
 *
 * The verifier runs in the agent's sandbox, or with `verifier.isolation` in a fresh one
 * from the same provider and labels that verification removes itself.
 *
 * An agent's mistakes (unknown tools, invalid JSON, bad arguments, failing commands) are
 * observations; infrastructure faults end the episode as `infra-error` (retryable by the
 * scheduler); a failing agent backend ends it as `agent-error`. Every resource is closed
 * whatever happens. Aborting `signal` (the run is stopping) rejects with ABORTED and
 * records nothing, so that `resume` runs the episode again.
 */
import type { Agent, AgentSession, AssistantTurn, Message, ToolCall, Usage } from './agent.ts';
import type { EpisodeContext, ToolProvider, ToolSession } from './environment.ts';
import {
  isAgentOutcome,
  type EpisodeEvent,
  type EpisodeEventListener,
  type EpisodeRecord,
  type EpisodeStats,
  type EpisodeStatus,
  type LimitKind,
  type ToolResultRecord,
  type TurnRecord,
} from './episode.ts';
import { ERROR_CODES, PaddockError, describeError, isPaddockError } from './errors.ts';
import {
  combineRewards,
  scoreTurn,
  type EpisodeRewards,
  type RewardBreakdown,
  type KeptFile,
  type RewardComponent,
  type StepResult,
  type TurnReward,
  type TurnRewardFunction,
  type VerifierResult,
} from './reward.ts';
import type { Sandbox, SandboxProvider } from './sandbox.ts';
import type { Task, TaskStep } from './task.ts';
import { toolSpec, type ImagePart, type Tool, type ToolOutput, type ToolSpec } from './tool.ts';
import { builtinTools } from './tools/index.ts';
import { KeepFiles, clearVerifierTraces, verifyEpisode } from './verify.ts';
import { startDeadline } from './deadline.ts';

export interface EpisodeOptions {
  task: Task;
  agent: Agent;
  runId: string;
  episodeId: string;
  /** @default 0 */
  epoch?: number;
  /** @default 0 */
  seed?: number;
  /** 1-based attempt number. @default 1 */
  attempt?: number;
  /** Starts the task's sandbox; required when the task has an environment. */
  sandboxProvider?: SandboxProvider;
  /** Plug-ins offering more tools (browser, MCP). */
  toolProviders?: readonly ToolProvider[];
  /** Turn rewards, trajectory rewards besides the verifier's and the sessions', constraints, credit. */
  rewards?: EpisodeRewards;
  /** Aborting stops the episode; it then rejects with ABORTED and nothing is recorded. */
  signal?: AbortSignal;
  /** Receives events as they happen; must not throw. */
  onEvent?: EpisodeEventListener;
  /** Clock, injectable for tests. @default () => new Date() */
  now?: () => Date;
  /**
   * Where the episode keeps what its verifier leaves (`VerifierSpec.keepDir`) and the task's
   * artifacts, on the host: `dir` (absolute, emptied first), named `recordAs` in the
   * record (relative to the run folder), within `maxBytes` (@default 10 MiB). Without
   * it nothing is kept. See `KeepFiles`.
   */
  files?: { dir: string; recordAs: string; maxBytes?: number };
}

/** Raised inside the loop to end the agent phase on a limit. */
class LimitReached extends Error {
  constructor(readonly limit: LimitKind) {
    super(`limit reached: ${limit}`);
  }
}

const EMPTY_STATS = (): EpisodeStats => ({
  toolCalls: 0,
  toolProblems: { 'unknown-tool': 0, 'invalid-json': 0, 'invalid-arguments': 0, 'tool-error': 0 },
  emptyTurns: 0,
});

/** Runs one episode to its end and returns its record. See the module comment. */
export async function runEpisode(options: EpisodeOptions): Promise<EpisodeRecord> {
  const { task, agent } = options;
  const now = options.now ?? (() => new Date());
  const emit = (event: EpisodeEvent): void => options.onEvent?.(event);
  const outer = options.signal ?? new AbortController().signal;
  const startedAt = now();
  const started = performance.now();
  const attempt = options.attempt ?? 1;

  const messages: Message[] = [];
  const turns: TurnRecord[] = [];
  const usage: Usage = { promptTokens: 0, completionTokens: 0 };
  const stats = EMPTY_STATS();
  let status: EpisodeStatus = 'completed';
  let limit: LimitKind | undefined;
  let truncation: EpisodeRecord['truncation'];
  let refusal: EpisodeRecord['refusal'];
  let failure: EpisodeRecord['error'];
  let answer: string | undefined;
  let costUsd = 0;
  let verifier: VerifierResult | undefined;
  const sessionScores: Record<string, RewardComponent> = {};

  let sandbox: Sandbox | undefined;
  const labels = { runId: options.runId, episodeId: options.episodeId };
  const sessions: ToolSession[] = [];
  const byProvider = new Map<string, ToolSession>();
  let agentSession: AgentSession | undefined;
  const turnRewards: { fn: TurnRewardFunction; opened: TurnReward }[] = [];
  let specs: ToolSpec[] = [];
  emit({ type: 'episode-start', episodeId: options.episodeId, taskId: task.id, attempt });

  try {
    // --- set-up: sandbox and tool sessions -------------------------------------------
    if (task.environment) {
      if (!options.sandboxProvider) {
        throw new PaddockError(
          ERROR_CODES.CONFIG_INVALID,
          `task ${task.id} needs a sandbox, but no sandbox provider was given`,
        );
      }
      sandbox = await options.sandboxProvider.start(task.environment, { labels, signal: outer });
    }
    for (const provider of options.toolProviders ?? []) {
      const session = await provider.open(task, { labels, signal: outer, ...(sandbox ? { sandbox } : {}) });
      if (session) {
        sessions.push(session);
        byProvider.set(provider.name, session);
      }
    }
    let tools = collectTools(task, sessions);
    const episode: EpisodeContext = {
      task,
      runId: options.runId,
      episodeId: options.episodeId,
      seed: options.seed ?? 0,
      sessions: byProvider,
      signal: outer,
      ...(sandbox ? { sandbox } : {}),
    };
    agentSession = await agent.open(episode);
    for (const fn of options.rewards?.turn ?? []) {
      turnRewards.push({ fn, opened: await fn.open(episode) });
    }
    specs = tools.map(toolSpec);

    const systemPrompt = task.systemPrompt ?? agent.systemPrompt;
    const firstObservations: string[] = [];
    const firstImages: ImagePart[] = [];
    for (const session of sessions) {
      const observation = await session.initialObservation?.({ signal: outer });
      if (typeof observation === 'string') {
        if (observation) firstObservations.push(observation);
      } else if (observation) {
        if (observation.text) firstObservations.push(observation.text);
        firstImages.push(...(observation.images ?? []));
      }
    }
    const keep = options.files
      ? new KeepFiles(options.files.dir, options.files.recordAs, options.files.maxBytes)
      : undefined;
    const scoreSessions = async (): Promise<void> => {
      for (const session of sessions) {
        const scores =
          (await session.score?.({ signal: outer, ...(answer === undefined ? {} : { answer }) })) ?? {};
        for (const [name, score] of Object.entries(scores)) {
          sessionScores[name] =
            typeof score === 'number'
              ? { value: score, weight: 1 }
              : {
                  value: score.value,
                  weight: score.weight ?? 1,
                  ...(score.note ? { note: score.note } : {}),
                };
        }
      }
    };
    const verifyContext = {
      signal: outer,
      labels,
      ...(options.sandboxProvider ? { provider: options.sandboxProvider } : {}),
      ...(task.environment ? { environment: task.environment } : {}),
    };
    // One phase per step of a multi-step task; a single-step task is one phase, the task.
    const steps = task.steps?.list ?? [];
    const stepResults: StepResult[] = [];
    for (let phaseIndex = 0; phaseIndex < Math.max(1, steps.length); phaseIndex++) {
      const step = steps[phaseIndex];
      const view = step ? stepTask(task, step) : task;
      const phaseStart = turns.length;
      const messagesStart = messages.length;
      if (step && sandbox) {
        const failure = await prepareStep(step, sandbox, outer);
        if (failure) {
          stepResults.push({
            name: step.name,
            outcome: failure.outcome,
            reward: null,
            error: failure.error,
            turns: { from: phaseStart, to: phaseStart },
            messages: { from: messagesStart, to: messagesStart },
            stoppedEpisode: `the step's ${failure.outcome === 'setup-failed' ? 'setup' : 'healthcheck'} failed`,
          });
          break;
        }
      }
      if (phaseIndex > 0 && step?.continueSession) {
        messages.push({ role: 'user', content: view.instruction });
      } else {
        if (systemPrompt) messages.push({ role: 'system', content: systemPrompt });
        messages.push({
          role: 'user',
          content: [view.instruction, ...(phaseIndex === 0 ? firstObservations : [])].join('\n\n'),
          ...(phaseIndex === 0 && firstImages.length > 0 ? { images: firstImages } : {}),
        });
      }
      // How this phase ends; the episode keeps the first phase's that did not complete.
      const prior: {
        status: EpisodeStatus;
        limit: LimitKind | undefined;
        truncation: EpisodeRecord['truncation'];
        refusal: EpisodeRecord['refusal'];
      } = { status, limit, truncation, refusal };
      status = 'completed';

      // --- agent phase --------------------------------------------------------------
      const timer = startDeadline(view.limits.timeoutMs, outer);
      const deadline = timer.signal;
      try {
        // turnIndex counts the episode's turns; the agent sees the step's (its first is 0).
        for (let turnIndex = phaseStart; ; turnIndex++) {
          if (turnIndex - phaseStart >= view.limits.maxTurns) throw new LimitReached('turns');
          // A session's tools may change during the episode (an MCP server's tools/list_changed).
          tools = collectTools(task, sessions);
          specs = tools.map(toolSpec);
          emit({ type: 'turn-start', episodeId: options.episodeId, turnIndex });
          const turnStarted = now();
          const agentStarted = performance.now();
          const reply = await callAgent(
            agent,
            agentSession,
            { task: view, messages, tools: specs, turnIndex: turnIndex - phaseStart },
            deadline,
            outer,
          );
          const agentMs = performance.now() - agentStarted;
          const calls = normaliseCalls(reply, turnIndex);
          messages.push({
            role: 'assistant',
            content: reply.text,
            ...(calls.length > 0 ? { toolCalls: calls } : {}),
            ...(reply.reasoning ? { reasoning: reply.reasoning } : {}),
          });
          if (reply.usage) {
            usage.promptTokens += reply.usage.promptTokens;
            usage.completionTokens += reply.usage.completionTokens;
            if (reply.usage.cacheReadTokens)
              usage.cacheReadTokens = (usage.cacheReadTokens ?? 0) + reply.usage.cacheReadTokens;
            if (reply.usage.cacheWriteTokens)
              usage.cacheWriteTokens = (usage.cacheWriteTokens ?? 0) + reply.usage.cacheWriteTokens;
          }
          if (calls.length === 0 && !reply.text) stats.emptyTurns++;

          const toolStarted = performance.now();
          const results: ToolResultRecord[] = [];
          let stop = calls.length === 0;
          for (const call of calls) {
            if (stop) {
              const skipped = {
                callId: call.id,
                name: call.name,
                output: 'Not run: the episode was submitted.',
                isError: true,
                durationMs: 0,
              };
              results.push(skipped);
              messages.push({
                role: 'tool',
                toolCallId: call.id,
                name: call.name,
                content: skipped.output,
                isError: true,
              });
              continue;
            }
            emit({ type: 'tool-call', episodeId: options.episodeId, turnIndex, call });
            const result = await executeCall(
              call,
              tools,
              { signal: deadline, episodeId: options.episodeId, turnIndex, ...(sandbox ? { sandbox } : {}) },
              outer,
            );
            stats.toolCalls++;
            if (result.record.problem) stats.toolProblems[result.record.problem]++;
            if (result.output.stop) {
              stop = true;
              if (result.output.answer !== undefined) answer = result.output.answer;
            }
            results.push(result.record);
            messages.push({
              role: 'tool',
              toolCallId: call.id,
              name: call.name,
              content: result.record.output,
              ...(result.record.images ? { images: result.record.images } : {}),
              ...(result.record.isError ? { isError: true } : {}),
            });
            emit({ type: 'tool-result', episodeId: options.episodeId, turnIndex, result: result.record });
          }
          const turn: TurnRecord = {
            index: turnIndex,
            text: reply.text,
            ...(reply.reasoning ? { reasoning: reply.reasoning } : {}),
            toolCalls: calls,
            toolResults: results,
            ...(reply.finishReason === undefined ? {} : { finishReason: reply.finishReason }),
            ...(reply.stopReason === undefined ? {} : { stopReason: reply.stopReason }),
            ...(reply.usage ? { usage: reply.usage } : {}),
            ...(reply.tokens ? { tokens: reply.tokens } : {}),
            ...(reply.tokenExactUnavailable ? { tokenExactUnavailable: true } : {}),
            ...(reply.costUsd === undefined ? {} : { costUsd: reply.costUsd }),
            rewards: {},
            reward: 0,
            startedAt: turnStarted.toISOString(),
            agentMs,
            toolMs: performance.now() - toolStarted,
          };
          await scoreTurn(turn, turns, turnRewards, deadline);
          turns.push(turn);
          emit({ type: 'turn-end', episodeId: options.episodeId, turn });
          // A cut or refused output ends the agent's part (unless it submitted in that turn):
          // the episode is verified as it stands.
          const submitted = stop && calls.length > 0;
          if (!submitted && (reply.stopReason === 'length' || reply.stopReason === 'context-exceeded')) {
            status = 'truncated';
            truncation = reply.stopReason;
            break;
          }
          if (!submitted && (reply.stopReason === 'refusal' || reply.stopReason === 'content-filter')) {
            status = 'refused';
            refusal = reply.stopReason;
            break;
          }
          if (stop) break;
          costUsd += reply.costUsd ?? 0;
          const limit = limitReached(task, usage, turns.length, costUsd);
          if (limit) throw new LimitReached(limit);
        }
      } catch (error) {
        if (error instanceof LimitReached) {
          status = 'limit';
          limit = error.limit;
        } else if (deadline.aborted && !outer.aborted && !(error instanceof AgentFailure)) {
          status = 'limit';
          limit = 'time';
        } else {
          throw error;
        }
      } finally {
        timer.clear();
      }

      const ended = status === 'completed' ? undefined : { status, limit };
      if (prior.status !== 'completed') ({ status, limit, truncation, refusal } = prior);

      // --- session scores, verification and trajectory rewards -----------------------
      if (!step) {
        // Sessions score first: sealing the sandbox for the verifier stops every process in
        // it, a session's server inside the container included.
        await scoreSessions();
        if (task.verifier && sandbox) {
          emit({ type: 'verify-start', episodeId: options.episodeId });
          verifier = await verifyEpisode(task.verifier, sandbox, {
            ...verifyContext,
            ...(keep ? { keep } : {}),
          });
          const artifacts = keep ? await keepArtifacts(task.artifacts ?? [], sandbox, keep, outer) : [];
          if (keep) verifier = withKeptFiles(verifier, artifacts, keep);
          emit({ type: 'verify-end', episodeId: options.episodeId, result: verifier });
        }
        break;
      }
      if (!sandbox) break;
      // A step: sealed and verified like an episode; then the agent goes on in new shells.
      const stepKeep = keep?.under(`steps/${step.name}`);
      emit({ type: 'verify-start', episodeId: options.episodeId });
      const result = await verifyEpisode(step.verifier, sandbox, {
        ...verifyContext,
        ...(stepKeep ? { keep: stepKeep } : {}),
      });
      const artifacts = stepKeep
        ? await keepArtifacts([...(task.artifacts ?? []), ...step.artifacts], sandbox, stepKeep, outer)
        : [];
      emit({ type: 'verify-end', episodeId: options.episodeId, result });
      const below = minRewardFailure(step, result);
      // Budgets of the whole episode (tokens, cost, model calls) leave nothing for later steps.
      const spent = ended?.limit !== undefined && ended.limit !== 'turns' && ended.limit !== 'time';
      stepResults.push({
        name: step.name,
        outcome: 'verified',
        reward: result.reward,
        turns: { from: phaseStart, to: turns.length },
        messages: { from: messagesStart, to: messages.length },
        ...(ended ? { ended: ended.status } : {}),
        ...(ended?.limit ? { limit: ended.limit } : {}),
        verifier: result,
        ...(stepKeep ? { artifacts } : {}),
        ...(below
          ? { stoppedEpisode: below }
          : spent
            ? { stoppedEpisode: `the episode's ${ended.limit} limit was reached` }
            : {}),
      });
      if (below || spent) break;
      if (phaseIndex < steps.length - 1) await clearVerifierTraces(step.verifier, sandbox, outer);
    }
    if (steps.length > 0) {
      await scoreSessions();
      if (stepResults.length > 0) verifier = aggregateSteps(stepResults, task.steps!.reward, keep);
    }
  } catch (error) {
    if (outer.aborted)
      throw new PaddockError(ERROR_CODES.ABORTED, 'the episode was aborted', { cause: error });
    const agentFault = error instanceof AgentFailure;
    const cause = agentFault ? error.cause : error;
    // A model server that cannot be reached is the infrastructure's fault, not the agent's.
    const unreachable = agentFault && isPaddockError(cause, ERROR_CODES.MODEL_UNREACHABLE);
    status = agentFault && !unreachable ? 'agent-error' : 'infra-error';
    failure = {
      code: isPaddockError(cause) ? cause.code : agentFault ? ERROR_CODES.MODEL_CALL_FAILED : 'UNEXPECTED',
      message: describeError(cause),
      retryable: unreachable || (!agentFault && (!isPaddockError(cause) || cause.retryable)),
    };
    // A sandbox fault: did the agent's own processes end the sandbox, or something outside?
    if (!agentFault && sandbox?.diagnose) {
      const diagnosis = await sandbox.diagnose({ signal: outer });
      if (!diagnosis.running && diagnosis.cause === 'inside') {
        status = 'sandbox-killed';
        failure = { code: ERROR_CODES.SANDBOX_KILLED, message: diagnosis.evidence, retryable: false };
        verifier = undefined;
      } else if (!diagnosis.running) {
        failure = { ...failure, message: `${failure.message} (${diagnosis.evidence})`, retryable: true };
      }
    }
  } finally {
    await Promise.allSettled([...turnRewards.map(({ opened }) => opened.close?.()), agentSession?.close?.()]);
    await Promise.all(sessions.map((session) => session.close()));
    await sandbox?.close();
  }

  const partial: Omit<EpisodeRecord, 'reward'> = {
    runId: options.runId,
    episodeId: options.episodeId,
    taskId: task.id,
    epoch: options.epoch ?? 0,
    seed: options.seed ?? 0,
    attempt,
    agent: agent.name,
    status,
    ...(limit ? { limit } : {}),
    ...(truncation && status === 'truncated' ? { truncation } : {}),
    ...(refusal && status === 'refused' ? { refusal } : {}),
    ...(failure ? { error: failure } : {}),
    previousAttempts: [],
    messages,
    tools: specs,
    turns,
    ...(answer === undefined ? {} : { answer }),
    ...(verifier ? { verifier } : {}),
    usage,
    stats,
    startedAt: startedAt.toISOString(),
    endedAt: now().toISOString(),
    durationMs: performance.now() - started,
  };
  const components: Record<string, RewardComponent> = { ...sessionScores };
  if (verifier) components.verifier = { value: verifier.reward ?? 0, weight: 1 };
  // Each step's reward, shown beside the verifier's aggregate (which alone counts).
  for (const step of verifier?.steps ?? []) {
    components[`step.${step.name}`] = {
      value: step.reward ?? 0,
      weight: 0,
      note: `in verifier (${verifier!.aggregate === 'step-final' ? 'the last step that ran' : 'the mean of the steps that ran'})`,
    };
  }
  // An agent that ended its own sandbox could verify nothing: its verifier component is 0.
  if (status === 'sandbox-killed' && task.verifier) components.verifier = { value: 0, weight: 1 };
  let reward: RewardBreakdown;
  try {
    reward = await scoreEpisode(partial, components, options.rewards ?? {}, { task, signal: outer });
  } catch (error) {
    // A reward function that fails (a judge that never answered) fails the episode, not the run.
    if (outer.aborted)
      throw new PaddockError(ERROR_CODES.ABORTED, 'the episode was aborted', { cause: error });
    partial.status = 'infra-error';
    partial.error = {
      code: isPaddockError(error) ? error.code : 'UNEXPECTED',
      message: `scoring failed: ${describeError(error)}`,
      retryable: !isPaddockError(error) || error.retryable,
    };
    reward = combineRewards(components);
  }
  const episode: EpisodeRecord = { ...partial, reward };
  const assignReturns = options.rewards?.assignReturns;
  if (assignReturns && isAgentOutcome(episode)) {
    const returns = assignReturns(episode);
    episode.turns.forEach((turn, index) => {
      const value = returns[index];
      if (value !== undefined) turn.return = value;
    });
  }
  emit({ type: 'episode-end', episode });
  return episode;
}

/** Scores trajectory rewards (for agent-completed episodes) and measures constraints. */
async function scoreEpisode(
  episode: Omit<EpisodeRecord, 'reward'>,
  components: Record<string, RewardComponent>,
  rewards: EpisodeRewards,
  context: { task: Task; signal: AbortSignal },
): Promise<RewardBreakdown> {
  if (episode.status === 'completed' || episode.status === 'limit') {
    for (const fn of rewards.trajectory ?? []) {
      components[fn.name] = { value: await fn.score({ ...context, episode }), weight: fn.weight };
    }
  }
  const constraints: RewardBreakdown['constraints'] = {};
  for (const fn of rewards.constraints ?? []) {
    constraints[fn.name] = {
      value: fn.measure(episode),
      ...(fn.limit === undefined ? {} : { limit: fn.limit }),
    };
  }
  return combineRewards(components, constraints);
}

/** The budget limit an episode has reached after a turn, if any. */
function limitReached(task: Task, usage: Usage, modelCalls: number, costUsd: number): LimitKind | undefined {
  const { maxTokens, maxModelCalls, maxCostUsd } = task.limits;
  if (maxTokens !== undefined && usage.promptTokens + usage.completionTokens >= maxTokens) return 'tokens';
  if (maxModelCalls !== undefined && modelCalls >= maxModelCalls) return 'model-calls';
  if (maxCostUsd !== undefined && costUsd >= maxCostUsd) return 'cost';
  return undefined;
}

/** Marks a failure of the agent's backend, as opposed to the infrastructure's. */
class AgentFailure extends Error {
  constructor(cause: unknown) {
    super(describeError(cause), { cause });
  }
}

async function callAgent(
  agent: Agent,
  session: AgentSession,
  input: Parameters<AgentSession['act']>[0],
  deadline: AbortSignal,
  outer: AbortSignal,
): Promise<AssistantTurn> {
  try {
    return await session.act(input, { signal: deadline });
  } catch (error) {
    if (outer.aborted) throw error;
    if (deadline.aborted) {
      // The time limit fired while the model was answering: a slow model is the agent's
      // outcome, a server that answers nothing at all is not.
      const probe = await agent.probe?.({ signal: outer });
      if (probe && !probe.ok) {
        throw new AgentFailure(
          new PaddockError(
            ERROR_CODES.MODEL_UNREACHABLE,
            `the time limit passed during a model call, and the model server does not answer: ${probe.detail}`,
            { cause: error, retryable: true },
          ),
        );
      }
      throw error;
    }
    throw new AgentFailure(error);
  }
}

function collectTools(task: Task, sessions: readonly ToolSession[]): Tool[] {
  const tools = builtinTools(task);
  const names = new Set(tools.map((tool) => tool.name));
  for (const session of sessions) {
    for (const tool of session.tools) {
      if (names.has(tool.name)) {
        throw new PaddockError(
          ERROR_CODES.CONFIG_INVALID,
          `task ${task.id}: two tools are named ${tool.name}`,
        );
      }
      names.add(tool.name);
      tools.push(tool);
    }
  }
  return tools;
}

/** Gives every call a unique non-empty id, so that tool results can answer them. */
function normaliseCalls(reply: AssistantTurn, turnIndex: number): ToolCall[] {
  const seen = new Set<string>();
  return reply.toolCalls.map((call, index) => {
    let id = call.id;
    if (!id || seen.has(id)) id = `call_${turnIndex}_${index}`;
    seen.add(id);
    return id === call.id ? call : { ...call, id };
  });
}

async function executeCall(
  call: ToolCall,
  tools: readonly Tool[],
  context: Parameters<Tool['execute']>[1],
  outer: AbortSignal,
): Promise<{ output: ToolOutput; record: ToolResultRecord }> {
  const started = performance.now();
  const finish = (output: ToolOutput, problem?: ToolResultRecord['problem']) => ({
    output,
    record: {
      callId: call.id,
      name: call.name,
      output: output.text,
      ...(output.images ? { images: output.images } : {}),
      isError: output.isError ?? false,
      ...(problem ? { problem } : {}),
      durationMs: performance.now() - started,
    },
  });
  const tool = tools.find((candidate) => candidate.name === call.name);
  if (!tool) {
    const known = tools.map((candidate) => candidate.name).join(', ');
    return finish(
      { text: `Unknown tool "${call.name}". Available tools: ${known}.`, isError: true },
      'unknown-tool',
    );
  }
  let args: unknown;
  try {
    args = call.arguments.trim() === '' ? {} : JSON.parse(call.arguments);
  } catch (error) {
    return finish(
      { text: `The arguments of ${call.name} are not valid JSON: ${describeError(error)}`, isError: true },
      'invalid-json',
    );
  }
  try {
    const output = await tool.execute(args, context);
    const problem = output.invalidArguments ? 'invalid-arguments' : output.isError ? 'tool-error' : undefined;
    return finish(output, problem);
  } catch (error) {
    // Aborts and infrastructure faults end the episode; a plain error of the tool is the agent's observation.
    if (context.signal.aborted || outer.aborted || isPaddockError(error)) throw error;
    return finish({ text: `${call.name} failed: ${describeError(error)}`, isError: true }, 'tool-error');
  }
}

/** The task as the agent sees it during `step`: the step's instruction, solution and limits. */
function stepTask(task: Task, step: TaskStep): Task {
  const { solution: _taskSolution, ...rest } = task;
  return {
    ...rest,
    instruction: step.instruction,
    verifier: step.verifier,
    ...(step.solution ? { solution: step.solution } : {}),
    limits: { ...task.limits, timeoutMs: step.timeoutMs },
  };
}

/**
 * Before a step's agent starts: its `workdir` files are copied into the sandbox's working
 * directory (owned by the sandbox's user), its setup script runs there as that user, and
 * its healthcheck must pass (Harbor's `_prepare_step`). Returns why the step failed, or
 * undefined. Throws what the sandbox throws (it no longer runs), ABORTED.
 */
async function prepareStep(
  step: TaskStep,
  sandbox: Sandbox,
  signal: AbortSignal,
): Promise<{ outcome: 'setup-failed' | 'healthcheck-failed'; error: string } | undefined> {
  if (step.workdir) await sandbox.upload(step.workdir, sandbox.workdir, { signal });
  if (step.setup) {
    const setup = await sandbox.exec(step.setup, { timeoutMs: step.timeoutMs, signal });
    if (setup.exitCode !== 0) {
      return {
        outcome: 'setup-failed',
        error: `${step.setup} exited with ${setup.exitCode}${setup.timedOut ? ' (timed out)' : ''}: ${setup.stderr.trim().slice(-500)}`,
      };
    }
  }
  const check = step.healthcheck;
  if (!check) return undefined;
  const started = performance.now();
  let failures = 0;
  let last = '';
  for (;;) {
    const run = await sandbox.exec(check.command, { timeoutMs: check.timeoutMs, signal });
    if (run.exitCode === 0) return undefined;
    last = `exit ${run.exitCode}${run.timedOut ? ' (timed out)' : ''}: ${`${run.stdout}${run.stderr}`.trim().slice(-300)}`;
    // Failures in the start period do not count (Docker's HEALTHCHECK semantics).
    if (performance.now() - started >= check.startPeriodMs) failures++;
    if (failures >= Math.max(1, check.retries)) {
      return {
        outcome: 'healthcheck-failed',
        error: `healthcheck "${check.command}" failed ${failures} times; last: ${last}`,
      };
    }
    await sleep(check.intervalMs, signal);
  }
}

/** Waits `ms`, or rejects with ABORTED when `signal` aborts first. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new PaddockError(ERROR_CODES.ABORTED, 'aborted'));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new PaddockError(ERROR_CODES.ABORTED, 'aborted'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Copies the task's (and a step's) artifacts out of the sealed sandbox. */
async function keepArtifacts(
  artifacts: NonNullable<Task['artifacts']>,
  sandbox: Sandbox,
  keep: KeepFiles,
  signal: AbortSignal,
): Promise<KeptFile[]> {
  const kept: KeptFile[] = [];
  for (const artifact of artifacts) {
    const into = `artifacts/${artifact.destination ?? artifact.source.replace(/^\/+/, '')}`;
    kept.push(...(await keep.keep(sandbox, artifact.source, into.replace(/\/+$/, ''), signal)));
  }
  return kept;
}

/** The verifier's result with the artifacts and the episode's notes on what was not kept. */
function withKeptFiles(result: VerifierResult, artifacts: KeptFile[], keep: KeepFiles): VerifierResult {
  return {
    ...result,
    files: [...(result.files ?? []), ...artifacts],
    ...(keep.notes.length > 0 ? { filesNotes: [...keep.notes] } : {}),
  };
}

/**
 * Why a step's result stops the episode under its `minReward` (Harbor's
 * `_min_reward_failure`: a number gates `reward`, a record each named score; a missing
 * score or result counts as -∞), or undefined.
 */
export function minRewardFailure(step: TaskStep, result: VerifierResult): string | undefined {
  if (step.minReward === undefined) return undefined;
  const gates = typeof step.minReward === 'number' ? { reward: step.minReward } : step.minReward;
  const scores: Record<string, number> = { ...result.scores };
  if (result.reward !== null && scores.reward === undefined && typeof step.minReward === 'number')
    scores.reward = result.reward;
  if (result.reward === null) for (const key of Object.keys(scores)) delete scores[key];
  for (const [key, threshold] of Object.entries(gates)) {
    const actual = scores[key] ?? -Infinity;
    if (actual < threshold) return `${key}=${actual} is below the step's min_reward ${threshold}`;
  }
  return undefined;
}

/**
 * The episode's verifier result from its steps' (Harbor's `_select_multi_step_reward`):
 * `mean`: per score key, the mean over the steps that ran (a key a step lacks counts 0),
 * and the reward the mean of the steps' rewards; `final`: the last step that ran. Unlike
 * Harbor, a step that ran but has no reward (its verifier failed, its setup or
 * healthcheck failed) counts 0 rather than leaving the mean: making a later step's
 * verifier fail can never raise the score. The other fields are the last verified step's.
 */
export function aggregateSteps(
  steps: readonly StepResult[],
  rule: 'mean' | 'final',
  keep?: KeepFiles,
): VerifierResult {
  const lastVerified = [...steps].reverse().find((step) => step.verifier)?.verifier;
  const base: VerifierResult = lastVerified ?? {
    reward: null,
    scores: {},
    exitCode: -1,
    stdout: '',
    stderr: '',
    timedOut: false,
    durationMs: 0,
    warnings: [],
  };
  const counted = rule === 'final' ? steps.slice(-1) : steps;
  const keys = new Set(counted.flatMap((step) => Object.keys(step.verifier?.scores ?? {})));
  const scores: Record<string, number> = {};
  for (const key of keys) {
    scores[key] =
      counted.reduce((sum, step) => sum + (step.reward === null ? 0 : (step.verifier?.scores[key] ?? 0)), 0) /
      counted.length;
  }
  const reward = counted.reduce((sum, step) => sum + (step.reward ?? 0), 0) / counted.length;
  const files = steps.flatMap((step) => [...(step.verifier?.files ?? []), ...(step.artifacts ?? [])]);
  const { error: _error, ...rest } = base;
  return {
    ...rest,
    reward,
    scores: { ...scores, reward },
    aggregate: rule === 'final' ? 'step-final' : 'step-mean',
    steps: [...steps],
    durationMs: steps.reduce((sum, step) => sum + (step.verifier?.durationMs ?? 0), 0),
    warnings: steps.flatMap((step) => [
      ...(step.verifier?.error ? [`step ${step.name}: ${step.verifier.error} (counted 0)`] : []),
      ...(step.error ? [`step ${step.name}: ${step.error} (counted 0)`] : []),
    ]),
    ...(keep ? { files } : {}),
    ...(keep && keep.notes.length > 0 ? { filesNotes: [...keep.notes] } : {}),
  };
}
