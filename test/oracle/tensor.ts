// The plain tensor shape the oracle and the test helpers exchange: a row-major
// float32 array and its shape. Deliberately tiny so tests need no runtime import.
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function hostTensor(shape: number[], data: Float32Array | number[]): HostTensor {
  const arr = data instanceof Float32Array ? data : Float32Array.from(data);
  if (arr.length !== numel(shape)) {
    throw new Error(`tensor of shape [${shape.join(', ')}] needs ${numel(shape)} values, got ${arr.length}`);
  }
  return { shape, data: arr };
}
