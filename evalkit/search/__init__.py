"""Search: from query and document vectors to ranked candidates."""
