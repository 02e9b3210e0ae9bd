import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";

const KEY_HASH = ethers.id("agent-market local key");
const CONFIRMATIONS = 3;
const CALLBACK_GAS = 200_000;
const OWNER_ONLY = "Only callable by owner";

/**
 * A VRF v2.5 coordinator mock with a funded subscription, a ChainlinkVRFSource on it, and a test
 * consumer (RejectingRandomnessConsumer) set as the source's consumer.
 */
async function deployVrf() {
  const [owner, stranger, eoaConsumer] = await ethers.getSigners();
  const coordinator = await (
    await ethers.getContractFactory("VRFCoordinatorV2_5Mock")
  ).deploy(10n ** 17n, 10n ** 9n, 4n * 10n ** 15n);
  const receipt = await (await coordinator.createSubscription()).wait();
  const created = receipt!.logs
    .map((l) => coordinator.interface.parseLog(l))
    .find((e) => e?.name === "SubscriptionCreated");
  const subId: bigint = created!.args.subId;
  await coordinator.fundSubscription(subId, 1_000n * 10n ** 18n);
  const config = {
    keyHash: KEY_HASH,
    subscriptionId: subId,
    requestConfirmations: CONFIRMATIONS,
    callbackGasLimit: CALLBACK_GAS,
    nativePayment: false,
  };
  const source = await (
    await ethers.getContractFactory("ChainlinkVRFSource")
  ).deploy(await coordinator.getAddress(), config);
  await coordinator.addConsumer(subId, await source.getAddress());
  const consumer = await (await ethers.getContractFactory("RejectingRandomnessConsumer")).deploy();
  await consumer.setSource(await source.getAddress());
  await source.setConsumer(await consumer.getAddress());
  return { coordinator, source, consumer, config, subId, owner, stranger, eoaConsumer };
}

type VrfFixture = Awaited<ReturnType<typeof deployVrf>>;

/** The consumer requests a word; returns the request id. */
async function request(f: VrfFixture) {
  const id = await f.consumer.request.staticCall();
  await f.consumer.request();
  return id;
}

