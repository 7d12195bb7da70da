// Protocols module.
