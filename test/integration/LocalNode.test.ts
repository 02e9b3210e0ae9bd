// The operator path end to end on a real, independent node: anvil as a child process, Ignition
// deployments and tasks run as `npx hardhat … --network localhost`, and the chain read back with a
// plain ethers JsonRpcProvider (not the Hardhat runtime).
import { expect } from "chai";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { HDNodeWallet, JsonRpcProvider, dataSlice, getAddress } from "ethers";
import { AgentRegistry__factory, EvaluatorStaking__factory, TaskEscrow__factory } from "../../typechain-types";

const ROOT = path.resolve(__dirname, "../..");
const CHAIN_ID = 31338; // not 31337: a node of its own, never mistaken for the in-process network
const DEPLOYMENTS_DIR = path.join(ROOT, "ignition", "deployments");
const DEPLOYMENT_DIR = path.join(DEPLOYMENTS_DIR, `chain-${CHAIN_ID}`);
const ADDRESSES_FILE = path.join(DEPLOYMENT_DIR, "deployed_addresses.json");

/** anvil's default accounts: the same mnemonic as Hardhat's. */
const MNEMONIC = "test test test test test test test test test test test junk";
const account = (index: number) => HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`).address;
const ACCOUNT_0 = account(0);
const STRANGER = account(5);

/** ERC-1967: bytes32(uint256(keccak256("eip1967.proxy.implementation")) - 1). */
const IMPLEMENTATION_SLOT = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc";

const COMMAND_TIMEOUT_MS = 60_000;
const NODE_START_TRIES = 100; // × 200 ms: at most about 20 s
const NODE_START_INTERVAL_MS = 200;

interface RunResult {
  command: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A port nobody listens on right now. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The anvil binary itself (so that killing it kills the node), else the npm launcher. */
function anvilBinary(): string {
  const arch = process.arch === "x64" ? "amd64" : process.arch;
  const exe = process.platform === "win32" ? "anvil.exe" : "anvil";
  const native = path.join(ROOT, "node_modules", "@foundry-rs", `anvil-${process.platform}-${arch}`, "bin", exe);
  return fs.existsSync(native) ? native : path.join(ROOT, "node_modules", ".bin", "anvil");
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Everything a failed command printed, for the assertion message. */
function report(r: RunResult): string {
  return `\n$ ${r.command}\n(exit code ${r.code})\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** The JSON a `--json` task printed (whatever noise comes before it). */
function parseJson<T = Record<string, unknown>>(r: RunResult): T {
  expect(r.code, `command failed:${report(r)}`).to.equal(0);
  const start = r.stdout.indexOf("{");
  expect(start, `no JSON in the output:${report(r)}`).to.be.at.least(0);
  try {
    return JSON.parse(r.stdout.slice(start)) as T;
  } catch (err) {
    throw new Error(`unparsable JSON (${(err as Error).message}):${report(r)}`);
  }
}

