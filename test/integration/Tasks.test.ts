import { expect } from "chai";
import hre from "hardhat";
import { ErrorFragment, Interface, ZeroHash, id as keccakId } from "ethers";
import { type Context, describeToken, getAddresses, getContext } from "../../tasks/lib/context";
import { SENTENCES, errorInterface, explain } from "../../tasks/lib/errors";
import { capture, run, failure } from "../fixtures/tasks";

const { ethers } = hre;

const usdt = (n: string) => ethers.parseUnits(n, 6);

describe("Tasks", function () {
  let ctx: Context;
  let signers: Awaited<ReturnType<typeof ethers.getSigners>>;

  /** A fresh agent owned by account `from`. */
  async function newAgent(from = "1", uri = "ipfs://agent.json"): Promise<bigint> {
    const { agentId } = await run<{ agentId: bigint }>("agent:register", { uri, from });
    return agentId;
  }

  before(async function () {
    signers = await ethers.getSigners();
    ctx = await getContext(hre);
  });

  beforeEach(async function () {
    // Other suites revert snapshots: reconnect to whatever deployment the tasks use now.
    ctx = await getContext(hre);
  });

  describe("errors.ts", function () {
    it("has a sentence for every error declared in IAgentRegistry and IReputation", async function () {
      const missing: string[] = [];
      for (const name of ["IAgentRegistry", "IReputation"]) {
        const { abi } = await hre.artifacts.readArtifact(name);
        const errors = new Interface(abi).fragments.filter((f): f is ErrorFragment => f.type === "error");
        expect(errors.length, `${name} declares errors`).to.be.greaterThan(5);
        for (const e of errors) if (!SENTENCES[e.name]) missing.push(`${name}.${e.name}`);
      }
      expect(missing).to.deep.equal([]);
    });

    it("words every decodable error without undefined values", async function () {
      const dummies: Record<string, unknown> = { address: signers[5].address, bool: true, string: "x" };
      const dummy = (type: string) =>
        dummies[type] ?? (type.startsWith("bytes") ? ethers.zeroPadValue("0x01", Number(type.slice(5)) || 1) : 7n);
      const iface = errorInterface();
      let checked = 0;
      iface.forEachError((fragment) => {
        const data = iface.encodeErrorResult(
          fragment,
          fragment.inputs.map((p) => dummy(p.type)),
        );
        const sentence = explain({ data });
        expect(sentence, fragment.format()).to.not.match(/undefined|NaN|unknown error/);
        if (SENTENCES[fragment.name]) expect(sentence, fragment.format()).to.not.match(/^Refused by the contract/);
        checked++;
      });
      expect(checked).to.be.greaterThan(40);
    });

    it("formats amounts in the period-cap sentence", async function () {
      const iface = errorInterface();
      const token = ctx.addresses.tokens.USDT!;
      const data = iface.encodeErrorResult("AgentRegistryPeriodCapExceeded", [token, usdt("60"), usdt("40")]);
      expect(explain({ data })).to.equal(
        "Refused: this spend of 60.00 exceeds what the operator may still spend this period (40.00 left).",
      );
      expect(explain({ error: { data } }, { symbol: "USDT" })).to.contain("(40.00 USDT left)");
      // A token known to the task: its own decimals and symbol, whatever the defaults say.
      const okb = await describeToken(ctx, ctx.addresses.tokens.OKB!);
      const okbData = iface.encodeErrorResult("AgentRegistryPerTxCapExceeded", [
        okb.address,
        ethers.parseUnits("1.5", okb.decimals),
        ethers.parseUnits("1", okb.decimals),
      ]);
      expect(explain({ data: okbData }, { symbol: "USDT", tokens: { [okb.address]: okb } })).to.equal(
        `Refused: this spend of 1.50 ${okb.symbol} exceeds the operator's per-transaction cap of 1.00 ${okb.symbol}.`,
      );
    });
  });

  describe("context.ts", function () {
    it("re-deploys when a snapshot revert removed the cached deployment", async function () {
      const snapshot = await ethers.provider.send("evm_snapshot", []);
      const fresh = await getAddresses(hre, { fresh: true });
      await ethers.provider.send("evm_revert", [snapshot]);
      expect(await ethers.provider.getCode(fresh.registry)).to.equal("0x");
      const again = await getAddresses(hre);
      expect(await ethers.provider.getCode(again.registry)).to.not.equal("0x");
      const agentId = await newAgent("2");
      expect(await (await getContext(hre)).registry.ownerOf(agentId)).to.equal(signers[2].address);
    });
  });

  describe("agent tasks", function () {
    it("agent:register registers an agent with its URI and metadata, owned by --from", async function () {
      const { agentId } = await run<{ agentId: bigint }>("agent:register", {
        uri: "ipfs://translator.json",
        metadata: "name=Translator,raw=0xbeef",
        from: signers[3].address,
      });
      expect(await ctx.registry.ownerOf(agentId)).to.equal(signers[3].address);
      expect(await ctx.registry.tokenURI(agentId)).to.equal("ipfs://translator.json");
      expect(ethers.toUtf8String(await ctx.registry.getMetadata(agentId, "name"))).to.equal("Translator");
      expect(await ctx.registry.getMetadata(agentId, "raw")).to.equal("0xbeef");
    });

    it("agent:register --json prints the new agent id", async function () {
      const { out } = await capture(() => hre.run("agent:register", { uri: "ipfs://j", json: true }));
      const data = JSON.parse(out);
      expect(await ctx.registry.tokenURI(BigInt(data.agentId))).to.equal("ipfs://j");
      expect(data.owner).to.equal(signers[0].address);
    });

    it("agent:show --json has the agent's fields, services and reputation", async function () {
      const agentId = await newAgent("1", "ipfs://show.json");
      await run("agent:update", { id: agentId, metadata: "name=Shown", from: "1" });
      await run("agent:service", {
        action: "list",
        id: agentId,
        capability: "translate:en-fr",
        token: "USDT",
        unitPrice: "0.02",
        endpoint: "https://t.example/mcp",
        from: "1",
      });
      const { out } = await capture(() => hre.run("agent:show", { id: agentId, keys: "name", json: true }));
      const data = JSON.parse(out);
      expect(data.agentId).to.equal(agentId.toString());
      expect(data.owner).to.equal(signers[1].address);
      expect(data.wallet).to.equal(signers[1].address);
      expect(data.walletIsOwner).to.equal(true);
      expect(data.uri).to.equal("ipfs://show.json");
      expect(data.paused).to.equal(false);
      expect(data.metadata).to.deep.equal({ name: "Shown" });
      expect(data.services).to.have.length(1);
      expect(data.services[0]).to.include({ capability: "translate:en-fr", token: "USDT", unitPrice: "0.02" });
      expect(data.reputation.score).to.equal("50.00%");
      expect(data.reputation.record.tasksCompleted).to.equal("0");
    });

    it("agent:show prints readable tables", async function () {
      const agentId = await newAgent("1", "ipfs://tables.json");
      const { out } = await capture(() => hre.run("agent:show", { id: agentId }));
      expect(out).to.contain(`Agent #${agentId}`);
      expect(out).to.contain("ipfs://tables.json");
      expect(out).to.contain("50.00%");
      expect(out).to.not.contain("{");
    });

    it("agent:update changes the URI and pauses and resumes the agent", async function () {
      const agentId = await newAgent("1");
      await run("agent:update", { id: agentId, uri: "ipfs://v2", paused: true, from: "1" });
      expect(await ctx.registry.tokenURI(agentId)).to.equal("ipfs://v2");
      expect(await ctx.registry.isAgentActive(agentId)).to.equal(false);
      await run("agent:update", { id: agentId, paused: false, from: "1" });
      expect(await ctx.registry.isAgentActive(agentId)).to.equal(true);
    });

    it("agent:wallet sets a wallet proven by the wallet key's signature, and unsets it", async function () {
      const agentId = await newAgent("1");
      await run("agent:wallet", { id: agentId, walletKey: "4", from: "1" });
      expect(await ctx.registry.getAgentWallet(agentId)).to.equal(signers[4].address);
      await run("agent:wallet", { id: agentId, unset: true, from: "1" });
      expect(await ctx.registry.getAgentWallet(agentId)).to.equal(signers[1].address);
    });

    it("agent:operator sets, limits, allow-lists and revokes an operator", async function () {
      const agentId = await newAgent("1");
      const other = await newAgent("2");
      const operator = signers[5].address;
      await run("agent:operator", {
        action: "set",
        id: agentId,
        operator,
        expiryHours: 2,
        minScoreBps: 1000,
        allowListOnly: true,
        from: "1",
      });
      const view = await ctx.registry.getOperator(agentId, operator);
      expect(view.active).to.equal(true);
      expect(view.minScoreBps).to.equal(1000n);
      expect(view.allowListOnly).to.equal(true);
      const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
      expect(view.expiry).to.be.closeTo(now + 7200n, 5n);

      const limited = await run<{ limit: { perTxCap: bigint; available: bigint } }>("agent:operator", {
        action: "limit",
        id: agentId,
        operator: "5",
        token: "USDT",
        perTx: "40",
        periodCap: "100",
        rolling: true,
        from: "1",
      });
      const limit = await ctx.registry.getTokenLimit(agentId, operator, ctx.addresses.tokens.USDT!);
      expect([limit.perTxCap, limit.periodCap, limit.period, limit.rolling]).to.deep.equal([
        usdt("40"),
        usdt("100"),
        86_400n,
        true,
      ]);
      expect(limited.limit.available).to.equal(usdt("40"));

      await run("agent:operator", { action: "allow", id: agentId, operator, counterparties: `${other}`, from: "1" });
      expect(await ctx.registry.isCounterpartyAllowed(agentId, operator, other)).to.equal(true);
      await run("agent:operator", {
        action: "allow",
        id: agentId,
        operator,
        counterparties: `${other}`,
        remove: true,
        from: "1",
      });
      expect(await ctx.registry.isCounterpartyAllowed(agentId, operator, other)).to.equal(false);

      await run("agent:operator", { action: "revoke", id: agentId, operator, from: "1" });
      expect((await ctx.registry.getOperator(agentId, operator)).active).to.equal(false);
    });

    it("agent:service lists pay-per-use and quoted services and updates one", async function () {
      const agentId = await newAgent("2");
      const row = await run<{ service: bigint }>("agent:service", {
        action: "list",
        id: agentId,
        capability: "code:lint",
        mode: "ppu",
        token: "USDG",
        unitPrice: "0.5",
        endpoint: "https://c.example/mcp",
        from: "2",
      });
      let s = await ctx.registry.getService(row.service);
      expect(s.agentId).to.equal(agentId);
      expect(s.capability).to.equal(keccakId("code:lint"));
      expect(s.mode).to.equal(0n);
      expect(s.token).to.equal(ctx.addresses.tokens.USDG);
      expect(s.unitPrice).to.equal(usdt("0.5"));
      expect(s.active).to.equal(true);

      await run("agent:service", { action: "update", service: row.service, price: "0.75", active: false, from: "2" });
      s = await ctx.registry.getService(row.service);
      expect([s.unitPrice, s.active, s.endpoint]).to.deep.equal([usdt("0.75"), false, "https://c.example/mcp"]);

      const quoted = await run<{ service: bigint }>("agent:service", {
        action: "list",
        id: agentId,
        capability: ZeroHash.replace(/0$/, "1"),
        mode: "task",
        endpoint: "a2a://c.example",
        from: "2",
      });
      s = await ctx.registry.getService(quoted.service);
      expect([s.mode, s.token, s.unitPrice]).to.deep.equal([1n, ethers.ZeroAddress, 0n]);
      expect(await ctx.registry.getAgentServices(agentId)).to.deep.equal([row.service, quoted.service]);
    });
  });

  describe("reputation:show", function () {
    it("--json shows score, record, volumes, clients and a rater's rights", async function () {
      const client = await newAgent("2");
      const provider = await newAgent("3");
      const reporter = signers[7];
      await ctx.reputation.grantRole(keccakId("REPORTER_ROLE"), reporter.address);
      await ctx.reputation.connect(reporter).recordTask(client, provider, 0, ctx.addresses.tokens.USDT!, usdt("80"));
      await ctx.reputation.connect(signers[2]).giveFeedback(provider, 90, 0, "", "", "", "", ZeroHash);

      const { out } = await capture(() =>
        hre.run("reputation:show", { id: provider, rater: signers[3].address, json: true }),
      );
      const data = JSON.parse(out);
      expect(data.score).to.equal("90.00%");
      expect(data.scoreBps).to.equal("9000");
      expect(data.record.tasksCompleted).to.equal("1");
      expect(data.record.ratingCount).to.equal("1");
      expect(data.volumes.find((v: { token: string }) => v.token === "USDT").volume).to.equal(usdt("80").toString());
      expect(data.clients).to.deep.equal([{ client: signers[2].address, lastFeedbackIndex: "1" }]);
      // The provider's owner holds no right on its own agent; the client's owner used its one.
      expect(data.rater).to.deep.include({ unusedRights: "0" });

      const other = JSON.parse(
        (await capture(() => hre.run("reputation:show", { id: client, rater: "3", json: true }))).out,
      );
      expect(other.rater).to.deep.equal({
        address: signers[3].address,
        unusedRights: "1",
        weight: usdt("80").toString(),
      });
    });
  });

  describe("plain errors", function () {
    it("a task refused by the contract fails with the plain sentence", async function () {
      const agentId = await newAgent("1");
      const message = await failure("agent:update", { id: agentId, uri: "ipfs://hijack", from: "2" });
      expect(message).to.equal(
        `Refused: ${signers[2].address} may not manage agent #${agentId}; only its owner, or an address the owner approved, may.`,
      );
    });

    it("amounts in a refused limit are worded in the token's decimals", async function () {
      const agentId = await newAgent("1");
      await run("agent:operator", { action: "set", id: agentId, operator: "5", from: "1" });
      const message = await failure("agent:operator", {
        action: "limit",
        id: agentId,
        operator: "5",
        token: "OKB",
        perTx: "50",
        periodCap: "10",
        from: "1",
      });
      expect(message).to.match(
        /^Refused: inconsistent spending limit \(per-transaction cap 50\.00 OKB, period cap 10\.00 OKB/,
      );
    });

    it("an unknown agent and a bad argument fail with sentences too", async function () {
      expect(await failure("agent:show", { id: 999_999n })).to.equal("Agent #999999 does not exist.");
      expect(await failure("agent:operator", { action: "fire", id: 1n, operator: "5" })).to.match(
        /^Unknown action "fire"/,
      );
    });
  });

  describe("market:demo", function () {
    it("tells the story to the end, with the refusals in plain words and the final tables", async function () {
      const { out } = await capture(() => hre.run("market:demo"));
      for (const heading of [
        "1. Three agents register",
        "2. They list services",
        "3. The translator sets a separate agent wallet",
        "4. The researcher's owner authorises a hot key",
        "5. The hot key spends, and the policy holds",
        "6. A completed task earns a rating",
        "15. Five evaluators stake in the court",
        "16. A rejected task goes to the court",
        "17. The VRF mock answers",
        "18. The jury is drawn",
        "19. The jurors commit, then reveal",
        "20. The split ruling is paid",
        "21. Execute settles the jurors",
        "22. Where things stand",
      ]) {
        expect(out).to.contain(heading);
      }
      expect(out).to.contain("Spend 1: 40.00 USDT to the translator: accepted");
      expect(out).to.contain("Spend 2: 40.00 USDT to the translator: accepted");
      expect(out).to.contain(
        "Spend 3: 40.00 USDT to the translator: Refused: this spend of 40.00 USDT exceeds what the operator may still spend this period (20.00 USDT left).",
      );
      expect(out).to.match(
        /Spend 4: 10\.00 USDT to the coder \(#3\): Refused: agent #3 is not on the operator's allow-list/,
      );
      expect(out).to.match(/Spend 5: .*Refused: the researcher's hot key \(0x.{4}….{4}\) may not spend for agent #2/);
      expect(out).to.contain("the coder's hot key pays the translator (score 50.00%) 25.00 USDT: accepted");
      expect(out).to.match(
        /A stranger's rating of the translator: Refused: a stranger .* has no unused right to rate agent #1/,
      );
      expect(out).to.contain("SPENDER_ROLE");
      expect(out).to.contain("REPORTER_ROLE");
      expect(out).to.contain("Agents:");
      // The translator's score after its tasks, charges and the court's 75% split (chapters 6-21).
      expect(out).to.match(/│ #1\s+│ 0x[0-9a-fA-F]{40} │ 0x[0-9a-fA-F]{40} │ no\s+│ 1\s+│ 85\.50% │/);
      expect(out).to.contain("Operator policies:");
      // The revoked key lost its limits with its authorisation; the coder's key has 25 of 50 left.
      expect(out).to.match(
        /│ #2\s+│ 0x[0-9a-fA-F]{40} │ no\s+│ revoked\s+│ USDT\s+│ none\s+│ none\s+│ -\s+│ 0\.00\s+│/,
      );
      expect(out).to.match(
        /│ #3\s+│ 0x[0-9a-fA-F]{40} │ yes\s+│ 20\S+Z\s+│ USDT\s+│ 25\.00\s+│ 50\.00\s+│ 24h fixed\s+│ 25\.00\s+│/,
      );
      // The TaskEscrow chapters, with balances after each settlement.
      for (const heading of [
        "5. The hot key spends, and the policy holds",
        "6. A completed task earns a rating",
        "7. A task won by bidding",
        "8. A direct hire through a signed agreement",
        "9. An auto-matched task",
        "10. A task closed while open",
        "11. A task that times out",
      ]) {
        expect(out).to.contain(heading);
      }
      expect(out).to.contain("Spend 1: 40.00 USDT to the translator: accepted; task #1 locks it in escrow");
      expect(out).to.contain("Spend 3: 40.00 USDT to the translator: Refused: this spend of 40.00 USDT exceeds");
      expect(out).to.contain("TaskEscrow pays 39.60 USDT to the translator's wallet and keeps 0.40 USDT");
      expect(out).to.contain("The researcher selects the cheaper bid: the coder works on it for 45.00 USDT");
      expect(out).to.contain(
        "Submitting the same signed terms again: Refused: agent #1's agreement nonce 1 was already used",
      );
      expect(out).to.contain("The coder claims it with service #5.");
      expect(out).to.contain("all 40.00 USDT comes back at once");
      expect(out).to.match(/A timeout at once: Refused: task #3's current deadline .* has not passed yet/);
      expect(out).to.contain("the translator's wallet receives 24.75 USDT");
      expect(out).to.contain("1.60 USDT go to the treasury");
      // After the last TaskEscrow settlement: the translator's wallet earned 39.60 + 29.70 + 24.75; the fees were swept.
      expect(out).to.match(/│ 0\.00\s+│ 64\.35\s+│ 94\.05\s+│ 1\.60\s+│ 0\.00\s+│/);
      // The PayPerUse chapters, with balances after each.
      for (const heading of [
        "12. Pay-per-use: the researcher pays the translator per request",
        "13. A signed charge, submitted by a facilitator",
        "14. A session: 1,000 calls, one redemption",
        "15. Five evaluators stake in the court",
        "16. A rejected task goes to the court",
        "17. The VRF mock answers",
        "18. The jury is drawn",
        "19. The jurors commit, then reveal",
        "20. The split ruling is paid",
        "21. Execute settles the jurors",
        "22. Where things stand",
      ]) {
        expect(out).to.contain(heading);
      }
      expect(out).to.contain(
        "Request 3: 1,200 words for 24.00 USDT, receipt #3: 23.76 USDT to the translator's wallet at once, 0.24 USDT fee.",
      );
      expect(out).to.contain("this pair: 3 charges, 1,850 words (as calls), 37.00 USDT; anyone may record them.");
      expect(out).to.match(
        /The revoked hot key paying for a request: Refused: the researcher's hot key \(0x.{4}….{4}\) may not spend for agent #2/,
      );
      expect(out).to.match(/A facilitator \(0x.{4}….{4}\) submits both and pays the gas \([\d,]+ gas\)\. Receipt #4:/);
      expect(out).to.contain("The researcher's owner sent no transaction: its native balance has not moved.");
      expect(out).to.contain(
        "The charge joins the pair's others waiting for Reputation: now 4 charges, 2,350 words, 47.00 USDT.",
      );
      expect(out).to.match(
        /The facilitator submitting it a second time: Refused: nonce 42 of the researcher's owner \(0x.{4}….{4}\) was already used/,
      );
      expect(out).to.contain(
        "The translator's wallet redeems only the last voucher: 20.00 USDT for 1,000 calls, 19.80 USDT to it;",
      );
      expect(out).to.contain(
        "the 0.20 USDT fee stays with the session's deposit in PayPerUse until the session is settled.",
      );
      expect(out).to.match(/1,000 vouchers redeemed in one transaction: [\d,]+ gas used, \d+ gas per call\./);
      expect(out).to.contain("An older voucher (#500) is worth nothing now");
      expect(out).to.match(
        /Settling the session at once: Refused: session #1 runs until .*; it can be settled only after/,
      );
      expect(out).to.contain("A stranger settles the session: the 0.20 USDT fee is booked for the treasury,");
      expect(out).to.contain("10.00 USDT goes back to the researcher agent's wallet (its owner)");
      // Researcher (owner), translator's wallet, treasury, fees, deposits held: after the session settled
      // (the fees: 0.47 from the charges, 0.20 from the session, booked at settlement).
      expect(out).to.match(/│ 378\.00\s+│ 160\.38\s+│ 1\.60\s+│ 0\.67\s+│ 0\.00\s+│/);
      // The charges wait in PayPerUse until the translator's wallet syncs the pair.
      expect(out).to.contain("the 4 charges still wait in PayPerUse");
      expect(out).to.match(
        /Reputation records 2,350 words as calls worth 47\.00 USDT from 4 charges in one call \([\d,]+ gas\),/,
      );
      expect(out).to.contain(
        "Syncing the pair again: Refused: agent #2 has no charges with agent #1 in USDT waiting for Reputation: there is nothing to sync",
      );
      // 250 + 400 + 1,200 + 500 words charged, 1,000 calls in the session; 4 charges and 1 session.
      expect(out).to.match(/│ #1 \(translator\) │ 3,350\s+│ 5\s+│ 162\.00\s+│ 95\.00% │/);
      expect(out).to.contain(
        "The researcher's owner holds 6 unused rights to rate the translator: one per charge (from the sync),",
      );
      expect(out.match(/USDT balances:/g)).to.have.length(11);
      expect(out).to.match(/│ #2\s+│ direct\s+│ #2\s+│ #1\s+│ Closed\s+│ 40\.00 USDT\s+│/);
      expect(out).to.match(/│ #7\s+│ direct\s+│ #2\s+│ #1\s+│ Resolved\s+│ 100\.00 USDT │/);
      expect(out).to.contain("The end.");
    });
  });
});
