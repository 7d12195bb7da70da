import Testing

@Test func placeholderEdgeAgentTests() {}
