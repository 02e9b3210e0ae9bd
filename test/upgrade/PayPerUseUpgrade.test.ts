import { expect } from "chai";
import fs from "fs";
import os from "os";
import path from "path";
import hre, { ethers, ignition, network, upgrades } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import { deploy as ignitionDeploy, DeploymentResultType } from "@nomicfoundation/ignition-core";
import type { IgnitionModule } from "@nomicfoundation/ignition-core";
import { HardhatArtifactResolver } from "@nomicfoundation/hardhat-ignition/helpers";
import type { ContractFactory } from "ethers";
import SystemModule from "../../ignition/modules/System";
import UpgradeModule from "../../ignition/modules/Upgrade";
import {
  DEFAULT_ADMIN_ROLE,
  PARAMETER_ROLE,
  PAUSER_ROLE,
  REPORTER_ROLE,
  SPENDER_ROLE,
  UPGRADER_ROLE,
} from "../fixtures/system";
import {
  deployPayPerUse,
  chargeAuth,
  openSession,
  signCharge,
  signVoucher,
  CLOSE_GRACE,
  DAY,
  REQUEST,
  CAPABILITY,
  FUNDING,
  serviceToken,
} from "../fixtures/payPerUse";
import { usd, now } from "../fixtures/helpers";
import {
  AgentRegistry__factory,
  MockStablecoin__factory,
  PayPerUse,
  PayPerUse__factory,
  PayPerUseV2Mock__factory,
  Reputation__factory,
} from "../../typechain-types";

/** ERC-1967 implementation slot: bytes32(uint256(keccak256("eip1967.proxy.implementation")) - 1). */
const IMPLEMENTATION_SLOT = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc";
const UPGRADE_OPTS = { kind: "uups" as const };
const NAMESPACE = "agentmarket.storage.PayPerUse";
const abi = ethers.AbiCoder.defaultAbiCoder();

/** The ERC-7201 formula: keccak256(abi.encode(uint256(keccak256(id)) - 1)) & ~bytes32(uint256(0xff)). */
function erc7201(id: string): bigint {
  const inner = BigInt(ethers.keccak256(ethers.toUtf8Bytes(id))) - 1n;
  return BigInt(ethers.keccak256(abi.encode(["uint256"], [inner]))) & ~0xffn;
}

async function implementationOf(proxy: string): Promise<string> {
  const raw = await ethers.provider.getStorage(proxy, IMPLEMENTATION_SLOT);
  return ethers.getAddress(ethers.dataSlice(raw, 12));
}

/** The storage word at `slot` of `account`, as a number. */
async function word(account: string, slot: bigint): Promise<bigint> {
  return BigInt(await ethers.provider.getStorage(account, slot));
}

/** The slot of `mapping[key]` for a mapping declared at `slot` (value types and addresses). */
function mappingSlot(keyType: string, key: unknown, slot: bigint): bigint {
  return BigInt(ethers.keccak256(abi.encode([keyType, "uint256"], [key, slot])));
}

/** `bits` bits of `value` starting at bit `offset` (low-order first, as Solidity packs). */
const field = (value: bigint, offset: number, bits: number) => (value >> BigInt(offset)) & ((1n << BigInt(bits)) - 1n);

/** Deploys `ignitionModule` with a journal in `deploymentDir`, as `hardhat ignition deploy` does on a live network. */
async function deployWithJournal(ignitionModule: IgnitionModule, deploymentDir: string) {
  const accounts = (await network.provider.request({ method: "eth_accounts" })) as string[];
  const result = await ignitionDeploy({
    config: {},
    provider: network.provider,
    deploymentDir,
    artifactResolver: new HardhatArtifactResolver(hre),
    ignitionModule,
    deploymentParameters: {},
    accounts,
  });
  if (result.type !== DeploymentResultType.SUCCESSFUL_DEPLOYMENT) {
    throw new Error(`Ignition deployment of ${ignitionModule.id} failed: ${JSON.stringify(result)}`);
  }
  return Object.fromEntries(Object.values(result.contracts).map((c) => [c.id, c.address]));
}

