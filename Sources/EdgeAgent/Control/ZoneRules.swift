#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IANA time zone's rules (offsets from UTC and their changes), read from the system's
/// TZif file (RFC 8536) without ICU or Foundation: the gateway's `gateway.timezone` for the
/// lighting schedules.
///
/// Rules:
/// - A zone is loaded from `<directory>/<name>`; the directory is `$TZDIR` or
///   /usr/share/zoneinfo. A name is an IANA name: letters, digits, `_ + - .` in components
///   separated by `/`; never absolute, never an empty, `.` or `..` component.
/// - Version 1 files are read from their 32-bit data; version 2 and later from the 64-bit data
///   and the footer. Leap-second records are skipped (the `right/` zones are not for us).
/// - UTC to local: before the first transition, time type 0; from transition i, its type; on or
///   after the last transition (or everywhere when there is none) the footer's POSIX TZ rule
///   when there is one, else the last type (type 0 with no transition).
/// - Local to UTC (`utc(year:...)`), as Python's `zoneinfo` with `fold=0`: a wall time is read
///   with the offset in effect before the nearest transition. So a wall time skipped by a jump
///   forward (a gap) lands as far after the jump as it was after its start (Paris 02:30 on the
///   spring day is 03:30 CEST), and a wall time repeated by a jump back (an overlap) is its
///   first occurrence (Paris 02:30 on the autumn day is 02:30 CEST).
public struct ZoneRules: Sendable, Equatable {
    /// One local time type: offset east of UTC, daylight saving or not, abbreviation.
    public struct Period: Sendable, Equatable {
        public let offset: Int
        public let isDST: Bool
        public let abbreviation: String
    }

    /// A wall-clock time in the zone, with the period it belongs to.
    public struct LocalTime: Sendable, Equatable {
        public let year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int
        public let period: Period
    }

    /// The IANA name ("Europe/Paris").
    public let name: String
    /// Transition instants, seconds since 1970 UTC, strictly ascending; `periods[i]` from `transitions[i]`.
    let transitions: [Int64]
    let periods: [Period]
    /// Time type 0: before the first transition.
    let initial: Period
    /// The footer's rule: on and after the last transition.
    let rule: PosixRule?

    /// UTC itself, for when no zone file can be read.
    public static let utc = ZoneRules(name: "UTC", transitions: [], periods: [], initial: Period(offset: 0, isDST: false, abbreviation: "UTC"), rule: nil)

    /// Where zone files are: `$TZDIR` (as glibc) or /usr/share/zoneinfo.
    public static var defaultDirectory: String {
        if let dir = getenv("TZDIR"), dir.pointee != 0 { return String(cString: dir) }
        return "/usr/share/zoneinfo"
    }

    init(name: String, transitions: [Int64], periods: [Period], initial: Period, rule: PosixRule?) {
        self.name = name
        self.transitions = transitions
        self.periods = periods
        self.initial = initial
        self.rule = rule
    }

    // MARK: - Loading

    /// The zone `name` from `directory` (default `$TZDIR` or /usr/share/zoneinfo).
    public static func load(_ name: String, directory: String = defaultDirectory) throws(ZoneError) -> ZoneRules {
        try checkName(name)
        let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        let bytes = try readFile(path, zone: name)
        do {
            return try ZoneRules(name: name, tzif: bytes)
        } catch {
            throw ZoneError("time zone \"\(name)\": \(path) is not a valid TZif file (RFC 8536): \(error.reason)")
        }
    }

    /// Parses TZif bytes (RFC 8536).
    public init(name: String, tzif bytes: [UInt8]) throws(TZifError) {
        var reader = TZifReader(bytes: bytes)
        let v1 = try reader.header()
        if v1.version < 2 {
            let block = try reader.block(v1, timeSize: 4)
            self.init(name: name, block: block, rule: nil)
            return
        }
        try reader.skip(v1.blockLength(timeSize: 4), "the version 1 data")
        let v2 = try reader.header()
        let block = try reader.block(v2, timeSize: 8)
        let footer = try reader.footer()
        let rule: PosixRule?
        if footer.isEmpty {
            rule = nil
        } else {
            guard let parsed = PosixRule(footer) else { throw TZifError("bad footer TZ string \"\(footer)\"") }
            rule = parsed
        }
        self.init(name: name, block: block, rule: rule)
    }

    private init(name: String, block: TZifReader.Block, rule: PosixRule?) {
        self.init(name: name, transitions: block.transitions, periods: block.transitionTypes.map { block.types[Int($0)] },
                  initial: block.types[0], rule: rule)
    }

