import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-toolbox/network-helpers";
import { deployWithAgents } from "../fixtures/system";

describe("System fixture", () => {
  it("deploys through Ignition and wires the registry to Reputation", async () => {
    const { registry, reputation, alice } = await loadFixture(deployWithAgents);
    expect(await registry.reputation()).to.equal(await reputation.getAddress());
    expect(await reputation.getIdentityRegistry()).to.equal(await registry.getAddress());
    expect(await registry.ownerOf(1n)).to.equal(alice.address);
    expect(await registry.agentCount()).to.equal(3n);
  });
});
