/**
 * Compiles tools/mongo-java-server/*.java (the Launcher and the planner fix beside it) once
 * per source content, into `build/<hash>/` there, and returns that class directory.
 * Concurrent starters (test workers, child processes) each compile into a private
 * directory and rename it into place, so a half-written directory is never used.
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../logger.js';

export async function compileLauncher(toolDir: string, classpath: string, logger: Logger): Promise<string> {
  const sources = readdirSync(toolDir)
    .filter((name) => name.endsWith('.java'))
    .sort();
  const hash = createHash('sha256');
  for (const name of sources)
    hash
      .update(name)
      .update('\0')
      .update(readFileSync(join(toolDir, name)));
  const classesDir = join(toolDir, 'build', hash.digest('hex').slice(0, 16));
  if (existsSync(join(classesDir, 'Launcher.class'))) return classesDir;

  const staging = join(toolDir, 'build', `.staging-${process.pid}-${randomUUID()}`);
  await mkdir(staging, { recursive: true });
  logger.info({ toolDir }, 'mongo-java-server: compiling the launcher (once per source change)');
  try {
    await new Promise<void>((resolve, reject) => {
      const args = ['-nowarn', '-cp', classpath, '-d', staging, ...sources.map((name) => join(toolDir, name))];
      execFile(jdkExecutable('javac'), args, { cwd: toolDir, maxBuffer: 4 << 20 }, (error, _stdout, stderr) => {
        if (error) reject(new Error(`mongo-java-server: javac failed (is a JDK >= 17 installed?): ${error.message}\n${stderr}`));
        else resolve();
      });
    });
    await rename(staging, classesDir).catch((error: NodeJS.ErrnoException) => {
      // Another starter won the race with the same sources: use its directory.
      if (!existsSync(join(classesDir, 'Launcher.class'))) throw error;
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return classesDir;
}

/** A JDK tool (`java`, `javac`): JAVA_HOME's when it has one, else the one on PATH. */
export function jdkExecutable(tool: 'java' | 'javac'): string {
  const home = process.env.JAVA_HOME;
  if (home) {
    const candidate = join(home, 'bin', process.platform === 'win32' ? `${tool}.exe` : tool);
    if (existsSync(candidate)) return candidate;
  }
  return tool;
}
