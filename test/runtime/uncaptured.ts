// Child process for device.test.ts: a WebGPU validation error nobody captures.
import { getDevice } from '../../runtime/device.ts';

const { device } = await getDevice();
// MAP_READ may only be combined with COPY_DST: this is a validation error.
device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
await device.queue.onSubmittedWorkDone();
await new Promise((r) => setTimeout(r, 200));
console.log('still running');
