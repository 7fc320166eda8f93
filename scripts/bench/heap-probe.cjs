// Bench-only preload (`node --expose-gc -r ./scripts/bench/heap-probe.cjs <entry>`): on SIGUSR2 the
// process collects garbage and writes its JS heap in use to HEAP_PROBE_FILE. Never loaded in service.
const { writeFileSync } = require('node:fs');

process.on('SIGUSR2', () => {
  for (let round = 0; round < 3; round++) global.gc();
  writeFileSync(process.env.HEAP_PROBE_FILE, String(process.memoryUsage().heapUsed));
});
