import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { ContractTransactionResponse } from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { deployWithAgents, PAUSER_ROLE, REPORTER_ROLE, UPGRADER_ROLE } from "../fixtures/system";
import { Outcome } from "../fixtures/helpers";
import type { Reputation } from "../../typechain-types";

const MAX_WEIGHT = 2n ** 96n - 1n;
const MAX_ABS_VALUE = 10n ** 38n;
const HASH = ethers.id("feedback-file");

/** An all-zero AgentRecord, to spread expected fields over. */
const EMPTY_RECORD = {
  tasksCompleted: 0n,
  tasksAutoCompleted: 0n,
  tasksRefunded: 0n,
  disputesWon: 0n,
  disputesLost: 0n,
  disputesSplit: 0n,
  tasksAsClient: 0n,
  lastActivity: 0n,
  callsServed: 0n,
  settlementsServed: 0n,
  votesCoherent: 0n,
  votesIncoherent: 0n,
  ratingCount: 0n,
  ratingWeight: 0n,
  ratingWeightedBps: 0n,
};

async function recordOf(reputation: Reputation, agentId: bigint) {
  const record = await reputation.getRecord(agentId);
  const keys = Object.keys(EMPTY_RECORD) as (keyof typeof EMPTY_RECORD)[];
  return Object.fromEntries(keys.map((key) => [key, record[key]]));
}

/** Timestamp of the block that mined `tx`. */
async function timestampOf(tx: ContractTransactionResponse) {
  const receipt = await tx.wait();
  return BigInt((await ethers.provider.getBlock(receipt!.blockNumber))!.timestamp);
}

/** Every `name` event Reputation emitted in `tx`, in order, as plain argument arrays. */
async function eventsOf(reputation: Reputation, tx: ContractTransactionResponse, name: string) {
  const receipt = await tx.wait();
  const address = await reputation.getAddress();
  return receipt!.logs
    .filter((log) => log.address === address)
    .map((log) => reputation.interface.parseLog(log))
    .filter((parsed) => parsed !== null && parsed.name === name)
    .map((parsed) => [...parsed!.args]);
}

/** Feedback with only the rating and tags set. */
function rate(
  reputation: Reputation,
  rater: HardhatEthersSigner,
  agentId: bigint,
  value: bigint | number,
  decimals: number,
  tag1 = "",
  tag2 = "",
) {
  return reputation.connect(rater).giveFeedback(agentId, value, decimals, tag1, tag2, "", "", ethers.ZeroHash);
}

