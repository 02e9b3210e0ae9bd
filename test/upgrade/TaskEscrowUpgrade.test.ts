import { expect } from "chai";
import { ethers, ignition, upgrades } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import UpgradeModule from "../../ignition/modules/Upgrade";
import { DEFAULT_ADMIN_ROLE, PARAMETER_ROLE, PAUSER_ROLE, UPGRADER_ROLE } from "../fixtures/system";
import { deployEscrow, post, postAccepted, Mode, Status, signAgreement, DAY, SPEC_HASH } from "../fixtures/escrow";
import { usd, now } from "../fixtures/helpers";
import { TaskEscrow__factory, TaskEscrowV2Mock__factory } from "../../typechain-types";

/** ERC-1967 implementation slot: bytes32(uint256(keccak256("eip1967.proxy.implementation")) - 1). */
const IMPLEMENTATION_SLOT = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc";
const UPGRADE_OPTS = { kind: "uups" as const };
/** ERC-7201 slot of TaskEscrowStorage; `bids` is its sixth field (slot + 5). */
const ESCROW_STORAGE = 0x3773656cb3ba96d317fcb0dcaec56c561f14eaf2a17a9caec35fbec2f94a3c00n;
const PROPOSAL = ethers.id("proposal");

/** Storage slot of `bids[taskId][providerId]` (one slot: price, eta, proposal). */
function bidSlot(taskId: bigint, providerId: bigint): string {
  const coder = ethers.AbiCoder.defaultAbiCoder();
  const inner = ethers.keccak256(coder.encode(["uint256", "uint256"], [taskId, ESCROW_STORAGE + 5n]));
  return ethers.keccak256(coder.encode(["uint256", "bytes32"], [providerId, inner]));
}

async function implementationOf(proxy: string): Promise<string> {
  const raw = await ethers.provider.getStorage(proxy, IMPLEMENTATION_SLOT);
  return ethers.getAddress(ethers.dataSlice(raw, 12));
}

/** One of each kind of escrow state: open, accepted and bid-on tasks, a used nonce, fees, a counter. */
async function deployPopulatedEscrow() {
  const f = await deployEscrow();
  const open = await post(f, { budget: usd(40), maxBudget: usd(60), minScoreBps: 100n });
  await f.escrow.connect(f.bob).counterPropose(open, usd(50), 3n * DAY);
  const accepted = await postAccepted(f);
  const bidding = await post(f, { mode: Mode.Bidding, providerId: 0n });
  await f.escrow.connect(f.carol).placeBid(bidding, f.carolId, usd(90), 2n * DAY, PROPOSAL);
  const settled = await postAccepted(f);
  await f.escrow.connect(f.bob).submitWork(settled, ethers.id("work"), "ipfs://work");
  await f.escrow.connect(f.alice).approve(settled);
  const terms = {
    clientId: f.aliceId,
    providerId: f.daveId,
    token: await f.usdg.getAddress(),
    price: usd(70),
    deliveryDuration: DAY,
    reviewPeriod: DAY,
    parentTaskId: 0n,
    specHash: SPEC_HASH,
    nonce: 7n,
    expiry: (await now()) + DAY,
  };
  const signature = await signAgreement(f.escrow, f.dave, terms);
  await f.escrow.connect(f.alice).hireWithAgreement(terms, ethers.ZeroHash, "ipfs://spec", f.dave.address, signature);
  return { ...f, ids: { open, accepted, bidding, settled, hired: await f.escrow.taskCount() } };
}

type Populated = Awaited<ReturnType<typeof deployPopulatedEscrow>>;

/** Everything the escrow answers about the populated state, as plain values. */
async function observe(f: Populated) {
  const { escrow, ids } = f;
  const tasks = [];
  for (const id of Object.values(ids)) tasks.push([...(await escrow.getTask(id))]);
  return {
    tasks,
    count: await escrow.taskCount(),
    bid: [...(await escrow.getBid(ids.bidding, f.carolId))],
    counter: [...(await escrow.getCounter(ids.open))],
    fees: await escrow.accruedFees(await f.usdt.getAddress()),
    nonce: await escrow.nonceUsed(f.daveId, 7n),
    minBudget: await escrow.minBudget(await f.usdt.getAddress()),
    config: [...(await escrow.config())],
    domain: await escrow.domainSeparator(),
    escrowUsdt: await f.usdt.balanceOf(await escrow.getAddress()),
  };
}

