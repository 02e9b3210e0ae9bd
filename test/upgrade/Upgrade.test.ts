import { expect } from "chai";
import fs from "fs";
import os from "os";
import path from "path";
import hre, { ethers, ignition, network, upgrades } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import { deploy as ignitionDeploy, DeploymentResultType } from "@nomicfoundation/ignition-core";
import type { IgnitionModule } from "@nomicfoundation/ignition-core";
import { HardhatArtifactResolver } from "@nomicfoundation/hardhat-ignition/helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { ContractFactory } from "ethers";
import SystemModule from "../../ignition/modules/System";
import UpgradeModule from "../../ignition/modules/Upgrade";
import {
  deploySystem,
  DEFAULT_ADMIN_ROLE,
  PARAMETER_ROLE,
  PAUSER_ROLE,
  REPORTER_ROLE,
  SPENDER_ROLE,
  UPGRADER_ROLE,
} from "../fixtures/system";
import { AGENT_WALLET_TYPES, Outcome, signAgentWallet, usd, walletDomain } from "../fixtures/helpers";
import {
  AgentRegistry,
  AgentRegistry__factory,
  AgentRegistryV2Mock__factory,
  Reputation,
  Reputation__factory,
  ReputationV2Mock__factory,
} from "../../typechain-types";

/** ERC-1967 implementation slot: bytes32(uint256(keccak256("eip1967.proxy.implementation")) - 1). */
const IMPLEMENTATION_SLOT = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc";
const UPGRADE_OPTS = { kind: "uups" as const, unsafeAllow: ["external-library-linking" as const] };

const DAY = 86_400;
const CAPABILITY = ethers.id("translate:en-fr");
const ENDPOINT = "https://bob.example/mcp";
const FEEDBACK_HASH = ethers.id("feedback-file");
const RESPONSE_HASH = ethers.id("response-file");
const MODEL_KEY = "model";
const MODEL_VALUE = ethers.hexlify(ethers.toUtf8Bytes("gpt-5"));

/** The address in a proxy's ERC-1967 implementation slot. */
async function implementationOf(proxy: string): Promise<string> {
  const raw = await ethers.provider.getStorage(proxy, IMPLEMENTATION_SLOT);
  return ethers.getAddress(ethers.dataSlice(raw, 12));
}

/** Fresh OperatorPolicy and ServiceCatalog libraries, to link a registry implementation with. */
async function deployLibraries() {
  const operatorPolicy = await ethers.deployContract("OperatorPolicy");
  const serviceCatalog = await ethers.deployContract("ServiceCatalog");
  return { OperatorPolicy: await operatorPolicy.getAddress(), ServiceCatalog: await serviceCatalog.getAddress() };
}

async function registryFactories() {
  const libraries = await deployLibraries();
  return {
    v1: await ethers.getContractFactory("AgentRegistry", { libraries }),
    v2: await ethers.getContractFactory("AgentRegistryV2Mock", { libraries }),
  };
}

async function reputationFactories() {
  return {
    v1: await ethers.getContractFactory("Reputation"),
    v2: await ethers.getContractFactory("ReputationV2Mock"),
  };
}

interface Actors {
  admin: HardhatEthersSigner;
  alice: HardhatEthersSigner;
  bob: HardhatEthersSigner;
  carol: HardhatEthersSigner;
  dave: HardhatEthersSigner;
  operator: HardhatEthersSigner;
  reporter: HardhatEthersSigner;
}

/**
 * Fills a bare system with one of every kind of state: agents (#1 alice, #2 bob, #3 carol, #4
 * alice with metadata), a wallet, an ERC-721 approval, a paused agent, an operator with an
 * allow-list and a rolling token limit partly spent, a service, records, rights, feedback (one
 * revoked), a response and a vote. Returns what the checks after an upgrade need.
 */
