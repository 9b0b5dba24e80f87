/**
 * The loopback training engine as a server process, as `rollout.server.command` starts one:
 *
 *   node --import tsx training-engine-main.ts <vllm|sglang> <model folder> <port>
 *
 * It answers the toy suite with its oracle's calls (`toyReply`) and runs until SIGTERM.
 */
import { startTrainingEngine, toyReply } from './training-engine.ts';

const [flavour, modelDir, port] = process.argv.slice(2);
if ((flavour !== 'vllm' && flavour !== 'sglang') || !modelDir || !port) {
  process.stderr.write('usage: training-engine-main.ts <vllm|sglang> <model folder> <port>\n');
  process.exit(2);
}
const engine = await startTrainingEngine({ flavour, modelDir, reply: toyReply, port: Number(port) });
process.stdout.write(`serving ${modelDir} at ${engine.url}\n`);
process.once('SIGTERM', () => {
  void engine.close().then(() => process.exit(0));
});
