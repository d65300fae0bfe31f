/**
 * Loaded before every test file (`node --import`, see package.json): every block of WebAssembly
 * linear memory the tests make has a canary after it, checked when the block is freed
 * (LinearMemory.guardBlocks, src/kernels/KERNELS.md "Memory and growth"), so a kernel or a caller
 * that writes past its block fails the test that did it instead of corrupting the next block.
 */
import { LinearMemory } from '../../src/kernels/memory.js';

LinearMemory.guardBlocks = true;