async function populate(registry: AgentRegistry, reputation: Reputation, token: string, a: Actors) {
  const { admin, alice, bob, carol, dave, operator, reporter } = a;
  await reputation.connect(admin).grantRole(REPORTER_ROLE, reporter.address);
  await registry.connect(admin).grantRole(SPENDER_ROLE, reporter.address);

  await registry.connect(alice).getFunction("register(string)")("ipfs://alice");
  await registry.connect(bob).getFunction("register(string)")("ipfs://bob");
  await registry.connect(carol).getFunction("register(string)")("ipfs://carol");
  await registry.connect(alice).getFunction("register(string,(string,bytes)[])")("ipfs://alice-2", [
    { metadataKey: MODEL_KEY, metadataValue: MODEL_VALUE },
  ]);

  // Agent wallet of #1, proven by dave.
  const deadline = BigInt(await time.latest()) + 120n;
  const walletSignature = await signAgentWallet(registry, dave, 1n, dave.address, alice.address, deadline);
  await registry.connect(alice).setAgentWallet(1n, dave.address, deadline, walletSignature);

  await registry.connect(bob).approve(carol.address, 2n);
  await registry.connect(carol).setAgentPaused(3n, true);

  // Operator of #1: allow-list {#2}, rolling limit 100/tx, 150/day, 60 spent.
  const expiry = BigInt(await time.latest()) + 30n * BigInt(DAY);
  await registry.connect(alice).setOperator(1n, operator.address, { expiry, minScoreBps: 0, allowListOnly: true });
  await registry.connect(alice).setCounterparties(1n, operator.address, [2n], true);
  await registry.connect(alice).setTokenLimit(1n, operator.address, token, {
    perTxCap: usd(100),
    periodCap: usd(150),
    period: DAY,
    rolling: true,
  });
  await registry.connect(reporter).consumeSpend(1n, operator.address, token, usd(60), 2n);

  await registry.connect(bob).listService(2n, CAPABILITY, 0, token, usd(0.5), ENDPOINT);

  // Records: #1 hires #2 (completed), #1 pays #2 for calls, #3 wins a dispute against #2.
  await reputation.connect(reporter).recordTask(1n, 2n, Outcome.Completed, token, usd(100));
  await reputation.connect(reporter).recordCalls(1n, 2n, token, 10n, usd(5), 1n);
  await reputation.connect(reporter).recordTask(3n, 2n, Outcome.DisputeClientWon, token, usd(40));
  await reputation.connect(reporter).recordVote(3n, true);

  // alice rates bob twice (revoking the second), bob rates alice; carol keeps her right on #2.
  await reputation.connect(alice).giveFeedback(2n, 95n, 0, "quality", "fast", ENDPOINT, "ipfs://fb-1", FEEDBACK_HASH);
  await reputation.connect(alice).giveFeedback(2n, 10n, 0, "quality", "", "", "", ethers.ZeroHash);
  await reputation.connect(alice).revokeFeedback(2n, 2n);
  await reputation.connect(bob).giveFeedback(1n, 8000n, 2, "", "", "", "", ethers.ZeroHash);
  await reputation.connect(carol).appendResponse(2n, alice.address, 1n, "ipfs://reply", RESPONSE_HASH);

  return { walletDeadline: deadline, walletSignature, operatorExpiry: expiry };
}

/** Ethers results (nested) as plain arrays, for deep comparison. */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return Array.from(value, plain);
  return value;
}

