import Testing

@Test func placeholderProtocolsTests() {}
