import { parentPort } from 'node:worker_threads';
import { runLoad, type LoadPlan } from './load.js';

parentPort!.once('message', async (plan: LoadPlan) => {
  try {
    const result = await runLoad(plan);
    parentPort!.postMessage({ ok: true, result }, [result.fromSend.buffer as ArrayBuffer, result.fromDue.buffer as ArrayBuffer]);
  } catch (error) {
    parentPort!.postMessage({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  }
});