/** Everything observable in both contracts (views only), as plain data. */
async function observe(registry: AgentRegistry, reputation: Reputation, token: string, a: Actors) {
  const { admin, alice, bob, carol, dave, operator, reporter } = a;
  const agents = [1n, 2n, 3n, 4n];
  const state: Record<string, unknown> = {
    name: await registry.name(),
    symbol: await registry.symbol(),
    registryVersion: await registry.getVersion(),
    agentCount: await registry.agentCount(),
    serviceCount: await registry.serviceCount(),
    reputationLink: await registry.reputation(),
    registryPaused: await registry.paused(),
    domain: plain(await registry.eip712Domain()),
    aliceBalance: await registry.balanceOf(alice.address),
    operator: plain(await registry.getOperator(1n, operator.address)),
    tokenLimit: plain(await registry.getTokenLimit(1n, operator.address, token)),
    available: await registry.availableToSpend(1n, operator.address, token),
    allowed2: await registry.isCounterpartyAllowed(1n, operator.address, 2n),
    allowed3: await registry.isCounterpartyAllowed(1n, operator.address, 3n),
    canActOperator: await registry.canAct(1n, operator.address),
    canActWallet: await registry.canAct(1n, dave.address),
    service1: plain(await registry.getService(1n)),
    identityLink: await reputation.getIdentityRegistry(),
    reputationVersion: await reputation.getVersion(),
    lastIndexAliceOn2: await reputation.getLastIndex(2n, alice.address),
    lastIndexBobOn1: await reputation.getLastIndex(1n, bob.address),
    clientsOf2: plain(await reputation.getClients(2n)),
    feedback2Alice1: plain(await reputation.readFeedback(2n, alice.address, 1n)),
    feedback2Alice2: plain(await reputation.readFeedback(2n, alice.address, 2n)),
    feedback1Bob1: plain(await reputation.readFeedback(1n, bob.address, 1n)),
    summary2: plain(await reputation.getSummary(2n, [alice.address], "", "")),
    allFeedback2: plain(await reputation.readAllFeedback(2n, [], "", "", true)),
    responses2: await reputation.getResponseCount(2n, alice.address, 1n, []),
    rightsCarolOn2: plain(await reputation.feedbackRights(2n, carol.address)),
    rightsAliceOn2: plain(await reputation.feedbackRights(2n, alice.address)),
    rightsBobOn3: plain(await reputation.feedbackRights(3n, bob.address)),
  };
  for (const id of agents) {
    state[`agent${id}`] = {
      owner: await registry.ownerOf(id),
      uri: await registry.tokenURI(id),
      wallet: await registry.getAgentWallet(id),
      walletMetadata: await registry.getMetadata(id, "agentWallet"),
      model: await registry.getMetadata(id, MODEL_KEY),
      active: await registry.isAgentActive(id),
      approved: await registry.getApproved(id),
      services: plain(await registry.getAgentServices(id)),
      record: plain(await reputation.getRecord(id)),
      score: await reputation.score(id),
      volume: await reputation.getVolume(id, token),
    };
  }
  for (const [who, account] of Object.entries({ admin, reporter, alice })) {
    for (const [role, id] of Object.entries({ DEFAULT_ADMIN_ROLE, UPGRADER_ROLE, PAUSER_ROLE, PARAMETER_ROLE })) {
      state[`registry:${role}:${who}`] = await registry.hasRole(id, account.address);
      state[`reputation:${role}:${who}`] = await reputation.hasRole(id, account.address);
    }
    state[`registry:SPENDER_ROLE:${who}`] = await registry.hasRole(SPENDER_ROLE, account.address);
    state[`reputation:REPORTER_ROLE:${who}`] = await reputation.hasRole(REPORTER_ROLE, account.address);
  }
  return state;
}

/** The populated state's key values, checked exactly so that a comparison cannot pass on zeros. */
async function expectPopulated(registry: AgentRegistry, reputation: Reputation, token: string, a: Actors) {
  const { alice, bob, carol, dave, operator } = a;
  expect(await registry.agentCount()).to.equal(4n);
  expect(await registry.ownerOf(4n)).to.equal(alice.address);
  expect(await registry.getMetadata(4n, MODEL_KEY)).to.equal(MODEL_VALUE);
  expect(await registry.getAgentWallet(1n)).to.equal(dave.address);
  expect(await registry.getApproved(2n)).to.equal(carol.address);
  expect(await registry.isAgentActive(3n)).to.equal(false);
  const op = await registry.getOperator(1n, operator.address);
  expect([op.active, op.minScoreBps, op.allowListOnly]).to.deep.equal([true, 0n, true]);
  expect(plain(await registry.getTokenLimit(1n, operator.address, token))).to.deep.equal([
    usd(100),
    usd(150),
    BigInt(DAY),
    true,
  ]);
  expect(await registry.availableToSpend(1n, operator.address, token)).to.equal(usd(90));
  expect(await registry.isCounterpartyAllowed(1n, operator.address, 2n)).to.equal(true);
  expect(await registry.getAgentServices(2n)).to.deep.equal([1n]);
  const service = await registry.getService(1n);
  expect([service.token, service.unitPrice, service.mode, service.active, service.agentId]).to.deep.equal([
    token,
    usd(0.5),
    0n,
    true,
    2n,
  ]);
  expect([service.capability, service.endpoint]).to.deep.equal([CAPABILITY, ENDPOINT]);

  const bobRecord = await reputation.getRecord(2n);
  expect(bobRecord.tasksCompleted).to.equal(1n);
  expect(bobRecord.disputesLost).to.equal(1n);
  expect(bobRecord.callsServed).to.equal(10n);
  expect(bobRecord.ratingCount).to.equal(1n);
  expect((await reputation.getRecord(3n)).votesCoherent).to.equal(1n);
  expect(await reputation.getVolume(2n, token)).to.equal(usd(145));
  expect(await reputation.getLastIndex(2n, alice.address)).to.equal(2n);
  expect(await reputation.getLastIndex(1n, bob.address)).to.equal(1n);
  expect((await reputation.readFeedback(2n, alice.address, 2n)).isRevoked).to.equal(true);
  expect(plain(await reputation.feedbackRights(2n, carol.address))).to.deep.equal([1n, usd(40)]);
  expect(plain(await reputation.feedbackRights(2n, alice.address))).to.deep.equal([0n, 0n]);
  expect(await reputation.getResponseCount(2n, alice.address, 1n, [])).to.equal(1n);
  // Rating mean 95 % (alice's second rating is revoked); P = 2, N = 4: 9,500 x 4 / 8.
  expect(await reputation.score(2n)).to.equal(4_750n);
  expect(await reputation.getClients(2n)).to.deep.equal([alice.address]);
  expect(await reputation.getClients(1n)).to.deep.equal([bob.address]);
}

