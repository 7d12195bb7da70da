/// "Did you mean" for misspelt keys and names.
package enum Suggest {
    /// The closest candidate when it is plausibly a typo of `word`.
    package static func hint(_ word: String, among candidates: some Sequence<String>) -> String? {
        var best: (String, Int)?
        let w = word.lowercased()
        for c in candidates {
            let lc = c.lowercased()
            var d = distance(w, lc)
            if d > 0, w.count >= 4, lc.hasPrefix(w) || w.hasPrefix(lc) { d = min(d, 2) }
            let limit = max(1, min(3, c.count / 3))
            if d <= limit, best == nil || d < best!.1 { best = (c, d) }
        }
        return best?.0
    }

    /// " (did you mean "x"?)" or "".
    package static func suffix(_ word: String, among candidates: some Sequence<String>) -> String {
        hint(word, among: candidates).map { " (did you mean \"\($0)\"?)" } ?? ""
    }

    /// Edit distance counting insertions, deletions, substitutions and swaps of two
    /// neighbouring characters (optimal string alignment): "hodl" is 1 from "hold".
    package static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = Swift.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = Swift.min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }
}
