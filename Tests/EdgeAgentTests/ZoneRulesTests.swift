import Foundation
import Testing
import TestSupport
@testable import EdgeAgent

/// `ZoneRules` (the TZif reader) against Python's `zoneinfo`, which Python runs at test time on
/// the same files: UTC offsets and wall times at every transition of 2020-2035 (and one second
/// either side) and hourly, and local-to-UTC for wall times in and around every gap and overlap
/// (the documented rule: `zoneinfo`'s `fold=0`).
@Suite struct ZoneRulesTests {
    /// Both hemispheres, half- and quarter-hour offsets, 30-minute DST, negative DST (Dublin),
    /// rule times past 24 h (Jerusalem, Santiago) and below 0 (Nuuk), Ramadan (Casablanca).
    static let zones = [
        "Europe/Paris", "Europe/London", "America/New_York", "America/Sao_Paulo", "Australia/Sydney", "Australia/Lord_Howe",
        "Pacific/Auckland", "Asia/Kolkata", "Asia/Kathmandu", "Africa/Casablanca", "America/St_Johns", "Pacific/Chatham", "UTC",
        "Europe/Dublin", "America/Nuuk", "Asia/Jerusalem", "America/Santiago",
    ]

    /// Footers that exercise every form of the POSIX TZ string, as zone files with no
    /// transition (the footer alone decides): name=footer.
    static let footers = [
        "Paris=CET-1CEST,M3.5.0/2,M10.5.0/3", "LordHowe=<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
        "Jerusalem=IST-2IDT,M3.4.4/26,M10.5.0", "Nuuk=<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "Santiago=<-04>4<-03>,M9.1.6/24,M4.1.6/24",
        "Dublin=IST-1GMT0,M10.5.0,M3.5.0/1", "Julian=AAA3BBB,J60/2,J300/2",
        "Seconds=EEE5FFF,M3.2.0/2:30:15,M11.1.0/1:59:59", "Chatham=<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45",
        "Sydney=AEST-10AEDT,M10.1.0,M4.1.0/3", "Kathmandu=<+0545>-5:45", "DefaultHour=GGG-3HHH-4:30,M4.1.0,M10.1.0",
        "LastWeek=XXX+4YYY,M2.5.3/23,M11.5.6/1",
    ]

    static let script = #"""
    import sys, os, struct, zoneinfo
    from datetime import datetime, timezone, timedelta

    def load(path, key):
        with open(path, 'rb') as f:
            return zoneinfo.ZoneInfo.from_file(f, key=key)

