import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import { Interface, type Fragment } from "ethers";
import { deployWithAgents } from "../fixtures/system";
import { AGENT_WALLET_TYPES, now } from "../fixtures/helpers";
import { AgentRegistry__factory, Reputation__factory } from "../../typechain-types";
import signatures from "../fixtures/erc8004-signatures.json";

/**
 * ABI compatibility with the ERC-8004 reference registries. The expected surface lives in
 * `test/fixtures/erc8004-signatures.json`, derived once from the reference ABIs (IdentityRegistry,
 * ReputationRegistry) without their Ownable/initializer administration; only that file is read here.
 */

interface FunctionSignature {
  signature: string;
  selector: string;
  stateMutability: string;
  outputs: string[];
}

interface EventSignature {
  signature: string;
  topic0: string;
  indexed: boolean[];
}

interface RegistrySurface {
  functions: FunctionSignature[];
  events: EventSignature[];
}

const EXCLUDED_FUNCTION_NAMES = ["owner", "renounceOwnership", "transferOwnership", "initialize"];
const EXCLUDED_EVENT_NAMES = ["OwnershipTransferred"];

const AGENT_WALLET_SET_TYPE = "AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 deadline)";

/**
 * Every way `iface` falls short of `expected`, one line per item, naming it: a missing function
 * selector, different output types or mutability, a missing event topic or different indexing.
 */
function incompatibilities(iface: Interface, expected: RegistrySurface): string[] {
  const problems: string[] = [];
  for (const f of expected.functions) {
    const ours = iface.getFunction(f.selector);
    if (ours === null) {
      problems.push(`missing function ${f.signature} (selector ${f.selector})`);
      continue;
    }
    const outputs = ours.outputs.map((o) => o.format("sighash"));
    if (outputs.join(",") !== f.outputs.join(",")) {
      problems.push(`function ${f.signature} returns (${outputs.join(",")}), expected (${f.outputs.join(",")})`);
    }
    if (ours.stateMutability !== f.stateMutability) {
      problems.push(`function ${f.signature} is ${ours.stateMutability}, expected ${f.stateMutability}`);
    }
  }
  for (const e of expected.events) {
    const ours = iface.getEvent(e.topic0);
    if (ours === null) {
      problems.push(`missing event ${e.signature} (topic0 ${e.topic0})`);
      continue;
    }
    const indexed = ours.inputs.map((i) => i.indexed === true);
    if (indexed.join(",") !== e.indexed.join(",")) {
      problems.push(`event ${e.signature} indexes [${indexed.join(",")}], expected [${e.indexed.join(",")}]`);
    }
  }
  return problems;
}

/** The canonical signature of a function, event or error fragment (null for the others). */
function sighashOf(fragment: Fragment): string | null {
  return fragment.type === "function" || fragment.type === "event" || fragment.type === "error"
    ? fragment.format("sighash")
    : null;
}

/** `iface` without the fragments whose signature is in `drop`. */
function without(iface: Interface, drop: string[]): Interface {
  return new Interface(iface.fragments.filter((f) => !drop.includes(sighashOf(f) ?? "")));
}

