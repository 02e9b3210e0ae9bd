import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, setBalance, time } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import type { ContractTransactionResponse } from "ethers";
import type { AgentRegistry, IAgentRegistry } from "../../typechain-types";
import {
  DEFAULT_ADMIN_ROLE,
  PAUSER_ROLE,
  SPENDER_ROLE,
  UPGRADER_ROLE,
  deploySystem,
  deployWithAgents,
} from "../fixtures/system";
import {
  AGENT_WALLET_TYPES,
  malleate,
  now,
  pinNextBlock,
  signAgentWallet,
  usd,
  walletDomain,
} from "../fixtures/helpers";

// ---------------------------------------------------------------------- constants

const REGISTER_EMPTY = "register()";
const REGISTER_URI = "register(string)";
const REGISTER_META = "register(string,(string,bytes)[])";

const MAX_URI_BYTES = 2048n;
const MAX_KEY_BYTES = 64n;
const MAX_VALUE_BYTES = 1024n;
const MAX_METADATA_ENTRIES = 16n;
const MAX_DEADLINE_DELAY = 300n;
const MAX_BATCH = 32n;
const MAX_ENDPOINT_BYTES = 512n;
const MAX_SERVICES_PER_AGENT = 64n;
const NEUTRAL_BPS = 5000n;

const HOUR = 3_600n;
const DAY = 86_400n;
const UNKNOWN_AGENT = 99n;

const PAY_PER_USE = 0;
const QUOTED_TASK = 1;
const CAPABILITY = ethers.id("translate:en-fr");
const ENDPOINT = "https://alice.example/mcp";

const IERC165_ID = "0x01ffc9a7";
const IERC721_ID = "0x80ac58cd";
const IERC721_METADATA_ID = "0x5b5e139f";
const IERC4906_ID = "0x49064906";
const IACCESS_CONTROL_ID = "0x7965db0b";

// ---------------------------------------------------------------------- helpers

/** Operator terms, inline. */
function terms(expiry: bigint, minScoreBps = 0, allowListOnly = false): IAgentRegistry.OperatorTermsStruct {
  return { expiry, minScoreBps, allowListOnly };
}

/** Pins the timestamp of the next block `offset` seconds after the latest one and returns it. */
async function pinNextTimestamp(offset = 10n): Promise<bigint> {
  const ts = (await now()) + offset;
  await time.setNextBlockTimestamp(ts);
  return ts;
}

/** The first multiple of `period` at least a minute after the latest block. */
async function nextBoundary(period: bigint): Promise<bigint> {
  const latest = await now();
  const boundary = (latest / period + 1n) * period;
  return boundary - latest < 60n ? boundary + period : boundary;
}

/** The events named `name` emitted by the registry in a transaction, decoded, in order. */
async function eventsOf(registry: AgentRegistry, tx: Promise<ContractTransactionResponse>, name: string) {
  const receipt = await (await tx).wait();
  return receipt!.logs
    .map((log) => {
      try {
        return registry.interface.parseLog(log);
      } catch {
        return null;
      }
    })
    .filter((e) => e !== null && e.name === name);
}

/** The EIP-712 digest the registry checks for an AgentWalletSet proof. */
async function walletDigest(
  registry: AgentRegistry,
  agentId: bigint,
  newWallet: string,
  owner: string,
  deadline: bigint,
) {
  return ethers.TypedDataEncoder.hash(await walletDomain(registry), AGENT_WALLET_TYPES, {
    agentId,
    newWallet,
    owner,
    deadline,
  });
}

// ---------------------------------------------------------------------- fixtures

/** Three agents plus a contract wallet owned by dave and a contract that rejects ERC-721. */
async function contractsFixture() {
  const s = await deployWithAgents();
  const contractWallet = await ethers.deployContract("MockERC1271Wallet", [s.dave.address]);
  const rejecter = await ethers.deployContract("MockRevertingReceiver");
  return { ...s, contractWallet, rejecter };
}

/** Alice's agent (#1) has dave's EOA as agent wallet. */
async function agentWalletFixture() {
  const s = await deployWithAgents();
  const deadline = (await now()) + 100n;
  const signature = await signAgentWallet(s.registry, s.dave, s.aliceId, s.dave.address, s.alice.address, deadline);
  await s.registry.connect(s.alice).setAgentWallet(s.aliceId, s.dave.address, deadline, signature);
  return { ...s, walletDeadline: deadline, walletSignature: signature };
}

/**
 * Alice's agent (#1) has `operator` for 30 days (no score, no allow-list) with a USDT limit of
 * 100 per transaction and 250 per fixed day.
 */
async function operatorFixture() {
  const s = await deployWithAgents();
  const usdtAddr = await s.usdt.getAddress();
  const usdgAddr = await s.usdg.getAddress();
  const expiry = (await now()) + 30n * DAY;
  const limit = { perTxCap: usd(100), periodCap: usd(250), period: DAY, rolling: false };
  await s.registry.connect(s.alice).setOperator(s.aliceId, s.operator.address, terms(expiry));
  await s.registry.connect(s.alice).setTokenLimit(s.aliceId, s.operator.address, usdtAddr, limit);
  return { ...s, usdtAddr, usdgAddr, expiry, limit };
}

/** operatorFixture, plus dave's EOA as agent wallet of agent #1. */
async function operatorAndWalletFixture() {
  const s = await operatorFixture();
  const deadline = (await now()) + 100n;
  const signature = await signAgentWallet(s.registry, s.dave, s.aliceId, s.dave.address, s.alice.address, deadline);
  await s.registry.connect(s.alice).setAgentWallet(s.aliceId, s.dave.address, deadline, signature);
  return s;
}

/** Alice's agent lists one pay-per-use service (#1) at 0.25 USDT per call. */
async function serviceFixture() {
  const s = await deployWithAgents();
  const usdtAddr = await s.usdt.getAddress();
  const price = usd("0.25");
  await s.registry.connect(s.alice).listService(s.aliceId, CAPABILITY, PAY_PER_USE, usdtAddr, price, ENDPOINT);
  return { ...s, usdtAddr, price, serviceId: 1n };
}

/** Alice's agent lists the maximum of 64 quoted services. */
async function fullCatalogFixture() {
  const s = await deployWithAgents();
  for (let i = 0; i < Number(MAX_SERVICES_PER_AGENT); i++) {
    await s.registry
      .connect(s.alice)
      .listService(s.aliceId, ethers.id(`capability-${i}`), QUOTED_TASK, ethers.ZeroAddress, 0, `${ENDPOINT}/${i}`);
  }
  return s;
}

// ---------------------------------------------------------------------- tests

