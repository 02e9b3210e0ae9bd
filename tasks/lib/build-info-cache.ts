import fs from "fs";
import path from "path";
import { HardhatArtifactResolver } from "@nomicfoundation/hardhat-ignition/helpers";

/**
 * Hardhat Ignition reads and parses the whole build-info file (17 MB with viaIR) once per contract
 * it deploys, even on the in-process network, where it then drops it. That made one deployment of
 * the Market module cost ~7 s of JSON parsing, and the test suite deploys it hundreds of times.
 * Here each build-info file is parsed once per process. Its name is a hash of the compiler input,
 * so a recompilation in the same process gets a new file and a new parse: nothing stale is served.
 */
type Resolver = {
  _resolvePath(contractName: string): Promise<string | undefined>;
  getBuildInfo(contractName: string): Promise<unknown>;
};
const resolver = HardhatArtifactResolver.prototype as unknown as Resolver;
const parseEveryTime = resolver.getBuildInfo;
const parsed = new Map<string, Promise<unknown>>();

resolver.getBuildInfo = async function (this: Resolver, contractName: string) {
  // Fully qualified names go through Hardhat's own artifact manager, as before.
  const artifactPath = contractName.includes(":") ? undefined : await this._resolvePath(contractName);
  if (artifactPath === undefined) return parseEveryTime.call(this, contractName);
  const debugFile = JSON.parse(await fs.promises.readFile(artifactPath.replace(/\.json$/, ".dbg.json"), "utf8"));
  const buildInfoPath = path.join(path.dirname(artifactPath), debugFile.buildInfo);
  let buildInfo = parsed.get(buildInfoPath);
  if (buildInfo === undefined) {
    buildInfo = fs.promises.readFile(buildInfoPath, "utf8").then((text) => JSON.parse(text));
    parsed.set(buildInfoPath, buildInfo);
  }
  return buildInfo;
};
