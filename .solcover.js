// solidity-coverage: the protocol is compiled with viaIR, so coverage needs the Yul optimizer.
module.exports = {
  skipFiles: ["mocks/", "interfaces/", "utils/ProxyImports.sol"],
  configureYulOptimizer: true,
  irMinimum: true,
  istanbulReporter: ["text", "lcov", "json-summary"],
  // The local-node test runs `hardhat` in child processes, which would recompile over the
  // instrumented artifacts; it covers deployment, not contract lines.
  mocha: { grep: "@local-node", invert: true },
};
