// Build the example module: bundle app.js with the SDK (plugins/sdk-js) into
// one ES module with esbuild, then make a component of it with
// componentize-js for the world mcpist:plugin/plugin@0.1.0.
//
//   node build.mjs OUT.wasm
//
// `fetch` needs the `http` feature (wasi:http); the `fetch-event` export
// (an incoming-handler) is not part of the world, so it is disabled.
import { componentize } from '@bytecodealliance/componentize-js';
import { build } from 'esbuild';
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error('usage: node build.mjs OUT.wasm');
  process.exit(2);
}

const bundled = await build({
  entryPoints: [resolve(here, 'app.js')],
  bundle: true,
  format: 'esm',
  write: false,
  // The world's imports are provided by the component model, not bundled.
  external: ['mcpist:*', 'wasi:*'],
  alias: { 'mcpist-plugin': resolve(here, '../../sdk-js/index.js') },
  // No absolute paths of this machine in the component.
  absWorkingDir: here,
  legalComments: 'none',
});

const { component } = await componentize(bundled.outputFiles[0].text, {
  sourceName: 'app.js',
  witPath: resolve(here, '../../../wit/deps/mcpist-plugin-0.1.0'),
  worldName: 'mcpist:plugin/plugin',
  disableFeatures: ['fetch-event'],
});
await writeFile(out, component);
