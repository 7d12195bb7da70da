// EdgeAgent module.