/** After an upgrade: the state still works, not only reads back. */
async function expectStateStillWorks(
  registry: AgentRegistry,
  reputation: Reputation,
  token: string,
  a: Actors,
  wallet: { deadline: bigint; signature: string },
) {
  const { alice, carol, operator, reporter } = a;
  // The used wallet proof is still remembered (no view exposes it).
  await expect(registry.connect(alice).setAgentWallet(1n, a.dave.address, wallet.deadline, wallet.signature))
    .to.be.revertedWithCustomError(registry, "AgentRegistrySignatureReplayed")
    .withArgs(await walletDigest(registry, wallet.deadline, a));
  // The spend window still holds the 60 spent before the upgrade.
  await expect(registry.connect(reporter).consumeSpend(1n, operator.address, token, usd(91), 2n))
    .to.be.revertedWithCustomError(registry, "AgentRegistryPeriodCapExceeded")
    .withArgs(token, usd(91), usd(90));
  await expect(registry.connect(reporter).consumeSpend(1n, operator.address, token, usd(10), 3n))
    .to.be.revertedWithCustomError(registry, "AgentRegistryCounterpartyNotAllowed")
    .withArgs(3n);
  await expect(registry.connect(reporter).consumeSpend(1n, operator.address, token, usd(90), 2n))
    .to.emit(registry, "SpendConsumed")
    .withArgs(1n, operator.address, token, usd(90), 2n);
  expect(await registry.availableToSpend(1n, operator.address, token)).to.equal(0n);
  // Rights: alice's are used up, carol's one is still there.
  await expect(reputation.connect(alice).giveFeedback(2n, 50n, 0, "", "", "", "", ethers.ZeroHash))
    .to.be.revertedWithCustomError(reputation, "ReputationNoFeedbackRight")
    .withArgs(2n, alice.address);
  await expect(reputation.connect(carol).giveFeedback(2n, 40n, 0, "", "", "", "", ethers.ZeroHash))
    .to.emit(reputation, "NewFeedback")
    .withArgs(2n, carol.address, 1n, 40n, 0n, "", "", "", "", "", ethers.ZeroHash);
  expect(await reputation.getClients(2n)).to.deep.equal([alice.address, carol.address]);
}

/** The EIP-712 digest of the wallet proof `populate` used (the replay error carries it). */
async function walletDigest(registry: AgentRegistry, deadline: bigint, a: Actors) {
  return ethers.TypedDataEncoder.hash(await walletDomain(registry), AGENT_WALLET_TYPES, {
    agentId: 1n,
    newWallet: a.dave.address,
    owner: a.alice.address,
    deadline,
  });
}

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

