import { expect } from "chai";
import hre from "hardhat";
import { ErrorFragment, Interface, ZeroHash, dataSlice, id as keccakId } from "ethers";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { type Context, formatTimestamp, getContext, parsePeriod } from "../../tasks/lib/context";
import { SENTENCES, errorInterface, explain } from "../../tasks/lib/errors";
import { MockArbitrator__factory, MockStablecoin__factory } from "../../typechain-types";
import { capture, run, failure } from "../fixtures/tasks";

const { ethers } = hre;

const usdt = (n: string) => ethers.parseUnits(n, 6);
const DAY = 86_400;

// ITaskEscrow.Status
const OPEN = 1n;
const ACCEPTED = 2n;
const CANCEL_REQUESTED = 3n;
const SUBMITTED = 4n;
const REJECTED = 5n;
const DISPUTED = 6n;
const ARBITRATION = 7n;
const COMPLETED = 8n;
const REFUNDED = 9n;
const RESOLVED = 10n;
const CLOSED = 11n;

describe("Task tasks (TaskEscrow CLI) @cli", function () {
  let ctx: Context;
  let signers: Awaited<ReturnType<typeof ethers.getSigners>>;
  // Agents, re-registered for every test: the client is owned by account 1, bob by 2, carol by 3.
  let client: bigint;
  let bob: bigint;
  let carol: bigint;

  async function newAgent(from: string): Promise<bigint> {
    return (await run<{ agentId: bigint }>("agent:register", { uri: "ipfs://agent.json", from })).agentId;
  }

  const token = () => MockStablecoin__factory.connect(ctx.addresses.tokens.USDT!, signers[0]);
  const balance = (i: number) => token().balanceOf(signers[i].address);
  const getTask = (id: bigint) => ctx.escrow.getTask(id);

  /** task:create with defaults: a direct task from the client (account 1) to bob, 100 USDT. */
  async function create(over: Record<string, unknown> = {}): Promise<bigint> {
    const args = { client, provider: bob, budget: "100", from: "1", ...over };
    return (await run<{ taskId: bigint }>("task:create", args)).taskId;
  }

  /** A direct task the client posted and bob accepted. */
  async function accepted(over: Record<string, unknown> = {}): Promise<bigint> {
    const id = await create(over);
    await run("task:accept", { task: id, from: "2" });
    return id;
  }

  /** A direct task bob accepted and delivered. */
  async function submitted(over: Record<string, unknown> = {}): Promise<bigint> {
    const id = await accepted(over);
    await run("task:submit", { task: id, uri: "ipfs://deliverable", from: "2" });
    return id;
  }

  before(async function () {
    signers = await ethers.getSigners();
  });

  beforeEach(async function () {
    // Other suites revert snapshots: reconnect to whatever deployment the tasks use now.
    ctx = await getContext(hre);
    client = await newAgent("1");
    bob = await newAgent("2");
    carol = await newAgent("3");
    for (const i of [1, 2, 3]) await token().mint(signers[i].address, usdt("10000"));
  });

  describe("plumbing", function () {
    it("errors.ts has a sentence for every error declared in ITaskEscrow, with its arguments formatted", async function () {
      const { abi } = await hre.artifacts.readArtifact("ITaskEscrow");
      const errors = new Interface(abi).fragments.filter((f): f is ErrorFragment => f.type === "error");
      expect(errors.length).to.be.greaterThan(20);
      expect(errors.filter((e) => !SENTENCES[e.name]).map((e) => e.name)).to.deep.equal([]);

      const iface = errorInterface();
      const usdtAddress = ctx.addresses.tokens.USDT!;
      const words = { decimals: 6, symbol: "USDT", tokens: { [usdtAddress]: { symbol: "USDT", decimals: 6 } } };
      const say = (name: string, args: unknown[]) => explain({ data: iface.encodeErrorResult(name, args) }, words);
      expect(say("TaskEscrowWrongStatus", [7n, SUBMITTED])).to.equal(
        "Refused: task #7 is Submitted, a state in which this is not possible.",
      );
      expect(say("TaskEscrowBadAmount", [usdt("0.5")])).to.match(/^Refused: an amount of 0\.50 USDT is out of range/);
      expect(say("TaskEscrowBadTime", [1800n])).to.match(/^Refused: a duration of 30m is out of range/);
      expect(say("TaskEscrowBadTime", [1_900_000_000n])).to.equal(
        "Refused: the acceptance deadline 2030-03-17T17:46:40Z must lie between now and 365 days ahead.",
      );
      expect(say("TaskEscrowNothingToWithdraw", [usdtAddress, signers[4].address])).to.equal(
        `Refused: ${signers[4].address} has nothing to collect in USDT.`,
      );
      expect(say("TaskEscrowScoreTooLow", [3n, 2500n, 4000n])).to.equal(
        "Refused: agent #3 has a reputation score of 25.00%, below the task's minimum of 40.00%.",
      );
      expect(say("TaskEscrowTransferMismatch", [usdtAddress, usdt("10"), usdt("9.9")])).to.match(
        /received 9\.90 USDT instead of 10\.00 USDT/,
      );
    });

    it("parsePeriod reads seconds and s / m / h / d", function () {
      expect([
        parsePeriod("90"),
        parsePeriod("90s"),
        parsePeriod("45m"),
        parsePeriod("2h"),
        parsePeriod("3d"),
      ]).to.deep.equal([90, 90, 2700, 7200, 259_200]);
      expect(() => parsePeriod("2 weeks")).to.throw(/is not a duration/);
    });
  });

  describe("direct tasks", function () {
    it("task:create approves the escrow when needed and locks the maximum budget", async function () {
      await token().connect(signers[1]).approve(ctx.addresses.escrow, 0n);
      const before = await balance(1);
      const data = await run<{ taskId: bigint; approved: boolean }>("task:create", {
        client,
        provider: bob,
        budget: "100",
        maxBudget: "120",
        acceptIn: "2h",
        delivery: "3d",
        review: "12h",
        specUri: "ipfs://spec",
        from: "1",
      });
      expect(data.approved).to.equal(true);
      const t = await getTask(data.taskId);
      expect([t.status, t.mode, t.clientId, t.providerId]).to.deep.equal([OPEN, 0n, client, bob]);
      expect([t.amount, t.offer, t.deliveryDuration, t.reviewPeriod]).to.deep.equal([
        usdt("120"),
        usdt("100"),
        3n * 86_400n,
        12n * 3_600n,
      ]);
      expect(t.deadline).to.be.closeTo(BigInt(await time.latest()) + 7200n, 5n);
      expect(await balance(1)).to.equal(before - usdt("120"));
      // Allowance now exactly used up; the next posting approves again.
      expect(await token().allowance(signers[1].address, ctx.addresses.escrow)).to.equal(0n);
      const again = await run<{ approved: boolean }>("task:create", { client, provider: bob, budget: "5", from: "1" });
      expect(again.approved).to.equal(true);
    });

    it("task:propose (counter, accept-counter), task:submit and task:approve pay the provider minus the fee", async function () {
      const start = [await balance(1), await balance(2)];
      const feesBefore = await ctx.escrow.accruedFees(ctx.addresses.tokens.USDT!);
      const id = await create({ budget: "100", maxBudget: "120" });
      await run("task:propose", { task: id, as: "provider", price: "110", delivery: "3d", from: "2" });
      const counter = await ctx.escrow.getCounter(id);
      expect([counter.price, counter.deliveryDuration]).to.deep.equal([usdt("110"), 3n * 86_400n]);

      const acceptedCounter = await run<{ status: string }>("task:propose", {
        task: id,
        acceptCounter: true,
        from: "1",
      });
      expect(acceptedCounter.status).to.equal("Accepted");
      let t = await getTask(id);
      expect([t.status, t.amount, t.deliveryDuration]).to.deep.equal([ACCEPTED, usdt("110"), 3n * 86_400n]);
      expect(await balance(1)).to.equal(start[0] - usdt("110")); // the unused 10 came back

      await run("task:submit", { task: id, uri: "ipfs://deliverable", from: "2" });
      t = await getTask(id);
      expect(t.status).to.equal(SUBMITTED);
      const approved = await run<{ settlement: { toProvider: bigint; fee: bigint } }>("task:approve", {
        task: id,
        from: "1",
      });
      expect((await getTask(id)).status).to.equal(COMPLETED);
      expect(approved.settlement).to.deep.equal({ toProvider: usdt("108.9"), toClient: 0n, fee: usdt("1.1") });
      expect(await balance(2)).to.equal(start[1] + usdt("108.9"));
      expect(await ctx.escrow.accruedFees(ctx.addresses.tokens.USDT!)).to.equal(feesBefore + usdt("1.1"));
      expect((await ctx.reputation.getRecord(bob)).tasksCompleted).to.equal(1n);
    });

    it("task:propose as the client lowers the offer; task:accept takes the current terms", async function () {
      const before = await balance(1);
      const id = await create({ budget: "50" });
      const proposed = await run<{ events: string[] }>("task:propose", {
        task: id,
        price: "40",
        delivery: "1d",
        from: "1",
      });
      expect(proposed.events).to.include("Offer now: 40.00 USDT, delivery in 24h.");
      await run("task:accept", { task: id, from: "2" });
      const t = await getTask(id);
      expect([t.status, t.amount, t.deliveryDuration, t.proposals]).to.deep.equal([ACCEPTED, usdt("40"), 86_400n, 1n]);
      expect(await balance(1)).to.equal(before - usdt("40"));
    });

    it("task:decline closes the task with a full refund", async function () {
      const before = await balance(1);
      const id = await create();
      const data = await run<{ status: string }>("task:decline", { task: id, from: "2" });
      expect(data.status).to.equal("Closed");
      expect((await getTask(id)).status).to.equal(CLOSED);
      expect(await balance(1)).to.equal(before);
    });

    it("task:close closes an open task with a full refund, and refuses an accepted one", async function () {
      const before = await balance(1);
      const id = await create({ budget: "30" });
      await run("task:close", { task: id, from: "1" });
      expect((await getTask(id)).status).to.equal(CLOSED);
      expect(await balance(1)).to.equal(before);

      const busy = await accepted();
      expect(await failure("task:close", { task: busy, from: "1" })).to.equal(
        `Task #${busy} has a provider at work, so it cannot simply be closed: ask the provider to cancel (task:cancel).`,
      );
    });

    it("task:cancel asks the provider to cancel; task:refund then refunds the client", async function () {
      const open = await create();
      expect(await failure("task:cancel", { task: open, from: "1" })).to.match(/is still open: close it instead/);
      const before = await balance(1);
      const id = await accepted();
      await run("task:cancel", { task: id, from: "1" });
      expect((await getTask(id)).status).to.equal(CANCEL_REQUESTED);
      await run("task:refund", { task: id, from: "2" });
      expect((await getTask(id)).status).to.equal(REFUNDED);
      expect(await balance(1)).to.equal(before);
      expect((await ctx.reputation.getRecord(bob)).tasksRefunded).to.equal(1n);
    });
  });

  describe("bidding and auto-match", function () {
    it("task:bid (and --withdraw), task:show --providers and task:select the cheaper bid", async function () {
      const before = await balance(1);
      const id = await create({ mode: "bidding", provider: undefined, budget: "50", maxBudget: "60" });
      expect((await getTask(id)).mode).to.equal(1n);
      await run("task:bid", { task: id, provider: bob, price: "55", eta: "1d", proposal: "ipfs://b", from: "2" });
      await run("task:bid", { task: id, provider: carol, price: "45", eta: "2d", from: "3" });
      await run("task:bid", { task: id, provider: bob, withdraw: true, from: "2" });
      expect((await ctx.escrow.getBid(id, bob)).price).to.equal(0n);
      await run("task:bid", { task: id, provider: bob, price: "50", proposal: "ipfs://b2", from: "2" });
      const rebid = await ctx.escrow.getBid(id, bob);
      expect([rebid.price, rebid.eta]).to.deep.equal([usdt("50"), 2n * 86_400n]); // eta: the task's
      const b2 = dataSlice(keccakId("ipfs://b2"), 0, 16);
      const none = dataSlice(ZeroHash, 0, 16);

      const shown = JSON.parse(
        (await capture(() => hre.run("task:show", { task: id, providers: `${bob},${carol}`, json: true }))).out,
      );
      expect(shown.bids).to.deep.equal([
        {
          providerId: `${bob}`,
          price: usdt("50").toString(),
          priceText: "50.00 USDT",
          eta: "172800",
          etaText: "2d",
          proposal: b2,
        },
        {
          providerId: `${carol}`,
          price: usdt("45").toString(),
          priceText: "45.00 USDT",
          eta: "172800",
          etaText: "2d",
          proposal: none,
        },
      ]);

      // The client chose bob's first proposal; bob has replaced it since: the selection is refused.
      expect(await failure("task:select", { task: id, provider: bob, proposal: "ipfs://b", from: "1" })).to.equal(
        `Refused: the terms of task #${id} changed since they were read; read them again (task:show) and retry.`,
      );
      expect((await getTask(id)).status).to.equal(OPEN);

      await run("task:select", { task: id, provider: carol, from: "1" });
      const t = await getTask(id);
      expect([t.status, t.providerId, t.amount, t.deliveryDuration]).to.deep.equal([
        ACCEPTED,
        carol,
        usdt("45"),
        2n * 86_400n,
      ]);
      expect(await balance(1)).to.equal(before - usdt("45"));
    });

    it("task:claim assigns an auto-match task to a provider listing the capability", async function () {
      const listed = await run<{ service: bigint }>("agent:service", {
        action: "list",
        id: carol,
        capability: "code:review",
        mode: "task",
        endpoint: "a2a://carol",
        from: "3",
      });
      const id = await create({
        mode: "auto",
        provider: undefined,
        budget: "30",
        capability: "code:review",
        minScore: 4000,
      });
      const posted = await getTask(id);
      expect([posted.mode, posted.capability, posted.minScoreBps]).to.deep.equal([2n, keccakId("code:review"), 4000n]);
      expect(await failure("task:claim", { task: id, provider: bob, service: listed.service, from: "2" })).to.equal(
        `Refused: service #${listed.service} cannot claim this task: it must be an active service of the claiming ` +
          `agent that lists the task's capability.`,
      );
      await run("task:claim", { task: id, provider: carol, service: listed.service, from: "3" });
      const t = await getTask(id);
      expect([t.status, t.providerId, t.amount]).to.deep.equal([ACCEPTED, carol, usdt("30")]);
    });
  });

  describe("task:agree", function () {
    it("--sign prints signed terms; --submit hires with them; a replay is refused", async function () {
      const { out } = await capture(() =>
        hre.run("task:agree", {
          sign: true,
          client,
          provider: bob,
          price: "25",
          delivery: "1d",
          specUri: "ipfs://terms",
          nonce: 7n,
          from: "2",
        }),
      );
      const signed = JSON.parse(out);
      expect(signed.signer).to.equal(signers[2].address);
      expect(signed.agreement).to.include({
        clientId: `${client}`,
        providerId: `${bob}`,
        price: "25000000",
        nonce: "7",
      });
      expect(signed.agreement.specHash).to.equal(keccakId("ipfs://terms"));

      const before = [await balance(1), await ctx.escrow.taskCount()];
      const hired = await run<{ taskId: bigint; status: string }>("task:agree", {
        submit: true,
        agreement: out,
        from: "1",
      });
      expect(hired.taskId).to.equal(before[1] + 1n);
      const t = await getTask(hired.taskId);
      expect([t.status, t.clientId, t.providerId, t.amount, t.deliveryDuration]).to.deep.equal([
        ACCEPTED,
        client,
        bob,
        usdt("25"),
        86_400n,
      ]);
      expect(await balance(1)).to.equal(before[0] - usdt("25"));
      expect(await ctx.escrow.nonceUsed(bob, 7n)).to.equal(true);
      expect(await failure("task:agree", { submit: true, agreement: out, from: "1" })).to.equal(
        `Refused: agent #${bob}'s agreement nonce 7 was already used or cancelled; sign new terms.`,
      );
    });

    it("--sign --submit signs with the provider's local owner and submits as the client at once", async function () {
      const hired = await run<{ taskId: bigint; signer: string }>("task:agree", {
        sign: true,
        submit: true,
        client,
        provider: carol,
        price: "20",
        from: "1",
      });
      expect(hired.signer).to.equal(signers[3].address);
      const t = await getTask(hired.taskId);
      expect([t.status, t.providerId, t.amount, t.deliveryDuration]).to.deep.equal([
        ACCEPTED,
        carol,
        usdt("20"),
        2n * 86_400n,
      ]);
    });
  });

  describe("review, disputes, timeouts and money", function () {
    it("task:reject then task:refund returns the price to the client", async function () {
      const before = await balance(1);
      const id = await submitted();
      await run("task:reject", { task: id, reason: "incomplete", from: "1" });
      expect((await getTask(id)).status).to.equal(REJECTED);
      const refunded = await run<{ settlement: unknown }>("task:refund", { task: id, from: "2" });
      expect(refunded.settlement).to.deep.equal({ toProvider: 0n, toClient: usdt("100"), fee: 0n });
      expect((await getTask(id)).status).to.equal(REFUNDED);
      expect(await balance(1)).to.equal(before);
    });

    it("task:dispute (both deposits), task:evidence and a ruling settle the task", async function () {
      // This test drives the ruling by hand: the test arbitrator stands in for the court.
      await ctx.escrow.connect(signers[0]).setArbitrator(ctx.addresses.arbitrator!);
      const before = [await balance(1), await balance(2)];
      const id = await submitted();
      await run("task:reject", { task: id, from: "1" });
      await token().connect(signers[2]).approve(ctx.addresses.escrow, 0n); // the task approves the deposit itself
      const raised = await run<{ events: string[] }>("task:dispute", { task: id, from: "2" });
      expect(raised.events.join(" ")).to.contain("the provider deposited 5.00 USDT");
      expect((await getTask(id)).status).to.equal(DISPUTED);
      await run("task:evidence", { task: id, evidence: "ipfs://evidence-client", from: "1" });
      await run("task:dispute", { task: id, from: "1" });
      expect((await getTask(id)).status).to.equal(ARBITRATION);
      const dispute = await ctx.escrow.getDispute(id);
      expect([dispute.arbitrator, dispute.deposit]).to.deep.equal([ctx.addresses.arbitrator, usdt("5")]);
      const shown = JSON.parse((await capture(() => hre.run("task:show", { task: id, json: true }))).out);
      expect(shown.dispute).to.deep.include({ depositText: "5.00 USDT", disputeId: dispute.disputeId.toString() });
      expect(shown.deadlineMeaning).to.equal("arbitration timeout");

      // Ruling 4: the provider gets 75% of the price (minus the 1% fee) and of the deposit the escrow holds.
      await MockArbitrator__factory.connect(ctx.addresses.arbitrator!, signers[0]).giveRuling(dispute.disputeId, 4);
      expect((await getTask(id)).status).to.equal(RESOLVED);
      expect(await balance(2)).to.equal(before[1] - usdt("5") + usdt("74.25") + usdt("3.75"));
      expect(await balance(1)).to.equal(before[0] - usdt("100") - usdt("5") + usdt("25") + usdt("1.25"));
    });

    it("task:timeout pays the provider once the review period passed (and not before)", async function () {
      const before = await balance(2);
      const id = await submitted({ review: "1h" });
      const deadline = (await getTask(id)).deadline;
      expect(await failure("task:timeout", { task: id, from: "5" })).to.equal(
        `Refused: task #${id}'s current deadline (${formatTimestamp(deadline)}) has not passed yet; a timeout only works after it.`,
      );
      await time.increase(3_601);
      const data = await run<{ status: string; settlement: unknown }>("task:timeout", { task: id, from: "5" });
      expect(data.status).to.equal("Completed");
      expect(data.settlement).to.deep.equal({ toProvider: usdt("99"), toClient: 0n, fee: usdt("1") });
      expect(await balance(2)).to.equal(before + usdt("99"));
      expect((await ctx.reputation.getRecord(bob)).tasksAutoCompleted).to.equal(1n);
    });

    it("task:withdraw --fees sweeps the fees to the treasury; task:withdraw collects a failed payout", async function () {
      await submitted({ budget: "10" }).then((id) => run("task:approve", { task: id, from: "1" }));
      const usdtAddress = ctx.addresses.tokens.USDT!;
      const [, , treasury] = await ctx.escrow.config();
      const accrued = await ctx.escrow.accruedFees(usdtAddress);
      expect(accrued).to.be.greaterThanOrEqual(usdt("0.1"));
      const treasuryBefore = await token().balanceOf(treasury);
      const swept = await run<{ amount: bigint; to: string }>("task:withdraw", { fees: true, from: "5" });
      expect([swept.amount, swept.to]).to.deep.equal([accrued, treasury]);
      expect(await token().balanceOf(treasury)).to.equal(treasuryBefore + accrued);
      expect(await ctx.escrow.accruedFees(usdtAddress)).to.equal(0n);
      expect(await failure("task:withdraw", { fees: true, from: "5" })).to.equal(
        `Refused: ${treasury} has nothing to collect in USDT.`,
      );

      // A token that blacklists bob's wallet: his payment becomes a credit he collects elsewhere.
      const blk = await ethers.deployContract("MockBlacklistToken");
      const blkAddress = await blk.getAddress();
      await ctx.escrow.connect(signers[0]).setToken(blkAddress, usdt("1"));
      await blk.mint(signers[1].address, usdt("10"));
      const id = await submitted({ token: blkAddress, budget: "10" });
      await blk.setBlacklisted(signers[2].address, true);
      const approved = await run<{ events: string[] }>("task:approve", { task: id, from: "1" });
      expect(approved.events.join(" ")).to.contain("it is credited there");
      expect(await ctx.escrow.creditOf(blkAddress, signers[2].address)).to.equal(usdt("9.9"));
      const withdrawn = await run<{ amount: bigint; to: string }>("task:withdraw", {
        token: blkAddress,
        to: "4",
        from: "2",
      });
      expect([withdrawn.amount, withdrawn.to]).to.deep.equal([usdt("9.9"), signers[4].address]);
      expect(await blk.balanceOf(signers[4].address)).to.equal(usdt("9.9"));
      expect(await ctx.escrow.creditOf(blkAddress, signers[2].address)).to.equal(0n);
    });
  });

  describe("task:show and plain errors", function () {
    it("task:show --json has the whole task; the table is readable", async function () {
      const id = await create({ budget: "40", maxBudget: "50", minScore: 0 });
      await run("task:propose", { task: id, as: "provider", price: "45", from: "2" });
      const data = JSON.parse((await capture(() => hre.run("task:show", { task: id, json: true }))).out);
      expect(data).to.deep.include({
        taskId: `${id}`,
        status: "Open",
        statusCode: 1,
        mode: "direct",
        clientId: `${client}`,
        providerId: `${bob}`,
        token: "USDT",
        amount: usdt("50").toString(),
        amountText: "50.00 USDT",
        amountMeaning: "locked (maximum budget)",
        offerText: "40.00 USDT",
        deadlineMeaning: "acceptance deadline",
        deadlinePassed: false,
        deliveryDuration: "172800",
        reviewPeriod: "86400",
        proposals: "1",
        feeBps: "100",
        arbitrationFeeBps: "500",
      });
      expect(data.counter).to.deep.equal({
        price: usdt("45").toString(),
        priceText: "45.00 USDT",
        deliveryDuration: "172800",
      });
      expect(data.deadlineText).to.equal(formatTimestamp((await getTask(id)).deadline));

      const { out } = await capture(() => hre.run("task:show", { task: id }));
      expect(out).to.contain(`Task #${id} (USDT)`);
      expect(out).to.match(/acceptance deadline\s+│ 20\S+Z/);
      expect(out).to.contain("45.00 USDT, delivery in 2d");
      expect(out).to.not.contain("{");
      expect(await failure("task:show", { task: 999_999n })).to.equal("Task #999999 does not exist.");
    });

    it("accepting after the acceptance deadline fails with the plain sentence", async function () {
      const id = await create({ acceptIn: "1h" });
      const deadline = (await getTask(id)).deadline;
      await time.increase(3_601);
      expect(await failure("task:accept", { task: id, from: "2" })).to.equal(
        `Refused: task #${id}'s deadline for this step passed at ${formatTimestamp(deadline)}; only a timeout ` +
          `(task:timeout) can move it now.`,
      );
    });

    it("approval by a stranger, a too-small budget and a bad mode fail with sentences", async function () {
      const id = await submitted();
      expect(await failure("task:approve", { task: id, from: "5" })).to.equal(
        `Refused: ${signers[5].address} may not act for agent #${client}, whom this step is for: it is neither the ` +
          `agent's owner, its wallet nor an active operator.`,
      );
      expect(await failure("task:create", { client, provider: bob, budget: "0.5", from: "1" })).to.match(
        /^Refused: an amount of 0\.50 USDT is out of range/,
      );
      expect(await failure("task:create", { client, budget: "5", from: "1" })).to.equal(
        "A direct task needs --provider (the agent to hire).",
      );
      expect(await failure("task:create", { client, mode: "auction", budget: "5", from: "1" })).to.match(
        /^Unknown mode "auction"/,
      );
      expect(await failure("task:create", { client, provider: bob, budget: "5", delivery: "30m", from: "1" })).to.match(
        /^Refused: a duration of 30m is out of range/,
      );
    });
  });
});