describe("Local node (anvil): deploy and operate through the CLI @local-node", function () {
  this.timeout(180_000);

  let anvil: ChildProcess | undefined;
  let anvilOutput = "";
  let rpcUrl = "";
  let provider: JsonRpcProvider | undefined;
  let deploymentsDirExisted = false;

  function killAnvil(): void {
    if (anvil && anvil.exitCode === null && anvil.signalCode === null) anvil.kill("SIGKILL");
  }

  /** `npx hardhat …args` in the project, against the anvil node; never throws, never hangs. */
  function hardhat(...args: string[]): Promise<RunResult> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      LOCALHOST_RPC_URL: rpcUrl,
      // Ignition asks "Confirm deploy to network localhost (31338)?" on any chain but 31337, and a
      // declined (or closed) prompt prints "Deploy cancelled" and exits 0. This skips the prompt.
      HARDHAT_IGNITION_CONFIRM_DEPLOYMENT: "true",
      FORCE_COLOR: "0",
      NO_COLOR: "1",
    };
    delete env.HARDHAT_NETWORK;
    const command = `npx hardhat ${args.join(" ")}`;
    return new Promise((resolve) => {
      const child = execFile(
        "npx",
        ["hardhat", ...args],
        { cwd: ROOT, env, timeout: COMMAND_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) => {
          let code: number | null = 0;
          if (err) code = typeof err.code === "number" ? err.code : null;
          if (err?.killed) stderr += `\n(killed after ${COMMAND_TIMEOUT_MS / 1000} s)`;
          resolve({ command, code, stdout, stderr });
        },
      );
      child.stdin?.end(); // any unexpected prompt reads EOF instead of waiting forever
    });
  }

  function deployed(): Record<string, string> {
    expect(fs.existsSync(ADDRESSES_FILE), `${ADDRESSES_FILE} is missing`).to.equal(true);
    return JSON.parse(fs.readFileSync(ADDRESSES_FILE, "utf8")) as Record<string, string>;
  }

  before(async function () {
    deploymentsDirExisted = fs.existsSync(DEPLOYMENTS_DIR);
    // A crashed earlier run may have left a journal for a node that no longer exists.
    fs.rmSync(DEPLOYMENT_DIR, { recursive: true, force: true });

    const port = await freePort();
    rpcUrl = `http://127.0.0.1:${port}`;
    const args = ["--host", "127.0.0.1", "--port", String(port), "--chain-id", String(CHAIN_ID), "--silent"];
    anvil = spawn(anvilBinary(), args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    process.once("exit", killAnvil);
    anvil.stdout?.on("data", (chunk) => (anvilOutput += chunk));
    anvil.stderr?.on("data", (chunk) => (anvilOutput += chunk));
    anvil.on("error", (err) => (anvilOutput += `\nspawn error: ${err.message}`));

    let answer: string | undefined;
    const deadline = Date.now() + NODE_START_TRIES * NODE_START_INTERVAL_MS;
    for (let i = 0; i < NODE_START_TRIES && answer === undefined && Date.now() < deadline; i++) {
      if (anvil.exitCode !== null || anvil.signalCode !== null) break;
      try {
        const response = await fetch(rpcUrl, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
          signal: AbortSignal.timeout(1_000),
        });
        answer = ((await response.json()) as { result?: string }).result;
      } catch {
        // not listening yet
      }
      if (answer === undefined) await sleep(NODE_START_INTERVAL_MS);
    }
    if (answer === undefined) {
      const exited = anvil.exitCode !== null || anvil.signalCode !== null;
      const why = exited
        ? `anvil exited (code ${anvil.exitCode}, signal ${anvil.signalCode}) before answering eth_chainId at ${rpcUrl}`
        : `anvil did not answer eth_chainId at ${rpcUrl} within ~${(NODE_START_TRIES * NODE_START_INTERVAL_MS) / 1000} s`;
      throw new Error(`${why}. Its output:\n${anvilOutput || "(none)"}`);
    }
    expect(Number(answer)).to.equal(CHAIN_ID);
    provider = new JsonRpcProvider(rpcUrl, CHAIN_ID, { staticNetwork: true });
  });

  after(async function () {
    provider?.destroy();
    if (anvil && anvil.exitCode === null && anvil.signalCode === null) {
      const exited = new Promise((resolve) => anvil!.once("exit", resolve));
      anvil.kill("SIGTERM");
      await Promise.race([exited, sleep(5_000)]);
      killAnvil(); // still there after 5 s: no more asking
    }
    process.removeListener("exit", killAnvil);
    fs.rmSync(DEPLOYMENT_DIR, { recursive: true, force: true });
    if (!deploymentsDirExisted && fs.existsSync(DEPLOYMENTS_DIR) && fs.readdirSync(DEPLOYMENTS_DIR).length === 0) {
      fs.rmdirSync(DEPLOYMENTS_DIR);
    }
  });

  it("anvil's first account is Hardhat's account 0", async function () {
    const accounts = (await provider!.send("eth_accounts", [])) as string[];
    expect(getAddress(accounts[0])).to.equal(ACCOUNT_0);
    expect(getAddress(accounts[5])).to.equal(STRANGER);
  });

  it("ignition deploy installs System, Mocks and the Market wiring without a prompt", async function () {
    for (const module of ["System", "Mocks", "Market"]) {
      const r = await hardhat("ignition", "deploy", `ignition/modules/${module}.ts`, "--network", "localhost");
      expect(r.code, `deploy of ${module} failed:${report(r)}`).to.equal(0);
      expect(r.stdout, `deploy of ${module} was cancelled:${report(r)}`).to.not.contain("Deploy cancelled");
      expect(r.stdout).to.contain(`[ ${module} ] successfully deployed`);
    }
    const addresses = deployed();
    for (const key of [
      "System#AgentRegistry",
      "System#AgentRegistryImpl",
      "System#Reputation",
      "System#ReputationImpl",
      "System#TaskEscrow",
      "System#TaskEscrowImpl",
      "Mocks#Arbitrator",
      "Mocks#USDT",
      "Mocks#USDG",
      "Mocks#OKB",
      "Mocks#VRFCoordinator",
      "Market#EvaluatorStaking",
      "Market#VRFSource",
    ]) {
      expect(addresses[key], key).to.match(/^0x[0-9a-fA-F]{40}$/);
      expect(await provider!.getCode(addresses[key]), `code at ${key}`).to.not.equal("0x");
    }
    // The Market module reused the System and Mocks deployments and wired them together.
    const escrow = TaskEscrow__factory.connect(addresses["System#TaskEscrow"], provider!);
    expect(await escrow.minBudget(addresses["Mocks#USDT"])).to.equal(1_000_000n);
    expect(await escrow.minBudget(addresses["Mocks#USDG"])).to.equal(1_000_000n);
    // The court is TaskEscrow's arbitrator, and its VRF adapter a consumer of the mock's subscription.
    expect((await escrow.config())[3]).to.equal(addresses["Market#EvaluatorStaking"]);
    const court = EvaluatorStaking__factory.connect(addresses["Market#EvaluatorStaking"], provider!);
    expect((await court.contracts())[2]).to.equal(addresses["Market#VRFSource"]);
  });

  it("agent:register --json registers agent #1, owned by account 0", async function () {
    const data = parseJson(
      await hardhat("agent:register", "--uri", "ipfs://local-node", "--network", "localhost", "--json"),
    );
    expect(data.agentId).to.equal("1");
    expect(data.owner).to.equal(ACCOUNT_0);
    expect(data.uri).to.equal("ipfs://local-node");
  });

  it("agent:show --json shows the owner and the URI", async function () {
    const data = parseJson(await hardhat("agent:show", "--id", "1", "--network", "localhost", "--json"));
    expect(data.agentId).to.equal("1");
    expect(data.owner).to.equal(ACCOUNT_0);
    expect(data.wallet).to.equal(ACCOUNT_0);
    expect(data.uri).to.equal("ipfs://local-node");
    expect(data.paused).to.equal(false);
  });

  it("agent:update by a stranger exits non-zero with the plain sentence", async function () {
    const r = await hardhat(
      "agent:update",
      "--id",
      "1",
      "--uri",
      "ipfs://hijack",
      "--from",
      "5",
      "--network",
      "localhost",
    );
    expect(r.code, `agent:update by account 5 should fail:${report(r)}`).to.not.equal(0);
    const sentence = `Refused: ${STRANGER} may not manage agent #1; only its owner, or an address the owner approved, may.`;
    expect(r.stdout + r.stderr, `the plain sentence is missing:${report(r)}`).to.contain(sentence);
  });

  it("reputation:show --json reads the record, with the Mocks tokens of chain 31338", async function () {
    const data = parseJson<{ agentId: string; scoreBps: string; volumes: { token: string; address: string }[] }>(
      await hardhat("reputation:show", "--id", "1", "--network", "localhost", "--json"),
    );
    expect(data.agentId).to.equal("1");
    expect(Number(data.scoreBps)).to.be.within(0, 10_000);
    const addresses = deployed();
    expect(data.volumes.map((v) => [v.token, v.address])).to.deep.equal([
      ["USDT", addresses["Mocks#USDT"]],
      ["USDG", addresses["Mocks#USDG"]],
    ]);
  });

  it("the chain agrees: registry proxy, owner, unchanged URI and ERC-1967 implementation", async function () {
    const addresses = deployed();
    const registry = AgentRegistry__factory.connect(addresses["System#AgentRegistry"], provider!);
    expect(await registry.name()).to.equal("AgentIdentity");
    expect(await registry.ownerOf(1n)).to.equal(ACCOUNT_0);
    expect(await registry.tokenURI(1n)).to.equal("ipfs://local-node"); // the stranger changed nothing

    const implementation = async (proxy: string) =>
      getAddress(dataSlice(await provider!.getStorage(proxy, IMPLEMENTATION_SLOT), 12));
    expect(await implementation(addresses["System#AgentRegistry"])).to.equal(addresses["System#AgentRegistryImpl"]);
    expect(await implementation(addresses["System#Reputation"])).to.equal(addresses["System#ReputationImpl"]);
  });
});
