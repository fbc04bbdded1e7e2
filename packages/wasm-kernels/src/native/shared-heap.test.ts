import { describeSharedHeap } from './shared-heap.suite.js';

// Two threads: tfjs's threaded build, as on any machine with two or more cores.
describeSharedHeap(2);
