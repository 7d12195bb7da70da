// `MonotonicInstant` and its Duration helpers were EdgeAgent's own before they moved down to
// EdgeRuntime (shared with Drivers and Protocols); clients of EdgeAgent still get them.
@_exported public import EdgeRuntime
