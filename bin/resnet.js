#!/usr/bin/env node
// Entry point of the `resnet` command; the CLI itself is src/cli/main.ts (compiled to dist/).
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
