"""Fleet of Megapod sites: a batch of heterogeneous sites (the single-site kernel) coupled by a
shared pool of deferrable training jobs, job migration and grid outages."""