describe("TaskEscrow upgrade safety", function () {
  it("is a valid UUPS implementation, and the V2 mock a storage-compatible upgrade", async function () {
    const v1 = await ethers.getContractFactory("TaskEscrow");
    const v2 = await ethers.getContractFactory("TaskEscrowV2Mock");
    await upgrades.validateImplementation(v1, UPGRADE_OPTS);
    await upgrades.validateImplementation(v2, UPGRADE_OPTS);
    await upgrades.validateUpgrade(v1, v2, UPGRADE_OPTS);
  });

  it("the bare implementation cannot be initialised, the proxy not twice", async function () {
    const { escrow, escrowImpl, admin, stranger, registry, reputation } = await loadFixture(deployEscrow);
    const implementation = TaskEscrow__factory.connect(escrowImpl, admin);
    const args = [
      admin.address,
      await registry.getAddress(),
      await reputation.getAddress(),
      admin.address,
      0,
      0,
    ] as const;
    await expect(implementation.initialize(...args)).to.be.revertedWithCustomError(
      implementation,
      "InvalidInitialization",
    );
    await expect(escrow.connect(stranger).initialize(...args)).to.be.revertedWithCustomError(
      escrow,
      "InvalidInitialization",
    );
    expect(await implementation.hasRole(DEFAULT_ADMIN_ROLE, admin.address)).to.equal(false);
  });

  it("only UPGRADER_ROLE upgrades, not the other roles' holders", async function () {
    const { escrow, admin, operator, escrowImpl } = await loadFixture(deployEscrow);
    const v2 = await new TaskEscrowV2Mock__factory(admin).deploy();
    await escrow.grantRole(PAUSER_ROLE, operator.address);
    await escrow.grantRole(PARAMETER_ROLE, operator.address);
    await expect(escrow.connect(operator).upgradeToAndCall(await v2.getAddress(), "0x"))
      .to.be.revertedWithCustomError(escrow, "AccessControlUnauthorizedAccount")
      .withArgs(operator.address, UPGRADER_ROLE);
    expect(await implementationOf(await escrow.getAddress())).to.equal(escrowImpl);
  });

  it("keeps every task, bid, counter, nonce, fee and parameter across an upgrade, and then works", async function () {
    const f = await loadFixture(deployPopulatedEscrow);
    const before = await observe(f);
    expect(before.tasks[0][4]).to.equal(BigInt(Status.Open));
    expect(before.bid).to.deep.equal([usd(90), 2n * DAY, ethers.dataSlice(PROPOSAL, 0, 16)]);

    const v2 = await new TaskEscrowV2Mock__factory(f.admin).deploy();
    const setNine = TaskEscrowV2Mock__factory.createInterface().encodeFunctionData("setV2Value", [9n]);
    await expect(f.escrow.upgradeToAndCall(await v2.getAddress(), setNine))
      .to.emit(f.escrow, "Upgraded")
      .withArgs(await v2.getAddress());
    const upgraded = TaskEscrowV2Mock__factory.connect(await f.escrow.getAddress(), f.admin);
    expect(await upgraded.v2Value()).to.equal(9n);
    expect(await upgraded.versionV2()).to.equal("2.0.0-mock");
    expect(await observe(f)).to.deep.equal(before);

    // The old state still works: the accepted task is delivered and approved, the open one
    // settles its counter-proposal, the bid is selected, the used nonce stays used.
    await upgraded.connect(f.bob).submitWork(f.ids.accepted, ethers.id("w"), "ipfs://w");
    await expect(upgraded.connect(f.alice).approve(f.ids.accepted)).to.changeTokenBalances(
      f.usdt,
      [f.bob, upgraded],
      [usd(99), -usd(99)],
    );
    await expect(upgraded.connect(f.alice).acceptCounter(f.ids.open, usd(50), 3n * DAY)).to.changeTokenBalances(
      f.usdt,
      [f.alice, upgraded],
      [usd(10), -usd(10)],
    );
    await upgraded.connect(f.alice).selectBid(f.ids.bidding, f.carolId, usd(90), 2n * DAY, PROPOSAL);
    expect((await upgraded.getTask(f.ids.bidding)).status).to.equal(Status.Accepted);
    expect(await upgraded.nonceUsed(f.daveId, 7n)).to.equal(true);
  });

  it("a bid stored before the proposal field existed (upper 128 bits zero) reads proposal 0 and is selected with a zero hash", async function () {
    const f = await loadFixture(deployPopulatedEscrow);
    const proxy = await f.escrow.getAddress();
    const slot = bidSlot(f.ids.bidding, f.carolId);
    // The bid's one slot, packed from the low end: price (96 bits), eta (32), proposal (128).
    const packed = (usd(90) | ((2n * DAY) << 96n)).toString(16).padStart(32, "0");
    const stored = await ethers.provider.getStorage(proxy, slot);
    expect(stored).to.equal(ethers.dataSlice(PROPOSAL, 0, 16) + packed);
    // Rewrite it as the previous implementation (Bid{uint96 price; uint32 eta}) left it.
    await ethers.provider.send("hardhat_setStorageAt", [proxy, slot, ethers.zeroPadValue("0x" + packed, 32)]);
    expect([...(await f.escrow.getBid(f.ids.bidding, f.carolId))]).to.deep.equal([
      usd(90),
      2n * DAY,
      ethers.dataSlice(ethers.ZeroHash, 0, 16),
    ]);
    await expect(f.escrow.connect(f.alice).selectBid(f.ids.bidding, f.carolId, usd(90), 2n * DAY, PROPOSAL))
      .to.be.revertedWithCustomError(f.escrow, "TaskEscrowTermsChanged")
      .withArgs(f.ids.bidding);
    await f.escrow.connect(f.alice).selectBid(f.ids.bidding, f.carolId, usd(90), 2n * DAY, ethers.ZeroHash);
    expect((await f.escrow.getTask(f.ids.bidding)).status).to.equal(Status.Accepted);
  });

  it("the Ignition Upgrade module points the escrow proxy at a fresh implementation", async function () {
    const [admin] = await ethers.getSigners();
    const upgraded = await ignition.deploy(UpgradeModule);
    const escrowAddress = await upgraded.escrow.getAddress();
    expect(await implementationOf(escrowAddress)).to.equal(await upgraded.escrowImpl.getAddress());
    const escrow = TaskEscrow__factory.connect(escrowAddress, admin);
    const [registry, reputation, treasury, arbitrator, protocolFeeBps, arbitrationFeeBps] = await escrow.config();
    expect([registry, reputation, treasury, arbitrator, protocolFeeBps, arbitrationFeeBps]).to.deep.equal([
      await upgraded.registry.getAddress(),
      await upgraded.reputation.getAddress(),
      admin.address,
      ethers.ZeroAddress,
      100n,
      500n,
    ]);
    expect(await escrow.VERSION()).to.equal("1.0.0");
  });
});
