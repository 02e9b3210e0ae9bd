import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { SortitionTreeHarness } from "../../typechain-types";

/** 8-ary tree of depth 5: 8^5 leaves. */
const LEAVES = 32_768n;
/** Largest weight of one 32-bit lane (a leaf or a subtree sum). */
const LANE = 2n ** 32n - 1n;
/** Leaves under one root lane (8^4). */
const ROOT_SPAN = 4_096n;
/** First leaf of each eighth of the tree (each under its own root lane). */
const EIGHTHS = Array.from({ length: 8 }, (_, i) => BigInt(i) * ROOT_SPAN);

const seed = Number(process.env.FC_SEED ?? 42);
const numRuns = Number(process.env.FC_RUNS ?? 20);

async function deployHarness() {
  const tree = await (await ethers.getContractFactory("SortitionTreeHarness")).deploy();
  return { tree };
}

/** Sets the weights, in order. */
async function setAll(tree: SortitionTreeHarness, weights: [bigint, bigint][]) {
  for (const [leaf, weight] of weights) await tree.set(leaf, weight);
}

/**
 * Leaves on both sides of the subtree boundaries: 0 and 7 share a bottom node, 8 opens the next
 * one; 63 and 64 sit under different level-3 lanes (64 leaves each); 32767 is the last leaf, under
 * the last root lane.
 */
const BOUNDARY: [bigint, bigint][] = [
  [0n, 5n],
  [7n, 7n],
  [8n, 11n],
  [63n, 13n],
  [64n, 17n],
  [LEAVES - 1n, 19n],
];