describe("ChainlinkVRFSource", function () {
  describe("constructor", function () {
    it("stores the configuration, the coordinator and the owner", async function () {
      const f = await loadFixture(deployVrf);
      const c = await f.source.config();
      expect(c.keyHash).to.equal(KEY_HASH);
      expect(c.subscriptionId).to.equal(f.subId);
      expect(c.requestConfirmations).to.equal(CONFIRMATIONS);
      expect(c.callbackGasLimit).to.equal(CALLBACK_GAS);
      expect(c.nativePayment).to.equal(false);
      expect(await f.source.s_vrfCoordinator()).to.equal(await f.coordinator.getAddress());
      expect(await f.source.owner()).to.equal(f.owner.address);
      expect(await f.source.consumer()).to.equal(await f.consumer.getAddress());
    });

    it("emits ConfigSet", async function () {
      const f = await loadFixture(deployVrf);
      const factory = await ethers.getContractFactory("ChainlinkVRFSource");
      const source = await factory.deploy(await f.coordinator.getAddress(), f.config);
      await expect(source.deploymentTransaction())
        .to.emit(source, "ConfigSet")
        .withArgs(KEY_HASH, f.subId, CONFIRMATIONS, CALLBACK_GAS, false);
    });

    const bad: [string, Record<string, unknown>][] = [
      ["a zero key hash", { keyHash: ethers.ZeroHash }],
      ["0 confirmations", { requestConfirmations: 0 }],
      ["201 confirmations", { requestConfirmations: 201 }],
      ["a callback gas limit of 49,999", { callbackGasLimit: 49_999 }],
      ["a callback gas limit of 2,500,001", { callbackGasLimit: 2_500_001 }],
    ];
    for (const [name, over] of bad) {
      it(`reverts ChainlinkVRFSourceBadConfig with ${name}`, async function () {
        const f = await loadFixture(deployVrf);
        const factory = await ethers.getContractFactory("ChainlinkVRFSource");
        await expect(
          factory.deploy(await f.coordinator.getAddress(), { ...f.config, ...over }),
        ).to.be.revertedWithCustomError(f.source, "ChainlinkVRFSourceBadConfig");
      });
    }

    it("reverts ZeroAddress for a zero coordinator", async function () {
      const f = await loadFixture(deployVrf);
      const factory = await ethers.getContractFactory("ChainlinkVRFSource");
      await expect(factory.deploy(ethers.ZeroAddress, f.config)).to.be.revertedWithCustomError(f.source, "ZeroAddress");
    });
  });

  describe("setConfig", function () {
    it("accepts the bounds and emits ConfigSet", async function () {
      const f = await loadFixture(deployVrf);
      const low = {
        ...f.config,
        subscriptionId: 7n,
        requestConfirmations: 1,
        callbackGasLimit: 50_000,
        nativePayment: true,
      };
      await expect(f.source.setConfig(low)).to.emit(f.source, "ConfigSet").withArgs(KEY_HASH, 7n, 1, 50_000, true);
      const high = { ...f.config, requestConfirmations: 200, callbackGasLimit: 2_500_000 };
      await expect(f.source.setConfig(high))
        .to.emit(f.source, "ConfigSet")
        .withArgs(KEY_HASH, f.subId, 200, 2_500_000, false);
      const c = await f.source.config();
      expect(c.requestConfirmations).to.equal(200);
      expect(c.callbackGasLimit).to.equal(2_500_000);
      expect(c.subscriptionId).to.equal(f.subId);
    });

    const bad: [string, Record<string, unknown>][] = [
      ["a zero key hash", { keyHash: ethers.ZeroHash }],
      ["0 confirmations", { requestConfirmations: 0 }],
      ["201 confirmations", { requestConfirmations: 201 }],
      ["a callback gas limit of 49,999", { callbackGasLimit: 49_999 }],
      ["a callback gas limit of 2,500,001", { callbackGasLimit: 2_500_001 }],
    ];
    for (const [name, over] of bad) {
      it(`reverts ChainlinkVRFSourceBadConfig with ${name}`, async function () {
        const f = await loadFixture(deployVrf);
        await expect(f.source.setConfig({ ...f.config, ...over })).to.be.revertedWithCustomError(
          f.source,
          "ChainlinkVRFSourceBadConfig",
        );
      });
    }

    it("is owner only", async function () {
      const f = await loadFixture(deployVrf);
      await expect(f.source.connect(f.stranger).setConfig(f.config)).to.be.revertedWith(OWNER_ONLY);
    });
  });

  describe("setConsumer", function () {
    it("sets the consumer and emits ConsumerSet", async function () {
      const f = await loadFixture(deployVrf);
      await expect(f.source.setConsumer(f.eoaConsumer.address))
        .to.emit(f.source, "ConsumerSet")
        .withArgs(f.eoaConsumer.address);
      expect(await f.source.consumer()).to.equal(f.eoaConsumer.address);
    });

    it("reverts ZeroAddress for the zero address", async function () {
      const f = await loadFixture(deployVrf);
      await expect(f.source.setConsumer(ethers.ZeroAddress)).to.be.revertedWithCustomError(f.source, "ZeroAddress");
    });

    it("is owner only", async function () {
      const f = await loadFixture(deployVrf);
      await expect(f.source.connect(f.stranger).setConsumer(f.stranger.address)).to.be.revertedWith(OWNER_ONLY);
    });
  });

  describe("requestRandomness", function () {
    it("sends one request with the configuration, marks it pending and emits RandomnessRequested", async function () {
      const f = await loadFixture(deployVrf);
      const id = await f.consumer.request.staticCall();
      await expect(f.consumer.request())
        .to.emit(f.source, "RandomnessRequested")
        .withArgs(id)
        .and.to.emit(f.coordinator, "RandomWordsRequested")
        .withArgs(
          KEY_HASH,
          id,
          anyValue,
          f.subId,
          CONFIRMATIONS,
          CALLBACK_GAS,
          1,
          anyValue,
          await f.source.getAddress(),
        );
      expect(await f.source.pending(id)).to.equal(true);
    });

    it("reverts ChainlinkVRFSourceNotConsumer for anyone else", async function () {
      const f = await loadFixture(deployVrf);
      await expect(f.source.connect(f.stranger).requestRandomness())
        .to.be.revertedWithCustomError(f.source, "ChainlinkVRFSourceNotConsumer")
        .withArgs(f.stranger.address);
    });
  });

  describe("fulfilment", function () {
    it("delivers the word to the consumer (success == true in the coordinator's event)", async function () {
      const f = await loadFixture(deployVrf);
      const id = await request(f);
      const source = await f.source.getAddress();
      await expect(f.coordinator.fulfillRandomWordsWithOverride(id, source, [123n]))
        .to.emit(f.source, "RandomnessFulfilled")
        .withArgs(id, 123n, true)
        .and.to.emit(f.coordinator, "RandomWordsFulfilled")
        .withArgs(id, id, f.subId, anyValue, false, true, false);
      expect(await f.consumer.lastRequestId()).to.equal(id);
      expect(await f.consumer.lastWord()).to.equal(123n);
      expect(await f.source.pending(id)).to.equal(false);
      expect(await f.source.undelivered(id)).to.equal(0n);
    });

    it("delivers the mock's default word", async function () {
      const f = await loadFixture(deployVrf);
      const id = await request(f);
      const word = BigInt(ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(["uint256", "uint256"], [id, 0n])));
      await expect(f.coordinator.fulfillRandomWords(id, await f.source.getAddress()))
        .to.emit(f.source, "RandomnessFulfilled")
        .withArgs(id, word, true);
      expect(await f.consumer.lastWord()).to.equal(word);
    });

    it("turns a zero word into 1", async function () {
      const f = await loadFixture(deployVrf);
      const id = await request(f);
      await expect(f.coordinator.fulfillRandomWordsWithOverride(id, await f.source.getAddress(), [0n]))
        .to.emit(f.source, "RandomnessFulfilled")
        .withArgs(id, 1n, true);
      expect(await f.consumer.lastWord()).to.equal(1n);
    });

    it("rejects rawFulfillRandomWords from anyone but the coordinator (OnlyCoordinatorCanFulfill)", async function () {
      const f = await loadFixture(deployVrf);
      const id = await request(f);
      await expect(f.source.connect(f.stranger).rawFulfillRandomWords(id, [5n]))
        .to.be.revertedWithCustomError(f.source, "OnlyCoordinatorCanFulfill")
        .withArgs(f.stranger.address, await f.coordinator.getAddress());
    });

    it("ignores an unknown request id (no event, nothing delivered)", async function () {
      const f = await loadFixture(deployVrf);
      // The coordinator of record can call it directly with an id the source never requested.
      const coordinator = await ethers.getImpersonatedSigner(await f.coordinator.getAddress());
      await ethers.provider.send("hardhat_setBalance", [coordinator.address, "0xDE0B6B3A7640000"]);
      await expect(f.source.connect(coordinator).rawFulfillRandomWords(999n, [5n])).to.not.emit(
        f.source,
        "RandomnessFulfilled",
      );
      expect(await f.consumer.lastRequestId()).to.equal(0n);
      expect(await f.source.undelivered(999n)).to.equal(0n);
    });

    it("ignores a second answer to the same request", async function () {
      const f = await loadFixture(deployVrf);
      const id = await request(f);
      const coordinator = await ethers.getImpersonatedSigner(await f.coordinator.getAddress());
      await ethers.provider.send("hardhat_setBalance", [coordinator.address, "0xDE0B6B3A7640000"]);
      await f.source.connect(coordinator).rawFulfillRandomWords(id, [5n]);
      await expect(f.source.connect(coordinator).rawFulfillRandomWords(id, [6n])).to.not.emit(
        f.source,
        "RandomnessFulfilled",
      );
      expect(await f.consumer.lastWord()).to.equal(5n);
    });

    it("ignores an empty words array and keeps the request pending", async function () {
      const f = await loadFixture(deployVrf);
      const id = await request(f);
      const coordinator = await ethers.getImpersonatedSigner(await f.coordinator.getAddress());
      await ethers.provider.send("hardhat_setBalance", [coordinator.address, "0xDE0B6B3A7640000"]);
      await expect(f.source.connect(coordinator).rawFulfillRandomWords(id, [])).to.not.emit(
        f.source,
        "RandomnessFulfilled",
      );
      expect(await f.source.pending(id)).to.equal(true);
    });
  });

  describe("rejected delivery and redeliver", function () {
    it("stores the word of a rejected delivery without reverting the fulfilment", async function () {
      const f = await loadFixture(deployVrf);
      const id = await request(f);
      await f.consumer.setRejecting(true);
      await expect(f.coordinator.fulfillRandomWordsWithOverride(id, await f.source.getAddress(), [77n]))
        .to.emit(f.source, "RandomnessFulfilled")
        .withArgs(id, 77n, false)
        .and.to.emit(f.coordinator, "RandomWordsFulfilled")
        .withArgs(id, id, f.subId, anyValue, false, true, false);
      expect(await f.source.undelivered(id)).to.equal(77n);
      expect(await f.source.pending(id)).to.equal(false);
      expect(await f.consumer.lastRequestId()).to.equal(0n);
    });

    it("redeliver sends the stored word (anyone) and clears it", async function () {
      const f = await loadFixture(deployVrf);
      const id = await request(f);
      await f.consumer.setRejecting(true);
      await f.coordinator.fulfillRandomWordsWithOverride(id, await f.source.getAddress(), [77n]);
      await f.consumer.setRejecting(false);
      await expect(f.source.connect(f.stranger).redeliver(id))
        .to.emit(f.source, "RandomnessFulfilled")
        .withArgs(id, 77n, true);
      expect(await f.consumer.lastRequestId()).to.equal(id);
      expect(await f.consumer.lastWord()).to.equal(77n);
      expect(await f.source.undelivered(id)).to.equal(0n);
      await expect(f.source.redeliver(id))
        .to.be.revertedWithCustomError(f.source, "ChainlinkVRFSourceNothingToRedeliver")
        .withArgs(id);
    });

    it("redeliver reverts with the consumer's error while it still rejects, and keeps the word", async function () {
      const f = await loadFixture(deployVrf);
      const id = await request(f);
      await f.consumer.setRejecting(true);
      await f.coordinator.fulfillRandomWordsWithOverride(id, await f.source.getAddress(), [77n]);
      await expect(f.source.redeliver(id))
        .to.be.revertedWithCustomError(f.consumer, "RejectingRandomnessConsumerRejected")
        .withArgs(id);
      expect(await f.source.undelivered(id)).to.equal(77n);
    });

    it("redeliver reverts ChainlinkVRFSourceNothingToRedeliver for an id with nothing stored", async function () {
      const f = await loadFixture(deployVrf);
      await expect(f.source.redeliver(42n))
        .to.be.revertedWithCustomError(f.source, "ChainlinkVRFSourceNothingToRedeliver")
        .withArgs(42n);
    });

    it("with a consumer without code no delivery is attempted: the word is stored and the fulfilment succeeds (coordinator success == true)", async function () {
      const f = await loadFixture(deployVrf);
      await f.source.setConsumer(f.eoaConsumer.address);
      const id = await f.source.connect(f.eoaConsumer).requestRandomness.staticCall();
      await f.source.connect(f.eoaConsumer).requestRandomness();
      await expect(f.coordinator.fulfillRandomWordsWithOverride(id, await f.source.getAddress(), [9n]))
        .to.emit(f.source, "RandomnessFulfilled")
        .withArgs(id, 9n, false)
        .and.to.emit(f.coordinator, "RandomWordsFulfilled")
        .withArgs(id, id, f.subId, anyValue, false, true, false);
      expect(await f.source.pending(id)).to.equal(false);
      expect(await f.source.undelivered(id)).to.equal(9n);
      // Redelivery to the address without code still fails (the call's extcodesize check) and
      // keeps the word; once the owner sets a consumer with code, anyone can redeliver it.
      await expect(f.source.connect(f.stranger).redeliver(id)).to.be.revertedWithoutReason();
      expect(await f.source.undelivered(id)).to.equal(9n);
      await f.source.setConsumer(await f.consumer.getAddress());
      await expect(f.source.connect(f.stranger).redeliver(id))
        .to.emit(f.source, "RandomnessFulfilled")
        .withArgs(id, 9n, true);
      expect(await f.consumer.lastRequestId()).to.equal(id);
      expect(await f.consumer.lastWord()).to.equal(9n);
      expect(await f.source.undelivered(id)).to.equal(0n);
    });
  });
});
