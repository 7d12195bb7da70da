// GPIO edges and bus readings are stamped with EdgeRuntime's `MonotonicInstant`; clients of
// Drivers get the type with it.
@_exported public import EdgeRuntime
