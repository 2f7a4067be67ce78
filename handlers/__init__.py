"""The conversation: engine, flows and rules. No platform imports here."""
