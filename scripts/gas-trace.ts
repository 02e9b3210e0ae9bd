/**
 * Where the gas of one transaction goes, call frame by call frame: a tree built from the
 * in-process network's `debug_traceTransaction` (struct logs), with each frame's inclusive gas,
 * its own gas (what it spent outside the frames it called) and its storage reads and writes,
 * logs and calls. `npm run bench:trace` prints it for the benchmark's steady-state operations
 * and writes audits/gas-trace.md; audits/gas-floors.md builds on those figures.
 *
 * Gas is gross: storage refunds are taken off the receipt at the end of the transaction, so
 * `intrinsic + sum of own gas - refund = receipt gas`; `refund` is what makes up the difference.
 */
import { ethers, network } from "hardhat";
import type { Interface } from "ethers";

interface StructLog {
  op: string;
  gas: number;
  gasCost: number;
  depth: number;
  stack?: string[];
  memory?: string[];
}

/** One call frame. `own` excludes the frames it called; `inclusive` includes them. */
export interface Frame {
  label: string;
  inclusive: number;
  own: number;
  /** Opcode groups of this frame: count and gas (SLOAD, SSTORE, LOG, CALL, ...). */
  ops: Record<string, { count: number; gas: number }>;
  children: Frame[];
}

export interface Trace {
  root: Frame;
  receiptGas: number;
  /** 21,000 plus the calldata (4 gas a zero byte, 16 a non-zero byte). */
  intrinsic: number;
  /** Storage refunds: intrinsic + all own gas - receipt gas. */
  refund: number;
}

/** Names contracts (and, through their interface, function selectors) for the labels. */
export class GasTracer {
  private readonly names = new Map<string, string>();
  private readonly selectors = new Map<string, string>();

  name(address: string, label: string, iface?: Interface) {
    this.names.set(address.toLowerCase(), label);
    iface?.forEachFunction((f) => this.selectors.set(f.selector, f.name));
  }

  /** Names a UUPS proxy "<label> proxy" and its current implementation "<label>". */
  async nameProxy(address: string, label: string, iface: Interface) {
    const slot = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"; // ERC-1967
    const implementation = ethers.dataSlice(await ethers.provider.getStorage(address, slot), 12);
    this.name(address, `${label} proxy`, iface);
    this.name(implementation, label, iface);
  }

  async trace(hash: string): Promise<Trace> {
    const tx = (await ethers.provider.getTransaction(hash))!;
    const receipt = (await ethers.provider.getTransactionReceipt(hash))!;
    const { structLogs: logs } = (await network.provider.send("debug_traceTransaction", [
      hash,
      { disableStorage: true },
    ])) as { structLogs: StructLog[] };
    const root = this.frame(tx.to!, tx.data);
    const frames = [root];
    for (let i = 0; i < logs.length; i++) {
      const step = logs[i];
      const next = logs[i + 1];
      const frame = frames[frames.length - 1];
      let cost: number;
      if (next && next.depth > step.depth) {
        // A call entered a frame: the child's gas is its own, the rest is the call's.
        let after = i + 1;
        while (after < logs.length && logs[after].depth > step.depth) after++;
        let last = after - 1;
        while (logs[last].depth !== step.depth + 1) last--;
        const child = this.frame(address(step.stack!, 2), callData(step));
        child.inclusive = next.gas - (logs[last].gas - logs[last].gasCost);
        cost = step.gas - (after < logs.length ? logs[after].gas : 0) - child.inclusive;
        frame.children.push(child);
        frames.push(child);
      } else {
        cost = next && next.depth === step.depth ? step.gas - next.gas : step.gasCost;
        if (next && next.depth < step.depth) frames.pop();
      }
      frame.own += cost;
      const group = opGroup(step.op);
      const entry = (frame.ops[group] ??= { count: 0, gas: 0 });
      entry.count++;
      entry.gas += cost;
    }
    const intrinsic = 21_000 + [...ethers.getBytes(tx.data)].reduce((s, b) => s + (b === 0 ? 4 : 16), 0);
    root.inclusive = sumOwn(root);
    const receiptGas = Number(receipt.gasUsed);
    return { root, receiptGas, intrinsic, refund: intrinsic + root.inclusive - receiptGas };
  }

  private frame(to: string, data?: string): Frame {
    const name = this.names.get(to.toLowerCase()) ?? to;
    const selector = data && data.length >= 10 ? data.slice(0, 10) : undefined;
    const fn = selector ? (this.selectors.get(selector) ?? selector) : undefined;
    return { label: fn ? `${name}.${fn}` : name, inclusive: 0, own: 0, ops: {}, children: [] };
  }
}

/** Own gas of a frame and everything below it. */
export function sumOwn(f: Frame): number {
  return f.own + f.children.reduce((s, c) => s + sumOwn(c), 0);
}

const SHOWN = ["SSTORE", "SLOAD", "LOG", "CALL", "STATICCALL", "DELEGATECALL", "EXTCODESIZE", "KECCAK256"];

/** The tree as indented lines: label, inclusive and own gas, and the main opcode groups. */
export function formatTrace(t: Trace): string[] {
  const lines = [
    `receipt ${t.receiptGas} = intrinsic ${t.intrinsic} + execution ${t.root.inclusive} - refund ${t.refund}`,
  ];
  const walk = (f: Frame, indent: string) => {
    const ops = SHOWN.filter((k) => f.ops[k])
      .map((k) => `${k} ${f.ops[k].count}x ${f.ops[k].gas}`)
      .join(", ");
    lines.push(`${indent}${f.label}: ${f.inclusive} (own ${f.own}${ops ? `: ${ops}` : ""})`);
    for (const c of f.children) walk(c, `${indent}  `);
  };
  walk(t.root, "");
  return lines;
}

function opGroup(op: string) {
  return op.startsWith("LOG") ? "LOG" : op;
}

/** The address argument of a CALL-family opcode: the second stack item from the top. */
function address(stack: string[], fromTop: number) {
  return ethers.getAddress("0x" + ethers.toBeHex(word(stack[stack.length - fromTop]), 32).slice(-40));
}

function word(item: string) {
  return BigInt(item.startsWith("0x") ? item : `0x${item}`);
}

/** The first four bytes of a call's input, read from memory (none for a precompile or a bare call). */
function callData(step: StructLog): string | undefined {
  const stack = step.stack!;
  // CALL/CALLCODE: gas, to, value, argsOffset, argsLength; STATICCALL/DELEGATECALL: gas, to, argsOffset, argsLength.
  const withValue = step.op === "CALL" || step.op === "CALLCODE";
  const offset = Number(word(stack[stack.length - (withValue ? 4 : 3)]));
  const length = Number(word(stack[stack.length - (withValue ? 5 : 4)]));
  if (length < 4 || !step.memory) return undefined;
  const memory = step.memory.join("");
  return "0x" + memory.slice(offset * 2, offset * 2 + 8);
}
