// The benchmark: runs the same scenarios against the Node reference stack and
// taskwire, prints one table with both and the ratios, and writes the results and
// the machine notes to RESULTS.md (or --out) and the raw numbers to out/.
//
//   node main.mjs --bin <dir> [--smoke] [--runs N] [--only a,b] [--stacks node,taskwire]
//                 [--pprof 127.0.0.1:6060] [--profile DIR] [--taskwire-env K=V] [--out FILE] [--no-write]
//
// bench/run builds the binaries and calls this; see README.md.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { configure, scenarios, SIZES } from './lib/scenarios.mjs';
import { machineNotes } from './lib/sys.mjs';
import { renderMarkdown, renderTable, summarize, smokeProblems } from './lib/report.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(benchDir, '..');

function parseArgs(argv) {
  const o = { smoke: false, runs: 0, only: null, stacks: ['node', 'taskwire'], bin: '', pprof: '', out: '', write: true, taskwireEnv: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--smoke': o.smoke = true; break;
      case '--runs': o.runs = Number(val()); break;
      case '--only': o.only = val().split(',').filter(Boolean); break;
      case '--stacks': o.stacks = val().split(',').filter(Boolean); break;
      case '--bin': o.bin = val(); break;
      case '--pprof': o.pprof = val(); break;
      case '--profile': o.profile = val(); break;
      case '--taskwire-env': {
        const [k, ...v] = val().split('=');
        o.taskwireEnv[k] = v.join('=');
        break;
      }
      case '--out': o.out = val(); break;
      case '--no-write': o.write = false; break;
      case '-h': case '--help':
        console.log(fs.readFileSync(path.join(benchDir, 'README.md'), 'utf8'));
        process.exit(0);
        break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!o.runs) o.runs = o.smoke ? 1 : 3;
  for (const s of o.stacks) if (s !== 'node' && s !== 'taskwire') throw new Error(`unknown stack ${s}`);
  for (const s of o.only ?? []) if (!(s in scenarios)) throw new Error(`unknown scenario ${s} (have ${Object.keys(scenarios).join(', ')})`);
  if (o.profile && !o.pprof) o.pprof = '127.0.0.1:6061';
  if (!o.bin) throw new Error('--bin <dir with taskwire-server, taskwire-worker, gofeed> is required (bench/run passes it)');
  return o;
}

const log = (...a) => console.error('[bench]', ...a);

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  configure({
    binDir: path.resolve(opts.bin),
    pprofAddr: opts.pprof,
    profileDir: opts.profile ? path.resolve(opts.profile) : '',
    taskwireEnv: opts.taskwireEnv,
    settleMs: opts.smoke ? 500 : 5_000,
    idleCpuMs: opts.smoke ? 1_000 : 5_000,
  });
  const sizes = opts.smoke ? SIZES.smoke : SIZES.full;
  const names = opts.only ?? Object.keys(scenarios);
  const notes = machineNotes(repoRoot);
  const raw = { mode: opts.smoke ? 'smoke' : 'full', runs: opts.runs, notes, sizes, results: {} };

  for (const name of names) {
    raw.results[name] = {};
    for (let run = 1; run <= opts.runs; run++) {
      // Alternate which stack goes first, so neither always runs on a warmer machine.
      const order = run % 2 === 1 ? opts.stacks : [...opts.stacks].reverse();
      for (const kind of order) {
        const t0 = performance.now();
        let r;
        try {
          r = await scenarios[name](kind, sizes[name]);
        } catch (err) {
          r = { error: String(err.stack ?? err) };
        }
        if (r === null) continue; // not applicable to this stack
        (raw.results[name][kind] ??= []).push(r);
        const secs = ((performance.now() - t0) / 1000).toFixed(1);
        log(`${name} ${kind} run ${run}/${opts.runs} (${secs} s): ${JSON.stringify(r)}`);
      }
    }
  }

  const summary = summarize(raw);
  console.log(renderTable(summary));
  const outDir = path.join(benchDir, 'out');
  fs.mkdirSync(outDir, { recursive: true });
  const stamp = notes.date.replace(/[:.]/g, '-');
  fs.writeFileSync(path.join(outDir, `results-${raw.mode}-${stamp}.json`), `${JSON.stringify(raw, null, 2)}\n`);
  if (opts.write && !opts.smoke) {
    const file = opts.out || path.join(benchDir, 'RESULTS.md');
    fs.writeFileSync(file, renderMarkdown(raw, summary));
    log(`wrote ${path.relative(process.cwd(), file)}`);
  }
  const problems = smokeProblems(raw);
  if (problems.length) {
    for (const p of problems) log(`problem: ${p}`);
    process.exitCode = 1;
  }
}

main().then(() => process.exit(process.exitCode ?? 0), (err) => {
  console.error(`bench: ${err.stack ?? err}`);
  process.exit(2);
});
