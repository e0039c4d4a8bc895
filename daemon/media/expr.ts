/**
 * ffmpeg's expression parser nests one level per function call and gives up at 100 levels
 * (libavutil/eval.c), and a flat chain of one `if` per shot hit that at ~49 shots. A lecture
 * with a slide a minute has 60 shots an hour; a classroom camera, hundreds. So per-shot choices
 * are a balanced binary tree of `if(lt(t,cut),left,right)`: depth grows with log2(shots), and
 * each frame evaluates one path (ffmpeg's `if` evaluates only the branch it takes).
 * `starts` are ascending; a time before the first start takes the first leaf.
 */
const EPS = 1e-4;
export function shotTree(starts: readonly number[], leaf: (i: number) => string, lo = 0, hi = starts.length - 1): string {
  if (lo >= hi) return leaf(lo);
  const mid = (lo + hi + 1) >> 1;
  return `if(lt(t,${(starts[mid]! - EPS).toFixed(4)}),${shotTree(starts, leaf, lo, mid - 1)},${shotTree(starts, leaf, mid, hi)})`;
}
