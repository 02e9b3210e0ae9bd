// Hardhat tasks, one file per area.
import "./protocol";
import "./agent";
import "./reputation";
import "./task";
import "./ppu";
import "./court";
import "./demo";
