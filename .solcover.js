// solidity-coverage: the protocol is compiled with viaIR, so coverage needs the Yul optimizer.
module.exports = {
  skipFiles: ["mocks/", "interfaces/", "utils/ProxyImports.sol"],
  configureYulOptimizer: true,
  irMinimum: true,
  istanbulReporter: ["text", "lcov", "json-summary"],
};
