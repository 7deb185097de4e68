"""kademlia: a Kademlia DHT on Twisted speaking BitTorrent KRPC (BEP 5) with BEP 44 mutable items."""
