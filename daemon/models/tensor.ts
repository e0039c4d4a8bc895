/**
 * Tensor arithmetic the backends and the runtime share. Its own module so the backends never
 * import runtime.ts, which loads them: that circle was hidden by runtime's dynamic import.
 */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}
