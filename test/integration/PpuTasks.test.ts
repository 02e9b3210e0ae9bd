import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import hre from "hardhat";
import { ErrorFragment, Interface, id as keccakId } from "ethers";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { type Context, getContext, toJson } from "../../tasks/lib/context";
import { signVouchers } from "../../tasks/ppu";
import { SENTENCES, errorInterface, explain } from "../../tasks/lib/errors";
import { MockStablecoin__factory } from "../../typechain-types";
import { capture, run, json, failure } from "../fixtures/tasks";

const { ethers } = hre;

const usdt = (n: string) => ethers.parseUnits(n, 6);

describe("PayPerUse tasks (ppu:* CLI) @cli", function () {
  let ctx: Context;
  let signers: Awaited<ReturnType<typeof ethers.getSigners>>;
  let tmp: string;
  // Re-registered for every test: alice (account 1) pays, bob (account 2) sells service `service`
  // at 0.25 USDT a unit; account 4 is a facilitator; account 5 a stranger.
  let alice: bigint;
  let bob: bigint;
  let service: bigint;

  const token = () => MockStablecoin__factory.connect(ctx.addresses.tokens.USDT!, signers[0]);
  const balance = (i: number) => token().balanceOf(signers[i].address);

  async function newAgent(from: string): Promise<bigint> {
    return (await run<{ agentId: bigint }>("agent:register", { uri: "ipfs://agent.json", from })).agentId;
  }

  /** A session alice opens with bob: 10 USDT for a day, vouchers signed by alice's owner. */
  async function openSession(over: Record<string, unknown> = {}): Promise<bigint> {
    const args = { payerId: alice, providerId: bob, deposit: "10", expiresIn: "1d", from: "1", ...over };
    return (await run<{ sessionId: bigint }>("ppu:session:open", args)).sessionId;
  }

  /** The JSON ppu:voucher prints, as text. */
  async function voucher(session: bigint, amount: string, calls: number, from = "1"): Promise<string> {
    return (await capture(() => hre.run("ppu:voucher", { session, amount, calls: BigInt(calls), from }))).out;
  }

  before(async function () {
    signers = await ethers.getSigners();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ppu-tasks-"));
  });

  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  beforeEach(async function () {
    // Other suites revert snapshots: reconnect to whatever deployment the tasks use now.
    ctx = await getContext(hre);
    alice = await newAgent("1");
    bob = await newAgent("2");
    service = (
      await run<{ service: bigint }>("agent:service", {
        action: "list",
        id: bob,
        capability: "search:web",
        mode: "ppu",
        token: "USDT",
        unitPrice: "0.25",
        endpoint: "https://bob.example/api",
        from: "2",
      })
    ).service;
    for (const i of [1, 2, 3]) await token().mint(signers[i].address, usdt("1000"));
    // Start without an allowance: the tasks approve what they need.
    for (const i of [1, 2, 3]) await token().connect(signers[i]).approve(ctx.addresses.payPerUse, 0n);
  });

  describe("plumbing", function () {
    it("errors.ts has a sentence for every error declared in IPayPerUse, with its arguments formatted", async function () {
      const { abi } = await hre.artifacts.readArtifact("IPayPerUse");
      const errors = new Interface(abi).fragments.filter((f): f is ErrorFragment => f.type === "error");
      expect(errors.length).to.be.greaterThan(20);
      expect(errors.filter((e) => !SENTENCES[e.name]).map((e) => e.name)).to.deep.equal([]);

      const iface = errorInterface();
      const usdtAddress = ctx.addresses.tokens.USDT!;
      const words = { decimals: 6, symbol: "USDT", tokens: { [usdtAddress]: { symbol: "USDT", decimals: 6 } } };
      const say = (name: string, args: unknown[]) => explain({ data: iface.encodeErrorResult(name, args) }, words);
      for (const e of errors) {
        const sentence = say(
          e.name,
          e.inputs.map((p) => (p.type === "address" ? usdtAddress : 7n)),
        );
        expect(sentence, e.name).to.not.match(/undefined|NaN|Refused by the contract|unknown error/);
      }
      expect(say("PayPerUseAboveMax", [usdt("2.5"), usdt("1")])).to.equal(
        "Refused: the price is 2.50 USDT, above the 1.00 USDT the payer accepts (the price rose, or the maximum is too low).",
      );
      expect(say("PayPerUseBadAmount", [0n])).to.equal("Refused: an amount, or a number of units, of zero.");
      expect(say("PayPerUseTokenNotAllowed", [usdtAddress])).to.match(/^Refused: USDT is not a payment token/);
      expect(say("PayPerUseSessionNotEnded", [3n, 1_900_000_000n])).to.equal(
        "Refused: session #3 runs until 2030-03-17T17:46:40Z; it can be settled only after that (a close request brings the end forward).",
      );
      expect(say("PayPerUseBadBatch", [300n])).to.match(/a batch of 300 vouchers; one transaction redeems 1 to 256/);
      expect(say("PayPerUseTransferMismatch", [usdtAddress, usdt("10"), usdt("9.9")])).to.match(
        /received 9\.90 USDT instead of 10\.00 USDT/,
      );
      expect(say("PayPerUseNothingToSync", [2n, 1n, usdtAddress])).to.equal(
        "Refused: agent #2 has no charges with agent #1 in USDT waiting for Reputation: there is nothing to sync (they were recorded already, or there were none).",
      );
    });
  });

  describe("charges", function () {
    it("ppu:pay approves PayPerUse, pays the quote and issues a receipt (--json)", async function () {
      const [aliceBefore, bobBefore] = [await balance(1), await balance(2)];
      const feesBefore = await ctx.payPerUse.accruedFees(ctx.addresses.tokens.USDT!);
      const served = (await ctx.reputation.getRecord(bob)).callsServed;
      const data = await json("ppu:pay", { payerId: alice, service, units: 8n, ref: "request-1", from: "1" });
      // The charge waits for Reputation in its pair's counters (ppu:sync records it).
      expect(data.pending).to.deep.equal({
        calls: "8",
        amount: usdt("2").toString(),
        amountText: "2.00 USDT",
        receipts: "1",
      });
      expect(data).to.include({
        payerId: alice.toString(),
        providerId: bob.toString(),
        serviceId: service.toString(),
        units: "8",
        token: "USDT",
        total: usdt("2").toString(),
        totalText: "2.00 USDT",
        fee: usdt("0.02").toString(),
        toProviderText: "1.98 USDT",
        requestRef: keccakId("request-1"),
        payer: signers[1].address,
        credited: false,
        approved: true,
      });
      const receiptId = BigInt(data.receiptId);
      expect(await ctx.payPerUse.receiptCount()).to.equal(receiptId);
      const r = await ctx.payPerUse.getReceipt(receiptId);
      expect([r.payerId, r.providerId, r.refundable, r.token]).to.deep.equal([
        alice,
        bob,
        usdt("2"),
        ctx.addresses.tokens.USDT,
      ]);
      expect(await balance(1)).to.equal(aliceBefore - usdt("2"));
      expect(await balance(2)).to.equal(bobBefore + usdt("1.98"));
      expect(await ctx.payPerUse.accruedFees(ctx.addresses.tokens.USDT!)).to.equal(feesBefore + usdt("0.02"));
      expect((await ctx.reputation.getRecord(bob)).callsServed).to.equal(served);
      expect(await ctx.payPerUse.pendingReputation(alice, bob, ctx.addresses.tokens.USDT!)).to.deep.equal([
        8n,
        usdt("2"),
        1n,
      ]);
      // Exactly the quote was approved: the next charge approves again.
      expect(await token().allowance(signers[1].address, ctx.addresses.payPerUse)).to.equal(0n);

      const { out } = await capture(() => hre.run("ppu:pay", { payerId: alice, service, units: 4n, from: "1" }));
      expect(out).to.contain("Approved PayPerUse to take 1.00 USDT");
      expect(out).to.match(
        new RegExp(
          `Paid 1\\.00 USDT for 4 unit\\(s\\) of service #${service} \\(agent #${bob}\\) for agent #${alice}: `,
        ),
      );
      expect(out).to.contain("0.99 USDT to the provider, 0.01 USDT protocol fee. Receipt #");
      expect(out).to.contain(
        `Not in Reputation yet: agent #${alice}'s charges with agent #${bob} in USDT wait to be recorded ` +
          `(now 2 charge(s), 12 unit(s), 3.00 USDT); anyone records them with ppu:sync.`,
      );
    });

    it("ppu:pay refuses a price above --max-total, and an unavailable service, in plain words", async function () {
      expect(await failure("ppu:pay", { payerId: alice, service, units: 10n, maxTotal: "2", from: "1" })).to.equal(
        "Refused: the price is 2.50 USDT, above the 2.00 USDT the payer accepts (the price rose, or the maximum is too low).",
      );
      await run("agent:service", { action: "update", service, active: false, from: "2" });
      expect(await failure("ppu:pay", { payerId: alice, service, units: 1n, from: "1" })).to.equal(
        `Refused: service #${service} cannot be paid now: it is inactive, is not a pay-per-use service, or its agent is paused.`,
      );
      expect(await failure("ppu:pay", { payerId: alice, service, units: 1n, from: "5" })).to.match(
        /^Refused: service #\d+ cannot be paid now/,
      );
    });

    it("ppu:pay by an account that may not spend for the agent is refused by the registry", async function () {
      expect(await failure("ppu:pay", { payerId: alice, service, units: 1n, from: "3" })).to.match(
        new RegExp(`^Refused: ${signers[3].address} may not spend for agent #${alice}`),
      );
    });

    it("ppu:refund refunds part of a receipt to the payer's wallet, and not more than is left", async function () {
      const { receiptId } = await run<{ receiptId: bigint }>("ppu:pay", {
        payerId: alice,
        service,
        units: 40n,
        from: "1",
      });
      const aliceBefore = await balance(1);
      const data = await json("ppu:refund", { receipt: receiptId, amount: "4", from: "2" });
      expect(data).to.include({
        refundedText: "4.00 USDT",
        refundable: usdt("6").toString(),
        refundableText: "6.00 USDT",
        to: signers[1].address,
        approved: true,
      });
      expect(await balance(1)).to.equal(aliceBefore + usdt("4"));
      expect((await ctx.payPerUse.getReceipt(receiptId)).refundable).to.equal(usdt("6"));
      expect(await failure("ppu:refund", { receipt: receiptId, amount: "7", from: "2" })).to.equal(
        `Refused: a refund of 7.00 USDT is more than the 6.00 USDT left to refund on receipt #${receiptId}.`,
      );
      expect(await failure("ppu:refund", { receipt: receiptId, amount: "1", from: "1" })).to.equal(
        `Refused: ${signers[1].address} may not act for agent #${bob}: it is neither the agent's owner, its wallet nor an active operator.`,
      );
      expect(await failure("ppu:refund", { receipt: 999_999n, amount: "1", from: "2" })).to.equal(
        "Receipt #999999 does not exist.",
      );
    });
  });

  describe("signed charges", function () {
    it("ppu:sign-charge prints a signed charge; ppu:submit-charge has a facilitator pay the gas; a replay is refused", async function () {
      await token().connect(signers[1]).approve(ctx.addresses.payPerUse, ethers.MaxUint256);
      const { out } = await capture(() =>
        hre.run("ppu:sign-charge", { payerId: alice, service, units: 12n, ref: "req-42", validFor: "600", from: "1" }),
      );
      const signed = JSON.parse(out);
      const now = BigInt(await time.latest());
      expect(signed.authorization).to.include({
        payerId: alice.toString(),
        payer: signers[1].address,
        serviceId: service.toString(),
        units: "12",
        amount: usdt("3").toString(),
        requestRef: keccakId("req-42"),
        validAfter: "0",
      });
      expect(BigInt(signed.authorization.validBefore)).to.be.closeTo(now + 600n, 2n);
      expect(BigInt(signed.authorization.nonce)).to.be.lessThan(1n << 64n);
      expect(signed).to.include({ funding: "allowance", fundingData: "0x", amountText: "3.00 USDT" });
      expect(signed.note).to.equal(undefined);
      expect(signed.verifyingContract).to.equal(ctx.addresses.payPerUse);

      const [aliceBefore, bobBefore] = [await balance(1), await balance(2)];
      const aliceEth = await ethers.provider.getBalance(signers[1].address);
      const facilitatorEth = await ethers.provider.getBalance(signers[4].address);
      const data = await json("ppu:submit-charge", { auth: out, from: "4" });
      expect(data).to.include({
        payer: signers[1].address,
        submitter: signers[4].address,
        totalText: "3.00 USDT",
        toProviderText: "2.97 USDT",
        funding: "allowance",
        nonce: signed.authorization.nonce,
      });
      expect(await balance(1)).to.equal(aliceBefore - usdt("3"));
      expect(await balance(2)).to.equal(bobBefore + usdt("2.97"));
      expect(await ethers.provider.getBalance(signers[1].address)).to.equal(aliceEth);
      expect(await ethers.provider.getBalance(signers[4].address)).to.equal(facilitatorEth - BigInt(data.gasCost));
      expect(await ctx.payPerUse.nonceUsed(signers[1].address, BigInt(signed.authorization.nonce))).to.equal(true);

      const file = path.join(tmp, "charge.json");
      fs.writeFileSync(file, out);
      expect(await failure("ppu:submit-charge", { file, from: "4" })).to.equal(
        `Refused: nonce ${signed.authorization.nonce} of ${signers[1].address} was already used or cancelled; the payer must sign a new authorisation.`,
      );
    });

    it("--funding permit and --funding 3009 pay without a prior allowance; the plain allowance mode notes its absence", async function () {
      const noted = JSON.parse(
        (await capture(() => hre.run("ppu:sign-charge", { payerId: alice, service, units: 1n, from: "1" }))).out,
      );
      expect(noted.note).to.match(/has not approved PayPerUse for 0\.25 USDT/);

      for (const funding of ["permit", "3009"]) {
        const { out } = await capture(() =>
          hre.run("ppu:sign-charge", { payerId: alice, service, units: 20n, funding, from: "1" }),
        );
        const signed = JSON.parse(out);
        expect(signed.funding).to.equal(funding);
        expect(signed.fundingData).to.have.length(2 + (funding === "permit" ? 5 : 6) * 64);
        const before = await balance(1);
        const file = path.join(tmp, `charge-${funding}.json`);
        fs.writeFileSync(file, out);
        const data = await run<{ total: bigint; funding: string }>("ppu:submit-charge", { file, from: "4" });
        expect([data.total, data.funding]).to.deep.equal([usdt("5"), funding]);
        expect(await balance(1)).to.equal(before - usdt("5"));
        // The permit is used up by the charge; EIP-3009 never needed an allowance.
        expect(await token().allowance(signers[1].address, ctx.addresses.payPerUse)).to.equal(0n);
      }
    });

    it("ppu:sign-charge refuses a signer that may not spend for the agent; a price change voids the signature", async function () {
      expect(await failure("ppu:sign-charge", { payerId: alice, service, units: 1n, from: "3" })).to.equal(
        `${signers[3].address} may not spend for agent #${alice} (it is neither its owner, its wallet nor an active operator), so its signed charge would be refused.`,
      );
      expect(
        await failure("ppu:sign-charge", { payerId: alice, service, units: 1n, funding: "cash", from: "1" }),
      ).to.equal('Unknown funding "cash": use permit or 3009.');
      await token().connect(signers[1]).approve(ctx.addresses.payPerUse, ethers.MaxUint256);
      const { out } = await capture(() =>
        hre.run("ppu:sign-charge", { payerId: alice, service, units: 4n, from: "1" }),
      );
      await run("agent:service", { action: "update", service, price: "0.30", from: "2" });
      expect(await failure("ppu:submit-charge", { auth: out, from: "4" })).to.equal(
        "Refused: the charge was signed for 1.00 USDT but its units cost 1.20 USDT now (the price changed); sign a new charge.",
      );
      expect(await failure("ppu:submit-charge", { auth: "{not json", from: "4" })).to.match(/not valid JSON/);
      expect(await failure("ppu:submit-charge", { from: "4" })).to.match(/^Give --auth '<json>' or --file <path>/);
    });
  });

  describe("sessions", function () {
    it("ppu:session:open deposits; ppu:voucher signs; ppu:redeem one voucher, then a JSON array file in one transaction", async function () {
      const aliceBefore = await balance(1);
      const opened = await json("ppu:session:open", {
        payerId: alice,
        providerId: bob,
        deposit: "10",
        expiresIn: "1d",
        from: "1",
      });
      const sessionId = BigInt(opened.sessionId);
      expect(opened).to.include({
        state: "open",
        payerId: alice.toString(),
        providerId: bob.toString(),
        signer: signers[1].address,
        depositText: "10.00 USDT",
        approved: true,
      });
      expect(BigInt(opened.endsAt)).to.be.closeTo(BigInt(await time.latest()) + 86_400n, 2n);
      expect(await balance(1)).to.equal(aliceBefore - usdt("10"));

      const first = JSON.parse(await voucher(sessionId, "0.5", 2));
      expect(first.voucher).to.deep.equal({
        sessionId: sessionId.toString(),
        amount: usdt("0.5").toString(),
        calls: "2",
      });
      expect(first).to.include({ signer: signers[1].address, amountText: "0.50 USDT" });

      const bobBefore = await balance(2);
      const feesBefore = await ctx.payPerUse.accruedFees(ctx.addresses.tokens.USDT!);
      const one = await json("ppu:redeem", { voucher: JSON.stringify(first), from: "5" });
      expect(one).to.deep.include({ vouchers: 1, redeemedVouchers: 1, stale: 0, transactions: 1 });
      expect(one.sessions[0]).to.include({ paidText: "0.495 USDT", feeText: "0.005 USDT", redeemedText: "0.50 USDT" });
      expect(await balance(2)).to.equal(bobBefore + usdt("0.495"));

      // Three more vouchers and a stale copy of the first, in one file: one transaction, the stale one pays nothing.
      const later = [];
      for (const [amount, calls] of [
        ["1", 4],
        ["2", 8],
        ["3", 12],
      ] as const) {
        later.push(JSON.parse(await voucher(sessionId, amount, calls)));
      }
      const file = path.join(tmp, "vouchers.json");
      fs.writeFileSync(file, JSON.stringify([...later, first]));
      const many = await json("ppu:redeem", { file, from: "2" });
      expect(many).to.deep.include({ vouchers: 4, redeemedVouchers: 3, stale: 1, transactions: 1 });
      expect(many.sessions).to.have.length(1);
      expect(many.sessions[0]).to.include({
        paid: usdt("2.475").toString(),
        fee: usdt("0.025").toString(),
        redeemedText: "3.00 USDT",
        depositText: "10.00 USDT",
        calls: "12",
        state: "open",
      });
      expect(await balance(2)).to.equal(bobBefore + usdt("2.97"));
      const s = await ctx.payPerUse.getSession(sessionId);
      expect([s.redeemed, s.calls, s.deposit]).to.deep.equal([usdt("3"), 12n, usdt("10")]);
      // The session's fee (1% of 3.00) is booked for the treasury only when the session is settled.
      expect(await ctx.payPerUse.accruedFees(ctx.addresses.tokens.USDT!)).to.equal(feesBefore);
      const shown = await json("ppu:show", { session: sessionId });
      expect(shown).to.include({ feeText: "0.03 USDT", toProviderText: "2.97 USDT", feeBooked: false });

      const { out } = await capture(() => hre.run("ppu:redeem", { file, from: "2" }));
      expect(out).to.match(/^Redeemed 4 voucher\(s\) in 1 transaction\(s\), [\d,]+ gas; 4 were at or below/);
      const extra = await voucher(sessionId, "3.5", 14);
      const { out: paidOut } = await capture(() => hre.run("ppu:redeem", { voucher: extra, from: "2" }));
      expect(paidOut).to.contain(
        `Session #${sessionId}: 0.495 USDT to the provider, 0.005 USDT fee (booked for the treasury when the session is settled)`,
      );
    });

    it("ppu:redeem sends more than 256 vouchers in several transactions", async function () {
      const sessionId = await openSession({ deposit: "100" });
      const vouchers = Array.from({ length: 300 }, (_, i) => ({
        sessionId,
        amount: usdt("0.1") * BigInt(i + 1),
        calls: BigInt(i + 1),
      }));
      const signatures = await signVouchers(ctx, signers[1], vouchers);
      const file = path.join(tmp, "300-vouchers.json");
      fs.writeFileSync(file, toJson(vouchers.map((voucher, i) => ({ voucher, signature: signatures[i] }))));
      const data = await json("ppu:redeem", { file, from: "2" });
      expect(data).to.deep.include({ vouchers: 300, redeemedVouchers: 300, transactions: 2 });
      expect(data.txs).to.have.length(2);
      const s = await ctx.payPerUse.getSession(sessionId);
      expect([s.redeemed, s.calls]).to.deep.equal([usdt("30"), 300n]);
    });

    it("ppu:voucher refuses a key that is not the session's signer; a forged voucher is refused on chain", async function () {
      const sessionId = await openSession();
      expect(await failure("ppu:voucher", { session: sessionId, amount: "1", calls: 1n, from: "3" })).to.equal(
        `Session #${sessionId}'s vouchers count only when signed by ${signers[1].address}, not ${signers[3].address}: sign with --from ${signers[1].address}.`,
      );
      const forged = JSON.parse(await voucher(sessionId, "1", 1));
      forged.voucher.amount = usdt("9").toString();
      expect(await failure("ppu:redeem", { voucher: JSON.stringify(forged), from: "2" })).to.match(
        new RegExp(`^Refused: the signature is not ${signers[1].address}'s`),
      );
      expect(await failure("ppu:voucher", { session: 999_999n, amount: "1", calls: 1n, from: "1" })).to.equal(
        "Session #999999 does not exist.",
      );
    });

    it("ppu:session:topup adds and extends; ppu:session:close, ppu:session:withdraw settle after the grace period", async function () {
      const sessionId = await openSession({ signer: signers[1].address });
      const before = await ctx.payPerUse.getSession(sessionId);
      const topped = await json("ppu:session:topup", { session: sessionId, amount: "5", expiresIn: "2d", from: "1" });
      expect(topped).to.include({ depositText: "15.00 USDT", addedText: "5.00 USDT", unredeemedText: "15.00 USDT" });
      const s = await ctx.payPerUse.getSession(sessionId);
      expect(s.deposit).to.equal(usdt("15"));
      expect(s.endsAt).to.be.greaterThan(before.endsAt);

      await run("ppu:redeem", { voucher: await voucher(sessionId, "4", 16), from: "2" });
      expect(await failure("ppu:session:close", { session: sessionId, from: "2" })).to.equal(
        `Refused: ${signers[2].address} may not act for agent #${alice}: it is neither the agent's owner, its wallet nor an active operator.`,
      );
      const closed = await json("ppu:session:close", { session: sessionId, from: "1" });
      expect(closed).to.include({ state: "closing", closing: true });
      expect(BigInt(closed.endsAt)).to.be.closeTo(BigInt(await time.latest()) + 3_600n, 2n);
      expect(await failure("ppu:session:topup", { session: sessionId, amount: "1", from: "1" })).to.equal(
        `Refused: session #${sessionId} is closing: it can no longer be topped up or closed again.`,
      );
      expect(await failure("ppu:session:withdraw", { session: sessionId, from: "5" })).to.match(
        new RegExp(`^Refused: session #${sessionId} runs until .*; it can be settled only after that`),
      );

      await time.increase(3_601);
      const record = await ctx.reputation.getRecord(bob);
      const [rights] = await ctx.reputation.feedbackRights(bob, signers[1].address);
      const aliceBefore = await balance(1);
      const feesBefore = await ctx.payPerUse.accruedFees(ctx.addresses.tokens.USDT!);
      const settled = await json("ppu:session:withdraw", { session: sessionId, from: "5" });
      expect(settled).to.include({
        redeemedText: "4.00 USDT",
        fee: usdt("0.04").toString(),
        feeText: "0.04 USDT",
        toProviderText: "3.96 USDT",
        refunded: usdt("11").toString(),
        refundedText: "11.00 USDT",
        calls: "16",
        refundedTo: signers[1].address,
      });
      expect(await balance(1)).to.equal(aliceBefore + usdt("11"));
      expect(await ctx.payPerUse.accruedFees(ctx.addresses.tokens.USDT!)).to.equal(feesBefore + usdt("0.04"));
      expect((await ctx.payPerUse.getSession(sessionId)).settled).to.equal(true);
      expect(await json("ppu:show", { session: sessionId })).to.include({
        state: "settled",
        feeText: "0.04 USDT",
        feeBooked: true,
      });
      const after = await ctx.reputation.getRecord(bob);
      expect(after.callsServed).to.equal(record.callsServed + 16n);
      expect(after.settlementsServed).to.equal(record.settlementsServed + 1n);
      expect((await ctx.reputation.feedbackRights(bob, signers[1].address))[0]).to.equal(rights + 1n);

      expect(await failure("ppu:session:withdraw", { session: sessionId, from: "5" })).to.equal(
        `Refused: session #${sessionId} was already settled.`,
      );
      expect(await failure("ppu:redeem", { voucher: await voucher(sessionId, "5", 20), from: "2" })).to.match(
        new RegExp(`^Refused: session #${sessionId} ended at .* \\(or was settled\\)`),
      );
    });

    it("ppu:session:open refuses an inactive provider and a signer that may not act for the payer", async function () {
      await run("agent:update", { id: bob, paused: true, from: "2" });
      expect(
        await failure("ppu:session:open", {
          payerId: alice,
          providerId: bob,
          deposit: "1",
          expiresIn: "1h",
          from: "1",
        }),
      ).to.equal(`Refused: provider agent #${bob} does not exist or is paused.`);
      await run("agent:update", { id: bob, paused: false, from: "2" });
      expect(
        await failure("ppu:session:open", {
          payerId: alice,
          providerId: bob,
          deposit: "1",
          expiresIn: "1h",
          signer: "3",
          from: "1",
        }),
      ).to.equal(
        `Refused: ${signers[3].address} may not act for agent #${alice}: it is neither the agent's owner, its wallet nor an active operator.`,
      );
    });
  });

  describe("ppu:sync", function () {
    it("records a pair's pending charges in Reputation: calls, amount and one right per charge (--json)", async function () {
      const usdtAddress = ctx.addresses.tokens.USDT!;
      const first = await run<{ receiptId: bigint }>("ppu:pay", { payerId: alice, service, units: 8n, from: "1" });
      await run("ppu:pay", { payerId: alice, service, units: 4n, from: "1" });
      expect(await ctx.payPerUse.pendingReputation(alice, bob, usdtAddress)).to.deep.equal([12n, usdt("3"), 2n]);
      const record = await ctx.reputation.getRecord(bob);
      const [rights] = await ctx.reputation.feedbackRights(bob, signers[1].address);
      const volume = await ctx.reputation.getVolume(bob, usdtAddress);

      // Anyone may sync: here a stranger, naming the token by address.
      const data = await json("ppu:sync", { payerId: alice, providerId: bob, token: usdtAddress, from: "5" });
      expect(data).to.include({
        payerId: alice.toString(),
        providerId: bob.toString(),
        token: "USDT",
        tokenAddress: usdtAddress,
        calls: "12",
        amount: usdt("3").toString(),
        amountText: "3.00 USDT",
        receipts: "2",
        selfDealing: false,
        rater: signers[1].address,
        rightsGranted: "2",
        rightsHeld: (rights + 2n).toString(),
        syncedBy: signers[5].address,
      });
      const after = await ctx.reputation.getRecord(bob);
      expect(after.callsServed).to.equal(record.callsServed + 12n);
      expect(after.settlementsServed).to.equal(record.settlementsServed + 2n);
      expect((await ctx.reputation.feedbackRights(bob, signers[1].address))[0]).to.equal(rights + 2n);
      expect(await ctx.reputation.getVolume(bob, usdtAddress)).to.equal(volume + usdt("3"));
      expect(await ctx.payPerUse.pendingReputation(alice, bob, usdtAddress)).to.deep.equal([0n, 0n, 0n]);
      const shown = await json("ppu:show", { receipt: first.receiptId });
      expect(shown.inReputation).to.equal(true);
      expect(shown.pending).to.include({ receipts: "0" });
      expect((await capture(() => hre.run("ppu:show", { receipt: first.receiptId }))).out).to.contain("yes (synced)");

      // A later charge waits again; the earlier receipt stays recorded, the new one does not.
      const later = await run<{ receiptId: bigint }>("ppu:pay", { payerId: alice, service, units: 2n, from: "1" });
      expect((await json("ppu:show", { receipt: first.receiptId })).inReputation).to.equal(true);
      expect((await json("ppu:show", { receipt: later.receiptId })).inReputation).to.equal(false);
      const { out } = await capture(() => hre.run("ppu:sync", { payerId: alice, providerId: bob, from: "2" }));
      expect(out).to.match(
        new RegExp(
          `^Recorded in Reputation 1 charge\\(s\\) of agent #${alice} to agent #${bob}: 2 call\\(s\\) worth 0\\.50 USDT \\([\\d,]+ gas\\)\\.`,
        ),
      );
      expect(out).to.contain(
        `Agent #${bob} gains 2 calls served and 1 settlement(s); agent #${alice}'s owner ${signers[1].address} ` +
          `received 1 right(s) to rate it and holds ${rights + 3n} unused.`,
      );
    });

    it("refuses a pair with nothing pending in plain words; agents of one owner are synced as self-dealing", async function () {
      expect(await failure("ppu:sync", { payerId: alice, providerId: bob, from: "5" })).to.equal(
        `Refused: agent #${alice} has no charges with agent #${bob} in USDT waiting for Reputation: there is nothing to sync (they were recorded already, or there were none).`,
      );
      await run("ppu:pay", { payerId: alice, service, units: 1n, from: "1" });
      // The pending charge is in USDT: nothing waits in USDG.
      expect(await failure("ppu:sync", { payerId: alice, providerId: bob, token: "USDG", from: "5" })).to.match(
        new RegExp(`^Refused: agent #${alice} has no charges with agent #${bob} in USDG waiting for Reputation`),
      );
      await run("ppu:sync", { payerId: alice, providerId: bob, from: "5" });
      expect(await failure("ppu:sync", { payerId: alice, providerId: bob, from: "5" })).to.match(
        /there is nothing to sync/,
      );

      // Alice's owner also owns carol: its charges with alice change no record and grant no right.
      const carol = await newAgent("1");
      const carolService = (
        await run<{ service: bigint }>("agent:service", {
          action: "list",
          id: carol,
          capability: "search:web",
          mode: "ppu",
          token: "USDT",
          unitPrice: "0.1",
          endpoint: "https://carol.example/api",
          from: "1",
        })
      ).service;
      await run("ppu:pay", { payerId: alice, service: carolService, units: 5n, from: "1" });
      const record = await ctx.reputation.getRecord(carol);
      const data = await json("ppu:sync", { payerId: alice, providerId: carol, from: "5" });
      expect(data).to.include({ calls: "5", receipts: "1", selfDealing: true, rater: null, rightsGranted: "0" });
      expect((await ctx.reputation.getRecord(carol)).callsServed).to.equal(record.callsServed);
      await run("ppu:pay", { payerId: alice, service: carolService, units: 5n, from: "1" });
      const { out } = await capture(() => hre.run("ppu:sync", { payerId: alice, providerId: carol, from: "5" }));
      expect(out).to.contain("Both agents have the same owner, so Reputation recorded them as self-dealing");
    });
  });

  describe("ppu:show and money", function () {
    it("ppu:show --json shows a receipt, a session and the settings; the tables are readable", async function () {
      const { receiptId } = await run<{ receiptId: bigint }>("ppu:pay", {
        payerId: alice,
        service,
        units: 6n,
        ref: "shown",
        from: "1",
      });
      await run("ppu:refund", { receipt: receiptId, amount: "0.5", from: "2" });
      const receipt = await json("ppu:show", { receipt: receiptId });
      expect(receipt).to.deep.include({
        receiptId: receiptId.toString(),
        payerId: alice.toString(),
        providerId: bob.toString(),
        token: "USDT",
        refundableText: "1.00 USDT",
      });
      expect(receipt.charge).to.include({
        serviceId: service.toString(),
        units: "6",
        totalText: "1.50 USDT",
        feeText: "0.015 USDT",
        requestRef: keccakId("shown"),
        payer: signers[1].address,
      });
      expect(receipt.refunds.map((r: { amountText: string }) => r.amountText)).to.deep.equal(["0.50 USDT"]);
      // Not synced yet: the pair's pending counters hold this charge.
      expect(receipt.inReputation).to.equal(false);
      expect(receipt.pending).to.include({ calls: "6", amountText: "1.50 USDT", receipts: "1" });

      const sessionId = await openSession({ deposit: "2.5" });
      const session = await json("ppu:show", { session: sessionId });
      expect(session).to.include({
        state: "open",
        depositText: "2.50 USDT",
        redeemedText: "0.00 USDT",
        unredeemedText: "2.50 USDT",
        feeBps: "100",
        closeGrace: "3600",
        signer: signers[1].address,
      });

      const config = await json("ppu:show");
      expect(config).to.include({
        payPerUse: ctx.addresses.payPerUse,
        fee: "1.00%",
        closeGraceText: "1h",
        paused: false,
      });
      expect(BigInt(config.receipts)).to.equal(await ctx.payPerUse.receiptCount());
      expect(BigInt(config.sessions)).to.equal(sessionId);
      expect(config.note).to.match(/a session's when it is settled/);
      const usdtRow = config.tokens.find((t: { token: string }) => t.token === "USDT");
      expect(usdtRow.allowed).to.equal(true);
      expect(BigInt(usdtRow.held)).to.be.greaterThanOrEqual(usdt("2.5"));

      for (const args of [{ receipt: receiptId }, { session: sessionId }, {}]) {
        const { out } = await capture(() => hre.run("ppu:show", args));
        expect(out).to.not.contain("{");
        expect(out).to.contain("│");
      }
      const sessionOut = (await capture(() => hre.run("ppu:show", { session: sessionId }))).out;
      expect(sessionOut).to.contain(`Session #${sessionId} (USDT)`);
      expect(sessionOut).to.contain("0.00 USDT (1.00% of the redeemed), booked for the treasury when settled");
      const receiptOut = (await capture(() => hre.run("ppu:show", { receipt: receiptId }))).out;
      expect(receiptOut).to.contain("not yet: it waits with the pair's other charges (ppu:sync)");
      expect(receiptOut).to.contain("1 charge(s), 6 unit(s), 1.50 USDT");
      expect(await failure("ppu:show", { receipt: 1n, session: 1n })).to.equal(
        "Give --receipt or --session, not both.",
      );
      expect(await failure("ppu:show", { session: 999_999n })).to.equal("Session #999999 does not exist.");
    });

    it("ppu:withdraw --fees sweeps to the treasury; ppu:withdraw collects a payout that failed", async function () {
      await run("ppu:pay", { payerId: alice, service, units: 4n, from: "1" });
      const usdtAddress = ctx.addresses.tokens.USDT!;
      const [, , treasury] = await ctx.payPerUse.config();
      const accrued = await ctx.payPerUse.accruedFees(usdtAddress);
      expect(accrued).to.be.greaterThanOrEqual(usdt("0.01"));
      const treasuryBefore = await token().balanceOf(treasury);
      const swept = await run<{ amount: bigint; to: string }>("ppu:withdraw", { fees: true, from: "5" });
      expect([swept.amount, swept.to]).to.deep.equal([accrued, treasury]);
      expect(await token().balanceOf(treasury)).to.equal(treasuryBefore + accrued);
      expect(await failure("ppu:withdraw", { fees: true, from: "5" })).to.equal(
        `Refused: ${treasury} has nothing to collect in USDT.`,
      );

      // A token that blacklists bob: his pay becomes a credit he collects to another address.
      const blk = await ethers.deployContract("MockBlacklistToken");
      const blkAddress = await blk.getAddress();
      await ctx.payPerUse.connect(signers[0]).setToken(blkAddress, true);
      await blk.mint(signers[1].address, usdt("10"));
      const listed = await run<{ service: bigint }>("agent:service", {
        action: "list",
        id: bob,
        capability: "search:deep",
        mode: "ppu",
        token: blkAddress,
        unitPrice: "1",
        endpoint: "https://bob.example/deep",
        from: "2",
      });
      await blk.setBlacklisted(signers[2].address, true);
      const paid = await run<{ credited: boolean; toProvider: bigint }>("ppu:pay", {
        payerId: alice,
        service: listed.service,
        units: 2n,
        from: "1",
      });
      expect(paid.credited).to.equal(true);
      expect(await ctx.payPerUse.creditOf(blkAddress, signers[2].address)).to.equal(usdt("1.98"));
      const withdrawn = await run<{ amount: bigint; to: string }>("ppu:withdraw", {
        token: blkAddress,
        to: "6",
        from: "2",
      });
      expect([withdrawn.amount, withdrawn.to]).to.deep.equal([usdt("1.98"), signers[6].address]);
      expect(await blk.balanceOf(signers[6].address)).to.equal(usdt("1.98"));
      expect(await failure("ppu:withdraw", { token: blkAddress, from: "2" })).to.match(
        new RegExp(`^Refused: the signer \\(0x.{4}….{4}\\) has nothing to collect in`),
      );
    });
  });
});