describe("Upgrade safety", function () {
  async function deployPopulated() {
    const s = await deploySystem();
    const token = await s.usdt.getAddress();
    const populated = await populate(s.registry, s.reputation, token, s);
    return { ...s, token, ...populated };
  }

  describe("storage layout (upgrades plugin)", function () {
    it("AgentRegistry and Reputation are valid UUPS implementations", async function () {
      const registry = await registryFactories();
      const reputation = await reputationFactories();
      await upgrades.validateImplementation(registry.v1, UPGRADE_OPTS);
      await upgrades.validateImplementation(reputation.v1, UPGRADE_OPTS);
    });

    it("the V2 mocks are valid implementations and storage-compatible upgrades", async function () {
      const registry = await registryFactories();
      const reputation = await reputationFactories();
      await upgrades.validateImplementation(registry.v2, UPGRADE_OPTS);
      await upgrades.validateImplementation(reputation.v2, UPGRADE_OPTS);
      await upgrades.validateUpgrade(registry.v1, registry.v2, UPGRADE_OPTS);
      await upgrades.validateUpgrade(reputation.v1, reputation.v2, UPGRADE_OPTS);
    });

    it("rejects an upgrade whose layout drops a namespace", async function () {
      const registry = await registryFactories();
      const reputation = await reputationFactories();
      const cases: [ContractFactory, ContractFactory, RegExp][] = [
        [registry.v1, reputation.v1, /Deleted namespace `erc7201:agentmarket\.storage\.AgentRegistry`/],
        [reputation.v2, reputation.v1, /Deleted namespace `erc7201:agentmarket\.storage\.ReputationV2Mock`/],
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

    it("rejects the implementations without the library-linking allowance", async function () {
      const registry = await registryFactories();
      let error: Error | undefined;
      try {
        await upgrades.validateImplementation(registry.v1, { kind: "uups" });
      } catch (e) {
        error = e as Error;
      }
      expect(error, "external libraries went unnoticed").to.not.equal(undefined);
      expect(error!.message).to.match(/Linking external libraries like `OperatorPolicy`/);
      expect(error!.message).to.match(/Linking external libraries like `ServiceCatalog`/);
    });
  });

  describe("initialisation", function () {
    it("the bare implementations cannot be initialised", async function () {
      const { registryImpl, reputationImpl, admin, registry } = await loadFixture(deploySystem);
      const registryImplementation = AgentRegistry__factory.connect(registryImpl, admin);
      const reputationImplementation = Reputation__factory.connect(reputationImpl, admin);
      await expect(registryImplementation.initialize(admin.address)).to.be.revertedWithCustomError(
        registryImplementation,
        "InvalidInitialization",
      );
      await expect(
        reputationImplementation.initialize(admin.address, await registry.getAddress()),
      ).to.be.revertedWithCustomError(reputationImplementation, "InvalidInitialization");
      // Not even by someone else, and nobody holds a role there.
      const [, , , , , , , stranger] = await ethers.getSigners();
      await expect(registryImplementation.connect(stranger).initialize(stranger.address)).to.be.revertedWithCustomError(
        registryImplementation,
        "InvalidInitialization",
      );
      expect(await registryImplementation.hasRole(DEFAULT_ADMIN_ROLE, admin.address)).to.equal(false);
      expect(await reputationImplementation.hasRole(DEFAULT_ADMIN_ROLE, admin.address)).to.equal(false);
    });

    it("the proxies cannot be initialised twice", async function () {
      const { registry, reputation, stranger } = await loadFixture(deploySystem);
      await expect(registry.connect(stranger).initialize(stranger.address)).to.be.revertedWithCustomError(
        registry,
        "InvalidInitialization",
      );
      await expect(
        reputation.connect(stranger).initialize(stranger.address, stranger.address),
      ).to.be.revertedWithCustomError(reputation, "InvalidInitialization");
      expect(await registry.hasRole(DEFAULT_ADMIN_ROLE, stranger.address)).to.equal(false);
      expect(await reputation.getIdentityRegistry()).to.equal(await registry.getAddress());
    });
  });

  describe("upgradeToAndCall", function () {
    it("reverts for a caller without UPGRADER_ROLE, even the other roles' holders", async function () {
      const { registry, reputation, admin, stranger, operator } = await loadFixture(deploySystem);
      const registryV2 = await (await registryFactories()).v2.deploy();
      const reputationV2 = await (await reputationFactories()).v2.deploy();
      await registry.grantRole(PAUSER_ROLE, operator.address);
      await registry.grantRole(PARAMETER_ROLE, operator.address);
      for (const caller of [stranger, operator]) {
        await expect(registry.connect(caller).upgradeToAndCall(await registryV2.getAddress(), "0x"))
          .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, UPGRADER_ROLE);
        await expect(reputation.connect(caller).upgradeToAndCall(await reputationV2.getAddress(), "0x"))
          .to.be.revertedWithCustomError(reputation, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, UPGRADER_ROLE);
      }
      // The admin that renounced UPGRADER_ROLE cannot upgrade either.
      await registry.renounceRole(UPGRADER_ROLE, admin.address);
      await expect(registry.upgradeToAndCall(await registryV2.getAddress(), "0x"))
        .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
        .withArgs(admin.address, UPGRADER_ROLE);
      expect(await implementationOf(await registry.getAddress())).to.not.equal(await registryV2.getAddress());
    });

    it("reverts on the implementation itself and towards a contract that is not UUPS", async function () {
      const { registry, registryImpl, admin, usdt } = await loadFixture(deploySystem);
      const implementation = AgentRegistry__factory.connect(registryImpl, admin);
      await expect(implementation.upgradeToAndCall(registryImpl, "0x")).to.be.revertedWithCustomError(
        implementation,
        "UUPSUnauthorizedCallContext",
      );
      await expect(registry.upgradeToAndCall(await usdt.getAddress(), "0x"))
        .to.be.revertedWithCustomError(registry, "ERC1967InvalidImplementation")
        .withArgs(await usdt.getAddress());
      expect(await implementationOf(await registry.getAddress())).to.equal(registryImpl);
    });

    it("keeps every piece of state across an upgrade to the V2 mocks, which then work", async function () {
      const s = await loadFixture(deployPopulated);
      const { registry, reputation, token, admin, stranger } = s;
      const registryAddress = await registry.getAddress();
      const reputationAddress = await reputation.getAddress();
      expect(await implementationOf(registryAddress)).to.equal(s.registryImpl);
      expect(await implementationOf(reputationAddress)).to.equal(s.reputationImpl);
      await expectPopulated(registry, reputation, token, s);
      const before = await observe(registry, reputation, token, s);

      const registryV2Impl = await (await registryFactories()).v2.deploy();
      const reputationV2Impl = await (await reputationFactories()).v2.deploy();
      const registryV2Address = await registryV2Impl.getAddress();
      const reputationV2Address = await reputationV2Impl.getAddress();
      await expect(registry.connect(admin).upgradeToAndCall(registryV2Address, "0x"))
        .to.emit(registry, "Upgraded")
        .withArgs(registryV2Address);
      // Upgrade and call: the V2 setter runs in the same transaction, as the admin.
      const setSeven = ReputationV2Mock__factory.createInterface().encodeFunctionData("setV2Value", [7n]);
      await expect(reputation.connect(admin).upgradeToAndCall(reputationV2Address, setSeven))
        .to.emit(reputation, "Upgraded")
        .withArgs(reputationV2Address);
      expect(await implementationOf(registryAddress)).to.equal(registryV2Address);
      expect(await implementationOf(reputationAddress)).to.equal(reputationV2Address);

      // Every view reads the same, then the state keeps working.
      expect(await observe(registry, reputation, token, s)).to.deep.equal(before);
      await expectPopulated(registry, reputation, token, s);

      const registryV2 = AgentRegistryV2Mock__factory.connect(registryAddress, admin);
      const reputationV2 = ReputationV2Mock__factory.connect(reputationAddress, admin);
      expect(await registryV2.versionV2()).to.equal("2.0.0-mock");
      expect(await reputationV2.versionV2()).to.equal("2.0.0-mock");
      expect(await registryV2.v2Value()).to.equal(0n);
      expect(await reputationV2.v2Value()).to.equal(7n);
      await expect(registryV2.setV2Value(42n)).to.emit(registryV2, "V2ValueSet").withArgs(42n);
      await expect(registryV2.connect(stranger).setV2Value(1n))
        .to.be.revertedWithCustomError(registryV2, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, PARAMETER_ROLE);
      expect(await registryV2.v2Value()).to.equal(42n);
      // The new namespace overlaps nothing.
      expect(await observe(registry, reputation, token, s)).to.deep.equal(before);

      await expectStateStillWorks(registry, reputation, token, s, {
        deadline: s.walletDeadline,
        signature: s.walletSignature,
      });
      expect(await registryV2.v2Value()).to.equal(42n);
      expect(await reputationV2.v2Value()).to.equal(7n);
    });
  });

  describe("Ignition Upgrade module", function () {
    it("in process: upgrades the proxies of the System it deploys, keeping their initial state", async function () {
      const [admin] = await ethers.getSigners();
      const system = await ignition.deploy(SystemModule);
      const upgraded = await ignition.deploy(UpgradeModule);
      const registryAddress = await upgraded.registry.getAddress();
      const reputationAddress = await upgraded.reputation.getAddress();
      const registryImplNext = await upgraded.registryImpl.getAddress();
      const reputationImplNext = await upgraded.reputationImpl.getAddress();
      expect(await implementationOf(registryAddress)).to.equal(registryImplNext);
      expect(await implementationOf(reputationAddress)).to.equal(reputationImplNext);
      // The in-process network keeps no journal between runs: the module deployed its own System.
      expect(registryAddress).to.not.equal(await system.registry.getAddress());
      expect(await implementationOf(await system.registry.getAddress())).to.equal(
        await system.registryImpl.getAddress(),
      );

      const registry = AgentRegistry__factory.connect(registryAddress, admin);
      const reputation = Reputation__factory.connect(reputationAddress, admin);
      expect(await registry.reputation()).to.equal(reputationAddress);
      expect(await reputation.getIdentityRegistry()).to.equal(registryAddress);
      for (const role of [DEFAULT_ADMIN_ROLE, UPGRADER_ROLE, PAUSER_ROLE, PARAMETER_ROLE]) {
        expect(await registry.hasRole(role, admin.address)).to.equal(true);
        expect(await reputation.hasRole(role, admin.address)).to.equal(true);
      }
      expect(await registry.name()).to.equal("AgentIdentity");
      expect((await registry.eip712Domain()).name).to.equal("ERC8004IdentityRegistry");
      await expect(registry.initialize(admin.address)).to.be.revertedWithCustomError(registry, "InvalidInitialization");
    });

    it("with a deployment journal: upgrades the System's own proxies, and all their state survives", async function () {
      const [admin, alice, bob, carol, dave, operator, reporter] = await ethers.getSigners();
      const actors = { admin, alice, bob, carol, dave, operator, reporter };
      const deploymentDir = fs.mkdtempSync(path.join(os.tmpdir(), "ignition-upgrade-"));
      try {
        const system = await deployWithJournal(SystemModule, deploymentDir);
        const registryAddress = system["System#AgentRegistryProxy"];
        const reputationAddress = system["System#ReputationProxy"];
        expect(await implementationOf(registryAddress)).to.equal(system["System#AgentRegistryImpl"]);
        expect(await implementationOf(reputationAddress)).to.equal(system["System#ReputationImpl"]);

        const registry = AgentRegistry__factory.connect(registryAddress, admin);
        const reputation = Reputation__factory.connect(reputationAddress, admin);
        const token = await (await ethers.deployContract("MockStablecoin", ["Tether USD (mock)", "USDT"])).getAddress();
        const populated = await populate(registry, reputation, token, actors);
        await expectPopulated(registry, reputation, token, actors);
        const before = await observe(registry, reputation, token, actors);

        const upgraded = await deployWithJournal(UpgradeModule, deploymentDir);
        // The journal made Ignition reuse the System deployment rather than deploy another.
        expect(upgraded["System#AgentRegistryProxy"]).to.equal(registryAddress);
        expect(upgraded["System#ReputationProxy"]).to.equal(reputationAddress);
        const registryImplNext = upgraded["Upgrade#AgentRegistryImplNext"];
        const reputationImplNext = upgraded["Upgrade#ReputationImplNext"];
        expect(registryImplNext).to.not.equal(system["System#AgentRegistryImpl"]);
        expect(reputationImplNext).to.not.equal(system["System#ReputationImpl"]);
        expect(await implementationOf(registryAddress)).to.equal(registryImplNext);
        expect(await implementationOf(reputationAddress)).to.equal(reputationImplNext);

        expect(await observe(registry, reputation, token, actors)).to.deep.equal(before);
        await expectStateStillWorks(registry, reputation, token, actors, {
          deadline: populated.walletDeadline,
          signature: populated.walletSignature,
        });
      } finally {
        fs.rmSync(deploymentDir, { recursive: true, force: true });
      }
    });
  });
});
