import Testing

@Test func placeholderDriversTests() {}
