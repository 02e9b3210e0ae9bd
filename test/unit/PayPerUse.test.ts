import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { ContractTransactionResponse } from "ethers";
import {
  ERC1967Proxy__factory,
  MockBlacklistToken__factory,
  MockERC1271Wallet__factory,
  MockFeeOnTransferToken__factory,
  PayPerUse__factory,
  type MockStablecoin,
  type PayPerUse,
} from "../../typechain-types";
import {
  CAPABILITY,
  CHARGE_TYPES,
  CLOSE_GRACE,
  DAY,
  FUNDING,
  PERMIT_TYPES,
  PPU_FEE_BPS,
  RECEIVE_TYPES,
  REQUEST,
  UNIT_PRICE,
  UP_TO_TYPES,
  VOUCHER_TYPES,
  chargeAuth,
  deployPayPerUse,
  ppuDomain,
  signCharge,
  signUpTo,
  upToAuth,
  type PayPerUseFixture,
  serviceToken,
} from "../fixtures/payPerUse";
import { DEFAULT_ADMIN_ROLE, PARAMETER_ROLE, PAUSER_ROLE, UPGRADER_ROLE } from "../fixtures/system";
import { malleate, now, signAgentWallet, usd } from "../fixtures/helpers";

// ---------------------------------------------------------------------- constants

const BPS = 10_000n;
const MAX_FEE_BPS = 1_000n;
const MIN_CLOSE_GRACE = 5n * 60n;
const MAX_CLOSE_GRACE = 30n * DAY;
const MAX_SESSION_DURATION = 365n * DAY;
const MAX_BATCH = 256n;
const UINT96_MAX = 2n ** 96n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const UNKNOWN = 99n;
const QUOTED_TASK = 1;
const PAY_PER_USE = 0;
const BOB_ENDPOINT = "https://bob.example/api";
const CHARGE_TYPE =
  "ChargeAuthorization(uint256 payerId,address payer,uint256 serviceId,address token,uint256 units," +
  "uint256 amount,bytes32 requestRef,uint256 nonce,uint256 validAfter,uint256 validBefore)";
const UP_TO_TYPE =
  "UpToAuthorization(uint256 payerId,address payer,uint256 serviceId,address token,uint256 maxAmount," +
  "bytes32 requestRef,uint256 nonce,uint256 validAfter,uint256 validBefore)";
const VOUCHER_TYPE = "Voucher(uint256 sessionId,uint256 amount,uint256 calls)";
/** ERC-7201 slot of PayPerUseStorage (see PayPerUse.sol). */
const STORAGE_LOCATION = 0x1143823913336009b6ff0e409f618278c1262e99862f8ebe1034035b98831b00n;

const coder = ethers.AbiCoder.defaultAbiCoder();

// ---------------------------------------------------------------------- helpers

/** The protocol fee of `total` at `bps`, rounded down. */
const feeOf = (total: bigint, bps = PPU_FEE_BPS) => (total * bps) / BPS;

/** Sets `wallet` as agent wallet of `agentId` (owned by `owner`). */
async function setWallet(
  f: PayPerUseFixture,
  owner: HardhatEthersSigner,
  agentId: bigint,
  wallet: HardhatEthersSigner,
) {
  const deadline = (await now()) + 100n;
  const signature = await signAgentWallet(f.registry, wallet, agentId, wallet.address, owner.address, deadline);
  await f.registry.connect(owner).setAgentWallet(agentId, wallet.address, deadline, signature);
}

/** The EIP-712 domain of a MockStablecoin (ERC20Permit: name = token name, version "1"). */
async function tokenDomain(token: MockStablecoin) {
  return {
    name: await token.name(),
    version: "1",
    chainId: (await ethers.provider.getNetwork()).chainId,
    verifyingContract: await token.getAddress(),
  };
}

/** `owner`'s EIP-2612 permit for `spender`, encoded as Permit funding data. */
async function permitData(
  token: MockStablecoin,
  owner: HardhatEthersSigner,
  spender: string,
  value: bigint,
  deadline: bigint,
  signer: HardhatEthersSigner = owner,
) {
  const nonce = await token.nonces(owner.address);
  const sig = ethers.Signature.from(
    await signer.signTypedData(await tokenDomain(token), PERMIT_TYPES, {
      owner: owner.address,
      spender,
      value,
      nonce,
      deadline,
    }),
  );
  return {
    data: coder.encode(["uint256", "uint256", "uint8", "bytes32", "bytes32"], [value, deadline, sig.v, sig.r, sig.s]),
    sig,
  };
}

/** `from`'s EIP-3009 receiveWithAuthorization of `value` to `to`, encoded as funding data. */
async function receiveData(
  token: MockStablecoin,
  from: HardhatEthersSigner,
  to: string,
  value: bigint,
  validBefore: bigint,
  nonce: string,
  validAfter = 0n,
) {
  const sig = ethers.Signature.from(
    await from.signTypedData(await tokenDomain(token), RECEIVE_TYPES, {
      from: from.address,
      to,
      value,
      validAfter,
      validBefore,
      nonce,
    }),
  );
  return coder.encode(
    ["uint256", "uint256", "bytes32", "uint8", "bytes32", "bytes32"],
    [validAfter, validBefore, nonce, sig.v, sig.r, sig.s],
  );
}

/** The first slot of PayPerUseStorage: registry, feeBps, closeGrace, tokenCount. */
async function slot0(ppu: PayPerUse) {
  const word = BigInt(await ethers.provider.getStorage(await ppu.getAddress(), STORAGE_LOCATION));
  return {
    registry: ethers.getAddress(ethers.toBeHex(word & ((1n << 160n) - 1n), 20)),
    feeBps: (word >> 160n) & 0xffffn,
    closeGrace: (word >> 176n) & 0xffffffffn,
    tokenCount: (word >> 208n) & 0xffffffffn,
  };
}

/** The stored TokenInfo of `token` (mapping at STORAGE_LOCATION + 3): allow-list index and flag. */
async function tokenInfo(ppu: PayPerUse, token: string) {
  const slot = ethers.keccak256(coder.encode(["address", "uint256"], [token, STORAGE_LOCATION + 3n]));
  const word = BigInt(await ethers.provider.getStorage(await ppu.getAddress(), slot));
  return { index: word & 0xffffffffn, allowed: (word >> 32n) & 0xffn };
}

/** A receipt as a plain object. */
async function receiptOf(ppu: PayPerUse, receiptId: bigint) {
  const r = await ppu.getReceipt(receiptId);
  return { payerId: r.payerId, providerId: r.providerId, refundable: r.refundable, token: r.token };
}

/** pendingReputation of a pair as a plain object. */
async function pendingOf(ppu: PayPerUse, payerId: bigint, providerId: bigint, token: string) {
  const [calls, amount, receipts] = await ppu.pendingReputation(payerId, providerId, token);
  return { calls, amount, receipts };
}

/** The stored Pending slot of a pair (mapping at STORAGE_LOCATION + 10): amount, calls, receipts. */
async function pendingSlot(ppu: PayPerUse, payerId: bigint, providerId: bigint, token: string) {
  const outer = ethers.keccak256(coder.encode(["uint256", "uint256"], [payerId, STORAGE_LOCATION + 10n]));
  const middle = ethers.keccak256(coder.encode(["uint256", "bytes32"], [providerId, outer]));
  const slot = ethers.keccak256(coder.encode(["address", "bytes32"], [token, middle]));
  const word = BigInt(await ethers.provider.getStorage(await ppu.getAddress(), slot));
  return {
    amount: word & UINT96_MAX,
    calls: (word >> 96n) & UINT64_MAX,
    receipts: (word >> 160n) & 0xffffffffn,
    rest: word >> 192n,
  };
}

/** The names of the events PayPerUse and Reputation emitted in `tx`, in log order. */
async function ppuAndReputationEvents(f: PayPerUseFixture, tx: Promise<ContractTransactionResponse>) {
  const receipt = (await (await tx).wait())!;
  const ppuAddr = (await f.payPerUse.getAddress()).toLowerCase();
  const repAddr = (await f.reputation.getAddress()).toLowerCase();
  const names: string[] = [];
  for (const log of receipt.logs) {
    const address = log.address.toLowerCase();
    if (address === ppuAddr) names.push(f.payPerUse.interface.parseLog(log)!.name);
    if (address === repAddr) names.push(f.reputation.interface.parseLog(log)!.name);
  }
  return names;
}

/** The timestamp of the block that mined `tx`. */
async function minedAt(tx: Promise<ContractTransactionResponse>) {
  const receipt = (await (await tx).wait())!;
  return BigInt((await ethers.provider.getBlock(receipt.blockNumber))!.timestamp);
}

/** Alice pays `units` of bob's service #1 directly (max = exact total). */
function aliceCharges(f: PayPerUseFixture, units = 4n, requestRef = REQUEST) {
  return f.payPerUse.connect(f.alice).charge(f.aliceId, f.bobService, units, f.usdt, units * UNIT_PRICE, requestRef);
}

/** Bob switches his service #1 to USDG at the same unit price (alice approved PayPerUse for both). */
function bobSwitchesToUsdg(f: PayPerUseFixture) {
  return f.registry.connect(f.bob).updateService(f.bobService, f.usdg, UNIT_PRICE, true, BOB_ENDPOINT);
}

/** Bob changes the unit price of his service #1 (token USDT, still active). */
function bobPrices(f: PayPerUseFixture, unitPrice: bigint, active = true) {
  return f.registry.connect(f.bob).updateService(f.bobService, f.usdt, unitPrice, active, BOB_ENDPOINT);
}

/** The initialize calldata of a fresh proxy, with overrides. */
async function initData(
  f: PayPerUseFixture,
  over: Partial<{
    admin: string;
    registry: string;
    reputation: string;
    treasury: string;
    feeBps: bigint;
    closeGrace: bigint;
  }> = {},
) {
  const a = {
    admin: f.stranger.address,
    registry: await f.registry.getAddress(),
    reputation: await f.reputation.getAddress(),
    treasury: f.treasury.address,
    feeBps: PPU_FEE_BPS,
    closeGrace: CLOSE_GRACE,
    ...over,
  };
  return f.payPerUse.interface.encodeFunctionData("initialize", [
    a.admin,
    a.registry,
    a.reputation,
    a.treasury,
    a.feeBps,
    a.closeGrace,
  ]);
}

/** Deploys an ERC1967Proxy of the PayPerUse implementation with `data`. */
async function deployProxy(f: PayPerUseFixture, data: string) {
  return new ERC1967Proxy__factory(f.admin).deploy(f.payPerUseImpl, data);
}

// ---------------------------------------------------------------------- fixtures

/** deployPayPerUse plus addresses used everywhere. */
async function baseFixture() {
  const f = await deployPayPerUse();
  return {
    ...f,
    ppuAddr: await f.payPerUse.getAddress(),
    usdtAddr: await f.usdt.getAddress(),
    usdgAddr: await f.usdg.getAddress(),
  };
}

/**
 * baseFixture plus agent wallets: `aliceWallet` for alice's agent #1 and `bobWallet` for bob's
 * agent #2, each holding 1,000 USDT and having approved PayPerUse.
 */
async function walletsFixture() {
  const f = await baseFixture();
  const signers = await ethers.getSigners();
  const [aliceWallet, bobWallet] = [signers[9], signers[10]];
  await setWallet(f, f.alice, f.aliceId, aliceWallet);
  await setWallet(f, f.bob, f.bobId, bobWallet);
  for (const w of [aliceWallet, bobWallet]) {
    await f.usdt.mint(w.address, usd(1_000));
    await f.usdt.connect(w).approve(f.ppuAddr, ethers.MaxUint256);
  }
  return { ...f, aliceWallet, bobWallet };
}

/** baseFixture plus `operator` for alice's agent #1: USDT 5 per transaction, 8 per rolling day. */
async function operatorFixture() {
  const f = await baseFixture();
  const expiry = (await now()) + 30n * DAY;
  await f.registry
    .connect(f.alice)
    .setOperator(f.aliceId, f.operator.address, { expiry, minScoreBps: 0, allowListOnly: false });
  await f.registry.connect(f.alice).setTokenLimit(f.aliceId, f.operator.address, f.usdtAddr, {
    perTxCap: usd(5),
    periodCap: usd(8),
    period: DAY,
    rolling: true,
  });
  return f;
}

/** baseFixture, and alice paid 4 units of bob's service (1 USDT): receipt #1. */
async function chargedFixture() {
  const f = await baseFixture();
  await aliceCharges(f);
  return { ...f, receiptId: 1n, total: usd(1) };
}

/**
 * baseFixture plus a blacklisting token (mBLK) allowed in PayPerUse, bob's service #3 in it at
 * 0.5 per unit, alice holding 1,000 mBLK and having approved PayPerUse, and bob blacklisted.
 */
async function blacklistFixture() {
  const f = await baseFixture();
  const blk = await new MockBlacklistToken__factory(f.admin).deploy();
  const blkAddr = await blk.getAddress();
  await f.payPerUse.setToken(blkAddr, true);
  await f.registry.connect(f.bob).listService(f.bobId, ethers.id("blk"), PAY_PER_USE, blkAddr, usd("0.5"), "https://b");
  await blk.mint(f.alice.address, usd(1_000));
  await blk.connect(f.alice).approve(f.ppuAddr, ethers.MaxUint256);
  await blk.setBlacklisted(f.bob.address, true);
  return { ...f, blk, blkAddr, blkService: 3n, blkPrice: usd("0.5") };
}

/**
 * baseFixture plus a MockERC1271Wallet owned by dave's EOA that registered its own agent (#5),
 * holds 100 USDT and approved PayPerUse.
 */
async function contractPayerFixture() {
  const f = await baseFixture();
  const wallet = await new MockERC1271Wallet__factory(f.admin).deploy(f.dave.address);
  const walletAddr = await wallet.getAddress();
  await f.usdt.mint(walletAddr, usd(100));
  await wallet
    .connect(f.dave)
    .execute(f.usdtAddr, 0, f.usdt.interface.encodeFunctionData("approve", [f.ppuAddr, ethers.MaxUint256]));
  await wallet
    .connect(f.dave)
    .execute(
      await f.registry.getAddress(),
      0,
      f.registry.interface.encodeFunctionData("register(string)", ["ipfs://contract-wallet"]),
    );
  return { ...f, wallet, walletAddr, walletId: 5n };
}

// ---------------------------------------------------------------------- tests

