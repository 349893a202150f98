"""One view across hosts: each host's report timer publishes a host record into the shared Redis
(`record`, `store`); `qtctl fleet` reads them all back and judges them (`view`)."""
