extension Dictionary {
    /// Calls `body` on every value in place, in the dictionary's order.
    ///
    /// `for key in d.keys { d[key]!.mutate() }` hashes every key and, because the `keys` view
    /// keeps the storage alive while the loop mutates it, copies the whole dictionary on each
    /// pass; this walks the storage by index instead: no hashing, no copy, no allocation.
    /// `body` must not add or remove entries of this dictionary.
    mutating func mutateValues(_ body: (inout Value) throws -> Void) rethrows {
        var i = values.startIndex
        while i != values.endIndex {
            try body(&values[i])
            values.formIndex(after: &i)
        }
    }
}
