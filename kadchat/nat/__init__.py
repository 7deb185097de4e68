"""NAT traversal: its wire format, the introducer every node offers, and our own traversal."""
