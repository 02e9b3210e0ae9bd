import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { ContractTransactionResponse, Signer } from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import {
  CLOSE_GRACE,
  DAY,
  HOUR,
  PPU_FEE_BPS,
  deployPayPerUse,
  openSession,
  signVoucher,
  type PayPerUseFixture,
  type VoucherValue,
  serviceToken,
} from "../fixtures/payPerUse";
import { now, signAgentWallet, usd } from "../fixtures/helpers";
import { IERC20__factory, MockERC1271Wallet__factory, type MockStablecoin } from "../../typechain-types";

// ---------------------------------------------------------------------- constants

const BPS = 10_000n;
const DEPOSIT = usd(100); // openSession's default deposit
const MAX_SESSION_DURATION = 365n * DAY;
const MAX_BATCH = 256n;
const UINT96_MAX = 2n ** 96n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const UNKNOWN_SESSION = 99n;

/** The protocol fee of `amount` (rounded down). */
const feeOf = (amount: bigint, feeBps = PPU_FEE_BPS) => (amount * feeBps) / BPS;
/** What the provider receives of `amount`. */
const netOf = (amount: bigint, feeBps = PPU_FEE_BPS) => amount - feeOf(amount, feeBps);

// ---------------------------------------------------------------------- helpers

async function timestampOf(tx: ContractTransactionResponse) {
  const receipt = await tx.wait();
  return BigInt((await ethers.provider.getBlock(receipt!.blockNumber))!.timestamp);
}

/** A voucher of `sessionId` and its signature by `signer`. */
async function voucher(f: PayPerUseFixture, signer: Signer, sessionId: bigint, amount: bigint, calls: bigint) {
  const v: VoucherValue = { sessionId, amount, calls };
  return { v, sig: await signVoucher(f.payPerUse, signer, v) };
}

/** A session as a plain object of its twelve fields. */
async function sessionOf(f: PayPerUseFixture, id: bigint) {
  const s = await f.payPerUse.getSession(id);
  return {
    token: s.token,
    endsAt: s.endsAt,
    closeGrace: s.closeGrace,
    closing: s.closing,
    settled: s.settled,
    feeBps: s.feeBps,
    signer: s.signer,
    payerId: s.payerId,
    providerId: s.providerId,
    deposit: s.deposit,
    redeemed: s.redeemed,
    calls: s.calls,
  };
}

/** Feedback rights of `rater` on `agentId` as a plain [count, weight]. */
async function rightsOf(f: PayPerUseFixture, agentId: bigint, rater: string) {
  const [count, weight] = await f.reputation.feedbackRights(agentId, rater);
  return [count, weight];
}

async function endsAtOf(f: PayPerUseFixture, id: bigint) {
  return (await f.payPerUse.getSession(id)).endsAt;
}

/** `who` opens a session of `payerId` with `providerId` in `token`, expiring in a day. */
async function open(
  f: PayPerUseFixture,
  who: HardhatEthersSigner,
  payerId: bigint,
  providerId: bigint,
  token: MockStablecoin,
  deposit = DEPOSIT,
  signer = who.address,
) {
  const expiry = (await now()) + DAY;
  await f.payPerUse.connect(who).openSession(payerId, providerId, await token.getAddress(), deposit, expiry, signer);
  return f.payPerUse.sessionCount();
}

/** Moves past the end of a session (one second after `endsAt`). */
async function passEnd(f: PayPerUseFixture, id: bigint) {
  await time.increaseTo((await endsAtOf(f, id)) + 1n);
}

/** `wallet` becomes the agent wallet of `agentId` (owned by `owner`). */
async function setWallet(
  f: PayPerUseFixture,
  agentId: bigint,
  owner: HardhatEthersSigner,
  wallet: string,
  signer: Signer,
) {
  const deadline = (await now()) + 100n;
  const proof = await signAgentWallet(f.registry, signer, agentId, wallet, owner.address, deadline);
  await f.registry.connect(owner).setAgentWallet(agentId, wallet, deadline, proof);
}

/** The amounts `token` transferred from PayPerUse to `to` in `tx`, in order. */
async function payoutsTo(f: PayPerUseFixture, tx: ContractTransactionResponse, token: MockStablecoin, to: string) {
  const receipt = await tx.wait();
  const tokenAddr = await token.getAddress();
  const ppu = await f.payPerUse.getAddress();
  const out: bigint[] = [];
  for (const log of receipt!.logs) {
    if (log.address !== tokenAddr) continue;
    const parsed = token.interface.parseLog(log);
    if (parsed?.name === "Transfer" && parsed.args.from === ppu && parsed.args.to === to) out.push(parsed.args.value);
  }
  return out;
}

/**
 * PayPerUse's money rule for `token`: its balance equals, over the unsettled sessions, the deposit
 * less what the provider was paid (`redeemed - fee(redeemed)` at the session's own fee), plus every
 * credit, plus the unswept fees. `extra` adds non-signer accounts.
 */
async function expectConservation(f: PayPerUseFixture, token: string, extra: string[] = []) {
  let open = 0n;
  const count = await f.payPerUse.sessionCount();
  for (let id = 1n; id <= count; id++) {
    const s = await f.payPerUse.getSession(id);
    if (s.token !== token || s.settled) continue;
    open += s.deposit - netOf(s.redeemed, s.feeBps);
  }
  let credits = 0n;
  const accounts = [...(await ethers.getSigners()).map((s) => s.address), ...extra];
  for (const account of accounts) credits += await f.payPerUse.creditOf(token, account);
  const fees = await f.payPerUse.accruedFees(token);
  const balance = await IERC20__factory.connect(token, f.admin).balanceOf(await f.payPerUse.getAddress());
  expect(balance).to.equal(open + credits + fees);
  return { open, credits, fees };
}

// ---------------------------------------------------------------------- fixtures

/**
 * deployPayPerUse, plus: `operator` is alice's (#1) operator for 30 days with a USDT limit of
 * 200 per transaction and 250 per fixed day; `aliceWallet` (signer 9) is alice's agent wallet and
 * `bobWallet` (signer 11) bob's (#2). The wallets hold USDT and approved PayPerUse.
 */
async function withActors() {
  const f = await deployPayPerUse();
  const signers = await ethers.getSigners();
  const [aliceWallet, bobWallet] = [signers[9], signers[11]];
  const usdtAddr = await f.usdt.getAddress();
  const terms = { expiry: (await now()) + 30n * DAY, minScoreBps: 0, allowListOnly: false };
  await f.registry.connect(f.alice).setOperator(f.aliceId, f.operator.address, terms);
  const limit = { perTxCap: usd(200), periodCap: usd(250), period: DAY, rolling: false };
  await f.registry.connect(f.alice).setTokenLimit(f.aliceId, f.operator.address, usdtAddr, limit);
  await setWallet(f, f.aliceId, f.alice, aliceWallet.address, aliceWallet);
  await setWallet(f, f.bobId, f.bob, bobWallet.address, bobWallet);
  for (const who of [aliceWallet, bobWallet]) {
    await f.usdt.mint(who.address, usd(1_000_000));
    await f.usdt.connect(who).approve(await f.payPerUse.getAddress(), ethers.MaxUint256);
  }
  return { ...f, usdtAddr, aliceWallet, bobWallet };
}

/** deployPayPerUse plus session #1: alice → bob, 100 USDT, a day, alice signs the vouchers. */
async function withSession() {
  const f = await deployPayPerUse();
  const sid = await openSession(f);
  const usdtAddr = await f.usdt.getAddress();
  return { ...f, sid, usdtAddr, endsAt: await endsAtOf(f, sid) };
}

/** deployPayPerUse where alice's agent wallet is an ERC-1271 contract wallet owned by alice's EOA. */
async function withContractWallet() {
  const f = await deployPayPerUse();
  const wallet = await new MockERC1271Wallet__factory(f.admin).deploy(f.alice.address);
  const walletAddr = await wallet.getAddress();
  await setWallet(f, f.aliceId, f.alice, walletAddr, f.alice);
  return { ...f, wallet, walletAddr, usdtAddr: await f.usdt.getAddress() };
}

// ---------------------------------------------------------------------- tests

