import { expect } from "chai";
import { ethers, ignition, upgrades } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import CourtUpgradeModule from "../../ignition/modules/CourtUpgrade";
import { PARAMETER_ROLE, UPGRADER_ROLE } from "../fixtures/system";
import {
  deployCourt,
  openCase,
  fulfilRandomness,
  drawJury,
  vote,
  revealAll,
  CaseStatus,
  Choice,
  COURT_PARAMS,
  COURT_TIMING,
  OKB,
} from "../fixtures/court";
import { Status } from "../fixtures/escrow";
import { EvaluatorStaking, EvaluatorStakingV2Mock__factory } from "../../typechain-types";

/** ERC-1967 implementation slot: bytes32(uint256(keccak256("eip1967.proxy.implementation")) - 1). */
const IMPLEMENTATION_SLOT = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc";
const UPGRADE_OPTS = { kind: "uups" as const, unsafeAllow: ["external-library-linking" as const] };
const abi = ethers.AbiCoder.defaultAbiCoder();

/** The ERC-7201 formula: keccak256(abi.encode(uint256(keccak256(id)) - 1)) & ~bytes32(uint256(0xff)). */
function erc7201(id: string): bigint {
  const inner = BigInt(ethers.keccak256(ethers.toUtf8Bytes(id))) - 1n;
  return BigInt(ethers.keccak256(abi.encode(["uint256"], [inner]))) & ~0xffn;
}

async function implementationOf(proxy: string): Promise<string> {
  return ethers.getAddress(ethers.dataSlice(await ethers.provider.getStorage(proxy, IMPLEMENTATION_SLOT), 12));
}

async function factories() {
  const juryLogic = await ethers.deployContract("JuryLogic");
  const libraries = { JuryLogic: await juryLogic.getAddress() };
  return {
    v1: await ethers.getContractFactory("EvaluatorStaking", { libraries }),
    v2: await ethers.getContractFactory("EvaluatorStakingV2Mock", { libraries }),
  };
}

/**
 * One of each kind of court state: stakes (one evaluator with an unstake request, one with a
 * cancelled one), a settled first round with rewards and slashes, a case in its commit period
 * with locked jurors and one commitment, changed parameters and timings.
 */
async function populatedCourt() {
  const f = await deployCourt({ evaluators: 6 });
  const settled = await openCase(f);
  await fulfilRandomness(f, 11n);
  const jurors = await drawJury(f, settled.caseId);
  await vote(f, settled.caseId, jurors, [Choice.P75, Choice.P75, Choice.P50]);
  await revealAll(f, settled.caseId, jurors, [Choice.P75, Choice.P75, Choice.P50]);
  await f.court.passPhase();
  await f.court.execute(settled.caseId, 0, 6);

  const open = await openCase(f);
  await fulfilRandomness(f, 12n);
  const openJurors = await drawJury(f, open.caseId);
  await vote(f, open.caseId, openJurors.slice(0, 1), [Choice.P25]);
  await f.court.passPhase();

  const free = f.evaluators.find((e) => !openJurors.includes(e.id))!;
  await f.court.connect(free.signer).requestUnstake(free.id, OKB(40));
  await f.court.setParams({ ...COURT_PARAMS, jurySize: 5 });
  await f.court.setTiming({ ...COURT_TIMING, unstakeDelay: 2 * 86_400 });
  return { ...f, settled, open, jurors, openJurors, free };
}

type Populated = Awaited<ReturnType<typeof populatedCourt>>;

/** Everything the court answers about the populated state, as plain values. */
async function observe(f: Populated, court: EvaluatorStaking = f.court) {
  const evaluators = [];
  for (const e of f.evaluators) {
    evaluators.push([
      [...(await court.getEvaluator(e.id))],
      await court.weightOf(e.id),
      await court.rewardsOf(e.id, ethers.ZeroAddress),
      await court.rewardsOf(e.id, await f.usdt.getAddress()),
    ]);
  }
  const cases = [];
  for (const id of [f.settled.caseId, f.open.caseId]) {
    const c = await court.getCase(id);
    cases.push(JSON.stringify(c, (_, v) => (typeof v === "bigint" ? v.toString() : v)));
    cases.push(JSON.stringify(await court.getRound(id, 0), (_, v) => (typeof v === "bigint" ? v.toString() : v)));
  }
  return {
    evaluators,
    cases,
    drawState: [...(await court.drawState())],
    params: [...(await court.params())],
    timing: [...(await court.timing())],
    held: [await court.held(ethers.ZeroAddress), await court.held(await f.usdt.getAddress())],
    total: await court.totalWeight(),
    contracts: [...(await court.contracts())],
    roles: [await court.hasRole(UPGRADER_ROLE, f.admin.address), await court.hasRole(PARAMETER_ROLE, f.admin.address)],
  };
}