describe("Reputation", function () {
  // ------------------------------------------------------------------ fixtures

  /** deployWithAgents, plus a second agent (#4) owned by alice for self-dealing cases. */
  async function withSecondAliceAgent() {
    const s = await deployWithAgents();
    await s.registry.connect(s.alice).getFunction("register(string)")("ipfs://alice-2");
    return { ...s, alice2Id: 4n };
  }

  /**
   * Bob (#2) served two tasks for alice (#1), worth 100 and 300, and two for carol (#3), worth
   * 100 each: alice holds two rights on #2 (total weight 400), carol two (total 200); bob holds
   * two rights on #1 and two on #3.
   */
  async function withRights() {
    const s = await deployWithAgents();
    const usdtAddress = await s.usdt.getAddress();
    const rep = s.reputation.connect(s.reporter);
    await rep.recordTask(s.aliceId, s.bobId, Outcome.Completed, usdtAddress, 100n);
    await rep.recordTask(s.aliceId, s.bobId, Outcome.Completed, usdtAddress, 300n);
    await rep.recordTask(s.carolId, s.bobId, Outcome.Completed, usdtAddress, 100n);
    await rep.recordTask(s.carolId, s.bobId, Outcome.Completed, usdtAddress, 100n);
    return { ...s, usdtAddress };
  }

  /**
   * withRights, then three ratings of bob (#2):
   *   alice #1: 80 (0 decimals), tags "quality"/"speed"
   *   carol #1: 9050 (2 decimals), tags "quality"/""
   *   alice #2: 7000 (2 decimals), tags "uptime"/"speed"
   */
  async function withFeedback() {
    const s = await withRights();
    await rate(s.reputation, s.alice, s.bobId, 80, 0, "quality", "speed");
    await rate(s.reputation, s.carol, s.bobId, 9050, 2, "quality", "");
    await rate(s.reputation, s.alice, s.bobId, 7000, 2, "uptime", "speed");
    return s;
  }

  /**
   * withFeedback, then responses: stranger twice and bob once to (alice, 1); bob to (alice, 2);
   * bob to (carol, 1).
   */
  async function withResponses() {
    const s = await withFeedback();
    const rep = s.reputation;
    await rep.connect(s.stranger).appendResponse(s.bobId, s.alice.address, 1, "ipfs://spam-1", ethers.ZeroHash);
    await rep.connect(s.stranger).appendResponse(s.bobId, s.alice.address, 1, "ipfs://spam-2", ethers.ZeroHash);
    await rep.connect(s.bob).appendResponse(s.bobId, s.alice.address, 1, "ipfs://reply-a1", ethers.ZeroHash);
    await rep.connect(s.bob).appendResponse(s.bobId, s.alice.address, 2, "ipfs://reply-a2", ethers.ZeroHash);
    await rep.connect(s.bob).appendResponse(s.bobId, s.carol.address, 1, "ipfs://reply-c1", ethers.ZeroHash);
    return s;
  }

  // ------------------------------------------------------------------ initialize & metadata

  describe("initialize", function () {
    it("reverts when called a second time on the proxy", async function () {
      const { reputation, admin, registry } = await loadFixture(deployWithAgents);
      await expect(reputation.initialize(admin.address, await registry.getAddress())).to.be.revertedWithCustomError(
        reputation,
        "InvalidInitialization",
      );
    });

    it("reverts when called on the implementation", async function () {
      const { reputation, reputationImpl, admin, registry } = await loadFixture(deployWithAgents);
      const impl = reputation.attach(reputationImpl) as Reputation;
      await expect(impl.initialize(admin.address, await registry.getAddress())).to.be.revertedWithCustomError(
        reputation,
        "InvalidInitialization",
      );
    });

    it("reverts when the admin or the registry is the zero address", async function () {
      const { reputation, reputationImpl, admin, registry } = await loadFixture(deployWithAgents);
      const registryAddress = await registry.getAddress();
      const argsList: [string, string][] = [
        [ethers.ZeroAddress, registryAddress],
        [admin.address, ethers.ZeroAddress],
      ];
      for (const args of argsList) {
        const data = reputation.interface.encodeFunctionData("initialize", args);
        await expect(ethers.deployContract("ERC1967Proxy", [reputationImpl, data])).to.be.revertedWithCustomError(
          reputation,
          "ProtocolZeroAddress",
        );
      }
    });

    it("sets the registry and grants every administrative role to the admin, and no reporter", async function () {
      const { reputation, reputationImpl, registry, dave } = await loadFixture(deployWithAgents);
      const data = reputation.interface.encodeFunctionData("initialize", [dave.address, await registry.getAddress()]);
      const proxy = await ethers.deployContract("ERC1967Proxy", [reputationImpl, data]);
      const fresh = reputation.attach(await proxy.getAddress()) as Reputation;
      await expect(proxy.deploymentTransaction()).to.emit(fresh, "Initialized").withArgs(1n);
      expect(await fresh.getIdentityRegistry()).to.equal(await registry.getAddress());
      expect(await fresh.hasRole(ethers.ZeroHash, dave.address)).to.equal(true);
      expect(await fresh.hasRole(UPGRADER_ROLE, dave.address)).to.equal(true);
      expect(await fresh.hasRole(PAUSER_ROLE, dave.address)).to.equal(true);
      expect(await fresh.hasRole(ethers.id("PARAMETER_ROLE"), dave.address)).to.equal(true);
      expect(await fresh.hasRole(REPORTER_ROLE, dave.address)).to.equal(false);
      expect(await fresh.paused()).to.equal(false);
      await expect(fresh.initialize(dave.address, await registry.getAddress())).to.be.revertedWithCustomError(
        reputation,
        "InvalidInitialization",
      );
    });
  });

  describe("metadata views", function () {
    it("getIdentityRegistry returns the registry", async function () {
      const { reputation, registry } = await loadFixture(deployWithAgents);
      expect(await reputation.getIdentityRegistry()).to.equal(await registry.getAddress());
    });

    it('getVersion and VERSION return "1.0.0"', async function () {
      const { reputation } = await loadFixture(deployWithAgents);
      expect(await reputation.getVersion()).to.equal("1.0.0");
      expect(await reputation.VERSION()).to.equal("1.0.0");
    });

    it("exposes REPORTER_ROLE and NEUTRAL_BPS", async function () {
      const { reputation } = await loadFixture(deployWithAgents);
      expect(await reputation.REPORTER_ROLE()).to.equal(REPORTER_ROLE);
      expect(await reputation.NEUTRAL_BPS()).to.equal(5_000n);
    });
  });

  // ------------------------------------------------------------------ recordTask

  describe("recordTask", function () {
    const cases = [
      { name: "Completed", outcome: Outcome.Completed, provider: { tasksCompleted: 1n }, client: {} },
      { name: "AutoCompleted", outcome: Outcome.AutoCompleted, provider: { tasksAutoCompleted: 1n }, client: {} },
      { name: "Refunded", outcome: Outcome.Refunded, provider: { tasksRefunded: 1n }, client: {} },
      {
        name: "DisputeProviderWon",
        outcome: Outcome.DisputeProviderWon,
        provider: { disputesWon: 1n },
        client: { disputesLost: 1n },
      },
      {
        name: "DisputeClientWon",
        outcome: Outcome.DisputeClientWon,
        provider: { disputesLost: 1n },
        client: { disputesWon: 1n },
      },
      {
        name: "DisputeSplit",
        outcome: Outcome.DisputeSplit,
        provider: { disputesSplit: 1n },
        client: { disputesSplit: 1n },
      },
    ];

    for (const c of cases) {
      describe(`outcome ${c.name}`, function () {
        it("updates both records exactly, and nobody else's", async function () {
          const { reputation, reporter, usdt, aliceId, bobId, carolId } = await loadFixture(deployWithAgents);
          const tx = await reputation
            .connect(reporter)
            .recordTask(aliceId, bobId, c.outcome, await usdt.getAddress(), 1_000n);
          const ts = await timestampOf(tx);
          expect(await recordOf(reputation, aliceId)).to.deep.equal({
            ...EMPTY_RECORD,
            ...c.client,
            tasksAsClient: 1n,
            lastActivity: ts,
          });
          expect(await recordOf(reputation, bobId)).to.deep.equal({
            ...EMPTY_RECORD,
            ...c.provider,
            lastActivity: ts,
          });
          expect(await recordOf(reputation, carolId)).to.deep.equal(EMPTY_RECORD);
        });

        it("adds the amount to both agents' volume in that token only", async function () {
          const { reputation, reporter, usdt, usdg, aliceId, bobId, carolId } = await loadFixture(deployWithAgents);
          const token = await usdt.getAddress();
          await reputation.connect(reporter).recordTask(aliceId, bobId, c.outcome, token, 1_000n);
          expect(await reputation.getVolume(aliceId, token)).to.equal(1_000n);
          expect(await reputation.getVolume(bobId, token)).to.equal(1_000n);
          expect(await reputation.getVolume(carolId, token)).to.equal(0n);
          expect(await reputation.getVolume(aliceId, await usdg.getAddress())).to.equal(0n);
        });

        it("emits TaskRecorded and exactly two FeedbackRightGranted, one for each owner", async function () {
          const { reputation, reporter, usdt, alice, bob, aliceId, bobId } = await loadFixture(deployWithAgents);
          const token = await usdt.getAddress();
          const tx = await reputation.connect(reporter).recordTask(aliceId, bobId, c.outcome, token, 1_000n);
          await expect(tx)
            .to.emit(reputation, "TaskRecorded")
            .withArgs(aliceId, bobId, c.outcome, token, 1_000n, false);
          expect(await eventsOf(reputation, tx, "TaskRecorded")).to.have.length(1);
          expect(await eventsOf(reputation, tx, "FeedbackRightGranted")).to.deep.equal([
            [bobId, alice.address, 1n, 1_000n],
            [aliceId, bob.address, 1n, 1_000n],
          ]);
        });

        it("grants one right to each owner on the other agent", async function () {
          const { reputation, reporter, usdt, alice, bob, carol, aliceId, bobId } = await loadFixture(deployWithAgents);
          await reputation.connect(reporter).recordTask(aliceId, bobId, c.outcome, await usdt.getAddress(), 1_000n);
          expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([1n, 1_000n]);
          expect(await reputation.feedbackRights(aliceId, bob.address)).to.deep.equal([1n, 1_000n]);
          // nobody rates their own agent, and third parties get nothing
          expect(await reputation.feedbackRights(aliceId, alice.address)).to.deep.equal([0n, 0n]);
          expect(await reputation.feedbackRights(bobId, bob.address)).to.deep.equal([0n, 0n]);
          expect(await reputation.feedbackRights(bobId, carol.address)).to.deep.equal([0n, 0n]);
        });
      });
    }

    it("accumulates counters, volume and rights over several tasks and moves lastActivity", async function () {
      const { reputation, reporter, usdt, alice, bob, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      const rep = reputation.connect(reporter);
      await rep.recordTask(aliceId, bobId, Outcome.Completed, token, 100n);
      await rep.recordTask(aliceId, bobId, Outcome.Refunded, token, 250n);
      const ts = await timestampOf(await rep.recordTask(aliceId, bobId, Outcome.Completed, token, 50n));
      expect(await recordOf(reputation, bobId)).to.deep.equal({
        ...EMPTY_RECORD,
        tasksCompleted: 2n,
        tasksRefunded: 1n,
        lastActivity: ts,
      });
      expect(await recordOf(reputation, aliceId)).to.deep.equal({
        ...EMPTY_RECORD,
        tasksAsClient: 3n,
        lastActivity: ts,
      });
      expect(await reputation.getVolume(aliceId, token)).to.equal(400n);
      expect(await reputation.getVolume(bobId, token)).to.equal(400n);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([3n, 400n]);
      expect(await reputation.feedbackRights(aliceId, bob.address)).to.deep.equal([3n, 400n]);
    });

    it("records an agent as client in one task and as provider in another on the same record", async function () {
      const { reputation, reporter, usdt, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      await reputation.connect(reporter).recordTask(aliceId, bobId, Outcome.Completed, token, 10n);
      const ts = await timestampOf(
        await reputation.connect(reporter).recordTask(bobId, aliceId, Outcome.DisputeClientWon, token, 20n),
      );
      expect(await recordOf(reputation, bobId)).to.deep.equal({
        ...EMPTY_RECORD,
        tasksCompleted: 1n,
        disputesWon: 1n,
        tasksAsClient: 1n,
        lastActivity: ts,
      });
      expect(await recordOf(reputation, aliceId)).to.deep.equal({
        ...EMPTY_RECORD,
        disputesLost: 1n,
        tasksAsClient: 1n,
        lastActivity: ts,
      });
      expect(await reputation.getVolume(aliceId, token)).to.equal(30n);
      expect(await reputation.getVolume(bobId, token)).to.equal(30n);
    });

    it("grants rights of weight 0 and no volume for an amount of 0", async function () {
      const { reputation, reporter, usdt, alice, bob, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      const tx = await reputation.connect(reporter).recordTask(aliceId, bobId, Outcome.Completed, token, 0n);
      await expect(tx)
        .to.emit(reputation, "TaskRecorded")
        .withArgs(aliceId, bobId, Outcome.Completed, token, 0n, false);
      expect(await eventsOf(reputation, tx, "FeedbackRightGranted")).to.deep.equal([
        [bobId, alice.address, 1n, 0n],
        [aliceId, bob.address, 1n, 0n],
      ]);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([1n, 0n]);
      expect(await reputation.feedbackRights(aliceId, bob.address)).to.deep.equal([1n, 0n]);
      expect(await reputation.getVolume(aliceId, token)).to.equal(0n);
      expect(await reputation.getVolume(bobId, token)).to.equal(0n);
      expect((await reputation.getRecord(bobId)).tasksCompleted).to.equal(1n);
    });

    it("caps the weight of the rights at 2^96 - 1 but records the full volume", async function () {
      const { reputation, reporter, usdt, alice, bob, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      const huge = 2n ** 200n;
      const tx = await reputation.connect(reporter).recordTask(aliceId, bobId, Outcome.Completed, token, huge);
      await expect(tx)
        .to.emit(reputation, "TaskRecorded")
        .withArgs(aliceId, bobId, Outcome.Completed, token, huge, false);
      expect(await eventsOf(reputation, tx, "FeedbackRightGranted")).to.deep.equal([
        [bobId, alice.address, 1n, MAX_WEIGHT],
        [aliceId, bob.address, 1n, MAX_WEIGHT],
      ]);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([1n, MAX_WEIGHT]);
      expect(await reputation.getVolume(aliceId, token)).to.equal(huge);
      expect(await reputation.getVolume(bobId, token)).to.equal(huge);
    });

    it("grants exactly 2^96 - 1 at the cap boundary (2^96 - 1 and 2^96)", async function () {
      const { reputation, reporter, usdt, alice, aliceId, bobId, carolId, carol } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      await reputation.connect(reporter).recordTask(aliceId, bobId, Outcome.Completed, token, MAX_WEIGHT);
      await reputation.connect(reporter).recordTask(carolId, bobId, Outcome.Completed, token, MAX_WEIGHT + 1n);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([1n, MAX_WEIGHT]);
      expect(await reputation.feedbackRights(bobId, carol.address)).to.deep.equal([1n, MAX_WEIGHT]);
    });

    it("emits TaskRecorded with selfDealing = true and changes nothing when both agents share an owner", async function () {
      const { reputation, reporter, usdt, alice, aliceId, alice2Id } = await loadFixture(withSecondAliceAgent);
      const token = await usdt.getAddress();
      for (const outcome of Object.values(Outcome)) {
        const tx = reputation.connect(reporter).recordTask(aliceId, alice2Id, outcome, token, 1_000n);
        await expect(tx)
          .to.emit(reputation, "TaskRecorded")
          .withArgs(aliceId, alice2Id, outcome, token, 1_000n, true)
          .and.not.to.emit(reputation, "FeedbackRightGranted");
      }
      expect(await recordOf(reputation, aliceId)).to.deep.equal(EMPTY_RECORD);
      expect(await recordOf(reputation, alice2Id)).to.deep.equal(EMPTY_RECORD);
      expect(await reputation.getVolume(aliceId, token)).to.equal(0n);
      expect(await reputation.getVolume(alice2Id, token)).to.equal(0n);
      expect(await reputation.feedbackRights(aliceId, alice.address)).to.deep.equal([0n, 0n]);
      expect(await reputation.feedbackRights(alice2Id, alice.address)).to.deep.equal([0n, 0n]);
      expect(await reputation.score(alice2Id)).to.equal(5_000n);
    });

    it("reverts when the caller lacks REPORTER_ROLE (stranger, admin)", async function () {
      const { reputation, stranger, admin, usdt, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      for (const caller of [stranger, admin]) {
        await expect(reputation.connect(caller).recordTask(aliceId, bobId, Outcome.Completed, token, 1n))
          .to.be.revertedWithCustomError(reputation, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, REPORTER_ROLE);
      }
    });

    it("reverts when client and provider are the same agent", async function () {
      const { reputation, reporter, usdt, aliceId } = await loadFixture(deployWithAgents);
      await expect(
        reputation.connect(reporter).recordTask(aliceId, aliceId, Outcome.Completed, await usdt.getAddress(), 1n),
      )
        .to.be.revertedWithCustomError(reputation, "ReputationSameAgent")
        .withArgs(aliceId);
    });

    it("reverts when the client agent does not exist", async function () {
      const { reputation, reporter, usdt, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      await expect(reputation.connect(reporter).recordTask(99n, bobId, Outcome.Completed, token, 1n))
        .to.be.revertedWithCustomError(reputation, "ReputationUnknownAgent")
        .withArgs(99n);
      await expect(reputation.connect(reporter).recordTask(0n, bobId, Outcome.Completed, token, 1n))
        .to.be.revertedWithCustomError(reputation, "ReputationUnknownAgent")
        .withArgs(0n);
    });

    it("reverts when the provider agent does not exist", async function () {
      const { reputation, reporter, usdt, aliceId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      await expect(reputation.connect(reporter).recordTask(aliceId, 4n, Outcome.Completed, token, 1n))
        .to.be.revertedWithCustomError(reputation, "ReputationUnknownAgent")
        .withArgs(4n);
      await expect(reputation.connect(reporter).recordTask(aliceId, 0n, Outcome.Completed, token, 1n))
        .to.be.revertedWithCustomError(reputation, "ReputationUnknownAgent")
        .withArgs(0n);
    });

    it("reverts when the outcome is out of the enum's range", async function () {
      const { reputation, reporter, usdt, aliceId, bobId } = await loadFixture(deployWithAgents);
      await expect(reputation.connect(reporter).recordTask(aliceId, bobId, 6, await usdt.getAddress(), 1n)).to.be
        .reverted;
    });
  });

  // ------------------------------------------------------------------ recordCalls

  describe("recordCalls", function () {
    it("updates the provider's calls, settlements and both lastActivity, and nothing else", async function () {
      const { reputation, reporter, usdt, aliceId, bobId, carolId } = await loadFixture(deployWithAgents);
      const tx = await reputation.connect(reporter).recordCalls(aliceId, bobId, await usdt.getAddress(), 7n, 350n, 1n);
      const ts = await timestampOf(tx);
      expect(await recordOf(reputation, bobId)).to.deep.equal({
        ...EMPTY_RECORD,
        callsServed: 7n,
        settlementsServed: 1n,
        lastActivity: ts,
      });
      expect(await recordOf(reputation, aliceId)).to.deep.equal({ ...EMPTY_RECORD, lastActivity: ts });
      expect(await recordOf(reputation, carolId)).to.deep.equal(EMPTY_RECORD);
    });

    it("accumulates over several settlements", async function () {
      const { reputation, reporter, usdt, alice, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      await reputation.connect(reporter).recordCalls(aliceId, bobId, token, 7n, 350n, 1n);
      const ts = await timestampOf(await reputation.connect(reporter).recordCalls(aliceId, bobId, token, 3n, 50n, 1n));
      expect(await recordOf(reputation, bobId)).to.deep.equal({
        ...EMPTY_RECORD,
        callsServed: 10n,
        settlementsServed: 2n,
        lastActivity: ts,
      });
      expect(await reputation.getVolume(aliceId, token)).to.equal(400n);
      expect(await reputation.getVolume(bobId, token)).to.equal(400n);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([2n, 400n]);
    });

    it("adds the amount to both agents' volume", async function () {
      const { reputation, reporter, usdt, usdg, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      await reputation.connect(reporter).recordCalls(aliceId, bobId, token, 7n, 350n, 1n);
      expect(await reputation.getVolume(aliceId, token)).to.equal(350n);
      expect(await reputation.getVolume(bobId, token)).to.equal(350n);
      expect(await reputation.getVolume(bobId, await usdg.getAddress())).to.equal(0n);
    });

    it("emits CallsRecorded and one FeedbackRightGranted for the payer's owner on the provider", async function () {
      const { reputation, reporter, usdt, alice, bob, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      const tx = await reputation.connect(reporter).recordCalls(aliceId, bobId, token, 7n, 350n, 1n);
      await expect(tx).to.emit(reputation, "CallsRecorded").withArgs(aliceId, bobId, token, 7n, 350n, 1n, false);
      expect(await eventsOf(reputation, tx, "CallsRecorded")).to.have.length(1);
      expect(await eventsOf(reputation, tx, "FeedbackRightGranted")).to.deep.equal([[bobId, alice.address, 1n, 350n]]);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([1n, 350n]);
      expect(await reputation.feedbackRights(aliceId, bob.address)).to.deep.equal([0n, 0n]);
    });

    it("records several settlements at once, granting one right per settlement that share the amount", async function () {
      const { reputation, reporter, usdt, alice, bob, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      const tx = await reputation.connect(reporter).recordCalls(aliceId, bobId, token, 9n, 350n, 5n);
      await expect(tx).to.emit(reputation, "CallsRecorded").withArgs(aliceId, bobId, token, 9n, 350n, 5n, false);
      expect(await eventsOf(reputation, tx, "CallsRecorded")).to.have.length(1);
      expect(await eventsOf(reputation, tx, "FeedbackRightGranted")).to.deep.equal([[bobId, alice.address, 5n, 350n]]);
      const ts = await timestampOf(tx);
      expect(await recordOf(reputation, bobId)).to.deep.equal({
        ...EMPTY_RECORD,
        callsServed: 9n,
        settlementsServed: 5n,
        lastActivity: ts,
      });
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([5n, 350n]);
      expect(await reputation.feedbackRights(aliceId, bob.address)).to.deep.equal([0n, 0n]);
      expect(await reputation.getVolume(bobId, token)).to.equal(350n);
      expect(await reputation.getVolume(aliceId, token)).to.equal(350n);

      // and adds up with later ones
      await reputation.connect(reporter).recordCalls(aliceId, bobId, token, 4n, 100n, 2n);
      const record = await reputation.getRecord(bobId);
      expect([record.callsServed, record.settlementsServed]).to.deep.equal([13n, 7n]);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([7n, 450n]);
    });

    it("weighs each rating from those rights at the mean weight of the unused ones, the last taking the rest", async function () {
      const { reputation, reporter, usdt, alice, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      await reputation.connect(reporter).recordCalls(aliceId, bobId, token, 3n, 350n, 3n);
      // 350 / 3 = 116, then 234 / 2 = 117, then the last 117
      const steps = [
        { value: 100n, weight: 116n, rights: [2n, 234n] },
        { value: 50n, weight: 117n, rights: [1n, 117n] },
        { value: 0n, weight: 117n, rights: [0n, 0n] },
      ];
      let ratingWeight = 0n;
      let ratingWeightedBps = 0n;
      for (const [i, step] of steps.entries()) {
        await expect(rate(reputation, alice, bobId, step.value, 0))
          .to.emit(reputation, "NewFeedback")
          .withArgs(bobId, alice.address, BigInt(i + 1), step.value, 0n, "", "", "", "", "", ethers.ZeroHash);
        ratingWeight += step.weight;
        ratingWeightedBps += step.weight * step.value * 100n;
        const record = await reputation.getRecord(bobId);
        expect([record.ratingCount, record.ratingWeight, record.ratingWeightedBps]).to.deep.equal([
          BigInt(i + 1),
          ratingWeight,
          ratingWeightedBps,
        ]);
        expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal(step.rights);
      }
      expect(ratingWeight).to.equal(350n);
      await expect(rate(reputation, alice, bobId, 100, 0))
        .to.be.revertedWithCustomError(reputation, "ReputationNoFeedbackRight")
        .withArgs(bobId, alice.address);
    });

    it("caps the total weight of several settlements' rights at 2^96 - 1", async function () {
      const { reputation, reporter, usdt, alice, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      const huge = 2n ** 160n;
      const tx = await reputation.connect(reporter).recordCalls(aliceId, bobId, token, 4n, huge, 4n);
      expect(await eventsOf(reputation, tx, "FeedbackRightGranted")).to.deep.equal([
        [bobId, alice.address, 4n, MAX_WEIGHT],
      ]);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([4n, MAX_WEIGHT]);
      await rate(reputation, alice, bobId, 100, 0);
      expect((await reputation.getRecord(bobId)).ratingWeight).to.equal(MAX_WEIGHT / 4n);
    });

    it("caps the right's weight at 2^96 - 1", async function () {
      const { reputation, reporter, usdt, alice, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      const huge = 2n ** 160n;
      const tx = await reputation.connect(reporter).recordCalls(aliceId, bobId, token, 1n, huge, 1n);
      expect(await eventsOf(reputation, tx, "FeedbackRightGranted")).to.deep.equal([
        [bobId, alice.address, 1n, MAX_WEIGHT],
      ]);
      expect(await reputation.getVolume(bobId, token)).to.equal(huge);
    });

    it("emits CallsRecorded with selfDealing = true and changes nothing when both agents share an owner", async function () {
      const { reputation, reporter, usdt, alice, aliceId, alice2Id } = await loadFixture(withSecondAliceAgent);
      const token = await usdt.getAddress();
      await expect(reputation.connect(reporter).recordCalls(aliceId, alice2Id, token, 7n, 350n, 1n))
        .to.emit(reputation, "CallsRecorded")
        .withArgs(aliceId, alice2Id, token, 7n, 350n, 1n, true)
        .and.not.to.emit(reputation, "FeedbackRightGranted");
      expect(await recordOf(reputation, aliceId)).to.deep.equal(EMPTY_RECORD);
      expect(await recordOf(reputation, alice2Id)).to.deep.equal(EMPTY_RECORD);
      expect(await reputation.getVolume(aliceId, token)).to.equal(0n);
      expect(await reputation.getVolume(alice2Id, token)).to.equal(0n);
      expect(await reputation.feedbackRights(alice2Id, alice.address)).to.deep.equal([0n, 0n]);
    });

    it("reverts when the number of calls, the amount or the number of settlements is zero", async function () {
      const { reputation, reporter, usdt, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      await expect(
        reputation.connect(reporter).recordCalls(aliceId, bobId, token, 0n, 350n, 1n),
      ).to.be.revertedWithCustomError(reputation, "ReputationZeroAmount");
      await expect(
        reputation.connect(reporter).recordCalls(aliceId, bobId, token, 7n, 0n, 1n),
      ).to.be.revertedWithCustomError(reputation, "ReputationZeroAmount");
      await expect(
        reputation.connect(reporter).recordCalls(aliceId, bobId, token, 7n, 350n, 0n),
      ).to.be.revertedWithCustomError(reputation, "ReputationZeroAmount");
    });

    it("reverts when the caller lacks REPORTER_ROLE (stranger, admin)", async function () {
      const { reputation, stranger, admin, usdt, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      for (const caller of [stranger, admin]) {
        await expect(reputation.connect(caller).recordCalls(aliceId, bobId, token, 1n, 1n, 1n))
          .to.be.revertedWithCustomError(reputation, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, REPORTER_ROLE);
      }
    });

    it("reverts when payer and provider are the same agent", async function () {
      const { reputation, reporter, usdt, bobId } = await loadFixture(deployWithAgents);
      await expect(reputation.connect(reporter).recordCalls(bobId, bobId, await usdt.getAddress(), 1n, 1n, 1n))
        .to.be.revertedWithCustomError(reputation, "ReputationSameAgent")
        .withArgs(bobId);
    });

    it("reverts when the payer or the provider does not exist", async function () {
      const { reputation, reporter, usdt, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      await expect(reputation.connect(reporter).recordCalls(42n, bobId, token, 1n, 1n, 1n))
        .to.be.revertedWithCustomError(reputation, "ReputationUnknownAgent")
        .withArgs(42n);
      await expect(reputation.connect(reporter).recordCalls(aliceId, 42n, token, 1n, 1n, 1n))
        .to.be.revertedWithCustomError(reputation, "ReputationUnknownAgent")
        .withArgs(42n);
    });
  });

  // ------------------------------------------------------------------ recordVote

  describe("recordVote", function () {
    it("counts coherent and incoherent votes separately and sets lastActivity", async function () {
      const { reputation, reporter, carolId } = await loadFixture(deployWithAgents);
      const rep = reputation.connect(reporter);
      await rep.recordVote(carolId, true);
      await rep.recordVote(carolId, false);
      const ts = await timestampOf(await rep.recordVote(carolId, true));
      expect(await recordOf(reputation, carolId)).to.deep.equal({
        ...EMPTY_RECORD,
        votesCoherent: 2n,
        votesIncoherent: 1n,
        lastActivity: ts,
      });
    });

    it("emits VoteRecorded", async function () {
      const { reputation, reporter, carolId } = await loadFixture(deployWithAgents);
      await expect(reputation.connect(reporter).recordVote(carolId, true))
        .to.emit(reputation, "VoteRecorded")
        .withArgs(carolId, true);
      await expect(reputation.connect(reporter).recordVote(carolId, false))
        .to.emit(reputation, "VoteRecorded")
        .withArgs(carolId, false);
    });

    it("does not change the score", async function () {
      const { reputation, reporter, carolId } = await loadFixture(deployWithAgents);
      await reputation.connect(reporter).recordVote(carolId, false);
      await reputation.connect(reporter).recordVote(carolId, false);
      expect(await reputation.score(carolId)).to.equal(5_000n);
    });

    it("reverts when the caller lacks REPORTER_ROLE (stranger, admin)", async function () {
      const { reputation, stranger, admin, carolId } = await loadFixture(deployWithAgents);
      for (const caller of [stranger, admin]) {
        await expect(reputation.connect(caller).recordVote(carolId, true))
          .to.be.revertedWithCustomError(reputation, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, REPORTER_ROLE);
      }
    });
  });

  // ------------------------------------------------------------------ giveFeedback

  describe("giveFeedback", function () {
    it("emits NewFeedback with exact args", async function () {
      const { reputation, alice, bobId } = await loadFixture(withRights);
      await expect(
        reputation
          .connect(alice)
          .giveFeedback(bobId, 87, 0, "quality", "speed", "https://bob.example/api", "ipfs://feedback-1", HASH),
      )
        .to.emit(reputation, "NewFeedback")
        .withArgs(
          bobId,
          alice.address,
          1n,
          87n,
          0n,
          "quality",
          "quality",
          "speed",
          "https://bob.example/api",
          "ipfs://feedback-1",
          HASH,
        );
    });

    it("indexes tag1 by its keccak256 hash in the event topics", async function () {
      const { reputation, alice, bobId } = await loadFixture(withRights);
      const tx = await rate(reputation, alice, bobId, 87, 0, "quality", "speed");
      const receipt = await tx.wait();
      const topic = reputation.interface.getEvent("NewFeedback").topicHash;
      const log = receipt!.logs.find((l) => l.topics[0] === topic)!;
      expect(log.topics).to.deep.equal([
        topic,
        ethers.toBeHex(bobId, 32),
        ethers.zeroPadValue(alice.address.toLowerCase(), 32),
        ethers.id("quality"),
      ]);
    });

    it("consumes exactly one right, of the average weight of the unused rights", async function () {
      const { reputation, alice, bobId } = await loadFixture(withRights);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([2n, 400n]);
      await rate(reputation, alice, bobId, 100, 0);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([1n, 200n]);
      expect((await reputation.getRecord(bobId)).ratingWeight).to.equal(200n);
      await rate(reputation, alice, bobId, 100, 0);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([0n, 0n]);
      expect((await reputation.getRecord(bobId)).ratingWeight).to.equal(400n);
    });

    it("gives the last right the remaining weight when the average rounds down", async function () {
      const { reputation, reporter, usdt, alice, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      await reputation.connect(reporter).recordTask(aliceId, bobId, Outcome.Completed, token, 100n);
      await reputation.connect(reporter).recordTask(aliceId, bobId, Outcome.Completed, token, 101n);
      await rate(reputation, alice, bobId, 100, 0);
      expect((await reputation.getRecord(bobId)).ratingWeight).to.equal(100n); // 201 / 2
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([1n, 101n]);
      await rate(reputation, alice, bobId, 100, 0);
      expect((await reputation.getRecord(bobId)).ratingWeight).to.equal(201n);
    });

    it("updates the rated agent's rating aggregates exactly", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withRights);
      await rate(reputation, alice, bobId, 80, 0); // weight 200, 8,000 bps
      await rate(reputation, carol, bobId, 9050, 2); // weight 100, 9,050 bps
      const record = await reputation.getRecord(bobId);
      expect(record.ratingCount).to.equal(2n);
      expect(record.ratingWeight).to.equal(300n);
      expect(record.ratingWeightedBps).to.equal(200n * 8_000n + 100n * 9_050n);
      // the counters set by recordTask are untouched
      expect(record.tasksCompleted).to.equal(4n);
    });

    it("numbers feedback from 1 per client and lists each client once, in order of first feedback", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withRights);
      expect(await reputation.getLastIndex(bobId, alice.address)).to.equal(0n);
      expect(await reputation.getClients(bobId)).to.deep.equal([]);

      await expect(rate(reputation, alice, bobId, 1, 0))
        .to.emit(reputation, "NewFeedback")
        .withArgs(bobId, alice.address, 1n, 1n, 0n, "", "", "", "", "", ethers.ZeroHash);
      await expect(rate(reputation, carol, bobId, 2, 0))
        .to.emit(reputation, "NewFeedback")
        .withArgs(bobId, carol.address, 1n, 2n, 0n, "", "", "", "", "", ethers.ZeroHash);
      await expect(rate(reputation, alice, bobId, 3, 0))
        .to.emit(reputation, "NewFeedback")
        .withArgs(bobId, alice.address, 2n, 3n, 0n, "", "", "", "", "", ethers.ZeroHash);

      expect(await reputation.getLastIndex(bobId, alice.address)).to.equal(2n);
      expect(await reputation.getLastIndex(bobId, carol.address)).to.equal(1n);
      expect(await reputation.getClients(bobId)).to.deep.equal([alice.address, carol.address]);
    });

    it("stores the feedback for readFeedback, with empty tags allowed", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withRights);
      await rate(reputation, alice, bobId, -25, 1, "quality", "speed");
      await rate(reputation, carol, bobId, 42, 0);
      expect(await reputation.readFeedback(bobId, alice.address, 1)).to.deep.equal([
        -25n,
        1n,
        "quality",
        "speed",
        false,
      ]);
      expect(await reputation.readFeedback(bobId, carol.address, 1)).to.deep.equal([42n, 0n, "", "", false]);
    });

    it("lets the provider's owner rate the client agent", async function () {
      const { reputation, bob, aliceId } = await loadFixture(withRights);
      await expect(rate(reputation, bob, aliceId, 90, 0))
        .to.emit(reputation, "NewFeedback")
        .withArgs(aliceId, bob.address, 1n, 90n, 0n, "", "", "", "", "", ethers.ZeroHash);
      expect(await reputation.feedbackRights(aliceId, bob.address)).to.deep.equal([1n, 200n]);
    });

    it("keeps the right with the owner address at settlement after the rater's agent changes hands", async function () {
      const { reputation, registry, alice, dave, aliceId, bobId } = await loadFixture(withRights);
      await registry.connect(alice).transferFrom(alice.address, dave.address, aliceId);
      await expect(rate(reputation, dave, bobId, 50, 0))
        .to.be.revertedWithCustomError(reputation, "ReputationNoFeedbackRight")
        .withArgs(bobId, dave.address);
      await expect(rate(reputation, alice, bobId, 50, 0)).to.emit(reputation, "NewFeedback");
    });

    it("counts a rating of weight 0 (from an amount-0 task) without moving the mean", async function () {
      const { reputation, reporter, usdt, alice, aliceId, bobId } = await loadFixture(deployWithAgents);
      await reputation.connect(reporter).recordTask(aliceId, bobId, Outcome.Completed, await usdt.getAddress(), 0n);
      await rate(reputation, alice, bobId, 0, 0);
      const record = await reputation.getRecord(bobId);
      expect(record.ratingCount).to.equal(1n);
      expect(record.ratingWeight).to.equal(0n);
      expect(record.ratingWeightedBps).to.equal(0n);
      expect(await reputation.score(bobId)).to.equal(5_000n);
    });

    it("works with a right of the maximum weight", async function () {
      const { reputation, reporter, usdt, alice, aliceId, bobId } = await loadFixture(deployWithAgents);
      await reputation
        .connect(reporter)
        .recordTask(aliceId, bobId, Outcome.Completed, await usdt.getAddress(), 2n ** 200n);
      await rate(reputation, alice, bobId, 100, 0);
      const record = await reputation.getRecord(bobId);
      expect(record.ratingWeight).to.equal(MAX_WEIGHT);
      expect(record.ratingWeightedBps).to.equal(MAX_WEIGHT * 10_000n);
      expect(await reputation.score(bobId)).to.equal(10_000n);
    });

    it("reverts when the rater holds no right", async function () {
      const { reputation, stranger, bobId } = await loadFixture(withRights);
      await expect(rate(reputation, stranger, bobId, 50, 0))
        .to.be.revertedWithCustomError(reputation, "ReputationNoFeedbackRight")
        .withArgs(bobId, stranger.address);
    });

    it("reverts when the rater has used all its rights", async function () {
      const { reputation, carol, bobId } = await loadFixture(withRights);
      await rate(reputation, carol, bobId, 50, 0);
      await rate(reputation, carol, bobId, 50, 0);
      await expect(rate(reputation, carol, bobId, 50, 0))
        .to.be.revertedWithCustomError(reputation, "ReputationNoFeedbackRight")
        .withArgs(bobId, carol.address);
    });

    it("reverts when the rater's rights are on another agent", async function () {
      const { reputation, alice, carolId } = await loadFixture(withRights);
      await expect(rate(reputation, alice, carolId, 50, 0))
        .to.be.revertedWithCustomError(reputation, "ReputationNoFeedbackRight")
        .withArgs(carolId, alice.address);
    });

    it("reverts when the agent's owner, who holds no right on it, rates it", async function () {
      const { reputation, bob, bobId } = await loadFixture(withRights);
      await expect(rate(reputation, bob, bobId, 100, 0))
        .to.be.revertedWithCustomError(reputation, "ReputationNoFeedbackRight")
        .withArgs(bobId, bob.address);
    });

    it("keeps a right valid after the rater acquires the rated agent (the right is about the interaction)", async function () {
      const { reputation, registry, alice, bob, bobId } = await loadFixture(withRights);
      await registry.connect(bob).transferFrom(bob.address, alice.address, bobId);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([2n, 400n]);
      await expect(rate(reputation, alice, bobId, 100, 0))
        .to.emit(reputation, "NewFeedback")
        .withArgs(bobId, alice.address, 1n, 100n, 0n, "", "", "", "", "", ethers.ZeroHash);
      // and the new owner gets no right from the transfer itself
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([1n, 200n]);
    });

    it("reverts when the agent does not exist (nobody holds a right on it)", async function () {
      const { reputation, alice } = await loadFixture(withRights);
      await expect(rate(reputation, alice, 99n, 50, 0))
        .to.be.revertedWithCustomError(reputation, "ReputationNoFeedbackRight")
        .withArgs(99n, alice.address);
      await expect(rate(reputation, alice, 0n, 50, 0))
        .to.be.revertedWithCustomError(reputation, "ReputationNoFeedbackRight")
        .withArgs(0n, alice.address);
    });

    it("reverts when valueDecimals is above 18", async function () {
      const { reputation, alice, bobId } = await loadFixture(withRights);
      await expect(rate(reputation, alice, bobId, 50, 19))
        .to.be.revertedWithCustomError(reputation, "ReputationBadValue")
        .withArgs(50n, 19n);
    });

    it("reverts when |value| is above 1e38", async function () {
      const { reputation, alice, bobId } = await loadFixture(withRights);
      await expect(rate(reputation, alice, bobId, MAX_ABS_VALUE + 1n, 0))
        .to.be.revertedWithCustomError(reputation, "ReputationBadValue")
        .withArgs(MAX_ABS_VALUE + 1n, 0n);
      await expect(rate(reputation, alice, bobId, -MAX_ABS_VALUE - 1n, 18))
        .to.be.revertedWithCustomError(reputation, "ReputationBadValue")
        .withArgs(-MAX_ABS_VALUE - 1n, 18n);
    });

    it("accepts |value| of exactly 1e38 and 18 decimals", async function () {
      const { reputation, alice, bobId } = await loadFixture(withRights);
      await rate(reputation, alice, bobId, MAX_ABS_VALUE, 18);
      await rate(reputation, alice, bobId, -MAX_ABS_VALUE, 0);
      expect((await reputation.readFeedback(bobId, alice.address, 1)).value).to.equal(MAX_ABS_VALUE);
      expect((await reputation.readFeedback(bobId, alice.address, 1)).valueDecimals).to.equal(18n);
      expect((await reputation.readFeedback(bobId, alice.address, 2)).value).to.equal(-MAX_ABS_VALUE);
      // 1e38 at 18 decimals is 1e20 %, clamped to 100 %; -1e38 is 0 %
      expect((await reputation.getRecord(bobId)).ratingWeightedBps).to.equal(200n * 10_000n);
    });

    it("reverts when tag1 or tag2 is longer than 64 bytes", async function () {
      const { reputation, alice, bobId } = await loadFixture(withRights);
      await expect(rate(reputation, alice, bobId, 1, 0, "a".repeat(65), ""))
        .to.be.revertedWithCustomError(reputation, "ReputationInputTooLong")
        .withArgs(65n, 64n);
      await expect(rate(reputation, alice, bobId, 1, 0, "", "b".repeat(65)))
        .to.be.revertedWithCustomError(reputation, "ReputationInputTooLong")
        .withArgs(65n, 64n);
      // the limit is in bytes, not characters: 33 two-byte characters are 66 bytes
      await expect(rate(reputation, alice, bobId, 1, 0, "é".repeat(33), ""))
        .to.be.revertedWithCustomError(reputation, "ReputationInputTooLong")
        .withArgs(66n, 64n);
    });

    it("reverts when the endpoint is longer than 512 bytes", async function () {
      const { reputation, alice, bobId } = await loadFixture(withRights);
      await expect(reputation.connect(alice).giveFeedback(bobId, 1, 0, "", "", "e".repeat(513), "", ethers.ZeroHash))
        .to.be.revertedWithCustomError(reputation, "ReputationInputTooLong")
        .withArgs(513n, 512n);
    });

    it("reverts when the feedbackURI is longer than 2,048 bytes", async function () {
      const { reputation, alice, bobId } = await loadFixture(withRights);
      await expect(reputation.connect(alice).giveFeedback(bobId, 1, 0, "", "", "", "u".repeat(2049), ethers.ZeroHash))
        .to.be.revertedWithCustomError(reputation, "ReputationInputTooLong")
        .withArgs(2049n, 2048n);
    });

    it("accepts every string at exactly its maximum length", async function () {
      const { reputation, alice, bobId } = await loadFixture(withRights);
      const [tag1, tag2, endpoint, uri] = ["a".repeat(64), "b".repeat(64), "e".repeat(512), "u".repeat(2048)];
      await expect(reputation.connect(alice).giveFeedback(bobId, 1, 0, tag1, tag2, endpoint, uri, HASH))
        .to.emit(reputation, "NewFeedback")
        .withArgs(bobId, alice.address, 1n, 1n, 0n, tag1, tag1, tag2, endpoint, uri, HASH);
      expect(await reputation.readFeedback(bobId, alice.address, 1)).to.deep.equal([1n, 0n, tag1, tag2, false]);
    });

    describe("tag storage (packed up to 30 bytes in total, separate beyond)", function () {
      const tagCases: [string, string, string][] = [
        ["tag1 of 30 bytes alone", "t".repeat(30), ""],
        ["tag2 of 30 bytes alone", "", "u".repeat(30)],
        ["15 + 15 bytes", "a".repeat(15), "b".repeat(15)],
        ["16 + 15 bytes", "a".repeat(16), "b".repeat(15)],
        ["tag1 of 31 bytes alone", "t".repeat(31), ""],
        ["64 + 64 bytes", "x".repeat(64), "y".repeat(64)],
        ["multi-byte characters, 30 bytes", "é".repeat(15), ""],
        ["multi-byte characters, 31 bytes", "é".repeat(15), "z"],
        ["NUL bytes", "a\u0000b", "\u0000"],
        ["single characters", "q", "s"],
      ];
      for (const [name, tag1, tag2] of tagCases) {
        it(`round-trips ${name} through readFeedback, readAllFeedback and the filters`, async function () {
          const { reputation, alice, carol, bobId } = await loadFixture(withRights);
          await rate(reputation, carol, bobId, 10, 0, "other", "other");
          await expect(rate(reputation, alice, bobId, 70, 0, tag1, tag2))
            .to.emit(reputation, "NewFeedback")
            .withArgs(bobId, alice.address, 1n, 70n, 0n, tag1, tag1, tag2, "", "", ethers.ZeroHash);
          expect(await reputation.readFeedback(bobId, alice.address, 1)).to.deep.equal([70n, 0n, tag1, tag2, false]);

          const [clients, , , , tag1s, tag2s] = await reputation.readAllFeedback(bobId, [], tag1, tag2, false);
          expect([...clients]).to.deep.equal([alice.address]);
          expect([...tag1s]).to.deep.equal([tag1]);
          expect([...tag2s]).to.deep.equal([tag2]);

          const all = [alice.address, carol.address];
          expect(await reputation.getSummary(bobId, all, tag1, tag2)).to.deep.equal([1n, 70n, 0n]);
          if (tag1 !== "") {
            expect(await reputation.getSummary(bobId, all, tag1, "")).to.deep.equal([1n, 70n, 0n]);
            expect(await reputation.getSummary(bobId, all, tag1 + "!", "")).to.deep.equal([0n, 0n, 0n]);
            expect(await reputation.getSummary(bobId, all, tag1.slice(0, -1) || "?", "")).to.deep.equal([0n, 0n, 0n]);
          }
          if (tag2 !== "") {
            expect(await reputation.getSummary(bobId, all, "", tag2)).to.deep.equal([1n, 70n, 0n]);
            expect(await reputation.getSummary(bobId, all, "", tag2 + "!")).to.deep.equal([0n, 0n, 0n]);
          }
        });
      }
    });

    it("checks the value and lengths before the right", async function () {
      const { reputation, stranger, bobId } = await loadFixture(withRights);
      await expect(rate(reputation, stranger, bobId, 1, 19))
        .to.be.revertedWithCustomError(reputation, "ReputationBadValue")
        .withArgs(1n, 19n);
      await expect(rate(reputation, stranger, bobId, 1, 0, "a".repeat(65)))
        .to.be.revertedWithCustomError(reputation, "ReputationInputTooLong")
        .withArgs(65n, 64n);
    });
  });

  // ------------------------------------------------------------------ readFeedback

  describe("readFeedback", function () {
    it("reads revoked feedback with isRevoked = true", async function () {
      const { reputation, alice, bobId } = await loadFixture(withFeedback);
      await reputation.connect(alice).revokeFeedback(bobId, 2);
      expect(await reputation.readFeedback(bobId, alice.address, 2)).to.deep.equal([
        7000n,
        2n,
        "uptime",
        "speed",
        true,
      ]);
      expect(await reputation.readFeedback(bobId, alice.address, 1)).to.deep.equal([
        80n,
        0n,
        "quality",
        "speed",
        false,
      ]);
    });

    it("reverts when the feedback does not exist (index 0, above last, unknown client)", async function () {
      const { reputation, alice, stranger, bobId } = await loadFixture(withFeedback);
      for (const [client, index] of [
        [alice.address, 0n],
        [alice.address, 3n],
        [stranger.address, 1n],
      ] as const) {
        await expect(reputation.readFeedback(bobId, client, index))
          .to.be.revertedWithCustomError(reputation, "ReputationUnknownFeedback")
          .withArgs(bobId, client, index);
      }
    });
  });

  // ------------------------------------------------------------------ revokeFeedback

  describe("revokeFeedback", function () {
    it("emits FeedbackRevoked and marks the feedback revoked", async function () {
      const { reputation, alice, bobId } = await loadFixture(withFeedback);
      await expect(reputation.connect(alice).revokeFeedback(bobId, 1))
        .to.emit(reputation, "FeedbackRevoked")
        .withArgs(bobId, alice.address, 1n);
      expect((await reputation.readFeedback(bobId, alice.address, 1)).isRevoked).to.equal(true);
      expect((await reputation.readFeedback(bobId, alice.address, 2)).isRevoked).to.equal(false);
    });

    it("takes the rating out of the aggregates exactly", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withFeedback);
      // alice#1: 80 % weight 200; carol#1: 90.50 % weight 100; alice#2: 70 % weight 200
      const before = await reputation.getRecord(bobId);
      expect(before.ratingCount).to.equal(3n);
      expect(before.ratingWeight).to.equal(500n);
      expect(before.ratingWeightedBps).to.equal(200n * 8_000n + 100n * 9_050n + 200n * 7_000n);

      await reputation.connect(alice).revokeFeedback(bobId, 1);
      const after = await reputation.getRecord(bobId);
      expect(after.ratingCount).to.equal(2n);
      expect(after.ratingWeight).to.equal(300n);
      expect(after.ratingWeightedBps).to.equal(100n * 9_050n + 200n * 7_000n);

      await reputation.connect(carol).revokeFeedback(bobId, 1);
      await reputation.connect(alice).revokeFeedback(bobId, 2);
      const none = await reputation.getRecord(bobId);
      expect([none.ratingCount, none.ratingWeight, none.ratingWeightedBps]).to.deep.equal([0n, 0n, 0n]);
      // 4 completed tasks, neutral mean again
      expect(await reputation.score(bobId)).to.equal(5_000n);
    });

    it("does not give the right back and keeps the index and client list", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withFeedback);
      expect(await reputation.feedbackRights(bobId, carol.address)).to.deep.equal([1n, 100n]);
      await reputation.connect(carol).revokeFeedback(bobId, 1);
      expect(await reputation.feedbackRights(bobId, carol.address)).to.deep.equal([1n, 100n]);
      await reputation.connect(alice).revokeFeedback(bobId, 1);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([0n, 0n]);
      await expect(rate(reputation, alice, bobId, 100, 0))
        .to.be.revertedWithCustomError(reputation, "ReputationNoFeedbackRight")
        .withArgs(bobId, alice.address);
      expect(await reputation.getLastIndex(bobId, alice.address)).to.equal(2n);
      expect(await reputation.getClients(bobId)).to.deep.equal([alice.address, carol.address]);
    });

    it("numbers the next feedback after the revoked one", async function () {
      const { reputation, carol, bobId } = await loadFixture(withFeedback);
      await reputation.connect(carol).revokeFeedback(bobId, 1);
      await expect(rate(reputation, carol, bobId, 10, 0))
        .to.emit(reputation, "NewFeedback")
        .withArgs(bobId, carol.address, 2n, 10n, 0n, "", "", "", "", "", ethers.ZeroHash);
    });

    it("reverts when another address revokes someone else's feedback", async function () {
      const { reputation, bob, carol, stranger, bobId } = await loadFixture(withFeedback);
      // carol has her own feedback #1 on bob: she still cannot revoke alice's #2
      await expect(reputation.connect(carol).revokeFeedback(bobId, 2))
        .to.be.revertedWithCustomError(reputation, "ReputationUnknownFeedback")
        .withArgs(bobId, carol.address, 2n);
      for (const caller of [bob, stranger]) {
        await expect(reputation.connect(caller).revokeFeedback(bobId, 1))
          .to.be.revertedWithCustomError(reputation, "ReputationUnknownFeedback")
          .withArgs(bobId, caller.address, 1n);
      }
    });

    it("reverts when the index is 0 or above the last", async function () {
      const { reputation, alice, bobId } = await loadFixture(withFeedback);
      await expect(reputation.connect(alice).revokeFeedback(bobId, 0))
        .to.be.revertedWithCustomError(reputation, "ReputationUnknownFeedback")
        .withArgs(bobId, alice.address, 0n);
      await expect(reputation.connect(alice).revokeFeedback(bobId, 3))
        .to.be.revertedWithCustomError(reputation, "ReputationUnknownFeedback")
        .withArgs(bobId, alice.address, 3n);
    });

    it("reverts when the feedback is on another agent", async function () {
      const { reputation, alice, carolId } = await loadFixture(withFeedback);
      await expect(reputation.connect(alice).revokeFeedback(carolId, 1))
        .to.be.revertedWithCustomError(reputation, "ReputationUnknownFeedback")
        .withArgs(carolId, alice.address, 1n);
    });

    it("reverts when revoked twice", async function () {
      const { reputation, alice, bobId } = await loadFixture(withFeedback);
      await reputation.connect(alice).revokeFeedback(bobId, 1);
      await expect(reputation.connect(alice).revokeFeedback(bobId, 1))
        .to.be.revertedWithCustomError(reputation, "ReputationAlreadyRevoked")
        .withArgs(bobId, alice.address, 1n);
    });
  });

  // ------------------------------------------------------------------ appendResponse

  describe("appendResponse", function () {
    it("lets anyone respond and emits ResponseAppended", async function () {
      const { reputation, alice, bob, stranger, bobId } = await loadFixture(withFeedback);
      for (const responder of [bob, stranger, alice]) {
        const uri = `ipfs://response-from-${responder.address}`;
        await expect(reputation.connect(responder).appendResponse(bobId, alice.address, 1, uri, HASH))
          .to.emit(reputation, "ResponseAppended")
          .withArgs(bobId, alice.address, 1n, responder.address, uri, HASH);
      }
      expect(await reputation.getResponseCount(bobId, alice.address, 1, [])).to.equal(3n);
    });

    it("accepts a responseURI of exactly 2,048 bytes", async function () {
      const { reputation, alice, stranger, bobId } = await loadFixture(withFeedback);
      const uri = "r".repeat(2048);
      await expect(reputation.connect(stranger).appendResponse(bobId, alice.address, 1, uri, ethers.ZeroHash))
        .to.emit(reputation, "ResponseAppended")
        .withArgs(bobId, alice.address, 1n, stranger.address, uri, ethers.ZeroHash);
    });

    it("changes no rating aggregate", async function () {
      const { reputation, alice, bob, bobId } = await loadFixture(withFeedback);
      const before = await recordOf(reputation, bobId);
      await reputation.connect(bob).appendResponse(bobId, alice.address, 1, "ipfs://reply", HASH);
      expect(await recordOf(reputation, bobId)).to.deep.equal(before);
    });

    it("reverts when the responseURI is empty", async function () {
      const { reputation, alice, stranger, bobId } = await loadFixture(withFeedback);
      await expect(
        reputation.connect(stranger).appendResponse(bobId, alice.address, 1, "", HASH),
      ).to.be.revertedWithCustomError(reputation, "ReputationEmptyInput");
    });

    it("reverts when the responseURI is longer than 2,048 bytes", async function () {
      const { reputation, alice, stranger, bobId } = await loadFixture(withFeedback);
      await expect(reputation.connect(stranger).appendResponse(bobId, alice.address, 1, "r".repeat(2049), HASH))
        .to.be.revertedWithCustomError(reputation, "ReputationInputTooLong")
        .withArgs(2049n, 2048n);
    });

    it("reverts when the feedback does not exist", async function () {
      const { reputation, alice, stranger, bobId, carolId } = await loadFixture(withFeedback);
      const cases = [
        [bobId, alice.address, 0n],
        [bobId, alice.address, 3n],
        [bobId, stranger.address, 1n],
        [bobId, ethers.ZeroAddress, 1n],
        [carolId, alice.address, 1n],
      ] as const;
      for (const [agentId, client, index] of cases) {
        await expect(reputation.connect(stranger).appendResponse(agentId, client, index, "ipfs://r", HASH))
          .to.be.revertedWithCustomError(reputation, "ReputationUnknownFeedback")
          .withArgs(agentId, client, index);
      }
    });
  });

  // ------------------------------------------------------------------ getResponseCount

  describe("getResponseCount", function () {
    it("counts the responses to one feedback, from anyone or from the listed responders", async function () {
      const { reputation, alice, bob, carol, stranger, dave, bobId } = await loadFixture(withResponses);
      expect(await reputation.getResponseCount(bobId, alice.address, 1, [])).to.equal(3n);
      expect(await reputation.getResponseCount(bobId, alice.address, 1, [stranger.address])).to.equal(2n);
      expect(await reputation.getResponseCount(bobId, alice.address, 1, [bob.address])).to.equal(1n);
      expect(await reputation.getResponseCount(bobId, alice.address, 1, [stranger.address, bob.address])).to.equal(3n);
      expect(await reputation.getResponseCount(bobId, alice.address, 1, [dave.address])).to.equal(0n);
      expect(await reputation.getResponseCount(bobId, alice.address, 2, [])).to.equal(1n);
      expect(await reputation.getResponseCount(bobId, alice.address, 2, [stranger.address])).to.equal(0n);
      expect(await reputation.getResponseCount(bobId, carol.address, 1, [])).to.equal(1n);
    });

    it("counts all of a client's feedback when feedbackIndex is 0", async function () {
      const { reputation, alice, bob, carol, stranger, bobId } = await loadFixture(withResponses);
      expect(await reputation.getResponseCount(bobId, alice.address, 0, [])).to.equal(4n);
      expect(await reputation.getResponseCount(bobId, alice.address, 0, [bob.address])).to.equal(2n);
      expect(await reputation.getResponseCount(bobId, alice.address, 0, [stranger.address])).to.equal(2n);
      expect(await reputation.getResponseCount(bobId, carol.address, 0, [])).to.equal(1n);
      expect(await reputation.getResponseCount(bobId, carol.address, 0, [stranger.address])).to.equal(0n);
    });

    it("counts all of the agent's feedback when clientAddress is zero", async function () {
      const { reputation, bob, stranger, dave, bobId } = await loadFixture(withResponses);
      expect(await reputation.getResponseCount(bobId, ethers.ZeroAddress, 0, [])).to.equal(5n);
      expect(await reputation.getResponseCount(bobId, ethers.ZeroAddress, 0, [bob.address])).to.equal(3n);
      expect(await reputation.getResponseCount(bobId, ethers.ZeroAddress, 0, [stranger.address])).to.equal(2n);
      expect(await reputation.getResponseCount(bobId, ethers.ZeroAddress, 0, [dave.address])).to.equal(0n);
    });

    it("returns 0 for feedback or agents without responses", async function () {
      const { reputation, alice, stranger, bobId, carolId } = await loadFixture(withResponses);
      expect(await reputation.getResponseCount(bobId, alice.address, 9, [])).to.equal(0n);
      expect(await reputation.getResponseCount(bobId, stranger.address, 0, [])).to.equal(0n);
      expect(await reputation.getResponseCount(carolId, ethers.ZeroAddress, 0, [])).to.equal(0n);
    });
  });

  // ------------------------------------------------------------------ getSummary

  describe("getSummary", function () {
    it("reverts when clientAddresses is empty", async function () {
      const { reputation, bobId } = await loadFixture(withFeedback);
      await expect(reputation.getSummary(bobId, [], "", "")).to.be.revertedWithCustomError(
        reputation,
        "ReputationClientsRequired",
      );
    });

    it("averages in 18 decimals and returns the most frequent valueDecimals", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withFeedback);
      // 80 (0 dec), 9050 (2 dec), 7000 (2 dec): (80.00 + 90.50 + 70.00) / 3 = 80.1666.. -> 8016 at 2 decimals
      expect(await reputation.getSummary(bobId, [alice.address, carol.address], "", "")).to.deep.equal([3n, 8016n, 2n]);
      // alice alone: 80 (0 dec) and 7000 (2 dec) tie on decimals; the mean is 75
      const [count, value, decimals] = await reputation.getSummary(bobId, [alice.address], "", "");
      expect(count).to.equal(2n);
      expect(value * 10n ** (2n - decimals)).to.equal(7500n);
      expect(await reputation.getSummary(bobId, [carol.address], "", "")).to.deep.equal([1n, 9050n, 2n]);
    });

    it("filters by tag1, tag2 and both", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withFeedback);
      const clients = [alice.address, carol.address];
      // tag1 "quality": 80 (0 dec) and 9050 (2 dec) tie; mean 85.25
      const [count, value, decimals] = await reputation.getSummary(bobId, clients, "quality", "");
      expect(count).to.equal(2n);
      expect(value * 10n ** (2n - decimals)).to.equal(decimals === 2n ? 8525n : 8500n);
      expect(await reputation.getSummary(bobId, clients, "uptime", "")).to.deep.equal([1n, 7000n, 2n]);
      expect(await reputation.getSummary(bobId, clients, "", "speed")).to.deep.equal(
        await reputation.getSummary(bobId, [alice.address], "", ""),
      );
      expect(await reputation.getSummary(bobId, clients, "quality", "speed")).to.deep.equal([1n, 80n, 0n]);
      expect(await reputation.getSummary(bobId, clients, "uptime", "quality")).to.deep.equal([0n, 0n, 0n]);
      expect(await reputation.getSummary(bobId, clients, "nope", "")).to.deep.equal([0n, 0n, 0n]);
    });

    it("excludes revoked feedback", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withFeedback);
      await reputation.connect(alice).revokeFeedback(bobId, 1);
      // 9050 and 7000 at 2 decimals: mean 8025
      expect(await reputation.getSummary(bobId, [alice.address, carol.address], "", "")).to.deep.equal([2n, 8025n, 2n]);
      await reputation.connect(alice).revokeFeedback(bobId, 2);
      await reputation.connect(carol).revokeFeedback(bobId, 1);
      expect(await reputation.getSummary(bobId, [alice.address, carol.address], "", "")).to.deep.equal([0n, 0n, 0n]);
    });

    it("averages negative values (rounding towards zero)", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withRights);
      await rate(reputation, alice, bobId, -50, 0);
      await rate(reputation, carol, bobId, 25, 0);
      // (-50 + 25) / 2 = -12.5 -> -12
      expect(await reputation.getSummary(bobId, [alice.address, carol.address], "", "")).to.deep.equal([2n, -12n, 0n]);
      await rate(reputation, alice, bobId, -100, 0);
      // (-50 - 100) / 2 = -75
      expect(await reputation.getSummary(bobId, [alice.address], "", "")).to.deep.equal([2n, -75n, 0n]);
    });

    it("keeps full precision when the most frequent decimals are larger", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withRights);
      await rate(reputation, alice, bobId, 1, 0); // 1
      await rate(reputation, carol, bobId, 1_500_000n, 6); // 1.5
      await rate(reputation, carol, bobId, 2_250_000n, 6); // 2.25
      // (1 + 1.5 + 2.25) / 3 = 1.583333 at 6 decimals
      expect(await reputation.getSummary(bobId, [alice.address, carol.address], "", "")).to.deep.equal([
        3n,
        1_583_333n,
        6n,
      ]);
    });

    it("handles the extreme values ±1e38", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withRights);
      await rate(reputation, alice, bobId, MAX_ABS_VALUE, 0);
      await rate(reputation, carol, bobId, MAX_ABS_VALUE, 0);
      expect(await reputation.getSummary(bobId, [alice.address, carol.address], "", "")).to.deep.equal([
        2n,
        MAX_ABS_VALUE,
        0n,
      ]);
      await rate(reputation, alice, bobId, -MAX_ABS_VALUE, 0);
      await rate(reputation, carol, bobId, -MAX_ABS_VALUE, 0);
      expect(await reputation.getSummary(bobId, [alice.address, carol.address], "", "")).to.deep.equal([4n, 0n, 0n]);
    });

    it("returns (0, 0, 0) when no feedback matches", async function () {
      const { reputation, stranger, dave, bobId, carolId, alice } = await loadFixture(withFeedback);
      expect(await reputation.getSummary(bobId, [stranger.address, dave.address], "", "")).to.deep.equal([0n, 0n, 0n]);
      expect(await reputation.getSummary(carolId, [alice.address], "", "")).to.deep.equal([0n, 0n, 0n]);
    });
  });

  // ------------------------------------------------------------------ readAllFeedback

  describe("readAllFeedback", function () {
    /** The seven arrays as plain arrays. */
    async function readAll(
      reputation: Reputation,
      agentId: bigint,
      clients: string[],
      tag1: string,
      tag2: string,
      includeRevoked: boolean,
    ) {
      // positional: `values` is shadowed by Array.prototype.values on the ethers Result
      const [c, indexes, values, decimals, tag1s, tag2s, revoked] = await reputation.readAllFeedback(
        agentId,
        clients,
        tag1,
        tag2,
        includeRevoked,
      );
      return {
        clients: [...c],
        indexes: [...indexes],
        values: [...values],
        decimals: [...decimals],
        tag1s: [...tag1s],
        tag2s: [...tag2s],
        revoked: [...revoked],
      };
    }

    it("returns every client's feedback, in client order, when the list is empty", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withFeedback);
      expect(await readAll(reputation, bobId, [], "", "", false)).to.deep.equal({
        clients: [alice.address, alice.address, carol.address],
        indexes: [1n, 2n, 1n],
        values: [80n, 7000n, 9050n],
        decimals: [0n, 2n, 2n],
        tag1s: ["quality", "uptime", "quality"],
        tag2s: ["speed", "speed", ""],
        revoked: [false, false, false],
      });
    });

    it("returns only the listed clients, in the order given", async function () {
      const { reputation, alice, carol, stranger, bobId } = await loadFixture(withFeedback);
      expect(
        await readAll(reputation, bobId, [carol.address, stranger.address, alice.address], "", "", false),
      ).to.deep.equal({
        clients: [carol.address, alice.address, alice.address],
        indexes: [1n, 1n, 2n],
        values: [9050n, 80n, 7000n],
        decimals: [2n, 0n, 2n],
        tag1s: ["quality", "quality", "uptime"],
        tag2s: ["", "speed", "speed"],
        revoked: [false, false, false],
      });
    });

    it("filters by tag1 and tag2", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withFeedback);
      expect(await readAll(reputation, bobId, [], "quality", "", false)).to.deep.equal({
        clients: [alice.address, carol.address],
        indexes: [1n, 1n],
        values: [80n, 9050n],
        decimals: [0n, 2n],
        tag1s: ["quality", "quality"],
        tag2s: ["speed", ""],
        revoked: [false, false],
      });
      expect(await readAll(reputation, bobId, [], "", "speed", false)).to.deep.equal({
        clients: [alice.address, alice.address],
        indexes: [1n, 2n],
        values: [80n, 7000n],
        decimals: [0n, 2n],
        tag1s: ["quality", "uptime"],
        tag2s: ["speed", "speed"],
        revoked: [false, false],
      });
      expect(await readAll(reputation, bobId, [], "uptime", "speed", false)).to.deep.equal({
        clients: [alice.address],
        indexes: [2n],
        values: [7000n],
        decimals: [2n],
        tag1s: ["uptime"],
        tag2s: ["speed"],
        revoked: [false],
      });
    });

    it("includes revoked feedback only when asked", async function () {
      const { reputation, alice, carol, bobId } = await loadFixture(withFeedback);
      await reputation.connect(alice).revokeFeedback(bobId, 1);
      expect(await readAll(reputation, bobId, [], "", "", false)).to.deep.equal({
        clients: [alice.address, carol.address],
        indexes: [2n, 1n],
        values: [7000n, 9050n],
        decimals: [2n, 2n],
        tag1s: ["uptime", "quality"],
        tag2s: ["speed", ""],
        revoked: [false, false],
      });
      expect(await readAll(reputation, bobId, [], "", "", true)).to.deep.equal({
        clients: [alice.address, alice.address, carol.address],
        indexes: [1n, 2n, 1n],
        values: [80n, 7000n, 9050n],
        decimals: [0n, 2n, 2n],
        tag1s: ["quality", "uptime", "quality"],
        tag2s: ["speed", "speed", ""],
        revoked: [true, false, false],
      });
      expect(await readAll(reputation, bobId, [], "quality", "", true)).to.deep.equal({
        clients: [alice.address, carol.address],
        indexes: [1n, 1n],
        values: [80n, 9050n],
        decimals: [0n, 2n],
        tag1s: ["quality", "quality"],
        tag2s: ["speed", ""],
        revoked: [true, false],
      });
    });

    it("returns empty arrays when nothing matches", async function () {
      const { reputation, stranger, bobId, carolId } = await loadFixture(withFeedback);
      const empty = { clients: [], indexes: [], values: [], decimals: [], tag1s: [], tag2s: [], revoked: [] };
      expect(await readAll(reputation, carolId, [], "", "", true)).to.deep.equal(empty);
      expect(await readAll(reputation, bobId, [stranger.address], "", "", true)).to.deep.equal(empty);
      expect(await readAll(reputation, bobId, [], "nope", "", true)).to.deep.equal(empty);
    });
  });

  // ------------------------------------------------------------------ score

  describe("score", function () {
    it("is 5,000 with no data, also for an unknown agent", async function () {
      const { reputation, aliceId } = await loadFixture(deployWithAgents);
      expect(await reputation.score(aliceId)).to.equal(5_000n);
      expect(await reputation.score(999n)).to.equal(5_000n);
    });

    describe("rating mean R", function () {
      /** One Completed task bob (#2) served for alice (#1), so P = 2 and score = R. */
      async function oneTask() {
        const s = await deployWithAgents();
        await s.reputation
          .connect(s.reporter)
          .recordTask(s.aliceId, s.bobId, Outcome.Completed, await s.usdt.getAddress(), 1_000n);
        return s;
      }

      const ratings: [string, bigint, number, bigint][] = [
        ["80 with 0 decimals", 80n, 0, 8_000n],
        ["80.50 with 2 decimals", 8_050n, 2, 8_050n],
        ["0.5 with 1 decimal", 5n, 1, 50n],
        ["100 with 0 decimals", 100n, 0, 10_000n],
        ["above 100 (clamped)", 101n, 0, 10_000n],
        ["1e38 (clamped)", MAX_ABS_VALUE, 0, 10_000n],
        ["0", 0n, 0, 0n],
        ["negative (clamped to 0)", -5n, 0, 0n],
        ["a tiny fraction (0.000001 %) rounds down to 0", 1n, 6, 0n],
      ];
      for (const [name, value, decimals, bps] of ratings) {
        it(`reads a rating of ${name} as ${bps} bps`, async function () {
          const { reputation, alice, bobId } = await loadFixture(oneTask);
          await rate(reputation, alice, bobId, value, decimals);
          expect((await reputation.getRecord(bobId)).ratingWeightedBps).to.equal(1_000n * bps);
          expect(await reputation.score(bobId)).to.equal(bps);
        });
      }

      it("weights ratings by the value paid (100 % at 300 and 0 % at 100 -> 7,500)", async function () {
        const { reputation, reporter, usdt, alice, carol, aliceId, bobId, carolId } =
          await loadFixture(deployWithAgents);
        const token = await usdt.getAddress();
        await reputation.connect(reporter).recordTask(aliceId, bobId, Outcome.Completed, token, 300n);
        await reputation.connect(reporter).recordTask(carolId, bobId, Outcome.Completed, token, 100n);
        await rate(reputation, alice, bobId, 100, 0);
        await rate(reputation, carol, bobId, 0, 0);
        const record = await reputation.getRecord(bobId);
        expect(record.ratingWeight).to.equal(400n);
        expect(record.ratingWeightedBps).to.equal(3_000_000n);
        // P = 4, N = 0: score = R
        expect(await reputation.score(bobId)).to.equal(7_500n);
      });

      it("rounds the mean down", async function () {
        const { reputation, reporter, usdt, alice, carol, aliceId, bobId, carolId } =
          await loadFixture(deployWithAgents);
        const token = await usdt.getAddress();
        await reputation.connect(reporter).recordTask(aliceId, bobId, Outcome.Completed, token, 1n);
        await reputation.connect(reporter).recordTask(carolId, bobId, Outcome.Completed, token, 2n);
        await rate(reputation, alice, bobId, 100, 0);
        await rate(reputation, carol, bobId, 0, 0);
        // (1 * 10,000 + 2 * 0) / 3 = 3,333.33
        expect(await reputation.score(bobId)).to.equal(3_333n);
      });
    });

    describe("outcome formula R x (P + 2) / (P + N + 2)", function () {
      type Step = [client: "alice" | "carol", outcome: number];
      const cases: { name: string; steps: Step[]; provider: bigint; client?: bigint }[] = [
        { name: "1 completed", steps: [["alice", Outcome.Completed]], provider: 5_000n, client: 5_000n },
        { name: "1 auto-completed", steps: [["alice", Outcome.AutoCompleted]], provider: 5_000n },
        // P = 0, N = 2: 5,000 x 2 / 4
        { name: "1 refunded", steps: [["alice", Outcome.Refunded]], provider: 2_500n, client: 5_000n },
        // provider P = 2; client N = 4: 5,000 x 2 / 6
        {
          name: "1 dispute won by the provider",
          steps: [["alice", Outcome.DisputeProviderWon]],
          provider: 5_000n,
          client: 1_666n,
        },
        // provider N = 4: 5,000 x 2 / 6; client P = 2
        {
          name: "1 dispute won by the client",
          steps: [["alice", Outcome.DisputeClientWon]],
          provider: 1_666n,
          client: 5_000n,
        },
        // P = 1, N = 1 on both: 5,000 x 3 / 4
        { name: "1 dispute split", steps: [["alice", Outcome.DisputeSplit]], provider: 3_750n, client: 3_750n },
        // P = 2, N = 2: 5,000 x 4 / 6
        {
          name: "1 completed and 1 refunded",
          steps: [
            ["alice", Outcome.Completed],
            ["alice", Outcome.Refunded],
          ],
          provider: 3_333n,
        },
        // P = 2, N = 4: 5,000 x 4 / 8
        {
          name: "1 completed and 1 dispute lost",
          steps: [
            ["alice", Outcome.Completed],
            ["carol", Outcome.DisputeClientWon],
          ],
          provider: 2_500n,
        },
        // P = 2 + 2 + 2 + 1 = 7, N = 2 + 1 = 3: 5,000 x 9 / 12
        {
          name: "completed, auto-completed, dispute won, split and refunded",
          steps: [
            ["alice", Outcome.Completed],
            ["carol", Outcome.AutoCompleted],
            ["alice", Outcome.DisputeProviderWon],
            ["carol", Outcome.DisputeSplit],
            ["alice", Outcome.Refunded],
          ],
          provider: 3_750n,
        },
        // P = 0, N = 2 x 2 + 4 x 1 = 8: 5,000 x 2 / 10
        {
          name: "2 refunded and 1 dispute lost",
          steps: [
            ["alice", Outcome.Refunded],
            ["carol", Outcome.Refunded],
            ["alice", Outcome.DisputeClientWon],
          ],
          provider: 1_000n,
        },
      ];

      for (const c of cases) {
        it(`scores ${c.name} with no rating`, async function () {
          const { reputation, reporter, usdt, aliceId, bobId, carolId } = await loadFixture(deployWithAgents);
          const token = await usdt.getAddress();
          for (const [client, outcome] of c.steps) {
            const clientId = client === "alice" ? aliceId : carolId;
            await reputation.connect(reporter).recordTask(clientId, bobId, outcome, token, 10n);
          }
          expect(await reputation.score(bobId)).to.equal(c.provider);
          if (c.client !== undefined) expect(await reputation.score(aliceId)).to.equal(c.client);
        });
      }

      it("combines the rating mean with the outcomes (R = 8,000, P = 5, N = 1 -> 7,000)", async function () {
        const { reputation, reporter, usdt, alice, aliceId, bobId, carolId } = await loadFixture(deployWithAgents);
        const token = await usdt.getAddress();
        await reputation.connect(reporter).recordTask(aliceId, bobId, Outcome.Completed, token, 10n);
        await reputation.connect(reporter).recordTask(carolId, bobId, Outcome.AutoCompleted, token, 10n);
        await reputation.connect(reporter).recordTask(carolId, bobId, Outcome.DisputeSplit, token, 10n);
        await rate(reputation, alice, bobId, 80, 0);
        // 8,000 x 7 / 8
        expect(await reputation.score(bobId)).to.equal(7_000n);
        await reputation.connect(reporter).recordTask(aliceId, bobId, Outcome.Refunded, token, 10n);
        // P = 5, N = 3: 8,000 x 7 / 10
        expect(await reputation.score(bobId)).to.equal(5_600n);
      });

      it("ignores calls served and votes", async function () {
        const { reputation, reporter, usdt, aliceId, bobId } = await loadFixture(deployWithAgents);
        const token = await usdt.getAddress();
        await reputation.connect(reporter).recordTask(aliceId, bobId, Outcome.Refunded, token, 10n);
        await reputation.connect(reporter).recordCalls(aliceId, bobId, token, 1_000n, 1_000n, 1n);
        await reputation.connect(reporter).recordVote(bobId, true);
        await reputation.connect(reporter).recordVote(bobId, false);
        expect(await reputation.score(bobId)).to.equal(2_500n);
      });
    });
  });

  // ------------------------------------------------------------------ pause / unpause

  describe("pause and unpause", function () {
    it("PAUSER_ROLE pauses and unpauses, with events", async function () {
      const { reputation, admin } = await loadFixture(deployWithAgents);
      await expect(reputation.pause()).to.emit(reputation, "Paused").withArgs(admin.address);
      expect(await reputation.paused()).to.equal(true);
      await expect(reputation.unpause()).to.emit(reputation, "Unpaused").withArgs(admin.address);
      expect(await reputation.paused()).to.equal(false);
    });

    it("reverts when the caller lacks PAUSER_ROLE (stranger, reporter)", async function () {
      const { reputation, stranger, reporter } = await loadFixture(deployWithAgents);
      for (const caller of [stranger, reporter]) {
        await expect(reputation.connect(caller).pause())
          .to.be.revertedWithCustomError(reputation, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, PAUSER_ROLE);
      }
      await reputation.pause();
      await expect(reputation.connect(stranger).unpause())
        .to.be.revertedWithCustomError(reputation, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, PAUSER_ROLE);
    });

    it("does not stop recording, feedback, revocation or responses", async function () {
      const { reputation, reporter, usdt, alice, bob, aliceId, bobId, carolId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      await reputation.pause();
      await expect(reputation.connect(reporter).recordTask(aliceId, bobId, Outcome.Completed, token, 100n))
        .to.emit(reputation, "TaskRecorded")
        .withArgs(aliceId, bobId, Outcome.Completed, token, 100n, false);
      await expect(reputation.connect(reporter).recordCalls(aliceId, bobId, token, 2n, 50n, 1n))
        .to.emit(reputation, "CallsRecorded")
        .withArgs(aliceId, bobId, token, 2n, 50n, 1n, false);
      await expect(reputation.connect(reporter).recordVote(carolId, true))
        .to.emit(reputation, "VoteRecorded")
        .withArgs(carolId, true);
      await expect(rate(reputation, alice, bobId, 90, 0))
        .to.emit(reputation, "NewFeedback")
        .withArgs(bobId, alice.address, 1n, 90n, 0n, "", "", "", "", "", ethers.ZeroHash);
      await expect(reputation.connect(bob).appendResponse(bobId, alice.address, 1, "ipfs://thanks", HASH))
        .to.emit(reputation, "ResponseAppended")
        .withArgs(bobId, alice.address, 1n, bob.address, "ipfs://thanks", HASH);
      await expect(reputation.connect(alice).revokeFeedback(bobId, 1))
        .to.emit(reputation, "FeedbackRevoked")
        .withArgs(bobId, alice.address, 1n);
      const record = await reputation.getRecord(bobId);
      expect([record.tasksCompleted, record.callsServed, record.settlementsServed]).to.deep.equal([1n, 2n, 1n]);
    });
  });

  // ------------------------------------------------------------------ upgrades

  describe("upgradeToAndCall", function () {
    it("reverts when the caller lacks UPGRADER_ROLE", async function () {
      const { reputation, reputationImpl, stranger } = await loadFixture(deployWithAgents);
      await expect(reputation.connect(stranger).upgradeToAndCall(reputationImpl, "0x"))
        .to.be.revertedWithCustomError(reputation, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, UPGRADER_ROLE);
    });

    it("lets UPGRADER_ROLE upgrade, keeping records and rights", async function () {
      const { reputation, reporter, usdt, alice, aliceId, bobId } = await loadFixture(deployWithAgents);
      const token = await usdt.getAddress();
      await reputation.connect(reporter).recordTask(aliceId, bobId, Outcome.Completed, token, 100n);
      const recordBefore = await recordOf(reputation, bobId);
      const newImpl = await ethers.deployContract("Reputation");
      await expect(reputation.upgradeToAndCall(await newImpl.getAddress(), "0x"))
        .to.emit(reputation, "Upgraded")
        .withArgs(await newImpl.getAddress());
      expect(await recordOf(reputation, bobId)).to.deep.equal(recordBefore);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([1n, 100n]);
      expect(await reputation.getVolume(bobId, token)).to.equal(100n);
    });
  });

  describe("recordCalls saturation", function () {
    it("saturates callsServed at 2^64 - 1 instead of truncating or reverting", async function () {
      const { reputation, reporter, aliceId, bobId } = await loadFixture(deployWithAgents);
      const MAX_U64 = 2n ** 64n - 1n;
      await reputation.connect(reporter).recordCalls(aliceId, bobId, ethers.ZeroAddress, MAX_U64 - 1n, 1n, 1n);
      await expect(reputation.connect(reporter).recordCalls(aliceId, bobId, ethers.ZeroAddress, 2n ** 64n + 5n, 1n, 1n))
        .to.emit(reputation, "CallsRecorded")
        .withArgs(aliceId, bobId, ethers.ZeroAddress, 2n ** 64n + 5n, 1n, 1n, false);
      expect((await reputation.getRecord(bobId)).callsServed).to.equal(MAX_U64);
      expect((await reputation.getRecord(bobId)).settlementsServed).to.equal(2n);
    });

    it("saturates settlementsServed at 2^32 - 1 instead of truncating or reverting", async function () {
      const { reputation, reporter, alice, aliceId, bobId } = await loadFixture(deployWithAgents);
      const MAX_U32 = 2n ** 32n - 1n;
      const rep = reputation.connect(reporter);
      await rep.recordCalls(aliceId, bobId, ethers.ZeroAddress, 1n, 1n, MAX_U32 - 1n);
      expect((await reputation.getRecord(bobId)).settlementsServed).to.equal(MAX_U32 - 1n);
      await expect(rep.recordCalls(aliceId, bobId, ethers.ZeroAddress, 1n, 1n, 2n ** 32n + 5n))
        .to.emit(reputation, "CallsRecorded")
        .withArgs(aliceId, bobId, ethers.ZeroAddress, 1n, 1n, 2n ** 32n + 5n, false);
      expect((await reputation.getRecord(bobId)).settlementsServed).to.equal(MAX_U32);
      // the rights (64 bits) take the full count
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([MAX_U32 - 1n + 2n ** 32n + 5n, 2n]);
      // and it stays saturated, even at the largest count
      await rep.recordCalls(aliceId, bobId, ethers.ZeroAddress, 1n, 1n, 1n);
      await rep.recordCalls(aliceId, bobId, ethers.ZeroAddress, 1n, 1n, ethers.MaxUint256);
      const record = await reputation.getRecord(bobId);
      expect([record.callsServed, record.settlementsServed]).to.deep.equal([4n, MAX_U32]);
    });

    it("saturates a rater's rights at 2^64 - 1 instead of truncating or reverting", async function () {
      const { reputation, reporter, usdt, alice, aliceId, bobId } = await loadFixture(deployWithAgents);
      const MAX_U64 = 2n ** 64n - 1n;
      const token = await usdt.getAddress();
      const rep = reputation.connect(reporter);
      await rep.recordCalls(aliceId, bobId, token, 1n, 300n, MAX_U64 - 1n);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([MAX_U64 - 1n, 300n]);
      const tx = await rep.recordCalls(aliceId, bobId, token, 1n, 200n, 2n ** 64n + 5n);
      expect(await eventsOf(reputation, tx, "FeedbackRightGranted")).to.deep.equal([
        [bobId, alice.address, 2n ** 64n + 5n, 200n],
      ]);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([MAX_U64, 500n]);
      // a task's right adds its weight but no count past the cap
      await rep.recordTask(aliceId, bobId, Outcome.Completed, token, 100n);
      await rep.recordCalls(aliceId, bobId, token, 1n, 100n, ethers.MaxUint256);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([MAX_U64, 700n]);
      expect((await reputation.getRecord(bobId)).settlementsServed).to.equal(2n ** 32n - 1n);
      // a rating still consumes one right, of the mean weight (rounded down to 0 here)
      await rate(reputation, alice, bobId, 100, 0);
      expect(await reputation.feedbackRights(bobId, alice.address)).to.deep.equal([MAX_U64 - 1n, 700n]);
      expect((await reputation.getRecord(bobId)).ratingWeight).to.equal(0n);
    });
  });
});
