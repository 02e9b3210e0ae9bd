// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

// Makes Hardhat build the ERC1967Proxy artifact that the Ignition modules deploy.
// solhint-disable-next-line no-unused-import
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