describe("PayPerUse sessions", function () {
  // ================================================================== openSession
  describe("openSession", function () {
    it("pulls the deposit, emits SessionOpened and stores every field with the fee and grace snapshotted", async function () {
      const f = await loadFixture(deployPayPerUse);
      const usdtAddr = await f.usdt.getAddress();
      const expiry = (await now()) + DAY;
      const tx = await f.payPerUse
        .connect(f.alice)
        .openSession(f.aliceId, f.bobId, usdtAddr, DEPOSIT, expiry, f.alice.address);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.payPerUse], [-DEPOSIT, 0n, DEPOSIT]);
      await expect(tx)
        .to.emit(f.payPerUse, "SessionOpened")
        .withArgs(1n, f.aliceId, f.bobId, usdtAddr, f.alice.address, DEPOSIT, expiry, PPU_FEE_BPS);
      expect(await f.payPerUse.sessionCount()).to.equal(1n);
      expect(await sessionOf(f, 1n)).to.deep.equal({
        token: usdtAddr,
        endsAt: expiry,
        closeGrace: CLOSE_GRACE,
        closing: false,
        settled: false,
        feeBps: PPU_FEE_BPS,
        signer: f.alice.address,
        payerId: f.aliceId,
        providerId: f.bobId,
        deposit: DEPOSIT,
        redeemed: 0n,
        calls: 0n,
      });
      // An unknown session reads as all zero.
      expect((await sessionOf(f, 2n)).token).to.equal(ethers.ZeroAddress);
      expect((await sessionOf(f, 2n)).deposit).to.equal(0n);
      await expectConservation(f, usdtAddr);
    });

    it("numbers sessions one by one", async function () {
      const f = await loadFixture(deployPayPerUse);
      expect(await openSession(f, usd(1))).to.equal(1n);
      expect(await openSession(f, usd(2))).to.equal(2n);
      expect((await sessionOf(f, 2n)).deposit).to.equal(usd(2));
    });

    it("later fee and close-grace changes do not affect an open session", async function () {
      const f = await loadFixture(withSession);
      await f.payPerUse.setFee(500);
      await f.payPerUse.setCloseGrace(2n * HOUR);
      expect((await sessionOf(f, f.sid)).feeBps).to.equal(PPU_FEE_BPS);
      expect((await sessionOf(f, f.sid)).closeGrace).to.equal(CLOSE_GRACE);
      // The old session pays the old fee.
      const a = await voucher(f, f.alice, f.sid, usd(10), 1n);
      await expect(f.payPerUse.redeem(a.v, a.sig))
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(f.sid, usd(10), 1n, netOf(usd(10)), feeOf(usd(10)));
      // A new session takes the new values.
      const expiry = (await now()) + DAY;
      await expect(
        f.payPerUse.connect(f.alice).openSession(f.aliceId, f.bobId, f.usdtAddr, DEPOSIT, expiry, f.alice.address),
      )
        .to.emit(f.payPerUse, "SessionOpened")
        .withArgs(2n, f.aliceId, f.bobId, f.usdtAddr, f.alice.address, DEPOSIT, expiry, 500n);
      expect((await sessionOf(f, 2n)).feeBps).to.equal(500n);
      expect((await sessionOf(f, 2n)).closeGrace).to.equal(2n * HOUR);
      const b = await voucher(f, f.alice, 2n, usd(10), 1n);
      await expect(f.payPerUse.redeem(b.v, b.sig))
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(2n, usd(10), 1n, netOf(usd(10), 500n), feeOf(usd(10), 500n));
      // Close requests use each session's own grace.
      const closeOld = await f.payPerUse.connect(f.alice).requestClose(f.sid);
      expect(await endsAtOf(f, f.sid)).to.equal((await timestampOf(closeOld)) + CLOSE_GRACE);
      const closeNew = await f.payPerUse.connect(f.alice).requestClose(2n);
      expect(await endsAtOf(f, 2n)).to.equal((await timestampOf(closeNew)) + 2n * HOUR);
      // Nothing is booked before settlement; each session books the fee of its own snapshot.
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(0n);
      await expectConservation(f, f.usdtAddr);
      await f.payPerUse.setFee(0);
      await passEnd(f, 2n);
      await expect(f.payPerUse.settleSession(f.sid))
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(f.sid, usd(10), feeOf(usd(10)), usd(90), 1n);
      await expect(f.payPerUse.settleSession(2n))
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(2n, usd(10), feeOf(usd(10), 500n), usd(90), 1n);
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(feeOf(usd(10)) + feeOf(usd(10), 500n));
      await expectConservation(f, f.usdtAddr);
    });

    it("an operator opens within its policy: the funds come from the operator and the policy is debited", async function () {
      const f = await loadFixture(withActors);
      const expiry = (await now()) + DAY;
      const tx = await f.payPerUse
        .connect(f.operator)
        .openSession(f.aliceId, f.bobId, f.usdtAddr, usd(100), expiry, f.operator.address);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.operator, f.alice, f.aliceWallet, f.payPerUse],
        [-usd(100), 0n, 0n, usd(100)],
      );
      await expect(tx)
        .to.emit(f.registry, "SpendConsumed")
        .withArgs(f.aliceId, f.operator.address, f.usdtAddr, usd(100), f.bobId);
      await expect(tx)
        .to.emit(f.payPerUse, "SessionOpened")
        .withArgs(1n, f.aliceId, f.bobId, f.usdtAddr, f.operator.address, usd(100), expiry, PPU_FEE_BPS);
      expect(await f.registry.availableToSpend(f.aliceId, f.operator.address, f.usdtAddr)).to.equal(usd(150));
      expect((await sessionOf(f, 1n)).signer).to.equal(f.operator.address);
      // The operator, as session key, signs vouchers that pay bob (at his agent wallet).
      const a = await voucher(f, f.operator, 1n, usd(4), 16n);
      await expect(f.payPerUse.connect(f.bob).redeem(a.v, a.sig)).to.changeTokenBalances(
        f.usdt,
        [f.bobWallet, f.bob, f.payPerUse],
        [netOf(usd(4)), 0n, -netOf(usd(4))],
      );
      // The rest goes to the payer agent's wallet, not back to the operator that funded it.
      await passEnd(f, 1n);
      await expect(f.payPerUse.settleSession(1n)).to.changeTokenBalances(
        f.usdt,
        [f.aliceWallet, f.operator, f.alice, f.payPerUse],
        [usd(96), 0n, 0n, -usd(96)],
      );
    });

    it("an operator above its caps reverts with the registry's errors", async function () {
      const f = await loadFixture(withActors);
      const expiry = (await now()) + DAY;
      const openAs = (amount: bigint) =>
        f.payPerUse.connect(f.operator).openSession(f.aliceId, f.bobId, f.usdtAddr, amount, expiry, f.alice.address);
      await expect(openAs(usd(200) + 1n))
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryPerTxCapExceeded")
        .withArgs(f.usdtAddr, usd(200) + 1n, usd(200));
      await openAs(usd(100));
      await openAs(usd(100));
      await expect(openAs(usd(100)))
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryPeriodCapExceeded")
        .withArgs(f.usdtAddr, usd(100), usd(50));
      // Another token is not in the operator's policy at all.
      await expect(
        f.payPerUse
          .connect(f.operator)
          .openSession(f.aliceId, f.bobId, await f.usdg.getAddress(), usd(1), expiry, f.alice.address),
      )
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryTokenNotAllowed")
        .withArgs(f.aliceId, f.operator.address, await f.usdg.getAddress());
      expect(await f.payPerUse.sessionCount()).to.equal(2n);
    });

    it("the agent wallet may open a session and sign its vouchers", async function () {
      const f = await loadFixture(withActors);
      const expiry = (await now()) + DAY;
      await expect(
        f.payPerUse
          .connect(f.aliceWallet)
          .openSession(f.aliceId, f.bobId, f.usdtAddr, DEPOSIT, expiry, f.aliceWallet.address),
      ).to.changeTokenBalances(f.usdt, [f.aliceWallet, f.alice, f.payPerUse], [-DEPOSIT, 0n, DEPOSIT]);
      // The agent wallet spends outside any policy: the operator's allowance is untouched.
      expect(await f.registry.availableToSpend(f.aliceId, f.operator.address, f.usdtAddr)).to.equal(usd(200));
    });

    it("reverts with AgentRegistryNotAuthorized when a stranger opens for alice", async function () {
      const f = await loadFixture(deployPayPerUse);
      const expiry = (await now()) + DAY;
      await expect(
        f.payPerUse
          .connect(f.stranger)
          .openSession(f.aliceId, f.bobId, await f.usdt.getAddress(), DEPOSIT, expiry, f.alice.address),
      )
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryNotAuthorized")
        .withArgs(f.aliceId, f.stranger.address);
      // The provider of the session cannot open for its payer either.
      await expect(
        f.payPerUse
          .connect(f.bob)
          .openSession(f.aliceId, f.bobId, await f.usdt.getAddress(), DEPOSIT, expiry, f.alice.address),
      )
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryNotAuthorized")
        .withArgs(f.aliceId, f.bob.address);
      expect(await f.payPerUse.sessionCount()).to.equal(0n);
    });

    it("reverts with PayPerUseNotAuthorized(payerId, signer) when the signer cannot act for the payer", async function () {
      const f = await loadFixture(deployPayPerUse);
      const usdtAddr = await f.usdt.getAddress();
      const expiry = (await now()) + DAY;
      for (const signer of [f.bob.address, f.stranger.address, ethers.ZeroAddress]) {
        await expect(f.payPerUse.connect(f.alice).openSession(f.aliceId, f.bobId, usdtAddr, DEPOSIT, expiry, signer))
          .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNotAuthorized")
          .withArgs(f.aliceId, signer);
      }
      // An unknown payer agent has nobody who can sign for it.
      await expect(f.payPerUse.connect(f.alice).openSession(77n, f.bobId, usdtAddr, DEPOSIT, expiry, f.alice.address))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNotAuthorized")
        .withArgs(77n, f.alice.address);
    });

    it("reverts with PayPerUseNotAuthorized for an operator signer whose authorisation expired", async function () {
      const f = await loadFixture(withActors);
      await time.increase(31n * DAY);
      const expiry = (await now()) + DAY;
      await expect(
        f.payPerUse.connect(f.alice).openSession(f.aliceId, f.bobId, f.usdtAddr, DEPOSIT, expiry, f.operator.address),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNotAuthorized")
        .withArgs(f.aliceId, f.operator.address);
    });

    it("reverts with PayPerUseSelfPayment when an agent opens a session with itself", async function () {
      const f = await loadFixture(deployPayPerUse);
      const expiry = (await now()) + DAY;
      await expect(
        f.payPerUse
          .connect(f.alice)
          .openSession(f.aliceId, f.aliceId, await f.usdt.getAddress(), DEPOSIT, expiry, f.alice.address),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSelfPayment")
        .withArgs(f.aliceId);
    });

    it("reverts with PayPerUseTokenNotAllowed for a token that is not (or no longer) allowed", async function () {
      const f = await loadFixture(deployPayPerUse);
      const okbAddr = await f.okb.getAddress();
      const usdtAddr = await f.usdt.getAddress();
      const expiry = (await now()) + DAY;
      expect(await f.payPerUse.tokenAllowed(okbAddr)).to.equal(false);
      await expect(
        f.payPerUse.connect(f.alice).openSession(f.aliceId, f.bobId, okbAddr, DEPOSIT, expiry, f.alice.address),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseTokenNotAllowed")
        .withArgs(okbAddr);
      await expect(
        f.payPerUse
          .connect(f.alice)
          .openSession(f.aliceId, f.bobId, ethers.ZeroAddress, DEPOSIT, expiry, f.alice.address),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseTokenNotAllowed")
        .withArgs(ethers.ZeroAddress);
      await f.payPerUse.setToken(usdtAddr, false);
      await expect(
        f.payPerUse.connect(f.alice).openSession(f.aliceId, f.bobId, usdtAddr, DEPOSIT, expiry, f.alice.address),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseTokenNotAllowed")
        .withArgs(usdtAddr);
    });

    it("a session opened before its token is disallowed is still redeemed and settled", async function () {
      const f = await loadFixture(withSession);
      await f.payPerUse.setToken(f.usdtAddr, false);
      const a = await voucher(f, f.alice, f.sid, usd(30), 3n);
      await expect(f.payPerUse.redeem(a.v, a.sig)).to.changeTokenBalance(f.usdt, f.bob, netOf(usd(30)));
      // A top-up is neither a new charge nor a new session: it is still accepted in that token.
      await expect(f.payPerUse.connect(f.alice).topUp(f.sid, usd(10), 0))
        .to.emit(f.payPerUse, "SessionToppedUp")
        .withArgs(f.sid, usd(10), usd(110), f.endsAt);
      await passEnd(f, f.sid);
      await expect(f.payPerUse.settleSession(f.sid)).to.changeTokenBalance(f.usdt, f.alice, usd(80));
      await expectConservation(f, f.usdtAddr);
    });

    it("reverts with PayPerUseBadAmount for a zero deposit or one above uint96", async function () {
      const f = await loadFixture(deployPayPerUse);
      const usdtAddr = await f.usdt.getAddress();
      const expiry = (await now()) + DAY;
      for (const amount of [0n, UINT96_MAX + 1n, ethers.MaxUint256]) {
        await expect(
          f.payPerUse.connect(f.alice).openSession(f.aliceId, f.bobId, usdtAddr, amount, expiry, f.alice.address),
        )
          .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadAmount")
          .withArgs(amount);
      }
    });

    it("accepts a deposit of exactly uint96 max", async function () {
      const f = await loadFixture(deployPayPerUse);
      const usdtAddr = await f.usdt.getAddress();
      await f.usdt.mint(f.alice.address, UINT96_MAX);
      const expiry = (await now()) + DAY;
      await expect(
        f.payPerUse.connect(f.alice).openSession(f.aliceId, f.bobId, usdtAddr, UINT96_MAX, expiry, f.alice.address),
      ).to.changeTokenBalances(f.usdt, [f.alice, f.payPerUse], [-UINT96_MAX, UINT96_MAX]);
      expect((await sessionOf(f, 1n)).deposit).to.equal(UINT96_MAX);
    });

    it("reverts with PayPerUseBadExpiry for an expiry now, in the past or beyond MAX_SESSION_DURATION", async function () {
      const f = await loadFixture(deployPayPerUse);
      const usdtAddr = await f.usdt.getAddress();
      expect(await f.payPerUse.MAX_SESSION_DURATION()).to.equal(MAX_SESSION_DURATION);
      const openAt = (expiry: bigint) =>
        f.payPerUse.connect(f.alice).openSession(f.aliceId, f.bobId, usdtAddr, DEPOSIT, expiry, f.alice.address);
      // Each attempt is mined (reverted) at a pinned time t, the expiry chosen relative to it.
      const bad = [(t: bigint) => t, (t: bigint) => t - 1n, () => 0n, (t: bigint) => t + MAX_SESSION_DURATION + 1n];
      for (const expiryAt of bad) {
        const t = (await now()) + 10n;
        await time.setNextBlockTimestamp(t);
        await expect(openAt(expiryAt(t)))
          .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadExpiry")
          .withArgs(expiryAt(t));
      }
      // The bounds themselves: one second ahead, and exactly MAX_SESSION_DURATION ahead.
      let t = (await now()) + 10n;
      await time.setNextBlockTimestamp(t);
      await expect(openAt(t + 1n))
        .to.emit(f.payPerUse, "SessionOpened")
        .withArgs(1n, f.aliceId, f.bobId, usdtAddr, f.alice.address, DEPOSIT, t + 1n, PPU_FEE_BPS);
      t = (await now()) + 10n;
      await time.setNextBlockTimestamp(t);
      await expect(openAt(t + MAX_SESSION_DURATION))
        .to.emit(f.payPerUse, "SessionOpened")
        .withArgs(2n, f.aliceId, f.bobId, usdtAddr, f.alice.address, DEPOSIT, t + MAX_SESSION_DURATION, PPU_FEE_BPS);
      expect(await f.payPerUse.sessionCount()).to.equal(2n);
    });

    it("reverts with PayPerUseProviderInactive for a paused, unknown or zero provider", async function () {
      const f = await loadFixture(deployPayPerUse);
      const usdtAddr = await f.usdt.getAddress();
      const expiry = (await now()) + DAY;
      const openWith = (providerId: bigint) =>
        f.payPerUse.connect(f.alice).openSession(f.aliceId, providerId, usdtAddr, DEPOSIT, expiry, f.alice.address);
      await f.registry.connect(f.bob).setAgentPaused(f.bobId, true);
      await expect(openWith(f.bobId))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseProviderInactive")
        .withArgs(f.bobId);
      await expect(openWith(99n)).to.be.revertedWithCustomError(f.payPerUse, "PayPerUseProviderInactive").withArgs(99n);
      await expect(openWith(0n)).to.be.revertedWithCustomError(f.payPerUse, "PayPerUseProviderInactive").withArgs(0n);
      // Unpaused, bob can be paid again.
      await f.registry.connect(f.bob).setAgentPaused(f.bobId, false);
      await expect(openWith(f.bobId)).to.emit(f.payPerUse, "SessionOpened");
    });

    it("reverts with EnforcedPause while paused", async function () {
      const f = await loadFixture(deployPayPerUse);
      await f.payPerUse.pause();
      const expiry = (await now()) + DAY;
      await expect(
        f.payPerUse
          .connect(f.alice)
          .openSession(f.aliceId, f.bobId, await f.usdt.getAddress(), DEPOSIT, expiry, f.alice.address),
      ).to.be.revertedWithCustomError(f.payPerUse, "EnforcedPause");
      await f.payPerUse.unpause();
      expect(await openSession(f)).to.equal(1n);
    });
  });

  // ================================================================== topUp
  describe("topUp", function () {
    it("adds to the deposit exactly and keeps the expiry when newExpiry is 0", async function () {
      const f = await loadFixture(withSession);
      const tx = await f.payPerUse.connect(f.alice).topUp(f.sid, usd(50), 0);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.payPerUse], [-usd(50), 0n, usd(50)]);
      await expect(tx).to.emit(f.payPerUse, "SessionToppedUp").withArgs(f.sid, usd(50), usd(150), f.endsAt);
      expect((await sessionOf(f, f.sid)).deposit).to.equal(usd(150));
      expect(await endsAtOf(f, f.sid)).to.equal(f.endsAt);
      // The larger deposit is redeemable.
      const a = await voucher(f, f.alice, f.sid, usd(120), 480n);
      await expect(f.payPerUse.redeem(a.v, a.sig)).to.changeTokenBalance(f.usdt, f.bob, netOf(usd(120)));
      await expectConservation(f, f.usdtAddr);
    });

    it("extends the expiry (an equal expiry is accepted and changes nothing)", async function () {
      const f = await loadFixture(withSession);
      const later = f.endsAt + DAY;
      await expect(f.payPerUse.connect(f.alice).topUp(f.sid, usd(1), later))
        .to.emit(f.payPerUse, "SessionToppedUp")
        .withArgs(f.sid, usd(1), usd(101), later);
      expect(await endsAtOf(f, f.sid)).to.equal(later);
      await expect(f.payPerUse.connect(f.alice).topUp(f.sid, usd(1), later))
        .to.emit(f.payPerUse, "SessionToppedUp")
        .withArgs(f.sid, usd(1), usd(102), later);
      // Vouchers are redeemable past the original expiry.
      await time.increaseTo(f.endsAt + 1n);
      const a = await voucher(f, f.alice, f.sid, usd(10), 1n);
      await expect(f.payPerUse.redeem(a.v, a.sig)).to.changeTokenBalance(f.usdt, f.bob, netOf(usd(10)));
    });

    it("reverts with PayPerUseBadExpiry for an expiry earlier than the current one or too far ahead", async function () {
      const f = await loadFixture(withSession);
      await expect(f.payPerUse.connect(f.alice).topUp(f.sid, usd(1), f.endsAt - 1n))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadExpiry")
        .withArgs(f.endsAt - 1n);
      const t = (await now()) + 10n;
      await time.setNextBlockTimestamp(t);
      await expect(f.payPerUse.connect(f.alice).topUp(f.sid, usd(1), t + MAX_SESSION_DURATION + 1n))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadExpiry")
        .withArgs(t + MAX_SESSION_DURATION + 1n);
      await time.setNextBlockTimestamp(t + 1n);
      await expect(f.payPerUse.connect(f.alice).topUp(f.sid, usd(1), t + 1n + MAX_SESSION_DURATION))
        .to.emit(f.payPerUse, "SessionToppedUp")
        .withArgs(f.sid, usd(1), usd(101), t + 1n + MAX_SESSION_DURATION);
      expect((await sessionOf(f, f.sid)).deposit).to.equal(usd(101));
    });

    it("reverts with PayPerUseBadAmount for 0 or when the deposit would pass uint96", async function () {
      const f = await loadFixture(withSession);
      await expect(f.payPerUse.connect(f.alice).topUp(f.sid, 0n, 0))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadAmount")
        .withArgs(0n);
      await expect(f.payPerUse.connect(f.alice).topUp(f.sid, UINT96_MAX - DEPOSIT + 1n, 0))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadAmount")
        .withArgs(UINT96_MAX + 1n);
      // Up to exactly uint96 max is fine.
      await f.usdt.mint(f.alice.address, UINT96_MAX);
      await expect(f.payPerUse.connect(f.alice).topUp(f.sid, UINT96_MAX - DEPOSIT, 0))
        .to.emit(f.payPerUse, "SessionToppedUp")
        .withArgs(f.sid, UINT96_MAX - DEPOSIT, UINT96_MAX, f.endsAt);
    });

    it("reverts with PayPerUseSessionClosing once a close was requested", async function () {
      const f = await loadFixture(withSession);
      await f.payPerUse.connect(f.alice).requestClose(f.sid);
      await expect(f.payPerUse.connect(f.alice).topUp(f.sid, usd(1), 0))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSessionClosing")
        .withArgs(f.sid);
      await expect(f.payPerUse.connect(f.alice).topUp(f.sid, usd(1), f.endsAt + DAY))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSessionClosing")
        .withArgs(f.sid);
    });

    it("accepts a top-up at the last second and reverts with PayPerUseSessionEnded after it", async function () {
      const f = await loadFixture(withSession);
      await time.setNextBlockTimestamp(f.endsAt);
      await expect(f.payPerUse.connect(f.alice).topUp(f.sid, usd(1), 0))
        .to.emit(f.payPerUse, "SessionToppedUp")
        .withArgs(f.sid, usd(1), usd(101), f.endsAt);
      await expect(f.payPerUse.connect(f.alice).topUp(f.sid, usd(1), f.endsAt + DAY))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSessionEnded")
        .withArgs(f.sid, f.endsAt);
    });

    it("reverts with PayPerUseSessionSettled on a settled session", async function () {
      const f = await loadFixture(withSession);
      await passEnd(f, f.sid);
      await f.payPerUse.settleSession(f.sid);
      await expect(f.payPerUse.connect(f.alice).topUp(f.sid, usd(1), 0))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSessionSettled")
        .withArgs(f.sid);
    });

    it("reverts with PayPerUseUnknownSession for an unknown session", async function () {
      const f = await loadFixture(withSession);
      await expect(f.payPerUse.connect(f.alice).topUp(UNKNOWN_SESSION, usd(1), 0))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseUnknownSession")
        .withArgs(UNKNOWN_SESSION);
      await expect(f.payPerUse.connect(f.alice).topUp(0n, usd(1), 0))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseUnknownSession")
        .withArgs(0n);
    });

    it("reverts with EnforcedPause while paused", async function () {
      const f = await loadFixture(withSession);
      await f.payPerUse.pause();
      await expect(f.payPerUse.connect(f.alice).topUp(f.sid, usd(1), 0)).to.be.revertedWithCustomError(
        f.payPerUse,
        "EnforcedPause",
      );
    });

    it("debits an operator's policy and takes the operator's funds; strangers and the provider cannot top up", async function () {
      const f = await loadFixture(withActors);
      const sid = await openSession(f); // opened by alice (the owner)
      const endsAt = await endsAtOf(f, sid);
      const tx = await f.payPerUse.connect(f.operator).topUp(sid, usd(60), endsAt + HOUR);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.operator, f.alice, f.aliceWallet, f.payPerUse],
        [-usd(60), 0n, 0n, usd(60)],
      );
      await expect(tx)
        .to.emit(f.registry, "SpendConsumed")
        .withArgs(f.aliceId, f.operator.address, f.usdtAddr, usd(60), f.bobId);
      await expect(tx)
        .to.emit(f.payPerUse, "SessionToppedUp")
        .withArgs(sid, usd(60), usd(160), endsAt + HOUR);
      expect(await f.registry.availableToSpend(f.aliceId, f.operator.address, f.usdtAddr)).to.equal(usd(190));
      await expect(f.payPerUse.connect(f.operator).topUp(sid, usd(200) + 1n, 0))
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryPerTxCapExceeded")
        .withArgs(f.usdtAddr, usd(200) + 1n, usd(200));
      for (const who of [f.stranger, f.bob, f.bobWallet]) {
        await expect(f.payPerUse.connect(who).topUp(sid, usd(1), 0))
          .to.be.revertedWithCustomError(f.registry, "AgentRegistryNotAuthorized")
          .withArgs(f.aliceId, who.address);
      }
      // The agent wallet tops up without a policy.
      await expect(f.payPerUse.connect(f.aliceWallet).topUp(sid, usd(500), 0)).to.changeTokenBalances(
        f.usdt,
        [f.aliceWallet, f.payPerUse],
        [-usd(500), usd(500)],
      );
      expect((await sessionOf(f, sid)).deposit).to.equal(usd(660));
      expect(await f.registry.availableToSpend(f.aliceId, f.operator.address, f.usdtAddr)).to.equal(usd(190));
    });
  });

  // ================================================================== redeem
  describe("redeem", function () {
    it("pays the provider the new part minus the fee, books no fee until settlement, and emits VoucherRedeemed", async function () {
      const f = await loadFixture(withSession);
      const a = await voucher(f, f.alice, f.sid, usd(10), 40n);
      expect(await f.payPerUse.connect(f.bob).redeem.staticCall(a.v, a.sig)).to.equal(netOf(usd(10)));
      const tx = await f.payPerUse.connect(f.bob).redeem(a.v, a.sig);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.bob, f.alice, f.treasury, f.payPerUse],
        [usd("9.9"), 0n, 0n, -usd("9.9")],
      );
      await expect(tx).to.emit(f.payPerUse, "VoucherRedeemed").withArgs(f.sid, usd(10), 40n, usd("9.9"), usd("0.1"));
      // The fee stays in the contract but is not booked for the treasury yet.
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(0n);
      // A later voucher pays only the difference.
      const b = await voucher(f, f.alice, f.sid, usd(25), 100n);
      const tx2 = await f.payPerUse.connect(f.bob).redeem(b.v, b.sig);
      await expect(tx2).to.changeTokenBalances(f.usdt, [f.bob, f.payPerUse], [usd("14.85"), -usd("14.85")]);
      await expect(tx2)
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(f.sid, usd(25), 100n, usd("14.85"), usd("0.15"));
      const s = await sessionOf(f, f.sid);
      expect([s.redeemed, s.calls, s.deposit]).to.deep.equal([usd(25), 100n, DEPOSIT]);
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(0n);
      expect(await f.usdt.balanceOf(await f.payPerUse.getAddress())).to.equal(usd(75) + usd("0.25"));
      await expectConservation(f, f.usdtAddr);
      // There is nothing to sweep before the session is settled.
      await expect(f.payPerUse.connect(f.stranger).sweepFees(f.usdtAddr))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNothingToWithdraw")
        .withArgs(f.usdtAddr, f.treasury.address);
      await passEnd(f, f.sid);
      const settle = await f.payPerUse.settleSession(f.sid);
      await expect(settle).to.emit(f.payPerUse, "SessionSettled").withArgs(f.sid, usd(25), usd("0.25"), usd(75), 100n);
      await expect(settle).to.changeTokenBalances(f.usdt, [f.alice, f.payPerUse], [usd(75), -usd(75)]);
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(usd("0.25"));
      await expectConservation(f, f.usdtAddr);
      // The treasury receives the fees when swept.
      await expect(f.payPerUse.connect(f.stranger).sweepFees(f.usdtAddr)).to.changeTokenBalances(
        f.usdt,
        [f.treasury, f.payPerUse],
        [usd("0.25"), -usd("0.25")],
      );
      await expectConservation(f, f.usdtAddr);
    });

    it("pays the provider at its agent wallet, read at payment time", async function () {
      const f = await loadFixture(withActors);
      const sid = await openSession(f);
      const a = await voucher(f, f.alice, sid, usd(10), 1n);
      await expect(f.payPerUse.redeem(a.v, a.sig)).to.changeTokenBalances(
        f.usdt,
        [f.bobWallet, f.bob],
        [usd("9.9"), 0n],
      );
      await f.registry.connect(f.bob).unsetAgentWallet(f.bobId);
      const b = await voucher(f, f.alice, sid, usd(20), 2n);
      await expect(f.payPerUse.redeem(b.v, b.sig)).to.changeTokenBalances(
        f.usdt,
        [f.bobWallet, f.bob],
        [0n, usd("9.9")],
      );
    });

    it("a stale voucher (at or below what was redeemed) pays nothing and does not revert", async function () {
      const f = await loadFixture(withSession);
      const a = await voucher(f, f.alice, f.sid, usd(10), 40n);
      await f.payPerUse.redeem(a.v, a.sig);
      const lower = await voucher(f, f.alice, f.sid, usd(5), 80n);
      for (const stale of [a, lower]) {
        expect(await f.payPerUse.redeem.staticCall(stale.v, stale.sig)).to.equal(0n);
        const tx = await f.payPerUse.connect(f.bob).redeem(stale.v, stale.sig);
        await expect(tx).not.to.emit(f.payPerUse, "VoucherRedeemed");
        await expect(tx).to.changeTokenBalances(f.usdt, [f.bob, f.payPerUse], [0n, 0n]);
      }
      // A stale voucher does not raise the calls either.
      expect((await sessionOf(f, f.sid)).calls).to.equal(40n);
      expect((await sessionOf(f, f.sid)).redeemed).to.equal(usd(10));
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(0n);
      expect(await f.usdt.balanceOf(await f.payPerUse.getAddress())).to.equal(DEPOSIT - usd("9.9"));
      await expectConservation(f, f.usdtAddr);
    });

    it("caps a voucher above the deposit at the deposit; a top-up makes the rest redeemable", async function () {
      const f = await loadFixture(withSession);
      const big = await voucher(f, f.alice, f.sid, usd(150), 600n);
      const tx = await f.payPerUse.redeem(big.v, big.sig);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.bob, f.payPerUse], [netOf(DEPOSIT), -netOf(DEPOSIT)]);
      await expect(tx)
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(f.sid, DEPOSIT, 600n, netOf(DEPOSIT), feeOf(DEPOSIT));
      expect((await sessionOf(f, f.sid)).redeemed).to.equal(DEPOSIT);
      // Nothing more to redeem: even a larger voucher is now stale.
      const bigger = await voucher(f, f.alice, f.sid, usd(200), 800n);
      await expect(f.payPerUse.redeem(bigger.v, bigger.sig)).not.to.emit(f.payPerUse, "VoucherRedeemed");
      expect(await f.usdt.balanceOf(await f.payPerUse.getAddress())).to.equal(feeOf(DEPOSIT));
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(0n);
      // After a top-up the same voucher pays its remaining 50.
      await f.payPerUse.connect(f.alice).topUp(f.sid, usd(50), 0);
      await expect(f.payPerUse.redeem(big.v, big.sig))
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(f.sid, usd(150), 600n, netOf(usd(50)), feeOf(usd(50)));
      expect((await sessionOf(f, f.sid)).redeemed).to.equal(usd(150));
      await expectConservation(f, f.usdtAddr);
      await passEnd(f, f.sid);
      await expect(f.payPerUse.settleSession(f.sid))
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(f.sid, usd(150), feeOf(usd(150)), 0n, 600n);
      expect(await f.usdt.balanceOf(await f.payPerUse.getAddress())).to.equal(feeOf(usd(150)));
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(feeOf(usd(150)));
      await expectConservation(f, f.usdtAddr);
    });

    it("tracks the largest number of calls redeemed, capped at uint64", async function () {
      const f = await loadFixture(withSession);
      const a = await voucher(f, f.alice, f.sid, usd(10), 50n);
      await f.payPerUse.redeem(a.v, a.sig);
      // A larger amount with fewer calls pays, but the calls stay at the maximum (and the event says so).
      const b = await voucher(f, f.alice, f.sid, usd(12), 30n);
      await expect(f.payPerUse.redeem(b.v, b.sig))
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(f.sid, usd(12), 50n, netOf(usd(2)), feeOf(usd(2)));
      expect((await sessionOf(f, f.sid)).calls).to.equal(50n);
      const c = await voucher(f, f.alice, f.sid, usd(15), 70n);
      await expect(f.payPerUse.redeem(c.v, c.sig))
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(f.sid, usd(15), 70n, netOf(usd(3)), feeOf(usd(3)));
      expect((await sessionOf(f, f.sid)).calls).to.equal(70n);
      const d = await voucher(f, f.alice, f.sid, usd(16), 2n ** 64n + 5n);
      await expect(f.payPerUse.redeem(d.v, d.sig))
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(f.sid, usd(16), UINT64_MAX, netOf(usd(1)), feeOf(usd(1)));
      expect((await sessionOf(f, f.sid)).calls).to.equal(UINT64_MAX);
      // Once at the cap, a voucher with few calls still reports the cap.
      const e = await voucher(f, f.alice, f.sid, usd(17), 1n);
      await expect(f.payPerUse.redeem(e.v, e.sig))
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(f.sid, usd(17), UINT64_MAX, netOf(usd(1)), feeOf(usd(1)));
      expect((await sessionOf(f, f.sid)).calls).to.equal(UINT64_MAX);
    });

    it("anyone may submit a voucher; the money only goes to the provider", async function () {
      const f = await loadFixture(withSession);
      const a = await voucher(f, f.alice, f.sid, usd(10), 1n);
      await expect(f.payPerUse.connect(f.stranger).redeem(a.v, a.sig)).to.changeTokenBalances(
        f.usdt,
        [f.stranger, f.bob, f.alice, f.payPerUse],
        [0n, usd("9.9"), 0n, -usd("9.9")],
      );
    });

    it("redeems at endsAt (inclusive) and reverts with PayPerUseSessionEnded after it", async function () {
      const f = await loadFixture(withSession);
      const a = await voucher(f, f.alice, f.sid, usd(10), 1n);
      const b = await voucher(f, f.alice, f.sid, usd(20), 2n);
      await time.setNextBlockTimestamp(f.endsAt);
      await expect(f.payPerUse.redeem(a.v, a.sig)).to.changeTokenBalance(f.usdt, f.bob, usd("9.9"));
      await expect(f.payPerUse.redeem(b.v, b.sig))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSessionEnded")
        .withArgs(f.sid, f.endsAt);
    });

    it("reverts with PayPerUseBadSignature(signer) for a wrong signer or altered voucher", async function () {
      const f = await loadFixture(withSession);
      const byBob = await voucher(f, f.bob, f.sid, usd(10), 1n);
      await expect(f.payPerUse.connect(f.bob).redeem(byBob.v, byBob.sig))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadSignature")
        .withArgs(f.alice.address);
      const a = await voucher(f, f.alice, f.sid, usd(10), 1n);
      for (const altered of [
        { ...a.v, amount: usd(11) },
        { ...a.v, calls: 2n },
      ]) {
        await expect(f.payPerUse.connect(f.bob).redeem(altered, a.sig))
          .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadSignature")
          .withArgs(f.alice.address);
      }
      await expect(f.payPerUse.connect(f.bob).redeem(a.v, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadSignature")
        .withArgs(f.alice.address);
      expect((await sessionOf(f, f.sid)).redeemed).to.equal(0n);
    });

    it("rejects a voucher signed by the payer's owner when the session signer is an operator", async function () {
      const f = await loadFixture(withActors);
      const sid = await openSession(f, DEPOSIT, f.operator.address);
      const byOwner = await voucher(f, f.alice, sid, usd(10), 1n);
      await expect(f.payPerUse.redeem(byOwner.v, byOwner.sig))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadSignature")
        .withArgs(f.operator.address);
      const byWallet = await voucher(f, f.aliceWallet, sid, usd(10), 1n);
      await expect(f.payPerUse.redeem(byWallet.v, byWallet.sig))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadSignature")
        .withArgs(f.operator.address);
      const byOperator = await voucher(f, f.operator, sid, usd(10), 1n);
      await expect(f.payPerUse.redeem(byOperator.v, byOperator.sig)).to.changeTokenBalance(
        f.usdt,
        f.bobWallet,
        usd("9.9"),
      );
    });

    it("keeps honouring the session signer after it loses its operator rights", async function () {
      const f = await loadFixture(withActors);
      const sid = await openSession(f, DEPOSIT, f.operator.address);
      await f.registry.connect(f.alice).revokeOperator(f.aliceId, f.operator.address);
      expect(await f.registry.canAct(f.aliceId, f.operator.address)).to.equal(false);
      const a = await voucher(f, f.operator, sid, usd(10), 1n);
      await expect(f.payPerUse.redeem(a.v, a.sig)).to.changeTokenBalance(f.usdt, f.bobWallet, usd("9.9"));
    });

    it("works while paused", async function () {
      const f = await loadFixture(withSession);
      await f.payPerUse.pause();
      const a = await voucher(f, f.alice, f.sid, usd(10), 1n);
      await expect(f.payPerUse.redeem(a.v, a.sig)).to.changeTokenBalance(f.usdt, f.bob, usd("9.9"));
      await expect(
        f.payPerUse.redeemMany(
          [{ ...a.v, amount: usd(20) }],
          [await signVoucher(f.payPerUse, f.alice, { ...a.v, amount: usd(20) })],
        ),
      )
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(f.sid, usd(20), 1n, usd("9.9"), usd("0.1"));
    });

    it("accepts an ERC-1271 session signer, and refuses once the wallet rejects", async function () {
      const f = await loadFixture(withContractWallet);
      const sid = await openSession(f, DEPOSIT, f.walletAddr);
      expect((await sessionOf(f, sid)).signer).to.equal(f.walletAddr);
      const a = await voucher(f, f.alice, sid, usd(10), 1n); // the wallet's owner signs the raw digest
      await expect(f.payPerUse.redeem(a.v, a.sig)).to.changeTokenBalance(f.usdt, f.bob, usd("9.9"));
      await f.wallet.connect(f.alice).setRejectAll(true);
      const b = await voucher(f, f.alice, sid, usd(20), 2n);
      await expect(f.payPerUse.redeem(b.v, b.sig))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadSignature")
        .withArgs(f.walletAddr);
      await f.wallet.connect(f.alice).setRejectAll(false);
      // A signature by someone other than the wallet's owner is refused.
      const byBob = await voucher(f, f.bob, sid, usd(20), 2n);
      await expect(f.payPerUse.redeem(byBob.v, byBob.sig))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadSignature")
        .withArgs(f.walletAddr);
      // The rest of the session goes back to the contract wallet (the agent wallet).
      await passEnd(f, sid);
      await expect(f.payPerUse.settleSession(sid)).to.changeTokenBalances(
        f.usdt,
        [f.wallet, f.alice, f.payPerUse],
        [usd(90), 0n, -usd(90)],
      );
    });

    it("reverts with PayPerUseUnknownSession for an unknown session", async function () {
      const f = await loadFixture(withSession);
      const a = await voucher(f, f.alice, UNKNOWN_SESSION, usd(1), 1n);
      await expect(f.payPerUse.redeem(a.v, a.sig))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseUnknownSession")
        .withArgs(UNKNOWN_SESSION);
    });
  });

  // ================================================================== redeemMany
  describe("redeemMany", function () {
    it("redeems across sessions, providers and tokens; consecutive same provider+token paid in one transfer", async function () {
      const f = await loadFixture(deployPayPerUse);
      const usdtAddr = await f.usdt.getAddress();
      const usdgAddr = await f.usdg.getAddress();
      const s1 = await open(f, f.alice, f.aliceId, f.bobId, f.usdt); // alice → bob, USDT
      const s2 = await open(f, f.alice, f.aliceId, f.bobId, f.usdt); // alice → bob, USDT
      const s3 = await open(f, f.dave, f.daveId, f.bobId, f.usdt); // dave → bob, USDT
      const s4 = await open(f, f.alice, f.aliceId, f.carolId, f.usdg); // alice → carol, USDG
      const s5 = await open(f, f.alice, f.aliceId, f.carolId, f.usdt); // alice → carol, USDT
      const s1a = await voucher(f, f.alice, s1, usd(10), 10n);
      await f.payPerUse.redeem(s1a.v, s1a.sig); // s1 already at 10
      const batch = [
        await voucher(f, f.alice, s1, usd(20), 20n), // bob USDT: 10 new
        await voucher(f, f.alice, s2, usd(20), 5n), // bob USDT: 20 new
        await voucher(f, f.alice, s1, usd(15), 15n), // stale: skipped, the group continues
        await voucher(f, f.dave, s3, usd(30), 7n), // bob USDT: 30 new  → one transfer of 60 - fees
        await voucher(f, f.alice, s4, usd(40), 4n), // carol USDG → one transfer
        await voucher(f, f.alice, s5, usd(15), 3n), // carol USDT → one transfer
        await voucher(f, f.alice, s2, usd(25), 6n), // bob USDT again: 5 new → a new transfer
      ];
      const vouchers = batch.map((b) => b.v);
      const sigs = batch.map((b) => b.sig);
      const bobFirst = netOf(usd(10)) + netOf(usd(20)) + netOf(usd(30));
      const bobSecond = netOf(usd(5));
      const carolUsdt = netOf(usd(15));
      const carolUsdg = netOf(usd(40));
      expect(await f.payPerUse.connect(f.stranger).redeemMany.staticCall(vouchers, sigs)).to.equal(
        bobFirst + bobSecond + carolUsdt + carolUsdg,
      );
      const tx = await f.payPerUse.connect(f.stranger).redeemMany(vouchers, sigs);
      expect(await payoutsTo(f, tx, f.usdt, f.bob.address)).to.deep.equal([bobFirst, bobSecond]);
      expect(await payoutsTo(f, tx, f.usdt, f.carol.address)).to.deep.equal([carolUsdt]);
      expect(await payoutsTo(f, tx, f.usdg, f.carol.address)).to.deep.equal([carolUsdg]);
      expect(await payoutsTo(f, tx, f.usdg, f.bob.address)).to.deep.equal([]);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.bob, f.carol, f.alice, f.dave, f.stranger, f.payPerUse],
        [bobFirst + bobSecond, carolUsdt, 0n, 0n, 0n, -(bobFirst + bobSecond + carolUsdt)],
      );
      await expect(tx).to.changeTokenBalances(f.usdg, [f.carol, f.payPerUse], [carolUsdg, -carolUsdg]);
      await expect(tx)
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(s1, usd(20), 20n, netOf(usd(10)), feeOf(usd(10)));
      await expect(tx)
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(s2, usd(20), 5n, netOf(usd(20)), feeOf(usd(20)));
      await expect(tx)
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(s3, usd(30), 7n, netOf(usd(30)), feeOf(usd(30)));
      await expect(tx)
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(s4, usd(40), 4n, netOf(usd(40)), feeOf(usd(40)));
      await expect(tx)
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(s5, usd(15), 3n, netOf(usd(15)), feeOf(usd(15)));
      await expect(tx)
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(s2, usd(25), 6n, netOf(usd(5)), feeOf(usd(5)));
      const ppuAddr = await f.payPerUse.getAddress();
      const events = (await tx.wait())!.logs.filter(
        (l) => l.address === ppuAddr && f.payPerUse.interface.parseLog(l)?.name === "VoucherRedeemed",
      );
      expect(events.length).to.equal(6);
      // No fee is booked by redeeming.
      expect(await f.payPerUse.accruedFees(usdtAddr)).to.equal(0n);
      expect(await f.payPerUse.accruedFees(usdgAddr)).to.equal(0n);
      expect((await sessionOf(f, s1)).redeemed).to.equal(usd(20));
      expect((await sessionOf(f, s2)).redeemed).to.equal(usd(25));
      expect((await sessionOf(f, s2)).calls).to.equal(6n);
      await expectConservation(f, usdtAddr);
      await expectConservation(f, usdgAddr);
      // Settling books each session's fee on its redeemed total.
      await passEnd(f, s5);
      for (const sid of [s1, s2, s3, s4, s5]) await f.payPerUse.settleSession(sid);
      expect(await f.payPerUse.accruedFees(usdtAddr)).to.equal(
        feeOf(usd(20)) + feeOf(usd(25)) + feeOf(usd(30)) + feeOf(usd(15)),
      );
      expect(await f.payPerUse.accruedFees(usdgAddr)).to.equal(feeOf(usd(40)));
      await expectConservation(f, usdtAddr);
      await expectConservation(f, usdgAddr);
    });

    it("a batch of only stale vouchers pays nothing and returns 0", async function () {
      const f = await loadFixture(withSession);
      const a = await voucher(f, f.alice, f.sid, usd(10), 1n);
      await f.payPerUse.redeem(a.v, a.sig);
      expect(await f.payPerUse.redeemMany.staticCall([a.v, a.v], [a.sig, a.sig])).to.equal(0n);
      const tx = await f.payPerUse.redeemMany([a.v, a.v], [a.sig, a.sig]);
      await expect(tx).not.to.emit(f.payPerUse, "VoucherRedeemed");
      await expect(tx).to.changeTokenBalances(f.usdt, [f.bob, f.payPerUse], [0n, 0n]);
    });

    it("redeems a batch of exactly MAX_BATCH vouchers in one transfer, the fee taken on the cumulative amount", async function () {
      const f = await loadFixture(withSession);
      expect(await f.payPerUse.MAX_BATCH()).to.equal(MAX_BATCH);
      // 9,999 base units a step: 99.99 units of fee each, so per-step rounding would lose 0.99 a step.
      const step = 9_999n;
      const total = step * MAX_BATCH;
      const batch = await Promise.all(
        Array.from({ length: Number(MAX_BATCH) }, (_, i) =>
          voucher(f, f.alice, f.sid, step * BigInt(i + 1), BigInt(i + 1)),
        ),
      );
      const tx = await f.payPerUse.redeemMany(
        batch.map((b) => b.v),
        batch.map((b) => b.sig),
      );
      expect(await payoutsTo(f, tx, f.usdt, f.bob.address)).to.deep.equal([netOf(total)]);
      expect(feeOf(total)).to.not.equal(feeOf(step) * MAX_BATCH);
      // Each event reports its share of the cumulative fee; they add up to fee(total).
      const ppuAddr = await f.payPerUse.getAddress();
      let fees = 0n;
      let paid = 0n;
      for (const log of (await tx.wait())!.logs) {
        if (log.address !== ppuAddr) continue;
        const parsed = f.payPerUse.interface.parseLog(log);
        if (parsed?.name !== "VoucherRedeemed") continue;
        const i = BigInt(parsed.args.calls);
        expect(parsed.args.amount).to.equal(step * i);
        expect(parsed.args.fee).to.equal(feeOf(step * i) - feeOf(step * (i - 1n)));
        expect(parsed.args.paid).to.equal(netOf(step * i) - netOf(step * (i - 1n)));
        fees += parsed.args.fee;
        paid += parsed.args.paid;
      }
      expect([fees, paid]).to.deep.equal([feeOf(total), netOf(total)]);
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(0n);
      const s = await sessionOf(f, f.sid);
      expect([s.redeemed, s.calls]).to.deep.equal([total, MAX_BATCH]);
      await passEnd(f, f.sid);
      await expect(f.payPerUse.settleSession(f.sid))
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(f.sid, total, feeOf(total), DEPOSIT - total, MAX_BATCH);
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(feeOf(total));
      expect(await f.usdt.balanceOf(ppuAddr)).to.equal(feeOf(total));
    });

    it("reverts with PayPerUseBadBatch for an empty batch, more than MAX_BATCH, or mismatched lengths", async function () {
      const f = await loadFixture(withSession);
      const a = await voucher(f, f.alice, f.sid, usd(10), 1n);
      await expect(f.payPerUse.redeemMany([], []))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadBatch")
        .withArgs(0n);
      const n = Number(MAX_BATCH) + 1;
      await expect(f.payPerUse.redeemMany(Array(n).fill(a.v), Array(n).fill(a.sig)))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadBatch")
        .withArgs(MAX_BATCH + 1n);
      await expect(f.payPerUse.redeemMany([a.v, a.v], [a.sig]))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadBatch")
        .withArgs(2n);
      await expect(f.payPerUse.redeemMany([a.v], [a.sig, a.sig]))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadBatch")
        .withArgs(1n);
      expect((await sessionOf(f, f.sid)).redeemed).to.equal(0n);
    });

    it("reverts as a whole when one voucher is invalid", async function () {
      const f = await loadFixture(withSession);
      const sid2 = await openSession(f);
      const good = await voucher(f, f.alice, f.sid, usd(10), 1n);
      const bad = await voucher(f, f.bob, sid2, usd(10), 1n);
      await expect(f.payPerUse.redeemMany([good.v, bad.v], [good.sig, bad.sig]))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadSignature")
        .withArgs(f.alice.address);
      expect((await sessionOf(f, f.sid)).redeemed).to.equal(0n);
      // An ended session in the batch also reverts it.
      const sid3 = await open(f, f.alice, f.aliceId, f.bobId, f.usdt);
      await f.payPerUse.connect(f.alice).requestClose(sid3);
      await passEnd(f, sid3);
      const late = await voucher(f, f.alice, sid3, usd(1), 1n);
      const endsAt3 = await endsAtOf(f, sid3);
      await expect(f.payPerUse.redeemMany([good.v, late.v], [good.sig, late.sig]))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSessionEnded")
        .withArgs(sid3, endsAt3);
    });
  });

  // ================================================================== cumulative fee
  describe("fee on the cumulative amount", function () {
    it("ten redeems of 99 units at 1% then settle book exactly fee(990) = 9; the provider gets exactly 990 - 9", async function () {
      const f = await loadFixture(deployPayPerUse);
      const usdtAddr = await f.usdt.getAddress();
      const ppuAddr = await f.payPerUse.getAddress();
      const split = await openSession(f, 1_000n);
      const whole = await openSession(f, 1_000n);
      // fee(99k) = 0, 1, 2, ..., 9 for k = 1..10: each voucher adds 0 then 1, and pays the rest of its 99.
      const fees = [0n, 1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n, 1n];
      let received = 0n;
      for (let k = 1n; k <= 10n; k++) {
        const a = await voucher(f, f.alice, split, 99n * k, k);
        const fee = fees[Number(k) - 1];
        expect(fee).to.equal(feeOf(99n * k) - feeOf(99n * (k - 1n)));
        const tx = await f.payPerUse.connect(f.bob).redeem(a.v, a.sig);
        await expect(tx)
          .to.emit(f.payPerUse, "VoucherRedeemed")
          .withArgs(split, 99n * k, k, 99n - fee, fee);
        await expect(tx).to.changeTokenBalances(f.usdt, [f.bob, f.payPerUse], [99n - fee, -(99n - fee)]);
        received += 99n - fee;
        // After every voucher the provider holds exactly redeemed - fee(redeemed).
        expect(received).to.equal(99n * k - feeOf(99n * k));
        expect(await f.payPerUse.accruedFees(usdtAddr)).to.equal(0n);
        await expectConservation(f, usdtAddr);
      }
      expect(received).to.equal(990n - 9n);
      // The same 990 units in one voucher pay exactly the same.
      const b = await voucher(f, f.alice, whole, 990n, 10n);
      await expect(f.payPerUse.redeem(b.v, b.sig))
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(whole, 990n, 10n, 981n, 9n);
      expect(await f.usdt.balanceOf(ppuAddr)).to.equal(2n * (1_000n - 981n));
      await passEnd(f, whole);
      const settle = await f.payPerUse.settleSession(split);
      await expect(settle).to.emit(f.payPerUse, "SessionSettled").withArgs(split, 990n, 9n, 10n, 10n);
      await expect(settle).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.payPerUse], [10n, 0n, -10n]);
      expect(await f.payPerUse.accruedFees(usdtAddr)).to.equal(9n);
      await expectConservation(f, usdtAddr);
      await expect(f.payPerUse.settleSession(whole))
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(whole, 990n, 9n, 10n, 10n);
      expect(await f.payPerUse.accruedFees(usdtAddr)).to.equal(18n);
      expect(await f.usdt.balanceOf(ppuAddr)).to.equal(18n);
      await expect(f.payPerUse.sweepFees(usdtAddr)).to.changeTokenBalances(
        f.usdt,
        [f.treasury, f.payPerUse],
        [18n, -18n],
      );
      expect(await f.usdt.balanceOf(ppuAddr)).to.equal(0n);
    });

    it("after every voucher the provider has received exactly redeemed - fee(redeemed), at the session's own fee", async function () {
      const f = await loadFixture(deployPayPerUse);
      const usdtAddr = await f.usdt.getAddress();
      await f.payPerUse.setFee(333);
      const deposit = 10_000_003n;
      const sid = await openSession(f, deposit);
      await f.payPerUse.setFee(7); // later changes do not apply to the open session
      const feeBps = 333n;
      expect((await sessionOf(f, sid)).feeBps).to.equal(feeBps);
      // Odd steps, a stale voucher, a repeat, and one above the deposit (capped).
      const amounts = [1n, 29n, 31n, 30n, 1_001n, 1_001n, 77_777n, 3_333_337n, 3_333_338n, 9_999_999n, 20_000_000n];
      let redeemed = 0n;
      let received = 0n;
      for (const [i, amount] of amounts.entries()) {
        const a = await voucher(f, f.alice, sid, amount, BigInt(i + 1));
        const capped = amount < deposit ? amount : deposit;
        const tx = await f.payPerUse.connect(f.stranger).redeem(a.v, a.sig);
        if (capped <= redeemed) {
          await expect(tx).not.to.emit(f.payPerUse, "VoucherRedeemed");
          await expect(tx).to.changeTokenBalance(f.usdt, f.bob, 0n);
          continue;
        }
        const fee = feeOf(capped, feeBps) - feeOf(redeemed, feeBps);
        const paid = capped - redeemed - fee;
        await expect(tx)
          .to.emit(f.payPerUse, "VoucherRedeemed")
          .withArgs(sid, capped, BigInt(i + 1), paid, fee);
        await expect(tx).to.changeTokenBalance(f.usdt, f.bob, paid);
        redeemed = capped;
        received += paid;
        expect(received).to.equal(netOf(redeemed, feeBps));
        expect((await sessionOf(f, sid)).redeemed).to.equal(redeemed);
        expect(await f.payPerUse.accruedFees(usdtAddr)).to.equal(0n);
        await expectConservation(f, usdtAddr);
      }
      expect(redeemed).to.equal(deposit);
      await passEnd(f, sid);
      await expect(f.payPerUse.settleSession(sid))
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(sid, deposit, feeOf(deposit, feeBps), 0n, BigInt(amounts.length));
      expect(await f.payPerUse.accruedFees(usdtAddr)).to.equal(feeOf(deposit, feeBps));
      expect(await f.usdt.balanceOf(await f.payPerUse.getAddress())).to.equal(feeOf(deposit, feeBps));
      expect(received + feeOf(deposit, feeBps)).to.equal(deposit);
      await expectConservation(f, usdtAddr);
    });

    it("accruedFees is unchanged by redeem and redeemMany and grows by exactly fee(redeemed) at settlement", async function () {
      const f = await loadFixture(deployPayPerUse);
      const usdtAddr = await f.usdt.getAddress();
      // A charge books its fee at once: the baseline.
      await f.payPerUse
        .connect(f.alice)
        .charge(
          f.aliceId,
          f.bobService,
          4n,
          await serviceToken(f.payPerUse, f.bobService),
          usd(1),
          ethers.id("baseline"),
        );
      const base = feeOf(usd(1));
      expect(await f.payPerUse.accruedFees(usdtAddr)).to.equal(base);
      const s1 = await openSession(f);
      const s2 = await openSession(f);
      const s3 = await openSession(f); // nothing redeemed
      const a = await voucher(f, f.alice, s1, usd("12.345678"), 3n);
      await expect(f.payPerUse.redeem(a.v, a.sig)).to.changeTokenBalance(f.usdt, f.bob, netOf(usd("12.345678")));
      expect(await f.payPerUse.accruedFees(usdtAddr)).to.equal(base);
      const batch = [
        await voucher(f, f.alice, s1, usd("20.000001"), 5n),
        await voucher(f, f.alice, s2, usd("0.999999"), 1n),
        await voucher(f, f.alice, s2, usd("7.777777"), 2n),
      ];
      await f.payPerUse.redeemMany(
        batch.map((b) => b.v),
        batch.map((b) => b.sig),
      );
      expect(await f.payPerUse.accruedFees(usdtAddr)).to.equal(base);
      await expectConservation(f, usdtAddr);
      await passEnd(f, s3);
      await expect(f.payPerUse.settleSession(s1))
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(s1, usd("20.000001"), feeOf(usd("20.000001")), usd(100) - usd("20.000001"), 5n);
      expect(await f.payPerUse.accruedFees(usdtAddr)).to.equal(base + feeOf(usd("20.000001")));
      await expectConservation(f, usdtAddr);
      await expect(f.payPerUse.settleSession(s2))
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(s2, usd("7.777777"), feeOf(usd("7.777777")), usd(100) - usd("7.777777"), 2n);
      const booked = base + feeOf(usd("20.000001")) + feeOf(usd("7.777777"));
      expect(await f.payPerUse.accruedFees(usdtAddr)).to.equal(booked);
      await expect(f.payPerUse.settleSession(s3))
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(s3, 0n, 0n, usd(100), 0n);
      expect(await f.payPerUse.accruedFees(usdtAddr)).to.equal(booked);
      await expectConservation(f, usdtAddr);
      expect(await f.usdt.balanceOf(await f.payPerUse.getAddress())).to.equal(booked);
    });

    it("SessionSettled's fee is fee(redeemed) at the snapshotted fee: 0 at a zero fee, 10% at MAX_FEE_BPS", async function () {
      const f = await loadFixture(deployPayPerUse);
      const usdtAddr = await f.usdt.getAddress();
      const maxFee = await f.payPerUse.MAX_FEE_BPS();
      expect(maxFee).to.equal(1_000n);
      await f.payPerUse.setFee(0);
      const free = await openSession(f);
      await f.payPerUse.setFee(maxFee);
      const dear = await openSession(f);
      const amount = usd("33.333339");
      for (const sid of [free, dear]) {
        const a = await voucher(f, f.alice, sid, amount, 9n);
        await f.payPerUse.redeem(a.v, a.sig);
      }
      expect(await f.usdt.balanceOf(await f.payPerUse.getAddress())).to.equal(
        2n * usd(100) - amount - netOf(amount, maxFee),
      );
      await expectConservation(f, usdtAddr);
      await passEnd(f, dear);
      const t1 = await f.payPerUse.settleSession(free);
      await expect(t1)
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(free, amount, 0n, usd(100) - amount, 9n);
      expect(await f.payPerUse.accruedFees(usdtAddr)).to.equal(0n);
      const t2 = await f.payPerUse.settleSession(dear);
      await expect(t2)
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(dear, amount, feeOf(amount, maxFee), usd(100) - amount, 9n);
      expect(feeOf(amount, maxFee)).to.equal(3_333_333n);
      expect(await f.payPerUse.accruedFees(usdtAddr)).to.equal(3_333_333n);
      expect(await f.usdt.balanceOf(await f.payPerUse.getAddress())).to.equal(3_333_333n);
      await expectConservation(f, usdtAddr);
    });

    it("VoucherRedeemed reports the session's call count after the voucher (the largest seen), in redeem and redeemMany", async function () {
      const f = await loadFixture(withSession);
      const steps: [bigint, bigint, bigint][] = [
        // [amount, voucher calls, reported calls]
        [usd(1), 50n, 50n],
        [usd(2), 30n, 50n],
        [usd(3), 70n, 70n],
        [usd(4), 10n, 70n],
        [usd(5), 0n, 70n],
      ];
      for (const [amount, calls, reported] of steps) {
        const a = await voucher(f, f.alice, f.sid, amount, calls);
        await expect(f.payPerUse.redeem(a.v, a.sig))
          .to.emit(f.payPerUse, "VoucherRedeemed")
          .withArgs(f.sid, amount, reported, netOf(usd(1)), feeOf(usd(1)));
        expect((await sessionOf(f, f.sid)).calls).to.equal(reported);
      }
      // A stale voucher carrying more calls changes nothing.
      const stale = await voucher(f, f.alice, f.sid, usd(5), 500n);
      await expect(f.payPerUse.redeem(stale.v, stale.sig)).not.to.emit(f.payPerUse, "VoucherRedeemed");
      expect((await sessionOf(f, f.sid)).calls).to.equal(70n);
      // In a batch, each event reports the count after its own voucher.
      const batch = [await voucher(f, f.alice, f.sid, usd(6), 100n), await voucher(f, f.alice, f.sid, usd(7), 80n)];
      const tx = await f.payPerUse.redeemMany(
        batch.map((b) => b.v),
        batch.map((b) => b.sig),
      );
      await expect(tx)
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(f.sid, usd(6), 100n, netOf(usd(1)), feeOf(usd(1)));
      await expect(tx)
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(f.sid, usd(7), 100n, netOf(usd(1)), feeOf(usd(1)));
      // The settlement reports and records the largest count.
      await passEnd(f, f.sid);
      const settle = await f.payPerUse.settleSession(f.sid);
      await expect(settle)
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(f.sid, usd(7), feeOf(usd(7)), DEPOSIT - usd(7), 100n);
      await expect(settle)
        .to.emit(f.reputation, "CallsRecorded")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, 100n, usd(7), 1n, false);
      expect((await f.reputation.getRecord(f.bobId)).callsServed).to.equal(100n);
    });
  });

  // ================================================================== a long session
  describe("a 1,000-call session", function () {
    it("only the last of 1,000 cumulative vouchers is redeemed: the provider gets exactly the total minus the fee", async function () {
      const f = await loadFixture(withSession);
      const price = usd("0.0123"); // per call
      const CALLS = 1000;
      const vouchers: { v: VoucherValue; sig: string }[] = [];
      for (let i = 1; i <= CALLS; i++) {
        vouchers.push(await voucher(f, f.alice, f.sid, price * BigInt(i), BigInt(i)));
      }
      const total = price * BigInt(CALLS); // 12.3 USDT
      expect(total).to.equal(usd("12.3"));
      const last = vouchers[CALLS - 1];
      const tx = await f.payPerUse.connect(f.bob).redeem(last.v, last.sig);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.bob, f.payPerUse],
        [total - feeOf(total), -(total - feeOf(total))],
      );
      await expect(tx)
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(f.sid, total, BigInt(CALLS), usd("12.177"), usd("0.123"));
      // Every earlier voucher is valid but stale now.
      for (const i of [0, 1, 499, 998]) {
        await expect(f.payPerUse.redeem(vouchers[i].v, vouchers[i].sig)).not.to.emit(f.payPerUse, "VoucherRedeemed");
      }
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(0n);
      await passEnd(f, f.sid);
      await expect(f.payPerUse.settleSession(f.sid))
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(f.sid, total, usd("0.123"), DEPOSIT - total, BigInt(CALLS));
      expect((await f.reputation.getRecord(f.bobId)).callsServed).to.equal(BigInt(CALLS));
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(usd("0.123"));
      expect(await f.usdt.balanceOf(await f.payPerUse.getAddress())).to.equal(usd("0.123"));
      await expectConservation(f, f.usdtAddr);
    });
  });

  // ================================================================== requestClose
  describe("requestClose", function () {
    it("brings endsAt forward to now + closeGrace, marks the session closing and emits SessionCloseRequested", async function () {
      const f = await loadFixture(withSession);
      const tx = await f.payPerUse.connect(f.alice).requestClose(f.sid);
      const end = (await timestampOf(tx)) + CLOSE_GRACE;
      await expect(tx).to.emit(f.payPerUse, "SessionCloseRequested").withArgs(f.sid, end);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.payPerUse], [0n, 0n]);
      const s = await sessionOf(f, f.sid);
      expect([s.endsAt, s.closing, s.settled]).to.deep.equal([end, true, false]);
    });

    it("keeps the expiry when it comes before now + closeGrace", async function () {
      const f = await loadFixture(deployPayPerUse);
      const expiry = (await now()) + 30n * 60n; // half the grace
      await f.payPerUse
        .connect(f.alice)
        .openSession(f.aliceId, f.bobId, await f.usdt.getAddress(), DEPOSIT, expiry, f.alice.address);
      await expect(f.payPerUse.connect(f.alice).requestClose(1n))
        .to.emit(f.payPerUse, "SessionCloseRequested")
        .withArgs(1n, expiry);
      expect(await endsAtOf(f, 1n)).to.equal(expiry);
      expect((await sessionOf(f, 1n)).closing).to.equal(true);
    });

    it("the payer's agent wallet and an active operator may request the close", async function () {
      const f = await loadFixture(withActors);
      const s1 = await openSession(f);
      const s2 = await openSession(f);
      await expect(f.payPerUse.connect(f.aliceWallet).requestClose(s1)).to.emit(f.payPerUse, "SessionCloseRequested");
      await expect(f.payPerUse.connect(f.operator).requestClose(s2)).to.emit(f.payPerUse, "SessionCloseRequested");
      expect((await sessionOf(f, s1)).closing).to.equal(true);
      expect((await sessionOf(f, s2)).closing).to.equal(true);
    });

    it("reverts with PayPerUseNotAuthorized for anyone not on the payer side", async function () {
      const f = await loadFixture(withActors);
      const sid = await openSession(f);
      const endsAt = await endsAtOf(f, sid);
      for (const who of [f.bob, f.bobWallet, f.stranger, f.carol]) {
        await expect(f.payPerUse.connect(who).requestClose(sid))
          .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNotAuthorized")
          .withArgs(f.aliceId, who.address);
      }
      const s = await sessionOf(f, sid);
      expect([s.endsAt, s.closing]).to.deep.equal([endsAt, false]);
    });

    it("reverts with PayPerUseSessionClosing the second time", async function () {
      const f = await loadFixture(withSession);
      await f.payPerUse.connect(f.alice).requestClose(f.sid);
      const end = await endsAtOf(f, f.sid);
      await expect(f.payPerUse.connect(f.alice).requestClose(f.sid))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSessionClosing")
        .withArgs(f.sid);
      expect(await endsAtOf(f, f.sid)).to.equal(end);
    });

    it("the provider can still redeem during the grace period (to endsAt inclusive), not after", async function () {
      const f = await loadFixture(withSession);
      await f.payPerUse.connect(f.alice).requestClose(f.sid);
      const end = await endsAtOf(f, f.sid);
      const a = await voucher(f, f.alice, f.sid, usd(10), 1n);
      const b = await voucher(f, f.alice, f.sid, usd(20), 2n);
      const c = await voucher(f, f.alice, f.sid, usd(30), 3n);
      await time.increase(HOUR / 2n);
      await expect(f.payPerUse.connect(f.bob).redeem(a.v, a.sig)).to.changeTokenBalance(f.usdt, f.bob, usd("9.9"));
      await time.setNextBlockTimestamp(end);
      await expect(f.payPerUse.connect(f.bob).redeem(b.v, b.sig)).to.changeTokenBalance(f.usdt, f.bob, usd("9.9"));
      await expect(f.payPerUse.connect(f.bob).redeem(c.v, c.sig))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSessionEnded")
        .withArgs(f.sid, end);
    });

    it("reverts after the end, after settlement and for an unknown session", async function () {
      const f = await loadFixture(withSession);
      await passEnd(f, f.sid);
      await expect(f.payPerUse.connect(f.alice).requestClose(f.sid))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSessionEnded")
        .withArgs(f.sid, f.endsAt);
      await f.payPerUse.settleSession(f.sid);
      await expect(f.payPerUse.connect(f.alice).requestClose(f.sid))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSessionSettled")
        .withArgs(f.sid);
      await expect(f.payPerUse.connect(f.alice).requestClose(UNKNOWN_SESSION))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseUnknownSession")
        .withArgs(UNKNOWN_SESSION);
    });

    it("works while paused", async function () {
      const f = await loadFixture(withSession);
      await f.payPerUse.pause();
      await expect(f.payPerUse.connect(f.alice).requestClose(f.sid)).to.emit(f.payPerUse, "SessionCloseRequested");
    });
  });

  // ================================================================== settleSession
  describe("settleSession", function () {
    it("reverts with PayPerUseSessionNotEnded until endsAt has passed", async function () {
      const f = await loadFixture(withSession);
      await expect(f.payPerUse.settleSession(f.sid))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSessionNotEnded")
        .withArgs(f.sid, f.endsAt);
      await time.setNextBlockTimestamp(f.endsAt);
      await expect(f.payPerUse.settleSession(f.sid))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSessionNotEnded")
        .withArgs(f.sid, f.endsAt);
      await time.setNextBlockTimestamp(f.endsAt + 1n);
      await expect(f.payPerUse.settleSession(f.sid)).to.emit(f.payPerUse, "SessionSettled");
    });

    it("returns the rest to the payer's agent wallet and records the session in Reputation once", async function () {
      const f = await loadFixture(withActors);
      const sid = await openSession(f);
      for (const [amount, calls] of [
        [usd(10), 40n],
        [usd("12.5"), 50n],
        [usd(30), 120n],
      ]) {
        const a = await voucher(f, f.alice, sid, amount, calls);
        await f.payPerUse.connect(f.bob).redeem(a.v, a.sig);
      }
      // Redeeming records nothing yet.
      expect((await f.reputation.getRecord(f.bobId)).callsServed).to.equal(0n);
      expect(await rightsOf(f, f.bobId, f.alice.address)).to.deep.equal([0n, 0n]);
      await f.payPerUse.connect(f.alice).requestClose(sid);
      await passEnd(f, sid);
      const tx = await f.payPerUse.connect(f.stranger).settleSession(sid);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.aliceWallet, f.alice, f.bob, f.bobWallet, f.stranger, f.payPerUse],
        [usd(70), 0n, 0n, 0n, 0n, -usd(70)],
      );
      await expect(tx).to.emit(f.payPerUse, "SessionSettled").withArgs(sid, usd(30), usd("0.3"), usd(70), 120n);
      await expect(tx)
        .to.emit(f.reputation, "CallsRecorded")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, 120n, usd(30), 1n, false);
      await expect(tx).to.emit(f.reputation, "FeedbackRightGranted").withArgs(f.bobId, f.alice.address, 1n, usd(30));
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(usd("0.3"));
      const record = await f.reputation.getRecord(f.bobId);
      expect([record.callsServed, record.settlementsServed]).to.deep.equal([120n, 1n]);
      expect(await rightsOf(f, f.bobId, f.alice.address)).to.deep.equal([1n, usd(30)]);
      expect(await f.reputation.getVolume(f.bobId, f.usdtAddr)).to.equal(usd(30));
      const s = await sessionOf(f, sid);
      expect([s.settled, s.redeemed, s.deposit]).to.deep.equal([true, usd(30), DEPOSIT]);
      await expectConservation(f, f.usdtAddr);
    });

    it("a session between two agents of the same owner is recorded as self-dealing, with no right", async function () {
      const f = await loadFixture(deployPayPerUse);
      await f.registry.connect(f.alice).getFunction("register(string)")("ipfs://alice-2");
      const aliceTwo = await f.registry.agentCount();
      const sid = await open(f, f.alice, f.aliceId, aliceTwo, f.usdt);
      const a = await voucher(f, f.alice, sid, usd(10), 2n);
      await expect(f.payPerUse.redeem(a.v, a.sig)).to.changeTokenBalance(f.usdt, f.alice, netOf(usd(10)));
      await passEnd(f, sid);
      const tx = await f.payPerUse.settleSession(sid);
      // Self-dealing changes no record, but the protocol fee is still taken.
      await expect(tx).to.emit(f.payPerUse, "SessionSettled").withArgs(sid, usd(10), usd("0.1"), usd(90), 2n);
      await expect(tx)
        .to.emit(f.reputation, "CallsRecorded")
        .withArgs(f.aliceId, aliceTwo, await f.usdt.getAddress(), 2n, usd(10), 1n, true);
      await expect(tx).not.to.emit(f.reputation, "FeedbackRightGranted");
      expect(await f.payPerUse.accruedFees(await f.usdt.getAddress())).to.equal(usd("0.1"));
      expect((await f.reputation.getRecord(aliceTwo)).settlementsServed).to.equal(0n);
      expect(await rightsOf(f, aliceTwo, f.alice.address)).to.deep.equal([0n, 0n]);
    });

    it("grants one feedback right per settled session", async function () {
      const f = await loadFixture(deployPayPerUse);
      const ids = [await openSession(f), await openSession(f)];
      for (const [i, sid] of ids.entries()) {
        for (let k = 1n; k <= BigInt(i + 2); k++) {
          const a = await voucher(f, f.alice, sid, usd(1) * k, k);
          await f.payPerUse.redeem(a.v, a.sig);
        }
      }
      await passEnd(f, ids[1]);
      for (const sid of ids) await f.payPerUse.settleSession(sid);
      const record = await f.reputation.getRecord(f.bobId);
      expect([record.callsServed, record.settlementsServed]).to.deep.equal([2n + 3n, 2n]);
      expect(await rightsOf(f, f.bobId, f.alice.address)).to.deep.equal([2n, usd(2) + usd(3)]);
    });

    it("with nothing redeemed, returns the whole deposit and records nothing in Reputation", async function () {
      const f = await loadFixture(withSession);
      await passEnd(f, f.sid);
      const tx = await f.payPerUse.settleSession(f.sid);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.payPerUse], [DEPOSIT, 0n, -DEPOSIT]);
      await expect(tx).to.emit(f.payPerUse, "SessionSettled").withArgs(f.sid, 0n, 0n, DEPOSIT, 0n);
      await expect(tx).not.to.emit(f.reputation, "CallsRecorded");
      await expect(tx).not.to.emit(f.reputation, "FeedbackRightGranted");
      const record = await f.reputation.getRecord(f.bobId);
      expect([record.callsServed, record.settlementsServed]).to.deep.equal([0n, 0n]);
      expect(await rightsOf(f, f.bobId, f.alice.address)).to.deep.equal([0n, 0n]);
      expect(await f.usdt.balanceOf(await f.payPerUse.getAddress())).to.equal(0n);
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(0n);
    });

    it("a fully redeemed session settles with nothing to return", async function () {
      const f = await loadFixture(withSession);
      const a = await voucher(f, f.alice, f.sid, DEPOSIT, 400n);
      await f.payPerUse.redeem(a.v, a.sig);
      await passEnd(f, f.sid);
      const tx = await f.payPerUse.settleSession(f.sid);
      await expect(tx).to.emit(f.payPerUse, "SessionSettled").withArgs(f.sid, DEPOSIT, feeOf(DEPOSIT), 0n, 400n);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.payPerUse], [0n, 0n]);
      expect(await payoutsTo(f, tx, f.usdt, f.alice.address)).to.deep.equal([]);
      expect(await f.usdt.balanceOf(await f.payPerUse.getAddress())).to.equal(feeOf(DEPOSIT));
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(feeOf(DEPOSIT));
      await expectConservation(f, f.usdtAddr);
    });

    it("records a session whose vouchers carried zero calls as one call", async function () {
      const f = await loadFixture(withSession);
      const a = await voucher(f, f.alice, f.sid, usd(5), 0n);
      await f.payPerUse.redeem(a.v, a.sig);
      await passEnd(f, f.sid);
      const tx = await f.payPerUse.settleSession(f.sid);
      await expect(tx).to.emit(f.payPerUse, "SessionSettled").withArgs(f.sid, usd(5), usd("0.05"), usd(95), 0n);
      await expect(tx)
        .to.emit(f.reputation, "CallsRecorded")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, 1n, usd(5), 1n, false);
    });

    it("reverts with PayPerUseSessionSettled the second time", async function () {
      const f = await loadFixture(withSession);
      await passEnd(f, f.sid);
      await f.payPerUse.settleSession(f.sid);
      await expect(f.payPerUse.settleSession(f.sid))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSessionSettled")
        .withArgs(f.sid);
    });

    it("anyone may settle, even while paused", async function () {
      const f = await loadFixture(withSession);
      const a = await voucher(f, f.alice, f.sid, usd(40), 4n);
      await f.payPerUse.redeem(a.v, a.sig);
      await f.payPerUse.pause();
      await passEnd(f, f.sid);
      await expect(f.payPerUse.connect(f.stranger).settleSession(f.sid)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.stranger, f.payPerUse],
        [usd(60), 0n, -usd(60)],
      );
      expect((await f.reputation.getRecord(f.bobId)).settlementsServed).to.equal(1n);
    });

    it("a voucher cannot be redeemed after settlement (PayPerUseSessionEnded)", async function () {
      const f = await loadFixture(withSession);
      await passEnd(f, f.sid);
      await f.payPerUse.settleSession(f.sid);
      const a = await voucher(f, f.alice, f.sid, usd(10), 1n);
      await expect(f.payPerUse.connect(f.bob).redeem(a.v, a.sig))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSessionEnded")
        .withArgs(f.sid, f.endsAt);
      await expect(f.payPerUse.connect(f.bob).redeemMany([a.v], [a.sig]))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSessionEnded")
        .withArgs(f.sid, f.endsAt);
    });

    it("reverts with PayPerUseUnknownSession for an unknown session", async function () {
      const f = await loadFixture(deployPayPerUse);
      await expect(f.payPerUse.settleSession(UNKNOWN_SESSION))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseUnknownSession")
        .withArgs(UNKNOWN_SESSION);
    });
  });

  // ================================================================== conservation
  describe("funds conservation", function () {
    it("balance == accrued fees + credits + open deposits − redeemed, through a mixed flow in two tokens", async function () {
      const f = await loadFixture(deployPayPerUse);
      const usdtAddr = await f.usdt.getAddress();
      const usdgAddr = await f.usdg.getAddress();
      const check = async () => {
        await expectConservation(f, usdtAddr);
        await expectConservation(f, usdgAddr);
      };
      const odd = usd(100) + 7n;
      const s1 = await open(f, f.alice, f.aliceId, f.bobId, f.usdt, odd);
      const s2 = await open(f, f.alice, f.aliceId, f.carolId, f.usdg, odd);
      const s3 = await open(f, f.dave, f.daveId, f.bobId, f.usdt, 123_456_789n);
      await check();
      const r1 = await voucher(f, f.alice, s1, 3_333_333n, 3n);
      const r2 = await voucher(f, f.alice, s2, 9_999_999n, 9n);
      const r3 = await voucher(f, f.dave, s3, 123_456_789n + 1_000n, 1n); // capped at the deposit
      await f.payPerUse.redeemMany([r1.v, r2.v, r3.v], [r1.sig, r2.sig, r3.sig]);
      await check();
      // Redeeming booked no fee: there is nothing to sweep yet.
      await expect(f.payPerUse.sweepFees(usdtAddr))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNothingToWithdraw")
        .withArgs(usdtAddr, f.treasury.address);
      await f.payPerUse.connect(f.alice).topUp(s1, 1_234_567n, 0);
      await check();
      // fee(100,000,008) - fee(3,333,333) = 1,000,000 - 33,333: one more than fee(96,666,675) = 966,666.
      const r4 = await voucher(f, f.alice, s1, odd + 1n, 4n);
      await expect(f.payPerUse.redeem(r4.v, r4.sig))
        .to.emit(f.payPerUse, "VoucherRedeemed")
        .withArgs(s1, odd + 1n, 4n, 96_666_675n - 966_667n, 966_667n);
      await check();
      await f.payPerUse.connect(f.alice).requestClose(s1);
      await f.payPerUse.connect(f.alice).requestClose(s2);
      await f.payPerUse.connect(f.dave).requestClose(s3);
      await passEnd(f, s3); // the last to close ends last
      await expect(f.payPerUse.settleSession(s3))
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(s3, 123_456_789n, 1_234_567n, 0n, 1n);
      await check();
      await expect(f.payPerUse.sweepFees(usdtAddr)).to.changeTokenBalance(f.usdt, f.treasury, 1_234_567n);
      await check();
      await expect(f.payPerUse.settleSession(s1))
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(s1, odd + 1n, 1_000_000n, 1_234_566n, 4n);
      await check();
      await expect(f.payPerUse.settleSession(s2))
        .to.emit(f.payPerUse, "SessionSettled")
        .withArgs(s2, 9_999_999n, 99_999n, odd - 9_999_999n, 9n);
      await check();
      const usdt = await expectConservation(f, usdtAddr);
      expect(usdt).to.deep.equal({ open: 0n, credits: 0n, fees: feeOf(odd + 1n) });
      const usdg = await expectConservation(f, usdgAddr);
      expect(usdg).to.deep.equal({ open: 0n, credits: 0n, fees: feeOf(9_999_999n) });
      await f.payPerUse.sweepFees(usdtAddr);
      await f.payPerUse.sweepFees(usdgAddr);
      expect(await f.usdt.balanceOf(await f.payPerUse.getAddress())).to.equal(0n);
      expect(await f.usdg.balanceOf(await f.payPerUse.getAddress())).to.equal(0n);
    });
  });
});
