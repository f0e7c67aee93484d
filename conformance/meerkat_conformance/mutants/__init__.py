"""The mutation benchmark: planted runtime bugs, and which layer (tests, harness) kills each."""