/**
 * One of each kind of PayPerUse state: two receipts (one partly refunded, one from a signed charge)
 * with their Reputation pending, a used and a cancelled nonce, four sessions (open with a redeemed
 * voucher, closing, settled, and one in a blacklisting token whose provider could not be paid: a
 * credit), accrued fees (the charges' and the settled session's; open sessions hold theirs), a
 * changed fee and close grace, and a disallowed token.
 */
async function deployPopulatedPayPerUse() {
  const f = await deployPayPerUse();
  const ppu = f.payPerUse;
  const ppuAddress = await ppu.getAddress();
  const blk = await ethers.deployContract("MockBlacklistToken");
  const blkAddress = await blk.getAddress();
  const usdtAddress = await f.usdt.getAddress();
  const usdgAddress = await f.usdg.getAddress();
  await ppu.setToken(blkAddress, true);
  await blk.mint(f.alice.address, usd(1_000));
  await blk.connect(f.alice).approve(ppuAddress, ethers.MaxUint256);

  // Receipt 1: alice pays bob 4 units (1 USDT), bob refunds 0.4 of it.
  await ppu
    .connect(f.alice)
    .charge(f.aliceId, f.bobService, 4n, await serviceToken(ppu, f.bobService), usd(1), REQUEST);
  await ppu.connect(f.bob).refund(1n, usd("0.4"));
  // Receipt 2: alice signs 3 units of carol's service (3 USDG), nonce 7; carol submits it.
  const auth = await chargeAuth(f, {
    serviceId: f.carolService,
    units: 3n,
    amount: usd(3),
    nonce: 7n,
    validBefore: (await now()) + 30n * DAY,
  });
  await ppu.connect(f.carol).submitCharge(auth, await signCharge(ppu, f.alice, auth), FUNDING.Allowance, "0x");
  await ppu.connect(f.alice).cancelNonce(9n);

  // Session 1: alice -> bob, 100 USDT, 30 redeemed.
  const open = await openSession(f, usd(100));
  await ppu.redeem(
    { sessionId: open, amount: usd(30), calls: 3n },
    await signVoucher(ppu, f.alice, { sessionId: open, amount: usd(30), calls: 3n }),
  );
  // Session 2: alice -> carol, 50 USDG, 10 redeemed, closing (asked after session 3 settled).
  const t = await now();
  await ppu.connect(f.alice).openSession(f.aliceId, f.carolId, usdgAddress, usd(50), t + DAY, f.alice.address);
  const closing = await ppu.sessionCount();
  const v2 = { sessionId: closing, amount: usd(10), calls: 1n };
  await ppu.connect(f.carol).redeem(v2, await signVoucher(ppu, f.alice, v2));
  // Session 3: dave -> bob, 20 USDT, 5 redeemed, settled.
  await ppu.connect(f.dave).openSession(f.daveId, f.bobId, usdtAddress, usd(20), t + DAY, f.dave.address);
  const settled = await ppu.sessionCount();
  const v3 = { sessionId: settled, amount: usd(5), calls: 5n };
  await ppu.redeem(v3, await signVoucher(ppu, f.dave, v3));
  await ppu.connect(f.dave).requestClose(settled);
  await time.increase(CLOSE_GRACE + 1n);
  await ppu.settleSession(settled);
  await ppu.connect(f.alice).requestClose(closing);
  // Session 4: alice -> carol in the blacklisting token; carol is blacklisted, so she is credited.
  await ppu
    .connect(f.alice)
    .openSession(f.aliceId, f.carolId, blkAddress, usd(10), (await now()) + DAY, f.alice.address);
  const credited = await ppu.sessionCount();
  await blk.setBlacklisted(f.carol.address, true);
  const v4 = { sessionId: credited, amount: usd(4), calls: 2n };
  await expect(ppu.redeem(v4, await signVoucher(ppu, f.alice, v4)))
    .to.emit(ppu, "PaymentCredited")
    .withArgs(blkAddress, f.carol.address, usd("3.96"));

  // Parameters changed after the sessions opened (which keep theirs), USDG disallowed.
  await ppu.setFee(250);
  await ppu.setCloseGrace(7_200);
  await ppu.setToken(usdgAddress, false);
  return {
    ...f,
    blk,
    tokens: [usdtAddress, usdgAddress, blkAddress],
    ids: { open, closing, settled, credited },
    auth,
  };
}

type Populated = Awaited<ReturnType<typeof deployPopulatedPayPerUse>>;