    static func checkName(_ name: String) throws(ZoneError) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-./".unicodeScalars)
        let components = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, name.utf8.count <= 255, name.unicodeScalars.allSatisfy({ allowed.contains($0) }),
              components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." })
        else {
            throw ZoneError("time zone \"\(name)\" is not an IANA name such as Europe/Paris (letters, digits, \"_+-.\", "
                + "components separated by \"/\"; no \"..\", no absolute path)")
        }
    }

    private static func readFile(_ path: String, zone: String) throws(ZoneError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR {
                throw ZoneError("unknown time zone \"\(zone)\" (no zone file \(path); use an IANA name such as Europe/Paris)")
            }
            throw ZoneError("time zone \"\(zone)\": cannot open \(path): \(String(cString: strerror(code)))")
        }
        defer { close(fd) }
        let limit = 1 << 20
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EISDIR { throw ZoneError("time zone \"\(zone)\": \(path) is a directory, not a zone file") }
                throw ZoneError("time zone \"\(zone)\": cannot read \(path): \(String(cString: strerror(code)))")
            }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
            if bytes.count > limit { throw ZoneError("time zone \"\(zone)\": \(path) is larger than \(limit) bytes, not a zone file") }
        }
    }

    // MARK: - UTC to local

    /// The period in effect at `utc` (seconds since 1970).
    public func period(at utc: Int64) -> Period {
        if let first = transitions.first, utc < first { return initial }
        if let rule, transitions.last.map({ utc >= $0 }) ?? true {
            return rule.period(at: utc)
        }
        guard let last = transitions.last else { return initial }
        if utc >= last { return periods[periods.count - 1] }
        // The last transition at or before utc.
        var low = 0, high = transitions.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if transitions[mid] <= utc { low = mid } else { high = mid - 1 }
        }
        return periods[low]
    }

    /// Seconds east of UTC at `utc`.
    public func offset(at utc: Int64) -> Int { period(at: utc).offset }

    /// The wall-clock time at `utc`.
    public func localTime(at utc: Int64) -> LocalTime {
        let period = period(at: utc)
        let wall = utc + Int64(period.offset)
        let days = floorDiv(wall, 86_400)
        let second = Int(wall - days * 86_400)
        let date = Civil.date(days: days)
        return LocalTime(year: date.year, month: date.month, day: date.day, hour: second / 3600, minute: second / 60 % 60, second: second % 60, period: period)
    }

    // MARK: - Local to UTC

    /// The instant of a wall-clock time (fields may run over: hour 24 is the next day's 00).
    /// A time in a gap or an overlap follows the rule at the top (Python's `fold=0`).
    public func utc(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) -> Int64 {
        let wall = Civil.days(year: year, month: month, day: day) * 86_400 + Int64(hour) * 3600 + Int64(minute) * 60 + Int64(second)
        return wall - Int64(period(atWall: wall).offset)
    }

    /// The period a wall time (local seconds since 1970) is read with: that of the last
    /// transition whose wall time, taken with the larger of the offsets around it, is at or
    /// before it.
    func period(atWall wall: Int64) -> Period {
        func wallOf(_ i: Int) -> Int64 {
            transitions[i] + Int64(max(i == 0 ? initial.offset : periods[i - 1].offset, periods[i].offset))
        }
        if !transitions.isEmpty, wall < wallOf(0) { return initial }
        if transitions.isEmpty || wall > wallOf(transitions.count - 1) {
            if let rule { return rule.period(atWall: wall) }
            return periods.last ?? initial
        }
        var low = 0, high = transitions.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if wallOf(mid) <= wall { low = mid } else { high = mid - 1 }
        }
        return periods[low]
    }

    // MARK: - The footer's POSIX TZ rule

    /// A POSIX TZ string as in a TZif footer (RFC 8536 3.3): `std offset [dst [offset] [,start[/time],end[/time]]]`,
    /// offsets west-positive as POSIX writes them, rule times from -167 to 167 hours (the
    /// RFC's extension), dates `Jn`, `n` or `Mm.w.d`.
    struct PosixRule: Sendable, Equatable {
        let standard: Period
        let daylight: Daylight?

        /// Daylight saving time: its period, the date and local time (standard time) it starts,
        /// the date and local time (daylight time) it ends; times in seconds, -167 h to 167 h.
        struct Daylight: Sendable, Equatable {
            let period: Period
            let start: RuleDate, startTime: Int
            let end: RuleDate, endTime: Int
        }

        enum RuleDate: Sendable, Equatable {
            /// `Jn`: day n of the year, 1 to 365, February 29 never counted.
            case julian(Int)
            /// `n`: day n of the year, 0 to 365, February 29 counted.
            case zeroBased(Int)
            /// `Mm.w.d`: weekday d (0 Sunday) of week w (1 to 4, 5 the last) of month m.
            case monthWeekDay(month: Int, week: Int, weekday: Int)

            /// Days since 1970 of this date in `year`.
            func days(in year: Int) -> Int64 {
                let jan1 = Civil.days(year: year, month: 1, day: 1)
                switch self {
                case .julian(let n):
                    return jan1 + Int64(n - 1) + (Civil.isLeap(year) && n >= 60 ? 1 : 0)
                case .zeroBased(let n):
                    return jan1 + Int64(n)
                case .monthWeekDay(let month, let week, let weekday):
                    let first = Civil.days(year: year, month: month, day: 1)
                    let firstWeekday = Int(floorMod(first + 4, 7))  // 1970-01-01 was a Thursday
                    var day = (weekday - firstWeekday + 7) % 7 + 1 + (week - 1) * 7
                    if day > Civil.daysInMonth(year, month) { day -= 7 }
                    return first + Int64(day - 1)
                }
            }
        }

        /// The instants (UTC) daylight time starts and ends in `year`.
        private func startAndEnd(in year: Int, _ dst: Daylight) -> (start: Int64, end: Int64) {
            (dst.start.days(in: year) * 86_400 + Int64(dst.startTime) - Int64(standard.offset),
             dst.end.days(in: year) * 86_400 + Int64(dst.endTime) - Int64(dst.period.offset))
        }

        /// The period after the last start or end at or before `utc` in the years around it
        /// (no allocation: this runs for every conversion past the last transition). A start
        /// wins a tie with an end: daylight time all year ("0/0,J365/25") has no gap at New Year.
        func period(at utc: Int64) -> Period {
            guard let daylight else { return standard }
            let year = Civil.date(days: floorDiv(utc + Int64(standard.offset), 86_400)).year
            var latest = Int64.min
            var inDaylight = false
            for y in (year - 2)...(year + 1) {
                let (start, end) = startAndEnd(in: y, daylight)
                if end <= utc, end > latest { (latest, inDaylight) = (end, false) }
                if start <= utc, start >= latest { (latest, inDaylight) = (start, true) }
            }
            return inDaylight ? daylight.period : standard
        }

        /// A wall time's period: both changes are between the same two periods, so each one's
        /// wall time with the larger offset is its instant plus that offset.
        func period(atWall wall: Int64) -> Period {
            guard let daylight else { return standard }
            return period(at: wall - Int64(max(standard.offset, daylight.period.offset)))
        }

        /// Parses a POSIX TZ string; nil when it is not one.
        init?(_ text: String) {
            var s = Substring(text)
            guard let standardName = Self.name(&s), let standardOffset = Self.offset(&s) else { return nil }
            standard = Period(offset: -standardOffset, isDST: false, abbreviation: standardName)
            if s.isEmpty {
                daylight = nil
                return
            }
            guard let dstName = Self.name(&s) else { return nil }
            var dstOffset = -standardOffset + 3600
            if let first = s.first, first != "," {
                guard let parsed = Self.offset(&s) else { return nil }
                dstOffset = -parsed
            }
            let dstPeriod = Period(offset: dstOffset, isDST: true, abbreviation: dstName)
            var start = RuleDate.monthWeekDay(month: 3, week: 2, weekday: 0), startTime = 7200
            var end = RuleDate.monthWeekDay(month: 11, week: 1, weekday: 0), endTime = 7200
            if !s.isEmpty {
                // ",start[/time],end[/time]"; without it, POSIX leaves the rule to the system: the US rule as glibc.
                guard let (parsedStart, parsedStartTime) = Self.dateAndTime(&s) else { return nil }
                guard let (parsedEnd, parsedEndTime) = Self.dateAndTime(&s), s.isEmpty else { return nil }
                (start, startTime, end, endTime) = (parsedStart, parsedStartTime ?? 7200, parsedEnd, parsedEndTime ?? 7200)
            }
            daylight = Daylight(period: dstPeriod, start: start, startTime: startTime, end: end, endTime: endTime)
        }

        /// `<+0530>` or three or more letters.
        private static func name(_ s: inout Substring) -> String? {
            if s.first == "<" {
                guard let close = s.firstIndex(of: ">") else { return nil }
                let name = s[s.index(after: s.startIndex)..<close]
                guard name.count >= 3, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "-") }) else { return nil }
                s = s[s.index(after: close)...]
                return String(name)
            }
            let name = s.prefix { $0.isASCII && $0.isLetter }
            guard name.count >= 3 else { return nil }
            s = s.dropFirst(name.count)
            return String(name)
        }

        /// `[+-]hh[:mm[:ss]]` in seconds, west-positive as written.
        private static func offset(_ s: inout Substring) -> Int? { time(&s, maxHours: 24) }

        private static func time(_ s: inout Substring, maxHours: Int) -> Int? {
            var sign = 1
            if s.first == "+" || s.first == "-" {
                sign = s.first == "-" ? -1 : 1
                s = s.dropFirst()
            }
            guard let hours = number(&s, maxDigits: 3), hours <= maxHours else { return nil }
            var seconds = hours * 3600
            for unit in [60, 1] {
                guard s.first == ":" else { break }
                s = s.dropFirst()
                guard let n = number(&s, maxDigits: 2), n <= 59 else { return nil }
                seconds += n * unit
            }
            return sign * seconds
        }

        /// `,date[/time]`.
        private static func dateAndTime(_ s: inout Substring) -> (RuleDate, Int?)? {
            guard s.first == "," else { return nil }
            s = s.dropFirst()
            guard let date = ruleDate(&s) else { return nil }
            guard s.first == "/" else { return (date, nil) }
            s = s.dropFirst()
            guard let time = time(&s, maxHours: 167) else { return nil }
            return (date, time)
        }

        private static func ruleDate(_ s: inout Substring) -> RuleDate? {
            switch s.first {
            case "J":
                s = s.dropFirst()
                guard let n = number(&s, maxDigits: 3), (1...365).contains(n) else { return nil }
                return .julian(n)
            case "M":
                s = s.dropFirst()
                guard let m = number(&s, maxDigits: 2), (1...12).contains(m), s.first == "." else { return nil }
                s = s.dropFirst()
                guard let w = number(&s, maxDigits: 1), (1...5).contains(w), s.first == "." else { return nil }
                s = s.dropFirst()
                guard let d = number(&s, maxDigits: 1), (0...6).contains(d) else { return nil }
                return .monthWeekDay(month: m, week: w, weekday: d)
            default:
                guard let n = number(&s, maxDigits: 3), (0...365).contains(n) else { return nil }
                return .zeroBased(n)
            }
        }

        private static func number(_ s: inout Substring, maxDigits: Int) -> Int? {
            let digits = s.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= maxDigits, let n = Int(digits) else { return nil }
            s = s.dropFirst(digits.count)
            return n
        }
    }
}

