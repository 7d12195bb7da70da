import Testing

@Test func placeholderSystemTests() {}
