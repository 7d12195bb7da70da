// Simulator module.
