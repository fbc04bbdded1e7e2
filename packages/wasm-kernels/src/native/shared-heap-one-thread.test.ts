import { describeSharedHeap } from './shared-heap.suite.js';

// One thread with `sharedMemory` (what training asks for): the threaded build all the same, so the
// kernels still work in place on tfjs's heap.
describeSharedHeap(1);