/** Everything PayPerUse answers about the populated state, as plain values. */
async function observe(f: Populated, ppu: PayPerUse = f.payPerUse) {
  const ppuAddress = await ppu.getAddress();
  const sessions = [];
  for (const id of Object.values(f.ids)) sessions.push([...(await ppu.getSession(id))]);
  const perToken = [];
  for (const token of f.tokens) {
    const erc20 = MockStablecoin__factory.connect(token, f.admin);
    perToken.push([
      await ppu.accruedFees(token),
      await ppu.tokenAllowed(token),
      await ppu.creditOf(token, f.carol.address),
      await erc20.balanceOf(ppuAddress),
    ]);
  }
  const roles = [];
  for (const role of [DEFAULT_ADMIN_ROLE, UPGRADER_ROLE, PAUSER_ROLE, PARAMETER_ROLE]) {
    roles.push(await ppu.hasRole(role, f.admin.address));
  }
  return {
    receipts: [[...(await ppu.getReceipt(1n))], [...(await ppu.getReceipt(2n))], [...(await ppu.getReceipt(3n))]],
    counts: [await ppu.receiptCount(), await ppu.sessionCount()],
    sessions,
    perToken,
    pending: [
      [...(await ppu.pendingReputation(f.aliceId, f.bobId, f.tokens[0]))],
      [...(await ppu.pendingReputation(f.aliceId, f.carolId, f.tokens[1]))],
    ],
    records: [[...(await f.reputation.getRecord(f.bobId))], [...(await f.reputation.getRecord(f.carolId))]],
    nonces: [
      await ppu.nonceUsed(f.alice.address, 7n),
      await ppu.nonceUsed(f.alice.address, 8n),
      await ppu.nonceUsed(f.alice.address, 9n),
    ],
    config: [...(await ppu.config())],
    domain: await ppu.domainSeparator(),
    digest: await ppu.chargeDigest(f.auth),
    quote: [...(await ppu.quote(f.bobService, 3n))],
    roles,
    paused: await ppu.paused(),
    version: await ppu.VERSION(),
  };
}

