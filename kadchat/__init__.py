"""kadchat: private, serverless chat on top of the kademlia DHT."""
