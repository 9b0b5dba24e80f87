/** `paddock view`'s transcript of one episode: the reward breakdown with its components' notes. */
import { describe, expect, it } from 'vitest';
import { renderEpisode } from '../../../cli/view.ts';
import type { EpisodeRecord } from '../../../harness/index.ts';

describe('renderEpisode', () => {
  it('shows each component and, under the reward line, why a component scored what it did', () => {
    const episode = {
      episodeId: 'calc#0',
      taskId: 'calc',
      agent: 'oracle',
      attempt: 1,
      status: 'completed',
      messages: [],
      turns: [],
      reward: {
        total: 0.5,
        components: {
          'mcp:ledger': { value: 0, weight: 1, note: '$.records.tax selected nothing' },
          verifier: { value: 1, weight: 1 },
        },
        constraints: {},
      },
    } as unknown as EpisodeRecord;
    const lines = renderEpisode(episode).split('\n');
    expect(lines[2]).toBe('reward 0.500  mcp:ledger=0×1 verifier=1×1');
    expect(lines[3]).toBe('  mcp:ledger: $.records.tax selected nothing');
  });
});
