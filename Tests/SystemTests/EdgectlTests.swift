#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TestSupport

/// The real edgectl binary: output, --json and the contract's exit codes.
@Suite(.serialized)
struct EdgectlTests {
    @Test func statusShowsTheGatewayAtAGlanceAndJSONParses() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.status()["devices"] as? [String: Any])?["lamp-01"].flatMap { ($0 as? [String: Any])?["online"] as? Bool } == true })
        let r = try rig.edgectl(["status"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("gateway test-gw"))
        #expect(r.stdout.contains("uplink"))
        #expect(r.stdout.contains("lamp-01"))
        #expect(r.stdout.contains("bollard-1"))
        #expect(r.stdout.contains("loop"))
        let json = try rig.edgectl(["status", "--json"])
        #expect(json.status == 0)
        let obj = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(obj?["gateway"] as? String == "test-gw")
    }

    @Test func lampSetOverridesAndReleaseReturnsToBase() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 30 })
        let set = try rig.edgectl(["lamp", "set", "lamp-01", "80", "--for", "10m"])
        #expect(set.status == 0, "\(set.stderr)")
        #expect(Wait.until(timeout: .seconds(5)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 80 })
        #expect(try rig.device("lamp-02")["setpoint"] as? Int == 30)
        #expect(try rig.edgectl(["lamp", "release", "lamp-01"]).status == 0)
        #expect(Wait.until(timeout: .seconds(5)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 30 })
        // Out of range is a usage error caught before the agent.
        #expect(try rig.edgectl(["lamp", "set", "lamp-01", "180"]).status == 2)
        // Unknown target: refused by the agent.
        let unknown = try rig.edgectl(["lamp", "set", "lamp-99", "50"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("unknown_target"))
    }

    @Test func priorityRequestAndCancelDriveTheRequestCoil() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.status()["devices"] as? [String: Any])?["junction"].flatMap { ($0 as? [String: Any])?["online"] as? Bool } == true })
        #expect(try rig.edgectl(["priority", "request", "north", "--vehicle", "bus-17", "--line", "L5"]).status == 0)
        #expect(Wait.until(timeout: .seconds(5)) { ((try? rig.device("junction")["request"]) as? [Any])?.first as? Bool == true })
        #expect(try rig.edgectl(["priority", "cancel", "north", "--vehicle", "bus-17"]).status == 0)
        #expect(Wait.until(timeout: .seconds(5)) { ((try? rig.device("junction")["request"]) as? [Any])?.first as? Bool == false })
    }

    @Test func ioWriteNeedsMaintenanceMode() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 30 })
        let refused = try rig.edgectl(["io", "write", "lamp-01", "fade", "2"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("maintenance"))
        let read = try rig.edgectl(["io", "read", "lamp-01", "--json"])
        #expect(read.status == 0)
        #expect(read.stdout.contains("\"online\""))
    }

    @Test func agentDownGivesExit3WithAClearMessage() throws {
        let scratch = ScratchDir()
        let r = try runCommand(BuildProducts.executable("edgectl"), ["--socket", scratch.file("none.sock"), "status"])
        #expect(r.status == 3)
        #expect(r.stderr.contains("not running"))
        #expect(r.stderr.contains("systemctl status edge-agent"))
    }

    @Test func configCheckValidatesWithoutStarting() throws {
        let rig = try FieldRig()
        let good = rig.scratch.write("agent.yaml", rig.agentConfig())
        let ok = try runCommand(BuildProducts.executable("edgectl"), ["config", "check", good])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("ok"))
        let bad = rig.scratch.write("bad.yaml", rig.agentConfig().replacingOccurrences(of: "unit: 30", with: "unit: 300"))
        let r = try runCommand(BuildProducts.executable("edgectl"), ["config", "check", bad])
        #expect(r.status == 1)
        #expect(r.stderr.contains("bad.yaml:"))
        #expect(r.stderr.contains("devices.bollard-1.unit"))
    }
}
