// The native forward convolution against XNNPACK's, alternating in one process at cnn-ref's layer
// sizes (batch 64), with the largest difference of their outputs:
//   FILMGENRE_WASM_THREADS=1 npx tsx apps/trainer/src/bench/conv-forward-ab.ts  [FILMGENRE_WASM_SIMD=simd128|relaxed]
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '@filmgenre/tf-runtime';
const xnn = tf.getKernel('Conv2D', 'wasm')!.kernelFunc;
async function main() {
  await initBackend('wasm');
  const backend = tf.backend();
  const out: string[] = [];
  for (const [size, cin, cout] of [[64, 3, 32], [64, 32, 32], [32, 32, 64], [32, 64, 64], [16, 64, 128], [16, 128, 128]]) {
    const x = tf.randomUniform([64, size, size, cin]); const w = tf.randomNormal([3, 3, cin, cout], 0, 0.1);
    const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1 } as unknown as tf.NamedAttrMap;
    const nat = () => tf.engine().runKernel(tf.Conv2D, { x, filter: w }, attrs) as tf.Tensor;
    const ref = () => { const info = xnn({ inputs: { x, filter: w }, attrs, backend }) as tf.TensorInfo; return tf.engine().makeTensorFromTensorInfo(info); };
    const a = nat(), b = ref();
    const diff = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]; tf.dispose([a, b]);
    let tn = 0, tx = 0;
    for (let i = 0; i < 4; i++) {
      let t0 = performance.now(); let r = nat(); r.dataSync(); tn += performance.now() - t0; r.dispose();
      t0 = performance.now(); r = ref(); r.dataSync(); tx += performance.now() - t0; r.dispose();
    }
    const gf = (ms: number) => (2 * 64 * size * size * 9 * cin * cout / (ms / 4) / 1e6).toFixed(1);
    out.push(`${size}x${cin}->${cout}: native ${(tn / 4).toFixed(0)} ms ${gf(tn)} GF/s, xnnpack ${(tx / 4).toFixed(0)} ms ${gf(tx)} GF/s, max diff ${diff!.toExponential(1)}`);
    tf.dispose([x, w]);
  }
  console.log(`threads ${process.env.FILMGENRE_WASM_THREADS}\n` + out.join('\n'));
}
main();
