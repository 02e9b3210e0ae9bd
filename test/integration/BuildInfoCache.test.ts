import { readFileSync } from "node:fs";
import { expect } from "chai";
import hre from "hardhat";
import { HardhatArtifactResolver } from "@nomicfoundation/hardhat-ignition/helpers";

type BuildInfo = {
  id: string;
  output: { contracts: Record<string, Record<string, { evm: { bytecode: { object: string } } }>> };
};

/** tasks/lib/build-info-cache.ts: Ignition's build info, parsed once per process. */
describe("Build-info cache (Ignition's artifact resolver)", function () {
  const registryFqn = "contracts/registry/AgentRegistry.sol:AgentRegistry";
  const resolver = () => new HardhatArtifactResolver(hre);

  it("serves the build info Hardhat itself reads for the contract: same id, same bytecode", async function () {
    const cached = (await resolver().getBuildInfo("AgentRegistry")) as BuildInfo;
    const fromHardhat = (await hre.artifacts.getBuildInfo(registryFqn))!;
    expect(cached.id).to.equal(fromHardhat.id);
    const artifact = await hre.artifacts.readArtifact(registryFqn);
    const compiled = cached.output.contracts["contracts/registry/AgentRegistry.sol"]["AgentRegistry"];
    expect("0x" + compiled.evm.bytecode.object).to.equal(artifact.bytecode);
  });

  it("parses a build-info file once: two contracts of one build, two resolvers, one object", async function () {
    // Two contracts Hardhat compiled in the same build (after an incremental compile, not every
    // contract shares one build-info file), each with a name no other artifact has.
    const fqns = await hre.artifacts.getAllFullyQualifiedNames();
    const nameOf = (fqn: string) => fqn.slice(fqn.lastIndexOf(":") + 1);
    const unique = fqns.filter((fqn) => fqns.filter((other) => nameOf(other) === nameOf(fqn)).length === 1);
    const byBuild = new Map<string, string[]>();
    for (const fqn of unique) {
      // The artifact's debug file names its build-info file.
      const dbg = hre.artifacts.formArtifactPathFromFullyQualifiedName(fqn).replace(/\.json$/, ".dbg.json");
      const id = (JSON.parse(readFileSync(dbg, "utf8")) as { buildInfo: string }).buildInfo;
      byBuild.set(id, [...(byBuild.get(id) ?? []), nameOf(fqn)]);
    }
    const [a, b] = [...byBuild.values()].find((names) => names.length >= 2)!;
    const first = await resolver().getBuildInfo(a);
    const second = await resolver().getBuildInfo(b);
    expect(second).to.equal(first);
  });

  it("leaves fully qualified names to Hardhat (a fresh parse) and fails as before for an unknown name", async function () {
    const cached = await resolver().getBuildInfo("AgentRegistry");
    const byFqn = (await resolver().getBuildInfo(registryFqn)) as BuildInfo;
    expect(byFqn).to.not.equal(cached);
    expect(byFqn.id).to.equal((cached as BuildInfo).id);
    await expect(resolver().getBuildInfo("NoSuchContract")).to.be.rejectedWith(
      "Artifact path not found for NoSuchContract",
    );
  });
});