describe("AgentRegistry", function () {
  describe("deployment", function () {
    it("has the ERC-721 name and symbol, VERSION and getVersion 1.0.0", async function () {
      // The EIP-712 domain is checked in Erc8004Compat.test.ts.
      const { registry } = await loadFixture(deploySystem);
      expect(await registry.name()).to.equal("AgentIdentity");
      expect(await registry.symbol()).to.equal("AGENT");
      expect(await registry.VERSION()).to.equal("1.0.0");
      expect(await registry.getVersion()).to.equal("1.0.0");
      expect(await registry.SPENDER_ROLE()).to.equal(SPENDER_ROLE);
    });

    it("starts empty and gives the admin every administrative role", async function () {
      const { registry, admin } = await loadFixture(deploySystem);
      expect(await registry.agentCount()).to.equal(0n);
      expect(await registry.serviceCount()).to.equal(0n);
      expect(await registry.paused()).to.equal(false);
      for (const role of [DEFAULT_ADMIN_ROLE, UPGRADER_ROLE, PAUSER_ROLE, ethers.id("PARAMETER_ROLE")]) {
        expect(await registry.hasRole(role, admin.address)).to.equal(true);
      }
      expect(await registry.hasRole(SPENDER_ROLE, admin.address)).to.equal(false);
    });

    it("reverts with InvalidInitialization when initialize is called again, on the proxy or the implementation", async function () {
      const { registry, registryImpl, stranger } = await loadFixture(deploySystem);
      await expect(registry.connect(stranger).initialize(stranger.address)).to.be.revertedWithCustomError(
        registry,
        "InvalidInitialization",
      );
      const impl = registry.attach(registryImpl) as AgentRegistry;
      await expect(impl.connect(stranger).initialize(stranger.address)).to.be.revertedWithCustomError(
        registry,
        "InvalidInitialization",
      );
    });

    it("reverts upgradeToAndCall from an account without UPGRADER_ROLE", async function () {
      const { registry, registryImpl, stranger } = await loadFixture(deploySystem);
      await expect(registry.connect(stranger).upgradeToAndCall(registryImpl, "0x"))
        .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, UPGRADER_ROLE);
    });
  });

  describe("supportsInterface", function () {
    it("supports ERC-165, ERC-721, ERC-721 Metadata, ERC-4906 and AccessControl", async function () {
      const { registry } = await loadFixture(deploySystem);
      for (const id of [IERC165_ID, IERC721_ID, IERC721_METADATA_ID, IERC4906_ID, IACCESS_CONTROL_ID]) {
        expect(await registry.supportsInterface(id), id).to.equal(true);
      }
    });

    it("does not support 0xffffffff or an unrelated interface", async function () {
      const { registry } = await loadFixture(deploySystem);
      expect(await registry.supportsInterface("0xffffffff")).to.equal(false);
      expect(await registry.supportsInterface("0x36372b07")).to.equal(false); // ERC-20
    });
  });

  // ==================================================================== identity

  describe("register()", function () {
    it("mints agent 1 to the caller without URI and emits Registered and Transfer, but no MetadataUpdate", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      expect(await registry.connect(alice).getFunction(REGISTER_EMPTY).staticCall()).to.equal(1n);

      const tx = registry.connect(alice).getFunction(REGISTER_EMPTY)();
      await expect(tx).to.emit(registry, "Registered").withArgs(1n, "", alice.address);
      await expect(tx).to.emit(registry, "Transfer").withArgs(ethers.ZeroAddress, alice.address, 1n);
      await expect(tx).not.to.emit(registry, "MetadataUpdate");

      expect(await registry.ownerOf(1n)).to.equal(alice.address);
      expect(await registry.balanceOf(alice.address)).to.equal(1n);
      expect(await registry.tokenURI(1n)).to.equal("");
      expect(await registry.agentCount()).to.equal(1n);
      expect(await registry.isAgentActive(1n)).to.equal(true);
    });

    it("gives increasing ids across callers and overloads", async function () {
      const { registry, alice, bob } = await loadFixture(deploySystem);
      await registry.connect(alice).getFunction(REGISTER_EMPTY)();
      await registry.connect(bob).getFunction(REGISTER_URI)("ipfs://bob");
      await registry.connect(alice).getFunction(REGISTER_META)("ipfs://alice2", []);
      await expect(registry.connect(bob).getFunction(REGISTER_EMPTY)())
        .to.emit(registry, "Registered")
        .withArgs(4n, "", bob.address);
      expect(await registry.ownerOf(1n)).to.equal(alice.address);
      expect(await registry.ownerOf(2n)).to.equal(bob.address);
      expect(await registry.ownerOf(3n)).to.equal(alice.address);
      expect(await registry.ownerOf(4n)).to.equal(bob.address);
      expect(await registry.agentCount()).to.equal(4n);
    });

    it("reverts with EnforcedPause while the registry is paused", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      await registry.pause();
      await expect(registry.connect(alice).getFunction(REGISTER_EMPTY)()).to.be.revertedWithCustomError(
        registry,
        "EnforcedPause",
      );
      expect(await registry.agentCount()).to.equal(0n);
    });
  });

  describe("register(string)", function () {
    it("mints with the URI and emits Registered, Transfer and MetadataUpdate", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      const tx = registry.connect(alice).getFunction(REGISTER_URI)("ipfs://alice");
      await expect(tx).to.emit(registry, "Registered").withArgs(1n, "ipfs://alice", alice.address);
      await expect(tx).to.emit(registry, "Transfer").withArgs(ethers.ZeroAddress, alice.address, 1n);
      await expect(tx).to.emit(registry, "MetadataUpdate").withArgs(1n);
      expect(await registry.tokenURI(1n)).to.equal("ipfs://alice");
      expect(await registry.ownerOf(1n)).to.equal(alice.address);
    });

    it("continues after the fixture's three agents with id 4", async function () {
      const { registry, dave } = await loadFixture(deployWithAgents);
      expect(await registry.connect(dave).getFunction(REGISTER_URI).staticCall("ipfs://dave")).to.equal(4n);
      await expect(registry.connect(dave).getFunction(REGISTER_URI)("ipfs://dave"))
        .to.emit(registry, "Registered")
        .withArgs(4n, "ipfs://dave", dave.address);
      expect(await registry.agentCount()).to.equal(4n);
    });

    it("accepts a URI of exactly 2,048 bytes", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      const uri = "u".repeat(Number(MAX_URI_BYTES));
      await registry.connect(alice).getFunction(REGISTER_URI)(uri);
      expect(await registry.tokenURI(1n)).to.equal(uri);
    });

    it("reverts with AgentRegistryEmptyInput for an empty URI", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      await expect(registry.connect(alice).getFunction(REGISTER_URI)("")).to.be.revertedWithCustomError(
        registry,
        "AgentRegistryEmptyInput",
      );
    });

    it("reverts with AgentRegistryInputTooLong(2049, 2048) for a URI one byte too long", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      await expect(registry.connect(alice).getFunction(REGISTER_URI)("u".repeat(2049)))
        .to.be.revertedWithCustomError(registry, "AgentRegistryInputTooLong")
        .withArgs(2049n, MAX_URI_BYTES);
    });

    it("counts the URI length in bytes, not characters", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      // 1,025 two-byte characters: 2,050 bytes.
      await expect(registry.connect(alice).getFunction(REGISTER_URI)("é".repeat(1025)))
        .to.be.revertedWithCustomError(registry, "AgentRegistryInputTooLong")
        .withArgs(2050n, MAX_URI_BYTES);
    });

    it("reverts with EnforcedPause while the registry is paused", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      await registry.pause();
      await expect(registry.connect(alice).getFunction(REGISTER_URI)("ipfs://alice")).to.be.revertedWithCustomError(
        registry,
        "EnforcedPause",
      );
    });

    it("mints to a contract wallet that implements onERC721Received (via MockERC1271Wallet.execute)", async function () {
      const { registry, contractWallet, dave } = await loadFixture(contractsFixture);
      const walletAddr = await contractWallet.getAddress();
      const data = registry.interface.encodeFunctionData(REGISTER_URI, ["ipfs://contract"]);
      const tx = contractWallet.connect(dave).execute(await registry.getAddress(), 0, data);
      await expect(tx).to.emit(registry, "Registered").withArgs(4n, "ipfs://contract", walletAddr);
      await expect(tx).to.emit(registry, "Transfer").withArgs(ethers.ZeroAddress, walletAddr, 4n);
      expect(await registry.ownerOf(4n)).to.equal(walletAddr);
    });

    it("reverts with the receiver's error when the calling contract rejects ERC-721 (MockRevertingReceiver)", async function () {
      const { registry, rejecter } = await loadFixture(contractsFixture);
      const rejecterAddr = await rejecter.getAddress();
      await setBalance(rejecterAddr, ethers.parseEther("1"));
      const asRejecter = await ethers.getImpersonatedSigner(rejecterAddr);
      await expect(registry.connect(asRejecter).getFunction(REGISTER_URI)("ipfs://rejecter"))
        .to.be.revertedWithCustomError(rejecter, "MockRevertingReceiverERC721Rejected")
        .withArgs(await registry.getAddress(), 4n);
      expect(await registry.agentCount()).to.equal(3n);
      expect(await registry.ownerOfAgent(4n)).to.equal(ethers.ZeroAddress);
    });

    it("reverts with ERC721InvalidReceiver when the calling contract has no onERC721Received", async function () {
      const { registry, usdt } = await loadFixture(contractsFixture);
      const usdtAddr = await usdt.getAddress();
      await setBalance(usdtAddr, ethers.parseEther("1"));
      const asToken = await ethers.getImpersonatedSigner(usdtAddr);
      await expect(registry.connect(asToken).getFunction(REGISTER_URI)("ipfs://token"))
        .to.be.revertedWithCustomError(registry, "ERC721InvalidReceiver")
        .withArgs(usdtAddr);
      expect(await registry.agentCount()).to.equal(3n);
    });
  });

  describe("register(string,(string,bytes)[])", function () {
    it("stores every entry, emits MetadataSet per entry in order, then Registered, Transfer and MetadataUpdate", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      const metadata = [
        { metadataKey: "name", metadataValue: ethers.toUtf8Bytes("Alice") },
        { metadataKey: "model", metadataValue: "0xc0ffee" },
      ];
      const tx = registry.connect(alice).getFunction(REGISTER_META)("ipfs://alice", metadata);
      await expect(tx)
        .to.emit(registry, "MetadataSet")
        .withArgs(1n, "name", "name", ethers.hexlify(ethers.toUtf8Bytes("Alice")));
      await expect(tx).to.emit(registry, "MetadataSet").withArgs(1n, "model", "model", "0xc0ffee");
      await expect(tx).to.emit(registry, "Registered").withArgs(1n, "ipfs://alice", alice.address);
      await expect(tx).to.emit(registry, "Transfer").withArgs(ethers.ZeroAddress, alice.address, 1n);
      await expect(tx).to.emit(registry, "MetadataUpdate").withArgs(1n);

      const events = await eventsOf(registry, tx, "MetadataSet");
      expect(events.map((e) => e!.args.metadataKey)).to.deep.equal(["name", "model"]);

      expect(await registry.getMetadata(1n, "name")).to.equal(ethers.hexlify(ethers.toUtf8Bytes("Alice")));
      expect(await registry.getMetadata(1n, "model")).to.equal("0xc0ffee");
      expect(await registry.getMetadata(1n, "missing")).to.equal("0x");
      expect(await registry.tokenURI(1n)).to.equal("ipfs://alice");
    });

    it("registers with an empty metadata list and emits no MetadataSet", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      const tx = registry.connect(alice).getFunction(REGISTER_META)("ipfs://alice", []);
      await expect(tx).to.emit(registry, "Registered").withArgs(1n, "ipfs://alice", alice.address);
      await expect(tx).not.to.emit(registry, "MetadataSet");
    });

    it("accepts exactly 16 entries, a 64-byte key and a 1,024-byte value", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      const metadata = Array.from({ length: Number(MAX_METADATA_ENTRIES) }, (_, i) => ({
        metadataKey: `k${i}`,
        metadataValue: ethers.toBeHex(i + 1, 1),
      }));
      metadata[0] = { metadataKey: "k".repeat(Number(MAX_KEY_BYTES)), metadataValue: "0x" + "ab".repeat(1024) };
      const tx = registry.connect(alice).getFunction(REGISTER_META)("ipfs://alice", metadata);
      expect((await eventsOf(registry, tx, "MetadataSet")).length).to.equal(16);
      expect(await registry.getMetadata(1n, "k".repeat(64))).to.equal("0x" + "ab".repeat(1024));
      expect(await registry.getMetadata(1n, "k15")).to.equal("0x10");
    });

    it("reverts with AgentRegistryBatchTooLarge(17, 16) for 17 entries", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      const metadata = Array.from({ length: 17 }, (_, i) => ({ metadataKey: `k${i}`, metadataValue: "0x01" }));
      await expect(registry.connect(alice).getFunction(REGISTER_META)("ipfs://alice", metadata))
        .to.be.revertedWithCustomError(registry, "AgentRegistryBatchTooLarge")
        .withArgs(17n, MAX_METADATA_ENTRIES);
    });

    it("reverts with AgentRegistryReservedKey for the key agentWallet", async function () {
      const { registry, alice, dave } = await loadFixture(deploySystem);
      const metadata = [{ metadataKey: "agentWallet", metadataValue: dave.address }];
      await expect(
        registry.connect(alice).getFunction(REGISTER_META)("ipfs://alice", metadata),
      ).to.be.revertedWithCustomError(registry, "AgentRegistryReservedKey");
    });

    it("reverts with AgentRegistryEmptyInput for an empty key", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      const metadata = [{ metadataKey: "", metadataValue: "0x01" }];
      await expect(
        registry.connect(alice).getFunction(REGISTER_META)("ipfs://alice", metadata),
      ).to.be.revertedWithCustomError(registry, "AgentRegistryEmptyInput");
    });

    it("reverts with AgentRegistryInputTooLong(65, 64) for a 65-byte key", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      const metadata = [{ metadataKey: "k".repeat(65), metadataValue: "0x01" }];
      await expect(registry.connect(alice).getFunction(REGISTER_META)("ipfs://alice", metadata))
        .to.be.revertedWithCustomError(registry, "AgentRegistryInputTooLong")
        .withArgs(65n, MAX_KEY_BYTES);
    });

    it("reverts with AgentRegistryInputTooLong(1025, 1024) for a 1,025-byte value", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      const metadata = [{ metadataKey: "blob", metadataValue: "0x" + "ab".repeat(1025) }];
      await expect(registry.connect(alice).getFunction(REGISTER_META)("ipfs://alice", metadata))
        .to.be.revertedWithCustomError(registry, "AgentRegistryInputTooLong")
        .withArgs(1025n, MAX_VALUE_BYTES);
    });

    it("reverts with AgentRegistryEmptyInput for an empty URI and InputTooLong for a long one", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      await expect(registry.connect(alice).getFunction(REGISTER_META)("", [])).to.be.revertedWithCustomError(
        registry,
        "AgentRegistryEmptyInput",
      );
      await expect(registry.connect(alice).getFunction(REGISTER_META)("u".repeat(2049), []))
        .to.be.revertedWithCustomError(registry, "AgentRegistryInputTooLong")
        .withArgs(2049n, MAX_URI_BYTES);
    });

    it("reverts with EnforcedPause while the registry is paused, and stores nothing", async function () {
      const { registry, alice } = await loadFixture(deploySystem);
      await registry.pause();
      const metadata = [{ metadataKey: "name", metadataValue: "0x01" }];
      await expect(
        registry.connect(alice).getFunction(REGISTER_META)("ipfs://alice", metadata),
      ).to.be.revertedWithCustomError(registry, "EnforcedPause");
      expect(await registry.getMetadata(1n, "name")).to.equal("0x");
      expect(await registry.agentCount()).to.equal(0n);
    });
  });

  describe("tokenURI", function () {
    it("reverts with ERC721NonexistentToken for an unknown agent", async function () {
      const { registry } = await loadFixture(deployWithAgents);
      await expect(registry.tokenURI(UNKNOWN_AGENT))
        .to.be.revertedWithCustomError(registry, "ERC721NonexistentToken")
        .withArgs(UNKNOWN_AGENT);
    });
  });

  describe("setAgentURI", function () {
    it("lets the owner change the URI and emits URIUpdated and MetadataUpdate", async function () {
      const { registry, alice, aliceId } = await loadFixture(deployWithAgents);
      const tx = registry.connect(alice).setAgentURI(aliceId, "ipfs://alice-v2");
      await expect(tx).to.emit(registry, "URIUpdated").withArgs(aliceId, "ipfs://alice-v2", alice.address);
      await expect(tx).to.emit(registry, "MetadataUpdate").withArgs(aliceId);
      expect(await registry.tokenURI(aliceId)).to.equal("ipfs://alice-v2");
    });

    it("lets the ERC-721 approved address change it, reported as updatedBy", async function () {
      const { registry, alice, dave, aliceId } = await loadFixture(deployWithAgents);
      await registry.connect(alice).approve(dave.address, aliceId);
      await expect(registry.connect(dave).setAgentURI(aliceId, "ipfs://by-dave"))
        .to.emit(registry, "URIUpdated")
        .withArgs(aliceId, "ipfs://by-dave", dave.address);
      expect(await registry.tokenURI(aliceId)).to.equal("ipfs://by-dave");
    });

    it("lets an approved-for-all operator change it", async function () {
      const { registry, alice, dave, aliceId } = await loadFixture(deployWithAgents);
      await registry.connect(alice).setApprovalForAll(dave.address, true);
      await expect(registry.connect(dave).setAgentURI(aliceId, "ipfs://by-dave"))
        .to.emit(registry, "URIUpdated")
        .withArgs(aliceId, "ipfs://by-dave", dave.address);
    });

    it("reverts with AgentRegistryNotController for a stranger, another agent's owner and an operator key", async function () {
      const { registry, stranger, bob, operator, aliceId } = await loadFixture(operatorFixture);
      for (const caller of [stranger, bob, operator]) {
        await expect(registry.connect(caller).setAgentURI(aliceId, "ipfs://x"))
          .to.be.revertedWithCustomError(registry, "AgentRegistryNotController")
          .withArgs(aliceId, caller.address);
      }
    });

    it("reverts with AgentRegistryUnknownAgent for an unknown agent", async function () {
      const { registry, alice } = await loadFixture(deployWithAgents);
      await expect(registry.connect(alice).setAgentURI(UNKNOWN_AGENT, "ipfs://x"))
        .to.be.revertedWithCustomError(registry, "AgentRegistryUnknownAgent")
        .withArgs(UNKNOWN_AGENT);
    });

    it("reverts with AgentRegistryEmptyInput / AgentRegistryInputTooLong for a bad URI", async function () {
      const { registry, alice, aliceId } = await loadFixture(deployWithAgents);
      await expect(registry.connect(alice).setAgentURI(aliceId, "")).to.be.revertedWithCustomError(
        registry,
        "AgentRegistryEmptyInput",
      );
      await expect(registry.connect(alice).setAgentURI(aliceId, "u".repeat(2049)))
        .to.be.revertedWithCustomError(registry, "AgentRegistryInputTooLong")
        .withArgs(2049n, MAX_URI_BYTES);
    });
  });

  describe("setMetadata / getMetadata", function () {
    it("lets the owner set an entry and emits MetadataSet with the key indexed and in clear", async function () {
      const { registry, alice, aliceId } = await loadFixture(deployWithAgents);
      await expect(registry.connect(alice).setMetadata(aliceId, "name", "0x416c696365"))
        .to.emit(registry, "MetadataSet")
        .withArgs(aliceId, "name", "name", "0x416c696365");
      expect(await registry.getMetadata(aliceId, "name")).to.equal("0x416c696365");
      expect(await registry.getMetadata(2n, "name")).to.equal("0x");
    });

    it("lets the approved address and an approved-for-all operator set entries", async function () {
      const { registry, alice, carol, dave, aliceId } = await loadFixture(deployWithAgents);
      await registry.connect(alice).approve(dave.address, aliceId);
      await registry.connect(alice).setApprovalForAll(carol.address, true);
      await expect(registry.connect(dave).setMetadata(aliceId, "a", "0x01"))
        .to.emit(registry, "MetadataSet")
        .withArgs(aliceId, "a", "a", "0x01");
      await expect(registry.connect(carol).setMetadata(aliceId, "b", "0x02"))
        .to.emit(registry, "MetadataSet")
        .withArgs(aliceId, "b", "b", "0x02");
      expect(await registry.getMetadata(aliceId, "a")).to.equal("0x01");
      expect(await registry.getMetadata(aliceId, "b")).to.equal("0x02");
    });

    it("overwrites an entry, and an empty value clears it", async function () {
      const { registry, alice, aliceId } = await loadFixture(deployWithAgents);
      await registry.connect(alice).setMetadata(aliceId, "name", "0x01");
      await registry.connect(alice).setMetadata(aliceId, "name", "0x0203");
      expect(await registry.getMetadata(aliceId, "name")).to.equal("0x0203");
      await expect(registry.connect(alice).setMetadata(aliceId, "name", "0x"))
        .to.emit(registry, "MetadataSet")
        .withArgs(aliceId, "name", "name", "0x");
      expect(await registry.getMetadata(aliceId, "name")).to.equal("0x");
    });

    it("reverts with AgentRegistryNotController for a stranger and an operator key", async function () {
      const { registry, stranger, operator, aliceId } = await loadFixture(operatorFixture);
      for (const caller of [stranger, operator]) {
        await expect(registry.connect(caller).setMetadata(aliceId, "name", "0x01"))
          .to.be.revertedWithCustomError(registry, "AgentRegistryNotController")
          .withArgs(aliceId, caller.address);
      }
    });

    it("reverts with AgentRegistryUnknownAgent for an unknown agent", async function () {
      const { registry, alice } = await loadFixture(deployWithAgents);
      await expect(registry.connect(alice).setMetadata(UNKNOWN_AGENT, "name", "0x01"))
        .to.be.revertedWithCustomError(registry, "AgentRegistryUnknownAgent")
        .withArgs(UNKNOWN_AGENT);
    });

    it("reverts with AgentRegistryReservedKey for agentWallet", async function () {
      const { registry, alice, dave, aliceId } = await loadFixture(deployWithAgents);
      await expect(
        registry.connect(alice).setMetadata(aliceId, "agentWallet", dave.address),
      ).to.be.revertedWithCustomError(registry, "AgentRegistryReservedKey");
      await expect(registry.connect(alice).setMetadata(aliceId, "agentWallet", "0x")).to.be.revertedWithCustomError(
        registry,
        "AgentRegistryReservedKey",
      );
    });

    it("reverts for an empty key, a 65-byte key and a 1,025-byte value", async function () {
      const { registry, alice, aliceId } = await loadFixture(deployWithAgents);
      await expect(registry.connect(alice).setMetadata(aliceId, "", "0x01")).to.be.revertedWithCustomError(
        registry,
        "AgentRegistryEmptyInput",
      );
      await expect(registry.connect(alice).setMetadata(aliceId, "k".repeat(65), "0x01"))
        .to.be.revertedWithCustomError(registry, "AgentRegistryInputTooLong")
        .withArgs(65n, MAX_KEY_BYTES);
      await expect(registry.connect(alice).setMetadata(aliceId, "blob", "0x" + "00".repeat(1025)))
        .to.be.revertedWithCustomError(registry, "AgentRegistryInputTooLong")
        .withArgs(1025n, MAX_VALUE_BYTES);
    });

    it("getMetadata(agentWallet) returns 0x without wallet and the 20-byte wallet once set", async function () {
      const { registry, alice, dave, aliceId } = await loadFixture(deployWithAgents);
      expect(await registry.getMetadata(aliceId, "agentWallet")).to.equal("0x");
      const deadline = (await now()) + 100n;
      const sig = await signAgentWallet(registry, dave, aliceId, dave.address, alice.address, deadline);
      await registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, sig);
      expect(await registry.getMetadata(aliceId, "agentWallet")).to.equal(dave.address.toLowerCase());
      expect(ethers.dataLength(await registry.getMetadata(aliceId, "agentWallet"))).to.equal(20);
    });

    it("getMetadata of an unknown agent returns 0x", async function () {
      const { registry } = await loadFixture(deployWithAgents);
      expect(await registry.getMetadata(UNKNOWN_AGENT, "name")).to.equal("0x");
      expect(await registry.getMetadata(UNKNOWN_AGENT, "agentWallet")).to.equal("0x");
    });
  });

  // ==================================================================== agent wallet

  describe("setAgentWallet", function () {
    it("sets an EOA wallet from its signature and emits MetadataSet(agentWallet, 20 bytes)", async function () {
      const { registry, alice, dave, aliceId } = await loadFixture(deployWithAgents);
      const deadline = (await now()) + 100n;
      const sig = await signAgentWallet(registry, dave, aliceId, dave.address, alice.address, deadline);
      await expect(registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, sig))
        .to.emit(registry, "MetadataSet")
        .withArgs(aliceId, "agentWallet", "agentWallet", dave.address.toLowerCase());
      expect(await registry.getAgentWallet(aliceId)).to.equal(dave.address);
      expect(await registry.canAct(aliceId, dave.address)).to.equal(true);
      expect(await registry.ownerOf(aliceId)).to.equal(alice.address);
    });

    it("replaces a wallet with another one", async function () {
      const { registry, alice, carol, aliceId } = await loadFixture(agentWalletFixture);
      const deadline = (await now()) + 100n;
      const sig = await signAgentWallet(registry, carol, aliceId, carol.address, alice.address, deadline);
      await expect(registry.connect(alice).setAgentWallet(aliceId, carol.address, deadline, sig))
        .to.emit(registry, "MetadataSet")
        .withArgs(aliceId, "agentWallet", "agentWallet", carol.address.toLowerCase());
      expect(await registry.getAgentWallet(aliceId)).to.equal(carol.address);
    });

    it("lets an approved controller set it with a proof naming the owner", async function () {
      const { registry, alice, bob, dave, aliceId } = await loadFixture(deployWithAgents);
      await registry.connect(alice).approve(bob.address, aliceId);
      const deadline = (await now()) + 100n;
      const sig = await signAgentWallet(registry, dave, aliceId, dave.address, alice.address, deadline);
      await expect(registry.connect(bob).setAgentWallet(aliceId, dave.address, deadline, sig))
        .to.emit(registry, "MetadataSet")
        .withArgs(aliceId, "agentWallet", "agentWallet", dave.address.toLowerCase());
      expect(await registry.getAgentWallet(aliceId)).to.equal(dave.address);
    });

    it("reverts with AgentRegistryInvalidWalletSignature when an approved controller's proof names itself as owner", async function () {
      const { registry, alice, bob, dave, aliceId } = await loadFixture(deployWithAgents);
      await registry.connect(alice).approve(bob.address, aliceId);
      const deadline = (await now()) + 100n;
      const sig = await signAgentWallet(registry, dave, aliceId, dave.address, bob.address, deadline);
      await expect(registry.connect(bob).setAgentWallet(aliceId, dave.address, deadline, sig))
        .to.be.revertedWithCustomError(registry, "AgentRegistryInvalidWalletSignature")
        .withArgs(dave.address);
    });

    it("sets an ERC-1271 contract wallet whose owner signed the digest", async function () {
      const { registry, alice, dave, aliceId, contractWallet } = await loadFixture(contractsFixture);
      const walletAddr = await contractWallet.getAddress();
      const deadline = (await now()) + 100n;
      const sig = await signAgentWallet(registry, dave, aliceId, walletAddr, alice.address, deadline);
      await expect(registry.connect(alice).setAgentWallet(aliceId, walletAddr, deadline, sig))
        .to.emit(registry, "MetadataSet")
        .withArgs(aliceId, "agentWallet", "agentWallet", walletAddr.toLowerCase());
      expect(await registry.getAgentWallet(aliceId)).to.equal(walletAddr);
    });

    it("reverts with AgentRegistryInvalidWalletSignature when the ERC-1271 wallet rejects the proof", async function () {
      const { registry, alice, dave, aliceId, contractWallet } = await loadFixture(contractsFixture);
      const walletAddr = await contractWallet.getAddress();
      await contractWallet.connect(dave).setRejectAll(true);
      const deadline = (await now()) + 100n;
      const sig = await signAgentWallet(registry, dave, aliceId, walletAddr, alice.address, deadline);
      await expect(registry.connect(alice).setAgentWallet(aliceId, walletAddr, deadline, sig))
        .to.be.revertedWithCustomError(registry, "AgentRegistryInvalidWalletSignature")
        .withArgs(walletAddr);
    });

    it("reverts with AgentRegistryInvalidWalletSignature when the ERC-1271 wallet's owner did not sign", async function () {
      const { registry, alice, carol, aliceId, contractWallet } = await loadFixture(contractsFixture);
      const walletAddr = await contractWallet.getAddress();
      const deadline = (await now()) + 100n;
      const sig = await signAgentWallet(registry, carol, aliceId, walletAddr, alice.address, deadline);
      await expect(registry.connect(alice).setAgentWallet(aliceId, walletAddr, deadline, sig))
        .to.be.revertedWithCustomError(registry, "AgentRegistryInvalidWalletSignature")
        .withArgs(walletAddr);
    });

    it("reverts with ProtocolZeroAddress for the zero wallet", async function () {
      const { registry, alice, aliceId } = await loadFixture(deployWithAgents);
      const deadline = (await now()) + 100n;
      await expect(
        registry.connect(alice).setAgentWallet(aliceId, ethers.ZeroAddress, deadline, "0x"),
      ).to.be.revertedWithCustomError(registry, "ProtocolZeroAddress");
    });

    it("reverts with AgentRegistryBadDeadline(deadline, now) for a deadline in the past", async function () {
      const { registry, alice, dave, aliceId } = await loadFixture(deployWithAgents);
      const ts = (await now()) + 10n;
      const deadline = ts - 1n;
      const sig = await signAgentWallet(registry, dave, aliceId, dave.address, alice.address, deadline);
      await time.setNextBlockTimestamp(ts);
      await expect(registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, sig))
        .to.be.revertedWithCustomError(registry, "AgentRegistryBadDeadline")
        .withArgs(deadline, ts);
    });

    it("accepts a deadline equal to the block timestamp", async function () {
      const { registry, alice, dave, aliceId } = await loadFixture(deployWithAgents);
      const ts = (await now()) + 10n;
      const sig = await signAgentWallet(registry, dave, aliceId, dave.address, alice.address, ts);
      await time.setNextBlockTimestamp(ts);
      await registry.connect(alice).setAgentWallet(aliceId, dave.address, ts, sig);
      expect(await registry.getAgentWallet(aliceId)).to.equal(dave.address);
    });

    it("accepts a deadline exactly 300 s ahead", async function () {
      const { registry, alice, dave, aliceId } = await loadFixture(deployWithAgents);
      const ts = (await now()) + 10n;
      const deadline = ts + MAX_DEADLINE_DELAY;
      const sig = await signAgentWallet(registry, dave, aliceId, dave.address, alice.address, deadline);
      await time.setNextBlockTimestamp(ts);
      await expect(registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, sig))
        .to.emit(registry, "MetadataSet")
        .withArgs(aliceId, "agentWallet", "agentWallet", dave.address.toLowerCase());
    });

    it("reverts with AgentRegistryBadDeadline(deadline, now) for a deadline 301 s ahead", async function () {
      const { registry, alice, dave, aliceId } = await loadFixture(deployWithAgents);
      const ts = (await now()) + 10n;
      const deadline = ts + MAX_DEADLINE_DELAY + 1n;
      const sig = await signAgentWallet(registry, dave, aliceId, dave.address, alice.address, deadline);
      await time.setNextBlockTimestamp(ts);
      await expect(registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, sig))
        .to.be.revertedWithCustomError(registry, "AgentRegistryBadDeadline")
        .withArgs(deadline, ts);
    });

    it("reverts with AgentRegistrySignatureReplayed(digest) when the same proof is used again", async function () {
      const { registry, alice, dave, aliceId, walletDeadline, walletSignature } = await loadFixture(agentWalletFixture);
      await pinNextBlock(); // the fixture's deadline is short: replay within it
      const digest = await walletDigest(registry, aliceId, dave.address, alice.address, walletDeadline);
      await expect(registry.connect(alice).setAgentWallet(aliceId, dave.address, walletDeadline, walletSignature))
        .to.be.revertedWithCustomError(registry, "AgentRegistrySignatureReplayed")
        .withArgs(digest);
      // Still replayed after the wallet was unset, and with the malleable twin of the signature.
      await registry.connect(alice).unsetAgentWallet(aliceId);
      await expect(registry.connect(alice).setAgentWallet(aliceId, dave.address, walletDeadline, walletSignature))
        .to.be.revertedWithCustomError(registry, "AgentRegistrySignatureReplayed")
        .withArgs(digest);
      await expect(
        registry.connect(alice).setAgentWallet(aliceId, dave.address, walletDeadline, malleate(walletSignature)),
      )
        .to.be.revertedWithCustomError(registry, "AgentRegistrySignatureReplayed")
        .withArgs(digest);
    });

    it("accepts a fresh proof for the same wallet with another deadline", async function () {
      const { registry, alice, dave, aliceId, walletDeadline } = await loadFixture(agentWalletFixture);
      await pinNextBlock(); // the fixture's deadline is short: stay within it
      await registry.connect(alice).unsetAgentWallet(aliceId);
      const deadline = walletDeadline + 1n;
      const sig = await signAgentWallet(registry, dave, aliceId, dave.address, alice.address, deadline);
      await registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, sig);
      expect(await registry.getAgentWallet(aliceId)).to.equal(dave.address);
    });

    describe("reverts with AgentRegistryInvalidWalletSignature(wallet)", function () {
      it("for a proof made for another chainId", async function () {
        const { registry, alice, dave, aliceId } = await loadFixture(deployWithAgents);
        const deadline = (await now()) + 100n;
        const sig = await signAgentWallet(registry, dave, aliceId, dave.address, alice.address, deadline, {
          chainId: 1n,
        });
        await expect(registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, sig))
          .to.be.revertedWithCustomError(registry, "AgentRegistryInvalidWalletSignature")
          .withArgs(dave.address);
      });

      it("for a proof made for another verifyingContract", async function () {
        const { registry, alice, dave, aliceId, usdt } = await loadFixture(deployWithAgents);
        const deadline = (await now()) + 100n;
        const sig = await signAgentWallet(registry, dave, aliceId, dave.address, alice.address, deadline, {
          verifyingContract: await usdt.getAddress(),
        });
        await expect(registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, sig))
          .to.be.revertedWithCustomError(registry, "AgentRegistryInvalidWalletSignature")
          .withArgs(dave.address);
      });

      it("for a proof made for another domain name or version", async function () {
        const { registry, alice, dave, aliceId } = await loadFixture(deployWithAgents);
        const deadline = (await now()) + 100n;
        for (const override of [{ name: "AgentIdentity" }, { version: "2" }]) {
          const sig = await signAgentWallet(registry, dave, aliceId, dave.address, alice.address, deadline, override);
          await expect(registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, sig))
            .to.be.revertedWithCustomError(registry, "AgentRegistryInvalidWalletSignature")
            .withArgs(dave.address);
        }
      });

      it("for a proof made for another agentId", async function () {
        const { registry, alice, dave, aliceId, bobId } = await loadFixture(deployWithAgents);
        const deadline = (await now()) + 100n;
        const sig = await signAgentWallet(registry, dave, bobId, dave.address, alice.address, deadline);
        await expect(registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, sig))
          .to.be.revertedWithCustomError(registry, "AgentRegistryInvalidWalletSignature")
          .withArgs(dave.address);
      });

      it("for a proof made for another owner", async function () {
        const { registry, alice, bob, dave, aliceId } = await loadFixture(deployWithAgents);
        const deadline = (await now()) + 100n;
        const sig = await signAgentWallet(registry, dave, aliceId, dave.address, bob.address, deadline);
        await expect(registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, sig))
          .to.be.revertedWithCustomError(registry, "AgentRegistryInvalidWalletSignature")
          .withArgs(dave.address);
      });

      it("for a proof made for another deadline", async function () {
        const { registry, alice, dave, aliceId } = await loadFixture(deployWithAgents);
        const deadline = (await now()) + 100n;
        const sig = await signAgentWallet(registry, dave, aliceId, dave.address, alice.address, deadline + 1n);
        await expect(registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, sig))
          .to.be.revertedWithCustomError(registry, "AgentRegistryInvalidWalletSignature")
          .withArgs(dave.address);
      });

      it("for a proof signed by someone other than the wallet", async function () {
        const { registry, alice, carol, dave, aliceId } = await loadFixture(deployWithAgents);
        const deadline = (await now()) + 100n;
        const sig = await signAgentWallet(registry, carol, aliceId, dave.address, alice.address, deadline);
        await expect(registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, sig))
          .to.be.revertedWithCustomError(registry, "AgentRegistryInvalidWalletSignature")
          .withArgs(dave.address);
      });

      it("for the malleable (high-s) twin of a valid proof", async function () {
        const { registry, alice, dave, aliceId } = await loadFixture(deployWithAgents);
        const deadline = (await now()) + 100n;
        const sig = await signAgentWallet(registry, dave, aliceId, dave.address, alice.address, deadline);
        await expect(registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, malleate(sig)))
          .to.be.revertedWithCustomError(registry, "AgentRegistryInvalidWalletSignature")
          .withArgs(dave.address);
        // The original still works: the failed attempt did not burn the digest.
        await registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, sig);
        expect(await registry.getAgentWallet(aliceId)).to.equal(dave.address);
      });

      it("for an empty or truncated signature", async function () {
        const { registry, alice, dave, aliceId } = await loadFixture(deployWithAgents);
        const deadline = (await now()) + 100n;
        const sig = await signAgentWallet(registry, dave, aliceId, dave.address, alice.address, deadline);
        for (const bad of ["0x", ethers.dataSlice(sig, 0, 64)]) {
          await expect(registry.connect(alice).setAgentWallet(aliceId, dave.address, deadline, bad))
            .to.be.revertedWithCustomError(registry, "AgentRegistryInvalidWalletSignature")
            .withArgs(dave.address);
        }
      });
    });

    it("reverts with AgentRegistryNotController for a stranger, the wallet itself and an operator key", async function () {
      const { registry, alice, stranger, dave, operator, aliceId } = await loadFixture(operatorFixture);
      const deadline = (await now()) + 100n;
      const sig = await signAgentWallet(registry, dave, aliceId, dave.address, alice.address, deadline);
      for (const caller of [stranger, dave, operator]) {
        await expect(registry.connect(caller).setAgentWallet(aliceId, dave.address, deadline, sig))
          .to.be.revertedWithCustomError(registry, "AgentRegistryNotController")
          .withArgs(aliceId, caller.address);
      }
    });

    it("reverts with AgentRegistryUnknownAgent for an unknown agent", async function () {
      const { registry, alice, dave } = await loadFixture(deployWithAgents);
      const deadline = (await now()) + 100n;
      const sig = await signAgentWallet(registry, dave, UNKNOWN_AGENT, dave.address, alice.address, deadline);
      await expect(registry.connect(alice).setAgentWallet(UNKNOWN_AGENT, dave.address, deadline, sig))
        .to.be.revertedWithCustomError(registry, "AgentRegistryUnknownAgent")
        .withArgs(UNKNOWN_AGENT);
    });
  });

  describe("unsetAgentWallet", function () {
    it("clears the wallet, emits MetadataSet(agentWallet, 0x), and falls back to the owner", async function () {
      const { registry, alice, dave, aliceId } = await loadFixture(agentWalletFixture);
      await expect(registry.connect(alice).unsetAgentWallet(aliceId))
        .to.emit(registry, "MetadataSet")
        .withArgs(aliceId, "agentWallet", "agentWallet", "0x");
      expect(await registry.getAgentWallet(aliceId)).to.equal(alice.address);
      expect(await registry.getMetadata(aliceId, "agentWallet")).to.equal("0x");
      expect(await registry.canAct(aliceId, dave.address)).to.equal(false);
    });

    it("emits nothing when no wallet is set", async function () {
      const { registry, alice, aliceId } = await loadFixture(deployWithAgents);
      await expect(registry.connect(alice).unsetAgentWallet(aliceId)).not.to.emit(registry, "MetadataSet");
      expect(await registry.getAgentWallet(aliceId)).to.equal(alice.address);
    });

    it("lets an approved controller unset it", async function () {
      const { registry, alice, carol, aliceId } = await loadFixture(agentWalletFixture);
      await registry.connect(alice).setApprovalForAll(carol.address, true);
      await expect(registry.connect(carol).unsetAgentWallet(aliceId))
        .to.emit(registry, "MetadataSet")
        .withArgs(aliceId, "agentWallet", "agentWallet", "0x");
    });

    it("works while the registry is paused", async function () {
      const { registry, alice, aliceId } = await loadFixture(agentWalletFixture);
      await registry.pause();
      await expect(registry.connect(alice).unsetAgentWallet(aliceId))
        .to.emit(registry, "MetadataSet")
        .withArgs(aliceId, "agentWallet", "agentWallet", "0x");
    });

    it("reverts with AgentRegistryNotController for a stranger and for the wallet itself", async function () {
      const { registry, stranger, dave, aliceId } = await loadFixture(agentWalletFixture);
      for (const caller of [stranger, dave]) {
        await expect(registry.connect(caller).unsetAgentWallet(aliceId))
          .to.be.revertedWithCustomError(registry, "AgentRegistryNotController")
          .withArgs(aliceId, caller.address);
      }
    });

    it("reverts with AgentRegistryUnknownAgent for an unknown agent", async function () {
      const { registry, alice } = await loadFixture(deployWithAgents);
      await expect(registry.connect(alice).unsetAgentWallet(UNKNOWN_AGENT))
        .to.be.revertedWithCustomError(registry, "AgentRegistryUnknownAgent")
        .withArgs(UNKNOWN_AGENT);
    });
  });

  describe("getAgentWallet", function () {
    it("returns the owner when no wallet is set, and the wallet when one is", async function () {
      const { registry, alice, bob, dave, aliceId, bobId } = await loadFixture(agentWalletFixture);
      expect(await registry.getAgentWallet(aliceId)).to.equal(dave.address);
      expect(await registry.getAgentWallet(bobId)).to.equal(bob.address);
      expect(await registry.ownerOf(aliceId)).to.equal(alice.address);
    });

    it("reverts with ERC721NonexistentToken for an unknown agent and for id 0", async function () {
      const { registry } = await loadFixture(deployWithAgents);
      for (const id of [UNKNOWN_AGENT, 0n]) {
        await expect(registry.getAgentWallet(id))
          .to.be.revertedWithCustomError(registry, "ERC721NonexistentToken")
          .withArgs(id);
      }
    });
  });

  // ==================================================================== transfers

  describe("transfer of an agent", function () {
    it("transferFrom clears the wallet with MetadataSet(agentWallet, 0x); the new owner receives the money", async function () {
      const { registry, alice, bob, aliceId } = await loadFixture(agentWalletFixture);
      const tx = registry.connect(alice).transferFrom(alice.address, bob.address, aliceId);
      await expect(tx).to.emit(registry, "Transfer").withArgs(alice.address, bob.address, aliceId);
      await expect(tx).to.emit(registry, "MetadataSet").withArgs(aliceId, "agentWallet", "agentWallet", "0x");
      expect(await registry.ownerOf(aliceId)).to.equal(bob.address);
      expect(await registry.getAgentWallet(aliceId)).to.equal(bob.address);
      expect(await registry.getMetadata(aliceId, "agentWallet")).to.equal("0x");
    });

    it("safeTransferFrom clears the wallet too", async function () {
      const { registry, alice, bob, dave, aliceId } = await loadFixture(agentWalletFixture);
      const tx = registry.connect(alice).getFunction("safeTransferFrom(address,address,uint256)")(
        alice.address,
        bob.address,
        aliceId,
      );
      await expect(tx).to.emit(registry, "MetadataSet").withArgs(aliceId, "agentWallet", "agentWallet", "0x");
      expect(await registry.getAgentWallet(aliceId)).to.equal(bob.address);
      expect(await registry.canAct(aliceId, dave.address)).to.equal(false);
    });

    it("emits no MetadataSet when no wallet was set", async function () {
      const { registry, alice, bob, aliceId } = await loadFixture(deployWithAgents);
      await expect(registry.connect(alice).transferFrom(alice.address, bob.address, aliceId)).not.to.emit(
        registry,
        "MetadataSet",
      );
    });

    it("keeps the wallet when the owner transfers to itself", async function () {
      const { registry, alice, dave, aliceId } = await loadFixture(agentWalletFixture);
      await expect(registry.connect(alice).transferFrom(alice.address, alice.address, aliceId)).not.to.emit(
        registry,
        "MetadataSet",
      );
      expect(await registry.getAgentWallet(aliceId)).to.equal(dave.address);
    });

    it("deactivates the previous owner's operators", async function () {
      const { registry, alice, bob, operator, reporter, aliceId, usdtAddr, expiry } =
        await loadFixture(operatorFixture);
      await registry.connect(alice).transferFrom(alice.address, bob.address, aliceId);

      const view = await registry.getOperator(aliceId, operator.address);
      expect(view.active).to.equal(false);
      expect(view.expiry).to.equal(expiry);
      expect(await registry.canAct(aliceId, operator.address)).to.equal(false);
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(0n);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryNotAuthorized")
        .withArgs(aliceId, operator.address);
      // Neither the old nor the new owner can extend the stale operator's policy without re-authorising.
      await expect(
        registry
          .connect(bob)
          .setTokenLimit(aliceId, operator.address, usdtAddr, { perTxCap: 1, periodCap: 1, period: 1, rolling: false }),
      )
        .to.be.revertedWithCustomError(registry, "AgentRegistryOperatorInactive")
        .withArgs(aliceId, operator.address);
    });

    it("keeps the previous owner's operators inactive when the agent comes back", async function () {
      const { registry, alice, bob, operator, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      await registry.connect(alice).transferFrom(alice.address, bob.address, aliceId);
      await registry.connect(bob).transferFrom(bob.address, alice.address, aliceId);
      expect((await registry.getOperator(aliceId, operator.address)).active).to.equal(false);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryNotAuthorized")
        .withArgs(aliceId, operator.address);
    });

    it("re-authorising the operator after a transfer starts with no token limits and no allow-list", async function () {
      const { registry, alice, bob, operator, reporter, aliceId, bobId, carolId, usdtAddr } =
        await loadFixture(operatorFixture);
      await registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId], true);
      await registry.connect(alice).transferFrom(alice.address, bob.address, aliceId);

      const expiry = (await now()) + DAY;
      await expect(registry.connect(bob).setOperator(aliceId, operator.address, terms(expiry, 0, true)))
        .to.emit(registry, "OperatorSet")
        .withArgs(aliceId, operator.address, expiry, 0, true);
      expect((await registry.getOperator(aliceId, operator.address)).active).to.equal(true);
      expect([...(await registry.getTokenLimit(aliceId, operator.address, usdtAddr))]).to.deep.equal([
        0n,
        0n,
        0n,
        false,
      ]);
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(0n);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, bobId)).to.equal(false);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), bobId))
        .to.be.revertedWithCustomError(registry, "AgentRegistryTokenNotAllowed")
        .withArgs(aliceId, operator.address, usdtAddr);

      // With a new limit the spend window starts empty and the old allow-list entry is gone.
      await registry.connect(bob).setTokenLimit(aliceId, operator.address, usdtAddr, {
        perTxCap: usd(10),
        periodCap: usd(10),
        period: DAY,
        rolling: false,
      });
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(usd(10));
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), bobId))
        .to.be.revertedWithCustomError(registry, "AgentRegistryCounterpartyNotAllowed")
        .withArgs(bobId);
      await registry.connect(bob).setCounterparties(aliceId, operator.address, [carolId], true);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(10), carolId))
        .to.emit(registry, "SpendConsumed")
        .withArgs(aliceId, operator.address, usdtAddr, usd(10), carolId);
    });

    it("hands control to the new owner and takes it from the old owner and its approved address", async function () {
      const { registry, alice, bob, dave, aliceId } = await loadFixture(deployWithAgents);
      await registry.connect(alice).approve(dave.address, aliceId);
      await registry.connect(alice).transferFrom(alice.address, bob.address, aliceId);
      for (const caller of [alice, dave]) {
        await expect(registry.connect(caller).setAgentURI(aliceId, "ipfs://x"))
          .to.be.revertedWithCustomError(registry, "AgentRegistryNotController")
          .withArgs(aliceId, caller.address);
      }
      await expect(registry.connect(bob).setAgentURI(aliceId, "ipfs://bob-owned"))
        .to.emit(registry, "URIUpdated")
        .withArgs(aliceId, "ipfs://bob-owned", bob.address);
      expect(await registry.ownerOfAgent(aliceId)).to.equal(bob.address);
    });

    it("safeTransferFrom to MockRevertingReceiver reverts with its error; to a contract wallet it succeeds", async function () {
      const { registry, alice, aliceId, rejecter, contractWallet } = await loadFixture(contractsFixture);
      const safeTransfer = registry.connect(alice).getFunction("safeTransferFrom(address,address,uint256)");
      await expect(safeTransfer(alice.address, await rejecter.getAddress(), aliceId))
        .to.be.revertedWithCustomError(rejecter, "MockRevertingReceiverERC721Rejected")
        .withArgs(await registry.getAddress(), aliceId);
      expect(await registry.ownerOf(aliceId)).to.equal(alice.address);

      const walletAddr = await contractWallet.getAddress();
      await expect(safeTransfer(alice.address, walletAddr, aliceId))
        .to.emit(registry, "Transfer")
        .withArgs(alice.address, walletAddr, aliceId);
      expect(await registry.ownerOf(aliceId)).to.equal(walletAddr);
    });
  });

  // ==================================================================== agents

  describe("setAgentPaused / isAgentActive", function () {
    it("lets the owner pause and resume an agent, with AgentPauseSet", async function () {
      const { registry, alice, aliceId, bobId } = await loadFixture(deployWithAgents);
      await expect(registry.connect(alice).setAgentPaused(aliceId, true))
        .to.emit(registry, "AgentPauseSet")
        .withArgs(aliceId, true);
      expect(await registry.isAgentActive(aliceId)).to.equal(false);
      expect(await registry.isAgentActive(bobId)).to.equal(true);
      await expect(registry.connect(alice).setAgentPaused(aliceId, false))
        .to.emit(registry, "AgentPauseSet")
        .withArgs(aliceId, false);
      expect(await registry.isAgentActive(aliceId)).to.equal(true);
    });

    it("lets approved and approved-for-all controllers pause", async function () {
      const { registry, alice, carol, dave, aliceId } = await loadFixture(deployWithAgents);
      await registry.connect(alice).approve(dave.address, aliceId);
      await registry.connect(alice).setApprovalForAll(carol.address, true);
      await expect(registry.connect(dave).setAgentPaused(aliceId, true))
        .to.emit(registry, "AgentPauseSet")
        .withArgs(aliceId, true);
      await expect(registry.connect(carol).setAgentPaused(aliceId, false))
        .to.emit(registry, "AgentPauseSet")
        .withArgs(aliceId, false);
    });

    it("reverts with AgentRegistryNotController for a stranger and an operator key", async function () {
      const { registry, stranger, operator, aliceId } = await loadFixture(operatorFixture);
      for (const caller of [stranger, operator]) {
        await expect(registry.connect(caller).setAgentPaused(aliceId, true))
          .to.be.revertedWithCustomError(registry, "AgentRegistryNotController")
          .withArgs(aliceId, caller.address);
      }
    });

    it("reverts with AgentRegistryUnknownAgent for an unknown agent", async function () {
      const { registry, alice } = await loadFixture(deployWithAgents);
      await expect(registry.connect(alice).setAgentPaused(UNKNOWN_AGENT, true))
        .to.be.revertedWithCustomError(registry, "AgentRegistryUnknownAgent")
        .withArgs(UNKNOWN_AGENT);
    });

    it("isAgentActive is false for unknown agents and for id 0", async function () {
      const { registry } = await loadFixture(deployWithAgents);
      expect(await registry.isAgentActive(0n)).to.equal(false);
      expect(await registry.isAgentActive(UNKNOWN_AGENT)).to.equal(false);
    });
  });

  describe("ownerOfAgent / agentCount", function () {
    it("ownerOfAgent returns the owner, or zero for unknown agents and id 0", async function () {
      const { registry, alice, bob, carol, aliceId, bobId, carolId } = await loadFixture(deployWithAgents);
      expect(await registry.ownerOfAgent(aliceId)).to.equal(alice.address);
      expect(await registry.ownerOfAgent(bobId)).to.equal(bob.address);
      expect(await registry.ownerOfAgent(carolId)).to.equal(carol.address);
      expect(await registry.ownerOfAgent(0n)).to.equal(ethers.ZeroAddress);
      expect(await registry.ownerOfAgent(UNKNOWN_AGENT)).to.equal(ethers.ZeroAddress);
    });

    it("agentCount counts registrations", async function () {
      const { registry, dave } = await loadFixture(deployWithAgents);
      expect(await registry.agentCount()).to.equal(3n);
      await registry.connect(dave).getFunction(REGISTER_EMPTY)();
      expect(await registry.agentCount()).to.equal(4n);
    });
  });

  // ==================================================================== operators

  describe("setOperator / getOperator", function () {
    it("authorises an operator, emits OperatorSet, and getOperator reports it active", async function () {
      const { registry, alice, operator, aliceId } = await loadFixture(deployWithAgents);
      const expiry = (await now()) + DAY;
      await expect(registry.connect(alice).setOperator(aliceId, operator.address, terms(expiry, 7500, true)))
        .to.emit(registry, "OperatorSet")
        .withArgs(aliceId, operator.address, expiry, 7500, true);
      expect([...(await registry.getOperator(aliceId, operator.address))]).to.deep.equal([true, expiry, 7500n, true]);
      expect(await registry.canAct(aliceId, operator.address)).to.equal(true);
    });

    it("getOperator of an unknown operator is all zero and inactive", async function () {
      const { registry, stranger, aliceId } = await loadFixture(deployWithAgents);
      expect([...(await registry.getOperator(aliceId, stranger.address))]).to.deep.equal([false, 0n, 0n, false]);
      expect([...(await registry.getOperator(UNKNOWN_AGENT, stranger.address))]).to.deep.equal([false, 0n, 0n, false]);
    });

    it("lets approved and approved-for-all controllers authorise operators", async function () {
      const { registry, alice, carol, dave, operator, stranger, aliceId } = await loadFixture(deployWithAgents);
      const expiry = (await now()) + DAY;
      await registry.connect(alice).approve(dave.address, aliceId);
      await registry.connect(alice).setApprovalForAll(carol.address, true);
      await expect(registry.connect(dave).setOperator(aliceId, operator.address, terms(expiry)))
        .to.emit(registry, "OperatorSet")
        .withArgs(aliceId, operator.address, expiry, 0, false);
      await expect(registry.connect(carol).setOperator(aliceId, stranger.address, terms(expiry)))
        .to.emit(registry, "OperatorSet")
        .withArgs(aliceId, stranger.address, expiry, 0, false);
    });

    it("changing the terms of an active operator keeps its limits, window and allow-list", async function () {
      const { registry, alice, operator, reporter, aliceId, bobId, usdtAddr, limit } =
        await loadFixture(operatorFixture);
      await registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId], true);
      await registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(100), bobId);
      const expiry = (await now()) + 2n * DAY;
      await expect(registry.connect(alice).setOperator(aliceId, operator.address, terms(expiry, 1000, true)))
        .to.emit(registry, "OperatorSet")
        .withArgs(aliceId, operator.address, expiry, 1000, true);
      expect([...(await registry.getOperator(aliceId, operator.address))]).to.deep.equal([true, expiry, 1000n, true]);
      expect([...(await registry.getTokenLimit(aliceId, operator.address, usdtAddr))]).to.deep.equal([
        limit.perTxCap,
        limit.periodCap,
        limit.period,
        limit.rolling,
      ]);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, bobId)).to.equal(true);
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(usd(100));
    });

    it("accepts an expiry one second after the block and a minimum score of exactly 10,000", async function () {
      const { registry, alice, operator, aliceId } = await loadFixture(deployWithAgents);
      const ts = await pinNextTimestamp();
      await expect(registry.connect(alice).setOperator(aliceId, operator.address, terms(ts + 1n, 10_000)))
        .to.emit(registry, "OperatorSet")
        .withArgs(aliceId, operator.address, ts + 1n, 10_000, false);
    });

    it("reverts with AgentRegistryBadOperator for the zero address and for the owner itself", async function () {
      const { registry, alice, aliceId } = await loadFixture(deployWithAgents);
      const expiry = (await now()) + DAY;
      for (const op of [ethers.ZeroAddress, alice.address]) {
        await expect(registry.connect(alice).setOperator(aliceId, op, terms(expiry)))
          .to.be.revertedWithCustomError(registry, "AgentRegistryBadOperator")
          .withArgs(op);
      }
    });

    it("reverts with AgentRegistryBadOperator when an approved controller names the owner", async function () {
      const { registry, alice, dave, aliceId } = await loadFixture(deployWithAgents);
      await registry.connect(alice).approve(dave.address, aliceId);
      const expiry = (await now()) + DAY;
      await expect(registry.connect(dave).setOperator(aliceId, alice.address, terms(expiry)))
        .to.be.revertedWithCustomError(registry, "AgentRegistryBadOperator")
        .withArgs(alice.address);
    });

    it("reverts with AgentRegistryBadExpiry for an expiry equal to the block timestamp or in the past", async function () {
      const { registry, alice, operator, aliceId } = await loadFixture(deployWithAgents);
      let ts = await pinNextTimestamp();
      await expect(registry.connect(alice).setOperator(aliceId, operator.address, terms(ts)))
        .to.be.revertedWithCustomError(registry, "AgentRegistryBadExpiry")
        .withArgs(ts);
      ts = await pinNextTimestamp();
      await expect(registry.connect(alice).setOperator(aliceId, operator.address, terms(ts - 100n)))
        .to.be.revertedWithCustomError(registry, "AgentRegistryBadExpiry")
        .withArgs(ts - 100n);
      await expect(registry.connect(alice).setOperator(aliceId, operator.address, terms(0n)))
        .to.be.revertedWithCustomError(registry, "AgentRegistryBadExpiry")
        .withArgs(0n);
    });

    it("reverts with AgentRegistryBadScore for a minimum score above 10,000", async function () {
      const { registry, alice, operator, aliceId } = await loadFixture(deployWithAgents);
      const expiry = (await now()) + DAY;
      await expect(registry.connect(alice).setOperator(aliceId, operator.address, terms(expiry, 10_001)))
        .to.be.revertedWithCustomError(registry, "AgentRegistryBadScore")
        .withArgs(10_001);
    });

    it("works while the registry is paused (managing an agent is not new business)", async function () {
      const { registry, alice, operator, aliceId } = await loadFixture(deployWithAgents);
      await registry.pause();
      const expiry = (await now()) + DAY;
      await expect(registry.connect(alice).setOperator(aliceId, operator.address, terms(expiry)))
        .to.emit(registry, "OperatorSet")
        .withArgs(aliceId, operator.address, expiry, 0, false);
      expect((await registry.getOperator(aliceId, operator.address)).active).to.equal(true);
    });

    it("reverts with AgentRegistryNotController for a stranger, another agent's owner and an operator key", async function () {
      const { registry, stranger, bob, operator, aliceId } = await loadFixture(operatorFixture);
      const expiry = (await now()) + DAY;
      for (const caller of [stranger, bob, operator]) {
        await expect(registry.connect(caller).setOperator(aliceId, caller.address, terms(expiry)))
          .to.be.revertedWithCustomError(registry, "AgentRegistryNotController")
          .withArgs(aliceId, caller.address);
      }
    });

    it("reverts with AgentRegistryUnknownAgent for an unknown agent", async function () {
      const { registry, alice, operator } = await loadFixture(deployWithAgents);
      const expiry = (await now()) + DAY;
      await expect(registry.connect(alice).setOperator(UNKNOWN_AGENT, operator.address, terms(expiry)))
        .to.be.revertedWithCustomError(registry, "AgentRegistryUnknownAgent")
        .withArgs(UNKNOWN_AGENT);
    });

    it("getOperator reports an operator inactive from its expiry on", async function () {
      const { registry, operator, aliceId, expiry } = await loadFixture(operatorFixture);
      await time.increaseTo(expiry);
      expect([...(await registry.getOperator(aliceId, operator.address))]).to.deep.equal([false, expiry, 0n, false]);
    });
  });

  describe("setTokenLimit / getTokenLimit", function () {
    it("sets a limit, emits TokenLimitSet, and getTokenLimit returns it", async function () {
      const { registry, alice, operator, aliceId, usdgAddr } = await loadFixture(operatorFixture);
      const limit = { perTxCap: usd(5), periodCap: usd(20), period: HOUR, rolling: true };
      await expect(registry.connect(alice).setTokenLimit(aliceId, operator.address, usdgAddr, limit))
        .to.emit(registry, "TokenLimitSet")
        .withArgs(aliceId, operator.address, usdgAddr, usd(5), usd(20), HOUR, true);
      expect([...(await registry.getTokenLimit(aliceId, operator.address, usdgAddr))]).to.deep.equal([
        usd(5),
        usd(20),
        HOUR,
        true,
      ]);
      expect(await registry.availableToSpend(aliceId, operator.address, usdgAddr)).to.equal(usd(5));
    });

    it("getTokenLimit is all zero for a token without limit", async function () {
      const { registry, operator, stranger, aliceId, usdgAddr, usdtAddr } = await loadFixture(operatorFixture);
      expect([...(await registry.getTokenLimit(aliceId, operator.address, usdgAddr))]).to.deep.equal([
        0n,
        0n,
        0n,
        false,
      ]);
      expect([...(await registry.getTokenLimit(aliceId, stranger.address, usdtAddr))]).to.deep.equal([
        0n,
        0n,
        0n,
        false,
      ]);
    });

    it("accepts perTxCap equal to periodCap", async function () {
      const { registry, alice, operator, aliceId, usdgAddr } = await loadFixture(operatorFixture);
      await expect(
        registry
          .connect(alice)
          .setTokenLimit(aliceId, operator.address, usdgAddr, { perTxCap: 7, periodCap: 7, period: 1, rolling: false }),
      )
        .to.emit(registry, "TokenLimitSet")
        .withArgs(aliceId, operator.address, usdgAddr, 7, 7, 1, false);
    });

    it("a zero limit is accepted and forbids the token", async function () {
      const { registry, alice, operator, reporter, aliceId, usdtAddr, usdgAddr } = await loadFixture(operatorFixture);
      const zero = { perTxCap: 0, periodCap: 0, period: 0, rolling: false };
      // On a token with a limit it keeps the period length (and the spend window: security test AR-1)...
      await expect(registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, zero))
        .to.emit(registry, "TokenLimitSet")
        .withArgs(aliceId, operator.address, usdtAddr, 0, 0, DAY, false);
      expect(await registry.getTokenLimit(aliceId, operator.address, usdtAddr)).to.deep.equal([0n, 0n, DAY, false]);
      // ...on a token without one it stores what it is given.
      await expect(registry.connect(alice).setTokenLimit(aliceId, operator.address, usdgAddr, zero))
        .to.emit(registry, "TokenLimitSet")
        .withArgs(aliceId, operator.address, usdgAddr, 0, 0, 0, false);
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(0n);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, 1n, 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryTokenNotAllowed")
        .withArgs(aliceId, operator.address, usdtAddr);
    });

    it("reverts with AgentRegistryBadLimit for perTxCap above periodCap", async function () {
      const { registry, alice, operator, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      for (const [perTx, cap] of [
        [usd(11), usd(10)],
        [1n, 0n],
      ]) {
        await expect(
          registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, {
            perTxCap: perTx,
            periodCap: cap,
            period: DAY,
            rolling: false,
          }),
        )
          .to.be.revertedWithCustomError(registry, "AgentRegistryBadLimit")
          .withArgs(perTx, cap, DAY);
      }
    });

    it("reverts with AgentRegistryBadLimit for a period cap with a zero per-tx cap or a zero period", async function () {
      const { registry, alice, operator, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      await expect(
        registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, {
          perTxCap: 0,
          periodCap: usd(10),
          period: DAY,
          rolling: false,
        }),
      )
        .to.be.revertedWithCustomError(registry, "AgentRegistryBadLimit")
        .withArgs(0, usd(10), DAY);
      await expect(
        registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, {
          perTxCap: usd(1),
          periodCap: usd(10),
          period: 0,
          rolling: true,
        }),
      )
        .to.be.revertedWithCustomError(registry, "AgentRegistryBadLimit")
        .withArgs(usd(1), usd(10), 0);
    });

    it("reverts with ProtocolZeroAddress for the zero token", async function () {
      const { registry, alice, operator, aliceId, limit } = await loadFixture(operatorFixture);
      await expect(
        registry.connect(alice).setTokenLimit(aliceId, operator.address, ethers.ZeroAddress, limit),
      ).to.be.revertedWithCustomError(registry, "ProtocolZeroAddress");
    });

    it("reverts with AgentRegistryOperatorInactive for a never-authorised, revoked or expired operator", async function () {
      const { registry, alice, operator, stranger, aliceId, usdtAddr, limit, expiry } =
        await loadFixture(operatorFixture);
      await expect(registry.connect(alice).setTokenLimit(aliceId, stranger.address, usdtAddr, limit))
        .to.be.revertedWithCustomError(registry, "AgentRegistryOperatorInactive")
        .withArgs(aliceId, stranger.address);

      await time.setNextBlockTimestamp(expiry);
      await expect(registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, limit))
        .to.be.revertedWithCustomError(registry, "AgentRegistryOperatorInactive")
        .withArgs(aliceId, operator.address);

      await registry.connect(alice).revokeOperator(aliceId, operator.address);
      await expect(registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, limit))
        .to.be.revertedWithCustomError(registry, "AgentRegistryOperatorInactive")
        .withArgs(aliceId, operator.address);
    });

    it("works while the registry is paused, so an owner can always tighten a limit", async function () {
      const { registry, alice, operator, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      await registry.pause();
      const zero = { perTxCap: 0n, periodCap: 0n, period: 0, rolling: false };
      await expect(registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, zero))
        .to.emit(registry, "TokenLimitSet")
        .withArgs(aliceId, operator.address, usdtAddr, 0n, 0n, DAY, false);
      expect((await registry.getTokenLimit(aliceId, operator.address, usdtAddr)).periodCap).to.equal(0n);
    });

    it("reverts with AgentRegistryNotController for a stranger and for the operator itself", async function () {
      const { registry, operator, stranger, aliceId, usdtAddr, limit } = await loadFixture(operatorFixture);
      for (const caller of [stranger, operator]) {
        await expect(registry.connect(caller).setTokenLimit(aliceId, operator.address, usdtAddr, limit))
          .to.be.revertedWithCustomError(registry, "AgentRegistryNotController")
          .withArgs(aliceId, caller.address);
      }
    });

    it("reverts with AgentRegistryUnknownAgent for an unknown agent", async function () {
      const { registry, alice, operator, usdtAddr, limit } = await loadFixture(operatorFixture);
      await expect(registry.connect(alice).setTokenLimit(UNKNOWN_AGENT, operator.address, usdtAddr, limit))
        .to.be.revertedWithCustomError(registry, "AgentRegistryUnknownAgent")
        .withArgs(UNKNOWN_AGENT);
    });

    it("changing the caps keeps what was already spent in the current window", async function () {
      const { registry, alice, operator, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      await registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(80), 0n);
      await registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, {
        perTxCap: usd(100),
        periodCap: usd(150),
        period: DAY,
        rolling: false,
      });
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(usd(70));
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(71), 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryPeriodCapExceeded")
        .withArgs(usdtAddr, usd(71), usd(70));
      await registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(70), 0n);
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(0n);
    });

    it("lowering the period cap below what was spent leaves nothing available", async function () {
      const { registry, alice, operator, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      await registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(80), 0n);
      await registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, {
        perTxCap: usd(50),
        periodCap: usd(50),
        period: DAY,
        rolling: false,
      });
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(0n);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, 1n, 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryPeriodCapExceeded")
        .withArgs(usdtAddr, 1n, 0n);
    });

    it("changing the period resets the spend window", async function () {
      const { registry, alice, operator, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      await registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(100), 0n);
      await registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(100), 0n);
      await registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, {
        perTxCap: usd(100),
        periodCap: usd(250),
        period: 2n * DAY,
        rolling: false,
      });
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(usd(100));
      await registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(100), 0n);
      await registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(100), 0n);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(51), 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryPeriodCapExceeded")
        .withArgs(usdtAddr, usd(51), usd(50));
    });
  });

  describe("setCounterparties / isCounterpartyAllowed", function () {
    it("adds counterparties, emitting CounterpartyAllowed per id in order", async function () {
      const { registry, alice, operator, aliceId, bobId, carolId } = await loadFixture(operatorFixture);
      const tx = registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId, carolId, 42n], true);
      await expect(tx).to.emit(registry, "CounterpartyAllowed").withArgs(aliceId, operator.address, bobId, true);
      await expect(tx).to.emit(registry, "CounterpartyAllowed").withArgs(aliceId, operator.address, carolId, true);
      await expect(tx).to.emit(registry, "CounterpartyAllowed").withArgs(aliceId, operator.address, 42n, true);
      const events = await eventsOf(registry, tx, "CounterpartyAllowed");
      expect(events.map((e) => e!.args.counterpartyId)).to.deep.equal([bobId, carolId, 42n]);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, bobId)).to.equal(true);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, carolId)).to.equal(true);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, 42n)).to.equal(true);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, 43n)).to.equal(false);
    });

    it("removes counterparties with CounterpartyAllowed(false)", async function () {
      const { registry, alice, operator, aliceId, bobId, carolId } = await loadFixture(operatorFixture);
      await registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId, carolId], true);
      await expect(registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId], false))
        .to.emit(registry, "CounterpartyAllowed")
        .withArgs(aliceId, operator.address, bobId, false);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, bobId)).to.equal(false);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, carolId)).to.equal(true);
    });

    it("accepts 32 ids and reverts with AgentRegistryBatchTooLarge(33, 32) for 33", async function () {
      const { registry, alice, operator, aliceId } = await loadFixture(operatorFixture);
      const ids = Array.from({ length: 33 }, (_, i) => BigInt(i + 1));
      await expect(registry.connect(alice).setCounterparties(aliceId, operator.address, ids, true))
        .to.be.revertedWithCustomError(registry, "AgentRegistryBatchTooLarge")
        .withArgs(33n, MAX_BATCH);
      await expect(registry.connect(alice).setCounterparties(aliceId, operator.address, ids, false))
        .to.be.revertedWithCustomError(registry, "AgentRegistryBatchTooLarge")
        .withArgs(33n, MAX_BATCH);
      const tx = registry.connect(alice).setCounterparties(aliceId, operator.address, ids.slice(0, 32), true);
      expect((await eventsOf(registry, tx, "CounterpartyAllowed")).length).to.equal(32);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, 32n)).to.equal(true);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, 33n)).to.equal(false);
    });

    it("removal works for a revoked or never-authorised operator", async function () {
      const { registry, alice, operator, stranger, aliceId, bobId } = await loadFixture(operatorFixture);
      await registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId], true);
      await registry.connect(alice).revokeOperator(aliceId, operator.address);
      await expect(registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId], false))
        .to.emit(registry, "CounterpartyAllowed")
        .withArgs(aliceId, operator.address, bobId, false);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, bobId)).to.equal(false);
      await expect(registry.connect(alice).setCounterparties(aliceId, stranger.address, [bobId], false))
        .to.emit(registry, "CounterpartyAllowed")
        .withArgs(aliceId, stranger.address, bobId, false);
    });

    it("reverts with AgentRegistryOperatorInactive when adding for an inactive operator", async function () {
      const { registry, alice, operator, stranger, aliceId, bobId, expiry } = await loadFixture(operatorFixture);
      await expect(registry.connect(alice).setCounterparties(aliceId, stranger.address, [bobId], true))
        .to.be.revertedWithCustomError(registry, "AgentRegistryOperatorInactive")
        .withArgs(aliceId, stranger.address);
      await time.setNextBlockTimestamp(expiry);
      await expect(registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId], true))
        .to.be.revertedWithCustomError(registry, "AgentRegistryOperatorInactive")
        .withArgs(aliceId, operator.address);
    });

    it("works while the registry is paused", async function () {
      const { registry, alice, operator, aliceId, bobId } = await loadFixture(operatorFixture);
      await registry.pause();
      await expect(registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId], true))
        .to.emit(registry, "CounterpartyAllowed")
        .withArgs(aliceId, operator.address, bobId, true);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, bobId)).to.equal(true);
    });

    it("reverts with AgentRegistryNotController for a stranger and for the operator itself", async function () {
      const { registry, operator, stranger, aliceId, bobId } = await loadFixture(operatorFixture);
      for (const caller of [stranger, operator]) {
        await expect(registry.connect(caller).setCounterparties(aliceId, operator.address, [bobId], true))
          .to.be.revertedWithCustomError(registry, "AgentRegistryNotController")
          .withArgs(aliceId, caller.address);
      }
    });

    it("reverts with AgentRegistryUnknownAgent for an unknown agent", async function () {
      const { registry, alice, operator, bobId } = await loadFixture(operatorFixture);
      await expect(registry.connect(alice).setCounterparties(UNKNOWN_AGENT, operator.address, [bobId], true))
        .to.be.revertedWithCustomError(registry, "AgentRegistryUnknownAgent")
        .withArgs(UNKNOWN_AGENT);
    });
  });

  describe("revokeOperator", function () {
    it("revokes at once: OperatorRevoked, inactive, cannot act nor spend", async function () {
      const { registry, alice, operator, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      await expect(registry.connect(alice).revokeOperator(aliceId, operator.address))
        .to.emit(registry, "OperatorRevoked")
        .withArgs(aliceId, operator.address);
      expect([...(await registry.getOperator(aliceId, operator.address))]).to.deep.equal([false, 0n, 0n, false]);
      expect(await registry.canAct(aliceId, operator.address)).to.equal(false);
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(0n);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryNotAuthorized")
        .withArgs(aliceId, operator.address);
    });

    it("reverts with AgentRegistryOperatorInactive when revoking twice or revoking an unknown operator", async function () {
      const { registry, alice, operator, stranger, aliceId } = await loadFixture(operatorFixture);
      await registry.connect(alice).revokeOperator(aliceId, operator.address);
      await expect(registry.connect(alice).revokeOperator(aliceId, operator.address))
        .to.be.revertedWithCustomError(registry, "AgentRegistryOperatorInactive")
        .withArgs(aliceId, operator.address);
      await expect(registry.connect(alice).revokeOperator(aliceId, stranger.address))
        .to.be.revertedWithCustomError(registry, "AgentRegistryOperatorInactive")
        .withArgs(aliceId, stranger.address);
    });

    it("works while the registry is paused", async function () {
      const { registry, alice, operator, aliceId } = await loadFixture(operatorFixture);
      await registry.pause();
      await expect(registry.connect(alice).revokeOperator(aliceId, operator.address))
        .to.emit(registry, "OperatorRevoked")
        .withArgs(aliceId, operator.address);
      expect((await registry.getOperator(aliceId, operator.address)).active).to.equal(false);
    });

    it("lets an approved controller revoke", async function () {
      const { registry, alice, dave, operator, aliceId } = await loadFixture(operatorFixture);
      await registry.connect(alice).approve(dave.address, aliceId);
      await expect(registry.connect(dave).revokeOperator(aliceId, operator.address))
        .to.emit(registry, "OperatorRevoked")
        .withArgs(aliceId, operator.address);
    });

    it("a revoked then re-authorised operator has no limits, no spend history and no allow-list entries left", async function () {
      const { registry, alice, operator, reporter, aliceId, bobId, usdtAddr } = await loadFixture(operatorFixture);
      await registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId], true);
      await registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(100), bobId);
      await registry.connect(alice).revokeOperator(aliceId, operator.address);

      const expiry = (await now()) + DAY;
      await registry.connect(alice).setOperator(aliceId, operator.address, terms(expiry, 0, true));
      expect([...(await registry.getTokenLimit(aliceId, operator.address, usdtAddr))]).to.deep.equal([
        0n,
        0n,
        0n,
        false,
      ]);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, bobId)).to.equal(false);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), bobId))
        .to.be.revertedWithCustomError(registry, "AgentRegistryTokenNotAllowed")
        .withArgs(aliceId, operator.address, usdtAddr);

      // Same limit as before: the window starts empty (the 100 spent before the revocation is gone).
      await registry.connect(alice).setTokenLimit(aliceId, operator.address, usdtAddr, {
        perTxCap: usd(250),
        periodCap: usd(250),
        period: 86_400,
        rolling: false,
      });
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(usd(250));
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), bobId))
        .to.be.revertedWithCustomError(registry, "AgentRegistryCounterpartyNotAllowed")
        .withArgs(bobId);
    });

    it("reverts with AgentRegistryNotController for a stranger and for the operator itself", async function () {
      const { registry, operator, stranger, aliceId } = await loadFixture(operatorFixture);
      for (const caller of [stranger, operator]) {
        await expect(registry.connect(caller).revokeOperator(aliceId, operator.address))
          .to.be.revertedWithCustomError(registry, "AgentRegistryNotController")
          .withArgs(aliceId, caller.address);
      }
    });

    it("reverts with AgentRegistryUnknownAgent for an unknown agent", async function () {
      const { registry, alice, operator } = await loadFixture(operatorFixture);
      await expect(registry.connect(alice).revokeOperator(UNKNOWN_AGENT, operator.address))
        .to.be.revertedWithCustomError(registry, "AgentRegistryUnknownAgent")
        .withArgs(UNKNOWN_AGENT);
    });
  });

  // ==================================================================== spending

  describe("consumeSpend", function () {
    it("reverts with AccessControlUnauthorizedAccount for a caller without SPENDER_ROLE", async function () {
      const { registry, alice, operator, stranger, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      for (const caller of [stranger, operator, alice]) {
        await expect(registry.connect(caller).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), 0n))
          .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, SPENDER_ROLE);
      }
    });

    it("returns false for the owner, without any event and without debiting anything", async function () {
      const { registry, alice, operator, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      const spend = registry.connect(reporter).consumeSpend;
      expect(await spend.staticCall(aliceId, alice.address, usdtAddr, usd(1_000_000), 0n)).to.equal(false);
      const tx = spend(aliceId, alice.address, usdtAddr, usd(1_000_000), 0n);
      await expect(tx).not.to.emit(registry, "SpendConsumed");
      expect((await (await tx).wait())!.logs.length).to.equal(0);
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(usd(100));
    });

    it("returns false for the agent wallet, without any event", async function () {
      const { registry, dave, reporter, aliceId, usdgAddr } = await loadFixture(operatorAndWalletFixture);
      const spend = registry.connect(reporter).consumeSpend;
      expect(await spend.staticCall(aliceId, dave.address, usdgAddr, usd(5_000), 3n)).to.equal(false);
      const tx = spend(aliceId, dave.address, usdgAddr, usd(5_000), 3n);
      expect((await (await tx).wait())!.logs.length).to.equal(0);
    });

    it("returns true for an operator, emits SpendConsumed and debits its window", async function () {
      const { registry, operator, reporter, aliceId, bobId, usdtAddr } = await loadFixture(operatorFixture);
      const spend = registry.connect(reporter).consumeSpend;
      expect(await spend.staticCall(aliceId, operator.address, usdtAddr, usd(60), bobId)).to.equal(true);
      await expect(spend(aliceId, operator.address, usdtAddr, usd(60), bobId))
        .to.emit(registry, "SpendConsumed")
        .withArgs(aliceId, operator.address, usdtAddr, usd(60), bobId);
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(usd(100));
      await spend(aliceId, operator.address, usdtAddr, usd(100), 0n);
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(usd(90));
      await spend(aliceId, operator.address, usdtAddr, usd(90), 0n);
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(0n);
      await expect(spend(aliceId, operator.address, usdtAddr, 1n, 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryPeriodCapExceeded")
        .withArgs(usdtAddr, 1n, 0n);
    });

    it("does not spend the owner's or wallet's spends from the operator's window", async function () {
      const { registry, alice, dave, operator, reporter, aliceId, usdtAddr } =
        await loadFixture(operatorAndWalletFixture);
      await registry.connect(reporter).consumeSpend(aliceId, alice.address, usdtAddr, usd(250), 0n);
      await registry.connect(reporter).consumeSpend(aliceId, dave.address, usdtAddr, usd(250), 0n);
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(usd(100));
    });

    it("reverts with AgentRegistryZeroAmount for a zero amount, even for the owner", async function () {
      const { registry, alice, operator, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      for (const spender of [alice, operator]) {
        await expect(
          registry.connect(reporter).consumeSpend(aliceId, spender.address, usdtAddr, 0n, 0n),
        ).to.be.revertedWithCustomError(registry, "AgentRegistryZeroAmount");
      }
    });

    it("reverts with AgentRegistryUnknownAgent for an unknown agent", async function () {
      const { registry, alice, reporter, usdtAddr } = await loadFixture(operatorFixture);
      await expect(registry.connect(reporter).consumeSpend(UNKNOWN_AGENT, alice.address, usdtAddr, 1n, 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryUnknownAgent")
        .withArgs(UNKNOWN_AGENT);
    });

    it("reverts with AgentRegistryNotAuthorized for a non-operator, another agent's owner and an approved controller", async function () {
      const { registry, alice, bob, dave, stranger, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      await registry.connect(alice).approve(dave.address, aliceId);
      for (const spender of [stranger, bob, dave]) {
        await expect(registry.connect(reporter).consumeSpend(aliceId, spender.address, usdtAddr, 1n, 0n))
          .to.be.revertedWithCustomError(registry, "AgentRegistryNotAuthorized")
          .withArgs(aliceId, spender.address);
      }
    });

    it("reverts with AgentRegistryNotAuthorized for the zero-address spender when no wallet is set", async function () {
      // The zero address is neither the owner, the wallet nor an operator (canAct says false);
      // an unset wallet (stored as zero) must not make it an authorised spender.
      const { registry, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      expect(await registry.canAct(aliceId, ethers.ZeroAddress)).to.equal(false);
      await expect(registry.connect(reporter).consumeSpend(aliceId, ethers.ZeroAddress, usdtAddr, usd(1), 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryNotAuthorized")
        .withArgs(aliceId, ethers.ZeroAddress);
    });

    it("lets an operator spend until one second before its expiry and reverts with AgentRegistryNotAuthorized at expiry", async function () {
      const { registry, operator, reporter, aliceId, usdtAddr, expiry } = await loadFixture(operatorFixture);
      await time.setNextBlockTimestamp(expiry - 1n);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), 0n))
        .to.emit(registry, "SpendConsumed")
        .withArgs(aliceId, operator.address, usdtAddr, usd(1), 0n);
      await time.setNextBlockTimestamp(expiry);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryNotAuthorized")
        .withArgs(aliceId, operator.address);
    });

    it("reverts with AgentRegistryTokenNotAllowed for a token without limit", async function () {
      const { registry, operator, reporter, aliceId, usdgAddr } = await loadFixture(operatorFixture);
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdgAddr, 1n, 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryTokenNotAllowed")
        .withArgs(aliceId, operator.address, usdgAddr);
    });

    it("does not let a limit of one agent apply to another agent of the same owner", async function () {
      const { registry, alice, operator, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      await registry.connect(alice).getFunction(REGISTER_URI)("ipfs://alice-2");
      const secondId = 4n;
      await registry.connect(alice).setOperator(secondId, operator.address, terms((await now()) + DAY));
      await expect(registry.connect(reporter).consumeSpend(secondId, operator.address, usdtAddr, 1n, 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryTokenNotAllowed")
        .withArgs(secondId, operator.address, usdtAddr);
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(usd(100));
    });

    it("reverts with AgentRegistryPerTxCapExceeded(token, amount, cap) above the per-transaction cap", async function () {
      const { registry, operator, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      const amount = usd(100) + 1n;
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, amount, 0n))
        .to.be.revertedWithCustomError(registry, "AgentRegistryPerTxCapExceeded")
        .withArgs(usdtAddr, amount, usd(100));
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(100), 0n))
        .to.emit(registry, "SpendConsumed")
        .withArgs(aliceId, operator.address, usdtAddr, usd(100), 0n);
    });

    describe("fixed period", function () {
      it("resets exactly at the aligned boundary floor(t / period) * period", async function () {
        const { registry, operator, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
        const spend = registry.connect(reporter).consumeSpend;
        const start = await nextBoundary(DAY);

        await time.setNextBlockTimestamp(start + 5n);
        await spend(aliceId, operator.address, usdtAddr, usd(100), 0n);
        await time.setNextBlockTimestamp(start + 6n);
        await spend(aliceId, operator.address, usdtAddr, usd(100), 0n);
        await time.setNextBlockTimestamp(start + DAY - 2n);
        await expect(spend(aliceId, operator.address, usdtAddr, usd(51), 0n))
          .to.be.revertedWithCustomError(registry, "AgentRegistryPeriodCapExceeded")
          .withArgs(usdtAddr, usd(51), usd(50));
        await time.setNextBlockTimestamp(start + DAY - 1n);
        await spend(aliceId, operator.address, usdtAddr, usd(50), 0n);

        // One second later a new aligned window starts with the full cap.
        await time.setNextBlockTimestamp(start + DAY);
        await expect(spend(aliceId, operator.address, usdtAddr, usd(100), 0n))
          .to.emit(registry, "SpendConsumed")
          .withArgs(aliceId, operator.address, usdtAddr, usd(100), 0n);
        await time.setNextBlockTimestamp(start + DAY + 1n);
        await spend(aliceId, operator.address, usdtAddr, usd(100), 0n);
        await time.setNextBlockTimestamp(start + DAY + 2n);
        await expect(spend(aliceId, operator.address, usdtAddr, usd(51), 0n))
          .to.be.revertedWithCustomError(registry, "AgentRegistryPeriodCapExceeded")
          .withArgs(usdtAddr, usd(51), usd(50));
      });

      it("does not reset at spend time + period when the window started earlier", async function () {
        const { registry, operator, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
        const spend = registry.connect(reporter).consumeSpend;
        const start = await nextBoundary(DAY);
        // Spends in the middle of a window: the reset comes at the next boundary, not 24 h later.
        await time.setNextBlockTimestamp(start + DAY / 2n);
        await spend(aliceId, operator.address, usdtAddr, usd(100), 0n);
        await time.setNextBlockTimestamp(start + DAY / 2n + 1n);
        await spend(aliceId, operator.address, usdtAddr, usd(100), 0n);
        await time.setNextBlockTimestamp(start + DAY / 2n + 2n);
        await spend(aliceId, operator.address, usdtAddr, usd(50), 0n);
        await time.setNextBlockTimestamp(start + DAY);
        await spend(aliceId, operator.address, usdtAddr, usd(100), 0n);
      });

      it("availableToSpend follows the window across the boundary", async function () {
        const { registry, operator, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
        const start = await nextBoundary(DAY);
        await time.setNextBlockTimestamp(start + 5n);
        await registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(100), 0n);
        await time.setNextBlockTimestamp(start + 6n);
        await registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(90), 0n);
        expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(usd(60));
        await time.increaseTo(start + DAY);
        expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(usd(100));
      });
    });

    describe("rolling period", function () {
      async function rollingFixture() {
        const s = await operatorFixture();
        const limit = { perTxCap: usd(100), periodCap: usd(100), period: HOUR, rolling: true };
        await s.registry.connect(s.alice).setTokenLimit(s.aliceId, s.operator.address, s.usdgAddr, limit);
        return s;
      }

      it("needs the previous and the current bucket together under the cap", async function () {
        const { registry, operator, reporter, aliceId, usdgAddr } = await loadFixture(rollingFixture);
        const spend = registry.connect(reporter).consumeSpend;
        const start = await nextBoundary(HOUR);

        await time.setNextBlockTimestamp(start + 10n);
        await spend(aliceId, operator.address, usdgAddr, usd(60), 0n);

        // Next bucket: 60 still counts, 40 left.
        await time.setNextBlockTimestamp(start + HOUR + 10n);
        await expect(spend(aliceId, operator.address, usdgAddr, usd(50), 0n))
          .to.be.revertedWithCustomError(registry, "AgentRegistryPeriodCapExceeded")
          .withArgs(usdgAddr, usd(50), usd(40));
        await time.setNextBlockTimestamp(start + HOUR + 11n);
        await spend(aliceId, operator.address, usdgAddr, usd(40), 0n);

        // Bucket after: the 60 dropped out, the 40 still counts.
        await time.setNextBlockTimestamp(start + 2n * HOUR);
        await expect(spend(aliceId, operator.address, usdgAddr, usd(61), 0n))
          .to.be.revertedWithCustomError(registry, "AgentRegistryPeriodCapExceeded")
          .withArgs(usdgAddr, usd(61), usd(60));
        await time.setNextBlockTimestamp(start + 2n * HOUR + 1n);
        await spend(aliceId, operator.address, usdgAddr, usd(60), 0n);

        // Two empty buckets later everything is available again.
        await time.increaseTo(start + 4n * HOUR);
        expect(await registry.availableToSpend(aliceId, operator.address, usdgAddr)).to.equal(usd(100));
        await spend(aliceId, operator.address, usdgAddr, usd(100), 0n);
      });

      it("forbids spending the cap twice across a boundary, unlike fixed mode", async function () {
        const { registry, operator, reporter, aliceId, usdtAddr, usdgAddr } = await loadFixture(rollingFixture);
        const spend = registry.connect(reporter).consumeSpend;
        const start = await nextBoundary(DAY);

        await time.setNextBlockTimestamp(start - 2n);
        await spend(aliceId, operator.address, usdgAddr, usd(100), 0n);
        await time.setNextBlockTimestamp(start - 1n);
        await spend(aliceId, operator.address, usdtAddr, usd(100), 0n); // fixed, DAY
        await time.setNextBlockTimestamp(start);
        await expect(spend(aliceId, operator.address, usdgAddr, 1n, 0n))
          .to.be.revertedWithCustomError(registry, "AgentRegistryPeriodCapExceeded")
          .withArgs(usdgAddr, 1n, 0n);
        await time.setNextBlockTimestamp(start + 1n);
        await spend(aliceId, operator.address, usdtAddr, usd(100), 0n); // fixed window reset
      });
    });

    describe("allow-list", function () {
      it("reverts with AgentRegistryCounterpartyNotAllowed for a counterparty not on the list, including 0", async function () {
        const { registry, alice, operator, reporter, aliceId, bobId, carolId, usdtAddr, expiry } =
          await loadFixture(operatorFixture);
        await registry.connect(alice).setOperator(aliceId, operator.address, terms(expiry, 0, true));
        await registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId], true);
        const spend = registry.connect(reporter).consumeSpend;
        for (const cp of [carolId, 0n]) {
          await expect(spend(aliceId, operator.address, usdtAddr, usd(1), cp))
            .to.be.revertedWithCustomError(registry, "AgentRegistryCounterpartyNotAllowed")
            .withArgs(cp);
        }
        await expect(spend(aliceId, operator.address, usdtAddr, usd(1), bobId))
          .to.emit(registry, "SpendConsumed")
          .withArgs(aliceId, operator.address, usdtAddr, usd(1), bobId);

        await registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId], false);
        await expect(spend(aliceId, operator.address, usdtAddr, usd(1), bobId))
          .to.be.revertedWithCustomError(registry, "AgentRegistryCounterpartyNotAllowed")
          .withArgs(bobId);
      });

      it("ignores the list while allowListOnly is false", async function () {
        const { registry, operator, reporter, aliceId, carolId, usdtAddr } = await loadFixture(operatorFixture);
        await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), carolId))
          .to.emit(registry, "SpendConsumed")
          .withArgs(aliceId, operator.address, usdtAddr, usd(1), carolId);
      });
    });

    describe("minimum score", function () {
      async function minScoreFixture() {
        const s = await operatorFixture();
        await s.registry.connect(s.alice).setOperator(s.aliceId, s.operator.address, terms(s.expiry, 6000));
        return s;
      }

      it("reverts with AgentRegistryCounterpartyScoreTooLow(cp, 5000, 6000) for a fresh counterparty", async function () {
        const { registry, operator, reporter, aliceId, bobId, usdtAddr, reputation } =
          await loadFixture(minScoreFixture);
        expect(await reputation.score(bobId)).to.equal(NEUTRAL_BPS);
        await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), bobId))
          .to.be.revertedWithCustomError(registry, "AgentRegistryCounterpartyScoreTooLow")
          .withArgs(bobId, NEUTRAL_BPS, 6000n);
      });

      it("passes with a minimum of exactly the counterparty's score (5,000)", async function () {
        const { registry, alice, operator, reporter, aliceId, bobId, usdtAddr, expiry } =
          await loadFixture(minScoreFixture);
        await registry.connect(alice).setOperator(aliceId, operator.address, terms(expiry, 5000));
        await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), bobId))
          .to.emit(registry, "SpendConsumed")
          .withArgs(aliceId, operator.address, usdtAddr, usd(1), bobId);
      });

      it("reads the live score from Reputation", async function () {
        const { registry, alice, operator, reporter, aliceId, bobId, usdtAddr, expiry, reputation } =
          await loadFixture(minScoreFixture);
        await registry.connect(alice).setOperator(aliceId, operator.address, terms(expiry, 5000));
        // A refunded task halves bob's score: 5000 * 2 / 4 = 2500.
        await reputation.connect(reporter).recordTask(aliceId, bobId, 2, usdtAddr, 0n);
        expect(await reputation.score(bobId)).to.equal(2500n);
        await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), bobId))
          .to.be.revertedWithCustomError(registry, "AgentRegistryCounterpartyScoreTooLow")
          .withArgs(bobId, 2500n, 5000n);
      });

      it("reverts with score 0 for counterparty 0 under any minimum score", async function () {
        const { registry, alice, operator, reporter, aliceId, usdtAddr, expiry } = await loadFixture(minScoreFixture);
        await registry.connect(alice).setOperator(aliceId, operator.address, terms(expiry, 1));
        await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), 0n))
          .to.be.revertedWithCustomError(registry, "AgentRegistryCounterpartyScoreTooLow")
          .withArgs(0n, 0n, 1n);
      });

      it("checks the allow-list before the score", async function () {
        const { registry, alice, operator, reporter, aliceId, bobId, usdtAddr, expiry } =
          await loadFixture(minScoreFixture);
        await registry.connect(alice).setOperator(aliceId, operator.address, terms(expiry, 6000, true));
        await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), bobId))
          .to.be.revertedWithCustomError(registry, "AgentRegistryCounterpartyNotAllowed")
          .withArgs(bobId);
      });
    });

    it("reverts with EnforcedPause while the registry is paused, for operators and owners alike", async function () {
      const { registry, alice, operator, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      await registry.pause();
      for (const spender of [operator, alice]) {
        await expect(
          registry.connect(reporter).consumeSpend(aliceId, spender.address, usdtAddr, usd(1), 0n),
        ).to.be.revertedWithCustomError(registry, "EnforcedPause");
      }
      await registry.unpause();
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), 0n))
        .to.emit(registry, "SpendConsumed")
        .withArgs(aliceId, operator.address, usdtAddr, usd(1), 0n);
    });
  });

  describe("availableToSpend", function () {
    it("is the smaller of the per-tx cap and what is left in the period", async function () {
      const { registry, operator, reporter, aliceId, usdtAddr } = await loadFixture(operatorFixture);
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(usd(100));
      await registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(100), 0n);
      await registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(75), 0n);
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(usd(75));
    });

    it("is zero for an unknown agent, a non-operator, a token without limit and an expired operator", async function () {
      const { registry, operator, stranger, aliceId, usdtAddr, usdgAddr, expiry } = await loadFixture(operatorFixture);
      expect(await registry.availableToSpend(UNKNOWN_AGENT, operator.address, usdtAddr)).to.equal(0n);
      expect(await registry.availableToSpend(aliceId, stranger.address, usdtAddr)).to.equal(0n);
      expect(await registry.availableToSpend(aliceId, operator.address, usdgAddr)).to.equal(0n);
      await time.increaseTo(expiry);
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(0n);
    });
  });

  describe("canAct", function () {
    it("is true for the owner, the wallet and an active operator", async function () {
      const { registry, alice, dave, operator, aliceId } = await loadFixture(operatorAndWalletFixture);
      expect(await registry.canAct(aliceId, alice.address)).to.equal(true);
      expect(await registry.canAct(aliceId, dave.address)).to.equal(true);
      expect(await registry.canAct(aliceId, operator.address)).to.equal(true);
    });

    it("is false for an expired operator", async function () {
      const { registry, operator, aliceId, expiry } = await loadFixture(operatorFixture);
      await time.increaseTo(expiry);
      expect(await registry.canAct(aliceId, operator.address)).to.equal(false);
    });

    it("is false for a stranger, an approved controller, the zero address and another agent's operator", async function () {
      const { registry, alice, dave, stranger, operator, aliceId, bobId } = await loadFixture(operatorFixture);
      await registry.connect(alice).approve(dave.address, aliceId);
      expect(await registry.canAct(aliceId, stranger.address)).to.equal(false);
      expect(await registry.canAct(aliceId, dave.address)).to.equal(false);
      expect(await registry.canAct(aliceId, ethers.ZeroAddress)).to.equal(false);
      expect(await registry.canAct(bobId, operator.address)).to.equal(false);
    });

    it("is false for an unknown agent and for id 0", async function () {
      const { registry, alice } = await loadFixture(deployWithAgents);
      expect(await registry.canAct(UNKNOWN_AGENT, alice.address)).to.equal(false);
      expect(await registry.canAct(0n, alice.address)).to.equal(false);
    });
  });

  // ==================================================================== service catalog

  describe("listService", function () {
    it("lists a pay-per-use service with ServiceListed and stores it active", async function () {
      const { registry, alice, aliceId, usdt } = await loadFixture(deployWithAgents);
      const usdtAddr = await usdt.getAddress();
      const price = usd("0.25");
      expect(
        await registry
          .connect(alice)
          .listService.staticCall(aliceId, CAPABILITY, PAY_PER_USE, usdtAddr, price, ENDPOINT),
      ).to.equal(1n);
      await expect(registry.connect(alice).listService(aliceId, CAPABILITY, PAY_PER_USE, usdtAddr, price, ENDPOINT))
        .to.emit(registry, "ServiceListed")
        .withArgs(1n, aliceId, CAPABILITY, PAY_PER_USE, usdtAddr, price, ENDPOINT);
      expect([...(await registry.getService(1n))]).to.deep.equal([
        usdtAddr,
        price,
        BigInt(PAY_PER_USE),
        true,
        aliceId,
        CAPABILITY,
        ENDPOINT,
      ]);
      expect(await registry.getAgentServices(aliceId)).to.deep.equal([1n]);
      expect(await registry.serviceCount()).to.equal(1n);
    });

    it("lists a quoted-task service without token or price", async function () {
      const { registry, bob, bobId } = await loadFixture(deployWithAgents);
      await expect(registry.connect(bob).listService(bobId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, ENDPOINT))
        .to.emit(registry, "ServiceListed")
        .withArgs(1n, bobId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, ENDPOINT);
      expect([...(await registry.getService(1n))]).to.deep.equal([
        ethers.ZeroAddress,
        0n,
        BigInt(QUOTED_TASK),
        true,
        bobId,
        CAPABILITY,
        ENDPOINT,
      ]);
    });

    it("numbers services globally and lists them per agent in order", async function () {
      const { registry, alice, bob, aliceId, bobId } = await loadFixture(serviceFixture);
      await registry.connect(bob).listService(bobId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, "https://bob");
      await expect(
        registry
          .connect(alice)
          .listService(aliceId, ethers.id("summarise"), QUOTED_TASK, ethers.ZeroAddress, 0, "a2a://alice"),
      )
        .to.emit(registry, "ServiceListed")
        .withArgs(3n, aliceId, ethers.id("summarise"), QUOTED_TASK, ethers.ZeroAddress, 0, "a2a://alice");
      expect(await registry.getAgentServices(aliceId)).to.deep.equal([1n, 3n]);
      expect(await registry.getAgentServices(bobId)).to.deep.equal([2n]);
      expect(await registry.getAgentServices(3n)).to.deep.equal([]);
      expect(await registry.serviceCount()).to.equal(3n);
    });

    it("lets approved and approved-for-all controllers list", async function () {
      const { registry, alice, carol, dave, aliceId } = await loadFixture(deployWithAgents);
      await registry.connect(alice).approve(dave.address, aliceId);
      await registry.connect(alice).setApprovalForAll(carol.address, true);
      await expect(
        registry.connect(dave).listService(aliceId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, ENDPOINT),
      )
        .to.emit(registry, "ServiceListed")
        .withArgs(1n, aliceId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, ENDPOINT);
      await expect(
        registry.connect(carol).listService(aliceId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, ENDPOINT),
      )
        .to.emit(registry, "ServiceListed")
        .withArgs(2n, aliceId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, ENDPOINT);
    });

    it("accepts an endpoint of exactly 512 bytes", async function () {
      const { registry, alice, aliceId } = await loadFixture(deployWithAgents);
      const endpoint = "e".repeat(Number(MAX_ENDPOINT_BYTES));
      await registry.connect(alice).listService(aliceId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, endpoint);
      expect((await registry.getService(1n)).endpoint).to.equal(endpoint);
    });

    it("reverts with AgentRegistryEmptyInput for a zero capability or an empty endpoint", async function () {
      const { registry, alice, aliceId } = await loadFixture(deployWithAgents);
      await expect(
        registry.connect(alice).listService(aliceId, ethers.ZeroHash, QUOTED_TASK, ethers.ZeroAddress, 0, ENDPOINT),
      ).to.be.revertedWithCustomError(registry, "AgentRegistryEmptyInput");
      await expect(
        registry.connect(alice).listService(aliceId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, ""),
      ).to.be.revertedWithCustomError(registry, "AgentRegistryEmptyInput");
    });

    it("reverts with AgentRegistryInputTooLong(513, 512) for a 513-byte endpoint", async function () {
      const { registry, alice, aliceId } = await loadFixture(deployWithAgents);
      await expect(
        registry.connect(alice).listService(aliceId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, "e".repeat(513)),
      )
        .to.be.revertedWithCustomError(registry, "AgentRegistryInputTooLong")
        .withArgs(513n, MAX_ENDPOINT_BYTES);
    });

    it("reverts with AgentRegistryBadService for pay-per-use without token or without price", async function () {
      const { registry, alice, aliceId, usdt } = await loadFixture(deployWithAgents);
      const usdtAddr = await usdt.getAddress();
      await expect(
        registry.connect(alice).listService(aliceId, CAPABILITY, PAY_PER_USE, ethers.ZeroAddress, 1, ENDPOINT),
      ).to.be.revertedWithCustomError(registry, "AgentRegistryBadService");
      await expect(
        registry.connect(alice).listService(aliceId, CAPABILITY, PAY_PER_USE, usdtAddr, 0, ENDPOINT),
      ).to.be.revertedWithCustomError(registry, "AgentRegistryBadService");
    });

    it("accepts the 64th service and reverts with AgentRegistryTooManyServices(agentId, 64) for the 65th", async function () {
      const { registry, alice, bob, aliceId, bobId } = await loadFixture(fullCatalogFixture);
      expect((await registry.getAgentServices(aliceId)).length).to.equal(64);
      expect(await registry.serviceCount()).to.equal(64n);
      await expect(
        registry.connect(alice).listService(aliceId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, ENDPOINT),
      )
        .to.be.revertedWithCustomError(registry, "AgentRegistryTooManyServices")
        .withArgs(aliceId, MAX_SERVICES_PER_AGENT);
      // The limit is per agent.
      await expect(registry.connect(bob).listService(bobId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, ENDPOINT))
        .to.emit(registry, "ServiceListed")
        .withArgs(65n, bobId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, ENDPOINT);
    });

    it("reverts with AgentRegistryNotController for a stranger and an operator key", async function () {
      const { registry, stranger, operator, aliceId } = await loadFixture(operatorFixture);
      for (const caller of [stranger, operator]) {
        await expect(
          registry.connect(caller).listService(aliceId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, ENDPOINT),
        )
          .to.be.revertedWithCustomError(registry, "AgentRegistryNotController")
          .withArgs(aliceId, caller.address);
      }
    });

    it("reverts with AgentRegistryUnknownAgent for an unknown agent", async function () {
      const { registry, alice } = await loadFixture(deployWithAgents);
      await expect(
        registry.connect(alice).listService(UNKNOWN_AGENT, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, ENDPOINT),
      )
        .to.be.revertedWithCustomError(registry, "AgentRegistryUnknownAgent")
        .withArgs(UNKNOWN_AGENT);
    });

    it("reverts with EnforcedPause while the registry is paused", async function () {
      const { registry, alice, aliceId } = await loadFixture(deployWithAgents);
      await registry.pause();
      await expect(
        registry.connect(alice).listService(aliceId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, ENDPOINT),
      ).to.be.revertedWithCustomError(registry, "EnforcedPause");
    });
  });

  describe("updateService", function () {
    it("changes token, price, active flag and endpoint with ServiceUpdated; mode and capability stay", async function () {
      const { registry, alice, aliceId, serviceId, usdg } = await loadFixture(serviceFixture);
      const usdgAddr = await usdg.getAddress();
      await expect(
        registry.connect(alice).updateService(serviceId, usdgAddr, usd(2), false, "https://alice.example/v2"),
      )
        .to.emit(registry, "ServiceUpdated")
        .withArgs(serviceId, aliceId, usdgAddr, usd(2), false, "https://alice.example/v2");
      expect([...(await registry.getService(serviceId))]).to.deep.equal([
        usdgAddr,
        usd(2),
        BigInt(PAY_PER_USE),
        false,
        aliceId,
        CAPABILITY,
        "https://alice.example/v2",
      ]);
      await expect(registry.connect(alice).updateService(serviceId, usdgAddr, usd(2), true, "https://alice.example/v2"))
        .to.emit(registry, "ServiceUpdated")
        .withArgs(serviceId, aliceId, usdgAddr, usd(2), true, "https://alice.example/v2");
      expect((await registry.getService(serviceId)).active).to.equal(true);
    });

    it("works while the registry is paused, so that a service can be deactivated", async function () {
      const { registry, alice, aliceId, serviceId, usdtAddr, price } = await loadFixture(serviceFixture);
      await registry.pause();
      await expect(registry.connect(alice).updateService(serviceId, usdtAddr, price, false, ENDPOINT))
        .to.emit(registry, "ServiceUpdated")
        .withArgs(serviceId, aliceId, usdtAddr, price, false, ENDPOINT);
      expect((await registry.getService(serviceId)).active).to.equal(false);
    });

    it("lets approved controllers and the agent's new owner update", async function () {
      const { registry, alice, bob, dave, aliceId, serviceId, usdtAddr, price } = await loadFixture(serviceFixture);
      await registry.connect(alice).approve(dave.address, aliceId);
      await expect(registry.connect(dave).updateService(serviceId, usdtAddr, price, false, ENDPOINT))
        .to.emit(registry, "ServiceUpdated")
        .withArgs(serviceId, aliceId, usdtAddr, price, false, ENDPOINT);
      await registry.connect(alice).transferFrom(alice.address, bob.address, aliceId);
      await expect(registry.connect(bob).updateService(serviceId, usdtAddr, price, true, ENDPOINT))
        .to.emit(registry, "ServiceUpdated")
        .withArgs(serviceId, aliceId, usdtAddr, price, true, ENDPOINT);
      await expect(registry.connect(alice).updateService(serviceId, usdtAddr, price, false, ENDPOINT))
        .to.be.revertedWithCustomError(registry, "AgentRegistryNotController")
        .withArgs(aliceId, alice.address);
    });

    it("reverts with AgentRegistryUnknownService for an unknown service and for id 0", async function () {
      const { registry, alice, usdtAddr, price } = await loadFixture(serviceFixture);
      for (const id of [2n, 0n]) {
        await expect(registry.connect(alice).updateService(id, usdtAddr, price, true, ENDPOINT))
          .to.be.revertedWithCustomError(registry, "AgentRegistryUnknownService")
          .withArgs(id);
      }
    });

    it("reverts with AgentRegistryNotController for a stranger, another agent's owner and an operator key", async function () {
      const { registry, alice, bob, stranger, operator, aliceId, serviceId, usdtAddr, price } =
        await loadFixture(serviceFixture);
      await registry.connect(alice).setOperator(aliceId, operator.address, terms((await now()) + DAY));
      for (const caller of [stranger, bob, operator]) {
        await expect(registry.connect(caller).updateService(serviceId, usdtAddr, price, false, ENDPOINT))
          .to.be.revertedWithCustomError(registry, "AgentRegistryNotController")
          .withArgs(aliceId, caller.address);
      }
    });

    it("reverts for an empty or 513-byte endpoint and for a pay-per-use service without token or price", async function () {
      const { registry, alice, serviceId, usdtAddr, price } = await loadFixture(serviceFixture);
      await expect(
        registry.connect(alice).updateService(serviceId, usdtAddr, price, true, ""),
      ).to.be.revertedWithCustomError(registry, "AgentRegistryEmptyInput");
      await expect(registry.connect(alice).updateService(serviceId, usdtAddr, price, true, "e".repeat(513)))
        .to.be.revertedWithCustomError(registry, "AgentRegistryInputTooLong")
        .withArgs(513n, MAX_ENDPOINT_BYTES);
      await expect(
        registry.connect(alice).updateService(serviceId, ethers.ZeroAddress, price, true, ENDPOINT),
      ).to.be.revertedWithCustomError(registry, "AgentRegistryBadService");
      await expect(
        registry.connect(alice).updateService(serviceId, usdtAddr, 0, true, ENDPOINT),
      ).to.be.revertedWithCustomError(registry, "AgentRegistryBadService");
    });

    it("accepts a quoted-task service update without token or price", async function () {
      const { registry, bob, bobId } = await loadFixture(deployWithAgents);
      await registry.connect(bob).listService(bobId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, ENDPOINT);
      await expect(registry.connect(bob).updateService(1n, ethers.ZeroAddress, 0, false, "https://bob/v2"))
        .to.emit(registry, "ServiceUpdated")
        .withArgs(1n, bobId, ethers.ZeroAddress, 0, false, "https://bob/v2");
      expect((await registry.getService(1n)).mode).to.equal(BigInt(QUOTED_TASK));
    });
  });

  describe("getService / getAgentServices / serviceCount", function () {
    it("getService reverts with AgentRegistryUnknownService for unknown ids and id 0", async function () {
      const { registry } = await loadFixture(serviceFixture);
      for (const id of [0n, 2n, UNKNOWN_AGENT]) {
        await expect(registry.getService(id))
          .to.be.revertedWithCustomError(registry, "AgentRegistryUnknownService")
          .withArgs(id);
      }
    });

    it("getServiceTerms returns agent, token, price, owner as payee and availability", async function () {
      const { registry, alice, aliceId, usdtAddr, price, serviceId } = await loadFixture(serviceFixture);
      expect([...(await registry.getServiceTerms(serviceId))]).to.deep.equal([
        aliceId,
        usdtAddr,
        price,
        alice.address,
        true,
      ]);
    });

    it("getServiceTerms pays the agent wallet once set", async function () {
      const s = await loadFixture(serviceFixture);
      const deadline = (await now()) + 60n;
      const signature = await signAgentWallet(s.registry, s.dave, s.aliceId, s.dave.address, s.alice.address, deadline);
      await s.registry.connect(s.alice).setAgentWallet(s.aliceId, s.dave.address, deadline, signature);
      expect((await s.registry.getServiceTerms(s.serviceId)).payTo).to.equal(s.dave.address);
    });

    it("getServiceTerms is unavailable for an inactive service, a paused agent or a quoted-task service", async function () {
      const { registry, alice, bob, aliceId, bobId, usdtAddr, price, serviceId } = await loadFixture(serviceFixture);
      await registry.connect(bob).listService(bobId, CAPABILITY, QUOTED_TASK, ethers.ZeroAddress, 0, ENDPOINT);
      expect((await registry.getServiceTerms(2n)).available).to.equal(false);
      await registry.connect(alice).setAgentPaused(aliceId, true);
      expect((await registry.getServiceTerms(serviceId)).available).to.equal(false);
      await registry.connect(alice).setAgentPaused(aliceId, false);
      await registry.connect(alice).updateService(serviceId, usdtAddr, price, false, ENDPOINT);
      expect((await registry.getServiceTerms(serviceId)).available).to.equal(false);
    });

    it("getServiceTerms reverts with AgentRegistryUnknownService for unknown ids and id 0", async function () {
      const { registry } = await loadFixture(serviceFixture);
      for (const id of [0n, 2n]) {
        await expect(registry.getServiceTerms(id))
          .to.be.revertedWithCustomError(registry, "AgentRegistryUnknownService")
          .withArgs(id);
      }
    });

    it("getAgentServices is empty and serviceCount zero before any listing", async function () {
      const { registry, aliceId } = await loadFixture(deployWithAgents);
      expect(await registry.getAgentServices(aliceId)).to.deep.equal([]);
      expect(await registry.getAgentServices(UNKNOWN_AGENT)).to.deep.equal([]);
      expect(await registry.serviceCount()).to.equal(0n);
    });
  });

  // ==================================================================== admin

  describe("setReputation / reputation", function () {
    it("lets the admin set it with ReputationSet", async function () {
      const { registry, admin, reputation, stranger } = await loadFixture(deploySystem);
      expect(await registry.reputation()).to.equal(await reputation.getAddress());
      await expect(registry.connect(admin).setReputation(stranger.address))
        .to.emit(registry, "ReputationSet")
        .withArgs(stranger.address);
      expect(await registry.reputation()).to.equal(stranger.address);
    });

    it("reverts with AccessControlUnauthorizedAccount for a caller without DEFAULT_ADMIN_ROLE", async function () {
      const { registry, stranger, alice } = await loadFixture(deploySystem);
      for (const caller of [stranger, alice]) {
        await expect(registry.connect(caller).setReputation(stranger.address))
          .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
          .withArgs(caller.address, DEFAULT_ADMIN_ROLE);
      }
    });

    it("reverts with ProtocolZeroAddress for the zero address", async function () {
      const { registry } = await loadFixture(deploySystem);
      await expect(registry.setReputation(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        registry,
        "ProtocolZeroAddress",
      );
    });
  });

  describe("pause / unpause", function () {
    it("lets the pauser pause and unpause, with Paused and Unpaused", async function () {
      const { registry, admin } = await loadFixture(deploySystem);
      await expect(registry.pause()).to.emit(registry, "Paused").withArgs(admin.address);
      expect(await registry.paused()).to.equal(true);
      await expect(registry.unpause()).to.emit(registry, "Unpaused").withArgs(admin.address);
      expect(await registry.paused()).to.equal(false);
    });

    it("works for any holder of PAUSER_ROLE", async function () {
      const { registry, carol } = await loadFixture(deploySystem);
      await registry.grantRole(PAUSER_ROLE, carol.address);
      await expect(registry.connect(carol).pause()).to.emit(registry, "Paused").withArgs(carol.address);
      await expect(registry.connect(carol).unpause()).to.emit(registry, "Unpaused").withArgs(carol.address);
    });

    it("reverts with AccessControlUnauthorizedAccount for a caller without PAUSER_ROLE", async function () {
      const { registry, stranger } = await loadFixture(deploySystem);
      await expect(registry.connect(stranger).pause())
        .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, PAUSER_ROLE);
      await registry.pause();
      await expect(registry.connect(stranger).unpause())
        .to.be.revertedWithCustomError(registry, "AccessControlUnauthorizedAccount")
        .withArgs(stranger.address, PAUSER_ROLE);
    });

    it("reverts with EnforcedPause / ExpectedPause when already in that state", async function () {
      const { registry } = await loadFixture(deploySystem);
      await expect(registry.unpause()).to.be.revertedWithCustomError(registry, "ExpectedPause");
      await registry.pause();
      await expect(registry.pause()).to.be.revertedWithCustomError(registry, "EnforcedPause");
    });

    it("keeps views, transfers and owner controls working while paused", async function () {
      const { registry, alice, bob, aliceId } = await loadFixture(deployWithAgents);
      await registry.pause();
      expect(await registry.getAgentWallet(aliceId)).to.equal(alice.address);
      expect(await registry.isAgentActive(aliceId)).to.equal(true);
      await expect(registry.connect(alice).setAgentPaused(aliceId, true))
        .to.emit(registry, "AgentPauseSet")
        .withArgs(aliceId, true);
      await expect(registry.connect(alice).transferFrom(alice.address, bob.address, aliceId))
        .to.emit(registry, "Transfer")
        .withArgs(alice.address, bob.address, aliceId);
    });
  });

  describe("policy views after revocation or transfer", function () {
    it("getTokenLimit and isCounterpartyAllowed read empty once the operator is revoked", async function () {
      const { registry, alice, operator, aliceId, bobId, usdtAddr, limit } = await loadFixture(operatorFixture);
      await registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId], true);
      expect((await registry.getTokenLimit(aliceId, operator.address, usdtAddr)).periodCap).to.equal(limit.periodCap);
      await registry.connect(alice).revokeOperator(aliceId, operator.address);
      const after = await registry.getTokenLimit(aliceId, operator.address, usdtAddr);
      expect([after.perTxCap, after.periodCap, after.period, after.rolling]).to.deep.equal([0n, 0n, 0n, false]);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, bobId)).to.equal(false);
    });

    it("getTokenLimit and isCounterpartyAllowed read empty once the agent changed hands", async function () {
      const { registry, alice, bob, operator, aliceId, bobId, usdtAddr } = await loadFixture(operatorFixture);
      await registry.connect(alice).setCounterparties(aliceId, operator.address, [bobId], true);
      await registry.connect(alice).transferFrom(alice.address, bob.address, aliceId);
      expect((await registry.getTokenLimit(aliceId, operator.address, usdtAddr)).periodCap).to.equal(0n);
      expect(await registry.isCounterpartyAllowed(aliceId, operator.address, bobId)).to.equal(false);
    });

    it("an expired operator keeps its policy, which a renewal brings back", async function () {
      const { registry, alice, operator, aliceId, usdtAddr, limit, expiry } = await loadFixture(operatorFixture);
      await time.increaseTo(expiry + 1n);
      expect((await registry.getOperator(aliceId, operator.address)).active).to.equal(false);
      expect((await registry.getTokenLimit(aliceId, operator.address, usdtAddr)).periodCap).to.equal(limit.periodCap);
      await registry.connect(alice).setOperator(aliceId, operator.address, terms((await now()) + DAY));
      expect(await registry.availableToSpend(aliceId, operator.address, usdtAddr)).to.equal(limit.perTxCap);
    });
  });

  describe("consumeSpend and counterparties that do not exist", function () {
    it("scores an unknown counterparty 0 under a minimum-score policy", async function () {
      const { registry, alice, operator, reporter, aliceId, usdtAddr, expiry } = await loadFixture(operatorFixture);
      await registry.connect(alice).setOperator(aliceId, operator.address, terms(expiry, 1));
      await expect(registry.connect(reporter).consumeSpend(aliceId, operator.address, usdtAddr, usd(1), UNKNOWN_AGENT))
        .to.be.revertedWithCustomError(registry, "AgentRegistryCounterpartyScoreTooLow")
        .withArgs(UNKNOWN_AGENT, 0n, 1n);
    });
  });
});
