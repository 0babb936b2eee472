import type { TestProject } from 'vitest/node';
import { resolveDatabase } from '../../src/dev/embedded-db.js';
import { createLogger } from '../../src/logger.js';

declare module 'vitest' {
  export interface ProvidedContext {
    mongoUri: string;
    mongoEngine: string;
  }
}

/**
 * One database server for the whole run, resolved exactly as `npm start` resolves it:
 * MONGODB_URI if set, else mongodb-memory-server if its binary is at hand, else
 * mongo-java-server. Each test file then works in a database of its own.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const logger = createLogger(process.env.LOG_LEVEL ?? 'error');
  const database = await resolveDatabase({ uri: process.env.MONGODB_URI, logger });
  project.provide('mongoUri', database.uri);
  project.provide('mongoEngine', database.engine);
  return () => database.stop();
}