describe("SortitionTree", function () {
  describe("set / total / weightOf", function () {
    it("starts empty", async function () {
      const { tree } = await loadFixture(deployHarness);
      expect(await tree.total()).to.equal(0n);
      expect(await tree.weightOf(0n)).to.equal(0n);
      expect(await tree.weightOf(LEAVES - 1n)).to.equal(0n);
    });

    it("adds weights of leaves in different subtrees (leaves 0, 7, 8, 63, 64, 32767)", async function () {
      const { tree } = await loadFixture(deployHarness);
      await setAll(tree, BOUNDARY);
      expect(await tree.total()).to.equal(72n);
      for (const [leaf, weight] of BOUNDARY) expect(await tree.weightOf(leaf)).to.equal(weight, `leaf ${leaf}`);
      for (const leaf of [1n, 6n, 9n, 62n, 65n, ROOT_SPAN, LEAVES - 2n]) {
        expect(await tree.weightOf(leaf)).to.equal(0n, `leaf ${leaf}`);
      }
    });

    it("updates a weight up and down, and to zero", async function () {
      const { tree } = await loadFixture(deployHarness);
      await setAll(tree, [
        [2n, 10n],
        [700n, 20n],
      ]);
      await tree.set(2n, 25n);
      expect(await tree.weightOf(2n)).to.equal(25n);
      expect(await tree.total()).to.equal(45n);
      await tree.set(2n, 4n);
      expect(await tree.weightOf(2n)).to.equal(4n);
      expect(await tree.total()).to.equal(24n);
      await tree.set(700n, 0n);
      expect(await tree.weightOf(700n)).to.equal(0n);
      expect(await tree.total()).to.equal(4n);
      // Setting the same weight again changes nothing.
      await tree.set(2n, 4n);
      expect(await tree.total()).to.equal(4n);
    });

    it("holds a full lane under each of the eight root lanes (total 8 x (2^32 - 1))", async function () {
      const { tree } = await loadFixture(deployHarness);
      for (const leaf of EIGHTHS) await tree.set(leaf, LANE);
      expect(await tree.total()).to.equal(8n * LANE);
      for (const leaf of EIGHTHS) expect(await tree.weightOf(leaf)).to.equal(LANE);
      expect(await tree.draw(0n)).to.equal(0n);
      expect(await tree.draw(LANE - 1n)).to.equal(0n);
      for (let i = 1; i < 8; i++) {
        expect(await tree.draw(BigInt(i) * LANE - 1n)).to.equal(EIGHTHS[i - 1], `root lane ${i - 1} end`);
        expect(await tree.draw(BigInt(i) * LANE)).to.equal(EIGHTHS[i], `root lane ${i} start`);
      }
      expect(await tree.draw(8n * LANE - 1n)).to.equal(EIGHTHS[7]);
    });

    it("holds a full lane at the last leaf, then frees it", async function () {
      const { tree } = await loadFixture(deployHarness);
      await tree.set(LEAVES - 1n, LANE);
      expect(await tree.total()).to.equal(LANE);
      expect(await tree.weightOf(LEAVES - 1n)).to.equal(LANE);
      expect(await tree.draw(0n)).to.equal(LEAVES - 1n);
      expect(await tree.draw(LANE - 1n)).to.equal(LEAVES - 1n);
      await tree.set(LEAVES - 1n, 0n);
      expect(await tree.total()).to.equal(0n);
      expect(await tree.weightOf(LEAVES - 1n)).to.equal(0n);
    });
  });

  describe("overflow", function () {
    it("reverts SortitionTreeBadLeaf for a leaf outside the tree", async function () {
      const { tree } = await loadFixture(deployHarness);
      await expect(tree.set(LEAVES, 1n)).to.be.revertedWithCustomError(tree, "SortitionTreeBadLeaf").withArgs(LEAVES);
      expect(await tree.total()).to.equal(0n);
    });

    it("reverts SortitionTreeOverflow for a weight above 2^32 - 1", async function () {
      const { tree } = await loadFixture(deployHarness);
      await expect(tree.set(9n, LANE + 1n)).to.be.revertedWithCustomError(tree, "SortitionTreeOverflow");
      await expect(tree.set(LEAVES - 1n, 2n ** 64n)).to.be.revertedWithCustomError(tree, "SortitionTreeOverflow");
      expect(await tree.total()).to.equal(0n);
    });

    it("reverts SortitionTreeOverflow when a parent lane would exceed 2^32 - 1, and keeps the tree", async function () {
      const { tree } = await loadFixture(deployHarness);
      await tree.set(0n, LANE);
      // Leaf 7 shares leaf 0's bottom node; the node's lane one level up overflows.
      await expect(tree.set(7n, 1n)).to.be.revertedWithCustomError(tree, "SortitionTreeOverflow");
      // Leaves 0 and 8 have different bottom nodes whose sums meet one level further up.
      await expect(tree.set(8n, 1n)).to.be.revertedWithCustomError(tree, "SortitionTreeOverflow");
      // Leaf 64 is under another level-3 lane; both meet in the same root lane.
      await expect(tree.set(64n, 1n)).to.be.revertedWithCustomError(tree, "SortitionTreeOverflow");
      // The last leaf of the first root lane: still the same root lane.
      await expect(tree.set(ROOT_SPAN - 1n, 1n)).to.be.revertedWithCustomError(tree, "SortitionTreeOverflow");
      expect(await tree.total()).to.equal(LANE);
      for (const leaf of [7n, 8n, 64n, ROOT_SPAN - 1n]) expect(await tree.weightOf(leaf)).to.equal(0n);
      // Leaf 4096 opens the next root lane: no overflow.
      await tree.set(ROOT_SPAN, 1n);
      expect(await tree.total()).to.equal(LANE + 1n);
      expect(await tree.draw(LANE)).to.equal(ROOT_SPAN);
    });

    it("reverts SortitionTreeOverflow when raising a leaf whose subtree is full, and accepts lowering it", async function () {
      const { tree } = await loadFixture(deployHarness);
      await setAll(tree, [
        [63n, LANE - 10n],
        [64n, 10n],
      ]);
      expect(await tree.total()).to.equal(LANE);
      await expect(tree.set(64n, 11n)).to.be.revertedWithCustomError(tree, "SortitionTreeOverflow");
      await tree.set(63n, LANE - 20n);
      await tree.set(64n, 20n);
      expect(await tree.total()).to.equal(LANE);
      expect(await tree.weightOf(63n)).to.equal(LANE - 20n);
      expect(await tree.weightOf(64n)).to.equal(20n);
    });

    it("accepts 2^32 - 1 split over leaves of one subtree", async function () {
      const { tree } = await loadFixture(deployHarness);
      await tree.set(0n, LANE - 1n);
      await tree.set(7n, 1n);
      expect(await tree.total()).to.equal(LANE);
      expect(await tree.draw(LANE - 2n)).to.equal(0n);
      expect(await tree.draw(LANE - 1n)).to.equal(7n);
    });
  });

  describe("draw", function () {
    it("maps point 0 and the last point of each leaf, across subtrees", async function () {
      const { tree } = await loadFixture(deployHarness);
      // Cumulative ranges: leaf 0 [0,5), leaf 7 [5,12), leaf 8 [12,23), leaf 63 [23,36),
      // leaf 64 [36,53), leaf 32767 [53,72).
      await setAll(tree, BOUNDARY);
      const cases: [bigint, bigint][] = [
        [0n, 0n],
        [4n, 0n],
        [5n, 7n],
        [11n, 7n],
        [12n, 8n],
        [22n, 8n],
        [23n, 63n],
        [35n, 63n],
        [36n, 64n],
        [52n, 64n],
        [53n, LEAVES - 1n],
        [71n, LEAVES - 1n],
      ];
      for (const [point, leaf] of cases) expect(await tree.draw(point)).to.equal(leaf, `point ${point}`);
    });

    it("skips leaves of weight zero (a leaf set back to zero is never drawn)", async function () {
      const { tree } = await loadFixture(deployHarness);
      await setAll(tree, [
        [1n, 3n],
        [2n, 4n],
        [9n, 2n],
      ]);
      await tree.set(2n, 0n);
      expect(await tree.draw(0n)).to.equal(1n);
      expect(await tree.draw(2n)).to.equal(1n);
      expect(await tree.draw(3n)).to.equal(9n);
      expect(await tree.draw(4n)).to.equal(9n);
    });

    it("property: draw(point) is the leaf whose cumulative range contains point", async function () {
      // Leaves anywhere in the tree, biased towards the subtree boundaries.
      const leaf = fc.oneof(
        fc.bigInt({ min: 0n, max: LEAVES - 1n }),
        fc.constantFrom(0n, 7n, 8n, 63n, 64n, 511n, 512n, ROOT_SPAN - 1n, ROOT_SPAN, LEAVES - 1n),
      );
      // Six weights of at most 2^28 never fill a 32-bit lane.
      const weight = fc.bigInt({ min: 1n, max: 2n ** 28n });
      const entries = fc.uniqueArray(fc.tuple(leaf, weight), { minLength: 1, maxLength: 6, selector: (e) => e[0] });
      await fc.assert(
        fc.asyncProperty(
          entries,
          fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 4 }),
          async (weights, fractions) => {
            const { tree } = await loadFixture(deployHarness);
            await setAll(tree, weights);
            const sorted = [...weights].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
            const total = sorted.reduce((s, [, w]) => s + w, 0n);
            expect(await tree.total()).to.equal(total);
            for (const [l, w] of sorted) expect(await tree.weightOf(l)).to.equal(w, `leaf ${l}`);
            // Every leaf's first and last point, plus random points.
            const points: bigint[] = [];
            let start = 0n;
            for (const [, w] of sorted) {
              points.push(start, start + w - 1n);
              start += w;
            }
            for (const x of fractions) points.push(BigInt(Math.floor(x * 1e9)) % total);
            for (const point of points) {
              let cumulative = 0n;
              let expected = -1n;
              for (const [l, w] of sorted) {
                if (point < cumulative + w) {
                  expected = l;
                  break;
                }
                cumulative += w;
              }
              expect(await tree.draw(point)).to.equal(expected, `point ${point}`);
            }
          },
        ),
        { seed, numRuns },
      );
    });
  });
});
