// Plays the forger for tools/faults/rerun-fault-table.sh: after the caller edited a model directory's
// files or metadata, records their current sha256 and the metadata's field checksums, so that only
// the deeper checks (finite weights, warm-up, input sizes, the fusion's pins) can refuse it.
//   npx tsx tools/faults/reseal-model-dir.ts <model dir>…
import { resealModelDir } from '@filmgenre/model-artifact/testing';

for (const dir of process.argv.slice(2)) resealModelDir(dir);