describe("EvaluatorStaking upgrade safety", function () {
  it("is a valid UUPS implementation (linked JuryLogic allowed), and the V2 mock a storage-compatible upgrade", async function () {
    const { v1, v2 } = await factories();
    await upgrades.validateImplementation(v1, UPGRADE_OPTS);
    await upgrades.validateImplementation(v2, UPGRADE_OPTS);
    await upgrades.validateUpgrade(v1, v2, UPGRADE_OPTS);
  });

  it("keeps its state in the ERC-7201 namespace agentmarket.storage.EvaluatorStaking", async function () {
    const f = await loadFixture(populatedCourt);
    const base = erc7201("agentmarket.storage.EvaluatorStaking");
    const word = async (slot: bigint) => BigInt(await ethers.provider.getStorage(await f.court.getAddress(), slot));
    expect(ethers.toBeHex(base, 32)).to.equal("0xe341b170c8ea626a9d907e8b7a80a106aaba87aad6200f9451e34fc2d440ce00");
    expect(await word(base)).to.equal(BigInt(await f.registry.getAddress()));
    expect(await word(base + 1n)).to.equal(BigInt(await f.reputation.getAddress()));
    expect(await word(base + 4n)).to.equal(BigInt(f.treasury.address));
  });

  it("the bare implementation cannot be initialised, the proxy not twice", async function () {
    const f = await loadFixture(populatedCourt);
    const impl = f.court.attach(await implementationOf(await f.court.getAddress())) as EvaluatorStaking;
    const args = [
      f.admin.address,
      await f.registry.getAddress(),
      await f.reputation.getAddress(),
      await f.vrfSource.getAddress(),
      ethers.ZeroAddress,
      f.treasury.address,
      COURT_PARAMS,
      COURT_TIMING,
    ] as const;
    await expect(impl.initialize(...args)).to.be.revertedWithCustomError(impl, "InvalidInitialization");
    await expect(f.court.initialize(...args)).to.be.revertedWithCustomError(f.court, "InvalidInitialization");
  });

  it("only UPGRADER_ROLE upgrades", async function () {
    const f = await loadFixture(populatedCourt);
    const { v2 } = await factories();
    const next = await v2.deploy();
    await expect(f.court.connect(f.stranger).upgradeToAndCall(await next.getAddress(), "0x"))
      .to.be.revertedWithCustomError(f.court, "AccessControlUnauthorizedAccount")
      .withArgs(f.stranger.address, UPGRADER_ROLE);
  });

  it("keeps every stake, case, vote, reward and parameter across an upgrade, and then works", async function () {
    const f = await loadFixture(populatedCourt);
    const before = await observe(f);
    const { v2 } = await factories();
    const next = await v2.deploy();
    await expect(f.court.upgradeToAndCall(await next.getAddress(), "0x"))
      .to.emit(f.court, "Upgraded")
      .withArgs(await next.getAddress());
    const upgraded = EvaluatorStakingV2Mock__factory.connect(await f.court.getAddress(), f.admin);
    expect(await upgraded.versionV2()).to.equal("2.0.0-mock");
    await upgraded.setV2Value(7n);
    expect(await upgraded.v2Value()).to.equal(7n);
    expect(await observe(f)).to.deep.equal(before);

    // The open case finishes on the new implementation and TaskEscrow is paid.
    const rest = f.openJurors.slice(1);
    await vote(f, f.open.caseId, rest, [Choice.P25, Choice.P25]);
    await revealAll(f, f.open.caseId, f.openJurors, [Choice.P25, Choice.P25, Choice.P25]);
    await time.increase(COURT_PARAMS.appealPeriod + 1);
    await f.court.advance(f.open.caseId);
    expect((await f.court.getCase(f.open.caseId)).status).to.equal(CaseStatus.Ruled);
    expect((await f.escrow.getTask(f.open.taskId)).status).to.equal(Status.Resolved);
  });

  it("the CourtUpgrade Ignition module upgrades the proxy to the current artifacts", async function () {
    const f = await loadFixture(populatedCourt);
    const before = await observe(f);
    const proxy = await f.court.getAddress();
    const oldImpl = await implementationOf(proxy);
    const result = await ignition.deploy(CourtUpgradeModule, { parameters: { CourtUpgrade: { court: proxy } } });
    const newImpl = await result.courtImpl.getAddress();
    expect(newImpl).to.not.equal(oldImpl);
    expect(await implementationOf(proxy)).to.equal(newImpl);
    expect(await observe(f)).to.deep.equal(before);
  });
});
