import { expect } from "chai";
import path from "path";
import hre from "hardhat";
import {
  COURT_LAYOUT,
  compareLayouts,
  readNamespaceLayout,
  readSnapshot,
  type LayoutMember,
  type LayoutType,
  type NamespaceLayout,
} from "../fixtures/storageLayout";

/**
 * The court's namespace struct `JuryLogic.Court` is declared in a library, so the upgrades plugin
 * does not validate it (review finding F4). Here the compiler's layout of it (through
 * `CourtStorageLayoutHarness`) must be an append-only extension of the committed snapshot
 * `test/upgrade/layouts/EvaluatorStaking.json`; `npm run layout:snapshot` rewrites the snapshot
 * once an upgrade is accepted.
 */

const snapshotFile = path.relative(process.cwd(), COURT_LAYOUT.snapshot);
const copy = <T>(value: T): T => JSON.parse(JSON.stringify(value));

/** The member at `where`, e.g. `rounds[][].fee`: `.` goes into a struct, `[]` into a mapping value or array element. */
function at(layout: NamespaceLayout, where: string): LayoutMember {
  let type: LayoutType = { type: layout.struct, encoding: "inplace", bytes: layout.bytes, members: layout.members };
  for (const part of where.split(".")) {
    const [label, ...inner] = part.split("[]");
    const member = type.members?.find((m) => m.label === label);
    if (member === undefined) throw new Error(`no member ${label} in ${where}`);
    type = member;
    for (let i = 0; i < inner.length; i++) type = type.value ?? type.base!;
  }
  return type as LayoutMember;
}

describe("EvaluatorStaking storage layout (JuryLogic.Court, review F4)", function () {
  let snapshot: NamespaceLayout;
  let current: NamespaceLayout;

  before(async function () {
    snapshot = readSnapshot(COURT_LAYOUT.snapshot);
    current = await readNamespaceLayout(hre, COURT_LAYOUT.harness, COURT_LAYOUT.variable);
  });

  it("the harness holds the struct at erc7201:agentmarket.storage.EvaluatorStaking", async function () {
    expect(current.namespace).to.equal("erc7201:agentmarket.storage.EvaluatorStaking");
    expect(current.struct).to.equal("struct JuryLogic.Court");
    expect(at(current, "registry")).to.include({ slot: 0, offset: 0, type: "contract IAgentRegistry" });
    expect(at(current, "treasury")).to.include({ slot: 4, offset: 0, type: "address" });
  });

  it(`is an append-only extension of the snapshot (${snapshotFile})`, async function () {
    const errors = compareLayouts(snapshot, current);
    expect(errors, `not append-only against ${snapshotFile}:\n  ${errors.join("\n  ")}\n`).to.deep.equal([]);
  });

  describe("the comparison", function () {
    it("accepts the snapshot itself", async function () {
      expect(compareLayouts(snapshot, copy(snapshot))).to.deep.equal([]);
    });

    it("catches a reordered member", async function () {
      // `uint48 epoch; uint48 phaseSince;` instead of `uint48 phaseSince; uint48 epoch;`
      const after = copy(snapshot);
      at(after, "phaseSince").offset = 7;
      at(after, "epoch").offset = 1;
      expect(compareLayouts(snapshot, after)).to.deep.equal([
        "JuryLogic.Court.phaseSince: moved from slot 8, offset 1 to slot 8, offset 7",
        "JuryLogic.Court.epoch: moved from slot 8, offset 7 to slot 8, offset 1",
      ]);
    });

    it("catches a retyped member, and one whose mapping value was retyped", async function () {
      const after = copy(snapshot);
      at(after, "caseCount").type = "uint128";
      at(after, "held").type = "mapping(address => uint128)";
      expect(compareLayouts(snapshot, after)).to.deep.equal([
        "JuryLogic.Court.caseCount: type changed from uint256 to uint128",
        "JuryLogic.Court.held: type changed from mapping(address => uint256) to mapping(address => uint128)",
      ]);
    });

    it("catches a removed member", async function () {
      const after = copy(snapshot);
      after.members = after.members.filter((m) => m.label !== "treasury");
      expect(compareLayouts(snapshot, after)).to.deep.equal([
        "JuryLogic.Court.treasury: removed (was address at slot 4, offset 0)",
      ]);
    });

    it("catches a changed member of a nested struct: in place, in a mapping value, in an array element", async function () {
      const after = copy(snapshot);
      at(after, "params.jurySize").type = "uint16";
      at(after, "rounds[][].fee").type = "uint128";
      at(after, "cases[].status").offset = 21;
      at(after, "votes[][][].revealed").slot = 2;
      expect(compareLayouts(snapshot, after)).to.deep.equal([
        "JuryLogic.Court.params.jurySize: type changed from uint8 to uint16",
        "JuryLogic.Court.cases[].status: moved from slot 0, offset 20 to slot 0, offset 21",
        "JuryLogic.Court.rounds[][].fee: type changed from uint96 to uint128",
        "JuryLogic.Court.votes[][][].revealed: moved from slot 1, offset 13 to slot 2, offset 13",
      ]);
      const element = copy(snapshot);
      at(element, "rounds[][].stakeByChoice").base!.type = "uint128";
      expect(compareLayouts(snapshot, element)).to.deep.equal([
        "JuryLogic.Court.rounds[][].stakeByChoice[]: type changed from uint96 to uint128",
      ]);
    });

    it("catches a member inserted before the last one, and a struct kept in place that grew", async function () {
      const inserted = copy(snapshot);
      // `uint64 casesThisEpoch; uint64 newCounter; uint256 requestId;`: the slot's free half.
      inserted.members.push({
        label: "newCounter",
        slot: 9,
        offset: 16,
        type: "uint64",
        encoding: "inplace",
        bytes: 8,
      });
      expect(compareLayouts(snapshot, inserted)).to.deep.equal([
        "JuryLogic.Court.newCounter: new member at slot 9, offset 16, not after the last member held (slot 21, offset 0)",
      ]);
      const grown = copy(snapshot);
      const timing = at(grown, "timing");
      timing.members!.push({ label: "extra", slot: 1, offset: 0, type: "uint256", encoding: "inplace", bytes: 32 });
      timing.bytes = 64;
      expect(compareLayouts(snapshot, grown)).to.deep.equal([
        "JuryLogic.Court.timing: size changed from 32 to 64 bytes",
      ]);
    });

    it("accepts members appended to the namespace, to a mapping value, or in a struct's free bytes", async function () {
      const after = copy(snapshot);
      after.members.push({ label: "appended", slot: 22, offset: 0, type: "uint256", encoding: "inplace", bytes: 32 });
      after.bytes += 32;
      const round = at(after, "rounds[][]");
      round.members!.push({ label: "appended", slot: 6, offset: 0, type: "address", encoding: "inplace", bytes: 20 });
      round.bytes += 32;
      at(after, "params").members!.push({
        label: "appended",
        slot: 1,
        offset: 4,
        type: "uint8",
        encoding: "inplace",
        bytes: 1,
      });
      expect(compareLayouts(snapshot, after)).to.deep.equal([]);
    });
  });
});
