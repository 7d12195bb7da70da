import Drivers
import Testing

/// Roles and their names: one name per role, the inverse mapping total.
@Suite struct PointRoleTests {
    @Test func everyRoleHasItsOwnNameAndBack() {
        var seen: Set<String> = []
        for role in PointRole.allCases {
            #expect(seen.insert(role.pointName).inserted, "\(role) shares a name")
            #expect(PointRole(pointName: role.pointName) == role)
        }
        #expect(PointRole.request(3).pointName == "request_3" && PointRole.ack(8).pointName == "ack_8")
        #expect(PointRole(pointName: "colour") == nil)
    }
    /// `PointRoleSet` holds one bit per role.
    @Test func everyRoleFitsARoleSet() {
        #expect(PointRole.allCases.count <= 64)
        var set = PointRoleSet()
        for role in PointRole.allCases { set.insert(role) }
        #expect(PointRole.allCases.allSatisfy { set.contains($0) })
        #expect(PointRoleSet([.lux]).contains(.lux) && !PointRoleSet([.lux]).contains(.presence) && PointRoleSet().isEmpty)
    }
}
