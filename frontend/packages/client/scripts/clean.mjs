// Empties dist/ so that a build holds only what the sources build to today.
import { rm } from 'node:fs/promises';

await rm(new URL('../dist/', import.meta.url), { recursive: true, force: true });