describe("PayPerUse upgrade safety", function () {
  describe("storage layout", function () {
    it("declares the ERC-7201 namespace agentmarket.storage.PayPerUse at the formula's slot", async function () {
      const expected = erc7201(NAMESPACE);
      expect(ethers.toBeHex(expected, 32)).to.equal(
        "0x1143823913336009b6ff0e409f618278c1262e99862f8ebe1034035b98831b00",
      );
      const source = fs.readFileSync(path.join(__dirname, "../../contracts/payments/PayPerUse.sol"), "utf8");
      expect(source).to.include(`@custom:storage-location erc7201:${NAMESPACE}\n`);
      const constant = /bytes32 private constant STORAGE_LOCATION = (0x[0-9a-fA-F]{64});/.exec(source);
      expect(constant, "STORAGE_LOCATION constant").to.not.equal(null);
      expect(BigInt(constant![1])).to.equal(expected);
    });

    it("keeps its state at the namespace's slots, packed as declared", async function () {
      const f = await loadFixture(deployPopulatedPayPerUse);
      const ppu = await f.payPerUse.getAddress();
      const base = erc7201(NAMESPACE);
      const [registry, reputation, treasury, feeBps, closeGrace] = await f.payPerUse.config();
      // Slot 0: registry | feeBps | closeGrace | tokenCount. Slot 1: reputation | receiptCount.
      // Slot 2: treasury | sessionCount.
      const s0 = await word(ppu, base);
      expect([field(s0, 0, 160), field(s0, 160, 16), field(s0, 176, 32), field(s0, 208, 32)]).to.deep.equal([
        BigInt(registry),
        feeBps,
        closeGrace,
        3n,
      ]);
      const s1 = await word(ppu, base + 1n);
      expect([field(s1, 0, 160), field(s1, 160, 64)]).to.deep.equal([BigInt(reputation), 2n]);
      const s2 = await word(ppu, base + 2n);
      expect([field(s2, 0, 160), field(s2, 160, 64)]).to.deep.equal([BigInt(treasury), 4n]);
      // tokens (slot 3): index | allowed, indices 1.. in the order first allowed (the blacklisting
      // token last); tokenAt (slot 4): index -> token.
      const indices: bigint[] = [];
      for (const token of f.tokens) {
        const info = await word(ppu, mappingSlot("address", token, base + 3n));
        expect(field(info, 32, 8), `allowed flag of ${token}`).to.equal(
          (await f.payPerUse.tokenAllowed(token)) ? 1n : 0n,
        );
        expect(info >> 40n, `rest of the TokenInfo slot of ${token}`).to.equal(0n);
        indices.push(field(info, 0, 32));
        expect(await word(ppu, mappingSlot("uint32", field(info, 0, 32), base + 4n))).to.equal(BigInt(token));
      }
      expect([...indices].sort()).to.deep.equal([1n, 2n, 3n]);
      expect(indices[2]).to.equal(3n);
      // receipts (slot 5), one slot each: payerId | providerId | refundable | tokenIndex.
      const r1 = await word(ppu, mappingSlot("uint256", 1n, base + 5n));
      expect([field(r1, 0, 48), field(r1, 48, 48), field(r1, 96, 96), field(r1, 192, 32)]).to.deep.equal([
        f.aliceId,
        f.bobId,
        usd("0.6"),
        indices[0],
      ]);
      // sessions (slot 6): three slots, packed as declared.
      const session = await f.payPerUse.getSession(f.ids.closing);
      const at = mappingSlot("uint256", f.ids.closing, base + 6n);
      const [w0, w1, w2, w3] = await Promise.all([0n, 1n, 2n, 3n].map((i) => word(ppu, at + i)));
      expect([
        field(w0, 0, 160),
        field(w0, 160, 40),
        field(w0, 200, 24),
        field(w0, 224, 8),
        field(w0, 232, 8),
        field(w0, 240, 16),
      ]).to.deep.equal([BigInt(session.token), session.endsAt, session.closeGrace, 1n, 0n, session.feeBps]);
      expect([field(w1, 0, 160), field(w1, 160, 48), field(w1, 208, 48)]).to.deep.equal([
        BigInt(session.signer),
        session.payerId,
        session.providerId,
      ]);
      expect([field(w2, 0, 96), field(w2, 96, 96), field(w2, 192, 64)]).to.deep.equal([
        session.deposit,
        session.redeemed,
        session.calls,
      ]);
      expect(w3, "nothing in a fourth slot").to.equal(0n);
      // nonces (slot 7): a bitmap per payer, 256 nonces a word; bits 7 and 9 of word 0.
      const nonceWord = mappingSlot("uint256", 0n, mappingSlot("address", f.alice.address, base + 7n));
      expect(await word(ppu, nonceWord)).to.equal((1n << 7n) | (1n << 9n));
      // pending (slot 10): payer -> provider -> token -> amount | calls | receipts.
      const pendingSlot = mappingSlot(
        "address",
        f.tokens[0],
        mappingSlot("uint256", f.bobId, mappingSlot("uint256", f.aliceId, base + 10n)),
      );
      const pending = await word(ppu, pendingSlot);
      expect([field(pending, 0, 96), field(pending, 96, 64), field(pending, 160, 32)]).to.deep.equal([usd(1), 4n, 1n]);
      // credits (slot 8) and fees (slot 9).
      const creditSlot = mappingSlot("address", f.carol.address, mappingSlot("address", f.tokens[2], base + 8n));
      expect(await word(ppu, creditSlot)).to.equal(usd("3.96"));
      for (const token of f.tokens) {
        expect(await word(ppu, mappingSlot("address", token, base + 9n))).to.equal(
          await f.payPerUse.accruedFees(token),
        );
      }
    });

    it("is a valid UUPS implementation, and the V2 mock a storage-compatible upgrade", async function () {
      const v1 = await ethers.getContractFactory("PayPerUse");
      const v2 = await ethers.getContractFactory("PayPerUseV2Mock");
      await upgrades.validateImplementation(v1, UPGRADE_OPTS);
      await upgrades.validateImplementation(v2, UPGRADE_OPTS);
      await upgrades.validateUpgrade(v1, v2, UPGRADE_OPTS);
    });

    it("the upgrades plugin sees the namespace: an upgrade that drops it is rejected", async function () {
      const v1 = await ethers.getContractFactory("PayPerUse");
      const v2 = await ethers.getContractFactory("PayPerUseV2Mock");
      const escrow = await ethers.getContractFactory("TaskEscrow");
      const cases: [ContractFactory, ContractFactory, RegExp][] = [
        [v1, escrow, /Deleted namespace `erc7201:agentmarket\.storage\.PayPerUse`/],
        [v2, v1, /Deleted namespace `erc7201:agentmarket\.storage\.PayPerUseV2Mock`/],
      ];
      for (const [from, to, reason] of cases) {
        let error: Error | undefined;
        try {
          await upgrades.validateUpgrade(from, to, UPGRADE_OPTS);
        } catch (e) {
          error = e as Error;
        }
        expect(error, "validateUpgrade accepted a layout that drops a namespace").to.not.equal(undefined);
        expect(error!.message).to.match(reason);
      }
    });
  });

  describe("initialisation", function () {
    it("the bare implementation cannot be initialised, the proxy not twice", async function () {
      const { payPerUse, payPerUseImpl, admin, stranger, registry, reputation } = await loadFixture(deployPayPerUse);
      const implementation = PayPerUse__factory.connect(payPerUseImpl, admin);
      const args = [
        stranger.address,
        await registry.getAddress(),
        await reputation.getAddress(),
        stranger.address,
        0,
        3_600,
      ] as const;
      await expect(implementation.initialize(...args)).to.be.revertedWithCustomError(
        implementation,
        "InvalidInitialization",
      );
      await expect(implementation.connect(stranger).initialize(...args)).to.be.revertedWithCustomError(
        implementation,
        "InvalidInitialization",
      );
      await expect(payPerUse.connect(stranger).initialize(...args)).to.be.revertedWithCustomError(
        payPerUse,
        "InvalidInitialization",
      );
      for (const role of [DEFAULT_ADMIN_ROLE, UPGRADER_ROLE]) {
        expect(await implementation.hasRole(role, admin.address)).to.equal(false);
        expect(await implementation.hasRole(role, stranger.address)).to.equal(false);
        expect(await payPerUse.hasRole(role, stranger.address)).to.equal(false);
      }
      const [, , treasury, feeBps] = await payPerUse.config();
      expect([treasury, feeBps]).to.not.deep.equal([stranger.address, 0n]);
    });
  });

  describe("upgradeToAndCall", function () {
    it("only UPGRADER_ROLE upgrades, not a stranger nor the other roles' holders", async function () {
      const { payPerUse, admin, operator, stranger, payPerUseImpl } = await loadFixture(deployPayPerUse);
      const v2 = await new PayPerUseV2Mock__factory(admin).deploy();
      await payPerUse.grantRole(PAUSER_ROLE, operator.address);
      await payPerUse.grantRole(PARAMETER_ROLE, operator.address);
      for (const caller of [stranger, operator]) {
        await expect(payPerUse.connect(caller).upgradeToAndCall(await v2.getAddress(), "0x"))
          .to.be.revertedWithCustomError(payPerUse, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, UPGRADER_ROLE);
      }
      // The admin that renounced UPGRADER_ROLE cannot upgrade either; granting it back lets it.
      await payPerUse.renounceRole(UPGRADER_ROLE, admin.address);
      await expect(payPerUse.upgradeToAndCall(await v2.getAddress(), "0x"))
        .to.be.revertedWithCustomError(payPerUse, "AccessControlUnauthorizedAccount")
        .withArgs(admin.address, UPGRADER_ROLE);
      expect(await implementationOf(await payPerUse.getAddress())).to.equal(payPerUseImpl);
      await payPerUse.grantRole(UPGRADER_ROLE, operator.address);
      await expect(payPerUse.connect(operator).upgradeToAndCall(await v2.getAddress(), "0x"))
        .to.emit(payPerUse, "Upgraded")
        .withArgs(await v2.getAddress());
      expect(await implementationOf(await payPerUse.getAddress())).to.equal(await v2.getAddress());
    });

    it("reverts on the implementation itself and towards a contract that is not UUPS", async function () {
      const { payPerUse, payPerUseImpl, admin, usdt } = await loadFixture(deployPayPerUse);
      const implementation = PayPerUse__factory.connect(payPerUseImpl, admin);
      await expect(implementation.upgradeToAndCall(payPerUseImpl, "0x")).to.be.revertedWithCustomError(
        implementation,
        "UUPSUnauthorizedCallContext",
      );
      await expect(payPerUse.upgradeToAndCall(await usdt.getAddress(), "0x"))
        .to.be.revertedWithCustomError(payPerUse, "ERC1967InvalidImplementation")
        .withArgs(await usdt.getAddress());
      expect(await implementationOf(await payPerUse.getAddress())).to.equal(payPerUseImpl);
    });

    it("keeps every receipt, session, nonce, credit, fee and parameter across an upgrade, and then works", async function () {
      const f = await loadFixture(deployPopulatedPayPerUse);
      const before = await observe(f);
      expect(before.counts).to.deep.equal([2n, 4n]);
      // Fees: the two charges' and the settled session's (open sessions book theirs when settled).
      expect(before.perToken.map((t) => t[0])).to.deep.equal([usd("0.01") + usd("0.05"), usd("0.03"), 0n]);
      expect(before.pending).to.deep.equal([
        [4n, usd(1), 1n],
        [3n, usd(3), 1n],
      ]);

      const v2 = await new PayPerUseV2Mock__factory(f.admin).deploy();
      const setNine = PayPerUseV2Mock__factory.createInterface().encodeFunctionData("setV2Value", [9n]);
      await expect(f.payPerUse.upgradeToAndCall(await v2.getAddress(), setNine))
        .to.emit(f.payPerUse, "Upgraded")
        .withArgs(await v2.getAddress());
      expect(await implementationOf(await f.payPerUse.getAddress())).to.equal(await v2.getAddress());
      const upgraded = PayPerUseV2Mock__factory.connect(await f.payPerUse.getAddress(), f.admin);
      expect(await upgraded.v2Value()).to.equal(9n);
      expect(await upgraded.versionV2()).to.equal("2.0.0-mock");
      expect(await observe(f)).to.deep.equal(before);
      await expect(upgraded.connect(f.stranger).setV2Value(1n))
        .to.be.revertedWithCustomError(upgraded, "AccessControlUnauthorizedAccount")
        .withArgs(f.stranger.address, PARAMETER_ROLE);

      // The old state keeps working. The open session pays bob the next 30 at its own 1% fee.
      const ppu = f.payPerUse;
      const voucher = { sessionId: f.ids.open, amount: usd(60), calls: 6n };
      await expect(ppu.redeem(voucher, await signVoucher(ppu, f.alice, voucher))).to.changeTokenBalances(
        f.usdt,
        [f.bob, ppu],
        [usd("29.7"), -usd("29.7")],
      );
      // The closing session settles after its grace: 40 USDG back to alice.
      const closingEnd = (await ppu.getSession(f.ids.closing)).endsAt;
      await expect(ppu.settleSession(f.ids.closing))
        .to.be.revertedWithCustomError(ppu, "PayPerUseSessionNotEnded")
        .withArgs(f.ids.closing, closingEnd);
      await time.increaseTo(closingEnd + 1n);
      await expect(ppu.settleSession(f.ids.closing)).to.changeTokenBalances(
        f.usdg,
        [f.alice, ppu],
        [usd(40), -usd(40)],
      );
      await expect(ppu.settleSession(f.ids.settled))
        .to.be.revertedWithCustomError(ppu, "PayPerUseSessionSettled")
        .withArgs(f.ids.settled);
      // Receipt 1 refunds its last 0.6, no more.
      await expect(ppu.connect(f.bob).refund(1n, usd("0.7")))
        .to.be.revertedWithCustomError(ppu, "PayPerUseRefundTooLarge")
        .withArgs(1n, usd("0.7"), usd("0.6"));
      await expect(ppu.connect(f.bob).refund(1n, usd("0.6"))).to.changeTokenBalances(
        f.usdt,
        [f.bob, f.alice],
        [-usd("0.6"), usd("0.6")],
      );
      // Nonce 7 stays used, 9 cancelled; USDG stays disallowed.
      await expect(
        ppu.connect(f.carol).submitCharge(f.auth, await signCharge(ppu, f.alice, f.auth), FUNDING.Allowance, "0x"),
      )
        .to.be.revertedWithCustomError(ppu, "PayPerUseNonceUsed")
        .withArgs(f.alice.address, 7n);
      await expect(ppu.connect(f.alice).cancelNonce(9n))
        .to.be.revertedWithCustomError(ppu, "PayPerUseNonceUsed")
        .withArgs(f.alice.address, 9n);
      // A new charge pays the new 2.5% fee.
      await expect(
        ppu
          .connect(f.alice)
          .charge(f.aliceId, f.bobService, 40n, await serviceToken(ppu, f.bobService), usd(10), REQUEST),
      )
        .to.emit(ppu, "Charged")
        .withArgs(
          3n,
          f.aliceId,
          f.bobId,
          f.bobService,
          f.tokens[0],
          40n,
          usd(10),
          usd("0.25"),
          REQUEST,
          f.alice.address,
        );
      // The pending charges of alice -> bob (receipt 1 and the new one) go to Reputation.
      const bobBefore = await f.reputation.getRecord(f.bobId);
      await expect(ppu.connect(f.stranger).syncReputation(f.aliceId, f.bobId, f.tokens[0]))
        .to.emit(ppu, "ReputationSynced")
        .withArgs(f.aliceId, f.bobId, f.tokens[0], 44n, usd(11), 2n);
      const bobAfter = await f.reputation.getRecord(f.bobId);
      expect([
        bobAfter.callsServed - bobBefore.callsServed,
        bobAfter.settlementsServed - bobBefore.settlementsServed,
      ]).to.deep.equal([44n, 2n]);
      // Carol withdraws her credit once unblacklisted; the fees are swept to the treasury.
      await f.blk.setBlacklisted(f.carol.address, false);
      await expect(ppu.connect(f.carol).withdraw(f.tokens[2], f.carol.address)).to.changeTokenBalances(
        f.blk,
        [f.carol, ppu],
        [usd("3.96"), -usd("3.96")],
      );
      const fees = await ppu.accruedFees(f.tokens[0]);
      expect(fees).to.equal((before.perToken[0][0] as bigint) + usd("0.25"));
      await expect(ppu.sweepFees(f.tokens[0])).to.changeTokenBalances(f.usdt, [f.treasury, ppu], [fees, -fees]);
      expect(await upgraded.v2Value()).to.equal(9n);
    });
  });

  describe("Ignition Upgrade module", function () {
    it("in process: points the PayPerUse proxy at a fresh implementation, keeping its initial state", async function () {
      const [admin] = await ethers.getSigners();
      const upgraded = await ignition.deploy(UpgradeModule);
      const ppuAddress = await upgraded.payPerUse.getAddress();
      const implNext = await upgraded.payPerUseImpl.getAddress();
      expect(await implementationOf(ppuAddress)).to.equal(implNext);
      const ppu = PayPerUse__factory.connect(ppuAddress, admin);
      expect([...(await ppu.config())]).to.deep.equal([
        await upgraded.registry.getAddress(),
        await upgraded.reputation.getAddress(),
        admin.address,
        100n,
        3_600n,
      ]);
      expect(await ppu.VERSION()).to.equal("1.0.0");
      for (const role of [DEFAULT_ADMIN_ROLE, UPGRADER_ROLE, PAUSER_ROLE, PARAMETER_ROLE]) {
        expect(await ppu.hasRole(role, admin.address)).to.equal(true);
      }
      const registry = AgentRegistry__factory.connect(await upgraded.registry.getAddress(), admin);
      const reputation = Reputation__factory.connect(await upgraded.reputation.getAddress(), admin);
      expect(await registry.hasRole(SPENDER_ROLE, ppuAddress)).to.equal(true);
      expect(await reputation.hasRole(REPORTER_ROLE, ppuAddress)).to.equal(true);
      await expect(
        ppu.initialize(admin.address, admin.address, admin.address, admin.address, 0, 3_600),
      ).to.be.revertedWithCustomError(ppu, "InvalidInitialization");
      await expect(
        PayPerUse__factory.connect(implNext, admin).initialize(
          admin.address,
          admin.address,
          admin.address,
          admin.address,
          0,
          3_600,
        ),
      ).to.be.revertedWithCustomError(ppu, "InvalidInitialization");
    });

    it("with a deployment journal: upgrades the System's own PayPerUse proxy, and its receipts and sessions survive", async function () {
      const [admin, alice, bob] = await ethers.getSigners();
      const deploymentDir = fs.mkdtempSync(path.join(os.tmpdir(), "ignition-ppu-upgrade-"));
      try {
        const system = await deployWithJournal(SystemModule, deploymentDir);
        const ppuAddress = system["System#PayPerUseProxy"];
        expect(await implementationOf(ppuAddress)).to.equal(system["System#PayPerUseImpl"]);
        const ppu = PayPerUse__factory.connect(ppuAddress, admin);
        const registry = AgentRegistry__factory.connect(system["System#AgentRegistryProxy"], admin);

        // A token, two agents, a service, a charge and an open session with a redeemed voucher.
        const token = await ethers.deployContract("MockStablecoin", ["Tether USD (mock)", "USDT"]);
        const tokenAddress = await token.getAddress();
        await ppu.setToken(tokenAddress, true);
        for (const who of [alice, bob]) {
          await registry.connect(who).getFunction("register(string)")(`ipfs://${who.address}`);
          await token.mint(who.address, usd(1_000));
          await token.connect(who).approve(ppuAddress, ethers.MaxUint256);
        }
        const [aliceId, bobId] = [(await registry.agentCount()) - 1n, await registry.agentCount()];
        await registry.connect(bob).listService(bobId, CAPABILITY, 0, tokenAddress, usd(1), "https://bob.example/api");
        const serviceId = await registry.serviceCount();
        await ppu.connect(alice).charge(aliceId, serviceId, 5n, await serviceToken(ppu, serviceId), usd(5), REQUEST);
        await ppu.connect(alice).openSession(aliceId, bobId, tokenAddress, usd(50), (await now()) + DAY, alice.address);
        const sessionId = await ppu.sessionCount();
        const voucher = { sessionId, amount: usd(20), calls: 2n };
        await ppu.redeem(voucher, await signVoucher(ppu, alice, voucher));
        const before = {
          receipt: [...(await ppu.getReceipt(1n))],
          session: [...(await ppu.getSession(sessionId))],
          fees: await ppu.accruedFees(tokenAddress),
          config: [...(await ppu.config())],
          balance: await token.balanceOf(ppuAddress),
        };
        // The charge's fee is booked; the session's (0.2 on 20) waits for its settlement.
        expect(before.fees).to.equal(usd("0.05"));
        expect(before.balance).to.equal(usd(30) + usd("0.2") + before.fees);

        const upgraded = await deployWithJournal(UpgradeModule, deploymentDir);
        // The journal made Ignition reuse the System deployment rather than deploy another.
        expect(upgraded["System#PayPerUseProxy"]).to.equal(ppuAddress);
        const implNext = upgraded["Upgrade#PayPerUseImplNext"];
        expect(implNext).to.not.equal(system["System#PayPerUseImpl"]);
        expect(await implementationOf(ppuAddress)).to.equal(implNext);
        expect({
          receipt: [...(await ppu.getReceipt(1n))],
          session: [...(await ppu.getSession(sessionId))],
          fees: await ppu.accruedFees(tokenAddress),
          config: [...(await ppu.config())],
          balance: await token.balanceOf(ppuAddress),
        }).to.deep.equal(before);

        // The session goes on: a larger voucher pays the difference, the refund and the settlement work.
        const next = { sessionId, amount: usd(30), calls: 3n };
        await expect(ppu.redeem(next, await signVoucher(ppu, alice, next))).to.changeTokenBalances(
          token,
          [bob, ppu],
          [usd("9.9"), -usd("9.9")],
        );
        await expect(ppu.connect(bob).refund(1n, usd(5))).to.changeTokenBalances(
          token,
          [bob, alice],
          [-usd(5), usd(5)],
        );
        await ppu.connect(alice).requestClose(sessionId);
        await time.increase(CLOSE_GRACE + 1n);
        await expect(ppu.settleSession(sessionId)).to.changeTokenBalances(token, [alice, ppu], [usd(20), -usd(20)]);
        expect(await token.balanceOf(ppuAddress)).to.equal(await ppu.accruedFees(tokenAddress));
      } finally {
        fs.rmSync(deploymentDir, { recursive: true, force: true });
      }
    });
  });
});
