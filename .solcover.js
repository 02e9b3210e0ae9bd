// solidity-coverage: the protocol is compiled with viaIR, so coverage needs the Yul optimizer.
module.exports = {
  skipFiles: ["mocks/", "interfaces/", "utils/ProxyImports.sol"],
  configureYulOptimizer: true,
  irMinimum: true,
  istanbulReporter: ["text", "lcov", "json-summary"],
  // Left out: the local-node test (tagged `@local-node`), which runs `hardhat` in child processes
  // that would recompile over the instrumented artifacts; and the CLI suites (tagged `@cli`), which
  // drive the contracts through the Hardhat tasks: they test the tasks, and the contract paths they
  // take are the unit tests' own. Both run in `npm test`.
  mocha: { grep: /@local-node|@cli/, invert: true },
};
