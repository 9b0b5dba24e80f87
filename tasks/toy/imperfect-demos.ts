/**
 * Writes `imperfect-demos.jsonl`: the demonstrations of a teacher that is wrong more often
 * than right. It starts from the oracle's demonstrations (the `demos.jsonl` that
 * `paddock train tasks/toy/train.yaml` records: lookup → calc → submit) and, in 3 of every
 * 5, forgets the calc step: after the lookup it submits the number it looked up.
 *
 *   npx tsx tasks/toy/imperfect-demos.ts <oracle demos.jsonl> [out=tasks/toy/imperfect-demos.jsonl]
 *
 * `train-imperfect.yaml` warm-starts on these: greedy decoding then mostly copies the
 * teacher's mistake, and only the reward (the submitted answer is right) can teach the
 * policy to do better than its teacher.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface Message {
  role: string;
  content: string | null;
  toolCalls?: { id: string; name: string; arguments: string }[];
  toolCallId?: string;
  name?: string;
}

interface Demonstration {
  messages: Message[];
  tools: unknown[];
}

/** The demonstration with the calc step left out: lookup, then submit the looked-up number. */
function forgetCalc(demo: Demonstration): Demonstration {
  const [user, lookup, looked] = demo.messages;
  const value = looked?.role === 'tool' ? /=\s*(-?\d+)\s*$/.exec(looked.content ?? '')?.[1] : undefined;
  if (!user || !lookup?.toolCalls?.some((call) => call.name === 'lookup') || value === undefined)
    throw new Error('expected an oracle demonstration that starts with a lookup and its result');
  const id = 'oracle_1_0';
  return {
    ...demo,
    messages: [
      user,
      lookup,
      looked!,
      {
        role: 'assistant',
        content: null,
        toolCalls: [{ id, name: 'submit', arguments: JSON.stringify({ answer: value }) }],
      },
      { role: 'tool', toolCallId: id, name: 'submit', content: 'Submitted.' },
    ],
  };
}

const [source, out = join(import.meta.dirname, 'imperfect-demos.jsonl')] = process.argv.slice(2);
if (!source) {
  console.error('usage: npx tsx tasks/toy/imperfect-demos.ts <oracle demos.jsonl> [out]');
  process.exit(2);
}
const demos = readFileSync(source, 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line) as Demonstration);
const taught = demos.map((demo, index) => (index % 5 < 3 ? forgetCalc(demo) : demo));
writeFileSync(out, taught.map((demo) => `${JSON.stringify(demo)}\n`).join(''));
console.log(
  `wrote ${out}: ${taught.length} demonstrations, ${taught.filter((_, i) => i % 5 < 3).length} without the calc step`,
);