    def compare(directory, y0, y1, names):
        start = int(datetime(y0, 1, 1, tzinfo=timezone.utc).timestamp())
        end = int(datetime(y1, 1, 1, tzinfo=timezone.utc).timestamp())
        out = []
        for name in names:
            z = load(os.path.join(directory, name), name)
            off = lambda t: int(datetime.fromtimestamp(t, z).utcoffset().total_seconds())
            def wall(t):
                d = datetime.fromtimestamp(t, z)
                out.append('W %d %d %d %d %d %d %d %d' % (t, off(t), d.year, d.month, d.day, d.hour, d.minute, d.second))
            def local(w):
                n = datetime(1970, 1, 1) + timedelta(seconds=w)
                d = datetime(n.year, n.month, n.day, n.hour, n.minute, n.second, tzinfo=z)
                out.append('L %d %d %d %d %d %d %d' % (n.year, n.month, n.day, n.hour, n.minute, n.second, int(d.timestamp())))
            out.append('Z %s %d %d %d' % (name, start, end, off(start)))
            transitions = []
            t, o = start, off(start)
            while t < end:
                n = min(t + 12 * 3600, end)
                on = off(n)
                if on != o:
                    lo, hi = t, n
                    while hi - lo > 1:
                        mid = (lo + hi) // 2
                        if off(mid) == o: lo = mid
                        else: hi = mid
                    transitions.append((hi, o, on))
                    out.append('T %d %d %d' % (hi, o, on))
                t, o = n, on
            for s, a, b in transitions:
                for k in (-1, 0, 1):
                    wall(s + k)
                for w in sorted({s + a - 1, s + a, s + a + 1, s + b - 1, s + b, s + b + 1, s + min(a, b) + abs(a - b) // 2}):
                    local(w)
            for t in range(start, end, 37 * 3600):
                wall(t)
                local(t)
        print('\n'.join(out))

    def counts(data, at):
        return list(struct.unpack('>6l', data[at + 20:at + 44]))

    def v1length(c):
        isut, isstd, leap, timecnt, typecnt, charcnt = c
        return 44 + timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut

    def write(path, data):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(data)

    def cut(src, dst, cutoff, names):
        # The version 2 data keeps the transitions before cutoff (the footer rules after) and gains
        # two leap-second records (to be skipped); the version 1 data is left whole.
        for name in names:
            data = open(os.path.join(src, name), 'rb').read()
            v2 = v1length(counts(data, 0))
            isut, isstd, leap, timecnt, typecnt, charcnt = counts(data, v2)
            p = v2 + 44
            times = struct.unpack('>%dq' % timecnt, data[p:p + 8 * timecnt]); p += 8 * timecnt
            types = data[p:p + timecnt]; p += timecnt
            table = data[p:p + typecnt * 6 + charcnt]; p += typecnt * 6 + charcnt
            p += leap * 12
            indicators = data[p:p + isstd + isut]; p += isstd + isut
            keep = sum(1 for t in times if t < cutoff)
            leaps = struct.pack('>qlql', 78796800, 1, 94694401, 2)
            header = data[v2:v2 + 20] + struct.pack('>6l', isut, isstd, 2, keep, typecnt, charcnt)
            body = struct.pack('>%dq' % keep, *times[:keep]) + types[:keep] + table + leaps + indicators
            write(os.path.join(dst, name), data[:v2] + header + body + data[p:])

    def v1(src, dst, names):
        for name in names:
            data = open(os.path.join(src, name), 'rb').read()
            write(os.path.join(dst, name), data[:4] + b'\0' + data[5:v1length(counts(data, 0))])

    def synth(dst, pairs):
        for pair in pairs:
            name, footer = pair.split('=', 1)
            block = struct.pack('>6l', 0, 0, 0, 0, 1, 4) + struct.pack('>lBB', 0, 0, 0) + b'XXX\0'
            data = b'TZif2' + bytes(15) + block + b'TZif2' + bytes(15) + block + b'\n' + footer.encode() + b'\n'
            write(os.path.join(dst, 'Synthetic', name), data)

    mode = sys.argv[1]
    if mode == 'compare':
        compare(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])
    elif mode == 'cut':
        cut(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:])
    elif mode == 'v1':
        v1(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif mode == 'synth':
        synth(sys.argv[2], sys.argv[3:])
    """#

    /// Runs python3 (from PATH, through env so pyenv shims count) with the script.
    static func python(_ args: [String]) throws -> String {
        let r = try runCommand("/usr/bin/env", ["python3", "-c", script] + args, timeout: .seconds(300))
        try #require(r.status != 127, "python3 not found on PATH (scripts/setup.sh installs it)")
        try #require(r.status == 0, "python3 failed (status \(r.status); zoneinfo needs Python >= 3.9):\n\(r.stdout.suffix(2000))\(r.stderr.suffix(4000))")
        return r.stdout
    }

    /// What Python said about one zone, and how many checks agreed.
    struct Mismatches {
        var count = 0
        var first: [String] = []
        mutating func record(_ line: String) {
            count += 1
            if first.count < 8 { first.append(line) }
        }
    }

    /// Python's answers for `names` in `directory` over [y0, y1), checked against ours.
    static func compareWithPython(directory: String, names: [String], from y0: Int = 2020, to y1: Int = 2036) throws {
        let out = try python(["compare", directory, "\(y0)", "\(y1)"] + names)
        var zone: ZoneRules?
        var transitions: [(at: Int64, before: Int, after: Int)] = []
        var range: (start: Int64, end: Int64, offset: Int) = (0, 0, 0)
        var mismatches = Mismatches()
        var checks = (transitions: 0, hours: 0, walls: 0, locals: 0)

        func checkHourly() {
            guard let zone else { return }
            // Python's offsets are piecewise constant between the transitions it found.
            var expected = range.offset
            var next = 0
            var t = range.start
            while t < range.end {
                while next < transitions.count, transitions[next].at <= t {
                    expected = transitions[next].after
                    next += 1
                }
                if zone.offset(at: t) != expected { mismatches.record("\(zone.name) at \(t): offset \(zone.offset(at: t)), python \(expected)") }
                checks.hours += 1
                t += 3600
            }
            for tr in transitions {
                checks.transitions += 1
                if zone.offset(at: tr.at - 1) != tr.before || zone.offset(at: tr.at) != tr.after {
                    mismatches.record("\(zone.name) transition at \(tr.at): ours \(zone.offset(at: tr.at - 1)) -> \(zone.offset(at: tr.at)), python \(tr.before) -> \(tr.after)")
                }
            }
        }

        for line in out.split(separator: "\n") {
            let f = line.split(separator: " ")
            switch f[0] {
            case "Z":
                checkHourly()
                zone = try ZoneRules.load(String(f[1]), directory: directory)
                transitions = []
                range = (Int64(f[2])!, Int64(f[3])!, Int(f[4])!)
            case "T":
                transitions.append((Int64(f[1])!, Int(f[2])!, Int(f[3])!))
            case "W":
                let n = f[1...].map { Int64($0)! }
                let local = try #require(zone).localTime(at: n[0])
                let ours = [Int64(local.period.offset), Int64(local.year), Int64(local.month), Int64(local.day), Int64(local.hour), Int64(local.minute), Int64(local.second)]
                if ours != Array(n[1...]) { mismatches.record("\(zone!.name) wall at \(n[0]): ours \(ours), python \(Array(n[1...]))") }
                checks.walls += 1
            case "L":
                let n = f[1...].map { Int($0)! }
                let ours = try #require(zone).utc(year: n[0], month: n[1], day: n[2], hour: n[3], minute: n[4], second: n[5])
                if ours != Int64(n[6]) { mismatches.record("\(zone!.name) local \(n[0...5]): ours \(ours), python \(n[6])") }
                checks.locals += 1
            default:
                Issue.record("unexpected line from python: \(line)")
            }
        }
        checkHourly()
        #expect(mismatches.count == 0, "\(mismatches.count) differences from Python's zoneinfo, first: \(mismatches.first.joined(separator: "\n"))")
        // Every zone answered, and each kind of check ran (UTC alone has no transition).
        #expect(checks.hours >= names.count * (y1 - y0) * 8760)
        #expect(checks.walls > names.count * 100 && checks.locals > names.count * 100)
        #expect(checks.transitions >= 2 * (y1 - y0), "only \(checks.transitions) transitions")
    }

    @Test func systemZoneFilesMatchPythonFrom2020To2035() throws {
        try Self.compareWithPython(directory: "/usr/share/zoneinfo", names: Self.zones)
    }

    /// Transitions cut at 2000 (and two leap-second records added): the footer's rule makes
    /// 2018-2035 (and all years since 2000), read the same by both.
    @Test func footerRulesMatchPythonPastTheLastTransition() throws {
        let scratch = ScratchDir("zone-cut")
        _ = try Self.python(["cut", "/usr/share/zoneinfo", scratch.path, "946684800"] + Self.zones)
        try Self.compareWithPython(directory: scratch.path, names: Self.zones, from: 2018, to: 2036)
        // The cut files really leave 2000 onwards to the footer.
        let paris = try ZoneRules.load("Europe/Paris", directory: scratch.path)
        #expect(paris.transitions.last! < 946_684_800 && paris.rule != nil)
    }

    /// The same zones as version 1 files (32-bit data, no footer).
    @Test func versionOneFilesMatchPython() throws {
        let scratch = ScratchDir("zone-v1")
        _ = try Self.python(["v1", "/usr/share/zoneinfo", scratch.path] + Self.zones)
        try Self.compareWithPython(directory: scratch.path, names: Self.zones, from: 2020, to: 2037)
        #expect(try ZoneRules.load("Europe/Paris", directory: scratch.path).rule == nil)
    }

    /// Footers alone (no transition), every form of the TZ string.
    @Test func footersAloneMatchPython() throws {
        let scratch = ScratchDir("zone-footer")
        _ = try Self.python(["synth", scratch.path] + Self.footers)
        let names = Self.footers.map { "Synthetic/" + $0.prefix { $0 != "=" } }
        try Self.compareWithPython(directory: scratch.path, names: names.filter { $0 != "Synthetic/Kathmandu" }, from: 2020, to: 2030)
        let fixed = try ZoneRules.load("Synthetic/Kathmandu", directory: scratch.path)
        #expect(fixed.offset(at: 0) == 20_700 && fixed.offset(at: 2_000_000_000) == 20_700)
    }

    /// The zero-based day form `n` (February 29 counted): day 59 is February 29 in a leap year,
    /// March 1 otherwise. Checked against glibc (`TZ=... date`), not Python: CPython 3.11's
    /// `zoneinfo` reads this form one day early (it switches on February 28 in both years).
    @Test func zeroBasedDaysCountFebruary29AsGlibcDoes() throws {
        let rule = try #require(ZoneRules.PosixRule("CCC-2DDD,59/2,299/2"))
        let zone = ZoneRules(name: "ZeroBased", transitions: [], periods: [], initial: rule.standard, rule: rule)
        // (UTC instant, glibc's offset): 2020-02-28 12:00, 2020-02-29 00:30, 2021-02-28 12:00, 2021-03-01 12:00 UTC.
        for (t, offset) in [(1_582_891_200, 7200), (1_582_936_200, 10_800), (1_614_513_600, 7200), (1_614_600_000, 10_800)] as [(Int64, Int)] {
            #expect(zone.offset(at: t) == offset, "at \(t)")
        }
        // 2020-02-29 02:00 CCC (00:00 UTC) is the switch; day 299 of 2020 is October 26.
        #expect(zone.offset(at: 1_582_934_399) == 7200 && zone.offset(at: 1_582_934_400) == 10_800)
        #expect(zone.localTime(at: zone.utc(year: 2020, month: 10, day: 26, hour: 1, minute: 59)).period.isDST)
        #expect(!zone.localTime(at: zone.utc(year: 2020, month: 10, day: 26, hour: 3)).period.isDST)
    }

    // MARK: - The documented rules, by example

    static func paris() throws -> ZoneRules { try ZoneRules.load("Europe/Paris") }

    @Test func gapShiftsForwardAndOverlapTakesTheFirstOccurrence() throws {
        let paris = try Self.paris()
        // 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC). 02:30 does not exist: 03:30 CEST = 01:30 UTC.
        #expect(paris.utc(year: 2026, month: 3, day: 29, hour: 2, minute: 30) == 1_774_747_800)
        #expect(paris.utc(year: 2026, month: 3, day: 29, hour: 1, minute: 59, second: 59) == 1_774_745_999)
        #expect(paris.utc(year: 2026, month: 3, day: 29, hour: 3) == 1_774_746_000)
        // 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC). 02:30 happens twice: the first, 00:30 UTC.
        #expect(paris.utc(year: 2026, month: 10, day: 25, hour: 2, minute: 30) == 1_792_888_200)
        #expect(paris.utc(year: 2026, month: 10, day: 25, hour: 3) == 1_792_893_600)
        let before = paris.localTime(at: 1_792_889_999)
        let after = paris.localTime(at: 1_792_890_000)
        #expect((before.hour, before.minute, before.second, before.period.abbreviation, before.period.isDST) == (2, 59, 59, "CEST", true))
        #expect((after.hour, after.minute, after.second, after.period.abbreviation, after.period.isDST) == (2, 0, 0, "CET", false))
        // Lord Howe's half-hour DST: 2026-10-04 02:00 +1030 -> 02:30 +11; 02:15 lands at 02:45.
        let lordHowe = try ZoneRules.load("Australia/Lord_Howe")
        let t = lordHowe.utc(year: 2026, month: 10, day: 4, hour: 2, minute: 15)
        let l = lordHowe.localTime(at: t)
        #expect((l.hour, l.minute, l.period.offset) == (2, 45, 39_600))
        // Fields that run over: hour 24 is the next day's midnight.
        #expect(paris.utc(year: 2026, month: 6, day: 21, hour: 24) == paris.utc(year: 2026, month: 6, day: 22))
    }

    @Test func daylightTimeAllYearFromTheFooter() throws {
        // Version 3's "J365/25": DST from Jan 1 00:00 to Dec 31 25:00, i.e. all year, no gap at New Year.
        let rule = try #require(ZoneRules.PosixRule("EST5EDT,0/0,J365/25"))
        let zone = ZoneRules(name: "AllYear", transitions: [], periods: [], initial: rule.standard, rule: rule)
        for t in stride(from: Int64(1_767_225_600 - 86_400), to: 1_767_225_600 + 86_400 * 400, by: 1800) {
            if zone.offset(at: t) != -14_400 {
                Issue.record("not EDT at \(t)")
                break
            }
        }
        #expect(zone.utc(year: 2026, month: 1, day: 1) == 1_767_240_000)
    }

    @Test func posixStringsOutsideTheGrammarAreRefused() {
        for bad in ["", "C", "CET", "CET-1CEST,M3.5.0", "CET-1CEST,M13.5.0,M10.5.0", "CET-1CEST,M3.6.0,M10.5.0", "CET-1CEST,M3.5.7,M10.5.0",
                    "CET-1CEST,J0,J365", "CET-1CEST,366,0", "CET-1CEST,M3.5.0/168,M10.5.0", "CET-25", "CET-1:60", "<AB>1", "<+01-1",
                    "CET-1CEST,M3.5.0,M10.5.0,", "CET-1CEST,M3.5.0,M10.5.0x"] {
            #expect(ZoneRules.PosixRule(bad) == nil, "\(bad)")
        }
        #expect(ZoneRules.PosixRule("CET-1CEST,M3.5.0/-167,M10.5.0/167") != nil)
        // DST without a rule: the US rule, as glibc.
        #expect(ZoneRules.PosixRule("EST5EDT")?.daylight?.start == .monthWeekDay(month: 3, week: 2, weekday: 0))
    }

    // MARK: - Names and files

    @Test func namesThatAreNotIANANamesAreRefused() {
        for bad in ["", "/etc/passwd", "../etc/passwd", "Europe/../../etc/passwd", "Europe/./Paris", "Europe//Paris", "Europe/", ".",
                    "Europe/Paris\0", "Europe/Paris ", "Europe\\Paris", String(repeating: "a", count: 256)] {
            #expect(throws: ZoneError.self, "\(bad.debugDescription)") { _ = try ZoneRules.load(bad) }
            #expect((try? ZoneRules.load(bad)) == nil)
        }
        #expect(throws: ZoneError("time zone \"../x\" is not an IANA name such as Europe/Paris (letters, digits, \"_+-.\", components separated by \"/\"; no \"..\", no absolute path)")) {
            _ = try ZoneRules.load("../x")
        }
        for good in ["Etc/GMT+5", "Etc/GMT-14", "America/Port-au-Prince", "America/Argentina/Buenos_Aires", "UTC"] {
            #expect((try? ZoneRules.load(good)) != nil, "\(good)")
        }
    }

    @Test func aMissingZoneNamesTheFileItLookedFor() {
        let scratch = ScratchDir("zone-missing")
        #expect(throws: ZoneError("unknown time zone \"Europe/Pariss\" (no zone file \(scratch.path)/Europe/Pariss; use an IANA name such as Europe/Paris)")) {
            _ = try ZoneRules.load("Europe/Pariss", directory: scratch.path)
        }
        #expect(throws: ZoneError("time zone \"Europe\": /usr/share/zoneinfo/Europe is a directory, not a zone file")) {
            _ = try ZoneRules.load("Europe")
        }
        let junk = scratch.write("Junk", "not a zone\n")
        #expect(throws: ZoneError("time zone \"Junk\": \(junk) is not a valid TZif file (RFC 8536): truncated header (11 bytes, a header is 44)")) {
            _ = try ZoneRules.load("Junk", directory: scratch.path)
        }
    }

    /// Every prefix of a real file, and single-byte corruptions all over it: a zone or an
    /// error, never a crash.
    @Test func damagedFilesAreRefusedNotCrashed() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "/usr/share/zoneinfo/Australia/Lord_Howe")))
        _ = try ZoneRules(name: "Australia/Lord_Howe", tzif: bytes)
        var refused = 0
        for n in 0..<bytes.count where (try? ZoneRules(name: "cut", tzif: Array(bytes[..<n]))) == nil {
            refused += 1
        }
        #expect(refused == bytes.count, "every truncated copy refused")
        for position in 0..<bytes.count {
            for value: UInt8 in [0x00, 0x7f, 0xff] {
                var damaged = bytes
                damaged[position] = value
                if let zone = try? ZoneRules(name: "damaged", tzif: damaged) {
                    _ = zone.localTime(at: 1_800_000_000)
                    _ = zone.utc(year: 2027, month: 4, day: 4, hour: 2, minute: 30)
                }
            }
        }
        let errors = [
            (Array("TZjf".utf8) + bytes[4...], "no \"TZif\" magic"),
            (Array(bytes[..<4]) + [0x31] + bytes[5...], "unknown version byte 49"),
        ]
        for (damaged, reason) in errors {
            #expect(throws: TZifError(reason)) { _ = try ZoneRules(name: "x", tzif: damaged) }
        }
    }

    /// The schedule's zone, as the agent loads it: Europe/Paris around its 2026 switches.
    @Test func parisAroundItsSwitches() throws {
        let paris = try Self.paris()
        let springUTC: Int64 = 1_774_746_000  // 2026-03-29 01:00 UTC
        #expect(paris.offset(at: springUTC - 1) == 3600 && paris.offset(at: springUTC) == 7200)
        let autumnUTC: Int64 = 1_792_890_000  // 2026-10-25 01:00 UTC
        #expect(paris.offset(at: autumnUTC - 1) == 7200 && paris.offset(at: autumnUTC) == 3600)
        // In 2040, past the file's last transition (2037), the footer's rule.
        let spring2040 = paris.utc(year: 2040, month: 3, day: 25, hour: 3)
        #expect(spring2040 == 2_216_250_000 && paris.offset(at: spring2040 - 1) == 3600 && paris.offset(at: spring2040) == 7200)
    }
}