describe("PayPerUse (charges)", function () {
  // ------------------------------------------------------------------ initialize

  describe("initialize and constants", function () {
    it("configures the proxy: registry, reputation, treasury, fee and close grace", async function () {
      const { payPerUse, registry, reputation, treasury } = await loadFixture(baseFixture);
      expect([...(await payPerUse.config())]).to.deep.equal([
        await registry.getAddress(),
        await reputation.getAddress(),
        treasury.address,
        PPU_FEE_BPS,
        CLOSE_GRACE,
      ]);
    });

    it("gives the admin every administrative role and starts unpaused, with USDT and USDG allowed", async function () {
      const { payPerUse, admin, stranger, usdtAddr, usdgAddr, okb } = await loadFixture(baseFixture);
      for (const role of [DEFAULT_ADMIN_ROLE, UPGRADER_ROLE, PAUSER_ROLE, PARAMETER_ROLE]) {
        expect(await payPerUse.hasRole(role, admin.address)).to.equal(true);
        expect(await payPerUse.hasRole(role, stranger.address)).to.equal(false);
      }
      expect(await payPerUse.paused()).to.equal(false);
      expect(await payPerUse.receiptCount()).to.equal(0n);
      expect(await payPerUse.sessionCount()).to.equal(0n);
      expect(await payPerUse.tokenAllowed(usdtAddr)).to.equal(true);
      expect(await payPerUse.tokenAllowed(usdgAddr)).to.equal(true);
      expect(await payPerUse.tokenAllowed(await okb.getAddress())).to.equal(false);
    });

    it("exposes VERSION 1.0.0, its bounds and its EIP-712 type hashes", async function () {
      const { payPerUse } = await loadFixture(baseFixture);
      expect(await payPerUse.VERSION()).to.equal("1.0.0");
      expect(await payPerUse.MAX_FEE_BPS()).to.equal(MAX_FEE_BPS);
      expect(await payPerUse.MIN_CLOSE_GRACE()).to.equal(MIN_CLOSE_GRACE);
      expect(await payPerUse.MAX_CLOSE_GRACE()).to.equal(MAX_CLOSE_GRACE);
      expect(await payPerUse.MAX_SESSION_DURATION()).to.equal(MAX_SESSION_DURATION);
      expect(await payPerUse.MAX_BATCH()).to.equal(MAX_BATCH);
      expect(await payPerUse.CHARGE_TYPEHASH()).to.equal(ethers.id(CHARGE_TYPE));
      expect(await payPerUse.UP_TO_TYPEHASH()).to.equal(ethers.id(UP_TO_TYPE));
      expect(await payPerUse.VOUCHER_TYPEHASH()).to.equal(ethers.id(VOUCHER_TYPE));
      expect(ethers.TypedDataEncoder.from(CHARGE_TYPES).encodeType("ChargeAuthorization")).to.equal(CHARGE_TYPE);
      expect(ethers.TypedDataEncoder.from(UP_TO_TYPES).encodeType("UpToAuthorization")).to.equal(UP_TO_TYPE);
      expect(ethers.TypedDataEncoder.from(VOUCHER_TYPES).encodeType("Voucher")).to.equal(VOUCHER_TYPE);
    });

    it("keeps its state where the ERC-7201 layout says (slot 0 decodes to config)", async function () {
      const { payPerUse, registry } = await loadFixture(baseFixture);
      expect(await slot0(payPerUse)).to.deep.equal({
        registry: await registry.getAddress(),
        feeBps: PPU_FEE_BPS,
        closeGrace: CLOSE_GRACE,
        tokenCount: 2n,
      });
    });

    it("reverts with InvalidInitialization when initialize is called again, on the proxy or the implementation", async function () {
      const f = await loadFixture(baseFixture);
      const args = [
        f.stranger.address,
        await f.registry.getAddress(),
        await f.reputation.getAddress(),
        f.stranger.address,
        0,
        MIN_CLOSE_GRACE,
      ] as const;
      await expect(f.payPerUse.connect(f.stranger).initialize(...args)).to.be.revertedWithCustomError(
        f.payPerUse,
        "InvalidInitialization",
      );
      const impl = PayPerUse__factory.connect(f.payPerUseImpl, f.stranger);
      await expect(impl.initialize(...args)).to.be.revertedWithCustomError(f.payPerUse, "InvalidInitialization");
    });

    it("initialises a fresh proxy at the inclusive bounds, emitting TreasurySet, FeeSet and CloseGraceSet", async function () {
      const f = await loadFixture(baseFixture);
      for (const [feeBps, closeGrace] of [
        [MAX_FEE_BPS, MIN_CLOSE_GRACE],
        [0n, MAX_CLOSE_GRACE],
      ]) {
        const proxy = await deployProxy(f, await initData(f, { treasury: f.carol.address, feeBps, closeGrace }));
        const fresh = PayPerUse__factory.connect(await proxy.getAddress(), f.admin);
        const tx = proxy.deploymentTransaction()!;
        await expect(tx).to.emit(fresh, "TreasurySet").withArgs(f.carol.address);
        await expect(tx).to.emit(fresh, "FeeSet").withArgs(feeBps);
        await expect(tx).to.emit(fresh, "CloseGraceSet").withArgs(closeGrace);
        expect([...(await fresh.config())]).to.deep.equal([
          await f.registry.getAddress(),
          await f.reputation.getAddress(),
          f.carol.address,
          feeBps,
          closeGrace,
        ]);
        for (const role of [DEFAULT_ADMIN_ROLE, UPGRADER_ROLE, PAUSER_ROLE, PARAMETER_ROLE]) {
          expect(await fresh.hasRole(role, f.stranger.address)).to.equal(true);
          expect(await fresh.hasRole(role, f.admin.address)).to.equal(false);
        }
        expect(await fresh.tokenAllowed(f.usdtAddr)).to.equal(false);
        expect(await fresh.receiptCount()).to.equal(0n);
        expect((await slot0(fresh)).tokenCount).to.equal(0n);
      }
    });

    it("reverts with ProtocolZeroAddress for a zero admin, registry, reputation or treasury", async function () {
      const f = await loadFixture(baseFixture);
      for (const key of ["admin", "registry", "reputation", "treasury"] as const) {
        await expect(deployProxy(f, await initData(f, { [key]: ethers.ZeroAddress }))).to.be.revertedWithCustomError(
          f.payPerUse,
          "ProtocolZeroAddress",
        );
      }
    });

    it("reverts with PayPerUseBadParameter for a fee above MAX_FEE_BPS", async function () {
      const f = await loadFixture(baseFixture);
      await expect(deployProxy(f, await initData(f, { feeBps: MAX_FEE_BPS + 1n }))).to.be.revertedWithCustomError(
        f.payPerUse,
        "PayPerUseBadParameter",
      );
    });

    it("reverts with PayPerUseBadParameter for a close grace outside [MIN_CLOSE_GRACE, MAX_CLOSE_GRACE]", async function () {
      const f = await loadFixture(baseFixture);
      for (const closeGrace of [0n, MIN_CLOSE_GRACE - 1n, MAX_CLOSE_GRACE + 1n]) {
        await expect(deployProxy(f, await initData(f, { closeGrace }))).to.be.revertedWithCustomError(
          f.payPerUse,
          "PayPerUseBadParameter",
        );
      }
    });
  });

  // ------------------------------------------------------------------ admin

  describe("setToken", function () {
    it("allow-lists a new token with the next index and emits TokenSet", async function () {
      const { payPerUse, okb } = await loadFixture(baseFixture);
      const okbAddr = await okb.getAddress();
      expect(await tokenInfo(payPerUse, okbAddr)).to.deep.equal({ index: 0n, allowed: 0n });
      await expect(payPerUse.setToken(okbAddr, true)).to.emit(payPerUse, "TokenSet").withArgs(okbAddr, true);
      expect(await payPerUse.tokenAllowed(okbAddr)).to.equal(true);
      expect(await tokenInfo(payPerUse, okbAddr)).to.deep.equal({ index: 3n, allowed: 1n });
      expect((await slot0(payPerUse)).tokenCount).to.equal(3n);
    });

    it("assigns an index once: disallowing and allowing again keeps it and the token count", async function () {
      const f = await loadFixture(baseFixture);
      const { payPerUse, usdtAddr, usdgAddr } = f;
      const usdtInfo = await tokenInfo(payPerUse, usdtAddr);
      const usdgInfo = await tokenInfo(payPerUse, usdgAddr);
      expect([usdtInfo.index, usdgInfo.index].sort()).to.deep.equal([1n, 2n]);
      await expect(payPerUse.setToken(usdtAddr, false)).to.emit(payPerUse, "TokenSet").withArgs(usdtAddr, false);
      expect(await payPerUse.tokenAllowed(usdtAddr)).to.equal(false);
      expect(await tokenInfo(payPerUse, usdtAddr)).to.deep.equal({ index: usdtInfo.index, allowed: 0n });
      await expect(payPerUse.setToken(usdtAddr, true)).to.emit(payPerUse, "TokenSet").withArgs(usdtAddr, true);
      await expect(payPerUse.setToken(usdtAddr, true)).to.emit(payPerUse, "TokenSet").withArgs(usdtAddr, true);
      expect(await tokenInfo(payPerUse, usdtAddr)).to.deep.equal({ index: usdtInfo.index, allowed: 1n });
      expect((await slot0(payPerUse)).tokenCount).to.equal(2n);
      // Receipts keep resolving their token through the kept index.
      await aliceCharges(f);
      expect((await payPerUse.getReceipt(1n)).token).to.equal(usdtAddr);
    });

    it("stops new charges in a disallowed token, while refunds of earlier receipts continue", async function () {
      const f = await loadFixture(chargedFixture);
      await f.payPerUse.setToken(f.usdtAddr, false);
      await expect(aliceCharges(f))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseTokenNotAllowed")
        .withArgs(f.usdtAddr);
      expect((await f.payPerUse.getReceipt(1n)).token).to.equal(f.usdtAddr);
      await expect(f.payPerUse.connect(f.bob).refund(1n, usd("0.1")))
        .to.emit(f.payPerUse, "ChargeRefunded")
        .withArgs(1n, usd("0.1"), usd("0.9"));
    });

    it("reverts with ProtocolZeroAddress for the zero address", async function () {
      const { payPerUse } = await loadFixture(baseFixture);
      await expect(payPerUse.setToken(ethers.ZeroAddress, true)).to.be.revertedWithCustomError(
        payPerUse,
        "ProtocolZeroAddress",
      );
    });

    it("reverts with AccessControlUnauthorizedAccount without PARAMETER_ROLE; a holder may set it", async function () {
      const { payPerUse, okb, stranger } = await loadFixture(baseFixture);
      const okbAddr = await okb.getAddress();
      await expect(payPerUse.connect(stranger).setToken(okbAddr, true))
        .to.be.revertedWithCustomError(payPerUse, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, PARAMETER_ROLE);
      await payPerUse.grantRole(PARAMETER_ROLE, stranger.address);
      await expect(payPerUse.connect(stranger).setToken(okbAddr, true))
        .to.emit(payPerUse, "TokenSet")
        .withArgs(okbAddr, true);
    });
  });

  describe("setFee", function () {
    it("sets the fee from 0 up to MAX_FEE_BPS and emits FeeSet", async function () {
      const { payPerUse } = await loadFixture(baseFixture);
      await expect(payPerUse.setFee(MAX_FEE_BPS)).to.emit(payPerUse, "FeeSet").withArgs(MAX_FEE_BPS);
      expect((await payPerUse.config())[3]).to.equal(MAX_FEE_BPS);
      await expect(payPerUse.setFee(0)).to.emit(payPerUse, "FeeSet").withArgs(0n);
      expect((await payPerUse.config())[3]).to.equal(0n);
    });

    it("applies the fee of the moment to the next charge", async function () {
      const f = await loadFixture(baseFixture);
      await f.payPerUse.setFee(MAX_FEE_BPS);
      await expect(aliceCharges(f)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.bob, f.payPerUse],
        [-usd(1), usd("0.9"), usd("0.1")],
      );
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(usd("0.1"));
    });

    it("reverts with PayPerUseBadParameter above MAX_FEE_BPS", async function () {
      const { payPerUse } = await loadFixture(baseFixture);
      await expect(payPerUse.setFee(MAX_FEE_BPS + 1n)).to.be.revertedWithCustomError(
        payPerUse,
        "PayPerUseBadParameter",
      );
      expect((await payPerUse.config())[3]).to.equal(PPU_FEE_BPS);
    });

    it("reverts with AccessControlUnauthorizedAccount without PARAMETER_ROLE", async function () {
      const { payPerUse, stranger } = await loadFixture(baseFixture);
      await expect(payPerUse.connect(stranger).setFee(0))
        .to.be.revertedWithCustomError(payPerUse, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, PARAMETER_ROLE);
    });
  });

  describe("setCloseGrace", function () {
    it("sets the grace at both inclusive bounds and emits CloseGraceSet", async function () {
      const { payPerUse } = await loadFixture(baseFixture);
      await expect(payPerUse.setCloseGrace(MIN_CLOSE_GRACE))
        .to.emit(payPerUse, "CloseGraceSet")
        .withArgs(MIN_CLOSE_GRACE);
      expect((await payPerUse.config())[4]).to.equal(MIN_CLOSE_GRACE);
      await expect(payPerUse.setCloseGrace(MAX_CLOSE_GRACE))
        .to.emit(payPerUse, "CloseGraceSet")
        .withArgs(MAX_CLOSE_GRACE);
      expect((await payPerUse.config())[4]).to.equal(MAX_CLOSE_GRACE);
    });

    it("reverts with PayPerUseBadParameter outside [MIN_CLOSE_GRACE, MAX_CLOSE_GRACE]", async function () {
      const { payPerUse } = await loadFixture(baseFixture);
      for (const grace of [0n, MIN_CLOSE_GRACE - 1n, MAX_CLOSE_GRACE + 1n]) {
        await expect(payPerUse.setCloseGrace(grace)).to.be.revertedWithCustomError(payPerUse, "PayPerUseBadParameter");
      }
      expect((await payPerUse.config())[4]).to.equal(CLOSE_GRACE);
    });

    it("reverts with AccessControlUnauthorizedAccount without PARAMETER_ROLE", async function () {
      const { payPerUse, stranger } = await loadFixture(baseFixture);
      await expect(payPerUse.connect(stranger).setCloseGrace(MIN_CLOSE_GRACE))
        .to.be.revertedWithCustomError(payPerUse, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, PARAMETER_ROLE);
    });
  });

  describe("setTreasury", function () {
    it("sets the treasury, emits TreasurySet, and later sweeps go there", async function () {
      const f = await loadFixture(chargedFixture);
      await expect(f.payPerUse.setTreasury(f.carol.address))
        .to.emit(f.payPerUse, "TreasurySet")
        .withArgs(f.carol.address);
      expect((await f.payPerUse.config())[2]).to.equal(f.carol.address);
      await expect(f.payPerUse.sweepFees(f.usdtAddr)).to.changeTokenBalances(
        f.usdt,
        [f.payPerUse, f.carol, f.treasury],
        [-usd("0.01"), usd("0.01"), 0n],
      );
    });

    it("reverts with ProtocolZeroAddress for the zero address", async function () {
      const { payPerUse } = await loadFixture(baseFixture);
      await expect(payPerUse.setTreasury(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        payPerUse,
        "ProtocolZeroAddress",
      );
    });

    it("is admin only: a PARAMETER_ROLE holder gets AccessControlUnauthorizedAccount", async function () {
      const { payPerUse, stranger } = await loadFixture(baseFixture);
      await payPerUse.grantRole(PARAMETER_ROLE, stranger.address);
      await expect(payPerUse.connect(stranger).setTreasury(stranger.address))
        .to.be.revertedWithCustomError(payPerUse, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, DEFAULT_ADMIN_ROLE);
    });
  });

  describe("pause and unpause", function () {
    it("are PAUSER_ROLE only", async function () {
      const { payPerUse, stranger } = await loadFixture(baseFixture);
      await expect(payPerUse.connect(stranger).pause())
        .to.be.revertedWithCustomError(payPerUse, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, PAUSER_ROLE);
      await payPerUse.pause();
      await expect(payPerUse.connect(stranger).unpause())
        .to.be.revertedWithCustomError(payPerUse, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, PAUSER_ROLE);
    });

    it("lets a PAUSER_ROLE holder pause and unpause (Paused, Unpaused); charges stop and resume", async function () {
      const f = await loadFixture(baseFixture);
      await f.payPerUse.grantRole(PAUSER_ROLE, f.stranger.address);
      await expect(f.payPerUse.connect(f.stranger).pause()).to.emit(f.payPerUse, "Paused").withArgs(f.stranger.address);
      expect(await f.payPerUse.paused()).to.equal(true);
      await expect(aliceCharges(f)).to.be.revertedWithCustomError(f.payPerUse, "EnforcedPause");
      await expect(f.payPerUse.connect(f.stranger).unpause())
        .to.emit(f.payPerUse, "Unpaused")
        .withArgs(f.stranger.address);
      await expect(aliceCharges(f)).to.emit(f.payPerUse, "Charged");
    });
  });

  // ------------------------------------------------------------------ charge

  describe("charge", function () {
    it("pays the provider's owner, accrues the fee and moves exact balances", async function () {
      const f = await loadFixture(baseFixture);
      await expect(aliceCharges(f)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.bob, f.payPerUse, f.treasury],
        [-usd(1), usd("0.99"), usd("0.01"), 0n],
      );
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(usd("0.01"));
      expect(await f.usdt.balanceOf(f.ppuAddr)).to.equal(usd("0.01"));
    });

    it("emits Charged with exact arguments and stores the receipt", async function () {
      const f = await loadFixture(baseFixture);
      const ref = ethers.id("my-request");
      expect(
        await f.payPerUse.connect(f.alice).charge.staticCall(f.aliceId, f.bobService, 4n, f.usdtAddr, usd(1), ref),
      ).to.equal(1n);
      await expect(aliceCharges(f, 4n, ref))
        .to.emit(f.payPerUse, "Charged")
        .withArgs(1n, f.aliceId, f.bobId, f.bobService, f.usdtAddr, 4n, usd(1), usd("0.01"), ref, f.alice.address);
      expect(await receiptOf(f.payPerUse, 1n)).to.deep.equal({
        payerId: f.aliceId,
        providerId: f.bobId,
        refundable: usd(1),
        token: f.usdtAddr,
      });
      expect(await f.payPerUse.receiptCount()).to.equal(1n);
    });

    it("counts the calls as pending (no Reputation call); syncReputation records them, one right per receipt", async function () {
      const f = await loadFixture(baseFixture);
      const first = aliceCharges(f);
      await expect(first).not.to.emit(f.reputation, "CallsRecorded");
      await expect(first).not.to.emit(f.reputation, "FeedbackRightGranted");
      await expect(first).not.to.emit(f.payPerUse, "ReputationSynced");
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal({
        calls: 4n,
        amount: usd(1),
        receipts: 1n,
      });
      let record = await f.reputation.getRecord(f.bobId);
      expect(record.callsServed).to.equal(0n);
      expect(record.settlementsServed).to.equal(0n);
      expect(record.lastActivity).to.equal(0n);
      expect(await f.reputation.getVolume(f.bobId, f.usdtAddr)).to.equal(0n);
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([0n, 0n]);

      const second = aliceCharges(f, 3n);
      await expect(second).not.to.emit(f.reputation, "CallsRecorded");
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal({
        calls: 7n,
        amount: usd("1.75"),
        receipts: 2n,
      });

      const sync = f.payPerUse.connect(f.stranger).syncReputation(f.aliceId, f.bobId, f.usdtAddr);
      await expect(sync)
        .to.emit(f.reputation, "CallsRecorded")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, 7n, usd("1.75"), 2n, false);
      const syncedAt = await minedAt(sync);
      record = await f.reputation.getRecord(f.bobId);
      expect(record.callsServed).to.equal(7n);
      expect(record.settlementsServed).to.equal(2n);
      expect(record.lastActivity).to.equal(syncedAt);
      expect((await f.reputation.getRecord(f.aliceId)).lastActivity).to.equal(syncedAt);
      expect(await f.reputation.getVolume(f.bobId, f.usdtAddr)).to.equal(usd("1.75"));
      expect(await f.reputation.getVolume(f.aliceId, f.usdtAddr)).to.equal(usd("1.75"));
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([2n, usd("1.75")]);
      expect([...(await f.reputation.feedbackRights(f.aliceId, f.bob.address))]).to.deep.equal([0n, 0n]);
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal({
        calls: 0n,
        amount: 0n,
        receipts: 0n,
      });
    });

    it("pays the provider's agent wallet, read at payment time, and accepts payment from the payer's wallet", async function () {
      const f = await loadFixture(walletsFixture);
      const tx = f.payPerUse
        .connect(f.aliceWallet)
        .charge(f.aliceId, f.bobService, 4n, await serviceToken(f.payPerUse, f.bobService), usd(1), REQUEST);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.aliceWallet, f.alice, f.bobWallet, f.bob, f.payPerUse],
        [-usd(1), 0n, usd("0.99"), 0n, usd("0.01")],
      );
      await expect(tx)
        .to.emit(f.payPerUse, "Charged")
        .withArgs(1n, f.aliceId, f.bobId, f.bobService, f.usdtAddr, 4n, usd(1), usd("0.01"), REQUEST, f.aliceWallet);
      await expect(tx).not.to.emit(f.reputation, "CallsRecorded");
      // Once synced, the right goes to the payer agent's owner, not to the wallet that paid.
      await expect(f.payPerUse.connect(f.stranger).syncReputation(f.aliceId, f.bobId, f.usdtAddr))
        .to.emit(f.reputation, "FeedbackRightGranted")
        .withArgs(f.bobId, f.alice.address, 1n, usd(1));
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([1n, usd(1)]);
      expect([...(await f.reputation.feedbackRights(f.bobId, f.aliceWallet.address))]).to.deep.equal([0n, 0n]);
      // Bob clears his wallet: the next payment goes to the owner.
      await f.registry.connect(f.bob).unsetAgentWallet(f.bobId);
      await expect(aliceCharges(f)).to.changeTokenBalances(f.usdt, [f.bob, f.bobWallet], [usd("0.99"), 0n]);
    });

    it("charges in the service's own token (carol's USDG service)", async function () {
      const f = await loadFixture(baseFixture);
      const tx = f.payPerUse
        .connect(f.alice)
        .charge(f.aliceId, f.carolService, 3n, await serviceToken(f.payPerUse, f.carolService), usd(3), REQUEST);
      await expect(tx).to.changeTokenBalances(
        f.usdg,
        [f.alice, f.carol, f.payPerUse],
        [-usd(3), usd("2.97"), usd("0.03")],
      );
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.carol, f.payPerUse], [0n, 0n, 0n]);
      expect(await f.payPerUse.accruedFees(f.usdgAddr)).to.equal(usd("0.03"));
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(0n);
      expect((await f.payPerUse.getReceipt(1n)).token).to.equal(f.usdgAddr);
    });

    it("rounds the fee down and pays the provider exactly the rest", async function () {
      const f = await loadFixture(baseFixture);
      await bobPrices(f, 999n);
      // 4 x 999 = 3,996; 1% = 39.96 -> 39; bob gets 3,957.
      await expect(
        f.payPerUse
          .connect(f.alice)
          .charge(f.aliceId, f.bobService, 4n, await serviceToken(f.payPerUse, f.bobService), 3_996n, REQUEST),
      )
        .to.emit(f.payPerUse, "Charged")
        .withArgs(1n, f.aliceId, f.bobId, f.bobService, f.usdtAddr, 4n, 3_996n, 39n, REQUEST, f.alice.address);
      expect(await f.usdt.balanceOf(f.ppuAddr)).to.equal(39n);
      expect(await f.usdt.balanceOf(f.bob.address)).to.equal(usd(1_000_000) + 3_957n);
    });

    it("with a zero fee pays the provider everything and accrues nothing", async function () {
      const f = await loadFixture(baseFixture);
      await f.payPerUse.setFee(0);
      const tx = aliceCharges(f);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.alice, f.bob, f.payPerUse], [-usd(1), usd(1), 0n]);
      await expect(tx)
        .to.emit(f.payPerUse, "Charged")
        .withArgs(1n, f.aliceId, f.bobId, f.bobService, f.usdtAddr, 4n, usd(1), 0n, REQUEST, f.alice.address);
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(0n);
      await expect(f.payPerUse.sweepFees(f.usdtAddr))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNothingToWithdraw")
        .withArgs(f.usdtAddr, f.treasury.address);
    });

    it("lets an operator pay within its policy, from its own funds; the right goes to the agent's owner", async function () {
      const f = await loadFixture(operatorFixture);
      const tx = f.payPerUse
        .connect(f.operator)
        .charge(f.aliceId, f.bobService, 4n, await serviceToken(f.payPerUse, f.bobService), usd(1), REQUEST);
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.operator, f.alice, f.bob, f.payPerUse],
        [-usd(1), 0n, usd("0.99"), usd("0.01")],
      );
      await expect(tx)
        .to.emit(f.registry, "SpendConsumed")
        .withArgs(f.aliceId, f.operator.address, f.usdtAddr, usd(1), f.bobId);
      await expect(tx)
        .to.emit(f.payPerUse, "Charged")
        .withArgs(1n, f.aliceId, f.bobId, f.bobService, f.usdtAddr, 4n, usd(1), usd("0.01"), REQUEST, f.operator);
      await expect(tx).not.to.emit(f.reputation, "CallsRecorded");
      expect(await f.registry.availableToSpend(f.aliceId, f.operator.address, f.usdtAddr)).to.equal(usd(5));
      await expect(f.payPerUse.connect(f.operator).syncReputation(f.aliceId, f.bobId, f.usdtAddr))
        .to.emit(f.reputation, "FeedbackRightGranted")
        .withArgs(f.bobId, f.alice.address, 1n, usd(1));
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([1n, usd(1)]);
      expect([...(await f.reputation.feedbackRights(f.bobId, f.operator.address))]).to.deep.equal([0n, 0n]);
    });

    it("reverts with the registry's AgentRegistryPerTxCapExceeded / PeriodCapExceeded for an operator over its caps", async function () {
      const f = await loadFixture(operatorFixture);
      // 24 units = 6 USDT > 5 per transaction.
      await expect(
        f.payPerUse
          .connect(f.operator)
          .charge(f.aliceId, f.bobService, 24n, await serviceToken(f.payPerUse, f.bobService), usd(6), REQUEST),
      )
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryPerTxCapExceeded")
        .withArgs(f.usdtAddr, usd(6), usd(5));
      // 5 USDT then 4 USDT: only 3 left of the 8 per day.
      await f.payPerUse
        .connect(f.operator)
        .charge(f.aliceId, f.bobService, 20n, await serviceToken(f.payPerUse, f.bobService), usd(5), REQUEST);
      await expect(
        f.payPerUse
          .connect(f.operator)
          .charge(f.aliceId, f.bobService, 16n, await serviceToken(f.payPerUse, f.bobService), usd(4), REQUEST),
      )
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryPeriodCapExceeded")
        .withArgs(f.usdtAddr, usd(4), usd(3));
    });

    it("reverts with the registry's AgentRegistryNotAuthorized for a stranger paying for the agent", async function () {
      const f = await loadFixture(baseFixture);
      await expect(
        f.payPerUse
          .connect(f.carol)
          .charge(f.aliceId, f.bobService, 4n, await serviceToken(f.payPerUse, f.bobService), usd(1), REQUEST),
      )
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryNotAuthorized")
        .withArgs(f.aliceId, f.carol.address);
    });

    it("reverts with the registry's AgentRegistryUnknownAgent for an unknown payer agent", async function () {
      const f = await loadFixture(baseFixture);
      await expect(
        f.payPerUse
          .connect(f.alice)
          .charge(UNKNOWN, f.bobService, 4n, await serviceToken(f.payPerUse, f.bobService), usd(1), REQUEST),
      )
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryUnknownAgent")
        .withArgs(UNKNOWN);
    });

    it("accepts a total equal to maxTotal and reverts with PayPerUseAboveMax after a price rise", async function () {
      const f = await loadFixture(baseFixture);
      await expect(
        f.payPerUse
          .connect(f.alice)
          .charge(f.aliceId, f.bobService, 4n, await serviceToken(f.payPerUse, f.bobService), usd(1) - 1n, REQUEST),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseAboveMax")
        .withArgs(usd(1), usd(1) - 1n);
      await bobPrices(f, usd("0.3"));
      await expect(
        f.payPerUse
          .connect(f.alice)
          .charge(f.aliceId, f.bobService, 4n, await serviceToken(f.payPerUse, f.bobService), usd(1), REQUEST),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseAboveMax")
        .withArgs(usd("1.2"), usd(1));
      await expect(
        f.payPerUse
          .connect(f.alice)
          .charge(f.aliceId, f.bobService, 4n, await serviceToken(f.payPerUse, f.bobService), usd("1.2"), REQUEST),
      ).to.changeTokenBalances(f.usdt, [f.alice, f.bob], [-usd("1.2"), usd("1.188")]);
    });

    it("reverts with PayPerUseTokenMismatch when the provider switched the service to another token the payer approved", async function () {
      const f = await loadFixture(baseFixture);
      await bobSwitchesToUsdg(f);
      const usdgAddr = await f.usdg.getAddress();
      const [usdtBefore, usdgBefore] = [
        await f.usdt.balanceOf(f.alice.address),
        await f.usdg.balanceOf(f.alice.address),
      ];
      await expect(aliceCharges(f))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseTokenMismatch")
        .withArgs(f.usdtAddr, usdgAddr);
      expect(await f.usdt.balanceOf(f.alice.address)).to.equal(usdtBefore);
      expect(await f.usdg.balanceOf(f.alice.address)).to.equal(usdgBefore);
      expect(await f.payPerUse.receiptCount()).to.equal(0n);
      // Naming the new token is the payer's consent to it.
      await expect(
        f.payPerUse.connect(f.alice).charge(f.aliceId, f.bobService, 4n, usdgAddr, usd(1), REQUEST),
      ).to.changeTokenBalances(f.usdg, [f.alice, f.bob], [-usd(1), usd("0.99")]);
    });

    it("reverts with PayPerUseBadAmount for zero units, units above uint64 or a total above uint96", async function () {
      const f = await loadFixture(baseFixture);
      await expect(
        f.payPerUse
          .connect(f.alice)
          .charge(f.aliceId, f.bobService, 0n, await serviceToken(f.payPerUse, f.bobService), usd(1), REQUEST),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadAmount")
        .withArgs(0n);
      await expect(
        f.payPerUse
          .connect(f.alice)
          .charge(
            f.aliceId,
            f.bobService,
            UINT64_MAX + 1n,
            await serviceToken(f.payPerUse, f.bobService),
            ethers.MaxUint256,
            REQUEST,
          ),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadAmount")
        .withArgs(UINT64_MAX + 1n);
      const price = 2n ** 80n - 1n; // the catalog's largest unit price
      await bobPrices(f, price, true);
      const units = UINT96_MAX / price + 1n;
      await expect(
        f.payPerUse
          .connect(f.alice)
          .charge(
            f.aliceId,
            f.bobService,
            units,
            await serviceToken(f.payPerUse, f.bobService),
            ethers.MaxUint256,
            REQUEST,
          ),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadAmount")
        .withArgs(units * price);
    });

    it("reverts with PayPerUseServiceUnavailable for an inactive service, and works again once reactivated", async function () {
      const f = await loadFixture(baseFixture);
      await bobPrices(f, UNIT_PRICE, false);
      await expect(aliceCharges(f))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseServiceUnavailable")
        .withArgs(f.bobService);
      await bobPrices(f, UNIT_PRICE, true);
      await expect(aliceCharges(f)).to.emit(f.payPerUse, "Charged");
    });

    it("reverts with PayPerUseServiceUnavailable for a QuotedTask service", async function () {
      const f = await loadFixture(baseFixture);
      await f.registry
        .connect(f.bob)
        .listService(f.bobId, ethers.id("audit"), QUOTED_TASK, f.usdtAddr, UNIT_PRICE, "https://bob.example/mcp");
      const quoted = await f.registry.serviceCount();
      await expect(
        f.payPerUse
          .connect(f.alice)
          .charge(f.aliceId, quoted, 4n, await serviceToken(f.payPerUse, quoted), usd(1), REQUEST),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseServiceUnavailable")
        .withArgs(quoted);
    });

    it("reverts with PayPerUseServiceUnavailable while the provider agent is paused", async function () {
      const f = await loadFixture(baseFixture);
      await f.registry.connect(f.bob).setAgentPaused(f.bobId, true);
      await expect(aliceCharges(f))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseServiceUnavailable")
        .withArgs(f.bobService);
      await f.registry.connect(f.bob).setAgentPaused(f.bobId, false);
      await expect(aliceCharges(f)).to.emit(f.payPerUse, "Charged");
    });

    it("reverts with the registry's AgentRegistryUnknownService for an unknown service", async function () {
      const f = await loadFixture(baseFixture);
      await expect(
        f.payPerUse
          .connect(f.alice)
          .charge(f.aliceId, UNKNOWN, 4n, await serviceToken(f.payPerUse, UNKNOWN), usd(1), REQUEST),
      )
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryUnknownService")
        .withArgs(UNKNOWN);
    });

    it("reverts with PayPerUseTokenNotAllowed when the service's token is not allowed", async function () {
      const f = await loadFixture(baseFixture);
      const okbAddr = await f.okb.getAddress();
      await f.registry.connect(f.bob).updateService(f.bobService, okbAddr, UNIT_PRICE, true, BOB_ENDPOINT);
      await expect(aliceCharges(f))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseTokenNotAllowed")
        .withArgs(okbAddr);
    });

    it("reverts with PayPerUseSelfPayment when an agent pays its own service", async function () {
      const f = await loadFixture(baseFixture);
      await f.registry
        .connect(f.alice)
        .listService(f.aliceId, CAPABILITY, PAY_PER_USE, f.usdtAddr, UNIT_PRICE, "https://alice.example/api");
      const own = await f.registry.serviceCount();
      await expect(
        f.payPerUse.connect(f.alice).charge(f.aliceId, own, 4n, await serviceToken(f.payPerUse, own), usd(1), REQUEST),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSelfPayment")
        .withArgs(f.aliceId);
    });

    it("records a charge between two agents of the same owner as self-dealing (no right, no record)", async function () {
      const f = await loadFixture(baseFixture);
      await f.registry.connect(f.bob).getFunction("register(string)")("ipfs://bob-2");
      const bob2Id = 5n;
      const tx = f.payPerUse
        .connect(f.bob)
        .charge(bob2Id, f.bobService, 4n, await serviceToken(f.payPerUse, f.bobService), usd(1), REQUEST);
      // Bob pays himself, less the fee.
      await expect(tx).to.changeTokenBalances(f.usdt, [f.bob, f.payPerUse], [-usd("0.01"), usd("0.01")]);
      await expect(tx).not.to.emit(f.reputation, "CallsRecorded");
      await expect(tx)
        .to.emit(f.payPerUse, "Charged")
        .withArgs(1n, bob2Id, f.bobId, f.bobService, f.usdtAddr, 4n, usd(1), usd("0.01"), REQUEST, f.bob.address);
      expect(await pendingOf(f.payPerUse, bob2Id, f.bobId, f.usdtAddr)).to.deep.equal({
        calls: 4n,
        amount: usd(1),
        receipts: 1n,
      });
      const sync = f.payPerUse.connect(f.stranger).syncReputation(bob2Id, f.bobId, f.usdtAddr);
      await expect(sync)
        .to.emit(f.reputation, "CallsRecorded")
        .withArgs(bob2Id, f.bobId, f.usdtAddr, 4n, usd(1), 1n, true);
      await expect(sync).not.to.emit(f.reputation, "FeedbackRightGranted");
      expect([...(await f.reputation.feedbackRights(f.bobId, f.bob.address))]).to.deep.equal([0n, 0n]);
      const record = await f.reputation.getRecord(f.bobId);
      expect(record.callsServed).to.equal(0n);
      expect(record.settlementsServed).to.equal(0n);
      expect(await f.reputation.getVolume(f.bobId, f.usdtAddr)).to.equal(0n);
    });

    it("reverts with PayPerUseTransferMismatch for a fee-on-transfer token", async function () {
      const f = await loadFixture(baseFixture);
      const fot = await new MockFeeOnTransferToken__factory(f.admin).deploy(100);
      const fotAddr = await fot.getAddress();
      await f.payPerUse.setToken(fotAddr, true);
      await f.registry.connect(f.bob).updateService(f.bobService, fotAddr, UNIT_PRICE, true, BOB_ENDPOINT);
      await fot.mint(f.alice.address, usd(10));
      await fot.connect(f.alice).approve(f.ppuAddr, ethers.MaxUint256);
      await expect(f.payPerUse.connect(f.alice).charge(f.aliceId, f.bobService, 4n, fotAddr, usd(1), REQUEST))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseTransferMismatch")
        .withArgs(fotAddr, usd(1), usd("0.99"));
    });

    it("reverts with EnforcedPause while paused", async function () {
      const f = await loadFixture(baseFixture);
      await f.payPerUse.pause();
      await expect(aliceCharges(f)).to.be.revertedWithCustomError(f.payPerUse, "EnforcedPause");
    });
  });

  // ------------------------------------------------------------------ submitCharge

  describe("submitCharge", function () {
    it("lets a facilitator submit: funds come from the signer, the facilitator pays only gas", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await chargeAuth(f, { nonce: 7n });
      const sig = await signCharge(f.payPerUse, f.alice, auth);
      expect(
        await f.payPerUse.connect(f.stranger).submitCharge.staticCall(auth, sig, FUNDING.Allowance, "0x"),
      ).to.equal(1n);
      const tx = f.payPerUse.connect(f.stranger).submitCharge(auth, sig, FUNDING.Allowance, "0x");
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.bob, f.stranger, f.payPerUse],
        [-usd(1), usd("0.99"), 0n, usd("0.01")],
      );
      await expect(tx).to.changeEtherBalance(f.alice, 0n);
      await expect(tx).to.emit(f.payPerUse, "AuthorizationUsed").withArgs(f.alice.address, 7n);
      await expect(tx)
        .to.emit(f.payPerUse, "Charged")
        .withArgs(1n, f.aliceId, f.bobId, f.bobService, f.usdtAddr, 4n, usd(1), usd("0.01"), REQUEST, f.alice.address);
      await expect(tx).not.to.emit(f.reputation, "CallsRecorded");
      expect(await f.payPerUse.nonceUsed(f.alice.address, 7n)).to.equal(true);
      expect(await receiptOf(f.payPerUse, 1n)).to.deep.equal({
        payerId: f.aliceId,
        providerId: f.bobId,
        refundable: usd(1),
        token: f.usdtAddr,
      });
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal({
        calls: 4n,
        amount: usd(1),
        receipts: 1n,
      });
      await f.payPerUse.connect(f.stranger).syncReputation(f.aliceId, f.bobId, f.usdtAddr);
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([1n, usd(1)]);
    });

    it("lets the provider submit a signed charge itself", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await chargeAuth(f, { units: 2n });
      const sig = await signCharge(f.payPerUse, f.alice, auth);
      await expect(f.payPerUse.connect(f.bob).submitCharge(auth, sig, FUNDING.Allowance, "0x")).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.bob],
        [-usd("0.5"), usd("0.495")],
      );
    });

    it("reverts with PayPerUseBadFunding for Allowance funding with data", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await chargeAuth(f);
      const sig = await signCharge(f.payPerUse, f.alice, auth);
      await expect(
        f.payPerUse.connect(f.bob).submitCharge(auth, sig, FUNDING.Allowance, "0x00"),
      ).to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadFunding");
    });

    describe("Permit funding", function () {
      it("pulls the charge with the permit carried in the call", async function () {
        const f = await loadFixture(baseFixture);
        await f.usdt.connect(f.alice).approve(f.ppuAddr, 0);
        const auth = await chargeAuth(f);
        const sig = await signCharge(f.payPerUse, f.alice, auth);
        const { data } = await permitData(f.usdt, f.alice, f.ppuAddr, auth.amount, auth.validBefore);
        const tx = f.payPerUse.connect(f.carol).submitCharge(auth, sig, FUNDING.Permit, data);
        await expect(tx).to.changeTokenBalances(
          f.usdt,
          [f.alice, f.bob, f.carol, f.payPerUse],
          [-usd(1), usd("0.99"), 0n, usd("0.01")],
        );
        await expect(tx).to.emit(f.usdt, "Approval").withArgs(f.alice.address, f.ppuAddr, usd(1));
        expect(await f.usdt.nonces(f.alice.address)).to.equal(1n);
        expect(await f.usdt.allowance(f.alice.address, f.ppuAddr)).to.equal(0n);
      });

      it("still works when the permit was front-run (already used) and the allowance suffices", async function () {
        const f = await loadFixture(baseFixture);
        await f.usdt.connect(f.alice).approve(f.ppuAddr, 0);
        const auth = await chargeAuth(f);
        const sig = await signCharge(f.payPerUse, f.alice, auth);
        const { data, sig: p } = await permitData(f.usdt, f.alice, f.ppuAddr, auth.amount, auth.validBefore);
        await f.usdt
          .connect(f.stranger)
          .permit(f.alice.address, f.ppuAddr, auth.amount, auth.validBefore, p.v, p.r, p.s);
        expect(await f.usdt.allowance(f.alice.address, f.ppuAddr)).to.equal(usd(1));
        await expect(f.payPerUse.connect(f.carol).submitCharge(auth, sig, FUNDING.Permit, data)).to.changeTokenBalances(
          f.usdt,
          [f.alice, f.bob, f.payPerUse],
          [-usd(1), usd("0.99"), usd("0.01")],
        );
        expect(await f.usdt.allowance(f.alice.address, f.ppuAddr)).to.equal(0n);
      });

      it("ignores an invalid permit when the standing allowance suffices", async function () {
        const f = await loadFixture(baseFixture);
        const auth = await chargeAuth(f);
        const sig = await signCharge(f.payPerUse, f.alice, auth);
        // Signed by carol for alice: the permit fails, the unlimited allowance pays.
        const { data } = await permitData(f.usdt, f.alice, f.ppuAddr, auth.amount, auth.validBefore, f.carol);
        await expect(f.payPerUse.connect(f.carol).submitCharge(auth, sig, FUNDING.Permit, data)).to.changeTokenBalances(
          f.usdt,
          [f.alice, f.bob],
          [-usd(1), usd("0.99")],
        );
        expect(await f.usdt.nonces(f.alice.address)).to.equal(0n);
      });

      it("reverts with the token's ERC20InsufficientAllowance when the permit fails and no allowance is left", async function () {
        const f = await loadFixture(baseFixture);
        await f.usdt.connect(f.alice).approve(f.ppuAddr, 0);
        const auth = await chargeAuth(f);
        const sig = await signCharge(f.payPerUse, f.alice, auth);
        const { data } = await permitData(f.usdt, f.alice, f.ppuAddr, auth.amount, auth.validBefore, f.carol);
        await expect(f.payPerUse.connect(f.carol).submitCharge(auth, sig, FUNDING.Permit, data))
          .to.be.revertedWithCustomError(f.usdt, "ERC20InsufficientAllowance")
          .withArgs(f.ppuAddr, 0n, usd(1));
      });

      it("reverts with PayPerUseBadFunding when the permit data is not 5 words", async function () {
        const f = await loadFixture(baseFixture);
        const auth = await chargeAuth(f);
        const sig = await signCharge(f.payPerUse, f.alice, auth);
        const { data } = await permitData(f.usdt, f.alice, f.ppuAddr, auth.amount, auth.validBefore);
        for (const bad of ["0x", ethers.dataSlice(data, 0, 128), ethers.concat([data, ethers.ZeroHash])]) {
          await expect(
            f.payPerUse.connect(f.carol).submitCharge(auth, sig, FUNDING.Permit, bad),
          ).to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadFunding");
        }
      });
    });

    describe("ReceiveWithAuthorization funding", function () {
      it("moves exactly the charged amount with the EIP-3009 authorisation, without any allowance", async function () {
        const f = await loadFixture(baseFixture);
        await f.usdt.connect(f.alice).approve(f.ppuAddr, 0);
        const auth = await chargeAuth(f);
        const sig = await signCharge(f.payPerUse, f.alice, auth);
        const nonce3009 = ethers.id("eip-3009 nonce");
        const data = await receiveData(f.usdt, f.alice, f.ppuAddr, auth.amount, auth.validBefore, nonce3009);
        const tx = f.payPerUse.connect(f.carol).submitCharge(auth, sig, FUNDING.ReceiveWithAuthorization, data);
        await expect(tx).to.changeTokenBalances(
          f.usdt,
          [f.alice, f.bob, f.carol, f.payPerUse],
          [-usd(1), usd("0.99"), 0n, usd("0.01")],
        );
        await expect(tx).to.emit(f.usdt, "AuthorizationUsed").withArgs(f.alice.address, nonce3009);
        await expect(tx)
          .to.emit(f.payPerUse, "Charged")
          .withArgs(
            1n,
            f.aliceId,
            f.bobId,
            f.bobService,
            f.usdtAddr,
            4n,
            usd(1),
            usd("0.01"),
            REQUEST,
            f.alice.address,
          );
        expect(await f.usdt.authorizationState(f.alice.address, nonce3009)).to.equal(true);
      });

      it("asks the token for exactly the charged amount: an authorisation of another value fails", async function () {
        const f = await loadFixture(baseFixture);
        const auth = await chargeAuth(f);
        const sig = await signCharge(f.payPerUse, f.alice, auth);
        const data = await receiveData(f.usdt, f.alice, f.ppuAddr, usd(2), auth.validBefore, ethers.id("n"));
        await expect(
          f.payPerUse.connect(f.carol).submitCharge(auth, sig, FUNDING.ReceiveWithAuthorization, data),
        ).to.be.revertedWithCustomError(f.usdt, "MockStablecoinInvalidSignature");
      });

      it("reverts with PayPerUseBadFunding when the data is not 6 words", async function () {
        const f = await loadFixture(baseFixture);
        const auth = await chargeAuth(f);
        const sig = await signCharge(f.payPerUse, f.alice, auth);
        const data = await receiveData(f.usdt, f.alice, f.ppuAddr, auth.amount, auth.validBefore, ethers.id("n"));
        for (const bad of ["0x", ethers.dataSlice(data, 0, 160), ethers.concat([data, ethers.ZeroHash])]) {
          await expect(
            f.payPerUse.connect(f.carol).submitCharge(auth, sig, FUNDING.ReceiveWithAuthorization, bad),
          ).to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadFunding");
        }
      });
    });

    it("reverts with PayPerUseAmountMismatch after a price change, and for a signed amount off the price", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await chargeAuth(f);
      const sig = await signCharge(f.payPerUse, f.alice, auth);
      await bobPrices(f, usd("0.3"));
      await expect(f.payPerUse.connect(f.bob).submitCharge(auth, sig, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseAmountMismatch")
        .withArgs(usd(1), usd("1.2"));
      expect(await f.payPerUse.nonceUsed(f.alice.address, auth.nonce)).to.equal(false);
      const low = await chargeAuth(f, { nonce: 2n, amount: usd("1.1") });
      await expect(
        f.payPerUse
          .connect(f.bob)
          .submitCharge(low, await signCharge(f.payPerUse, f.alice, low), FUNDING.Allowance, "0x"),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseAmountMismatch")
        .withArgs(usd("1.1"), usd("1.2"));
    });

    it("reverts with PayPerUseTokenMismatch when the service moved to another token after the payer signed", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await chargeAuth(f);
      expect(auth.token).to.equal(f.usdtAddr);
      const sig = await signCharge(f.payPerUse, f.alice, auth);
      await bobSwitchesToUsdg(f);
      const usdgBefore = await f.usdg.balanceOf(f.alice.address);
      await expect(f.payPerUse.connect(f.bob).submitCharge(auth, sig, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseTokenMismatch")
        .withArgs(f.usdtAddr, await f.usdg.getAddress());
      expect(await f.usdg.balanceOf(f.alice.address)).to.equal(usdgBefore);
      expect(await f.payPerUse.nonceUsed(f.alice.address, auth.nonce)).to.equal(false);
      // The token is signed: submitting the same signature with the new token fails its check.
      const swapped = { ...auth, token: await f.usdg.getAddress() };
      await expect(f.payPerUse.connect(f.bob).submitCharge(swapped, sig, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadSignature")
        .withArgs(f.alice.address);
    });

    it("reverts with PayPerUseNotYetValid at validAfter and accepts it one second later", async function () {
      const f = await loadFixture(baseFixture);
      const validAfter = (await now()) + 100n;
      const auth = await chargeAuth(f, { validAfter });
      const sig = await signCharge(f.payPerUse, f.alice, auth);
      await time.setNextBlockTimestamp(validAfter);
      await expect(f.payPerUse.connect(f.bob).submitCharge(auth, sig, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNotYetValid")
        .withArgs(validAfter);
      await time.setNextBlockTimestamp(validAfter + 1n);
      await expect(f.payPerUse.connect(f.bob).submitCharge(auth, sig, FUNDING.Allowance, "0x")).to.emit(
        f.payPerUse,
        "Charged",
      );
    });

    it("reverts with PayPerUseExpired at validBefore", async function () {
      const f = await loadFixture(baseFixture);
      const validBefore = (await now()) + 100n;
      const auth = await chargeAuth(f, { validBefore });
      const sig = await signCharge(f.payPerUse, f.alice, auth);
      await time.setNextBlockTimestamp(validBefore);
      await expect(f.payPerUse.connect(f.bob).submitCharge(auth, sig, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseExpired")
        .withArgs(validBefore);
    });

    it("accepts an authorisation one second before validBefore", async function () {
      const f = await loadFixture(baseFixture);
      const validBefore = (await now()) + 100n;
      const auth = await chargeAuth(f, { validBefore });
      const sig = await signCharge(f.payPerUse, f.alice, auth);
      await time.setNextBlockTimestamp(validBefore - 1n);
      await expect(f.payPerUse.connect(f.bob).submitCharge(auth, sig, FUNDING.Allowance, "0x")).to.emit(
        f.payPerUse,
        "Charged",
      );
    });

    it("reverts with PayPerUseNonceUsed when a nonce is reused; nonces are per payer", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await chargeAuth(f);
      const sig = await signCharge(f.payPerUse, f.alice, auth);
      await f.payPerUse.connect(f.bob).submitCharge(auth, sig, FUNDING.Allowance, "0x");
      await expect(f.payPerUse.connect(f.bob).submitCharge(auth, sig, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNonceUsed")
        .withArgs(f.alice.address, 1n);
      const other = await chargeAuth(f, { units: 1n, requestRef: ethers.id("other") });
      await expect(
        f.payPerUse
          .connect(f.bob)
          .submitCharge(other, await signCharge(f.payPerUse, f.alice, other), FUNDING.Allowance, "0x"),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNonceUsed")
        .withArgs(f.alice.address, 1n);
      // Bob's nonce 1 is his own: bob's agent pays carol's service with it.
      const bobAuth = await chargeAuth(f, {
        payerId: f.bobId,
        payer: f.bob.address,
        serviceId: f.carolService,
        units: 1n,
        amount: usd(1),
      });
      await expect(
        f.payPerUse
          .connect(f.carol)
          .submitCharge(bobAuth, await signCharge(f.payPerUse, f.bob, bobAuth), FUNDING.Allowance, "0x"),
      )
        .to.emit(f.payPerUse, "AuthorizationUsed")
        .withArgs(f.bob.address, 1n);
    });

    it("accepts an ERC-1271 contract wallet that owns the payer agent as payer", async function () {
      const f = await loadFixture(contractPayerFixture);
      const auth = await chargeAuth(f, { payerId: f.walletId, payer: f.walletAddr });
      const sig = await signCharge(f.payPerUse, f.dave, auth);
      const tx = f.payPerUse.connect(f.carol).submitCharge(auth, sig, FUNDING.Allowance, "0x");
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.wallet, f.dave, f.bob, f.payPerUse],
        [-usd(1), 0n, usd("0.99"), usd("0.01")],
      );
      await expect(tx).to.emit(f.payPerUse, "AuthorizationUsed").withArgs(f.walletAddr, 1n);
      await expect(tx)
        .to.emit(f.payPerUse, "Charged")
        .withArgs(1n, f.walletId, f.bobId, f.bobService, f.usdtAddr, 4n, usd(1), usd("0.01"), REQUEST, f.walletAddr);
      await expect(tx).not.to.emit(f.reputation, "CallsRecorded");
      // The contract wallet owns agent #5: it receives the right once synced.
      await expect(f.payPerUse.connect(f.bob).syncReputation(f.walletId, f.bobId, f.usdtAddr))
        .to.emit(f.reputation, "FeedbackRightGranted")
        .withArgs(f.bobId, f.walletAddr, 1n, usd(1));
      expect([...(await f.reputation.feedbackRights(f.bobId, f.walletAddr))]).to.deep.equal([1n, usd(1)]);
    });

    it("reverts with PayPerUseBadSignature when the ERC-1271 wallet rejects the signature", async function () {
      const f = await loadFixture(contractPayerFixture);
      await f.wallet.connect(f.dave).setRejectAll(true);
      const auth = await chargeAuth(f, { payerId: f.walletId, payer: f.walletAddr });
      const sig = await signCharge(f.payPerUse, f.dave, auth);
      await expect(f.payPerUse.connect(f.carol).submitCharge(auth, sig, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadSignature")
        .withArgs(f.walletAddr);
    });

    it("reverts with PayPerUseBadSignature for a wrong signer, a tampered field, a wrong domain or a malleable twin", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await chargeAuth(f);
      const good = await signCharge(f.payPerUse, f.alice, auth);
      const cases: [typeof auth, string][] = [
        [auth, await signCharge(f.payPerUse, f.carol, auth)],
        [{ ...auth, requestRef: ethers.id("tampered") }, good],
        [auth, await signCharge(f.payPerUse, f.alice, auth, { chainId: 1n })],
        [auth, await signCharge(f.payPerUse, f.alice, auth, { verifyingContract: f.usdtAddr })],
        [auth, await signCharge(f.payPerUse, f.alice, auth, { version: "2" })],
        [auth, malleate(good)],
      ];
      for (const [a, sig] of cases) {
        await expect(f.payPerUse.connect(f.bob).submitCharge(a, sig, FUNDING.Allowance, "0x"))
          .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadSignature")
          .withArgs(f.alice.address);
      }
      expect(await f.payPerUse.nonceUsed(f.alice.address, auth.nonce)).to.equal(false);
      await expect(f.payPerUse.connect(f.bob).submitCharge(auth, good, FUNDING.Allowance, "0x")).to.emit(
        f.payPerUse,
        "Charged",
      );
    });

    it("reverts with PayPerUseBadSignature for the zero address as payer", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await chargeAuth(f, { payer: ethers.ZeroAddress });
      const sig = await signCharge(f.payPerUse, f.alice, auth);
      await expect(f.payPerUse.connect(f.bob).submitCharge(auth, sig, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadSignature")
        .withArgs(ethers.ZeroAddress);
    });

    it("reverts with the registry's AgentRegistryNotAuthorized when the signer cannot spend for the agent", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await chargeAuth(f, { payer: f.carol.address });
      const sig = await signCharge(f.payPerUse, f.carol, auth);
      await expect(f.payPerUse.connect(f.bob).submitCharge(auth, sig, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryNotAuthorized")
        .withArgs(f.aliceId, f.carol.address);
    });

    it("debits an operator signer's policy and reverts over its per-transaction cap", async function () {
      const f = await loadFixture(operatorFixture);
      const ok = await chargeAuth(f, { payer: f.operator.address });
      const tx = f.payPerUse
        .connect(f.bob)
        .submitCharge(ok, await signCharge(f.payPerUse, f.operator, ok), FUNDING.Allowance, "0x");
      await expect(tx).to.changeTokenBalances(f.usdt, [f.operator, f.alice], [-usd(1), 0n]);
      await expect(tx)
        .to.emit(f.registry, "SpendConsumed")
        .withArgs(f.aliceId, f.operator.address, f.usdtAddr, usd(1), f.bobId);
      const big = await chargeAuth(f, { payer: f.operator.address, nonce: 2n, units: 24n });
      await expect(
        f.payPerUse
          .connect(f.bob)
          .submitCharge(big, await signCharge(f.payPerUse, f.operator, big), FUNDING.Allowance, "0x"),
      )
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryPerTxCapExceeded")
        .withArgs(f.usdtAddr, usd(6), usd(5));
    });

    it("reverts with PayPerUseSelfPayment for a signed charge to the payer's own service", async function () {
      const f = await loadFixture(baseFixture);
      await f.registry
        .connect(f.alice)
        .listService(f.aliceId, CAPABILITY, PAY_PER_USE, f.usdtAddr, UNIT_PRICE, "https://alice.example/api");
      const auth = await chargeAuth(f, { serviceId: await f.registry.serviceCount() });
      const sig = await signCharge(f.payPerUse, f.alice, auth);
      await expect(f.payPerUse.connect(f.bob).submitCharge(auth, sig, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseSelfPayment")
        .withArgs(f.aliceId);
    });

    it("reverts with EnforcedPause while paused", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await chargeAuth(f);
      const sig = await signCharge(f.payPerUse, f.alice, auth);
      await f.payPerUse.pause();
      await expect(
        f.payPerUse.connect(f.bob).submitCharge(auth, sig, FUNDING.Allowance, "0x"),
      ).to.be.revertedWithCustomError(f.payPerUse, "EnforcedPause");
    });
  });

  // ------------------------------------------------------------------ settleUpTo

  describe("settleUpTo", function () {
    it("settles fewer units than the maximum: the payer loses only the actual amount", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await upToAuth(f, { nonce: 3n });
      const sig = await signUpTo(f.payPerUse, f.alice, auth);
      expect(await f.payPerUse.connect(f.bob).settleUpTo.staticCall(auth, sig, 3n, FUNDING.Allowance, "0x")).to.equal(
        1n,
      );
      const tx = f.payPerUse.connect(f.bob).settleUpTo(auth, sig, 3n, FUNDING.Allowance, "0x");
      await expect(tx).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.bob, f.payPerUse],
        [-usd("0.75"), usd("0.7425"), usd("0.0075")],
      );
      await expect(tx).to.emit(f.payPerUse, "AuthorizationUsed").withArgs(f.alice.address, 3n);
      await expect(tx)
        .to.emit(f.payPerUse, "Charged")
        .withArgs(
          1n,
          f.aliceId,
          f.bobId,
          f.bobService,
          f.usdtAddr,
          3n,
          usd("0.75"),
          usd("0.0075"),
          REQUEST,
          f.alice.address,
        );
      expect(await receiptOf(f.payPerUse, 1n)).to.deep.equal({
        payerId: f.aliceId,
        providerId: f.bobId,
        refundable: usd("0.75"),
        token: f.usdtAddr,
      });
      await expect(tx).not.to.emit(f.reputation, "CallsRecorded");
      expect(await f.payPerUse.nonceUsed(f.alice.address, 3n)).to.equal(true);
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal({
        calls: 3n,
        amount: usd("0.75"),
        receipts: 1n,
      });
      expect((await f.reputation.getRecord(f.bobId)).callsServed).to.equal(0n);
      await expect(f.payPerUse.connect(f.bob).syncReputation(f.aliceId, f.bobId, f.usdtAddr))
        .to.emit(f.reputation, "CallsRecorded")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, 3n, usd("0.75"), 1n, false);
      const record = await f.reputation.getRecord(f.bobId);
      expect(record.callsServed).to.equal(3n);
      expect(record.settlementsServed).to.equal(1n);
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([1n, usd("0.75")]);
    });

    it("settles exactly the maximum and reverts with PayPerUseAboveMax one unit above", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await upToAuth(f);
      const sig = await signUpTo(f.payPerUse, f.alice, auth);
      await expect(f.payPerUse.connect(f.bob).settleUpTo(auth, sig, 41n, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseAboveMax")
        .withArgs(usd("10.25"), usd(10));
      await expect(
        f.payPerUse.connect(f.bob).settleUpTo(auth, sig, 40n, FUNDING.Allowance, "0x"),
      ).to.changeTokenBalances(f.usdt, [f.alice, f.bob], [-usd(10), usd("9.9")]);
    });

    it("reverts with PayPerUseTokenMismatch when the provider switched the service's token after the payer signed", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await upToAuth(f);
      const sig = await signUpTo(f.payPerUse, f.alice, auth);
      await bobSwitchesToUsdg(f);
      const usdgBefore = await f.usdg.balanceOf(f.alice.address);
      await expect(f.payPerUse.connect(f.bob).settleUpTo(auth, sig, 40n, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseTokenMismatch")
        .withArgs(f.usdtAddr, await f.usdg.getAddress());
      expect(await f.usdg.balanceOf(f.alice.address)).to.equal(usdgBefore);
      expect(await f.payPerUse.nonceUsed(f.alice.address, auth.nonce)).to.equal(false);
      // Switched back, the same authorisation settles in USDT.
      await f.registry.connect(f.bob).updateService(f.bobService, f.usdt, UNIT_PRICE, true, BOB_ENDPOINT);
      await expect(
        f.payPerUse.connect(f.bob).settleUpTo(auth, sig, 40n, FUNDING.Allowance, "0x"),
      ).to.changeTokenBalances(f.usdt, [f.alice, f.bob], [-usd(10), usd("9.9")]);
    });

    it("settles at the current price after a price rise, still capped by the maximum", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await upToAuth(f);
      const sig = await signUpTo(f.payPerUse, f.alice, auth);
      await bobPrices(f, usd("0.3"));
      await expect(f.payPerUse.connect(f.bob).settleUpTo(auth, sig, 34n, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseAboveMax")
        .withArgs(usd("10.2"), usd(10));
      await expect(
        f.payPerUse.connect(f.bob).settleUpTo(auth, sig, 30n, FUNDING.Allowance, "0x"),
      ).to.changeTokenBalances(f.usdt, [f.alice, f.bob], [-usd(9), usd("8.91")]);
    });

    it("lets the provider's agent wallet settle; the wallet is paid", async function () {
      const f = await loadFixture(walletsFixture);
      const auth = await upToAuth(f);
      const sig = await signUpTo(f.payPerUse, f.alice, auth);
      await expect(
        f.payPerUse.connect(f.bobWallet).settleUpTo(auth, sig, 2n, FUNDING.Allowance, "0x"),
      ).to.changeTokenBalances(f.usdt, [f.alice, f.bobWallet, f.bob], [-usd("0.5"), usd("0.495"), 0n]);
    });

    it("reverts with PayPerUseNotAuthorized for a caller who cannot act for the provider", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await upToAuth(f);
      const sig = await signUpTo(f.payPerUse, f.alice, auth);
      for (const caller of [f.carol, f.alice, f.stranger]) {
        await expect(f.payPerUse.connect(caller).settleUpTo(auth, sig, 3n, FUNDING.Allowance, "0x"))
          .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNotAuthorized")
          .withArgs(f.bobId, caller.address);
      }
    });

    it("reverts with PayPerUseBadFunding for ReceiveWithAuthorization funding, even with valid data", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await upToAuth(f);
      const sig = await signUpTo(f.payPerUse, f.alice, auth);
      const data = await receiveData(f.usdt, f.alice, f.ppuAddr, usd("0.75"), auth.validBefore, ethers.id("n"));
      await expect(
        f.payPerUse.connect(f.bob).settleUpTo(auth, sig, 3n, FUNDING.ReceiveWithAuthorization, data),
      ).to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadFunding");
      await expect(
        f.payPerUse.connect(f.bob).settleUpTo(auth, sig, 3n, FUNDING.Allowance, "0x01"),
      ).to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadFunding");
    });

    it("works with Permit funding: only the actual amount leaves, the rest of the permit stays as allowance", async function () {
      const f = await loadFixture(baseFixture);
      await f.usdt.connect(f.alice).approve(f.ppuAddr, 0);
      const auth = await upToAuth(f);
      const sig = await signUpTo(f.payPerUse, f.alice, auth);
      const { data } = await permitData(f.usdt, f.alice, f.ppuAddr, auth.maxAmount, auth.validBefore);
      await expect(f.payPerUse.connect(f.bob).settleUpTo(auth, sig, 3n, FUNDING.Permit, data)).to.changeTokenBalances(
        f.usdt,
        [f.alice, f.bob, f.payPerUse],
        [-usd("0.75"), usd("0.7425"), usd("0.0075")],
      );
      expect(await f.usdt.allowance(f.alice.address, f.ppuAddr)).to.equal(usd(10) - usd("0.75"));
    });

    it("shares the nonce space with signed charges and checks validity, signature and units", async function () {
      const f = await loadFixture(baseFixture);
      const charge = await chargeAuth(f);
      await f.payPerUse
        .connect(f.bob)
        .submitCharge(charge, await signCharge(f.payPerUse, f.alice, charge), FUNDING.Allowance, "0x");
      const auth = await upToAuth(f);
      const sig = await signUpTo(f.payPerUse, f.alice, auth);
      await expect(f.payPerUse.connect(f.bob).settleUpTo(auth, sig, 3n, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNonceUsed")
        .withArgs(f.alice.address, 1n);
      const auth2 = await upToAuth(f, { nonce: 2n });
      await expect(
        f.payPerUse
          .connect(f.bob)
          .settleUpTo(auth2, await signUpTo(f.payPerUse, f.carol, auth2), 3n, FUNDING.Allowance, "0x"),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadSignature")
        .withArgs(f.alice.address);
      const sig2 = await signUpTo(f.payPerUse, f.alice, auth2);
      await expect(f.payPerUse.connect(f.bob).settleUpTo(auth2, sig2, 0n, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadAmount")
        .withArgs(0n);
      await time.setNextBlockTimestamp(auth2.validBefore);
      await expect(f.payPerUse.connect(f.bob).settleUpTo(auth2, sig2, 3n, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseExpired")
        .withArgs(auth2.validBefore);
    });

    it("reverts with PayPerUseNotYetValid at validAfter", async function () {
      const f = await loadFixture(baseFixture);
      const validAfter = (await now()) + 100n;
      const auth = await upToAuth(f, { validAfter });
      const sig = await signUpTo(f.payPerUse, f.alice, auth);
      await time.setNextBlockTimestamp(validAfter);
      await expect(f.payPerUse.connect(f.bob).settleUpTo(auth, sig, 3n, FUNDING.Allowance, "0x"))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNotYetValid")
        .withArgs(validAfter);
    });

    it("reverts with EnforcedPause while paused", async function () {
      const f = await loadFixture(baseFixture);
      const auth = await upToAuth(f);
      const sig = await signUpTo(f.payPerUse, f.alice, auth);
      await f.payPerUse.pause();
      await expect(
        f.payPerUse.connect(f.bob).settleUpTo(auth, sig, 3n, FUNDING.Allowance, "0x"),
      ).to.be.revertedWithCustomError(f.payPerUse, "EnforcedPause");
    });
  });

  // ------------------------------------------------------------------ cancelNonce

  describe("cancelNonce", function () {
    it("marks the nonce used, emits AuthorizationCancelled, and a later submit reverts with PayPerUseNonceUsed", async function () {
      const f = await loadFixture(baseFixture);
      await expect(f.payPerUse.connect(f.alice).cancelNonce(5n))
        .to.emit(f.payPerUse, "AuthorizationCancelled")
        .withArgs(f.alice.address, 5n);
      expect(await f.payPerUse.nonceUsed(f.alice.address, 5n)).to.equal(true);
      expect(await f.payPerUse.nonceUsed(f.alice.address, 4n)).to.equal(false);
      expect(await f.payPerUse.nonceUsed(f.alice.address, 6n)).to.equal(false);
      expect(await f.payPerUse.nonceUsed(f.bob.address, 5n)).to.equal(false);
      const auth = await chargeAuth(f, { nonce: 5n });
      await expect(
        f.payPerUse
          .connect(f.bob)
          .submitCharge(auth, await signCharge(f.payPerUse, f.alice, auth), FUNDING.Allowance, "0x"),
      )
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNonceUsed")
        .withArgs(f.alice.address, 5n);
    });

    it("reverts with PayPerUseNonceUsed for a nonce already cancelled or used", async function () {
      const f = await loadFixture(baseFixture);
      await f.payPerUse.connect(f.alice).cancelNonce(5n);
      await expect(f.payPerUse.connect(f.alice).cancelNonce(5n))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNonceUsed")
        .withArgs(f.alice.address, 5n);
      const auth = await chargeAuth(f, { nonce: 9n });
      await f.payPerUse
        .connect(f.bob)
        .submitCharge(auth, await signCharge(f.payPerUse, f.alice, auth), FUNDING.Allowance, "0x");
      await expect(f.payPerUse.connect(f.alice).cancelNonce(9n))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNonceUsed")
        .withArgs(f.alice.address, 9n);
    });

    it("keeps nonces 0, 255, 256 and the largest one independent across bitmap words", async function () {
      const f = await loadFixture(baseFixture);
      const nonces = [0n, 255n, 256n, 511n, 512n, ethers.MaxUint256];
      const used = async () => Promise.all(nonces.map((n) => f.payPerUse.nonceUsed(f.alice.address, n)));
      expect(await used()).to.deep.equal([false, false, false, false, false, false]);
      await f.payPerUse.connect(f.alice).cancelNonce(255n);
      expect(await used()).to.deep.equal([false, true, false, false, false, false]);
      await f.payPerUse.connect(f.alice).cancelNonce(256n);
      expect(await used()).to.deep.equal([false, true, true, false, false, false]);
      await f.payPerUse.connect(f.alice).cancelNonce(0n);
      expect(await used()).to.deep.equal([true, true, true, false, false, false]);
      await f.payPerUse.connect(f.alice).cancelNonce(ethers.MaxUint256);
      expect(await used()).to.deep.equal([true, true, true, false, false, true]);
      await f.payPerUse.connect(f.alice).cancelNonce(512n);
      expect(await used()).to.deep.equal([true, true, true, false, true, true]);
      expect(await f.payPerUse.nonceUsed(f.alice.address, 1n)).to.equal(false);
      expect(await f.payPerUse.nonceUsed(f.alice.address, 257n)).to.equal(false);
    });

    it("works while paused", async function () {
      const f = await loadFixture(baseFixture);
      await f.payPerUse.pause();
      await expect(f.payPerUse.connect(f.alice).cancelNonce(1n))
        .to.emit(f.payPerUse, "AuthorizationCancelled")
        .withArgs(f.alice.address, 1n);
    });
  });

  // ------------------------------------------------------------------ refund

  describe("refund", function () {
    it("refunds in full from the caller to the payer; the fee stays with the protocol", async function () {
      const f = await loadFixture(chargedFixture);
      const tx = f.payPerUse.connect(f.bob).refund(1n, usd(1));
      await expect(tx).to.changeTokenBalances(f.usdt, [f.bob, f.alice, f.payPerUse], [-usd(1), usd(1), 0n]);
      await expect(tx).to.emit(f.payPerUse, "ChargeRefunded").withArgs(1n, usd(1), 0n);
      expect((await f.payPerUse.getReceipt(1n)).refundable).to.equal(0n);
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(usd("0.01"));
      await expect(f.payPerUse.connect(f.bob).refund(1n, 1n))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseRefundTooLarge")
        .withArgs(1n, 1n, 0n);
    });

    it("refunds in several parts, never more than the total", async function () {
      const f = await loadFixture(chargedFixture);
      const parts: [bigint, bigint][] = [
        [usd("0.3"), usd("0.7")],
        [usd("0.5"), usd("0.2")],
        [usd("0.2"), 0n],
      ];
      for (const [amount, left] of parts) {
        const tx = f.payPerUse.connect(f.bob).refund(1n, amount);
        await expect(tx).to.emit(f.payPerUse, "ChargeRefunded").withArgs(1n, amount, left);
        await expect(tx).to.changeTokenBalances(f.usdt, [f.bob, f.alice, f.payPerUse], [-amount, amount, 0n]);
        expect(await receiptOf(f.payPerUse, 1n)).to.deep.equal({
          payerId: f.aliceId,
          providerId: f.bobId,
          refundable: left,
          token: f.usdtAddr,
        });
      }
    });

    it("reverts with PayPerUseRefundTooLarge above what is left", async function () {
      const f = await loadFixture(chargedFixture);
      await expect(f.payPerUse.connect(f.bob).refund(1n, usd(1) + 1n))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseRefundTooLarge")
        .withArgs(1n, usd(1) + 1n, usd(1));
      await f.payPerUse.connect(f.bob).refund(1n, usd("0.6"));
      await expect(f.payPerUse.connect(f.bob).refund(1n, usd("0.4") + 1n))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseRefundTooLarge")
        .withArgs(1n, usd("0.4") + 1n, usd("0.4"));
    });

    it("sends the refund to the payer agent's wallet and lets the provider's wallet or operator pay it", async function () {
      const f = await loadFixture(walletsFixture);
      await aliceCharges(f);
      await expect(f.payPerUse.connect(f.bobWallet).refund(1n, usd("0.4"))).to.changeTokenBalances(
        f.usdt,
        [f.bobWallet, f.bob, f.aliceWallet, f.alice],
        [-usd("0.4"), 0n, usd("0.4"), 0n],
      );
      const expiry = (await now()) + DAY;
      await f.registry
        .connect(f.bob)
        .setOperator(f.bobId, f.operator.address, { expiry, minScoreBps: 0, allowListOnly: false });
      await expect(f.payPerUse.connect(f.operator).refund(1n, usd("0.6"))).to.changeTokenBalances(
        f.usdt,
        [f.operator, f.bobWallet, f.aliceWallet],
        [-usd("0.6"), 0n, usd("0.6")],
      );
      expect((await f.payPerUse.getReceipt(1n)).refundable).to.equal(0n);
    });

    it("refunds in the receipt's token", async function () {
      const f = await loadFixture(baseFixture);
      await f.payPerUse
        .connect(f.alice)
        .charge(f.aliceId, f.carolService, 2n, await serviceToken(f.payPerUse, f.carolService), usd(2), REQUEST);
      const tx = f.payPerUse.connect(f.carol).refund(1n, usd("1.5"));
      await expect(tx).to.changeTokenBalances(f.usdg, [f.carol, f.alice], [-usd("1.5"), usd("1.5")]);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.carol, f.alice], [0n, 0n]);
    });

    it("reverts with PayPerUseBadAmount for a zero refund", async function () {
      const f = await loadFixture(chargedFixture);
      await expect(f.payPerUse.connect(f.bob).refund(1n, 0n))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadAmount")
        .withArgs(0n);
    });

    it("reverts with PayPerUseUnknownReceipt for receipt 0 or one never issued", async function () {
      const f = await loadFixture(chargedFixture);
      for (const id of [0n, 2n, UNKNOWN]) {
        await expect(f.payPerUse.connect(f.bob).refund(id, 1n))
          .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseUnknownReceipt")
          .withArgs(id);
      }
    });

    it("reverts with PayPerUseNotAuthorized for a caller who cannot act for the provider", async function () {
      const f = await loadFixture(chargedFixture);
      for (const caller of [f.alice, f.carol, f.stranger]) {
        await expect(f.payPerUse.connect(caller).refund(1n, 1n))
          .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNotAuthorized")
          .withArgs(f.bobId, caller.address);
      }
    });

    it("works while paused", async function () {
      const f = await loadFixture(chargedFixture);
      await f.payPerUse.pause();
      const tx = f.payPerUse.connect(f.bob).refund(1n, usd("0.25"));
      await expect(tx).to.emit(f.payPerUse, "ChargeRefunded").withArgs(1n, usd("0.25"), usd("0.75"));
      await expect(tx).to.changeTokenBalances(f.usdt, [f.bob, f.alice], [-usd("0.25"), usd("0.25")]);
    });

    it("credits a payer wallet that cannot receive the refund", async function () {
      const f = await loadFixture(blacklistFixture);
      await f.blk.setBlacklisted(f.bob.address, false);
      await f.payPerUse
        .connect(f.alice)
        .charge(f.aliceId, f.blkService, 2n, await serviceToken(f.payPerUse, f.blkService), usd(1), REQUEST);
      await f.blk.mint(f.bob.address, usd(1));
      await f.blk.connect(f.bob).approve(f.ppuAddr, ethers.MaxUint256);
      await f.blk.setBlacklisted(f.alice.address, true);
      const tx = f.payPerUse.connect(f.bob).refund(1n, usd("0.5"));
      await expect(tx).to.emit(f.payPerUse, "PaymentCredited").withArgs(f.blkAddr, f.alice.address, usd("0.5"));
      await expect(tx).to.changeTokenBalances(f.blk, [f.bob, f.alice, f.payPerUse], [-usd("0.5"), 0n, usd("0.5")]);
      expect(await f.payPerUse.creditOf(f.blkAddr, f.alice.address)).to.equal(usd("0.5"));
    });
  });

  // ------------------------------------------------------------------ syncReputation

  describe("syncReputation / pendingReputation", function () {
    const ZERO = { calls: 0n, amount: 0n, receipts: 0n };

    it("accumulates charges, signed charges and up-to payments of a pair: exact calls, amount and receipts", async function () {
      const f = await loadFixture(baseFixture);
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal(ZERO);
      const charged = aliceCharges(f);
      await expect(charged).not.to.emit(f.payPerUse, "ReputationSynced");
      await expect(charged).not.to.emit(f.reputation, "CallsRecorded");
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal({
        calls: 4n,
        amount: usd(1),
        receipts: 1n,
      });

      const auth = await chargeAuth(f, { units: 2n, nonce: 1n });
      const signed = f.payPerUse
        .connect(f.bob)
        .submitCharge(auth, await signCharge(f.payPerUse, f.alice, auth), FUNDING.Allowance, "0x");
      await expect(signed).not.to.emit(f.payPerUse, "ReputationSynced");
      await expect(signed).not.to.emit(f.reputation, "CallsRecorded");
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal({
        calls: 6n,
        amount: usd("1.5"),
        receipts: 2n,
      });

      const upTo = await upToAuth(f, { nonce: 2n });
      const settled = f.payPerUse
        .connect(f.bob)
        .settleUpTo(upTo, await signUpTo(f.payPerUse, f.alice, upTo), 3n, FUNDING.Allowance, "0x");
      await expect(settled).not.to.emit(f.payPerUse, "ReputationSynced");
      await expect(settled).not.to.emit(f.reputation, "CallsRecorded");
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal({
        calls: 9n,
        amount: usd("2.25"),
        receipts: 3n,
      });
      // One slot, at the end of PayPerUseStorage: amount, then calls, then receipts.
      expect(await pendingSlot(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal({
        amount: usd("2.25"),
        calls: 9n,
        receipts: 3n,
        rest: 0n,
      });

      // Nothing reached Reputation, and the reverse pair has nothing pending.
      const record = await f.reputation.getRecord(f.bobId);
      expect(record.callsServed).to.equal(0n);
      expect(record.settlementsServed).to.equal(0n);
      expect(record.lastActivity).to.equal(0n);
      expect(await f.reputation.getVolume(f.bobId, f.usdtAddr)).to.equal(0n);
      expect(await f.reputation.getVolume(f.aliceId, f.usdtAddr)).to.equal(0n);
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([0n, 0n]);
      expect(await pendingOf(f.payPerUse, f.bobId, f.aliceId, f.usdtAddr)).to.deep.equal(ZERO);
    });

    it("lets a stranger sync: calls, volume and settlements recorded, one right per receipt with the summed weight, pair cleared", async function () {
      const f = await loadFixture(baseFixture);
      await aliceCharges(f); // 4 units, 1 USDT
      await aliceCharges(f, 2n); // 0.5 USDT
      const upTo = await upToAuth(f, { nonce: 2n });
      await f.payPerUse
        .connect(f.bob)
        .settleUpTo(upTo, await signUpTo(f.payPerUse, f.alice, upTo), 3n, FUNDING.Allowance, "0x"); // 0.75 USDT

      const sync = f.payPerUse.connect(f.stranger).syncReputation(f.aliceId, f.bobId, f.usdtAddr);
      await expect(sync)
        .to.emit(f.payPerUse, "ReputationSynced")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, 9n, usd("2.25"), 3n);
      await expect(sync)
        .to.emit(f.reputation, "CallsRecorded")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, 9n, usd("2.25"), 3n, false);
      await expect(sync)
        .to.emit(f.reputation, "FeedbackRightGranted")
        .withArgs(f.bobId, f.alice.address, 3n, usd("2.25"));
      expect(await ppuAndReputationEvents(f, sync)).to.deep.equal([
        "ReputationSynced",
        "CallsRecorded",
        "FeedbackRightGranted",
      ]);
      await expect(sync).to.changeTokenBalances(f.usdt, [f.payPerUse, f.alice, f.bob, f.stranger], [0n, 0n, 0n, 0n]);
      const syncedAt = await minedAt(sync);

      const record = await f.reputation.getRecord(f.bobId);
      expect(record.callsServed).to.equal(9n);
      expect(record.settlementsServed).to.equal(3n);
      expect(record.lastActivity).to.equal(syncedAt);
      expect((await f.reputation.getRecord(f.aliceId)).lastActivity).to.equal(syncedAt);
      expect(await f.reputation.getVolume(f.bobId, f.usdtAddr)).to.equal(usd("2.25"));
      expect(await f.reputation.getVolume(f.aliceId, f.usdtAddr)).to.equal(usd("2.25"));
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([3n, usd("2.25")]);
      expect([...(await f.reputation.feedbackRights(f.bobId, f.stranger.address))]).to.deep.equal([0n, 0n]);
      expect([...(await f.reputation.feedbackRights(f.aliceId, f.bob.address))]).to.deep.equal([0n, 0n]);
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal(ZERO);
      expect(await pendingSlot(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal({
        amount: 0n,
        calls: 0n,
        receipts: 0n,
        rest: 0n,
      });
    });

    it("reverts with PayPerUseNothingToSync when nothing is pending; a new charge opens a new record", async function () {
      const f = await loadFixture(baseFixture);
      await expect(f.payPerUse.connect(f.stranger).syncReputation(f.aliceId, f.bobId, f.usdtAddr))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNothingToSync")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr);
      await aliceCharges(f);
      await f.payPerUse.connect(f.stranger).syncReputation(f.aliceId, f.bobId, f.usdtAddr);
      await expect(f.payPerUse.connect(f.stranger).syncReputation(f.aliceId, f.bobId, f.usdtAddr))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNothingToSync")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr);
      // The reverse pair, another token, another provider, unknown agents, the zero token.
      const empty: [bigint, bigint, string][] = [
        [f.bobId, f.aliceId, f.usdtAddr],
        [f.aliceId, f.bobId, f.usdgAddr],
        [f.aliceId, f.carolId, f.usdtAddr],
        [UNKNOWN, UNKNOWN + 1n, f.usdtAddr],
        [f.aliceId, f.bobId, ethers.ZeroAddress],
      ];
      for (const [payerId, providerId, token] of empty) {
        await expect(f.payPerUse.connect(f.alice).syncReputation(payerId, providerId, token))
          .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNothingToSync")
          .withArgs(payerId, providerId, token);
      }

      await aliceCharges(f, 1n);
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal({
        calls: 1n,
        amount: UNIT_PRICE,
        receipts: 1n,
      });
      await expect(f.payPerUse.connect(f.bob).syncReputation(f.aliceId, f.bobId, f.usdtAddr))
        .to.emit(f.payPerUse, "ReputationSynced")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, 1n, UNIT_PRICE, 1n);
      const record = await f.reputation.getRecord(f.bobId);
      expect(record.callsServed).to.equal(5n);
      expect(record.settlementsServed).to.equal(2n);
      expect(await f.reputation.getVolume(f.bobId, f.usdtAddr)).to.equal(usd("1.25"));
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([2n, usd("1.25")]);
    });

    it("keeps pairs and tokens independent", async function () {
      const f = await loadFixture(baseFixture);
      // Bob's service #3, in USDG at 2 per unit.
      await f.registry
        .connect(f.bob)
        .listService(f.bobId, ethers.id("search:usdg"), PAY_PER_USE, f.usdgAddr, usd(2), "https://bob.example/usdg");
      const bobUsdgService = 3n;
      await aliceCharges(f); // alice -> bob, USDT: 4 units, 1
      await f.payPerUse
        .connect(f.alice)
        .charge(f.aliceId, bobUsdgService, 1n, await serviceToken(f.payPerUse, bobUsdgService), usd(2), REQUEST); // alice -> bob, USDG
      await f.payPerUse
        .connect(f.alice)
        .charge(f.aliceId, f.carolService, 3n, await serviceToken(f.payPerUse, f.carolService), usd(3), REQUEST); // alice -> carol
      await f.payPerUse
        .connect(f.dave)
        .charge(f.daveId, f.bobService, 2n, await serviceToken(f.payPerUse, f.bobService), usd("0.5"), REQUEST); // dave -> bob
      await f.payPerUse
        .connect(f.bob)
        .charge(f.bobId, f.carolService, 5n, await serviceToken(f.payPerUse, f.carolService), usd(5), REQUEST); // bob -> carol
      const pairs = async () => ({
        aliceBobUsdt: await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr),
        aliceBobUsdg: await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdgAddr),
        aliceCarolUsdg: await pendingOf(f.payPerUse, f.aliceId, f.carolId, f.usdgAddr),
        daveBobUsdt: await pendingOf(f.payPerUse, f.daveId, f.bobId, f.usdtAddr),
        bobCarolUsdg: await pendingOf(f.payPerUse, f.bobId, f.carolId, f.usdgAddr),
        bobAliceUsdt: await pendingOf(f.payPerUse, f.bobId, f.aliceId, f.usdtAddr),
      });
      const expected = {
        aliceBobUsdt: { calls: 4n, amount: usd(1), receipts: 1n },
        aliceBobUsdg: { calls: 1n, amount: usd(2), receipts: 1n },
        aliceCarolUsdg: { calls: 3n, amount: usd(3), receipts: 1n },
        daveBobUsdt: { calls: 2n, amount: usd("0.5"), receipts: 1n },
        bobCarolUsdg: { calls: 5n, amount: usd(5), receipts: 1n },
        bobAliceUsdt: ZERO,
      };
      expect(await pairs()).to.deep.equal(expected);

      await expect(f.payPerUse.connect(f.stranger).syncReputation(f.aliceId, f.bobId, f.usdtAddr))
        .to.emit(f.reputation, "CallsRecorded")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, 4n, usd(1), 1n, false);
      expect(await pairs()).to.deep.equal({ ...expected, aliceBobUsdt: ZERO });
      let record = await f.reputation.getRecord(f.bobId);
      expect(record.callsServed).to.equal(4n);
      expect(record.settlementsServed).to.equal(1n);
      expect(await f.reputation.getVolume(f.bobId, f.usdtAddr)).to.equal(usd(1));
      expect(await f.reputation.getVolume(f.bobId, f.usdgAddr)).to.equal(0n);
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([1n, usd(1)]);
      expect([...(await f.reputation.feedbackRights(f.bobId, f.dave.address))]).to.deep.equal([0n, 0n]);
      expect((await f.reputation.getRecord(f.carolId)).callsServed).to.equal(0n);

      await expect(f.payPerUse.connect(f.stranger).syncReputation(f.aliceId, f.bobId, f.usdgAddr))
        .to.emit(f.payPerUse, "ReputationSynced")
        .withArgs(f.aliceId, f.bobId, f.usdgAddr, 1n, usd(2), 1n);
      expect(await pairs()).to.deep.equal({ ...expected, aliceBobUsdt: ZERO, aliceBobUsdg: ZERO });
      record = await f.reputation.getRecord(f.bobId);
      expect(record.callsServed).to.equal(5n);
      expect(record.settlementsServed).to.equal(2n);
      expect(await f.reputation.getVolume(f.bobId, f.usdtAddr)).to.equal(usd(1));
      expect(await f.reputation.getVolume(f.bobId, f.usdgAddr)).to.equal(usd(2));
      expect(await f.reputation.getVolume(f.aliceId, f.usdgAddr)).to.equal(usd(2));
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([2n, usd(3)]);

      await expect(f.payPerUse.connect(f.stranger).syncReputation(f.daveId, f.bobId, f.usdtAddr))
        .to.emit(f.reputation, "FeedbackRightGranted")
        .withArgs(f.bobId, f.dave.address, 1n, usd("0.5"));
      expect(await pairs()).to.deep.equal({
        ...expected,
        aliceBobUsdt: ZERO,
        aliceBobUsdg: ZERO,
        daveBobUsdt: ZERO,
      });
      expect([...(await f.reputation.feedbackRights(f.bobId, f.dave.address))]).to.deep.equal([1n, usd("0.5")]);
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([2n, usd(3)]);
      expect((await f.reputation.getRecord(f.carolId)).callsServed).to.equal(0n);
    });

    it("syncs a pair of agents of the same owner as self-dealing: no right, no record", async function () {
      const f = await loadFixture(baseFixture);
      await f.registry.connect(f.alice).getFunction("register(string)")("ipfs://alice-2");
      const alice2Id = 5n;
      await f.registry
        .connect(f.alice)
        .listService(alice2Id, CAPABILITY, PAY_PER_USE, f.usdtAddr, UNIT_PRICE, "https://alice.example/api");
      const service = await f.registry.serviceCount();
      const charged = f.payPerUse
        .connect(f.alice)
        .charge(f.aliceId, service, 4n, await serviceToken(f.payPerUse, service), usd(1), REQUEST);
      // Alice pays herself, less the fee.
      await expect(charged).to.changeTokenBalances(f.usdt, [f.alice, f.payPerUse], [-usd("0.01"), usd("0.01")]);
      await expect(charged).not.to.emit(f.reputation, "CallsRecorded");
      expect(await pendingOf(f.payPerUse, f.aliceId, alice2Id, f.usdtAddr)).to.deep.equal({
        calls: 4n,
        amount: usd(1),
        receipts: 1n,
      });

      const sync = f.payPerUse.connect(f.stranger).syncReputation(f.aliceId, alice2Id, f.usdtAddr);
      await expect(sync)
        .to.emit(f.payPerUse, "ReputationSynced")
        .withArgs(f.aliceId, alice2Id, f.usdtAddr, 4n, usd(1), 1n);
      await expect(sync)
        .to.emit(f.reputation, "CallsRecorded")
        .withArgs(f.aliceId, alice2Id, f.usdtAddr, 4n, usd(1), 1n, true);
      expect(await ppuAndReputationEvents(f, sync)).to.deep.equal(["ReputationSynced", "CallsRecorded"]);
      const record = await f.reputation.getRecord(alice2Id);
      expect(record.callsServed).to.equal(0n);
      expect(record.settlementsServed).to.equal(0n);
      expect(record.lastActivity).to.equal(0n);
      expect((await f.reputation.getRecord(f.aliceId)).lastActivity).to.equal(0n);
      expect(await f.reputation.getVolume(alice2Id, f.usdtAddr)).to.equal(0n);
      expect(await f.reputation.getVolume(f.aliceId, f.usdtAddr)).to.equal(0n);
      expect([...(await f.reputation.feedbackRights(alice2Id, f.alice.address))]).to.deep.equal([0n, 0n]);
      expect(await pendingOf(f.payPerUse, f.aliceId, alice2Id, f.usdtAddr)).to.deep.equal(ZERO);
      await expect(f.payPerUse.connect(f.stranger).syncReputation(f.aliceId, alice2Id, f.usdtAddr))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNothingToSync")
        .withArgs(f.aliceId, alice2Id, f.usdtAddr);
    });

    it("works while paused", async function () {
      const f = await loadFixture(chargedFixture);
      await f.payPerUse.pause();
      await expect(aliceCharges(f)).to.be.revertedWithCustomError(f.payPerUse, "EnforcedPause");
      const sync = f.payPerUse.connect(f.stranger).syncReputation(f.aliceId, f.bobId, f.usdtAddr);
      await expect(sync)
        .to.emit(f.payPerUse, "ReputationSynced")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, 4n, usd(1), 1n);
      await expect(sync)
        .to.emit(f.reputation, "CallsRecorded")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, 4n, usd(1), 1n, false);
      await expect(sync).to.emit(f.reputation, "FeedbackRightGranted").withArgs(f.bobId, f.alice.address, 1n, usd(1));
      expect(await f.payPerUse.paused()).to.equal(true);
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([1n, usd(1)]);
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal(ZERO);
    });

    it("flushes the record in the charge that would take its amount above uint96; the new record holds only that charge", async function () {
      const f = await loadFixture(baseFixture);
      // (2^32 - 1) x (2^64 + 2^32 + 1) = 2^96 - 1: 2^31 then 2^31 - 1 units fill the amount exactly.
      const price = 2n ** 64n + 2n ** 32n + 1n;
      const [u1, u2] = [2n ** 31n, 2n ** 31n - 1n];
      expect((u1 + u2) * price).to.equal(UINT96_MAX);
      await bobPrices(f, price);
      await f.usdt.mint(f.alice.address, 2n * UINT96_MAX);
      const pay = (units: bigint) =>
        f.payPerUse.connect(f.alice).charge(f.aliceId, f.bobService, units, f.usdt, units * price, REQUEST);
      for (const units of [u1, u2]) {
        const tx = pay(units);
        await expect(tx).not.to.emit(f.payPerUse, "ReputationSynced");
        await expect(tx).not.to.emit(f.reputation, "CallsRecorded");
      }
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal({
        calls: u1 + u2,
        amount: UINT96_MAX,
        receipts: 2n,
      });
      expect((await f.reputation.getRecord(f.bobId)).callsServed).to.equal(0n);

      // One more unit would overflow: the charge records the full record first.
      const third = pay(1n);
      await expect(third)
        .to.emit(f.payPerUse, "Charged")
        .withArgs(3n, f.aliceId, f.bobId, f.bobService, f.usdtAddr, 1n, price, feeOf(price), REQUEST, f.alice.address);
      await expect(third)
        .to.emit(f.payPerUse, "ReputationSynced")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, u1 + u2, UINT96_MAX, 2n);
      await expect(third)
        .to.emit(f.reputation, "CallsRecorded")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, u1 + u2, UINT96_MAX, 2n, false);
      await expect(third)
        .to.emit(f.reputation, "FeedbackRightGranted")
        .withArgs(f.bobId, f.alice.address, 2n, UINT96_MAX);
      expect(await ppuAndReputationEvents(f, third)).to.deep.equal([
        "Charged",
        "ReputationSynced",
        "CallsRecorded",
        "FeedbackRightGranted",
      ]);
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal({
        calls: 1n,
        amount: price,
        receipts: 1n,
      });
      let record = await f.reputation.getRecord(f.bobId);
      expect(record.callsServed).to.equal(u1 + u2);
      expect(record.settlementsServed).to.equal(2n);
      expect(await f.reputation.getVolume(f.bobId, f.usdtAddr)).to.equal(UINT96_MAX);
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([2n, UINT96_MAX]);

      // The new record syncs on its own.
      await expect(f.payPerUse.connect(f.stranger).syncReputation(f.aliceId, f.bobId, f.usdtAddr))
        .to.emit(f.reputation, "CallsRecorded")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, 1n, price, 1n, false);
      record = await f.reputation.getRecord(f.bobId);
      expect(record.callsServed).to.equal(u1 + u2 + 1n);
      expect(record.settlementsServed).to.equal(3n);
      expect(await f.reputation.getVolume(f.bobId, f.usdtAddr)).to.equal(UINT96_MAX + price);
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([
        3n,
        UINT96_MAX + price,
      ]);
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal(ZERO);
    });

    it("flushes the record in the charge that would take its calls above uint64", async function () {
      const f = await loadFixture(baseFixture);
      await bobPrices(f, 1n);
      await f.usdt.mint(f.alice.address, 2n ** 65n);
      // 2^63 then 2^63 - 1 units at price 1 fill the calls (and the amount) to 2^64 - 1 exactly.
      const [u1, u2] = [2n ** 63n, 2n ** 63n - 1n];
      const pay = (units: bigint) =>
        f.payPerUse.connect(f.alice).charge(f.aliceId, f.bobService, units, f.usdt, units, REQUEST);
      for (const units of [u1, u2]) {
        const tx = pay(units);
        await expect(tx).not.to.emit(f.payPerUse, "ReputationSynced");
        await expect(tx).not.to.emit(f.reputation, "CallsRecorded");
      }
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal({
        calls: UINT64_MAX,
        amount: UINT64_MAX,
        receipts: 2n,
      });

      const third = pay(1n);
      await expect(third)
        .to.emit(f.payPerUse, "ReputationSynced")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, UINT64_MAX, UINT64_MAX, 2n);
      await expect(third)
        .to.emit(f.reputation, "CallsRecorded")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, UINT64_MAX, UINT64_MAX, 2n, false);
      await expect(third)
        .to.emit(f.reputation, "FeedbackRightGranted")
        .withArgs(f.bobId, f.alice.address, 2n, UINT64_MAX);
      await expect(third)
        .to.emit(f.payPerUse, "Charged")
        .withArgs(3n, f.aliceId, f.bobId, f.bobService, f.usdtAddr, 1n, 1n, 0n, REQUEST, f.alice.address);
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal({
        calls: 1n,
        amount: 1n,
        receipts: 1n,
      });
      const record = await f.reputation.getRecord(f.bobId);
      expect(record.callsServed).to.equal(UINT64_MAX);
      expect(record.settlementsServed).to.equal(2n);
      expect(await f.reputation.getVolume(f.bobId, f.usdtAddr)).to.equal(UINT64_MAX);
    });

    it("is not changed by refunds: the sync records what was paid", async function () {
      const f = await loadFixture(chargedFixture);
      await aliceCharges(f, 2n); // receipt #2: 0.5 USDT
      const paid = { calls: 6n, amount: usd("1.5"), receipts: 2n };
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal(paid);
      const partial = f.payPerUse.connect(f.bob).refund(1n, usd("0.4"));
      await expect(partial).to.emit(f.payPerUse, "ChargeRefunded").withArgs(1n, usd("0.4"), usd("0.6"));
      await expect(partial).not.to.emit(f.payPerUse, "ReputationSynced");
      await expect(partial).not.to.emit(f.reputation, "CallsRecorded");
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal(paid);
      await f.payPerUse.connect(f.bob).refund(2n, usd("0.5"));
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal(paid);

      await expect(f.payPerUse.connect(f.stranger).syncReputation(f.aliceId, f.bobId, f.usdtAddr))
        .to.emit(f.payPerUse, "ReputationSynced")
        .withArgs(f.aliceId, f.bobId, f.usdtAddr, 6n, usd("1.5"), 2n);
      // A refund after the sync changes neither the pending record nor Reputation.
      await f.payPerUse.connect(f.bob).refund(1n, usd("0.6"));
      expect(await pendingOf(f.payPerUse, f.aliceId, f.bobId, f.usdtAddr)).to.deep.equal(ZERO);
      expect(await f.reputation.getVolume(f.bobId, f.usdtAddr)).to.equal(usd("1.5"));
      expect((await f.reputation.getRecord(f.bobId)).callsServed).to.equal(6n);
      expect([...(await f.reputation.feedbackRights(f.bobId, f.alice.address))]).to.deep.equal([2n, usd("1.5")]);
    });
  });

  // ------------------------------------------------------------------ money

  describe("credits and withdraw", function () {
    it("credits a provider that cannot receive (PaymentCredited) and keeps the money in the contract", async function () {
      const f = await loadFixture(blacklistFixture);
      const total = 4n * f.blkPrice;
      const fee = feeOf(total);
      const tx = f.payPerUse
        .connect(f.alice)
        .charge(f.aliceId, f.blkService, 4n, await serviceToken(f.payPerUse, f.blkService), total, REQUEST);
      await expect(tx)
        .to.emit(f.payPerUse, "PaymentCredited")
        .withArgs(f.blkAddr, f.bob.address, total - fee);
      await expect(tx)
        .to.emit(f.payPerUse, "Charged")
        .withArgs(1n, f.aliceId, f.bobId, f.blkService, f.blkAddr, 4n, total, fee, REQUEST, f.alice.address);
      await expect(tx).to.changeTokenBalances(f.blk, [f.alice, f.bob, f.payPerUse], [-total, 0n, total]);
      expect(await f.payPerUse.creditOf(f.blkAddr, f.bob.address)).to.equal(usd("1.98"));
      expect(await f.payPerUse.accruedFees(f.blkAddr)).to.equal(usd("0.02"));
      // A second payment adds to the credit.
      await f.payPerUse
        .connect(f.alice)
        .charge(f.aliceId, f.blkService, 2n, await serviceToken(f.payPerUse, f.blkService), usd(1), REQUEST);
      expect(await f.payPerUse.creditOf(f.blkAddr, f.bob.address)).to.equal(usd("2.97"));
      expect(await f.blk.balanceOf(f.ppuAddr)).to.equal(usd(3));
    });

    it("lets the provider withdraw its credit to another address (CreditWithdrawn), once", async function () {
      const f = await loadFixture(blacklistFixture);
      await f.payPerUse
        .connect(f.alice)
        .charge(f.aliceId, f.blkService, 4n, await serviceToken(f.payPerUse, f.blkService), usd(2), REQUEST);
      const tx = f.payPerUse.connect(f.bob).withdraw(f.blkAddr, f.carol.address);
      await expect(tx)
        .to.emit(f.payPerUse, "CreditWithdrawn")
        .withArgs(f.blkAddr, f.bob.address, f.carol.address, usd("1.98"));
      await expect(tx).to.changeTokenBalances(f.blk, [f.payPerUse, f.carol, f.bob], [-usd("1.98"), usd("1.98"), 0n]);
      expect(await f.payPerUse.creditOf(f.blkAddr, f.bob.address)).to.equal(0n);
      expect(await f.blk.balanceOf(f.ppuAddr)).to.equal(await f.payPerUse.accruedFees(f.blkAddr));
      await expect(f.payPerUse.connect(f.bob).withdraw(f.blkAddr, f.carol.address))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNothingToWithdraw")
        .withArgs(f.blkAddr, f.bob.address);
    });

    it("keeps the credit when the withdrawal itself fails, and works while paused", async function () {
      const f = await loadFixture(blacklistFixture);
      await f.payPerUse
        .connect(f.alice)
        .charge(f.aliceId, f.blkService, 4n, await serviceToken(f.payPerUse, f.blkService), usd(2), REQUEST);
      await expect(f.payPerUse.connect(f.bob).withdraw(f.blkAddr, f.bob.address))
        .to.be.revertedWithCustomError(f.blk, "MockBlacklistTokenBlacklisted")
        .withArgs(f.bob.address);
      expect(await f.payPerUse.creditOf(f.blkAddr, f.bob.address)).to.equal(usd("1.98"));
      await f.payPerUse.pause();
      await expect(f.payPerUse.connect(f.bob).withdraw(f.blkAddr, f.dave.address)).to.changeTokenBalances(
        f.blk,
        [f.payPerUse, f.dave],
        [-usd("1.98"), usd("1.98")],
      );
    });

    it("keeps withdrawals and fee sweeps working after the token is disallowed", async function () {
      const f = await loadFixture(blacklistFixture);
      await f.payPerUse
        .connect(f.alice)
        .charge(f.aliceId, f.blkService, 4n, await serviceToken(f.payPerUse, f.blkService), usd(2), REQUEST);
      await f.payPerUse.setToken(f.blkAddr, false);
      await expect(f.payPerUse.connect(f.bob).withdraw(f.blkAddr, f.carol.address))
        .to.emit(f.payPerUse, "CreditWithdrawn")
        .withArgs(f.blkAddr, f.bob.address, f.carol.address, usd("1.98"));
      await expect(f.payPerUse.sweepFees(f.blkAddr))
        .to.emit(f.payPerUse, "FeesSwept")
        .withArgs(f.blkAddr, f.treasury.address, usd("0.02"));
      expect(await f.blk.balanceOf(f.ppuAddr)).to.equal(0n);
    });

    it("reverts with PayPerUseNothingToWithdraw without a credit", async function () {
      const f = await loadFixture(chargedFixture);
      await expect(f.payPerUse.connect(f.bob).withdraw(f.usdtAddr, f.bob.address))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNothingToWithdraw")
        .withArgs(f.usdtAddr, f.bob.address);
    });

    it("reverts with ProtocolZeroAddress when withdrawing to the zero address", async function () {
      const f = await loadFixture(blacklistFixture);
      await f.payPerUse
        .connect(f.alice)
        .charge(f.aliceId, f.blkService, 4n, await serviceToken(f.payPerUse, f.blkService), usd(2), REQUEST);
      await expect(f.payPerUse.connect(f.bob).withdraw(f.blkAddr, ethers.ZeroAddress)).to.be.revertedWithCustomError(
        f.payPerUse,
        "ProtocolZeroAddress",
      );
      expect(await f.payPerUse.creditOf(f.blkAddr, f.bob.address)).to.equal(usd("1.98"));
    });
  });

  describe("sweepFees", function () {
    it("sends exactly the accrued fees to the treasury (FeesSwept), per token, callable by anyone", async function () {
      const f = await loadFixture(chargedFixture);
      await aliceCharges(f, 3n);
      await f.payPerUse
        .connect(f.alice)
        .charge(f.aliceId, f.carolService, 1n, await serviceToken(f.payPerUse, f.carolService), usd(1), REQUEST);
      const fees = usd("0.01") + usd("0.0075");
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(fees);
      const tx = f.payPerUse.connect(f.stranger).sweepFees(f.usdtAddr);
      await expect(tx).to.emit(f.payPerUse, "FeesSwept").withArgs(f.usdtAddr, f.treasury.address, fees);
      await expect(tx).to.changeTokenBalances(f.usdt, [f.payPerUse, f.treasury, f.stranger], [-fees, fees, 0n]);
      expect(await f.payPerUse.accruedFees(f.usdtAddr)).to.equal(0n);
      expect(await f.usdt.balanceOf(f.ppuAddr)).to.equal(0n);
      expect(await f.payPerUse.accruedFees(f.usdgAddr)).to.equal(usd("0.01"));
      await expect(f.payPerUse.sweepFees(f.usdtAddr))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNothingToWithdraw")
        .withArgs(f.usdtAddr, f.treasury.address);
    });

    it("sweeps only the fees, never the credits, and works while paused", async function () {
      const f = await loadFixture(blacklistFixture);
      await f.payPerUse
        .connect(f.alice)
        .charge(f.aliceId, f.blkService, 4n, await serviceToken(f.payPerUse, f.blkService), usd(2), REQUEST);
      await f.payPerUse.pause();
      await expect(f.payPerUse.sweepFees(f.blkAddr)).to.changeTokenBalances(
        f.blk,
        [f.payPerUse, f.treasury],
        [-usd("0.02"), usd("0.02")],
      );
      expect(await f.blk.balanceOf(f.ppuAddr)).to.equal(usd("1.98"));
      expect(await f.payPerUse.creditOf(f.blkAddr, f.bob.address)).to.equal(usd("1.98"));
    });

    it("reverts with PayPerUseNothingToWithdraw for a token without fees", async function () {
      const f = await loadFixture(baseFixture);
      const okbAddr = await f.okb.getAddress();
      await expect(f.payPerUse.sweepFees(okbAddr))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseNothingToWithdraw")
        .withArgs(okbAddr, f.treasury.address);
    });
  });

  // ------------------------------------------------------------------ views

  describe("views", function () {
    it("quote returns the total, the fee of the moment, the token and the provider", async function () {
      const f = await loadFixture(baseFixture);
      expect([...(await f.payPerUse.quote(f.bobService, 4n))]).to.deep.equal([
        usd(1),
        usd("0.01"),
        f.usdtAddr,
        f.bobId,
      ]);
      expect([...(await f.payPerUse.quote(f.carolService, 3n))]).to.deep.equal([
        usd(3),
        usd("0.03"),
        f.usdgAddr,
        f.carolId,
      ]);
      await f.payPerUse.setFee(333);
      expect([...(await f.payPerUse.quote(f.bobService, 1n))]).to.deep.equal([
        UNIT_PRICE,
        feeOf(UNIT_PRICE, 333n),
        f.usdtAddr,
        f.bobId,
      ]);
    });

    it("quote reverts like a charge for zero units, an unavailable, unknown or disallowed service", async function () {
      const f = await loadFixture(baseFixture);
      await expect(f.payPerUse.quote(f.bobService, 0n))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseBadAmount")
        .withArgs(0n);
      await expect(f.payPerUse.quote(UNKNOWN, 1n))
        .to.be.revertedWithCustomError(f.registry, "AgentRegistryUnknownService")
        .withArgs(UNKNOWN);
      await f.payPerUse.setToken(f.usdgAddr, false);
      await expect(f.payPerUse.quote(f.carolService, 1n))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseTokenNotAllowed")
        .withArgs(f.usdgAddr);
      await f.registry.connect(f.bob).setAgentPaused(f.bobId, true);
      await expect(f.payPerUse.quote(f.bobService, 1n))
        .to.be.revertedWithCustomError(f.payPerUse, "PayPerUseServiceUnavailable")
        .withArgs(f.bobService);
    });

    it("chargeDigest, upToDigest and domainSeparator match ethers' EIP-712 hashing of the fixture domain", async function () {
      const f = await loadFixture(baseFixture);
      const domain = await ppuDomain(f.payPerUse);
      expect(await f.payPerUse.domainSeparator()).to.equal(ethers.TypedDataEncoder.hashDomain(domain));
      const charge = await chargeAuth(f, { nonce: 12345n, validAfter: 7n });
      expect(await f.payPerUse.chargeDigest(charge)).to.equal(
        ethers.TypedDataEncoder.hash(domain, CHARGE_TYPES, charge),
      );
      const upTo = await upToAuth(f, { nonce: 2n ** 200n });
      expect(await f.payPerUse.upToDigest(upTo)).to.equal(ethers.TypedDataEncoder.hash(domain, UP_TO_TYPES, upTo));
      // The digest is what the payer's EOA signature recovers to.
      const sig = await signCharge(f.payPerUse, f.alice, charge);
      expect(ethers.recoverAddress(await f.payPerUse.chargeDigest(charge), sig)).to.equal(f.alice.address);
    });

    it("binds the domain separator to the proxy address", async function () {
      const f = await loadFixture(baseFixture);
      const proxy = await deployProxy(f, await initData(f));
      const fresh = PayPerUse__factory.connect(await proxy.getAddress(), f.admin);
      expect(await fresh.domainSeparator()).to.equal(ethers.TypedDataEncoder.hashDomain(await ppuDomain(fresh)));
      expect(await fresh.domainSeparator()).to.not.equal(await f.payPerUse.domainSeparator());
    });

    it("getReceipt is all zero for an unknown receipt; receiptCount counts every charge kind", async function () {
      const f = await loadFixture(baseFixture);
      expect(await receiptOf(f.payPerUse, 1n)).to.deep.equal({
        payerId: 0n,
        providerId: 0n,
        refundable: 0n,
        token: ethers.ZeroAddress,
      });
      await aliceCharges(f);
      const charge = await chargeAuth(f, { nonce: 1n });
      await f.payPerUse
        .connect(f.bob)
        .submitCharge(charge, await signCharge(f.payPerUse, f.alice, charge), FUNDING.Allowance, "0x");
      const upTo = await upToAuth(f, { nonce: 2n });
      await f.payPerUse
        .connect(f.bob)
        .settleUpTo(upTo, await signUpTo(f.payPerUse, f.alice, upTo), 1n, FUNDING.Allowance, "0x");
      expect(await f.payPerUse.receiptCount()).to.equal(3n);
      expect((await f.payPerUse.getReceipt(3n)).refundable).to.equal(UNIT_PRICE);
      expect(await receiptOf(f.payPerUse, 4n)).to.deep.equal({
        payerId: 0n,
        providerId: 0n,
        refundable: 0n,
        token: ethers.ZeroAddress,
      });
    });

    it("holds exactly the unswept fees plus the credits", async function () {
      const f = await loadFixture(blacklistFixture);
      await f.payPerUse
        .connect(f.alice)
        .charge(f.aliceId, f.blkService, 4n, await serviceToken(f.payPerUse, f.blkService), usd(2), REQUEST);
      await aliceCharges(f);
      await f.payPerUse.connect(f.bob).refund(2n, usd("0.5"));
      expect(await f.usdt.balanceOf(f.ppuAddr)).to.equal(await f.payPerUse.accruedFees(f.usdtAddr));
      expect(await f.blk.balanceOf(f.ppuAddr)).to.equal(
        (await f.payPerUse.accruedFees(f.blkAddr)) + (await f.payPerUse.creditOf(f.blkAddr, f.bob.address)),
      );
    });
  });
});