describe("ERC-8004 compatibility", function () {
  const identity = signatures.IdentityRegistry as RegistrySurface;
  const reputation = signatures.ReputationRegistry as RegistrySurface;
  const registryInterface = AgentRegistry__factory.createInterface() as unknown as Interface;
  const reputationInterface = Reputation__factory.createInterface() as unknown as Interface;

  describe("signature fixture", function () {
    it("lists selectors and topics that match their signatures", function () {
      for (const surface of [identity, reputation]) {
        for (const f of surface.functions) {
          expect(f.selector, f.signature).to.equal(ethers.id(f.signature).slice(0, 10));
        }
        for (const e of surface.events) {
          expect(e.topic0, e.signature).to.equal(ethers.id(e.signature));
        }
      }
    });

    it("holds the whole reference surface without the Ownable/initializer administration", function () {
      expect(identity.functions).to.have.length(27);
      expect(identity.events).to.have.length(11);
      expect(reputation.functions).to.have.length(14);
      expect(reputation.events).to.have.length(5);
      for (const surface of [identity, reputation]) {
        for (const f of surface.functions) {
          expect(EXCLUDED_FUNCTION_NAMES, f.signature).not.to.include(f.signature.split("(")[0]);
        }
        for (const e of surface.events) {
          expect(EXCLUDED_EVENT_NAMES, e.signature).not.to.include(e.signature.split("(")[0]);
        }
      }
      const identityFunctions = identity.functions.map((f) => f.signature);
      expect(identityFunctions).to.include.members([
        "register()",
        "register(string)",
        "register(string,(string,bytes)[])",
        "setAgentWallet(uint256,address,uint256,bytes)",
        "getAgentWallet(uint256)",
        "eip712Domain()",
        "upgradeToAndCall(address,bytes)",
      ]);
      expect(identity.events.map((e) => e.signature)).to.include.members([
        "Registered(uint256,string,address)",
        "MetadataSet(uint256,string,string,bytes)",
        "URIUpdated(uint256,string,address)",
      ]);
      expect(reputation.functions.map((f) => f.signature)).to.include(
        "giveFeedback(uint256,int128,uint8,string,string,string,string,bytes32)",
      );
      expect(reputation.events.map((e) => e.signature)).to.include.members([
        "NewFeedback(uint256,address,uint64,int128,uint8,string,string,string,string,string,bytes32)",
        "FeedbackRevoked(uint256,address,uint64)",
        "ResponseAppended(uint256,address,uint64,address,string,bytes32)",
      ]);
    });
  });

  describe("AgentRegistry vs IdentityRegistry", function () {
    it("has every function selector, output type list and mutability, and every event topic", function () {
      const problems = incompatibilities(registryInterface, identity);
      expect(problems, `AgentRegistry is not ERC-8004 compatible:\n  ${problems.join("\n  ")}`).to.deep.equal([]);
    });

    it("names the item when a function or an event is missing", function () {
      const stripped = without(registryInterface, [
        "getAgentWallet(uint256)",
        "register(string,(string,bytes)[])",
        "MetadataSet(uint256,string,string,bytes)",
      ]);
      expect(incompatibilities(stripped, identity)).to.deep.equal([
        "missing function getAgentWallet(uint256) (selector 0x00339509)",
        `missing function register(string,(string,bytes)[]) (selector ${ethers.id("register(string,(string,bytes)[])").slice(0, 10)})`,
        `missing event MetadataSet(uint256,string,string,bytes) (topic0 ${ethers.id("MetadataSet(uint256,string,string,bytes)")})`,
      ]);
    });

    it("names the function when its outputs differ", function () {
      const altered = new Interface([
        ...without(registryInterface, ["getAgentWallet(uint256)"]).fragments,
        "function getAgentWallet(uint256 agentId) view returns (address, bool)",
      ]);
      expect(incompatibilities(altered, identity)).to.deep.equal([
        "function getAgentWallet(uint256) returns (address,bool), expected (address)",
      ]);
    });
  });

  describe("Reputation vs ReputationRegistry", function () {
    it("has every function selector, output type list and mutability, and every event topic", function () {
      const problems = incompatibilities(reputationInterface, reputation);
      expect(problems, `Reputation is not ERC-8004 compatible:\n  ${problems.join("\n  ")}`).to.deep.equal([]);
    });

    it("names the item when a function or an event is missing", function () {
      const stripped = without(reputationInterface, [
        "giveFeedback(uint256,int128,uint8,string,string,string,string,bytes32)",
        "NewFeedback(uint256,address,uint64,int128,uint8,string,string,string,string,string,bytes32)",
      ]);
      const giveFeedback = "giveFeedback(uint256,int128,uint8,string,string,string,string,bytes32)";
      const newFeedback = "NewFeedback(uint256,address,uint64,int128,uint8,string,string,string,string,string,bytes32)";
      expect(incompatibilities(stripped, reputation)).to.deep.equal([
        `missing function ${giveFeedback} (selector ${ethers.id(giveFeedback).slice(0, 10)})`,
        `missing event ${newFeedback} (topic0 ${ethers.id(newFeedback)})`,
      ]);
    });
  });

  describe("agent wallet proofs (EIP-712)", function () {
    it("reports the ERC-8004 reference domain through eip712Domain()", async function () {
      const { registry } = await loadFixture(deployWithAgents);
      const domain = await registry.eip712Domain();
      expect(domain.fields).to.equal("0x0f"); // name, version, chainId, verifyingContract
      expect(domain.name).to.equal("ERC8004IdentityRegistry");
      expect(domain.version).to.equal("1");
      expect(domain.chainId).to.equal((await ethers.provider.getNetwork()).chainId);
      expect(domain.verifyingContract).to.equal(await registry.getAddress());
      expect(domain.salt).to.equal(ethers.ZeroHash);
      expect(domain.extensions).to.deep.equal([]);
    });

    it("uses the ERC-8004 AgentWalletSet type, as the shared test helpers sign it", function () {
      expect(ethers.TypedDataEncoder.from(AGENT_WALLET_TYPES).encodeType("AgentWalletSet")).to.equal(
        AGENT_WALLET_SET_TYPE,
      );
    });

    it("accepts a wallet proof hashed by hand with the ERC-8004 typehash and domain", async function () {
      const { registry, alice, aliceId } = await loadFixture(deployWithAgents);
      const wallet = ethers.Wallet.createRandom();
      const deadline = (await now()) + 120n;
      const coder = ethers.AbiCoder.defaultAbiCoder();
      const domainSeparator = ethers.keccak256(
        coder.encode(
          ["bytes32", "bytes32", "bytes32", "uint256", "address"],
          [
            ethers.id("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
            ethers.id("ERC8004IdentityRegistry"),
            ethers.id("1"),
            (await ethers.provider.getNetwork()).chainId,
            await registry.getAddress(),
          ],
        ),
      );
      const structHash = ethers.keccak256(
        coder.encode(
          ["bytes32", "uint256", "address", "address", "uint256"],
          [ethers.id(AGENT_WALLET_SET_TYPE), aliceId, wallet.address, alice.address, deadline],
        ),
      );
      const digest = ethers.keccak256(ethers.concat(["0x1901", domainSeparator, structHash]));
      const signature = wallet.signingKey.sign(digest).serialized;

      await expect(registry.connect(alice).setAgentWallet(aliceId, wallet.address, deadline, signature))
        .to.emit(registry, "MetadataSet")
        .withArgs(aliceId, "agentWallet", "agentWallet", wallet.address.toLowerCase());
      expect(await registry.getAgentWallet(aliceId)).to.equal(wallet.address);
      expect(await registry.getMetadata(aliceId, "agentWallet")).to.equal(wallet.address.toLowerCase());
    });

    it("rejects a proof over any other type string", async function () {
      const { registry, alice, aliceId } = await loadFixture(deployWithAgents);
      const wallet = ethers.Wallet.createRandom();
      const deadline = (await now()) + 120n;
      const domain = {
        name: "ERC8004IdentityRegistry",
        version: "1",
        chainId: (await ethers.provider.getNetwork()).chainId,
        verifyingContract: await registry.getAddress(),
      };
      // Same fields, other order: a different typehash.
      const reordered = {
        AgentWalletSet: [
          { name: "agentId", type: "uint256" },
          { name: "owner", type: "address" },
          { name: "newWallet", type: "address" },
          { name: "deadline", type: "uint256" },
        ],
      };
      const signature = await wallet.signTypedData(domain, reordered, {
        agentId: aliceId,
        newWallet: wallet.address,
        owner: alice.address,
        deadline,
      });
      await expect(registry.connect(alice).setAgentWallet(aliceId, wallet.address, deadline, signature))
        .to.be.revertedWithCustomError(registry, "AgentRegistryInvalidWalletSignature")
        .withArgs(wallet.address);
    });
  });
});
