// Hardhat tasks, one file per area.