/// Why a zone cannot be used; the message names the zone and the file.
public struct ZoneError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
    init(_ message: String) { self.message = message }
}

/// Why bytes are not a TZif file.
public struct TZifError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
    init(_ reason: String) { self.reason = reason }
}

/// Big-endian reading of a TZif file, every count checked against what is left.
private struct TZifReader {
    let bytes: [UInt8]
    var at = 0

    struct Header {
        var version: Int
        var isutcnt: Int, isstdcnt: Int, leapcnt: Int, timecnt: Int, typecnt: Int, charcnt: Int

        func blockLength(timeSize: Int) -> Int {
            timecnt * timeSize + timecnt + typecnt * 6 + charcnt + leapcnt * (timeSize + 4) + isstdcnt + isutcnt
        }
    }

    struct Block {
        var transitions: [Int64]
        var transitionTypes: [UInt8]
        var types: [ZoneRules.Period]
    }

    mutating func skip(_ n: Int, _ what: String) throws(TZifError) {
        guard n <= bytes.count - at else { throw TZifError("truncated in \(what)") }
        at += n
    }

    mutating func uint8() -> UInt8 {
        defer { at += 1 }
        return bytes[at]
    }

    mutating func int32() -> Int32 {
        defer { at += 4 }
        return Int32(bitPattern: UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3]))
    }

    mutating func int64() -> Int64 {
        let high = Int64(int32())
        let low = Int64(UInt32(bitPattern: int32()))
        return high << 32 | low
    }

    mutating func header() throws(TZifError) -> Header {
        guard bytes.count - at >= 44 else { throw TZifError("truncated header (\(bytes.count - at) bytes, a header is 44)") }
        guard Array(bytes[at..<at + 4]) == Array("TZif".utf8) else { throw TZifError("no \"TZif\" magic") }
        let versionByte = bytes[at + 4]
        let version: Int
        switch versionByte {
        case 0: version = 1
        case UInt8(ascii: "2")...UInt8(ascii: "9"): version = Int(versionByte - UInt8(ascii: "0"))
        default: throw TZifError("unknown version byte \(versionByte)")
        }
        at += 20
        var counts: [Int] = []
        for name in ["isutcnt", "isstdcnt", "leapcnt", "timecnt", "typecnt", "charcnt"] {
            // No count can exceed the file's length (which also keeps the block arithmetic in range).
            let count = UInt32(bitPattern: int32())
            guard count <= UInt32(min(bytes.count, Int(Int32.max) / 16)) else { throw TZifError("\(name) \(count) is more than the file holds") }
            counts.append(Int(count))
        }
        return Header(version: version, isutcnt: counts[0], isstdcnt: counts[1], leapcnt: counts[2], timecnt: counts[3], typecnt: counts[4], charcnt: counts[5])
    }

    /// The data block `h` announces (the one read; a version 2+ file's version 1 block is skipped unchecked).
    mutating func block(_ h: Header, timeSize: Int) throws(TZifError) -> Block {
        guard (1...256).contains(h.typecnt), h.charcnt >= 1 else {
            throw TZifError("typecnt \(h.typecnt), charcnt \(h.charcnt): at least 1 each, at most 256 types")
        }
        guard h.isutcnt == 0 || h.isutcnt == h.typecnt, h.isstdcnt == 0 || h.isstdcnt == h.typecnt else {
            throw TZifError("isutcnt \(h.isutcnt) and isstdcnt \(h.isstdcnt) must be 0 or typecnt \(h.typecnt)")
        }
        guard h.blockLength(timeSize: timeSize) <= bytes.count - at else {
            throw TZifError("truncated data block (\(h.timecnt) transitions, \(h.typecnt) types, \(h.charcnt) designation bytes need "
                + "\(h.blockLength(timeSize: timeSize)) bytes, \(bytes.count - at) left)")
        }
        var transitions: [Int64] = []
        transitions.reserveCapacity(h.timecnt)
        for _ in 0..<h.timecnt {
            let t = timeSize == 8 ? int64() : Int64(int32())
            // zic writes nothing before -2^59 (its "big bang"); the range keeps the arithmetic exact.
            guard t >= -(1 << 59), t <= 1 << 59 else { throw TZifError("transition time \(t) out of range") }
            if let previous = transitions.last, t <= previous { throw TZifError("transition times not ascending at \(t)") }
            transitions.append(t)
        }
        let transitionTypes = Array(bytes[at..<at + h.timecnt])
        at += h.timecnt
        if let bad = transitionTypes.first(where: { Int($0) >= h.typecnt }) {
            throw TZifError("transition type \(bad) out of range (\(h.typecnt) types)")
        }
        var raw: [(offset: Int32, isDST: UInt8, index: Int)] = []
        for _ in 0..<h.typecnt {
            raw.append((int32(), uint8(), Int(uint8())))
        }
        let designations = Array(bytes[at..<at + h.charcnt])
        at += h.charcnt
        var types: [ZoneRules.Period] = []
        for t in raw {
            guard t.offset != Int32.min, abs(Int(t.offset)) < 26 * 3600 else { throw TZifError("UT offset \(t.offset) s out of range") }
            guard t.isDST <= 1 else { throw TZifError("isdst \(t.isDST) is not 0 or 1") }
            guard t.index < designations.count, let end = designations[t.index...].firstIndex(of: 0) else {
                throw TZifError("designation index \(t.index) out of range or unterminated")
            }
            types.append(ZoneRules.Period(offset: Int(t.offset), isDST: t.isDST == 1,
                                          abbreviation: String(decoding: designations[t.index..<end], as: UTF8.self)))
        }
        // Leap-second records, standard/wall and UT/local indicators: not used.
        at += h.leapcnt * (timeSize + 4) + h.isstdcnt + h.isutcnt
        return Block(transitions: transitions, transitionTypes: transitionTypes, types: types)
    }

    /// The version 2+ footer: "\n" TZ string "\n".
    mutating func footer() throws(TZifError) -> String {
        guard at < bytes.count, bytes[at] == UInt8(ascii: "\n") else { throw TZifError("no footer after the version 2 data") }
        guard let end = bytes[(at + 1)...].firstIndex(of: UInt8(ascii: "\n")) else { throw TZifError("unterminated footer") }
        let text = String(decoding: bytes[(at + 1)..<end], as: UTF8.self)
        at = end + 1
        return text
    }
}

/// Proleptic Gregorian dates and days since 1970-01-01 (Howard Hinnant's algorithms): the one
/// copy, used by the zone rules, RFC 3339 stamps, the solar calculator and the schedules.
enum Civil {
    static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func date(days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(yoe + era * 400 + (m <= 2 ? 1 : 0)), Int(m), Int(d))
    }

    static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysInMonth(_ year: Int, _ month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

private func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }
private func floorMod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }
