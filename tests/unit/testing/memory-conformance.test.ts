/** The in-memory sandbox of `paddock/testing` passes the sandbox conformance suite. */
import { describeSandboxConformance, MemorySandboxProvider } from '../../../testing/index.ts';

describeSandboxConformance('memory', () => new MemorySandboxProvider(), {
  timeoutMs: 10_000,
  slackMs: 1_000,
});
